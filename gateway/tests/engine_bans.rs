//! Bans after abuse (`docs/protocol.md` §8, "Bans after abuse"): a
//! connection closed with `ABUSE` bans its source address (whose next
//! handshakes get no answer and leave no state) and its player (whose next
//! `Hello`, from anywhere, gets `Reject` and `ABUSE`) for
//! `admission.abuse_ban_ms`; the real admission policy behind the engine,
//! real QUIC clients, a virtual clock.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use lanegate_common::config::{Config, LaneLimit};
use lanegate_common::wire::{CloseCode, types};
use lanegate_gateway::engine::admit::GovernorAdmission;

use support::{ConnectOpts, World, code, ticket};

const ABUSER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const ELSEWHERE: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
const THIRD: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));

/// Bulk at 10/s, burst 5; ABUSE after 20 drops in a second; bans of
/// `ban_ms`.
fn config(ban_ms: u64) -> Config {
    let mut config = Config::default();
    config.gateway.connections_max = 8;
    config.lanes.limits.bulk = LaneLimit::new(10, 5);
    config.admission.abuse_drops_max = 20;
    config.admission.abuse_window_ms = 1_000;
    config.admission.abuse_ban_ms = ban_ms;
    config
}

/// Player 7 connects from [`ABUSER`] and floods bulk until closed.
fn abused(config: Config) -> World<GovernorAdmission> {
    let mut w = World::governed(config);
    w.shard.echo = false;
    let c = w.connect_with(&ticket(7), ConnectOpts::from_ip(ABUSER));
    w.settle();
    assert!(w.clients[c].welcomed());
    for step in 0..100u64 {
        for i in 0..10u64 {
            let mut d = types::ECHO_BULK.to_be_bytes().to_vec();
            d.extend_from_slice(&(step * 10 + i).to_be_bytes());
            w.clients[c].send_datagram(&d);
        }
        w.run_for(Duration::from_millis(10));
        if w.clients[c].closed.is_some() {
            break;
        }
    }
    assert_eq!(w.clients[c].close_code(), code(CloseCode::Abuse));
    w.run_for(Duration::from_secs(1));
    w
}

#[test]
fn an_abuse_close_bans_the_address_and_the_player_for_a_while() {
    let mut w = abused(config(60_000));
    assert_eq!(w.engine.counters().bans_added, 2);
    let open_before = w.engine.connections_open();
    // Another player from the banned address: no answer, no state.
    let same_address = w.connect_with(&ticket(8), ConnectOpts::from_ip(ABUSER));
    w.run_for(Duration::from_millis(300));
    assert_eq!(w.clients[same_address].packets_in, 0);
    assert!(!w.clients[same_address].welcomed());
    assert_eq!(w.engine.connections_open(), open_before);
    assert!(w.engine.counters().handshakes_banned >= 1);
    // The banned player from another address: Reject, then ABUSE.
    let same_player = w.connect_with(&ticket(7), ConnectOpts::from_ip(ELSEWHERE));
    w.settle();
    assert_eq!(
        w.clients[same_player].rejected_code(),
        Some(CloseCode::Abuse)
    );
    assert_eq!(w.clients[same_player].close_code(), code(CloseCode::Abuse));
    assert_eq!(w.engine.counters().hellos_banned, 1);
    assert_eq!(
        w.engine.counters().bans_added,
        2,
        "a banned player's refusal does not extend its ban"
    );
    // Anyone else plays.
    let other = w.connect_with(&ticket(9), ConnectOpts::from_ip(THIRD));
    w.settle();
    assert!(w.clients[other].welcomed());
    // Once the ban is over, both come back.
    w.run_for(Duration::from_secs(60));
    let back = w.connect_with(&ticket(10), ConnectOpts::from_ip(ABUSER));
    let player_back = w.connect_with(&ticket(7), ConnectOpts::from_ip(ELSEWHERE));
    w.settle();
    assert!(w.clients[back].welcomed(), "{:?}", w.clients[back].closed);
    assert!(w.clients[player_back].welcomed());
}

#[test]
fn with_bans_off_the_address_reconnects_at_once() {
    let mut w = abused(config(0));
    assert_eq!(w.engine.counters().bans_added, 0);
    let again = w.connect_with(&ticket(7), ConnectOpts::from_ip(ABUSER));
    w.settle();
    assert!(w.clients[again].welcomed());
    assert_eq!(w.engine.counters().handshakes_banned, 0);
}
