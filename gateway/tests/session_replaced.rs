//! One session per player (`docs/protocol.md` §4, "One session per
//! player"), end to end in the deterministic simulation: real clients,
//! engine, links and shard runtimes. The newer session is welcomed and the
//! older is closed with `SESSION_REPLACED`, on one core (whichever shards
//! serve the two zones) and across two cores (told by the shard).

// `allow-unwrap-in-tests` covers `#[test]` functions only; in the helpers a
// failed unwrap is a failed test, as intended.
#![allow(clippy::unwrap_used)]

mod sim;
mod support;

use std::time::Duration;

use lanegate_client::session::Event as ClientEvent;
use lanegate_common::config::Config;
use lanegate_common::ids::{PlayerId, SessionId, ShardId, ZoneId};
use lanegate_common::link::{ToGateway, ToShard};
use lanegate_common::wire::{CloseCode, Transport, types};
use lanegate_shard::games::Echo;

use sim::game::GameSaw;
use sim::net::Conditions;
use sim::{Sim, identity};
use support::{code, ticket_in};

const PLAYER: u64 = 7;
/// Served by shard 0 and shard 1 of two (`zone % shards`).
const ZONE_ON_0: ZoneId = ZoneId(2);
const ZONE_ON_1: ZoneId = ZoneId(1);
/// A session id of the other gateway core (core 2 in its top bits).
const OTHER_SESSION: SessionId = SessionId((2 << 48) | 5);

fn welcomed(sim: &mut Sim<Echo>, zone: ZoneId) -> usize {
    let c = sim.connect(&ticket_in(PLAYER, zone));
    sim.run_for(Duration::from_secs(1));
    assert!(sim.clients[c].welcomed(), "{:?}", sim.clients[c].closed);
    c
}

fn session_of(sim: &Sim<Echo>, client: usize) -> SessionId {
    sim.clients[client]
        .events
        .iter()
        .find_map(|e| match e {
            ClientEvent::Welcome(w) => Some(w.session),
            _ => None,
        })
        .unwrap()
}

/// The joins and leaves the games saw, as (shard, kind, zone).
fn membership(sim: &Sim<Echo>) -> Vec<(ShardId, &'static str, ZoneId)> {
    sim.games_saw()
        .into_iter()
        .filter_map(|s| match s {
            GameSaw::Join {
                shard,
                zone,
                player,
                ..
            } if player.0 == PLAYER => Some((*shard, "join", *zone)),
            GameSaw::Leave {
                shard,
                zone,
                player,
                ..
            } if player.0 == PLAYER => Some((*shard, "leave", *zone)),
            _ => None,
        })
        .collect()
}

fn echoes(sim: &mut Sim<Echo>, client: usize) -> bool {
    let datagram = [0x1f, 0xff, 9, 9];
    sim.clients[client].send_datagram(&datagram);
    sim.run_for(Duration::from_millis(200));
    sim.clients[client].messages().contains(&(
        types::ECHO_CRITICAL,
        vec![9, 9],
        Transport::Datagram,
    ))
}

fn two_shards() -> Sim<Echo> {
    Sim::new(
        &Config::default(),
        &identity(),
        2,
        |_| Echo,
        13,
        Conditions::clean(),
    )
}

#[test]
fn a_second_session_on_the_same_core_replaces_the_first() {
    let mut sim = two_shards();
    let old = welcomed(&mut sim, ZONE_ON_0);
    let new = welcomed(&mut sim, ZONE_ON_0);
    assert_eq!(
        sim.clients[old].close_code(),
        code(CloseCode::SessionReplaced)
    );
    assert_eq!(sim.clients[new].close_code(), None);
    assert!(echoes(&mut sim, new), "the newer session works");
    let c = sim.engine.counters();
    assert_eq!(c.sessions_replaced, 1);
    assert_eq!(c.sessions_open, 1);
    // The game saw one player: joined, re-joined on the new session.
    assert_eq!(
        membership(&sim),
        [
            (ShardId(0), "join", ZONE_ON_0),
            (ShardId(0), "leave", ZONE_ON_0),
            (ShardId(0), "join", ZONE_ON_0),
        ]
    );
}

#[test]
fn the_same_core_replaces_a_session_whose_zone_is_on_another_shard() {
    let mut sim = two_shards();
    let old = welcomed(&mut sim, ZONE_ON_0);
    let new = welcomed(&mut sim, ZONE_ON_1);
    assert_eq!(
        sim.clients[old].close_code(),
        code(CloseCode::SessionReplaced)
    );
    assert!(echoes(&mut sim, new));
    assert_eq!(sim.engine.counters().sessions_replaced, 1);
    // Shard 0 never saw the new session, yet its player left there.
    let saw = membership(&sim);
    assert!(saw.contains(&(ShardId(0), "leave", ZONE_ON_0)), "{saw:?}");
    assert!(saw.contains(&(ShardId(1), "join", ZONE_ON_1)), "{saw:?}");
}

