//! A game moves a player to another zone inside the session (a portal),
//! through the whole path of `sim`: the old zone sees the leave before the
//! new zone sees the join, the player's messages reach the zone they are
//! in and no other, the client is told with `ZoneChanged`, and the gateway
//! routes the session's later messages to the new zone's shard.

// `allow-unwrap-in-tests` covers `#[test]` functions only; in the helpers a
// failed unwrap is a failed test, as intended.
#![allow(clippy::unwrap_used)]

mod sim;
mod support;

use std::collections::HashMap;
use std::time::Duration;

use lanegate_client::session::Event as ClientEvent;
use lanegate_common::config::Config;
use lanegate_common::ids::{PlayerId, ShardId, ZoneId};
use lanegate_common::wire::types;
use lanegate_shard::games::Echo;

use sim::game::{GameSaw, PORTAL_TYPE, portal_to};
use sim::net::Conditions;
use sim::{Sim, identity};
use support::ticket_in;

/// With two shards, zones 1 and 3 are served by shard 1, zone 2 by shard 0.
fn sim(config: &Config, conditions: Conditions, seed: u64) -> Sim<Echo> {
    Sim::new(config, &identity(), 2, |_| Echo, seed, conditions)
}

/// Checks the order the games saw: a player is in one zone at a time (no
/// join before the previous zone's leave), and each of their messages
/// reached the zone and shard they were in when it was handled. Returns
/// how many messages each player's games got.
fn check_zone_order(saw: &[&GameSaw]) -> HashMap<PlayerId, usize> {
    let mut at: HashMap<PlayerId, (ShardId, ZoneId)> = HashMap::new();
    let mut messages = HashMap::new();
    for (i, s) in saw.iter().enumerate() {
        match **s {
            GameSaw::Join {
                shard,
                zone,
                player,
                ..
            } => {
                let before = at.insert(player, (shard, zone));
                assert_eq!(
                    before, None,
                    "entry {i}: {player} joined {zone} still in {before:?}"
                );
            }
            GameSaw::Leave {
                shard,
                zone,
                player,
                ..
            } => {
                assert_eq!(at.remove(&player), Some((shard, zone)), "entry {i}: leave");
            }
            GameSaw::Message {
                shard,
                zone,
                player,
                ..
            } => {
                assert_eq!(
                    at.get(&player),
                    Some(&(shard, zone)),
                    "entry {i}: a message of {player} reached {zone} on {shard}"
                );
                *messages.entry(player).or_default() += 1;
            }
        }
    }
    messages
}

/// The index in the games' trace of the first entry `pick` matches.
fn position(saw: &[&GameSaw], pick: impl Fn(&GameSaw) -> bool) -> usize {
    saw.iter()
        .position(|s| pick(s))
        .unwrap_or_else(|| panic!("not in the trace: {saw:#?}"))
}

/// Player 1 starts in zone 1 (shard 1), walks through a portal to `to`,
/// and echoes there.
fn walk_through_a_portal(to: ZoneId, shard_of_to: ShardId) {
    let mut sim = sim(&Config::default(), Conditions::clean(), 1);
    sim.connect(&ticket_in(1, ZoneId(1)));
    sim.run_for(Duration::from_secs(1));
    let before = sim.clients[0].frame(types::ECHO_CRITICAL, &[1]);
    let portal = sim.clients[0].frame(PORTAL_TYPE, &portal_to(to));
    sim.clients[0].write_control(&[before, portal].concat());
    sim.run_for(Duration::from_millis(200));

    let c = &sim.clients[0];
    assert!(c.events.contains(&ClientEvent::ZoneChanged {
        zone: to,
        tick_rate_hz: 30
    }));
    assert_eq!(c.session.info().unwrap().zone, to);
    let after = sim.clients[0].frame(types::ECHO_CRITICAL, &[2]);
    sim.clients[0].write_control(&after);
    sim.run_for(Duration::from_millis(200));
    let echoes: Vec<_> = sim.clients[0].messages().into_iter().map(|m| m.1).collect();
    assert_eq!(echoes, vec![vec![1], vec![2]]);

    let saw = sim.games_saw();
    check_zone_order(&saw);
    let p = PlayerId(1);
    let left = position(
        &saw,
        |s| matches!(s, GameSaw::Leave { shard: ShardId(1), zone: ZoneId(1), player, .. } if *player == p),
    );
    let joined = position(
        &saw,
        |s| matches!(s, GameSaw::Join { shard, zone, player, .. } if *shard == shard_of_to && *zone == to && *player == p),
    );
    assert!(left < joined, "leave at {left}, join at {joined}");
    let second = position(
        &saw,
        |s| matches!(s, GameSaw::Message { payload, .. } if payload == &vec![2]),
    );
    assert!(joined < second);
    assert!(matches!(
        saw[second],
        GameSaw::Message { shard, zone, .. } if *shard == shard_of_to && *zone == to
    ));
}

