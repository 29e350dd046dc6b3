//! `e2e`: the gateway against the baseline servers, end to end, on this
//! machine, as ratios measured in one run.
//!
//! ```sh
//! cargo run --release -p lanegate-benches --bin e2e -- --quick
//! ```
//!
//! Each server under test runs alone, pinned to `--server-core` (default 0)
//! with `taskset`; the bots run on one thread pinned to `--bot-core`
//! (default 1), in a child process per swarm (this executable again, with
//! `--swarm-child`), so every run starts from the same state. The
//! candidates:
//!
//! - `lanegate`: `lanegate serve` with `io_backend = "io_uring"`;
//! - `lanegate-portable`: the same configuration with `io_backend =
//!   "portable"` (quinn-udp), the backend `auto` falls back to where
//!   io_uring is refused (container seccomp, `kernel.io_uring_disabled`).
//!   Throughput runs only (`--quick`: the 1000-connection case only);
//!   `--no-portable` leaves it out;
//! - `lanegate-no-histograms` (`--histogram-cost` only): `lanegate` with
//!   `observability.latency_histograms = false`, for
//!   `cpu_per_dgram_ratio_histograms_on_vs_off`;
//! - `baseline-quinn` and `baseline-udp` (see their own files).
//!
//! Both lanegate candidates name their backend: neither is `auto`, so a
//! machine without io_uring gives `lanegate` null figures rather than
//! quietly measuring the fallback twice.
//!
//! Candidates are interleaved (A B C D, B C D A, C D A B, …), every figure is
//! the median of `--repeats` runs, and each server is started fresh for every
//! run. Measured:
//!
//! - server CPU per echoed datagram (utime + stime from `/proc/PID/stat` over
//!   the stretch with every bot connected ÷ replies received in it), at a
//!   fixed offered load (`--rate`, messages per second in total, in the
//!   critical lane) for each payload size and connection count, every
//!   candidate;
//! - critical-lane RTT p50/p99/p99.9 in the same runs;
//! - RSS per connection (`VmRSS` after N connections minus before, ÷ N; the
//!   connections send one message a second, so they stay open) and
//!   handshakes per second (N connections offered at 2000/s, the most
//!   connected at once ÷ the time to reach that), `lanegate` and
//!   `baseline-quinn` only;
//! - lane isolation, `lanegate` only: critical p99 with and without a bulk
//!   flood at 10× the bulk limit;
//! - saturation, every throughput candidate: the highest offered load
//!   (5k, 10k, 20k … 160k msg/s, doubling; `--quick`: 20k and 80k, one
//!   round) over 100 connections echoed with under 0.1 % loss, and whether
//!   the search ended because the bots could not offer more (`saturation_bots_limited`)
//!   or at the top step (`saturation_at_ceiling`);
//! - RTT under churn, `lanegate` and `baseline-quinn`: critical p99 while
//!   200 connections a second arrive, each living one second at 25
//!   datagrams a second (about 200 connected, ~5000 msg/s);
//! - `bots_limited`: some run's send lag or bot-core load says the generator
//!   could not keep up.
//!
//! Headlines beyond the issue's list: `saturation_ratio_vs_quinn`,
//! `churn_rtt_p99_ratio_vs_quinn`, and the backend's price:
//! `cpu_per_dgram_ratio_portable_vs_io_uring` and
//! `rtt_p99_ratio_portable_vs_io_uring` (`lanegate-portable` ÷ `lanegate`,
//! 150-byte payloads, 1000 connections).
//!
//! Writes `target/bench/e2e.json` and `target/bench/e2e.md`. A server that
//! cannot start (the gateway not built, io_uring refused, say) gets `null`
//! figures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use lanegate_benches::e2e::child::{SWARM_CHILD_ARG, run_child};
use lanegate_benches::e2e::harness::{
    RunOutcome, Server, ServerKind, ServerSpec, bots_limited, measure,
};
use lanegate_benches::e2e::procfs;
use lanegate_benches::e2e::report::{E2eReport, RunRecord, fmt_value};
use lanegate_benches::e2e::stats::rotation;
use lanegate_bots::{BotsConfig, Flood};
use lanegate_common::lanes::Lane;
use lanegate_common::wire::Transport;

