//! The gateway's real admission policy ([`GovernorAdmission`]) behind the
//! engine, driven by real QUIC clients on a virtual clock: per-lane limits
//! (`docs/protocol.md` §8), the abuse close, and per-source-IP handshake
//! limits.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use lanegate_common::config::{Config, LaneLimit};
use lanegate_common::ids::{PlayerId, ZoneId};
use lanegate_common::lanes::Lane;
use lanegate_common::wire::{CloseCode, types};
use lanegate_gateway::engine::admit::GovernorAdmission;

use support::{Client, ConnectOpts, Seen, World, code, ticket};

const BULK: Lane = Lane::Bulk;
const CRITICAL: Lane = Lane::Critical;

/// Bulk limited to 10/s with a burst of 5; abuse after `drops_max` drops
/// in `window_ms`.
fn config(drops_max: u32, window_ms: u64) -> Config {
    let mut config = Config::default();
    config.gateway.connections_max = 8;
    config.lanes.limits.bulk = LaneLimit::new(10, 5);
    config.admission.abuse_drops_max = drops_max;
    config.admission.abuse_window_ms = window_ms;
    config
}

fn established(config: Config) -> World<GovernorAdmission> {
    let mut w = World::governed(config);
    w.shard.echo = false;
    w.connect_welcomed(&ticket(7));
    w
}

/// A datagram of `ty` carrying `seq`.
fn datagram(ty: u16, seq: u64) -> Vec<u8> {
    let mut d = ty.to_be_bytes().to_vec();
    d.extend_from_slice(&seq.to_be_bytes());
    d
}

#[test]
fn bulk_over_its_limit_is_cut_to_burst_plus_rate_and_critical_passes() {
    let mut w = established(config(u32::MAX, 10_000));
    // One virtual second: bulk every 5 ms (200/s against 10/s), critical at
    // 60 Hz in between (within its default 240/s).
    let (mut bulk_sent, mut critical_sent) = (0u64, 0u64);
    for step in 0..200u64 {
        w.clients[0].send_datagram(&datagram(types::ECHO_BULK, step));
        bulk_sent += 1;
        if step % 3 == 0 {
            w.clients[0].send_datagram(&datagram(types::ECHO_CRITICAL, step));
            critical_sent += 1;
        }
        w.run_for(Duration::from_millis(5));
    }
    let c = *w.engine.counters();
    let bulk_got = w.shard_got(types::ECHO_BULK) as u64;
    // The first message arrives after the lane opened (full bucket), the
    // last one 995 ms later: burst + rate * 0.995 s = 14.95, give or take one
    // (whole messages only: 14 or 15).
    assert!(
        (14..=15).contains(&bulk_got),
        "bulk admitted {bulk_got} of {bulk_sent}"
    );
    assert_eq!(c.admit_dropped[BULK.index()], bulk_sent - bulk_got);
    assert_eq!(w.shard_got(types::ECHO_CRITICAL) as u64, critical_sent);
    assert_eq!(c.admit_dropped[CRITICAL.index()], 0);
    assert_eq!(c.admit_dropped.iter().sum::<u64>(), bulk_sent - bulk_got);
    assert_eq!(c.datagrams_in, bulk_sent + critical_sent);
    let totals = w.engine.admission_mut().table.totals();
    assert_eq!(totals.dropped[BULK.index()], bulk_sent - bulk_got);
    assert_eq!(w.clients[0].closed, None);
}

#[test]
fn limits_apply_to_stream_frames_as_to_datagrams() {
    let mut w = established(config(u32::MAX, 10_000));
    // Ten bulk frames at once on the control stream: the burst (5) passes.
    let mut frames = Vec::new();
    for i in 0..10u8 {
        w.clients[0]
            .session
            .encode(
                types::ECHO_BULK,
                &[i],
                lanegate_common::wire::Transport::Stream,
                &mut frames,
            )
            .unwrap();
    }
    w.clients[0].write_control(&frames);
    w.settle();
    assert_eq!(w.shard_got(types::ECHO_BULK), 5);
    assert_eq!(w.engine.counters().admit_dropped[BULK.index()], 5);
    assert_eq!(w.clients[0].closed, None);
}