#[test]
fn a_portal_moves_the_player_to_a_zone_on_another_shard() {
    walk_through_a_portal(ZoneId(2), ShardId(0));
}

#[test]
fn a_portal_moves_the_player_within_its_shard() {
    walk_through_a_portal(ZoneId(3), ShardId(1));
}

#[test]
fn the_zone_players_see_follows_the_portals_they_take() {
    // Player 1 walks zone 1 → 2 → 3 → 2 → 1 across both shards while
    // player 2 stays in zone 2.
    let mut sim = sim(&Config::default(), Conditions::clean(), 2);
    sim.connect(&ticket_in(1, ZoneId(1)));
    sim.connect(&ticket_in(2, ZoneId(2)));
    sim.run_for(Duration::from_secs(1));
    for to in [ZoneId(2), ZoneId(3), ZoneId(2), ZoneId(1)] {
        let portal = sim.clients[0].frame(PORTAL_TYPE, &portal_to(to));
        sim.clients[0].write_control(&portal);
        sim.run_for(Duration::from_millis(100));
        assert_eq!(sim.clients[0].session.info().unwrap().zone, to);
    }
    let changes: Vec<_> = sim.clients[0]
        .events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::ZoneChanged { zone, .. } => Some(*zone),
            _ => None,
        })
        .collect();
    assert_eq!(changes, vec![ZoneId(2), ZoneId(3), ZoneId(2), ZoneId(1)]);
    check_zone_order(&sim.games_saw());
    assert_eq!(sim.clients[1].closed, None);
}

/// A player streams reliable messages while walking back and forth
/// through portals, over a lossy, reordering network, with shards that
/// work only at ticks and a gateway core that reads their rings only every
/// few milliseconds: messages sent after a move was applied on the shard,
/// before the core learned of it, are in flight to the old zone.
#[test]
fn messages_around_zone_changes_reach_the_zone_they_were_meant_for_or_are_counted() {
    let mut config = Config::default();
    config.shards.message_pass_us = 0;
    let mut stale = 0;
    for seed in 0..3 {
        let mut sim = sim(&config, Conditions::rough(0.1), seed);
        sim.set_link_poll_interval(Duration::from_millis(4));
        sim.connect(&ticket_in(1, ZoneId(1)));
        sim.run_for(Duration::from_secs(2));
        assert!(sim.clients[0].welcomed(), "seed {seed}");
        let mut sent = 0;
        let zones = [ZoneId(2), ZoneId(3), ZoneId(1), ZoneId(2)];
        for round in 0..40u8 {
            let mut bytes = sim.clients[0].frame(types::ECHO_NORMAL, &[round]);
            sent += 1;
            if round % 10 == 9 {
                let to = zones[usize::from(round / 10)];
                bytes.extend(sim.clients[0].frame(PORTAL_TYPE, &portal_to(to)));
            }
            sim.clients[0].write_control(&bytes);
            sim.run_for(Duration::from_millis(7));
        }
        sim.run_for(Duration::from_secs(3));
        let delivered = check_zone_order(&sim.games_saw());
        let got = delivered.get(&PlayerId(1)).copied().unwrap_or(0);
        // The portal messages themselves reach the game too.
        let portals = 4;
        assert_eq!(
            got as u64 + sim.stale_dropped(),
            sent + portals,
            "seed {seed}: every message was delivered or counted"
        );
        stale += sim.stale_dropped();
        assert_eq!(sim.clients[0].session.info().unwrap().zone, ZoneId(2));
        assert_eq!(sim.clients[0].closed, None);
    }
    assert!(stale > 0, "no message was in flight across a move");
}
