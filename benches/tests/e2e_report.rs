//! Medians, ratios, the headline and the JSON/Markdown output of the
//! end-to-end harness.

use std::collections::BTreeMap;

use lanegate_benches::e2e::harness::{Sample, ServerKind, cpu_us_per_dgram, steady_window};
use lanegate_benches::e2e::report::{E2eReport, RunRecord, fmt_value};
use lanegate_benches::e2e::stats::{median, ratio, rotation};

#[test]
fn median_of_odd_even_and_missing() {
    assert_eq!(median(&[Some(3.0), Some(1.0), Some(2.0)]), Some(2.0));
    assert_eq!(
        median(&[Some(4.0), Some(1.0), Some(2.0), Some(3.0)]),
        Some(2.5)
    );
    assert_eq!(median(&[None, Some(5.0), None]), Some(5.0));
    assert_eq!(median(&[None, None]), None);
    assert_eq!(median(&[]), None);
    assert_eq!(median(&[Some(f64::NAN), Some(1.0)]), Some(1.0));
}

#[test]
fn ratio_needs_both_and_a_positive_denominator() {
    assert_eq!(ratio(Some(3.0), Some(2.0)), Some(1.5));
    assert_eq!(ratio(None, Some(2.0)), None);
    assert_eq!(ratio(Some(1.0), None), None);
    assert_eq!(ratio(Some(1.0), Some(0.0)), None);
    assert_eq!(ratio(Some(f64::INFINITY), Some(1.0)), None);
}

#[test]
fn rotation_puts_each_candidate_first_once() {
    assert_eq!(rotation(3, 0), vec![0, 1, 2]);
    assert_eq!(rotation(3, 1), vec![1, 2, 0]);
    assert_eq!(rotation(3, 2), vec![2, 0, 1]);
    assert_eq!(rotation(3, 3), vec![0, 1, 2]);
}

#[test]
fn the_throughput_rotation_has_both_backends_side_by_side() {
    use ServerKind::{Lanegate, LanegateNoHistograms, LanegatePortable, Quinn, Udp};
    let all = ServerKind::throughput_candidates(true, false);
    assert_eq!(all, vec![Lanegate, LanegatePortable, Quinn, Udp]);
    assert_eq!(
        ServerKind::throughput_candidates(false, false),
        vec![Lanegate, Quinn, Udp]
    );
    // The histogram cost's pair runs back to back.
    assert_eq!(
        ServerKind::throughput_candidates(true, true),
        vec![Lanegate, LanegateNoHistograms, LanegatePortable, Quinn, Udp]
    );
    let names: Vec<&str> = all.iter().map(|k| k.name()).collect();
    assert_eq!(
        names,
        [
            "lanegate",
            "lanegate-portable",
            "baseline-quinn",
            "baseline-udp"
        ]
    );
    assert!(Lanegate.is_lanegate() && LanegatePortable.is_lanegate());
    assert!(!Quinn.is_lanegate() && !Udp.is_lanegate());
    // Four rounds: every candidate runs once in every position, and the
    // two backends are neighbours (wrapping round) in each round.
    let rounds: Vec<Vec<ServerKind>> = (0..4)
        .map(|r| rotation(all.len(), r).into_iter().map(|i| all[i]).collect())
        .collect();
    assert_eq!(rounds[1], vec![LanegatePortable, Quinn, Udp, Lanegate]);
    for pos in 0..all.len() {
        let mut at: Vec<ServerKind> = rounds.iter().map(|r| r[pos]).collect();
        at.sort_by_key(|k| k.name());
        let mut want = all.clone();
        want.sort_by_key(|k| k.name());
        assert_eq!(at, want, "position {pos}");
    }
    for r in &rounds {
        let a = r.iter().position(|&k| k == Lanegate).expect("in the round");
        let b = r
            .iter()
            .position(|&k| k == LanegatePortable)
            .expect("in the round");
        assert!(
            (a + 1) % all.len() == b || (b + 1) % all.len() == a,
            "{r:?}"
        );
    }
}