#[test]
fn a_newer_session_on_another_core_closes_this_cores_session() {
    let mut sim = Sim::with_other_core(
        &Config::default(),
        &identity(),
        2,
        |_| Echo,
        13,
        Conditions::clean(),
    );
    let old = welcomed(&mut sim, ZONE_ON_0);
    // The player's newer session joins through the other core.
    let other = sim.other_core.as_mut().unwrap();
    other.shards[0]
        .tx
        .push(ToShard::Join {
            session: OTHER_SESSION,
            player: PlayerId(PLAYER),
            zone: ZONE_ON_0,
        })
        .unwrap();
    sim.run_for(Duration::from_millis(200));
    assert_eq!(
        sim.clients[old].close_code(),
        code(CloseCode::SessionReplaced)
    );
    assert_eq!(sim.engine.counters().sessions_replaced, 1);
    assert_eq!(sim.engine.counters().sessions_open, 0);
    // The old session's leave was stale: the game still has the player,
    // on the newer session.
    assert_eq!(
        membership(&sim),
        [
            (ShardId(0), "join", ZONE_ON_0),
            (ShardId(0), "leave", ZONE_ON_0),
            (ShardId(0), "join", ZONE_ON_0),
        ]
    );
    assert_eq!(sim.other_core.as_mut().unwrap().shards[0].rx.pop(), None);
}

#[test]
fn a_session_welcomed_here_tells_the_other_core_to_close_its_older_one() {
    let mut sim = Sim::with_other_core(
        &Config::default(),
        &identity(),
        2,
        |_| Echo,
        13,
        Conditions::clean(),
    );
    let other = sim.other_core.as_mut().unwrap();
    other.shards[0]
        .tx
        .push(ToShard::Join {
            session: OTHER_SESSION,
            player: PlayerId(PLAYER),
            zone: ZONE_ON_0,
        })
        .unwrap();
    sim.run_for(Duration::from_millis(100));
    let new = welcomed(&mut sim, ZONE_ON_0);
    assert!(echoes(&mut sim, new));
    assert_eq!(
        sim.other_core.as_mut().unwrap().shards[0].rx.pop(),
        Some(ToGateway::SessionReplaced {
            session: OTHER_SESSION,
            player: PlayerId(PLAYER),
        })
    );
    // Nothing was replaced on this core.
    assert_eq!(sim.engine.counters().sessions_replaced, 0);
    let _ = session_of(&sim, new);
}

#[test]
fn a_stale_notice_closes_nothing() {
    let mut sim = two_shards();
    let c = welcomed(&mut sim, ZONE_ON_0);
    let session = session_of(&sim, c);
    // A notice for a session id whose slot generation is another one.
    let stale = SessionId(session.0 ^ (1 << 24));
    sim.engine.handle_from_shard(
        sim.now(),
        &ToGateway::SessionReplaced {
            session: stale,
            player: PlayerId(PLAYER),
        },
    );
    sim.run_for(Duration::from_millis(100));
    assert_eq!(sim.clients[c].close_code(), None);
    assert_eq!(sim.engine.counters().sessions_replaced, 0);
}

/// Two cores, two shards: the player's sessions in zones of different
/// shards never meet in a zone's shard, only in the player's home shard
/// (`PLAYER % 2` = shard 1), through the claims each core sends it.
fn two_cores() -> Sim<Echo> {
    Sim::with_other_core(
        &Config::default(),
        &identity(),
        2,
        |_| Echo,
        13,
        Conditions::clean(),
    )
}

/// What the other core's engine sends when it welcomes `session` in `zone`.
fn other_core_welcomes(sim: &mut Sim<Echo>, session: SessionId, zone: ZoneId) {
    let other = sim.other_core.as_mut().unwrap();
    let player = PlayerId(PLAYER);
    let zone_shard = usize::try_from(zone.0 % 2).unwrap();
    other.shards[zone_shard]
        .tx
        .push(ToShard::Join {
            session,
            player,
            zone,
        })
        .unwrap();
    other.shards[1]
        .tx
        .push(ToShard::Claim { session, player })
        .unwrap();
}

#[test]
fn a_newer_session_on_another_core_and_shard_closes_this_one_through_the_home_shard() {
    let mut sim = two_cores();
    let old = welcomed(&mut sim, ZONE_ON_0);
    other_core_welcomes(&mut sim, OTHER_SESSION, ZONE_ON_1);
    sim.run_for(Duration::from_millis(200));
    assert_eq!(
        sim.clients[old].close_code(),
        code(CloseCode::SessionReplaced)
    );
    assert_eq!(sim.engine.counters().sessions_replaced, 1);
    // The old session's release did not drop the newer claim: a third
    // session still replaces the other core's.
    let third = SessionId((2 << 48) | 6);
    other_core_welcomes(&mut sim, third, ZONE_ON_1);
    sim.run_for(Duration::from_millis(200));
    let back: Vec<ToGateway> =
        std::iter::from_fn(|| sim.other_core.as_mut().unwrap().shards[1].rx.pop()).collect();
    assert!(
        back.contains(&ToGateway::SessionReplaced {
            session: OTHER_SESSION,
            player: PlayerId(PLAYER),
        }),
        "{back:?}"
    );
}

#[test]
fn a_session_welcomed_here_replaces_the_other_cores_in_another_shards_zone() {
    let mut sim = two_cores();
    other_core_welcomes(&mut sim, OTHER_SESSION, ZONE_ON_1);
    sim.run_for(Duration::from_millis(100));
    let new = welcomed(&mut sim, ZONE_ON_0);
    assert!(echoes(&mut sim, new));
    let back: Vec<ToGateway> =
        std::iter::from_fn(|| sim.other_core.as_mut().unwrap().shards[1].rx.pop()).collect();
    assert!(
        back.contains(&ToGateway::SessionReplaced {
            session: OTHER_SESSION,
            player: PlayerId(PLAYER),
        }),
        "{back:?}"
    );
    assert_eq!(sim.engine.counters().sessions_replaced, 0);
}
