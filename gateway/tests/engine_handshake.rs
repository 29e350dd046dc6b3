//! The engine's handshake and session lifecycle, driven in memory on a
//! virtual clock by real `quinn_proto` clients (see `support`): tickets,
//! `Hello`/`Welcome`, drain, limits and admission hooks, against a scripted
//! shard.
//! The tests that need a real game (echo, zone resets, leaves, loss and
//! reordering) run the whole path in `whole_path.rs`.

mod support;

use std::time::Duration;

use lanegate_common::config::Config;
use lanegate_common::frame::put_frame;
use lanegate_common::ids::{CoreId, PlayerId, ZoneId};
use lanegate_common::lanes::Lane;
use lanegate_common::link::ToGateway;
use lanegate_common::ticket::{DEV_KEY_ID, KeySet, Secret};
use lanegate_common::wire::{CloseCode, Transport};
use lanegate_gateway::engine::cid::owner_of;
use lanegate_gateway::engine::{AdmitAll, AdmitDecision};
use lanegate_shard::ShardConfig;
use lanegate_shard::port::DropReason;

use support::{ConnectOpts, ScriptedAdmission, Seen, UNIX_NOW, World, code, ticket, ticket_with};

/// A world whose admission the test scripts, admitting everything at first.
fn world() -> World<ScriptedAdmission> {
    World::scripted(Config::default())
}

/// A world with player 7 connected and welcomed.
fn established_world() -> World<ScriptedAdmission> {
    let mut w = world();
    w.connect_welcomed(&ticket(7));
    w
}

#[test]
fn good_ticket_gets_welcome_and_joins_the_shard() {
    let w = established_world();
    let info = w.clients[0].session.info().unwrap();
    assert_eq!(info.player, PlayerId(7));
    assert_eq!(info.zone, ZoneId(42));
    assert_eq!(info.datagram_message_bytes_max, 1100);
    assert_eq!(info.lane_limits[0].rate_per_s, 240);
    assert_eq!(w.seen, vec![Seen::Join(PlayerId(7), ZoneId(42))]);
    assert_eq!(w.engine.counters().sessions_open, 1);
    assert_eq!(w.engine.connections_open(), 1);
    // The session id names this core (1) in its top 16 bits.
    assert_eq!(info.session.0 >> 48, 1);
}

#[test]
fn expired_ticket_is_rejected_with_ticket_expired() {
    let mut w = world();
    w.connect(&ticket_with(&KeySet::dev(), 7, UNIX_NOW - 3600));
    w.settle();
    let c = &w.clients[0];
    assert_eq!(c.close_code(), code(CloseCode::TicketExpired));
    assert_eq!(c.rejected_code(), Some(CloseCode::TicketExpired));
    assert_eq!(w.engine.counters().tickets_expired, 1);
    assert!(
        w.seen.is_empty(),
        "no shard state before the ticket verifies"
    );
}

#[test]
fn forged_ticket_is_rejected_with_bad_ticket() {
    let other = KeySet::new(vec![(DEV_KEY_ID, Secret::new(&[9u8; 32]).unwrap())]).unwrap();
    let mut w = world();
    w.connect(&ticket_with(&other, 7, UNIX_NOW + 3600));
    w.settle();
    assert_eq!(w.clients[0].close_code(), code(CloseCode::BadTicket));
    assert_eq!(w.clients[0].rejected_code(), Some(CloseCode::BadTicket));
    assert_eq!(w.engine.counters().tickets_bad, 1);
    assert!(w.seen.is_empty());
}

#[test]
fn garbage_ticket_is_rejected_with_bad_ticket() {
    let mut w = world();
    w.connect("definitely-not-a-ticket");
    w.settle();
    assert_eq!(w.clients[0].close_code(), code(CloseCode::BadTicket));
    assert_eq!(w.clients[0].rejected_code(), Some(CloseCode::BadTicket));
    assert_eq!(w.engine.counters().tickets_bad, 1);
}

