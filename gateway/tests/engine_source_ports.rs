//! Reflection-prone source ports (`gateway.blocked_source_ports`,
//! `docs/protocol.md` §8): a client sending from one gets nothing back and
//! leaves no state; the list is configuration.

mod support;

use std::time::Duration;

use lanegate_common::config::Config;

use support::{ConnectOpts, World, ticket};

fn from_port(port: u16) -> ConnectOpts {
    ConnectOpts {
        port: Some(port),
        ..ConnectOpts::default()
    }
}

#[test]
fn initials_from_reflection_ports_get_no_answer_and_no_state() {
    let mut w = World::admit_all(Config::default());
    let blocked: Vec<usize> = [0, 53, 123, 1900, 11211]
        .into_iter()
        .enumerate()
        .map(|(i, port)| w.connect_with(&ticket(i as u64 + 1), from_port(port)))
        .collect();
    // Long enough for the clients to retransmit their Initials.
    w.run_for(Duration::from_secs(3));
    for &c in &blocked {
        assert_eq!(w.clients[c].packets_in, 0, "client {c} got an answer");
        assert!(!w.clients[c].welcomed());
    }
    assert_eq!(w.engine.connections_open(), 0);
    let counters = *w.engine.counters();
    assert!(
        counters.blocked_source_port >= blocked.len() as u64,
        "{counters:?}"
    );
    assert_eq!(counters.handshakes_ignored, 0);
    assert_eq!(counters.refused, 0);
    // A neighbouring port is an ordinary client.
    let ok = w.connect_with(&ticket(9), from_port(54));
    w.settle();
    assert!(w.clients[ok].welcomed());
}

#[test]
fn the_list_is_configuration() {
    let mut config = Config::default();
    config.gateway.blocked_source_ports = vec![40_000];
    let mut w = World::admit_all(config);
    let dns = w.connect_with(&ticket(1), from_port(53));
    let listed = w.connect_with(&ticket(2), from_port(40_000));
    w.run_for(Duration::from_secs(1));
    assert!(w.clients[dns].welcomed(), "port 53 is no longer listed");
    assert_eq!(w.clients[listed].packets_in, 0);
    assert!(w.engine.counters().blocked_source_port >= 1);
}