/// Connections offered per second in the handshake runs: "as fast as
/// possible" for a generator whose own handshakes share one core with the
/// server's replies (faster offers time out in the bots, not the server).
const HANDSHAKE_OFFER_PER_S: f64 = 2_000.0;
/// Connections ramp in the throughput runs: slow enough that the bots'
/// own handshakes (one core, shared with the replies) do not time out.
const RAMP_PER_S: f64 = 500.0;
/// Bulk limit of the default configuration; the flood is 10× it.
const BULK_LIMIT_PER_S: f64 = 10.0;
/// Connections in the saturation search.
const SATURATION_CONNS: usize = 100;
/// Loss at or above which a saturation step fails, in percent (0.1 %).
const SATURATION_LOSS_PERCENT: f64 = 0.1;
/// New connections per second in the churn runs; each stays
/// `CHURN_LIFETIME` and sends `CHURN_RATE_PER_S` critical datagrams a
/// second, so about 200 are connected at any time, offering ~5000 msg/s.
const CHURN_CONNECT_PER_S: u64 = 200;
const CHURN_LIFETIME: Duration = Duration::from_secs(1);
const CHURN_RATE_PER_S: f64 = 25.0;

struct Args {
    quick: bool,
    rate_total: f64,
    repeats: usize,
    out: PathBuf,
    lanegate: Option<PathBuf>,
    build: bool,
    server_core: usize,
    bot_core: usize,
    /// Run `lanegate-portable` in the throughput rotation (`--no-portable`
    /// turns it off).
    portable: bool,
    /// Run `lanegate-no-histograms` in the throughput rotation
    /// (`--histogram-cost`).
    histogram_cost: bool,
    /// Which measurements to run (`--cases`, default all of [`CASES`]).
    cases: Vec<String>,
}

/// The measurements, in the order they run; `--cases` picks some.
const CASES: [&str; 5] = ["throughput", "idle", "isolation", "saturation", "churn"];

/// What one invocation measures.
struct Plan {
    payloads: Vec<usize>,
    conns: Vec<usize>,
    duration: Duration,
    idle_conns: Vec<usize>,
    isolation_conns: usize,
    isolation_duration: Duration,
    /// Offered loads (messages/s in total) tried in the saturation search,
    /// ascending, over `SATURATION_CONNS` connections.
    saturation_steps: Vec<f64>,
    /// Rounds of the saturation search per candidate.
    saturation_rounds: usize,
    /// How long the churn runs offer new connections.
    churn_duration: Duration,
    /// Rounds of the churn runs per candidate.
    churn_rounds: usize,
    /// Connection counts whose throughput runs include `lanegate-portable`
    /// (when it is on at all).
    portable_conns: Vec<usize>,
}

fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some(SWARM_CHILD_ARG) {
        return run_child();
    }
    let args = parse_args()?;
    let plan = if args.quick {
        Plan {
            payloads: vec![150],
            conns: vec![100, 1000],
            duration: Duration::from_millis(1200),
            idle_conns: vec![1000],
            isolation_conns: 100,
            isolation_duration: Duration::from_millis(1200),
            // Under 3 minutes in all: coarse saturation steps, one round
            // of saturation and churn, and the portable backend only in
            // the headline case.
            saturation_steps: vec![20_000.0, 80_000.0],
            saturation_rounds: 1,
            churn_duration: Duration::from_secs(2),
            churn_rounds: 1,
            portable_conns: vec![1000],
        }
    } else {
        Plan {
            payloads: vec![40, 150, 300],
            conns: vec![100, 1000],
            duration: Duration::from_secs(5),
            idle_conns: vec![1000, 10_000],
            isolation_conns: 100,
            isolation_duration: Duration::from_secs(5),
            saturation_steps: vec![5_000.0, 10_000.0, 20_000.0, 40_000.0, 80_000.0, 160_000.0],
            saturation_rounds: args.repeats,
            churn_duration: Duration::from_secs(6),
            churn_rounds: args.repeats,
            portable_conns: vec![100, 1000],
        }
    };
    let bin_dir = std::env::current_exe()?
        .parent()
        .context("the executable has a directory")?
        .to_path_buf();
    let exe = |name: &str| bin_dir.join(name);
    let lanegate_exe = args.lanegate.clone().unwrap_or_else(|| exe("lanegate"));
    if args.build {
        build_missing(&[
            (exe("baseline-quinn"), "lanegate-benches", "baseline-quinn"),
            (exe("baseline-udp"), "lanegate-benches", "baseline-udp"),
            (lanegate_exe.clone(), "lanegate-gateway", "lanegate"),
        ]);
    }
    std::fs::create_dir_all(&args.out)?;
    let throughput_toml = args.out.join("e2e-lanegate-throughput.toml");
    let portable_toml = args.out.join("e2e-lanegate-portable-throughput.toml");
    let no_histograms_toml = args.out.join("e2e-lanegate-no-histograms-throughput.toml");
    let isolation_toml = args.out.join("e2e-lanegate-isolation.toml");
    let sc = args.server_core;
    std::fs::write(&throughput_toml, lanegate_config(sc, true, "io_uring"))?;
    std::fs::write(&portable_toml, lanegate_config(sc, true, "portable"))?;
    std::fs::write(
        &no_histograms_toml,
        lanegate_config(sc, true, "io_uring").replace(
            "metrics_listen = \"off\"\n",
            "metrics_listen = \"off\"\nlatency_histograms = false\n",
        ),
    )?;
    std::fs::write(&isolation_toml, lanegate_config(sc, false, "io_uring"))?;
    let core = Some(args.server_core);
    let lanegate_spec = |kind: ServerKind, toml: &Path| ServerSpec {
        kind,
        exe: lanegate_exe.clone(),
        args: vec![
            "serve".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--config".into(),
            toml.display().to_string(),
        ],
        core,
    };
    let quinn = ServerSpec {
        kind: ServerKind::Quinn,
        exe: exe("baseline-quinn"),
        args: vec![],
        core,
    };
    let udp = ServerSpec {
        kind: ServerKind::Udp,
        exe: exe("baseline-udp"),
        args: vec![],
        core,
    };

    let mut setup = BTreeMap::new();
    // Probe every server once: a missing one gets null figures, not a
    // failed run.
    let all = ServerKind::throughput_candidates(args.portable, args.histogram_cost);
    let spec_of = |kind: ServerKind| match kind {
        ServerKind::Lanegate => lanegate_spec(kind, &throughput_toml),
        ServerKind::LanegatePortable => lanegate_spec(kind, &portable_toml),
        ServerKind::LanegateNoHistograms => lanegate_spec(kind, &no_histograms_toml),
        ServerKind::Quinn => quinn.clone(),
        ServerKind::Udp => udp.clone(),
    };
    let mut available = BTreeMap::new();
    for spec in all.iter().map(|&kind| spec_of(kind)) {
        let status = match Server::start(&spec) {
            Ok(_) => "ok".to_owned(),
            Err(e) => format!("missing: {e:#}"),
        };
        eprintln!("{}: {status}", spec.kind.name());
        available.insert(spec.kind.name(), status == "ok");
        setup.insert(format!("server.{}", spec.kind.name()), status);
    }
    if !core_affinity::set_for_current(core_affinity::CoreId { id: args.bot_core }) {
        eprintln!("could not pin the bots to core {}", args.bot_core);
        setup.insert("bot_core_pinned".into(), "no".into());
    }
    let ticks_per_s = procfs::clock_ticks_per_s();
    setup.insert("cases".into(), args.cases.join(","));
    setup.insert(
        "mode".into(),
        if args.quick { "quick" } else { "full" }.into(),
    );
    setup.insert("server_core".into(), args.server_core.to_string());
    setup.insert("bot_core".into(), args.bot_core.to_string());
    setup.insert("repeats".into(), args.repeats.to_string());
    setup.insert(
        "offered_load".into(),
        format!(
            "{} msg/s total, critical lane datagrams, {}s per run, ramp {RAMP_PER_S}/s",
            args.rate_total,
            plan.duration.as_secs_f64()
        ),
    );
    setup.insert("machine".into(), machine());
    setup.insert(
        "lanegate_config".into(),
        "cores=[0] gateway+shard, io_backend io_uring (lanegate) or portable \
         (lanegate-portable), limits raised (throughput), defaults + \
         abuse_drops_max raised (isolation, io_uring)"
            .into(),
    );
    setup.insert(
        "throughput_candidates".into(),
        all.iter().map(|k| k.name()).collect::<Vec<_>>().join(" "),
    );

    let mut runs: Vec<RunRecord> = Vec::new();
    let mut any_limited = false;

    let on = |case: &str| args.cases.iter().any(|c| c == case);
    let payloads = if on("throughput") {
        plan.payloads.as_slice()
    } else {
        &[]
    };
    // 1. CPU per echoed datagram and RTT at the fixed load.
    for &payload in payloads {
        for &conns in &plan.conns {
            let case = format!("{payload}B/{conns}c");
            let here: Vec<ServerKind> = all
                .iter()
                .copied()
                .filter(|k| {
                    *k != ServerKind::LanegatePortable || plan.portable_conns.contains(&conns)
                })
                .collect();
            for round in 0..args.repeats {
                for i in rotation(here.len(), round) {
                    let kind = here[i];
                    let load = |mut cfg: BotsConfig| {
                        cfg.clients = conns;
                        cfg.connect_rate_per_s = RAMP_PER_S;
                        // Every bot plays through the measured stretch.
                        cfg.duration = cfg.ramp() + Duration::from_millis(500) + plan.duration;
                        cfg.reply_deadline = Duration::from_millis(500);
                        only_lane(&mut cfg, Lane::Critical, args.rate_total / conns as f64);
                        cfg.lanes[Lane::Critical.index()].payload_bytes = payload;
                        cfg
                    };
                    let rec = record("cpu", kind, &case, round);
                    let spec = available[kind.name()].then(|| spec_of(kind));
                    any_limited |=
                        fixed_load_run(rec, spec.as_ref(), load, |_, _| {}, ticks_per_s, &mut runs);
                }
            }
        }
    }

    // 2. Memory per connection and handshakes per second (QUIC servers).
    let quic = [ServerKind::Lanegate, ServerKind::Quinn];
    let idle_conns = if on("idle") {
        plan.idle_conns.as_slice()
    } else {
        &[]
    };
    for &n in idle_conns {
        let case = n.to_string();
        for round in 0..args.repeats {
            for i in rotation(quic.len(), round) {
                let kind = quic[i];
                let mut rec = record("idle", kind, &case, round);
                if available[kind.name()] {
                    let load = |mut cfg: BotsConfig| {
                        cfg.clients = n;
                        cfg.connect_rate_per_s = HANDSHAKE_OFFER_PER_S;
                        // Every bot must still be connected when the last
                        // one arrives: a bot leaves after its last send.
                        cfg.duration = Duration::from_secs_f64(2.0 + n as f64 / 400.0);
                        cfg.reply_deadline = Duration::from_millis(500);
                        only_lane(&mut cfg, Lane::Critical, 1.0);
                        cfg.lanes[Lane::Critical.index()].payload_bytes = 8;
                        cfg
                    };
                    match run_one(&spec_of(kind), load, Duration::from_millis(20), ticks_per_s) {
                        Ok(out) => {
                            let limited = bots_limited(&out)
                                || out.bot_cpu_load_connecting.is_some_and(|l| l > 0.9);
                            any_limited |= limited;
                            let peak = out.peak_connected;
                            let per_conn = match (out.rss_before, out.rss_peak_connected) {
                                (Some(a), Some(b)) if peak > 0 => {
                                    Some((b as f64 - a as f64) / peak as f64)
                                }
                                _ => None,
                            };
                            let fig = &mut rec.figures;
                            fig.insert("rss_per_conn_bytes".into(), per_conn);
                            fig.insert(
                                "handshakes_per_s".into(),
                                out.peak_connected_s
                                    .filter(|&s| s > 0.0)
                                    .map(|s| peak as f64 / s),
                            );
                            fig.insert("peak_connected".into(), Some(peak as f64));
                            fig.insert("failed".into(), Some(out.report.failed as f64));
                            fig.insert("bots_limited".into(), Some(f64::from(u8::from(limited))));
                            fig.insert(
                                "bot_cpu_load_connecting".into(),
                                out.bot_cpu_load_connecting,
                            );
                        }
                        Err(e) => rec.error = Some(format!("{e:#}")),
                    }
                } else {
                    rec.error = Some("server missing".into());
                }
                eprintln!("{}", line(&rec));
                runs.push(rec);
            }
        }
    }

    // 3. Lane isolation, lanegate only: critical p99 without and with a
    // bulk flood at 10× the bulk limit.
    let isolation_rounds = if on("isolation") { args.repeats } else { 0 };
    for round in 0..isolation_rounds {
        for i in rotation(2, round) {
            let flood = i == 1;
            let case = if flood { "flood" } else { "noflood" };
            let load = |mut cfg: BotsConfig| {
                cfg.clients = plan.isolation_conns;
                cfg.connect_rate_per_s = RAMP_PER_S;
                cfg.duration = cfg.ramp() + Duration::from_millis(500) + plan.isolation_duration;
                cfg.reply_deadline = Duration::from_millis(500);
                only_lane(&mut cfg, Lane::Critical, 30.0);
                if flood {
                    cfg.flood = Some(Flood {
                        lane: Lane::Bulk,
                        rate_per_s: 10.0 * BULK_LIMIT_PER_S,
                    });
                }
                cfg
            };
            let bulk_figures = |rec: &mut RunRecord, out: &RunOutcome| {
                let bulk = &out.report.lanes.bulk;
                rec.figures
                    .insert("bulk_sent".into(), Some(bulk.sent as f64));
                rec.figures
                    .insert("bulk_received".into(), Some(bulk.received as f64));
            };
            let rec = record("isolation", ServerKind::Lanegate, case, round);
            let spec = available[ServerKind::Lanegate.name()]
                .then(|| lanegate_spec(ServerKind::Lanegate, &isolation_toml));
            any_limited |= fixed_load_run(
                rec,
                spec.as_ref(),
                load,
                bulk_figures,
                ticks_per_s,
                &mut runs,
            );
        }
    }

    // 4. Saturation: the highest offered load (over SATURATION_CONNS
    // connections, 150-byte datagrams) each candidate echoes with under
    // 0.1 % loss. The search stops at the first failing step, or when the
    // generator cannot offer a step (then the bots, not the server, were
    // the limit: `saturation_bots_limited`).
    let saturation_rounds = if on("saturation") {
        plan.saturation_rounds
    } else {
        0
    };
    for round in 0..saturation_rounds {
        for i in rotation(all.len(), round) {
            let kind = all[i];
            let mut rec = record("saturation", kind, "150B/100c", round);
            if !available[kind.name()] {
                rec.error = Some("server missing".into());
                eprintln!("{}", line(&rec));
                runs.push(rec);
                continue;
            }
            let mut passed: Option<f64> = None;
            let mut bots_were_limit = false;
            // Every step passed: the server's limit is above the top step.
            let mut at_ceiling = true;
            for &rate in &plan.saturation_steps {
                let load = |mut cfg: BotsConfig| {
                    cfg.clients = SATURATION_CONNS;
                    cfg.connect_rate_per_s = RAMP_PER_S;
                    cfg.duration = cfg.ramp() + Duration::from_millis(500) + plan.duration;
                    cfg.reply_deadline = Duration::from_millis(500);
                    only_lane(&mut cfg, Lane::Critical, rate / SATURATION_CONNS as f64);
                    cfg.lanes[Lane::Critical.index()].payload_bytes = 150;
                    cfg
                };
                match run_one(
                    &spec_of(kind),
                    load,
                    Duration::from_millis(100),
                    ticks_per_s,
                ) {
                    Ok(out) => {
                        let limited = bots_limited(&out);
                        let loss = out.report.lanes.critical.loss_percent;
                        eprintln!(
                            "saturation {} {rate} msg/s #{round}: loss={loss:.3}% bots_limited={limited}",
                            kind.name()
                        );
                        if loss >= SATURATION_LOSS_PERCENT {
                            bots_were_limit = limited;
                            at_ceiling = false;
                            break;
                        }
                        passed = Some(rate);
                        if limited {
                            bots_were_limit = true;
                            at_ceiling = false;
                            break;
                        }
                    }
                    Err(e) => {
                        rec.error = Some(format!("{rate} msg/s: {e:#}"));
                        at_ceiling = false;
                        break;
                    }
                }
            }
            any_limited |= bots_were_limit;
            rec.figures.insert("saturation_msg_per_s".into(), passed);
            rec.figures.insert(
                "saturation_bots_limited".into(),
                Some(f64::from(u8::from(bots_were_limit))),
            );
            rec.figures.insert(
                "saturation_at_ceiling".into(),
                Some(f64::from(u8::from(at_ceiling))),
            );
            eprintln!("{}", line(&rec));
            runs.push(rec);
        }
    }

    // 5. RTT while connections churn: 200 new connections a second, each
    // living one second and sending 25 critical datagrams a second (QUIC
    // servers: the handshakes are the point).
    let churners = [ServerKind::Lanegate, ServerKind::Quinn];
    let churn_rounds = if on("churn") { plan.churn_rounds } else { 0 };
    for round in 0..churn_rounds {
        for i in rotation(churners.len(), round) {
            let kind = churners[i];
            let load = |mut cfg: BotsConfig| {
                let n = CHURN_CONNECT_PER_S * plan.churn_duration.as_secs();
                cfg.clients = usize::try_from(n).unwrap_or(usize::MAX);
                cfg.connect_rate_per_s = CHURN_CONNECT_PER_S as f64;
                cfg.duration = CHURN_LIFETIME;
                cfg.reply_deadline = Duration::from_millis(500);
                only_lane(&mut cfg, Lane::Critical, CHURN_RATE_PER_S);
                cfg.lanes[Lane::Critical.index()].payload_bytes = 150;
                cfg
            };
            let rec = record("churn", kind, "200cps", round);
            let spec = available[kind.name()].then(|| spec_of(kind));
            any_limited |=
                fixed_load_run(rec, spec.as_ref(), load, |_, _| {}, ticks_per_s, &mut runs);
        }
    }

    let report = E2eReport::summarise(runs, setup, any_limited);
    report.write(&args.out)?;
    println!("{}", report.to_markdown());
    println!(
        "wrote {} and {}",
        args.out.join("e2e.json").display(),
        args.out.join("e2e.md").display()
    );
    Ok(())
}