#[test]
fn message_before_hello_is_a_protocol_violation() {
    let mut w = world();
    let i = w.connect(&ticket(7));
    w.clients[i].auto_hello = false;
    w.settle();
    let mut frame = Vec::new();
    put_frame(&[0x1f, 0xff, 0, 1], &mut frame);
    w.clients[i].write_control(&frame);
    w.settle();
    assert_eq!(
        w.clients[i].close_code(),
        code(CloseCode::ProtocolViolation)
    );
    assert_eq!(w.engine.counters().protocol_violations, 1);
    assert!(w.seen.is_empty());
}

#[test]
fn client_without_datagrams_is_closed_with_datagrams_required() {
    let mut w = world();
    w.connect_with(&ticket(7), ConnectOpts::no_datagrams());
    w.settle();
    assert_eq!(
        w.clients[0].close_code(),
        code(CloseCode::DatagramsRequired)
    );
    assert_eq!(w.engine.counters().datagrams_required, 1);
}

#[test]
fn no_hello_times_out_with_hello_timeout() {
    let mut w = world();
    w.connect(&ticket(7));
    w.clients[0].auto_hello = false;
    w.run_for(Duration::from_secs(4));
    assert_eq!(w.clients[0].closed, None);
    w.run_for(Duration::from_secs(2));
    assert_eq!(w.clients[0].close_code(), code(CloseCode::HelloTimeout));
    assert_eq!(w.engine.counters().hello_timeouts, 1);
}

#[test]
fn malformed_datagrams_are_counted_not_fatal() {
    let mut w = established_world();
    w.clients[0].send_datagram(&[0x1f]);
    w.clients[0].send_datagram(&[0x00, 0x09]);
    w.settle();
    let counters = *w.engine.counters();
    assert_eq!(counters.malformed_datagrams, 1);
    assert_eq!(counters.control_datagrams, 1);
    assert_eq!(w.clients[0].closed, None);
    w.clients[0].send_datagram(&[0x1f, 0xff, 1]);
    w.settle();
    assert_eq!(w.clients[0].messages().len(), 1);
}

#[test]
fn datagrams_before_welcome_are_dropped_and_counted() {
    let mut w = world();
    let i = w.connect(&ticket(7));
    w.clients[i].auto_hello = false;
    w.settle();
    w.clients[i].send_datagram(&[0x1f, 0xff, 1]);
    w.settle();
    assert_eq!(w.engine.counters().datagrams_before_welcome, 1);
    assert!(w.seen.is_empty());
}

#[test]
fn control_type_on_a_stream_after_welcome_is_a_protocol_violation() {
    let mut w = established_world();
    let hello = w.clients[0].hello.clone();
    w.clients[0].write_control(&hello);
    w.settle();
    assert_eq!(
        w.clients[0].close_code(),
        code(CloseCode::ProtocolViolation)
    );
    assert_eq!(
        w.seen,
        vec![
            Seen::Join(PlayerId(7), ZoneId(42)),
            Seen::Leave(PlayerId(7), ZoneId(42))
        ]
    );
}

#[test]
fn drain_closes_sessions_with_server_draining_and_refuses_new_ones() {
    let mut w = established_world();
    w.engine.begin_drain(w.now, &mut w.links);
    w.settle();
    assert_eq!(w.clients[0].close_code(), code(CloseCode::ServerDraining));
    assert!(w.seen.contains(&Seen::Leave(PlayerId(7), ZoneId(42))));
    assert_eq!(w.engine.counters().sessions_open, 0);
    w.connect(&ticket(8));
    w.settle();
    assert!(w.clients[1].closed.is_some());
    assert!(!w.clients[1].welcomed());
    assert_eq!(w.engine.counters().refused, 1);
    w.run_for(Duration::from_secs(5));
    assert_eq!(w.engine.connections_open(), 0);
}

#[test]
fn connections_above_the_max_are_closed_with_server_full() {
    let mut config = Config::default();
    config.gateway.connections_max = 1;
    let mut w = World::scripted(config);
    w.connect(&ticket(1));
    w.settle();
    w.connect(&ticket(2));
    w.settle();
    assert!(w.clients[0].welcomed());
    assert_eq!(w.clients[1].close_code(), code(CloseCode::ServerFull));
    assert_eq!(w.engine.counters().server_full, 1);
}

