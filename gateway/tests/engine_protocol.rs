//! The points an independent client found unspecified (issue 12, §4),
//! each tested against what `docs/protocol.md` now says, in memory on a
//! virtual clock (`support`). Each test names its point.

// `allow-unwrap-in-tests` covers `#[test]` functions only; in the helpers a
// failed unwrap is a failed test, as intended.
#![allow(clippy::unwrap_used)]

mod support;

use lanegate_common::config::Config;
use lanegate_common::wire::{CloseCode, types};
use lanegate_gateway::engine::peer_params::{self, DATAGRAM_FRAME_SIZE_MIN};

use support::{ConnectOpts, ScriptedAdmission, World, code, ticket};

fn world() -> World<ScriptedAdmission> {
    World::scripted(Config::default())
}

/// How client `i`'s connection ended, for assertion messages.
fn closed_with(w: &World<impl lanegate_gateway::engine::Admission>, i: usize) -> String {
    format!("{:?}", w.clients[i].closed)
}

// 1. A `max_datagram_frame_size` below 1200 is refused like none at all.
#[test]
fn p01_datagram_frame_size_below_1200_is_datagrams_required() {
    let mut w = world();
    for opts in [
        ConnectOpts::no_datagrams(),
        ConnectOpts::datagram_frame_size(500),
        ConnectOpts::datagram_frame_size(1199),
        ConnectOpts::datagram_frame_size(1200),
        ConnectOpts::default(),
    ] {
        w.connect_with(&ticket(7), opts);
    }
    w.settle();
    for i in 0..3 {
        let c = &w.clients[i];
        assert_eq!(c.close_code(), code(CloseCode::DatagramsRequired), "{i}");
        assert!(!c.welcomed() && c.rejected_code().is_none(), "{i}");
    }
    assert!(w.clients[3].welcomed(), "{}", closed_with(&w, 3));
    assert!(w.clients[4].welcomed());
    assert_eq!(w.engine.counters().datagrams_required, 3);
    assert_eq!(DATAGRAM_FRAME_SIZE_MIN, 1200);
}

// 8. What the gateway advertises, and what it does with a datagram between
//    the Welcome limit and that value.
#[test]
fn p08_gateway_advertises_8800_and_drops_datagrams_over_the_welcome_limit() {
    let mut w = world();
    w.connect_welcomed(&ticket(7));
    let mut scratch = Vec::new();
    let advertised = peer_params::max_datagram_frame_size(&w.clients[0].conn, &mut scratch);
    let limit = w.clients[0]
        .session
        .info()
        .unwrap()
        .datagram_message_bytes_max;
    assert_eq!(limit, 1100);
    assert_eq!(
        advertised,
        Some(8 * 1100),
        "min(65535, 8 x the Welcome limit)"
    );
    let over = 1150;
    assert!(w.clients[0].conn.datagrams().max_size().unwrap() >= over);
    let mut datagram = vec![0xab; over];
    datagram[..2].copy_from_slice(&types::ECHO_CRITICAL.to_be_bytes());
    w.clients[0].send_datagram(&datagram);
    w.settle();
    assert_eq!(w.engine.counters().oversize_datagrams, 1);
    assert!(w.clients[0].messages().is_empty());
    assert_eq!(
        w.clients[0].closed, None,
        "no error, the session carries on"
    );
    datagram.truncate(usize::from(limit));
    w.clients[0].send_datagram(&datagram);
    w.settle();
    assert_eq!(w.clients[0].messages().len(), 1);
}
