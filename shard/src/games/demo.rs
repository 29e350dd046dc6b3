//! The default game: echo and arena in every zone.

use lanegate_common::ids::{PlayerId, ZoneId};

use super::{Arena, ArenaConfig, Echo};
use crate::game::{Game, Incoming, Outbox};

/// Echo types go to [`Echo`]; everything else to the [`Arena`].
#[derive(Debug, Default)]
pub struct Demo {
    arena: Arena,
}

impl Demo {
    /// A demo game whose arena uses `cfg`.
    pub fn new(cfg: ArenaConfig) -> Self {
        Self {
            arena: Arena::new(cfg),
        }
    }

    /// The arena half.
    pub fn arena(&self) -> &Arena {
        &self.arena
    }

    /// The arena half, mutably (to set up scenes in tests and tools).
    pub fn arena_mut(&mut self) -> &mut Arena {
        &mut self.arena
    }
}

impl Game for Demo {
    fn on_join(&mut self, out: &mut Outbox<'_>, zone: ZoneId, player: PlayerId) {
        self.arena.on_join(out, zone, player);
    }

    fn on_leave(&mut self, out: &mut Outbox<'_>, zone: ZoneId, player: PlayerId) {
        self.arena.on_leave(out, zone, player);
    }

    fn on_message(&mut self, out: &mut Outbox<'_>, msg: Incoming<'_>) {
        if !Echo::echo(out, &msg) {
            self.arena.on_message(out, msg);
        }
    }

    fn on_tick(&mut self, out: &mut Outbox<'_>) {
        self.arena.on_tick(out);
    }

    fn export_zone(&mut self, zone: ZoneId) -> Vec<u8> {
        self.arena.export_zone(zone)
    }

    fn import_zone(
        &mut self,
        out: &mut Outbox<'_>,
        zone: ZoneId,
        state: &[u8],
        players: &[PlayerId],
    ) {
        self.arena.import_zone(out, zone, state, players);
    }
}
