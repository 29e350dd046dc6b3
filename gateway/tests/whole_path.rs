//! The whole path, client → engine → shard links → shard runtime → game →
//! back, in the deterministic simulation of `sim`: echo on every transport,
//! a game's panic reaching its players as a zone reset, leaves, seeded loss
//! and reordering, and the replay check (same seed, same trace).

// `allow-unwrap-in-tests` covers `#[test]` functions only; in the helpers a
// failed unwrap is a failed test, as intended.
#![allow(clippy::unwrap_used)]

mod sim;
mod support;

use std::time::Duration;

use bytes::Bytes;
use lanegate_client::session::Event as ClientEvent;
use lanegate_common::config::Config;
use lanegate_common::ids::{PlayerId, ShardId, ZoneId};
use lanegate_common::wire::{Transport, types};
use lanegate_shard::games::{Demo, Echo};
use quinn_proto::Dir;

use sim::game::{GameSaw, PANIC_TYPE};
use sim::net::Conditions;
use sim::{Sim, Trace, identity};
use support::ticket_in;

/// Zone 2 is served by shard 0 and zone 1 by shard 1 (`zone % shards`).
const ZONES: [ZoneId; 2] = [ZoneId(2), ZoneId(1)];

fn echo_sim(conditions: Conditions) -> Sim<Echo> {
    Sim::new(&Config::default(), &identity(), 2, |_| Echo, 7, conditions)
}

/// Connects players 1..=n, alternating between the two zones, and runs
/// until they are welcomed.
fn welcome<G: lanegate_shard::game::Game + 'static>(sim: &mut Sim<G>, n: u64) {
    for p in 1..=n {
        sim.connect(&ticket_in(p, ZONES[(p % 2) as usize]));
    }
    sim.run_for(Duration::from_secs(1));
    for (i, c) in sim.clients.iter().enumerate() {
        assert!(c.welcomed(), "client {i}: {:?} {:?}", c.closed, c.events);
    }
}

#[test]
fn echo_answers_on_the_same_transport_through_a_real_shard() {
    let mut sim = echo_sim(Conditions::clean());
    welcome(&mut sim, 1);
    let datagram = [0x1f, 0xff, 0, 0, 0, 0, 0, 0, 0, 1];
    sim.clients[0].send_datagram(&datagram);
    let frame = sim.clients[0].frame(types::ECHO_NORMAL, &[5; 300]);
    sim.clients[0].write_control(&frame);
    sim.run_for(Duration::from_millis(200));
    let got = sim.clients[0].messages();
    assert!(got.contains(&(0x1fff, datagram[2..].to_vec(), Transport::Datagram)));
    assert!(got.contains(&(0x3fff, vec![5; 300], Transport::Stream)));
    // Player 1's zone 1 lives on shard 1; the 300 bytes travelled in a pool
    // buffer (too large to go inline) and reached the game intact.
    let saw = sim.games_saw();
    assert!(saw.iter().any(|s| matches!(s,
        GameSaw::Message { shard: ShardId(1), ty: 0x3fff, payload, .. } if payload == &vec![5; 300])));
    assert!(saw.iter().all(|s| !matches!(
        s,
        GameSaw::Message {
            shard: ShardId(0),
            ..
        }
    )));
    assert_eq!(sim.engine.counters().messages_to_shard, 2);
}

#[test]
fn reliable_messages_on_uni_streams_are_answered_on_the_control_stream() {
    let mut sim = echo_sim(Conditions::clean());
    welcome(&mut sim, 1);
    let frame = sim.clients[0].frame(types::ECHO_HIGH, &[1, 2, 3]);
    let c = &mut sim.clients[0];
    let uni = c.conn.streams().open(Dir::Uni).unwrap();
    c.conn.send_stream(uni).write(&frame).unwrap();
    c.conn.send_stream(uni).finish().unwrap();
    sim.run_for(Duration::from_millis(200));
    assert_eq!(
        sim.clients[0].messages(),
        vec![(0x2fff, vec![1, 2, 3], Transport::Stream)]
    );
    assert_eq!(sim.clients[0].closed, None);
}

#[test]
fn a_game_panic_reaches_its_zone_as_a_reset_and_spares_the_other_shard() {
    let mut sim = echo_sim(Conditions::clean());
    welcome(&mut sim, 2);
    // Client 0 is player 1 in zone 1 (shard 1); client 1 is player 2 in
    // zone 2 (shard 0).
    let frame = sim.clients[0].frame(PANIC_TYPE, &[]);
    sim.clients[0].write_control(&frame);
    sim.run_for(Duration::from_millis(300));
    assert!(
        sim.clients[0]
            .events
            .contains(&ClientEvent::ZoneReset(ZoneId(1)))
    );
    assert!(
        !sim.clients[1]
            .events
            .iter()
            .any(|e| matches!(e, ClientEvent::ZoneReset(_)))
    );
    // Both players carry on: the new game instance echoes.
    for c in 0..2 {
        let frame = sim.clients[c].frame(types::ECHO_CRITICAL, &[9]);
        sim.clients[c].write_control(&frame);
    }
    sim.run_for(Duration::from_millis(300));
    for c in &sim.clients {
        assert!(c.messages().contains(&(0x1fff, vec![9], Transport::Stream)));
        assert_eq!(c.closed, None);
    }
}

