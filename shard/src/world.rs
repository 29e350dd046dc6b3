//! Who is where: the runtime's own record of zones and their players.
//!
//! The runtime keeps membership itself, apart from the game, so that it
//! survives a game panic (players are re-joined to the fresh instance), so
//! that outbound messages find their session and gateway core, and so that
//! a zone move carries its members.

use std::collections::{BTreeMap, HashMap};

use lanegate_common::ids::{CoreId, PlayerId, SessionId, ZoneId};
use lanegate_common::link::ZoneMember;

/// A joined player.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) session: SessionId,
    pub(crate) zone: ZoneId,
    pub(crate) core: CoreId,
}

/// A zone this shard owns.
#[derive(Debug, Default)]
pub(crate) struct Zone {
    /// Players in join order.
    pub(crate) players: Vec<PlayerId>,
    /// Players per gateway core, to address broadcasts.
    pub(crate) per_core: Vec<u32>,
    /// Messages for this zone waiting in the shard's inbox.
    pub(crate) staged: u32,
}

/// Zones and players of one shard. Zones iterate in id order, so that runs
/// are reproducible.
#[derive(Debug)]
pub(crate) struct World {
    cores: usize,
    pub(crate) players: HashMap<PlayerId, Member>,
    pub(crate) zones: BTreeMap<ZoneId, Zone>,
}

impl World {
    pub(crate) fn new(cores: usize) -> Self {
        Self {
            cores,
            players: HashMap::new(),
            zones: BTreeMap::new(),
        }
    }

    /// Adds (or re-homes) a player. Returns the zone and member it replaced,
    /// if the player was already joined (a reconnect on a new session).
    pub(crate) fn join(&mut self, player: PlayerId, m: Member) -> Option<Member> {
        let old = self.remove(player);
        let zone = self.zone_mut(m.zone);
        zone.players.push(player);
        if let Some(n) = zone.per_core.get_mut(usize::from(m.core.0)) {
            *n += 1;
        }
        self.players.insert(player, m);
        old
    }

    /// Removes a player, if joined.
    pub(crate) fn remove(&mut self, player: PlayerId) -> Option<Member> {
        let m = self.players.remove(&player)?;
        if let Some(zone) = self.zones.get_mut(&m.zone) {
            if let Some(i) = zone.players.iter().position(|&p| p == player) {
                zone.players.remove(i);
            }
            if let Some(n) = zone.per_core.get_mut(usize::from(m.core.0)) {
                *n = n.saturating_sub(1);
            }
        }
        Some(m)
    }

    /// The zone, created empty if new.
    pub(crate) fn zone_mut(&mut self, zone: ZoneId) -> &mut Zone {
        let cores = self.cores;
        self.zones.entry(zone).or_insert_with(|| Zone {
            players: Vec::new(),
            per_core: vec![0; cores],
            staged: 0,
        })
    }

    /// Removes a zone and its players; returns them as hand-off members.
    pub(crate) fn take_zone(&mut self, zone: ZoneId) -> Vec<ZoneMember> {
        let Some(z) = self.zones.remove(&zone) else {
            return Vec::new();
        };
        z.players
            .into_iter()
            .filter_map(|player| {
                let m = self.players.remove(&player)?;
                Some(ZoneMember {
                    session: m.session,
                    player,
                    core: m.core,
                })
            })
            .collect()
    }

    /// Every (zone, player) pair, in zone order then join order.
    pub(crate) fn memberships(&self) -> Vec<(ZoneId, PlayerId)> {
        self.zones
            .iter()
            .flat_map(|(&z, zone)| zone.players.iter().map(move |&p| (z, p)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(session: u64, zone: u32, core: u16) -> Member {
        Member {
            session: SessionId(session),
            zone: ZoneId(zone),
            core: CoreId(core),
        }
    }

    #[test]
    fn join_move_and_take() {
        let mut w = World::new(2);
        assert_eq!(w.join(PlayerId(1), m(10, 5, 0)), None);
        w.join(PlayerId(2), m(20, 5, 1));
        assert_eq!(w.zones[&ZoneId(5)].per_core, [1, 1]);
        // A reconnect re-homes the player.
        assert_eq!(w.join(PlayerId(1), m(11, 6, 1)), Some(m(10, 5, 0)));
        assert_eq!(w.zones[&ZoneId(5)].players, [PlayerId(2)]);
        assert_eq!(w.zones[&ZoneId(5)].per_core, [0, 1]);
        assert_eq!(
            w.memberships(),
            [(ZoneId(5), PlayerId(2)), (ZoneId(6), PlayerId(1))]
        );
        let taken = w.take_zone(ZoneId(5));
        assert_eq!(
            taken,
            [ZoneMember {
                session: SessionId(20),
                player: PlayerId(2),
                core: CoreId(1)
            }]
        );
        assert!(!w.players.contains_key(&PlayerId(2)));
        assert!(w.take_zone(ZoneId(99)).is_empty());
    }
}
