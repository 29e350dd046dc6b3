//! [`Tag`], the game: one instance per shard, holding the zones the
//! gateway placed there.
//!
//! Per tick, in each zone: everyone moves by their last input; "it" tags
//! the nearest player within `tag_radius_m` (once the cooldown is over);
//! players standing in the east portal strip are moved to the next zone of
//! the ring (`Outbox::move_player`: the gateway takes them to whichever
//! shard serves it); then each player gets a positions datagram with
//! themselves and the players within `view_m`, nearest first.

use std::collections::BTreeMap;

use lanegate_common::config::ZoneSet;
use lanegate_common::degradation::Level;
use lanegate_common::ids::{PlayerId, ZoneId};
use lanegate_gateway::runtime::GameStart;
use lanegate_shard::games::Echo;
use lanegate_shard::{Game, Incoming, Msg, Outbox};

use crate::config::TagConfig;
use crate::wire::{self, Input, NEIGHBOURS_MAX, Position, Positions};

/// A player in a zone.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Runner {
    x: f32,
    y: f32,
    dx: i8,
    dy: i8,
    /// The last input applied (0: none yet).
    seq: u32,
}

/// A zone's game.
#[derive(Debug, Default)]
struct Field {
    runners: BTreeMap<PlayerId, Runner>,
    it: Option<PlayerId>,
    /// "It" may tag from this tick on.
    tag_from_tick: u64,
}

/// Tag on one shard.
#[derive(Debug)]
pub struct Tag {
    rules: TagConfig,
    /// The gateway's zones: the portal ring.
    zones: ZoneSet,
    fields: BTreeMap<ZoneId, Field>,
    /// Reused every tick: the neighbours of one player, and the bytes.
    view: Vec<(f32, Position)>,
    entries: Vec<Position>,
    buf: Vec<u8>,
}

impl Tag {
    /// Tag with `rules`, for the shard `start` names (every shard plays
    /// the same rules; the gateway decides which zones it holds), with a
    /// portal ring over the gateway's zones.
    pub fn new(rules: &TagConfig, start: GameStart) -> Self {
        Self {
            rules: rules.clone(),
            zones: start.zones,
            fields: BTreeMap::new(),
            view: Vec::with_capacity(256),
            entries: Vec::with_capacity(NEIGHBOURS_MAX + 1),
            buf: Vec::with_capacity(1024),
        }
    }

    /// Where a player arriving in a zone starts: just east of the west
    /// edge (away from the portal), spread out north to south by id.
    fn spawn(&self, player: PlayerId) -> (f32, f32) {
        let a = self.rules.arena_m;
        let lane = (player.0 % 7) as f32 - 3.0;
        let y = (a / 2.0 + lane * 1.5).clamp(0.0, a);
        (self.rules.portal_m + 1.0, y)
    }

    fn next_zone(&self, zone: ZoneId) -> ZoneId {
        self.zones.after(zone)
    }

    fn cooldown_ticks(&self, out: &Outbox<'_>) -> u64 {
        let tick_ms = out.tick_interval().as_millis().max(1);
        u64::try_from(u128::from(self.rules.tag_cooldown_ms) / tick_ms).unwrap_or(u64::MAX)
    }

    fn announce_it(out: &mut Outbox<'_>, zone: ZoneId, it: PlayerId, by: Option<PlayerId>) {
        // A full outbox drops it (counted); positions carry `it` anyway.
        let _ = out.broadcast(zone, Msg::stream(wire::TAGGED, &wire::tagged(it, by)));
    }

    /// Moves everyone, tags, walks players through the portal.
    fn step(&mut self, out: &mut Outbox<'_>, zone: ZoneId, dt_s: f32) {
        let cooldown = self.cooldown_ticks(out);
        let next = self.next_zone(zone);
        let rules = &self.rules;
        let Some(field) = self.fields.get_mut(&zone) else {
            return;
        };
        let step = rules.speed_mps * dt_s / 127.0;
        for r in field.runners.values_mut() {
            r.x = (r.x + f32::from(r.dx) * step).clamp(0.0, rules.arena_m);
            r.y = (r.y + f32::from(r.dy) * step).clamp(0.0, rules.arena_m);
        }
        if let Some(it) = field.it
            && out.tick() >= field.tag_from_tick
            && let Some(&at) = field.runners.get(&it)
        {
            let caught = field
                .runners
                .iter()
                .filter(|&(&p, _)| p != it)
                .map(|(&p, r)| (distance(&at, r), p))
                .filter(|&(d, _)| d <= rules.tag_radius_m)
                .min_by(|a, b| a.0.total_cmp(&b.0));
            if let Some((_, p)) = caught {
                field.it = Some(p);
                field.tag_from_tick = out.tick() + cooldown;
                Self::announce_it(out, zone, p, Some(it));
            }
        }
        for (&p, r) in &field.runners {
            if r.x >= rules.arena_m - rules.portal_m {
                // Refused only for a player not here, which cannot be.
                let _ = out.move_player(p, next);
            }
        }
    }

    /// Sends each player of `zone` themselves and who they can see.
    fn send_positions(&mut self, out: &mut Outbox<'_>, zone: ZoneId) {
        let Some(field) = self.fields.get(&zone) else {
            return;
        };
        let tick = u32::try_from(out.tick()).unwrap_or(u32::MAX);
        let it = field.it.map_or(0, |p| p.0);
        for (&p, r) in &field.runners {
            self.view.clear();
            for (&q, s) in &field.runners {
                let d = distance(r, s);
                if q != p && d <= self.rules.view_m {
                    self.view.push((d, position(q, s)));
                }
            }
            nearest_first(&mut self.view, NEIGHBOURS_MAX);
            self.entries.clear();
            self.entries.push(position(p, r));
            self.entries.extend(self.view.iter().map(|&(_, e)| e));
            self.buf.clear();
            Positions::encode_into(tick, r.seq, it, &self.entries, &mut self.buf);
            // A full outbox drops it (counted); the next tick sends anew.
            let _ = out.send(p, Msg::datagram(wire::POSITIONS, &self.buf));
        }
    }
}

