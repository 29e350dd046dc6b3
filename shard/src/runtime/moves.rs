//! Zones and players that move: a zone drained from this shard and
//! exported to another, a zone imported here, and the zone changes a game
//! asked for (`Outbox::move_player`), which end in a leave here and a
//! `ZoneChanged` to the player's gateway core.

use std::panic::{AssertUnwindSafe, catch_unwind};

use lanegate_common::ids::PlayerId;
use lanegate_common::link::{ToGateway, ZoneDrain, ZoneHandoff};

use super::{MOVE_ROUNDS_MAX, Shard};
use crate::game::Game;
use crate::world::Member;

impl<G: Game> Shard<G> {
    pub(super) fn finish_drains(&mut self) {
        if self.drains.is_empty() {
            return;
        }
        let ready: Vec<ZoneDrain> = self
            .drains
            .values()
            .filter(|d| d.seen.iter().all(|&s| s))
            .filter(|d| {
                self.world
                    .zones
                    .get(&d.drain.zone)
                    .is_none_or(|z| z.staged == 0)
            })
            .map(|d| d.drain)
            .collect();
        for drain in ready {
            self.drains.remove(&drain.zone);
            self.export(drain);
        }
    }

    fn export(&mut self, drain: ZoneDrain) {
        let zone = drain.zone;
        let members = self.world.take_zone(zone);
        let exported = catch_unwind(AssertUnwindSafe(|| self.game.export_zone(zone)));
        let state = match exported {
            Ok(state) => state,
            Err(panic) => {
                self.restart(&*panic);
                // The zone is gone from this shard, so the restart did not
                // reset it: its players lose their state all the same.
                for m in &members {
                    self.control(m.core, ToGateway::ZoneReset { zone });
                }
                Vec::new()
            }
        };
        let handoff = ZoneHandoff {
            zone,
            move_id: drain.move_id,
            from: self.id,
            to: drain.to,
            coordinator: drain.coordinator,
            members,
            state,
        };
        self.control(
            drain.coordinator,
            ToGateway::ZoneExported(Box::new(handoff)),
        );
    }

    pub(super) fn import(&mut self, h: ZoneHandoff) {
        self.world.zone_mut(h.zone);
        for m in &h.members {
            let member = Member {
                session: m.session,
                zone: h.zone,
                core: m.core,
            };
            self.world.join(m.player, member);
        }
        let players: Vec<PlayerId> = h.members.iter().map(|m| m.player).collect();
        self.call(|g, out| g.import_zone(out, h.zone, &h.state, &players));
        self.control(
            h.coordinator,
            ToGateway::ZoneImported {
                zone: h.zone,
                move_id: h.move_id,
            },
        );
    }

    /// Carries out the zone changes the game asked for with
    /// [`Outbox::move_player`]: the old zone sees the leave here, and the
    /// gateway core holding the session is told, which joins the player to
    /// the new zone's shard. An `on_leave` that moves more players is
    /// followed for a few rounds; what is asked for after that waits for
    /// the next tick.
    pub(super) fn apply_moves(&mut self) {
        for _ in 0..MOVE_ROUNDS_MAX {
            if self.out.moves.is_empty() {
                return;
            }
            std::mem::swap(&mut self.moving, &mut self.out.moves);
            for i in 0..self.moving.len() {
                let (player, to) = self.moving[i];
                let Some(m) = self.world.players.get(&player).copied() else {
                    continue;
                };
                if m.zone == to {
                    continue;
                }
                self.world.remove(player);
                self.call(|g, out| g.on_leave(out, m.zone, player));
                self.control(
                    m.core,
                    ToGateway::ZoneChanged {
                        session: m.session,
                        player,
                        from: m.zone,
                        to,
                    },
                );
            }
            self.moving.clear();
        }
    }
}
