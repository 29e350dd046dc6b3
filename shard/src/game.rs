//! The Game API: what a game developer implements, and what the runtime
//! hands it.
//!
//! A game implements [`Game`]. The runtime calls it on its shard's thread,
//! one call at a time, never concurrently: no locks in game code. Every call
//! gets an [`Outbox`] to send with and to look up who is in which zone.
//! Sends are staged and flushed to the gateway after the tick, so a game
//! never blocks on the network.

use std::time::Duration;

use lanegate_common::config::ZoneSet;
use lanegate_common::degradation::Level;
use lanegate_common::ids::{CoreId, PlayerId, ZoneId};
use lanegate_common::lanes::{Lane, LaneTable, MessageClass};
use lanegate_common::link::{Body, BufClass, ToGateway};
use lanegate_common::wire::Transport;

use crate::pool::{BufPool, PayloadError};
use crate::world::World;

/// Game logic for the zones of one shard.
///
/// One instance per shard, created by the factory given to the runtime. If
/// any method panics, the instance is dropped, a fresh one is made, every
/// player still in the shard's zones is joined to it again
/// ([`Game::on_join`]) and the zones' players are told their zone was reset.
/// Whatever the game kept in memory is gone; keep what must survive
/// elsewhere.
pub trait Game: Send {
    /// `player` entered `zone`. Called before any of their messages.
    fn on_join(&mut self, out: &mut Outbox<'_>, zone: ZoneId, player: PlayerId) {
        let _ = (out, zone, player);
    }

    /// `player` left `zone` (or disconnected). No message of theirs follows.
    fn on_leave(&mut self, out: &mut Outbox<'_>, zone: ZoneId, player: PlayerId) {
        let _ = (out, zone, player);
    }

    /// A message from a player, in lane order (critical first).
    fn on_message(&mut self, out: &mut Outbox<'_>, msg: Incoming<'_>);

    /// Once per tick, after the tick's messages.
    fn on_tick(&mut self, out: &mut Outbox<'_>) {
        let _ = out;
    }

    /// The zone is moving to another shard: serialize its state and forget
    /// it. The bytes come back to [`Game::import_zone`] on the new shard,
    /// perhaps in another instance of the game. The default keeps nothing.
    fn export_zone(&mut self, zone: ZoneId) -> Vec<u8> {
        let _ = zone;
        Vec::new()
    }

    /// A zone moved here with `state` from [`Game::export_zone`] and these
    /// players, who do not re-join. The default joins each player afresh.
    fn import_zone(
        &mut self,
        out: &mut Outbox<'_>,
        zone: ZoneId,
        state: &[u8],
        players: &[PlayerId],
    ) {
        let _ = state;
        for &p in players {
            self.on_join(out, zone, p);
        }
    }
}

/// A boxed game is a game, so shards of one process can run different games
/// (`Shard<Box<dyn Game>>`).
impl<G: Game + ?Sized> Game for Box<G> {
    fn on_join(&mut self, out: &mut Outbox<'_>, zone: ZoneId, player: PlayerId) {
        (**self).on_join(out, zone, player);
    }

    fn on_leave(&mut self, out: &mut Outbox<'_>, zone: ZoneId, player: PlayerId) {
        (**self).on_leave(out, zone, player);
    }

    fn on_message(&mut self, out: &mut Outbox<'_>, msg: Incoming<'_>) {
        (**self).on_message(out, msg);
    }

    fn on_tick(&mut self, out: &mut Outbox<'_>) {
        (**self).on_tick(out);
    }

    fn export_zone(&mut self, zone: ZoneId) -> Vec<u8> {
        (**self).export_zone(zone)
    }

    fn import_zone(
        &mut self,
        out: &mut Outbox<'_>,
        zone: ZoneId,
        state: &[u8],
        players: &[PlayerId],
    ) {
        (**self).import_zone(out, zone, state, players);
    }
}

/// A message from a player, as handed to [`Game::on_message`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Incoming<'a> {
    /// The sender.
    pub player: PlayerId,
    /// The sender's zone.
    pub zone: ZoneId,
    /// The message type.
    pub ty: u16,
    /// The lane it travelled in.
    pub lane: Lane,
    /// How it travelled from the client.
    pub transport: Transport,
    /// The payload after the type.
    pub payload: &'a [u8],
}

