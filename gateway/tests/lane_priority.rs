//! Outbound lane priority through the whole path of `sim`
//! (`docs/protocol.md` §3, `engine/egress.rs`): a client behind a slow
//! downlink, so the gateway's congestion window stays small, with a backlog
//! of `bulk` replies far beyond what the link carries, still gets each
//! `critical` reply at once, reliable or datagram; the `bulk` excess is
//! dropped and counted in its lane, never in `critical`'s.

#![allow(clippy::unwrap_used)]

mod sim;
mod support;

use std::time::Duration;

use quinn_proto::Dir;

use lanegate_client::session::Event;
use lanegate_common::config::{Config, LaneLimit};
use lanegate_common::ids::ZoneId;
use lanegate_common::lanes::Lane;
use lanegate_common::wire::{Transport, types};
use lanegate_shard::games::Echo;

use sim::net::{Bottleneck, Conditions};
use sim::{Sim, Trace, identity};
use support::ticket_in;

/// 50 KB/s (400 kbit/s) with 6 KB of router buffer: about 120 ms of queue.
const DOWNLINK: Bottleneck = Bottleneck {
    bytes_per_s: 50_000,
    queue_bytes_max: 6_000,
};
/// A critical request every this often, for this long.
const CRITICAL_EVERY: Duration = Duration::from_millis(100);
const RUN: Duration = Duration::from_secs(4);
/// Bulk requests: 4 KB every 20 ms, 200 KB/s, four times the downlink.
const BULK_EVERY: Duration = Duration::from_millis(20);
const BULK_PAYLOAD: usize = 4_000;

fn sim() -> Sim<Echo> {
    let mut config = Config::default();
    // The client may ask for all the bulk and high it likes; the downlink
    // is the limit.
    config.lanes.limits.bulk = LaneLimit::new(10_000, 10_000);
    config.lanes.limits.high = LaneLimit::new(10_000, 10_000);
    let conditions = Conditions {
        downlink: Some(DOWNLINK),
        ..Conditions::clean()
    };
    let mut sim = Sim::new(&config, &identity(), 1, |_| Echo, 11, conditions);
    sim.connect(&ticket_in(1, ZoneId(1)));
    sim.run_for(Duration::from_secs(1));
    assert!(sim.clients[0].welcomed());
    sim
}

/// When (since the simulation began) the client saw the echo of `ty` with
/// sequence number `seq` on `transport`.
fn arrival(sim: &Sim<Echo>, ty: u16, seq: u32, transport: Transport) -> Option<Duration> {
    sim.trace.iter().find_map(|t| match t {
        Trace::Client {
            at,
            event:
                Event::Message {
                    ty: got,
                    payload,
                    transport: how,
                },
            ..
        } if *got == ty && *how == transport && payload.get(..4) == Some(&seq.to_be_bytes()) => {
            Some(*at)
        }
        _ => None,
    })
}

