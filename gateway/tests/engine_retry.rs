//! Retry under load (`gateway.retry_above_handshakes_per_s`,
//! `docs/protocol.md` §8): above the threshold, new connections from
//! unvalidated addresses get a stateless QUIC Retry; real clients answer it
//! and are welcomed one round trip later, and spoofed Initials that never
//! answer leave no connection state.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use lanegate_common::config::Config;

use support::{Client, ConnectOpts, World, ticket};

fn retry_above(per_s: u32) -> Config {
    let mut config = Config::default();
    config.gateway.retry_above_handshakes_per_s = per_s;
    config
}

#[test]
fn with_retry_always_on_clients_are_validated_then_welcomed() {
    let mut w = World::admit_all(retry_above(0));
    for p in 1..=3 {
        w.connect(&ticket(p));
    }
    w.settle();
    assert!(w.clients.iter().all(|c| c.welcomed()));
    assert_eq!(w.engine.counters().retries_sent, 3);
}

#[test]
fn past_the_threshold_later_handshakes_are_retried_and_still_get_in() {
    let mut w = World::admit_all(retry_above(2));
    for p in 1..=6 {
        w.connect(&ticket(p));
    }
    w.settle();
    assert!(w.clients.iter().all(|c| c.welcomed()));
    let c = w.engine.counters();
    assert_eq!(c.retries_sent, 4, "the 3rd to 6th of the second");
    assert_eq!(c.retry_engaged, 1);
    // Quiet for longer than the hold: off again, the next is accepted at once.
    w.run_for(Duration::from_secs(7));
    w.connect(&ticket(7));
    w.settle();
    assert!(w.clients[6].welcomed());
    assert_eq!(w.engine.counters().retries_sent, 4);
}

#[test]
fn spoofed_initials_under_retry_leave_no_state_and_get_less_than_they_sent() {
    let mut w = World::admit_all(retry_above(0));
    // One genuine Initial, replayed from 50 spoofed addresses that never
    // answer.
    let mut client = Client::new(w.now, &w.cert, 0, &ticket(1), ConnectOpts::default());
    let mut initial = Vec::new();
    let t = client.conn.poll_transmit(w.now, 1, &mut initial).unwrap();
    initial.truncate(t.size);
    assert!(initial.len() >= 1200);
    let mut buf = Vec::new();
    for i in 0..50u8 {
        let spoofed = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, i)), 40_000);
        w.engine
            .handle_datagram(w.now, spoofed, None, None, &initial, &mut w.links);
        let mut answers = 0;
        while let Some(t) = w.engine.poll_transmit(w.now, 1, &mut buf) {
            answers += 1;
            assert_eq!(t.destination, spoofed);
            assert!(
                t.size < initial.len(),
                "{} bytes for {}",
                t.size,
                initial.len()
            );
            // A long header of type Retry (RFC 9000 §17.2.5).
            assert_eq!(buf[0] & 0xf0, 0xf0);
        }
        assert_eq!(answers, 1);
    }
    assert_eq!(w.engine.connections_open(), 0);
    assert_eq!(w.engine.counters().retries_sent, 50);
    assert_eq!(w.engine.next_timeout(), None, "no connection, no timer");
}

/// A Retry flood costs no memory that stays: each reply's buffer comes back
/// for the next one (it used to leave an empty buffer behind per reply in
/// the spares, which grew without bound).
#[test]
fn a_retry_flood_recycles_its_reply_buffers() {
    let mut w = World::admit_all(retry_above(0));
    let mut client = Client::new(w.now, &w.cert, 0, &ticket(1), ConnectOpts::default());
    let mut initial = Vec::new();
    let t = client.conn.poll_transmit(w.now, 1, &mut initial).unwrap();
    initial.truncate(t.size);
    let mut buf = Vec::with_capacity(2048);
    let mut flood = |w: &mut World<_>, n: u32| {
        for i in 0..n {
            let [_, _, hi, lo] = i.to_be_bytes();
            let ip = Ipv4Addr::new(198, 51, hi, lo);
            let spoofed = SocketAddr::new(IpAddr::V4(ip), 40_000);
            // 1 ms apart: within the core's Initial budget (4000/s).
            w.now += Duration::from_millis(1);
            w.engine
                .handle_datagram(w.now, spoofed, None, None, &initial, &mut w.links);
            while w.engine.poll_transmit(w.now, 1, &mut buf).is_some() {}
        }
    };
    flood(&mut w, 100);
    let info = allocation_counter::measure(|| flood(&mut w, 5_000));
    assert!(
        info.bytes_current < 4_096,
        "{} bytes kept after 5000 Retries",
        info.bytes_current
    );
    assert_eq!(w.engine.counters().retries_sent, 5_100);
}