#[test]
fn a_flood_beyond_the_abuse_threshold_is_closed_with_abuse() {
    let mut w = established(config(20, 1_000));
    // 10 bulk datagrams every 10 ms: far over 10/s, 20 drops within 1 s.
    let mut sent = 0u64;
    for step in 0..100u64 {
        for i in 0..10 {
            w.clients[0].send_datagram(&datagram(types::ECHO_BULK, step * 10 + i));
            sent += 1;
        }
        w.run_for(Duration::from_millis(10));
        if w.clients[0].closed.is_some() {
            break;
        }
    }
    assert_eq!(w.clients[0].close_code(), code(CloseCode::Abuse));
    assert_eq!(code(CloseCode::Abuse), Some(0x07));
    // Closed within the first abuse window, at the 21st drop.
    assert!(sent <= 40, "closed only after {sent} datagrams");
    let c = *w.engine.counters();
    assert_eq!(c.admission_closes, 1);
    assert_eq!(
        c.admit_dropped[BULK.index()],
        20,
        "the closing drop is not a lane drop"
    );
    assert_eq!(w.shard_got(types::ECHO_BULK), 5, "only the burst passed");
    assert_eq!(
        w.seen.last(),
        Some(&Seen::Leave(PlayerId(7), ZoneId(42))),
        "the shard is told the session left"
    );
    assert_eq!(w.engine.admission_mut().table.totals().abuse_closes, 1);
    w.run_for(Duration::from_secs(2));
    assert_eq!(w.engine.counters().sessions_open, 0);
    assert_eq!(w.engine.connections_open(), 0);
}

#[test]
fn a_well_paced_client_is_never_closed_over_many_windows() {
    let mut w = established(config(20, 1_000));
    // Exactly at the limit, 10/s, for 12 one-second windows: never a drop.
    for step in 0..120u64 {
        w.clients[0].send_datagram(&datagram(types::ECHO_BULK, step));
        w.run_for(Duration::from_millis(100));
    }
    assert_eq!(w.engine.counters().admit_dropped, [0; Lane::COUNT]);
    assert_eq!(w.shard_got(types::ECHO_BULK), 120);
    // Then 50 % over the limit for 12 more windows: 5 drops a second, 20
    // allowed per window. Dropped, never closed.
    for step in 0..180u64 {
        w.clients[0].send_datagram(&datagram(types::ECHO_BULK, step));
        w.run_for(Duration::from_micros(66_667));
    }
    let c = *w.engine.counters();
    assert!(
        c.admit_dropped[BULK.index()] >= 40,
        "dropped {:?}",
        c.admit_dropped
    );
    assert_eq!(w.clients[0].closed, None);
    assert_eq!(c.admission_closes, 0);
    assert_eq!(c.sessions_open, 1);
}

#[test]
fn handshakes_beyond_the_burst_from_one_address_get_a_retry_then_come_in() {
    let mut config = config(u32::MAX, 10_000);
    config.gateway.handshakes_per_ip_per_s = 1;
    config.gateway.handshake_burst = 3;
    let mut w = World::governed(config);
    let crowded = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    for player in 0..5 {
        w.connect_with(&ticket(player), ConnectOpts::from_ip(crowded));
    }
    // Well before the next handshake token (1 s) and the clients' own
    // retransmissions: the two over the burst were sent a Retry, proved
    // their address and were accepted without spending the budget.
    w.run_for(Duration::from_millis(300));
    assert!(w.clients.iter().all(|c| c.welcomed()));
    let c = *w.engine.counters();
    assert_eq!(c.handshakes_ignored, 2);
    assert_eq!(c.retries_sent, 2);
    let h = w.engine.admission_mut().handshakes.counters();
    assert_eq!(
        (h.allowed, h.refused),
        (3, 2),
        "validated handshakes are not charged"
    );
}

#[test]
fn junk_initials_forging_an_address_cannot_lock_out_its_players() {
    let mut w = World::governed(config(u32::MAX, 10_000));
    let nat = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    // A genuine Initial with its AEAD tag broken: its header decodes, so
    // QUIC yields it as a new connection, but its payload never decrypts.
    let mut forger = Client::new(w.now, &w.cert, 0, &ticket(1), ConnectOpts::from_ip(nat));
    let mut junk = Vec::new();
    let t = forger.conn.poll_transmit(w.now, 1, &mut junk).unwrap();
    junk.truncate(t.size);
    let last = junk.len() - 1;
    junk[last] ^= 0xff;
    for port in 0..100u16 {
        let from = SocketAddr::new(nat, 20_000 + port);
        w.engine
            .handle_datagram(w.now, from, None, None, &junk, &mut w.links);
    }
    while w.engine.poll_transmit(w.now, 1, &mut Vec::new()).is_some() {}
    assert_eq!(w.engine.connections_open(), 0);
    // The players behind the address still come in (past the budget the
    // junk spent, by a Retry).
    for player in 10..15 {
        w.connect_with(&ticket(player), ConnectOpts::from_ip(nat));
    }
    w.run_for(Duration::from_millis(300));
    assert!(w.clients.iter().all(|c| c.welcomed()));
}