/// One run at a fixed offered load (throughput, isolation, churn): the
/// swarm `load` makes against a fresh `spec` server (`None`: the server is
/// missing), its throughput figures and whatever `extra` adds in `rec`,
/// logged and kept in `runs`. Returns whether the generator was the limit.
fn fixed_load_run(
    mut rec: RunRecord,
    spec: Option<&ServerSpec>,
    load: impl FnOnce(BotsConfig) -> BotsConfig,
    extra: impl FnOnce(&mut RunRecord, &RunOutcome),
    ticks_per_s: u64,
    runs: &mut Vec<RunRecord>,
) -> bool {
    let mut limited = false;
    match spec.map(|spec| run_one(spec, load, Duration::from_millis(100), ticks_per_s)) {
        Some(Ok(out)) => {
            limited = throughput_figures(&mut rec, &out);
            extra(&mut rec, &out);
        }
        Some(Err(e)) => rec.error = Some(format!("{e:#}")),
        None => rec.error = Some("server missing".into()),
    }
    eprintln!("{}", line(&rec));
    runs.push(rec);
    limited
}

/// Starts a fresh server, runs the swarm `load` makes of its config, and
/// stops the server.
fn run_one(
    spec: &ServerSpec,
    load: impl FnOnce(BotsConfig) -> BotsConfig,
    sample_every: Duration,
    ticks_per_s: u64,
) -> anyhow::Result<RunOutcome> {
    let mut server = Server::start(spec)?;
    let cfg = load(server.bots()?);
    let swarm_exe = std::env::current_exe().context("this executable's path")?;
    let out = measure(&server, &swarm_exe, cfg, sample_every, ticks_per_s)?;
    if !server.alive() {
        bail!("{} exited during the run", spec.kind.name());
    }
    Ok(out)
}