#[test]
fn a_client_close_reaches_its_game_as_a_leave() {
    let mut sim = echo_sim(Conditions::clean());
    welcome(&mut sim, 1);
    let now = sim.now();
    sim.clients[0].conn.close(now, 0u32.into(), Bytes::new());
    sim.run_for(Duration::from_secs(2));
    let saw: Vec<_> = sim
        .games_saw()
        .into_iter()
        .map(|s| match s {
            GameSaw::Join { zone, player, .. } => ("join", *zone, *player),
            GameSaw::Leave { zone, player, .. } => ("leave", *zone, *player),
            GameSaw::Message { .. } => ("message", ZoneId(0), PlayerId(0)),
        })
        .collect();
    assert_eq!(
        saw,
        vec![
            ("join", ZoneId(1), PlayerId(1)),
            ("leave", ZoneId(1), PlayerId(1))
        ]
    );
    assert_eq!(sim.engine.counters().sessions_open, 0);
    assert_eq!(sim.engine.connections_open(), 0);
}

/// Four players on two shards of the demo game (its own 30 Hz datagrams
/// to everyone, plus echo) send reliable echoes on every lane and a
/// stream of datagrams, over a network that loses 15 % and reorders.
fn rough_run(seed: u64, identity: &lanegate_gateway::engine::tls::Identity) -> Sim<Demo> {
    let config = Config::default();
    let mut sim = Sim::new(
        &config,
        identity,
        2,
        |_| Demo::default(),
        seed,
        Conditions::rough(0.15),
    );
    for p in 1..=4u64 {
        sim.connect(&ticket_in(p, ZONES[(p % 2) as usize]));
    }
    sim.run_for(Duration::from_secs(3));
    for c in 0..sim.clients.len() {
        let mut frames = Vec::new();
        for (l, ty) in (0u8..).zip(types::ECHO) {
            for n in 0..5u8 {
                frames.extend(sim.clients[c].frame(ty, &[l, n]));
            }
        }
        sim.clients[c].write_control(&frames);
    }
    // Spaced out, or QUIC packs them into one packet that lives or dies
    // whole.
    for n in 0..20u8 {
        for c in &mut sim.clients {
            c.send_datagram(&[0x1f, 0xff, n]);
        }
        sim.run_for(Duration::from_millis(50));
    }
    sim.run_for(Duration::from_secs(3));
    sim
}

#[test]
fn the_whole_path_survives_loss_and_reordering() {
    let id = identity();
    for seed in 0..3 {
        let sim = rough_run(seed, &id);
        assert!(sim.lost() > 0, "seed {seed}: the network lost nothing");
        let mut echoed = 0;
        for (i, c) in sim.clients.iter().enumerate() {
            assert!(c.welcomed(), "seed {seed} client {i}: {:?}", c.closed);
            assert_eq!(c.closed, None, "seed {seed} client {i}");
            let reliable: Vec<_> = c
                .messages()
                .into_iter()
                .filter(|m| m.2 == Transport::Stream)
                .map(|m| m.1)
                .collect();
            // Per lane in order; lanes may interleave.
            for (l, _) in (0u8..).zip(types::ECHO) {
                let lane: Vec<_> = reliable.iter().filter(|p| p[0] == l).collect();
                let want: Vec<Vec<u8>> = (0..5u8).map(|n| vec![l, n]).collect();
                assert_eq!(
                    lane,
                    want.iter().collect::<Vec<_>>(),
                    "seed {seed} client {i}"
                );
            }
            let datagrams = c
                .messages()
                .iter()
                .filter(|m| m.0 == 0x1fff && m.2 == Transport::Datagram)
                .count();
            assert!(
                datagrams > 0,
                "seed {seed} client {i}: no echo datagram arrived"
            );
            echoed += datagrams;
        }
        let sent = 20 * sim.clients.len();
        assert!(echoed < sent, "seed {seed}: some echo datagrams are lost");
        assert!(echoed > sent / 2, "seed {seed}: {echoed} of {sent} echoed");
    }
}

#[test]
fn the_same_seed_replays_the_same_trace() {
    let id = identity();
    let first = rough_run(11, &id).trace;
    let again = rough_run(11, &id).trace;
    assert!(first.len() > 1000, "{} trace entries", first.len());
    assert!(first.iter().any(|t| matches!(t, Trace::Game { .. })));
    if let Some(i) = first.iter().zip(&again).position(|(a, b)| a != b) {
        panic!(
            "the traces part at entry {i}:\n  {:?}\n  {:?}",
            first[i], again[i]
        );
    }
    assert_eq!(first.len(), again.len());
    let other = rough_run(12, &id).trace;
    assert_ne!(first, other, "a different seed must give a different run");
}
