//! The game the simulation's shards run: a built-in game behind a recorder
//! that writes what the game saw into the trace, panics on request (so a
//! test can watch a zone reset travel back to the players) and moves the
//! sender to another zone on request (a portal).

use std::sync::{Arc, Mutex};

use lanegate_common::ids::{PlayerId, ShardId, ZoneId};
use lanegate_shard::game::{Game, Incoming, Outbox};

/// A message type the recorder panics on, as a buggy game would.
pub const PANIC_TYPE: u16 = 0x3ffe;

/// A message type asking the game to move the sender to the zone its
/// payload names (4 bytes, big-endian), as walking through a portal does.
pub const PORTAL_TYPE: u16 = 0x3ffd;

/// The payload of a [`PORTAL_TYPE`] message to `zone`.
pub fn portal_to(zone: ZoneId) -> [u8; 4] {
    zone.0.to_be_bytes()
}

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
        if msg.ty == PORTAL_TYPE
            && let Ok(zone) = <[u8; 4]>::try_from(msg.payload)
        {
            out.move_player(msg.player, ZoneId(u32::from_be_bytes(zone)))
                .unwrap();
            return;
        }
        self.inner.on_message(out, msg);
    }

    fn on_tick(&mut self, out: &mut Outbox<'_>) {
        self.inner.on_tick(out);
    }
}