/// Sets every lane's rate to 0 except `lane`, a datagram lane at `rate`.
fn only_lane(cfg: &mut BotsConfig, lane: Lane, rate: f64) {
    for l in &mut cfg.lanes {
        l.rate_per_s = 0.0;
    }
    let l = &mut cfg.lanes[lane.index()];
    l.rate_per_s = rate;
    l.transport = Transport::Datagram;
}

fn record(kind: &str, server: ServerKind, case: &str, round: usize) -> RunRecord {
    RunRecord {
        kind: kind.into(),
        server: server.name().into(),
        case: case.into(),
        round,
        ..RunRecord::default()
    }
}

/// CPU, RTT, loss and generator figures of a throughput run; returns
/// whether the generator was the limit.
fn throughput_figures(rec: &mut RunRecord, out: &RunOutcome) -> bool {
    let limited = bots_limited(out);
    let critical = &out.report.lanes.critical;
    let rtt = critical.rtt;
    let fig = &mut rec.figures;
    fig.insert("cpu_us_per_dgram".into(), out.cpu_us_per_dgram);
    fig.insert("rtt_p50_us".into(), rtt.map(|r| r.p50_us as f64));
    fig.insert("rtt_p99_us".into(), rtt.map(|r| r.p99_us as f64));
    fig.insert("rtt_p999_us".into(), rtt.map(|r| r.p999_us as f64));
    fig.insert("loss_percent".into(), Some(critical.loss_percent));
    fig.insert("sent".into(), Some(critical.sent as f64));
    fig.insert("send_lag_mean_us".into(), Some(critical.send_lag_mean_us));
    fig.insert("bot_cpu_load".into(), out.bot_cpu_load);
    fig.insert("failed".into(), Some(out.report.failed as f64));
    fig.insert("bots_limited".into(), Some(f64::from(u8::from(limited))));
    limited
}

