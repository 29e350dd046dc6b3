//! The game the simulation's shards run: a built-in game behind a recorder
//! that writes what the game saw into the trace, and panics on request so
//! a test can watch a zone reset travel back to the players.

use std::sync::{Arc, Mutex};

use lanegate_common::ids::{PlayerId, ShardId, ZoneId};
use lanegate_shard::game::{Game, Incoming, Outbox};

/// A message type the recorder panics on, as a buggy game would.
pub const PANIC_TYPE: u16 = 0x3ffe;

/// What a game saw, with the shard's tick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GameSaw {
    Join {
        shard: ShardId,
        tick: u64,
        zone: ZoneId,
        player: PlayerId,
    },
    Leave {
        shard: ShardId,
        tick: u64,
        zone: ZoneId,
        player: PlayerId,
    },
    Message {
        shard: ShardId,
        tick: u64,
        zone: ZoneId,
        player: PlayerId,
        ty: u16,
        payload: Vec<u8>,
    },
}

/// Shared by every shard's recorder and read by the simulation.
pub type GameLog = Arc<Mutex<Vec<GameSaw>>>;

/// `G` with what it sees written to a [`GameLog`].
pub struct Recorder<G> {
    pub inner: G,
    pub shard: ShardId,
    pub log: GameLog,
}

impl<G> Recorder<G> {
    fn record(&self, saw: GameSaw) {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).push(saw);
    }
}

impl<G: Game> Game for Recorder<G> {
    fn on_join(&mut self, out: &mut Outbox<'_>, zone: ZoneId, player: PlayerId) {
        self.record(GameSaw::Join {
            shard: self.shard,
            tick: out.tick(),
            zone,
            player,
        });
        self.inner.on_join(out, zone, player);
    }

    fn on_leave(&mut self, out: &mut Outbox<'_>, zone: ZoneId, player: PlayerId) {
        self.record(GameSaw::Leave {
            shard: self.shard,
            tick: out.tick(),
            zone,
            player,
        });
        self.inner.on_leave(out, zone, player);
    }

    fn on_message(&mut self, out: &mut Outbox<'_>, msg: Incoming<'_>) {
        self.record(GameSaw::Message {
            shard: self.shard,
            tick: out.tick(),
            zone: msg.zone,
            player: msg.player,
            ty: msg.ty,
            payload: msg.payload.to_vec(),
        });
        assert_ne!(msg.ty, PANIC_TYPE, "the game was asked to panic");
        self.inner.on_message(out, msg);
    }

    fn on_tick(&mut self, out: &mut Outbox<'_>) {
        self.inner.on_tick(out);
    }
}