/// A message to send: type, transport and payload. Its lane follows from
/// its type, by the same lane table as the gateway's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msg<'a> {
    /// The message type; never a control type (`0x0000-0x00ff`).
    pub ty: u16,
    /// Datagram (unreliable, at most `gateway.datagram_message_bytes_max`
    /// less the 2-byte type: 1098 payload bytes by default) or stream
    /// (reliable, ordered, at most `gateway.stream_message_bytes_max` less
    /// the type: 16382 by default).
    pub transport: Transport,
    /// The payload after the type.
    pub payload: &'a [u8],
}

impl<'a> Msg<'a> {
    /// An unreliable datagram message.
    pub fn datagram(ty: u16, payload: &'a [u8]) -> Self {
        Self {
            ty,
            transport: Transport::Datagram,
            payload,
        }
    }

    /// A reliable stream message.
    pub fn stream(ty: u16, payload: &'a [u8]) -> Self {
        Self {
            ty,
            transport: Transport::Stream,
            payload,
        }
    }
}

/// Why a send was refused. Refusals for lack of room are also counted in
/// the shard's health (`outbound_lost`), so most games ignore them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The type is in the protocol's control range.
    #[error("type 0x{0:04x} is a control type; games send 0x0100 and above")]
    ControlType(u16),
    /// The payload is too long for its transport.
    #[error("a {len}-byte payload is too long for a {transport:?} message")]
    TooLarge {
        /// Payload length.
        len: usize,
        /// The transport asked for.
        transport: Transport,
    },
    /// The player is not in any of this shard's zones.
    #[error("player {0} is not in this shard")]
    UnknownPlayer(PlayerId),
    /// No room: the tick's outbox or the payload pool is full.
    #[error("no room to send in the {0} lane this tick")]
    NoRoom(Lane),
}

/// Why [`Outbox::move_player`] refused a zone change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MoveError {
    /// The player is not in any of this shard's zones.
    #[error("player {0} is not in this shard")]
    UnknownPlayer(PlayerId),
    /// The gateway serves no such zone (`shards.zones`).
    #[error("zone {0} is not one the gateway serves (shards.zones)")]
    UnknownZone(ZoneId),
    /// This call already asked for as many zone changes as the outbox
    /// holds messages (`shards.outbox_slots_max`).
    #[error("too many zone changes in one call")]
    NoRoom,
}

/// What a game sends with, and where it looks up zones and players.
pub struct Outbox<'a> {
    pub(crate) world: &'a World,
    pub(crate) out: &'a mut Outbound,
    pub(crate) tick: u64,
    pub(crate) tick_interval: Duration,
    pub(crate) level: Level,
}