#[test]
fn a_message_refused_by_a_full_ring_is_counted_once_per_lane() {
    // Two slots: the session's join and one critical message fill it (a
    // bulk message may use only half of it).
    let shard_cfg = ShardConfig {
        ring_slots_max: 2,
        ..support::shard_config(&Config::default())
    };
    let mut w = World::with_links(Config::default(), shard_cfg, |_, _| AdmitAll);
    w.shard.paused = true;
    w.connect_welcomed(&ticket(7));
    w.clients[0].send_datagram(&[0x1f, 0xff, 1]);
    w.settle();
    w.clients[0].send_datagram(&[0x1f, 0xff, 2]);
    w.clients[0].send_datagram(&[0x4f, 0xff, 3]);
    w.settle();
    assert_eq!(w.engine.counters().messages_to_shard, 1);
    let drops = w.links.drops();
    assert_eq!(drops.get(DropReason::RingFull, Lane::Critical), 1);
    assert_eq!(drops.get(DropReason::RingFull, Lane::Bulk), 1);
    assert_eq!(w.links.lost(), [1, 0, 0, 1], "each refusal counted once");
    assert_eq!(w.clients[0].closed, None);
    // The shard catches up: what the ring held arrives, nothing else.
    w.shard.paused = false;
    w.settle();
    assert_eq!(
        w.seen,
        vec![
            Seen::Join(PlayerId(7), ZoneId(42)),
            Seen::Message(0x1fff, Transport::Datagram, 1)
        ]
    );
}

#[test]
fn connection_ids_name_the_owning_core() {
    let mut w = established_world();
    w.clients[0].send_datagram(&[0x1f, 0xff, 1]);
    w.settle();
    assert!(!w.short_dcids.is_empty());
    for cid in &w.short_dcids {
        assert_eq!(owner_of(cid), Some(CoreId(1)));
    }
}

#[test]
fn admission_drops_are_counted_per_lane_and_close_ends_the_session() {
    let mut w = established_world();
    assert_eq!(w.engine.admission_mut().opened.len(), 1);
    w.engine.admission_mut().decision = AdmitDecision::Drop;
    w.clients[0].send_datagram(&[0x2f, 0xff, 1]);
    w.settle();
    assert_eq!(w.engine.counters().admit_dropped, [0, 1, 0, 0]);
    assert!(w.clients[0].messages().is_empty());

    w.engine.admission_mut().decision = AdmitDecision::Close(CloseCode::Abuse);
    w.clients[0].send_datagram(&[0x2f, 0xff, 1]);
    w.settle();
    assert_eq!(w.clients[0].close_code(), code(CloseCode::Abuse));
    assert_eq!(w.engine.admission_mut().closed.len(), 1);
    assert!(w.seen.contains(&Seen::Leave(PlayerId(7), ZoneId(42))));
}

#[test]
fn broadcast_reaches_every_session_in_the_zone() {
    let mut w = established_world();
    w.connect(&ticket(8));
    w.settle();
    assert!(w.clients[1].welcomed());
    let body = lanegate_common::link::Body {
        ty: 0x3001,
        lane: Lane::Normal,
        transport: Transport::Datagram,
        payload: lanegate_common::link::Payload::Inline(
            lanegate_common::link::InlinePayload::new(&[4, 2]).unwrap(),
        ),
    };
    w.push_from_shard(ToGateway::Broadcast {
        zone: ZoneId(42),
        body,
    });
    w.settle();
    for c in &w.clients {
        assert_eq!(
            c.messages(),
            vec![(0x3001, vec![4, 2], Transport::Datagram)]
        );
    }
}

#[test]
fn handshakes_admission_refuses_are_dropped_silently() {
    let mut w = world();
    w.engine.admission_mut().handshakes = false;
    w.connect(&ticket(7));
    w.run_for(Duration::from_secs(2));
    assert!(w.engine.counters().handshakes_ignored >= 1);
    assert_eq!(w.engine.connections_open(), 0);
    assert!(!w.clients[0].welcomed());
}
