//! `GET /status`: one screen of plain text for a person at a terminal
//! (`curl http://127.0.0.1:9464/status`), ending the first line with a
//! one-word verdict: `OK`, or `DEGRADED` followed by the reasons.
//!
//! The verdict only names what needs a look now: a shard stalled or over
//! its tick budget, messages lost between gateway and shards in the last
//! second or two, a core that stopped publishing. Admission drops are the
//! limits doing their job, so they are shown but do not degrade; the alert
//! rules (`deploy/prometheus/alerts.yml`) watch their trend instead.

use std::fmt::{self, Write};
use std::time::Duration;

use lanegate_common::lanes::Lane;

use super::{CORE_STALE_AFTER, CoreReading, Sample, VERSION};

/// Why the gateway is not OK; empty when it is.
pub fn verdict(s: &Sample) -> Vec<String> {
    let mut reasons = Vec::new();
    for (i, core) in s.cores.iter().enumerate() {
        match core {
            None => reasons.push(format!("core {i} not publishing yet")),
            Some(c) if s.now.saturating_duration_since(c.latest.at) > CORE_STALE_AFTER => {
                reasons.push(format!("core {i} not publishing"));
            }
            Some(c) => {
                let o = c.latest.overload;
                if o.stuck {
                    reasons.push(format!(
                        "core {i} stuck at overload level {}: add capacity or drain",
                        o.level
                    ));
                } else if o.level > 0 {
                    reasons.push(format!("core {i} at overload level {}", o.level));
                }
            }
        }
    }
    for h in &s.shards {
        if h.fenced {
            reasons.push(format!("shard {} failed over", h.shard));
        } else if h.stalled {
            reasons.push(format!("shard {} stalled", h.shard));
        }
        if h.level > 0 {
            reasons.push(format!("shard {} at overload level {}", h.shard, h.level));
        }
        if h.tick_p99_us > s.tick_budget_us {
            reasons.push(format!(
                "shard {} tick p99 {} over budget {}",
                h.shard,
                ms(h.tick_p99_us),
                ms(s.tick_budget_us)
            ));
        }
    }
    for lane in Lane::ALL {
        let recent = s
            .cores
            .iter()
            .flatten()
            .any(|c| recent(c, |snap| snap.ring_dropped(lane)) > 0);
        if recent {
            reasons.push(format!("ring drops on lane {}", lane.name()));
        }
    }
    let steer_drops = s
        .cores
        .iter()
        .flatten()
        .any(|c| recent(c, |snap| snap.steer.full + snap.steer.oversize) > 0);
    if steer_drops {
        reasons.push("steering drops".to_owned());
    }
    reasons
}