impl Game for Tag {
    fn on_join(&mut self, out: &mut Outbox<'_>, zone: ZoneId, player: PlayerId) {
        let (x, y) = self.spawn(player);
        let field = self.fields.entry(zone).or_default();
        field.runners.insert(
            player,
            Runner {
                x,
                y,
                dx: 0,
                dy: 0,
                seq: 0,
            },
        );
        match field.it {
            Some(it) => {
                // Tell the newcomer who is "it".
                let _ = out.send(player, Msg::stream(wire::TAGGED, &wire::tagged(it, None)));
            }
            None => {
                field.it = Some(player);
                Self::announce_it(out, zone, player, None);
            }
        }
    }

    fn on_leave(&mut self, out: &mut Outbox<'_>, zone: ZoneId, player: PlayerId) {
        let Some(field) = self.fields.get_mut(&zone) else {
            return;
        };
        field.runners.remove(&player);
        if field.runners.is_empty() {
            self.fields.remove(&zone);
            return;
        }
        if field.it == Some(player) {
            // The lowest id is "it" now; the map is ordered, so every run
            // picks the same player.
            let next = field.runners.keys().next().copied();
            field.it = next;
            if let Some(it) = next {
                Self::announce_it(out, zone, it, None);
            }
        }
    }

    fn on_message(&mut self, out: &mut Outbox<'_>, msg: Incoming<'_>) {
        // The diagnostic echo types, so `tag-server probe` and `bots` work.
        if Echo::echo(out, &msg) {
            return;
        }
        match msg.ty {
            wire::INPUT => {
                let (Some(input), Some(field)) =
                    (Input::decode(msg.payload), self.fields.get_mut(&msg.zone))
                else {
                    return;
                };
                if let Some(r) = field.runners.get_mut(&msg.player)
                    && input.seq > r.seq
                {
                    (r.dx, r.dy, r.seq) = (input.dx, input.dy, input.seq);
                }
            }
            wire::CHAT => {
                let Some(text) = wire::chat_text(msg.payload) else {
                    return;
                };
                self.buf.clear();
                wire::chat_from(msg.player, text, &mut self.buf);
                let _ = out.broadcast(msg.zone, Msg::stream(wire::CHAT_FROM, &self.buf));
            }
            // Unknown types are ignored, so clients can be newer than us.
            _ => {}
        }
    }

    fn on_tick(&mut self, out: &mut Outbox<'_>) {
        let dt_s = out.tick_interval().as_secs_f32();
        // A loaded shard (level 3, thin `high`): positions every other
        // tick; the game itself still runs every tick.
        let thin = out.level() >= Level::ThinHigh && out.tick() % 2 == 1;
        let zones: Vec<ZoneId> = self.fields.keys().copied().collect();
        for zone in zones {
            self.step(out, zone, dt_s);
            if !thin {
                self.send_positions(out, zone);
            }
        }
    }
}

fn distance(a: &Runner, b: &Runner) -> f32 {
    (a.x - b.x).hypot(a.y - b.y)
}

fn position(player: PlayerId, r: &Runner) -> Position {
    // Clamped to [0, u16::MAX] first, so the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let cm = |m: f32| (m * 100.0).round().clamp(0.0, f32::from(u16::MAX)) as u16;
    Position {
        player,
        x_cm: cm(r.x),
        y_cm: cm(r.y),
    }
}

/// Keeps the `max` nearest, nearest first (ties by player id, so every run
/// sends the same bytes).
fn nearest_first(view: &mut Vec<(f32, Position)>, max: usize) {
    view.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.player.cmp(&b.1.player)));
    view.truncate(max);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(d: f32, p: u64) -> (f32, Position) {
        (
            d,
            Position {
                player: PlayerId(p),
                x_cm: 0,
                y_cm: 0,
            },
        )
    }

    #[test]
    fn interest_keeps_the_nearest_in_order() {
        let mut view = vec![entry(3.0, 1), entry(1.0, 2), entry(2.0, 3), entry(1.0, 0)];
        nearest_first(&mut view, 3);
        let ids: Vec<u64> = view.iter().map(|e| e.1.player.0).collect();
        assert_eq!(ids, vec![0, 2, 3]);
    }

    #[test]
    fn positions_are_centimetres_clamped_to_u16() {
        let r = Runner {
            x: 2.5,
            y: 700.0,
            dx: 0,
            dy: 0,
            seq: 0,
        };
        let p = position(PlayerId(1), &r);
        assert_eq!((p.x_cm, p.y_cm), (250, u16::MAX));
    }

    #[test]
    fn the_portal_ring_wraps() {
        let tag = Tag::new(
            &TagConfig::default(),
            GameStart::new(
                lanegate_common::ids::ShardId(0),
                1,
                ZoneSet::parse("0-3").unwrap(),
            ),
        );
        assert_eq!(tag.next_zone(ZoneId(2)), ZoneId(3));
        assert_eq!(tag.next_zone(ZoneId(3)), ZoneId(0));
        let (x, _) = tag.spawn(PlayerId(9));
        assert!(
            x < tag.rules.arena_m - tag.rules.portal_m,
            "spawns clear of the portal"
        );
    }
}