fn sample(elapsed_s: f64, connected: u64, received: u64, ticks: u64) -> Sample {
    Sample {
        elapsed_s,
        connected,
        received,
        server_ticks: Some(ticks),
        bot_ticks: Some(0),
    }
}

#[test]
fn the_steady_window_starts_when_all_are_connected() {
    let s = [
        sample(0.1, 5, 0, 0),
        sample(0.2, 10, 100, 1),
        sample(0.3, 10, 1100, 11),
        sample(0.4, 10, 2100, 21),
        sample(0.5, 3, 2200, 22),
    ];
    assert_eq!(steady_window(&s, 10, 0.45), Some((1, 3)));
    assert_eq!(steady_window(&s, 11, 0.45), None);
    assert_eq!(steady_window(&s, 10, 0.2), None);
    // 20 ticks at 100/s = 0.2 s for 2000 replies: 100 µs each.
    let cpu = cpu_us_per_dgram(&s[1], &s[3], 100).expect("a figure");
    assert!((cpu - 100.0).abs() < 1e-9, "{cpu}");
    assert_eq!(cpu_us_per_dgram(&s[1], &s[1], 100), None);
}

fn run(kind: &str, server: &str, case: &str, round: usize, figs: &[(&str, f64)]) -> RunRecord {
    RunRecord {
        kind: kind.into(),
        server: server.into(),
        case: case.into(),
        round,
        figures: figs
            .iter()
            .map(|(k, v)| (k.to_string(), Some(*v)))
            .collect(),
        error: None,
    }
}