/// Appends the status page for `s` to `out`.
pub fn render(s: &Sample, out: &mut String) -> fmt::Result {
    let reasons = verdict(s);
    let word = if reasons.is_empty() { "OK" } else { "DEGRADED" };
    write!(out, "lanegate {VERSION}  {word}")?;
    if !reasons.is_empty() {
        write!(out, ": {}", reasons.join("; "))?;
    }
    writeln!(out)?;
    let state = if s.draining { "draining" } else { "serving" };
    writeln!(out, "state     {state}")?;
    writeln!(out, "uptime    {}", uptime(s.uptime))?;
    writeln!(out)?;
    writeln!(
        out,
        "core  backend   conns  sessions   udp in/s  to shard/s  out/s     admission drops c/h/n/b  ring drops c/h/n/b  level"
    )?;
    for (i, core) in s.cores.iter().enumerate() {
        let Some(c) = core else {
            writeln!(out, "{i:<4}  (not publishing yet)")?;
            continue;
        };
        let l = &c.latest;
        let per_lane =
            |f: &dyn Fn(Lane) -> u64| Lane::ALL.map(|lane| f(lane).to_string()).join("/");
        writeln!(
            out,
            "{i:<4}  {:<8}  {:<5}  {:<9}  {:<8}  {:<10}  {:<8}  {:<23}  {:<18}  {}",
            l.backend.name(),
            l.engine.connections_open,
            l.engine.sessions_open,
            rate(c, |x| x.engine.udp_in),
            rate(c, |x| x.engine.messages_to_shard),
            rate(c, |x| x.engine.datagrams_out + x.engine.stream_messages_out),
            per_lane(&|lane| l.engine.admit_dropped[lane.index()]),
            per_lane(&|lane| l.ring_dropped(lane)),
            l.overload.level,
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "shard  tick p50  tick p99  tick max  budget    overruns  stalled  stalls  restarts  zones  players"
    )?;
    for h in &s.shards {
        writeln!(
            out,
            "{:<5}  {:<8}  {:<8}  {:<8}  {:<8}  {:<8}  {:<7}  {:<6}  {:<8}  {:<5}  {}",
            h.shard.to_string(),
            ms(h.tick_p50_us),
            ms(h.tick_p99_us),
            ms(h.tick_max_us),
            ms(s.tick_budget_us),
            h.overruns,
            match (h.fenced, h.stalled) {
                (true, _) => "FENCED",
                (false, true) => "YES",
                (false, false) => "no",
            },
            h.stalls,
            h.restarts,
            h.zones,
            h.players,
        )?;
    }
    Ok(())
}

/// How much `f` grew between the reading's earlier and latest snapshots;
/// with no earlier one, since start.
fn recent(c: &CoreReading, f: impl Fn(&super::CoreSnapshot) -> u64) -> u64 {
    let base = c.earlier.as_ref().map_or(0, &f);
    f(&c.latest).saturating_sub(base)
}

/// `f`'s rate per second between the earlier and latest snapshots, or `-`.
fn rate(c: &CoreReading, f: impl Fn(&super::CoreSnapshot) -> u64) -> String {
    let Some(earlier) = &c.earlier else {
        return "-".to_owned();
    };
    let secs = c
        .latest
        .at
        .saturating_duration_since(earlier.at)
        .as_secs_f64();
    if secs <= 0.0 {
        return "-".to_owned();
    }
    let delta = f(&c.latest).saturating_sub(f(earlier));
    // Rates are for reading, not arithmetic: f64's 53 bits and whole
    // numbers are plenty.
    let per_s = delta as f64 / secs;
    format!("{per_s:.0}")
}

fn ms(us: u32) -> String {
    format!("{:.1} ms", f64::from(us) / 1000.0)
}

fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}h {:02}m {:02}s", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use lanegate_common::ids::ShardId;
    use lanegate_common::link::ShardHealth;
    use lanegate_shard::port::DropReason;
    use lanegate_udp::BackendKind;

    use super::super::CoreSnapshot;
    use super::*;

    fn healthy() -> Sample {
        let now = Instant::now();
        let earlier = CoreSnapshot::empty(now - Duration::from_secs(1), BackendKind::Portable);
        let mut latest = CoreSnapshot::empty(now, BackendKind::Portable);
        latest.engine.udp_in = 500;
        latest.engine.connections_open = 3;
        latest.engine.sessions_open = 3;
        // Admission drops alone are the limits at work, not a problem.
        latest.engine.admit_dropped[Lane::Bulk.index()] = 40;
        Sample {
            now,
            cores: vec![Some(CoreReading {
                latest,
                earlier: Some(earlier),
            })],
            shards: vec![ShardHealth {
                shard: ShardId(0),
                tick_p50_us: 800,
                tick_p99_us: 2_000,
                tick_max_us: 3_000,
                ..ShardHealth::default()
            }],
            shard_latency: Vec::new(),
            socket_drops: vec![None],
            draining: false,
            tick_budget_us: 10_000,
            uptime: Duration::from_secs(3725),
            started_unix_s: 0.0,
            monitor: None,
        }
    }

    fn page(s: &Sample) -> String {
        let mut out = String::new();
        render(s, &mut out).unwrap();
        out
    }

    #[test]
    fn a_healthy_gateway_is_ok_and_shows_its_numbers() {
        let s = healthy();
        assert!(verdict(&s).is_empty());
        let p = page(&s);
        let first = p.lines().next().unwrap();
        assert_eq!(first, format!("lanegate {VERSION}  OK"));
        assert!(p.contains("state     serving"), "{p}");
        assert!(p.contains("uptime    1h 02m 05s"), "{p}");
        assert!(p.contains("portable"), "{p}");
        assert!(p.contains("0/0/0/40"), "{p}");
        assert!(p.contains(" 500 "), "a rate per second: {p}");
        assert!(p.contains("2.0 ms"), "{p}");
        assert!(p.lines().count() < 25, "one screen");
    }

    #[test]
    fn stalls_overruns_and_recent_ring_drops_degrade() {
        let mut s = healthy();
        s.shards[0].stalled = true;
        s.shards[0].tick_p99_us = 12_500;
        let c = s.cores[0].as_mut().unwrap();
        c.latest
            .link_drops
            .add(DropReason::RingFull, Lane::Normal, 3);
        c.latest
            .link_drops
            .add(DropReason::PoolEmpty, Lane::Critical, 1);
        let reasons = verdict(&s);
        assert_eq!(
            reasons,
            [
                "shard 0 stalled",
                "shard 0 tick p99 12.5 ms over budget 10.0 ms",
                "ring drops on lane critical",
                "ring drops on lane normal",
            ]
        );
        let first = page(&s).lines().next().unwrap().to_owned();
        assert!(first.ends_with(&format!("DEGRADED: {}", reasons.join("; "))));
    }

    #[test]
    fn old_ring_drops_do_not_degrade_but_a_silent_core_does() {
        let mut s = healthy();
        let c = s.cores[0].as_mut().unwrap();
        c.latest
            .link_drops
            .add(DropReason::RingFull, Lane::Normal, 3);
        c.earlier
            .as_mut()
            .unwrap()
            .link_drops
            .add(DropReason::RingFull, Lane::Normal, 3);
        assert!(verdict(&s).is_empty());
        s.now += CORE_STALE_AFTER * 2;
        s.cores.push(None);
        assert_eq!(
            verdict(&s),
            ["core 0 not publishing", "core 1 not publishing yet"]
        );
    }

    #[test]
    fn an_overload_level_degrades_and_a_stuck_one_says_what_to_do() {
        let mut s = healthy();
        let c = s.cores[0].as_mut().unwrap();
        c.latest.overload.level = 2;
        assert_eq!(verdict(&s), ["core 0 at overload level 2"]);
        let c = s.cores[0].as_mut().unwrap();
        c.latest.overload.stuck = true;
        assert_eq!(
            verdict(&s),
            ["core 0 stuck at overload level 2: add capacity or drain"]
        );
    }

    #[test]
    fn draining_is_a_state_not_a_fault() {
        let mut s = healthy();
        s.draining = true;
        let p = page(&s);
        assert!(p.starts_with(&format!("lanegate {VERSION}  OK\n")), "{p}");
        assert!(p.contains("state     draining"), "{p}");
    }
}