/// One progress line per run, on stderr.
fn line(rec: &RunRecord) -> String {
    let mut s = format!("{} {} {} #{}:", rec.kind, rec.server, rec.case, rec.round);
    for (k, v) in &rec.figures {
        s.push_str(&format!(" {k}={}", fmt_value(*v)));
    }
    if let Some(e) = &rec.error {
        s.push_str(&format!(" error={e}"));
    }
    s
}

/// The lanegate configuration under test: gateway and shard on one core,
/// the `echo` game (the `demo` default also runs the arena, whose per-tick
/// broadcasts to every player of the zone swamp a 1000-player zone),
/// metrics off, handshake limits out of the way (every bot shares one
/// address), and the degradation ladder too (a saturated core would shed
/// and refuse what the harness measures; the ladder has its own tests). `throughput` raises the critical lane's limit so admission
/// passes the whole offered load; otherwise the lane limits are the
/// defaults and only the abuse close is disabled, so a flood is dropped by
/// admission for the whole run rather than closed. `io_backend` is named
/// (`"io_uring"` or `"portable"`), never `"auto"`, so a figure says which
/// backend made it: where io_uring is refused, the io_uring candidate fails
/// to start (null figures) instead of quietly measuring the fallback.
pub fn lanegate_config(core: usize, throughput: bool, io_backend: &str) -> String {
    let mut toml = format!(
        "[gateway]\ncores = [{core}]\nio_backend = \"{io_backend}\"\n\
         handshakes_per_ip_per_s = 1000000\n\
         handshake_burst = 1000000\nconnections_max = 20000\n\
         connections_per_ip_max = 1000000\nunvalidated_connections_max = 20000\n\
         retry_above_handshakes_per_s = 4294967295\nhandshakes_per_core_per_s = 0\ninitials_per_core_per_s = 0\n\n\
         [shards]\ncores = [{core}]\ngame = \"echo\"\n\n\
         [admission]\nabuse_drops_max = 1000000000\n\n\
         [overload]\nlag_full_us = 1000000000\nkernel_drops_per_s_full = 1000000000\n\
         handshakes_per_s_full = 1000000000\n\
         enter_percent = {{ shed_bulk = 197, defer_normal = 198, thin_high = 199, protect = 200 }}\n\n\
         [observability]\nmetrics_listen = \"off\"\n"
    );
    if throughput {
        toml.push_str("\n[lanes.limits.critical]\nrate_per_s = 1000000\nburst = 1000000\n");
    }
    toml
}