#[test]
fn the_headline_is_made_of_medians_and_missing_figures_are_null() {
    let mut runs = Vec::new();
    for (round, (lg, qn, ud)) in [(3.0, 2.0, 1.0), (30.0, 1.0, 0.5), (2.0, 1.0, 0.5)]
        .into_iter()
        .enumerate()
    {
        runs.push(run(
            "cpu",
            "lanegate",
            "150B/1000c",
            round,
            &[("cpu_us_per_dgram", lg), ("rtt_p99_us", 300.0)],
        ));
        runs.push(run(
            "cpu",
            "lanegate-portable",
            "150B/1000c",
            round,
            &[("cpu_us_per_dgram", lg * 1.25), ("rtt_p99_us", 450.0)],
        ));
        runs.push(run(
            "cpu",
            "baseline-quinn",
            "150B/1000c",
            round,
            &[("cpu_us_per_dgram", qn), ("rtt_p99_us", 200.0)],
        ));
        runs.push(run(
            "cpu",
            "baseline-udp",
            "150B/1000c",
            round,
            &[("cpu_us_per_dgram", ud)],
        ));
        runs.push(run(
            "isolation",
            "lanegate",
            "noflood",
            round,
            &[("rtt_p99_us", 100.0)],
        ));
        runs.push(run(
            "saturation",
            "lanegate",
            "150B/100c",
            round,
            &[("saturation_msg_per_s", 40_000.0)],
        ));
        runs.push(run(
            "saturation",
            "baseline-quinn",
            "150B/100c",
            round,
            &[("saturation_msg_per_s", 20_000.0)],
        ));
        runs.push(run(
            "churn",
            "lanegate",
            "200cps",
            round,
            &[("rtt_p99_us", 300.0)],
        ));
        runs.push(run(
            "churn",
            "baseline-quinn",
            "200cps",
            round,
            &[("rtt_p99_us", 400.0)],
        ));
        runs.push(run(
            "isolation",
            "lanegate",
            "flood",
            round,
            &[("rtt_p99_us", 110.0 + round as f64)],
        ));
    }
    runs.push(RunRecord {
        kind: "idle".into(),
        server: "lanegate".into(),
        case: "1000".into(),
        error: Some("server missing".into()),
        ..RunRecord::default()
    });
    let mut setup = BTreeMap::new();
    setup.insert("mode".to_owned(), "quick".to_owned());
    let report = E2eReport::summarise(runs, setup, false);
    let h = &report.headline;
    // Medians 3.0 / 1.0 / 0.5: an outlier round (30) does not move them.
    assert_eq!(h.cpu_per_dgram_ratio_vs_quinn, Some(3.0));
    assert_eq!(h.cpu_per_dgram_ratio_vs_udp, Some(6.0));
    assert_eq!(h.rtt_p99_ratio_vs_quinn, Some(1.5));
    assert_eq!(h.critical_p99_flood_ratio, Some(1.11));
    assert_eq!(h.saturation_ratio_vs_quinn, Some(2.0));
    assert_eq!(h.churn_rtt_p99_ratio_vs_quinn, Some(0.75));
    // lanegate-portable's median 3.75 over lanegate's 3.0; 450 over 300.
    assert_eq!(h.cpu_per_dgram_ratio_portable_vs_io_uring, Some(1.25));
    assert_eq!(h.rtt_p99_ratio_portable_vs_io_uring, Some(1.5));
    assert_eq!(h.mem_per_conn_ratio_vs_quinn, None);
    assert_eq!(h.handshakes_per_s_ratio_vs_quinn, None);
    assert_eq!(
        report.medians["cpu_us_per_dgram.baseline-quinn.150B/1000c"],
        Some(1.0)
    );

    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("valid JSON");
    for key in [
        "cpu_per_dgram_ratio_vs_quinn",
        "cpu_per_dgram_ratio_vs_udp",
        "rtt_p99_ratio_vs_quinn",
        "mem_per_conn_ratio_vs_quinn",
        "handshakes_per_s_ratio_vs_quinn",
        "cpu_per_dgram_ratio_portable_vs_io_uring",
        "rtt_p99_ratio_portable_vs_io_uring",
        "critical_p99_flood_ratio",
        "saturation_ratio_vs_quinn",
        "churn_rtt_p99_ratio_vs_quinn",
    ] {
        assert!(json["headline"].get(key).is_some(), "{key}");
    }
    assert_eq!(json["headline"]["cpu_per_dgram_ratio_vs_quinn"], 3.0);
    assert!(json["headline"]["mem_per_conn_ratio_vs_quinn"].is_null());
    assert_eq!(json["headline"]["bots_limited"], false);
    assert_eq!(json["runs"].as_array().map(Vec::len), Some(31));
    assert_eq!(json["setup"]["mode"], "quick");

    let md = report.to_markdown();
    assert!(
        md.contains("| cpu_per_dgram_ratio_vs_quinn | 3.000 |"),
        "{md}"
    );
    assert!(md.contains("| mem_per_conn_ratio_vs_quinn | — |"), "{md}");
    assert!(
        md.contains("| cpu_per_dgram_ratio_portable_vs_io_uring | 1.250 |"),
        "{md}"
    );
    assert!(
        md.contains("| rtt_p99_ratio_portable_vs_io_uring | 1.500 |"),
        "{md}"
    );
    assert!(md.contains("| bots_limited | false |"), "{md}");

    let dir = std::env::temp_dir().join(format!("lanegate-e2e-report-{}", std::process::id()));
    report.write(&dir).expect("writes");
    let back: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("e2e.json")).expect("json"))
            .expect("valid");
    assert_eq!(back, json);
    assert_eq!(std::fs::read_to_string(dir.join("e2e.md")).expect("md"), md);
    std::fs::remove_dir_all(&dir).expect("cleans up");
}

#[test]
fn values_are_formatted_for_tables() {
    assert_eq!(fmt_value(None), "—");
    assert_eq!(fmt_value(Some(1.23456)), "1.235");
    assert_eq!(fmt_value(Some(12345.6)), "12346");
}