impl Outbox<'_> {
    /// The number of the current tick (the first is 1).
    pub fn tick(&self) -> u64 {
        self.tick
    }

    /// The shard's degradation level this tick: from
    /// [`Level::ThinHigh`] on, a game should lower what it sends in `high`
    /// (update every other tick, a smaller area of interest); below it, the
    /// runtime sheds `bulk` and defers `normal` by itself.
    pub fn level(&self) -> Level {
        self.level
    }

    /// Time between two ticks.
    pub fn tick_interval(&self) -> Duration {
        self.tick_interval
    }

    /// The players in `zone`, in join order (empty if no such zone).
    pub fn players(&self, zone: ZoneId) -> &[PlayerId] {
        self.world
            .zones
            .get(&zone)
            .map_or(&[][..], |z| z.players.as_slice())
    }

    /// The zone `player` is in, if they are in this shard.
    pub fn zone_of(&self, player: PlayerId) -> Option<ZoneId> {
        self.world.players.get(&player).map(|m| m.zone)
    }

    /// The zones this shard owns, in id order.
    pub fn zones(&self) -> impl Iterator<Item = ZoneId> + '_ {
        self.world.zones.keys().copied()
    }

    /// Moves `player` to zone `to`, which may be on another shard. At the
    /// end of this tick (or message pass) the runtime calls
    /// [`Game::on_leave`] for the old zone and forgets the player here; the
    /// gateway then joins the player to `to` (a [`Game::on_join`] on the
    /// shard that serves it, this one or another) and tells the client
    /// with `ZoneChanged`. Until then the player is still in the old zone:
    /// messages sent to them now arrive. Their messages still on the way to
    /// the old zone when it leaves are dropped, never delivered to the
    /// wrong zone. Moving a player to the zone they are in does nothing.
    pub fn move_player(&mut self, player: PlayerId, to: ZoneId) -> Result<(), MoveError> {
        let m = self
            .world
            .players
            .get(&player)
            .ok_or(MoveError::UnknownPlayer(player))?;
        if m.zone == to {
            return Ok(());
        }
        if !self.out.zones.contains(to) {
            return Err(MoveError::UnknownZone(to));
        }
        if self.out.moves.len() >= self.out.staged_max {
            return Err(MoveError::NoRoom);
        }
        self.out.moves.push((player, to));
        Ok(())
    }

    /// Sends `msg` to one player.
    pub fn send(&mut self, to: PlayerId, msg: Msg<'_>) -> Result<(), SendError> {
        let lane = self.out.check(&msg)?;
        let m = self
            .world
            .players
            .get(&to)
            .ok_or(SendError::UnknownPlayer(to))?;
        let body = self.out.body(lane, &msg)?;
        self.out.stage(
            m.core,
            ToGateway::Unicast {
                session: m.session,
                player: to,
                body,
            },
        );
        Ok(())
    }

    /// Sends `msg` to each player of `to` that is in this shard; returns how
    /// many it was staged for.
    pub fn send_to(&mut self, to: &[PlayerId], msg: Msg<'_>) -> Result<usize, SendError> {
        self.out.check(&msg)?;
        let mut sent = 0;
        for &p in to {
            match self.send(p, msg) {
                Ok(()) => sent += 1,
                Err(SendError::UnknownPlayer(_) | SendError::NoRoom(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(sent)
    }

    /// Sends `msg` to everyone in `zone`: one entry per gateway core, which
    /// fans it out to its sessions in the zone.
    pub fn broadcast(&mut self, zone: ZoneId, msg: Msg<'_>) -> Result<(), SendError> {
        let lane = self.out.check(&msg)?;
        let Some(z) = self.world.zones.get(&zone) else {
            return Ok(());
        };
        for (core, &n) in z.per_core.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let core = CoreId(u16::try_from(core).unwrap_or(u16::MAX));
            let body = self.out.body(lane, &msg)?;
            self.out.stage(core, ToGateway::Broadcast { zone, body });
        }
        Ok(())
    }

    /// Sends `msg` to the players of `zone` for whom `interested` is true:
    /// interest management, so a crowded zone does not send everyone
    /// everything. Each recipient costs one entry. Returns how many it was
    /// staged for.
    pub fn broadcast_where(
        &mut self,
        zone: ZoneId,
        msg: Msg<'_>,
        mut interested: impl FnMut(PlayerId) -> bool,
    ) -> Result<usize, SendError> {
        let lane = self.out.check(&msg)?;
        let Some(z) = self.world.zones.get(&zone) else {
            return Ok(0);
        };
        let mut sent = 0;
        for &p in &z.players {
            if !interested(p) {
                continue;
            }
            let Some(m) = self.world.players.get(&p) else {
                continue;
            };
            let Ok(body) = self.out.body(lane, &msg) else {
                continue;
            };
            let entry = ToGateway::Unicast {
                session: m.session,
                player: p,
                body,
            };
            self.out.stage(m.core, entry);
            sent += 1;
        }
        Ok(sent)
    }
}

/// How far an [`Outbound`] was filled, to undo a panicked call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mark {
    staged: [usize; Lane::COUNT],
    moves: usize,
}

/// Outbound messages staged during a tick, per lane, until the flush.
#[derive(Debug)]
pub(crate) struct Outbound {
    pub(crate) pool: BufPool,
    pub(crate) staged: [Vec<(CoreId, ToGateway)>; Lane::COUNT],
    staged_max: usize,
    /// Zone changes asked for since the runtime last applied them.
    pub(crate) moves: Vec<(PlayerId, ZoneId)>,
    pub(crate) lost: [u64; Lane::COUNT],
    lanes: LaneTable,
    /// Where players may be moved.
    zones: ZoneSet,
}

impl Outbound {
    pub(crate) fn new(pool: BufPool, staged_max: usize, lanes: LaneTable, zones: ZoneSet) -> Self {
        Self {
            pool,
            staged: std::array::from_fn(|_| Vec::with_capacity(staged_max.min(1024))),
            staged_max,
            moves: Vec::with_capacity(staged_max.min(1024)),
            lost: [0; Lane::COUNT],
            lanes,
            zones,
        }
    }

    /// How far each lane is staged, to undo a panicked call's sends.
    pub(crate) fn mark(&self) -> Mark {
        Mark {
            staged: std::array::from_fn(|i| self.staged[i].len()),
            moves: self.moves.len(),
        }
    }

    /// Drops everything staged after `mark`, recycling its buffers, and the
    /// zone changes asked for since.
    pub(crate) fn truncate(&mut self, mark: Mark) {
        self.moves.truncate(mark.moves);
        for (lane, &keep) in self.staged.iter_mut().zip(&mark.staged) {
            for (_, entry) in lane.drain(keep.min(lane.len())..) {
                if let ToGateway::Unicast { body, .. } | ToGateway::Broadcast { body, .. } = entry {
                    self.pool.recycle(body.payload);
                }
            }
        }
    }

    fn len(&self) -> usize {
        self.staged.iter().map(Vec::len).sum()
    }

    fn check(&self, msg: &Msg<'_>) -> Result<Lane, SendError> {
        let class = match msg.transport {
            Transport::Datagram => BufClass::Datagram,
            Transport::Stream => BufClass::Stream,
        };
        let max = self.pool.classes().capacity_bytes(class);
        if msg.payload.len() > max {
            return Err(SendError::TooLarge {
                len: msg.payload.len(),
                transport: msg.transport,
            });
        }
        match self.lanes.classify(msg.ty) {
            MessageClass::Control => Err(SendError::ControlType(msg.ty)),
            MessageClass::Game(lane) => Ok(lane),
        }
    }

    fn body(&mut self, lane: Lane, msg: &Msg<'_>) -> Result<Body, SendError> {
        if self.len() >= self.staged_max {
            self.lost[lane.index()] += 1;
            return Err(SendError::NoRoom(lane));
        }
        let payload = self.pool.payload(msg.payload).map_err(|e| match e {
            PayloadError::TooLarge { len } => SendError::TooLarge {
                len,
                transport: msg.transport,
            },
            _ => {
                self.lost[lane.index()] += 1;
                SendError::NoRoom(lane)
            }
        })?;
        Ok(Body {
            ty: msg.ty,
            lane,
            transport: msg.transport,
            payload,
        })
    }

    /// Stages an entry whose body [`Outbound::body`] made (and so made room
    /// for).
    fn stage(&mut self, core: CoreId, entry: ToGateway) {
        let lane = entry.lane().unwrap_or(Lane::Critical);
        self.staged[lane.index()].push((core, entry));
    }
}

#[cfg(test)]
mod tests {
    use lanegate_common::config::GatewayConfig;
    use lanegate_common::ids::{SessionId, ZoneId};
    use lanegate_common::link::BufClasses;

    use super::*;
    use crate::pool::pool;
    use crate::world::Member;

    /// The largest datagram payload the default configuration allows.
    fn datagram_payload_max() -> usize {
        GatewayConfig::default().datagram_payload_bytes_max()
    }

    fn outbound(staged_max: usize) -> Outbound {
        let classes = BufClasses::from_config(&GatewayConfig::default());
        let (pool, _returns) = pool(classes, 4, 1, 1).unwrap();
        Outbound::new(pool, staged_max, LaneTable::default(), ZoneSet::default())
    }

    fn world() -> World {
        let mut w = World::new(2);
        for (p, core) in [(1, 0), (2, 1), (3, 1)] {
            let m = Member {
                session: SessionId(p),
                zone: ZoneId(9),
                core: CoreId(core),
            };
            w.join(PlayerId(p), m);
        }
        w
    }

    fn outbox<'a>(world: &'a World, out: &'a mut Outbound) -> Outbox<'a> {
        Outbox {
            world,
            out,
            tick: 1,
            tick_interval: Duration::from_millis(10),
            level: Level::Normal,
        }
    }

    #[test]
    fn zone_changes_are_checked_and_undone_with_the_call() {
        let w = world();
        let mut out = outbound(2);
        out.zones = ZoneSet::parse("1-9").unwrap();
        let mark = out.mark();
        let mut ob = outbox(&w, &mut out);
        assert_eq!(
            ob.move_player(PlayerId(7), ZoneId(2)),
            Err(MoveError::UnknownPlayer(PlayerId(7)))
        );
        assert_eq!(
            ob.move_player(PlayerId(1), ZoneId(10)),
            Err(MoveError::UnknownZone(ZoneId(10)))
        );
        assert_eq!(
            ob.move_player(PlayerId(1), ZoneId(9)),
            Ok(()),
            "already there"
        );
        assert_eq!(ob.move_player(PlayerId(1), ZoneId(2)), Ok(()));
        assert_eq!(ob.move_player(PlayerId(2), ZoneId(3)), Ok(()));
        assert_eq!(
            ob.move_player(PlayerId(3), ZoneId(4)),
            Err(MoveError::NoRoom)
        );
        assert_eq!(
            out.moves,
            vec![(PlayerId(1), ZoneId(2)), (PlayerId(2), ZoneId(3))]
        );
        // A panicking call's zone changes are undone with its sends.
        out.truncate(mark);
        assert!(out.moves.is_empty());
    }

    #[test]
    fn sends_are_checked_and_classified() {
        let w = world();
        let mut out = outbound(16);
        let mut ob = outbox(&w, &mut out);
        assert_eq!(
            ob.send(PlayerId(1), Msg::datagram(0x0004, b"")),
            Err(SendError::ControlType(0x0004))
        );
        assert_eq!(
            ob.send(
                PlayerId(1),
                Msg::datagram(0x1000, &vec![0; datagram_payload_max() + 1])
            ),
            Err(SendError::TooLarge {
                len: datagram_payload_max() + 1,
                transport: Transport::Datagram
            })
        );
        assert_eq!(
            ob.send(PlayerId(7), Msg::datagram(0x1000, b"")),
            Err(SendError::UnknownPlayer(PlayerId(7)))
        );
        ob.send(PlayerId(1), Msg::stream(0x3abc, &[0; 2000]))
            .unwrap();
        assert_eq!(out.staged[Lane::Normal.index()].len(), 1);
    }

    #[test]
    fn broadcasts_go_once_per_core_and_filters_pick_players() {
        let w = world();
        let mut out = outbound(16);
        let mut ob = outbox(&w, &mut out);
        ob.broadcast(ZoneId(9), Msg::datagram(0x2000, b"all"))
            .unwrap();
        let n = ob
            .broadcast_where(ZoneId(9), Msg::datagram(0x2000, b"some"), |p| p.0 != 2)
            .unwrap();
        assert_eq!(n, 2);
        let cores: Vec<(u16, bool)> = out.staged[Lane::High.index()]
            .iter()
            .map(|(c, e)| (c.0, matches!(e, ToGateway::Broadcast { .. })))
            .collect();
        assert_eq!(cores, [(0, true), (1, true), (0, false), (1, false)]);
    }

    #[test]
    fn a_full_outbox_refuses_and_counts_and_truncate_recycles() {
        let w = world();
        let mut out = outbound(2);
        let mark = out.mark();
        let mut ob = outbox(&w, &mut out);
        ob.send(PlayerId(1), Msg::datagram(0x4000, &[1; 500]))
            .unwrap();
        ob.send(PlayerId(2), Msg::datagram(0x4000, &[1; 500]))
            .unwrap();
        assert_eq!(
            ob.send(PlayerId(3), Msg::datagram(0x4000, b"")),
            Err(SendError::NoRoom(Lane::Bulk))
        );
        assert_eq!(out.lost, [0, 0, 0, 1]);
        assert_eq!(out.pool.free(), (2, 1));
        out.truncate(mark);
        assert_eq!(out.pool.free(), (4, 1));
        assert!(out.staged.iter().all(Vec::is_empty));
    }
}