/// A backlog of reliable `lane` echoes (type `ty`) far beyond what the
/// link carries, with a critical echo every 100 ms on the control stream
/// and as a datagram: every critical reply comes back within a few hundred
/// milliseconds (the router's 120 ms queue, a tick, a round trip), never
/// behind the backlog (seconds of it), and the excess is dropped in
/// `lane` only.
fn critical_passes_a_backlog_of(lane: Lane, ty: u16) {
    let mut sim = sim();
    // The backlog's requests go on a client stream of their own, so that
    // the client's own flow control (its window updates come over the slow
    // downlink too) never holds up its critical requests.
    let flood_stream = sim.clients[0].conn.streams().open(Dir::Uni).unwrap();
    let mut flood_out: Vec<u8> = Vec::new();
    let mut sent = Vec::new();
    let mut flood_seq = 0u32;
    let mut critical_seq = 0u32;
    let t0 = sim.elapsed();
    while sim.elapsed() < t0 + RUN {
        if sim.elapsed() >= t0 + CRITICAL_EVERY * critical_seq {
            let seq = critical_seq.to_be_bytes();
            let frame = sim.clients[0].frame(types::ECHO_CRITICAL, &seq);
            sim.clients[0].write_control(&frame);
            let mut datagram = types::ECHO_CRITICAL.to_be_bytes().to_vec();
            datagram.extend_from_slice(&seq);
            sim.clients[0].send_datagram(&datagram);
            sent.push((critical_seq, sim.elapsed()));
            critical_seq += 1;
        }
        let mut payload = flood_seq.to_be_bytes().to_vec();
        payload.resize(BULK_PAYLOAD, 0xb0);
        flood_out.extend(sim.clients[0].frame(ty, &payload));
        let conn = &mut sim.clients[0].conn;
        if let Ok(n) = conn.send_stream(flood_stream).write(&flood_out) {
            flood_out.drain(..n);
        }
        flood_seq += 1;
        sim.run_for(BULK_EVERY);
    }
    sim.run_for(Duration::from_secs(2));

    let mut worst = Duration::ZERO;
    for &(seq, at) in &sent {
        for transport in [Transport::Stream, Transport::Datagram] {
            let got = arrival(&sim, types::ECHO_CRITICAL, seq, transport)
                .unwrap_or_else(|| panic!("critical {seq} on {transport:?} never came back"));
            worst = worst.max(got - at);
        }
    }
    assert!(
        worst < Duration::from_millis(400),
        "a critical reply took {worst:?} behind {lane}"
    );

    // The backlog was real: far more was asked than the link could carry,
    // some got through on the lane's own stream, and the excess was
    // dropped in that lane only.
    let flood_back = (0..flood_seq)
        .filter(|&s| arrival(&sim, ty, s, Transport::Stream).is_some())
        .count();
    let congested = sim.engine.counters().out_congested;
    assert!(flood_back > 10, "only {flood_back} {lane} replies arrived");
    assert!(
        flood_back < flood_seq as usize / 2,
        "{flood_back} of {flood_seq} {lane} replies arrived: the link was not congested"
    );
    assert!(congested[lane.index()] > 0, "{congested:?}");
    assert_eq!(congested[Lane::Critical.index()], 0, "{congested:?}");
}

#[test]
fn critical_replies_pass_a_bulk_backlog_on_a_congested_link() {
    critical_passes_a_backlog_of(Lane::Bulk, types::ECHO_BULK);
}

/// `high`'s stream has a higher QUIC priority than `bulk`'s, and still
/// below the control stream's.
#[test]
fn critical_replies_pass_a_high_backlog_on_a_congested_link() {
    critical_passes_a_backlog_of(Lane::High, types::ECHO_HIGH);
}

#[test]
fn bulk_datagrams_past_their_share_are_dropped_and_critical_ones_are_not() {
    let mut sim = sim();
    let mut critical = Vec::new();
    for round in 0..100u32 {
        // Eight largest bulk datagrams a round, with one critical one in
        // the middle of them.
        for k in 0..8u32 {
            let mut d = types::ECHO_BULK.to_be_bytes().to_vec();
            d.extend_from_slice(&(round * 8 + k).to_be_bytes());
            d.resize(1_000, 0xb1);
            sim.clients[0].send_datagram(&d);
            if k == 4 {
                let mut d = types::ECHO_CRITICAL.to_be_bytes().to_vec();
                d.extend_from_slice(&round.to_be_bytes());
                sim.clients[0].send_datagram(&d);
                critical.push((round, sim.elapsed()));
            }
        }
        sim.run_for(Duration::from_millis(40));
    }
    sim.run_for(Duration::from_secs(1));
    // The slow link's router drops what overflows its queue, whatever the
    // lane; of what the gateway sent, critical never waited behind bulk.
    let mut critical_back = 0;
    let mut worst = Duration::ZERO;
    for (seq, at) in critical {
        if let Some(got) = arrival(&sim, types::ECHO_CRITICAL, seq, Transport::Datagram) {
            critical_back += 1;
            worst = worst.max(got - at);
        }
    }
    let bulk_back = (0..800)
        .filter(|&s| arrival(&sim, types::ECHO_BULK, s, Transport::Datagram).is_some())
        .count();
    let congested = sim.engine.counters().out_congested;
    // 200 KB/s of bulk asked for, 50 KB/s carried: the gateway dropped the
    // excess in bulk's lane, and critical's share kept room for critical.
    assert!(congested[Lane::Bulk.index()] > 100, "{congested:?}");
    assert_eq!(congested[Lane::Critical.index()], 0, "{congested:?}");
    assert!(
        critical_back >= 95,
        "{critical_back} of 100 critical replies"
    );
    assert!(
        bulk_back < 400,
        "{bulk_back} of 800 bulk replies: not congested"
    );
    assert!(
        worst < Duration::from_millis(300),
        "a critical datagram took {worst:?}"
    );
}
