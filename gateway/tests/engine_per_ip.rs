//! Room an attacker cannot take from others (`docs/protocol.md` §8): at
//! most `gateway.connections_per_ip_max` connections per address (one more
//! is refused with CONNECTION_REFUSED), and at most
//! `gateway.unvalidated_connections_max` connections not yet validated
//! (one more gets a Retry and comes in validated).

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use lanegate_common::config::Config;
use quinn_proto::{ConnectionError, TransportErrorCode};

use support::{ConnectOpts, World, ticket};

const NAT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));

#[test]
fn one_address_past_its_connections_is_refused_and_others_are_not() {
    let mut config = Config::default();
    config.gateway.connections_per_ip_max = 2;
    let mut w = World::admit_all(config);
    for p in 1..=3 {
        w.connect_with(&ticket(p), ConnectOpts::from_ip(NAT));
        w.settle();
    }
    assert!(w.clients[0].welcomed() && w.clients[1].welcomed());
    match &w.clients[2].closed {
        Some(ConnectionError::ConnectionClosed(close)) => {
            assert_eq!(close.error_code, TransportErrorCode::CONNECTION_REFUSED);
        }
        other => panic!("the third from one address: {other:?}"),
    }
    assert_eq!(w.engine.counters().refused_per_ip, 1);
    let other = w.connect_with(&ticket(9), ConnectOpts::from_ip(OTHER));
    w.settle();
    assert!(w.clients[other].welcomed());
    // A connection of the address closes: room for one more.
    w.clients[0]
        .conn
        .close(w.now, 0u32.into(), Default::default());
    w.run_for(Duration::from_secs(2));
    let again = w.connect_with(&ticket(4), ConnectOpts::from_ip(NAT));
    w.settle();
    assert!(w.clients[again].welcomed());
}

#[test]
fn past_the_unvalidated_cap_a_handshake_is_retried_and_comes_in_validated() {
    let mut config = Config::default();
    config.gateway.unvalidated_connections_max = 1;
    let mut w = World::admit_all(config);
    // Both Initials arrive before either handshake completes.
    w.connect_with(&ticket(1), ConnectOpts::from_ip(NAT));
    w.connect_with(&ticket(2), ConnectOpts::from_ip(OTHER));
    w.settle();
    assert!(w.clients.iter().all(|c| c.welcomed()));
    let c = w.engine.counters();
    assert_eq!(c.unvalidated_full, 1);
    assert_eq!(c.retries_sent, 1);
    // Once handshakes are done, no connection counts as unvalidated.
    w.connect_with(&ticket(3), ConnectOpts::from_ip(OTHER));
    w.settle();
    assert!(w.clients[2].welcomed());
    assert_eq!(w.engine.counters().unvalidated_full, 1);
}