/// Builds the binaries that are missing, with the cargo that runs us (if
/// any). A failed build leaves the server missing.
fn build_missing(bins: &[(PathBuf, &str, &str)]) {
    let Some(cargo) = std::env::var_os("CARGO") else {
        return;
    };
    for (path, package, bin) in bins {
        if path.exists() {
            continue;
        }
        eprintln!("building {bin} (release)…");
        let status = std::process::Command::new(&cargo)
            .args(["build", "--release", "-p", package, "--bin", bin])
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("could not build {bin}; its figures will be missing");
        }
    }
}

/// CPU model, core count and load average, for the record.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    // Not `available_parallelism`: that honours this thread's pinning.
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("{model}, {cpus} CPUs, loadavg at start {}", load.join(" "))
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        quick: false,
        rate_total: 5_000.0,
        repeats: 3,
        out: PathBuf::from("target/bench"),
        lanegate: None,
        build: true,
        server_core: 0,
        bot_core: 1,
        portable: true,
        histogram_cost: false,
        cases: CASES.iter().map(|c| (*c).to_owned()).collect(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--quick" => args.quick = true,
            "--rate" => args.rate_total = value()?.parse().context("--rate")?,
            "--repeats" => args.repeats = value()?.parse().context("--repeats")?,
            "--out" => args.out = value()?.into(),
            "--lanegate" => args.lanegate = Some(value()?.into()),
            "--no-build" => args.build = false,
            "--no-portable" => args.portable = false,
            "--histogram-cost" => args.histogram_cost = true,
            "--cases" => {
                let list = value()?;
                args.cases = list.split(',').map(|c| c.trim().to_owned()).collect();
                if let Some(bad) = args.cases.iter().find(|c| !CASES.contains(&c.as_str())) {
                    bail!("--cases: unknown case {bad}; known: {}", CASES.join(","));
                }
            }
            "--server-core" => args.server_core = value()?.parse().context("--server-core")?,
            "--bot-core" => args.bot_core = value()?.parse().context("--bot-core")?,
            "-h" | "--help" => {
                println!(
                    "e2e [--quick] [--rate MSG_PER_S] [--repeats N] [--out DIR] \
                     [--lanegate PATH] [--no-build] [--no-portable] [--histogram-cost] [--server-core N] \
                     [--bot-core N] [--cases throughput,idle,isolation,saturation,churn]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown flag {other}; see --help"),
        }
    }
    if args.repeats == 0 || args.rate_total <= 0.0 {
        bail!("--repeats and --rate must be above zero");
    }
    Ok(args)
}
