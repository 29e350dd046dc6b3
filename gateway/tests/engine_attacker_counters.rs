//! What an attacker does shows in the engine's counters (issue 13 §4):
//! garbage the endpoint drops, each kind of stateless reply it sends, and
//! handshakes that time out, which are not a player's leave.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use lanegate_common::config::Config;
use lanegate_gateway::engine::AdmitAll;
use lanegate_gateway::engine::stateless::StatelessCounts;

use support::{Client, ConnectOpts, World, ticket};

const ATTACKER: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 9)),
    40_000,
);

fn world() -> World<AdmitAll> {
    World::admit_all(Config::default())
}

/// Feeds `bytes` to the engine from the attacker; returns the replies.
fn inject(w: &mut World<AdmitAll>, bytes: &[u8]) -> Vec<Vec<u8>> {
    w.engine
        .handle_datagram(w.now, ATTACKER, None, None, bytes, &mut w.links);
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while let Some(t) = w.engine.poll_transmit(w.now, 1, &mut buf) {
        assert_eq!(t.destination, ATTACKER);
        out.push(buf[..t.size].to_vec());
    }
    out
}

#[test]
fn garbage_is_counted_undecodable_and_never_answered() {
    let mut w = world();
    let garbage: [&[u8]; 5] = [
        &[0x00],
        &[0xff; 3],
        // A long header that is not an Initial, for no connection.
        &[0xe0, 0, 0, 0, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0],
        // A short header whose connection id names another core.
        &[0x40, 7, 1, 2, 3, 4, 5, 6, 7, 9, 9, 9],
        // An Initial below 1200 bytes.
        &[0xc0, 0, 0, 0, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0x41, 0],
    ];
    for g in garbage {
        assert!(inject(&mut w, g).is_empty());
    }
    let c = w.engine.counters();
    assert_eq!(c.udp_in, 5);
    assert_eq!(c.packets_undecodable, 5);
    assert_eq!(c.stateless_replies, StatelessCounts::default());
    assert_eq!(c.connections_open, 0);
}

#[test]
fn version_negotiation_and_resets_are_counted_by_kind() {
    let mut w = world();
    // An Initial-sized long header of an unknown version.
    let mut vn = vec![0u8; 1200];
    vn[..6].copy_from_slice(&[0xc0, 0x1a, 0x2a, 0x3a, 0x4a, 8]);
    let replies = inject(&mut w, &vn);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0][1..5], [0, 0, 0, 0], "a version negotiation");
    // A short header for this core (byte 1 names core 1) but no connection
    // of it: a stateless reset, and quinn sends at most one per 20 ms.
    let mut unknown = vec![0x41u8; 80];
    unknown[1..9].copy_from_slice(&[1, 9, 9, 9, 9, 9, 9, 9]);
    assert_eq!(inject(&mut w, &unknown).len(), 1);
    assert!(inject(&mut w, &unknown).is_empty(), "held back");
    let c = w.engine.counters();
    assert_eq!(
        c.stateless_replies,
        StatelessCounts {
            version_negotiation: 1,
            reset: 1,
            ..StatelessCounts::default()
        }
    );
    assert_eq!(c.packets_undecodable, 1, "the reset held back");
}

#[test]
fn a_refused_connection_is_a_refusal_reply() {
    let mut w = world();
    w.engine.begin_drain(w.now, &mut w.links);
    let i = w.connect(&ticket(1));
    w.settle();
    assert!(w.clients[i].closed.is_some());
    let c = w.engine.counters();
    assert_eq!(c.refused, 1);
    assert_eq!(c.stateless_replies.refusal, 1);
}

#[test]
fn a_handshake_that_times_out_is_not_a_lost_connection() {
    let mut w = world();
    // A client whose first Initial arrives and which then goes silent, as
    // each of a spoofed flood's Initials does.
    let mut client = Client::new(w.now, &w.cert, 99, &ticket(1), ConnectOpts::default());
    let mut buf = Vec::new();
    let t = client.conn.poll_transmit(w.now, 1, &mut buf).unwrap();
    w.engine
        .handle_datagram(w.now, client.addr, None, None, &buf[..t.size], &mut w.links);
    assert_eq!(w.engine.counters().connections_open, 1);
    // A player who gets in, then vanishes, is a lost connection.
    w.connect_welcomed(&ticket(2));
    w.clients.clear();
    let idle = Duration::from_millis(Config::default().gateway.idle_timeout_ms);
    w.run_for(idle * 2);
    let c = w.engine.counters();
    assert_eq!(c.connections_open, 0);
    assert_eq!(c.handshake_timeouts, 1);
    assert_eq!(c.connections_lost, 1);
}
