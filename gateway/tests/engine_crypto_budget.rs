//! The handshake defences that bound what new connections cost a core
//! (issue 13 §3): the crypto budget (`gateway.handshakes_per_core_per_s`),
//! which ignores handshakes past it, sending nothing, until the clients'
//! resent Initials fit; and the handshake timeout
//! (`gateway.handshake_timeout_ms`), which frees the slot of a connection
//! whose handshake never finishes long before the idle timeout would; and
//! the Initial budget (`gateway.initials_per_core_per_s`), which drops a
//! flood's Initials unread.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use lanegate_common::config::Config;

use support::{Client, ConnectOpts, World, ticket};

fn budget(per_s: u32, burst: u32) -> Config {
    let mut config = Config::default();
    config.gateway.handshakes_per_core_per_s = per_s;
    config.gateway.handshake_core_burst = burst;
    config
}

#[test]
fn handshakes_past_the_budget_are_ignored_then_get_in_when_it_refills() {
    let mut w = World::admit_all(budget(4, 3));
    for p in 1..=8 {
        w.connect(&ticket(p));
    }
    // Everyone's first Initial, at one instant: the burst is accepted, the
    // rest ignored with nothing sent back.
    while w.pump() {}
    let c = w.engine.counters();
    assert_eq!(c.handshakes_over_budget, 5);
    assert_eq!(c.connections_open, 3);
    let answered = w.clients.iter().filter(|c| c.packets_in > 0).count();
    assert_eq!(answered, 3, "an ignored Initial gets no reply");
    // Their stacks resend; at 4 a second, all are in within a few seconds.
    w.run_for(Duration::from_secs(6));
    for (i, c) in w.clients.iter().enumerate() {
        assert!(c.welcomed(), "client {i}: {:?}", c.closed);
    }
}

#[test]
fn a_handshake_that_never_finishes_is_closed_at_the_handshake_timeout() {
    let mut config = Config::default();
    config.gateway.handshake_timeout_ms = 2_000;
    let mut w = World::admit_all(config);
    // An Initial from an address that never answers (spoofed).
    let mut client = Client::new(w.now, &w.cert, 0, &ticket(1), ConnectOpts::default());
    let mut initial = Vec::new();
    let t = client.conn.poll_transmit(w.now, 1, &mut initial).unwrap();
    initial.truncate(t.size);
    let spoofed = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)), 40_000);
    w.engine
        .handle_datagram(w.now, spoofed, None, None, &initial, &mut w.links);
    assert_eq!(w.engine.counters().connections_open, 1);

    w.run_for(Duration::from_millis(1_900));
    assert_eq!(w.engine.counters().handshake_timeouts, 0, "not yet");
    w.run_for(Duration::from_millis(200));
    assert_eq!(
        w.engine.counters().handshake_timeouts,
        1,
        "closed at 2 s, not at the 10 s idle timeout"
    );
    assert_eq!(
        w.engine.counters().connections_lost,
        0,
        "counted once, as a handshake timeout"
    );
    // The close drains (QUIC's three probe timeouts), then the slot is free,
    // still well before the idle timeout.
    w.run_for(Duration::from_secs(5));
    assert_eq!(w.engine.counters().connections_open, 0);
}

#[test]
fn initials_past_the_initial_budget_are_dropped_unread_and_unanswered() {
    let mut config = Config::default();
    config.gateway.initials_per_core_per_s = 100;
    config.gateway.initial_core_burst = 10;
    config.gateway.retry_above_handshakes_per_s = 0;
    let mut w = World::admit_all(config);
    let mut client = Client::new(w.now, &w.cert, 0, &ticket(1), ConnectOpts::default());
    let mut initial = Vec::new();
    let t = client.conn.poll_transmit(w.now, 1, &mut initial).unwrap();
    initial.truncate(t.size);
    let mut buf = Vec::new();
    let mut answered = 0;
    // 50 at once from spoofed addresses: the burst gets its Retry, the
    // rest nothing at all.
    for i in 0..50u8 {
        let spoofed = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, i)), 40_000);
        w.engine
            .handle_datagram(w.now, spoofed, None, None, &initial, &mut w.links);
        while w.engine.poll_transmit(w.now, 1, &mut buf).is_some() {
            answered += 1;
        }
    }
    let c = w.engine.counters();
    assert_eq!((answered, c.retries_sent), (10, 10));
    assert_eq!(c.initials_over_budget, 40);
    assert_eq!(c.packets_undecodable, 0, "dropped before QUIC read them");
    // A second later the budget has refilled: a real client gets in.
    w.run_for(Duration::from_secs(1));
    w.connect(&ticket(2));
    w.run_for(Duration::from_secs(1));
    assert!(w.clients.last().unwrap().welcomed());
}
