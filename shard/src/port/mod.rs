//! A gateway core's side of the rings: routing by zone, holding zones that
//! move, and reading what shards send back.
//!
//! One [`GatewayPort`] per gateway core, owned by that core's thread. It is
//! sans-IO: the gateway calls [`GatewayPort::join`], [`GatewayPort::send`]
//! and [`GatewayPort::leave`] as sessions come, talk and go, and
//! [`GatewayPort::poll`] once per loop turn to read outbound messages. The
//! deterministic test harness drives ports the same way.
//!
//! Refusals come back at once as a [`PortError`] and are counted here, and
//! only here, per lane and reason ([`GatewayPort::drops`]): the gateway's
//! engine counts what it decided itself (admission), never what the port
//! refused. A full ring is the signal the gateway's degradation logic feeds
//! on. Control entries (join, leave, zone moves) are
//! never lost: when their ring is full they wait in a per-shard backlog,
//! which game messages for that shard cannot overtake (they are refused
//! while it is not empty). Joins are refused once the backlog holds
//! `control_backlog_max` entries; leaves and zone-move entries always queue,
//! as each session leaves once and moves are few.
//!
//! **Failover.** The port reads the [`FenceBoard`] once per loop turn
//! ([`GatewayPort::lost_shard`], one atomic load when nothing changed); the
//! engine then re-joins the lost shard's players and calls
//! [`GatewayPort::fence`]. From then on [`GatewayPort::shard_of`] sends a
//! zone whose shard is fenced to [`rehome`]'s choice among the live shards,
//! the same on every core, and [`GatewayPort::poll`] drops, unread, what a
//! fenced shard still sends (counted in [`LinkDrops::fenced_dropped`]). When
//! no shard is live, joins are refused ([`PortError::Unavailable`]) and
//! messages dropped ([`DropReason::ShardLost`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lanegate_common::ids::{CoreId, PlayerId, SessionId, ShardId, ZoneId};
use lanegate_common::lanes::Lane;
use lanegate_common::link::{Body, ToGateway, ToShard, ZoneControl, ZoneDrain};
use lanegate_common::wake::Doorbell;
use lanegate_common::wire::Transport;

use crate::config::ShardConfig;
use crate::directory::{MovePlan, default_shard};
use crate::failover::rehome;
use crate::fence::FenceBoard;
use crate::levels::LevelBoard;
use crate::pool::{BufPool, PayloadError};
use crate::wiring::{CoreEnds, CoreToShard};

mod deferred;
mod drops;
mod latency;
mod route;
mod shedding;

use self::deferred::Deferred;
pub use self::drops::{DropReason, LinkDrops, PortError};
pub use self::latency::RingLatency;
use self::route::recycle;
pub use self::shedding::Shedding;

/// One gateway core's view of the shards.
#[derive(Debug)]
pub struct GatewayPort {
    core: CoreId,
    pool: BufPool,
    shards: Vec<ShardLink>,
    shard_count: u16,
    placed: HashMap<ZoneId, ShardId>,
    holds: HashMap<ZoneId, Hold>,
    hold_slots_max: usize,
    control_backlog_max: usize,
    drops: LinkDrops,
    /// This core's doorbell, rung by the shards.
    bell: Arc<Doorbell>,
    /// Which shards the watchdog failed over.
    fences: Arc<FenceBoard>,
    /// The board's epoch once every fence on it was handled here.
    fences_seen: u64,
    /// Per shard: fenced in this port's routing ([`GatewayPort::fence`]).
    fenced: Vec<bool>,
    /// What this core's degradation ladder sheds now.
    shedding: Shedding,
    /// Each shard's level, set by the gateway's control thread.
    levels: Arc<LevelBoard>,
    /// The board's epoch when `shard_shedding` was last read from it.
    levels_seen: u64,
    /// Per shard: what its level sheds of what this core sends it.
    shard_shedding: Vec<Shedding>,
    /// `normal` messages waiting while the core's level defers them.
    deferred: Deferred,
    /// The latest time a send or [`GatewayPort::set_time`] brought:
    /// deferred messages' ages are measured against it at release.
    now_seen: Option<Instant>,
    /// The current loop turn's `now` ([`GatewayPort::set_time`]): when
    /// what goes on a ring this turn went on it.
    turn: Option<Instant>,
    /// Per lane, each message's time from its receipt to the ring.
    ring_latency: RingLatency,
}

#[derive(Debug)]
struct ShardLink {
    ring: CoreToShard,
    backlog: VecDeque<ToShard>,
}

#[derive(Debug)]
struct Hold {
    plan: MovePlan,
    releasing: bool,
    queue: VecDeque<ToShard>,
    messages: usize,
}

impl GatewayPort {
    /// A port over this core's ring ends.
    pub fn new(ends: CoreEnds, cfg: &ShardConfig) -> Self {
        let shard_count = u16::try_from(ends.shards.len()).unwrap_or(u16::MAX);
        Self {
            core: ends.core,
            pool: ends.pool,
            shards: ends
                .shards
                .into_iter()
                .map(|ring| ShardLink {
                    ring,
                    backlog: VecDeque::new(),
                })
                .collect(),
            shard_count,
            placed: HashMap::new(),
            holds: HashMap::new(),
            hold_slots_max: cfg.hold_slots_max as usize,
            control_backlog_max: cfg.control_backlog_max as usize,
            drops: LinkDrops::default(),
            bell: ends.bell,
            fenced: vec![false; usize::from(shard_count)],
            shedding: Shedding::default(),
            fences_seen: 0,
            fences: ends.fences,
            levels: ends.levels,
            levels_seen: 0,
            shard_shedding: vec![Shedding::default(); usize::from(shard_count)],
            deferred: Deferred::new(
                cfg.defer_normal_slots_max as usize,
                Duration::from_millis(cfg.defer_normal_max_ms),
            ),
            now_seen: None,
            turn: None,
            ring_latency: RingLatency::new(cfg.latency_histograms),
        }
    }

    /// This core's doorbell: the shards ring it when they push to the core,
    /// so the core can sleep while its return rings are empty.
    pub fn bell(&self) -> &Arc<Doorbell> {
        &self.bell
    }

    /// Rings the doorbell of every shard this port pushed to since the last
    /// call. Call once per batch of sends (a loop turn), not per message.
    pub fn notify(&mut self) {
        for link in &mut self.shards {
            link.ring.tx.notify();
        }
    }

    /// Whether a return ring holds entries [`GatewayPort::poll`] would read,
    /// or a fence is waiting for [`GatewayPort::lost_shard`].
    pub fn has_input(&self) -> bool {
        self.fences.epoch() != self.fences_seen || self.shards.iter().any(|l| !l.ring.rx.is_empty())
    }

    /// A shard the watchdog failed over that this port still routes to, if
    /// any: the caller re-joins the players it had elsewhere and calls
    /// [`GatewayPort::fence`] (until then the same shard comes back). One
    /// atomic load when no fence is new: call it every loop turn.
    pub fn lost_shard(&mut self) -> Option<ShardId> {
        let epoch = self.fences.epoch();
        if epoch == self.fences_seen {
            return None;
        }
        let lost = (0..self.shard_count)
            .map(ShardId)
            .find(|&s| !self.fenced[usize::from(s.0)] && self.fences.is_fenced(s));
        if lost.is_none() {
            self.fences_seen = epoch;
        }
        lost
    }

    /// Stops routing to `shard` for good: its zones go to [`rehome`]'s
    /// choice among the live shards, control entries still waiting for it
    /// are dropped, and what it sends from now on is dropped unread.
    pub fn fence(&mut self, shard: ShardId) {
        let Some(flag) = self.fenced.get_mut(usize::from(shard.0)) else {
            return;
        };
        *flag = true;
        let link = &mut self.shards[usize::from(shard.0)];
        for entry in link.backlog.drain(..) {
            recycle(&mut self.pool, entry);
        }
    }

    /// Whether this port has fenced `shard`.
    pub fn is_fenced(&self, shard: ShardId) -> bool {
        self.fenced
            .get(usize::from(shard.0))
            .copied()
            .unwrap_or(true)
    }

    /// How full the fullest ring to or from a shard is, in percent of its
    /// slots: a load signal for the ladder (reads the other side's index:
    /// once per sample, not per message).
    pub fn ring_fill_percent(&mut self) -> u32 {
        let mut fullest = 0;
        for link in &mut self.shards {
            let slots = link.ring.tx.capacity().max(1);
            let used = link.ring.tx.len().max(link.ring.rx.len());
            fullest = fullest.max(used * 100 / slots);
        }
        u32::try_from(fullest).unwrap_or(u32::MAX)
    }

    /// Whether some shard is not fenced, so a player can be placed.
    pub fn has_live_shard(&self) -> bool {
        self.fenced.iter().any(|f| !f)
    }

    /// The core this port belongs to.
    pub fn core(&self) -> CoreId {
        self.core
    }

    /// What the buffers of this core's payload pool hold, per size class
    /// (from the configured message limits).
    pub fn buf_classes(&self) -> lanegate_common::link::BufClasses {
        self.pool.classes()
    }

    /// The shard this core routes `zone` to (the old owner while it moves).
    /// A zone whose shard is fenced goes to [`rehome`]'s choice among the
    /// live shards; with none live, to its fenced shard, which refuses.
    pub fn shard_of(&self, zone: ZoneId) -> ShardId {
        let home = self
            .placed
            .get(&zone)
            .copied()
            .unwrap_or_else(|| default_shard(zone, self.shard_count));
        if !self.is_fenced(home) {
            return home;
        }
        let live = (0..self.shard_count)
            .map(ShardId)
            .filter(|&s| !self.is_fenced(s));
        rehome(zone, live).unwrap_or(home)
    }

    /// Mirrors [`ZoneDirectory::place`](crate::directory::ZoneDirectory::place).
    pub fn place(&mut self, zone: ZoneId, shard: ShardId) {
        self.placed.insert(zone, shard);
    }

    /// A session enters `zone`. Returns the shard it was routed to.
    pub fn join(
        &mut self,
        session: SessionId,
        player: PlayerId,
        zone: ZoneId,
    ) -> Result<ShardId, PortError> {
        let shard = self.shard_of(zone);
        if self.is_fenced(shard) {
            self.drops.joins_unavailable += 1;
            return Err(PortError::Unavailable { shard });
        }
        let backlog = &self.shards[usize::from(shard.0)].backlog;
        if backlog.len() >= self.control_backlog_max {
            self.drops.joins_refused += 1;
            return Err(PortError::Backlog { shard });
        }
        self.route(
            zone,
            ToShard::Join {
                session,
                player,
                zone,
            },
        )?;
        Ok(shard)
    }

    /// A session the game moved enters `zone`: [`GatewayPort::join`], but
    /// never refused, since its old zone has already let it go. Each
    /// session has at most one zone change in flight, so the backlog stays
    /// bounded by the sessions. Returns the shard it was routed to.
    pub fn rejoin(&mut self, session: SessionId, player: PlayerId, zone: ZoneId) -> ShardId {
        let shard = self.shard_of(zone);
        // Control entries are queued, not refused; the Result is always Ok.
        let _ = self.route(
            zone,
            ToShard::Join {
                session,
                player,
                zone,
            },
        );
        shard
    }

    /// A session of `player` was welcomed here: its home shard hears of it
    /// ([`ToShard::Claim`]), so a session of the same player on another
    /// core in another shard's zone is replaced. With one shard the zone's
    /// shard sees every `Join` already, and nothing is sent. Never refused.
    pub fn claim(&mut self, session: SessionId, player: PlayerId) {
        if let Some(home) = self.home_of(player) {
            let _ = self.push_to(home, ToShard::Claim { session, player });
        }
    }

    /// The session of a [`GatewayPort::claim`] closed. Never refused.
    pub fn release(&mut self, session: SessionId, player: PlayerId) {
        if let Some(home) = self.home_of(player) {
            let _ = self.push_to(home, ToShard::Release { session, player });
        }
    }

    /// The shard that keeps `player`'s claims, when there are several.
    fn home_of(&self, player: PlayerId) -> Option<ShardId> {
        let shards = u64::from(self.shard_count);
        (shards > 1).then(|| ShardId(u16::try_from(player.0 % shards).unwrap_or(0)))
    }

    /// A session leaves `zone` (or closes). Never refused.
    pub fn leave(&mut self, session: SessionId, player: PlayerId, zone: ZoneId) {
        // Control entries are queued, not refused; the Result is always Ok.
        let _ = self.route(
            zone,
            ToShard::Leave {
                session,
                player,
                zone,
            },
        );
    }

    /// Forwards a game message from `player` in `zone`, already classified
    /// into `lane`, received at `now`. The payload is copied (inline, or
    /// into a pooled buffer).
    #[allow(clippy::too_many_arguments)]
    pub fn send(
        &mut self,
        now: Instant,
        session: SessionId,
        player: PlayerId,
        zone: ZoneId,
        lane: Lane,
        transport: Transport,
        ty: u16,
        payload: &[u8],
    ) -> Result<(), PortError> {
        let shard = self.shard_of(zone);
        let shard_sheds = self
            .shard_shedding
            .get(usize::from(shard.0))
            .is_some_and(|s| s.sheds(lane));
        if self.shedding.sheds(lane) || shard_sheds {
            self.drops.count(DropReason::Shed, lane);
            return Err(PortError::Shed { lane });
        }
        self.now_seen = Some(now);
        // Level 2 defers `normal` (`deferred.rs`); once the level falls,
        // later ones queue behind those still waiting, keeping their order.
        let defer =
            lane == Lane::Normal && (self.shedding.defer_normal || !self.deferred.is_empty());
        if defer
            && (!self.deferred.has_room() || payload.len() > self.pool.classes().datagram_bytes)
        {
            self.drops.count(DropReason::Shed, lane);
            return Err(PortError::Shed { lane });
        }
        let payload = self.pool.payload(payload).inspect_err(|e| {
            let reason = match e {
                PayloadError::Exhausted { .. } => DropReason::PoolEmpty,
                PayloadError::TooLarge { .. } => DropReason::TooLarge,
            };
            self.drops.count(reason, lane);
        })?;
        self.defer_or_route(
            defer,
            zone,
            shard,
            ToShard::Message {
                session,
                player,
                zone,
                body: Body {
                    ty,
                    lane,
                    transport,
                    payload,
                },
                received_at: now,
                held_us: 0,
            },
        )
    }

    /// Step 1 of a zone move (see [`crate::directory`]): marks the end of
    /// what this core sent the old owner, and holds the zone from now on.
    pub fn begin_move(&mut self, plan: &MovePlan) {
        let drain = ToShard::Zone(ZoneControl::Drain(ZoneDrain {
            zone: plan.zone,
            move_id: plan.move_id,
            to: plan.to,
            coordinator: plan.coordinator,
        }));
        let _ = self.push_to(plan.from, drain);
        self.holds.insert(
            plan.zone,
            Hold {
                plan: *plan,
                releasing: false,
                queue: VecDeque::new(),
                messages: 0,
            },
        );
    }

    /// Step 4 of a zone move: route the zone to its new owner, releasing
    /// what was held there first.
    pub fn finish_move(&mut self, plan: &MovePlan) {
        self.placed.insert(plan.zone, plan.to);
        if let Some(hold) = self.holds.get_mut(&plan.zone)
            && hold.plan.move_id == plan.move_id
        {
            hold.releasing = true;
        }
        self.pump();
    }

    /// Entries held for `zone` (0 unless it is moving).
    pub fn held(&self, zone: ZoneId) -> usize {
        self.holds.get(&zone).map_or(0, |h| h.queue.len())
    }

    /// Retries control backlogs and releases held zones, as far as the rings
    /// allow. [`GatewayPort::poll`] calls it; call it on idle turns too.
    pub fn pump(&mut self) {
        self.release_deferred();
        for link in &mut self.shards {
            while let Some(entry) = link.backlog.pop_front() {
                if let Err(full) = link.ring.tx.offer(entry) {
                    link.backlog.push_front(full.entry);
                    break;
                }
            }
        }
        let (shards, ring_latency, turn) = (&mut self.shards, &mut self.ring_latency, self.turn);
        self.holds.retain(|_, hold| {
            if !hold.releasing {
                return true;
            }
            let link = &mut shards[usize::from(hold.plan.to.0)];
            if !link.backlog.is_empty() {
                return true;
            }
            while let Some(entry) = hold.queue.pop_front() {
                let (lane, received_at) = (entry.lane(), entry.received_at());
                if let Err(full) = link.ring.tx.offer(latency::stamped(entry, turn)) {
                    hold.queue.push_front(full.entry);
                    return true;
                }
                if let Some(lane) = lane {
                    hold.messages -= 1;
                    ring_latency.record(lane, turn, received_at);
                }
            }
            false
        });
    }

    /// Reads up to `max` entries from the shards and hands each to
    /// `deliver` with the shard it came from; returns how many were read.
    /// Payload buffers go back to their pools after `deliver` returns.
    /// `ZoneExported` is handled here (forwarded to the new owner) and not
    /// delivered; `ZoneImported` is, so the control plane can finish moves.
    pub fn poll(&mut self, max: usize, mut deliver: impl FnMut(ShardId, &ToGateway)) -> usize {
        self.pump();
        self.refresh_levels();
        let mut read = 0;
        for s in 0..self.shards.len() {
            let shard = ShardId(u16::try_from(s).unwrap_or(u16::MAX));
            // The board too, not only this port's view: a shard fenced a
            // moment ago and not yet handled here is not heard either.
            if self.fenced[s] || self.fences.is_fenced(shard) {
                read += self.drop_fenced(s, max - read);
                continue;
            }
            while read < max {
                let Some(entry) = self.shards[s].ring.rx.pop() else {
                    break;
                };
                read += 1;
                match entry {
                    ToGateway::ZoneExported(handoff) => {
                        let to = handoff.to;
                        let _ = self.push_to(to, ToShard::Zone(ZoneControl::Import(handoff)));
                    }
                    entry => {
                        let shed = entry.lane().filter(|&l| self.shedding.sheds(l));
                        match shed {
                            Some(lane) => self.drops.shed_out[lane.index()] += 1,
                            None => deliver(shard, &entry),
                        }
                        if let ToGateway::Unicast { body, .. } | ToGateway::Broadcast { body, .. } =
                            entry
                        {
                            self.shards[s].ring.give_back.give_back(body.payload);
                        }
                    }
                }
            }
        }
        read
    }

    /// Messages dropped per lane since start, all reasons together.
    pub fn lost(&self) -> [u64; Lane::COUNT] {
        self.drops.per_lane()
    }

    /// Everything dropped since start, by reason and lane.
    pub fn drops(&self) -> &LinkDrops {
        &self.drops
    }

    /// Drops up to `max` entries a fenced shard sent, giving their buffers
    /// back to its pool; returns how many.
    fn drop_fenced(&mut self, s: usize, max: usize) -> usize {
        let link = &mut self.shards[s];
        let mut read = 0;
        while read < max {
            let Some(entry) = link.ring.rx.pop() else {
                break;
            };
            read += 1;
            if let ToGateway::Unicast { body, .. } | ToGateway::Broadcast { body, .. } = entry {
                link.ring.give_back.give_back(body.payload);
            }
        }
        self.drops.fenced_dropped += read as u64;
        read
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::wiring::build;

    fn port(slots: u32) -> (GatewayPort, crate::wiring::Links) {
        let cfg = ShardConfig {
            ring_slots_max: slots,
            pool_datagram_bufs_max: 4,
            pool_stream_bufs_max: 1,
            control_backlog_max: 2,
            ..ShardConfig::test_default()
        };
        let mut links = build(&cfg, 1, 1, Instant::now()).unwrap();
        (GatewayPort::new(links.cores.remove(0), &cfg), links)
    }

    fn msg(port: &mut GatewayPort, lane: Lane) -> Result<(), PortError> {
        port.send(
            Instant::now(),
            SessionId(1),
            PlayerId(1),
            ZoneId(0),
            lane,
            Transport::Datagram,
            0x1000,
            b"x",
        )
    }

    #[test]
    fn control_waits_in_a_backlog_that_messages_cannot_overtake() {
        let (mut port, mut links) = port(4);
        for _ in 0..4 {
            msg(&mut port, Lane::Critical).unwrap();
        }
        // The ring is full: the join waits, a message behind it is refused.
        port.join(SessionId(2), PlayerId(2), ZoneId(0)).unwrap();
        port.join(SessionId(3), PlayerId(3), ZoneId(0)).unwrap();
        assert_eq!(
            port.join(SessionId(4), PlayerId(4), ZoneId(0)),
            Err(PortError::Backlog { shard: ShardId(0) })
        );
        port.leave(SessionId(2), PlayerId(2), ZoneId(0));
        assert_eq!(
            msg(&mut port, Lane::Critical),
            Err(PortError::Full {
                lane: Lane::Critical
            })
        );
        assert_eq!(port.lost(), [1, 0, 0, 0]);
        // The shard drains; the backlog follows in order.
        let rx = &mut links.shards[0].cores[0].rx;
        for _ in 0..4 {
            assert!(matches!(rx.pop(), Some(ToShard::Message { .. })));
        }
        port.pump();
        assert!(matches!(
            rx.pop(),
            Some(ToShard::Join {
                player: PlayerId(2),
                ..
            })
        ));
        assert!(matches!(
            rx.pop(),
            Some(ToShard::Join {
                player: PlayerId(3),
                ..
            })
        ));
        assert!(matches!(
            rx.pop(),
            Some(ToShard::Leave {
                player: PlayerId(2),
                ..
            })
        ));
        assert!(rx.pop().is_none());
        msg(&mut port, Lane::Critical).unwrap();
    }

    #[test]
    fn lanes_below_critical_leave_headroom() {
        let (mut port, _links) = port(8);
        // Bulk may fill half of the 8 slots.
        for _ in 0..4 {
            msg(&mut port, Lane::Bulk).unwrap();
        }
        assert_eq!(
            msg(&mut port, Lane::Bulk),
            Err(PortError::Full { lane: Lane::Bulk })
        );
        for _ in 0..4 {
            msg(&mut port, Lane::Critical).unwrap();
        }
        assert_eq!(port.lost(), [0, 0, 0, 1]);
        assert_eq!(port.drops().get(DropReason::RingFull, Lane::Bulk), 1);
    }

    #[test]
    fn each_drop_is_counted_once_under_its_reason() {
        let (mut port, _links) = port(2);
        msg(&mut port, Lane::Critical).unwrap();
        msg(&mut port, Lane::Critical).unwrap();
        // Full ring: one drop, under RingFull only.
        assert!(msg(&mut port, Lane::Critical).is_err());
        // A payload over the inline size with 4 small buffers... of which
        // none are taken yet; one too large for any class.
        let huge = vec![0u8; 1 << 20];
        let sent = port.send(
            Instant::now(),
            SessionId(1),
            PlayerId(1),
            ZoneId(0),
            Lane::High,
            Transport::Stream,
            0x2000,
            &huge,
        );
        assert!(matches!(
            sent,
            Err(PortError::Payload(PayloadError::TooLarge { .. }))
        ));
        let drops = port.drops();
        assert_eq!(drops.get(DropReason::RingFull, Lane::Critical), 1);
        assert_eq!(drops.get(DropReason::TooLarge, Lane::High), 1);
        assert_eq!(port.lost(), [1, 1, 0, 0]);
        let total: u64 = DropReason::ALL
            .iter()
            .flat_map(|&r| Lane::ALL.map(|l| drops.get(r, l)))
            .sum();
        assert_eq!(total, 2, "no drop is counted twice");
    }

    #[test]
    fn a_fenced_shard_is_routed_around_and_not_heard() {
        let cfg = ShardConfig::test_default();
        let mut links = build(&cfg, 2, 3, Instant::now()).unwrap();
        let board = Arc::clone(&links.fences);
        let mut ports: Vec<GatewayPort> = links
            .cores
            .drain(..)
            .map(|ends| GatewayPort::new(ends, &cfg))
            .collect();
        assert_eq!(ports[0].lost_shard(), None);
        assert_eq!(ports[0].shard_of(ZoneId(4)), ShardId(1));
        // The shard sends a message before its fence, and one after.
        let reset = |zone| ToGateway::ZoneReset { zone: ZoneId(zone) };
        links.shards[1].cores[0].tx.push(reset(4)).unwrap();
        board.fence(ShardId(1));
        links.shards[1].cores[0].tx.push(reset(7)).unwrap();
        assert!(ports[0].has_input());
        let mut heard = Vec::new();
        ports[0].poll(64, |s, m| heard.push(format!("{s} {m:?}")));
        assert!(heard.is_empty(), "a fenced shard is not heard: {heard:?}");
        assert_eq!(ports[0].drops().fenced_dropped, 2);
        // Each core notices once, fences, and both route the same way.
        for port in &mut ports {
            assert_eq!(port.lost_shard(), Some(ShardId(1)));
            port.fence(ShardId(1));
            assert_eq!(port.lost_shard(), None);
            assert!(!port.has_input());
        }
        for z in 0..100 {
            let zone = ZoneId(z);
            let to = ports[0].shard_of(zone);
            assert_ne!(to, ShardId(1));
            assert_eq!(ports[1].shard_of(zone), to, "zone {z}: cores agree");
            if z % 3 != 1 {
                assert_eq!(to, default_shard(zone, 3), "zone {z} stayed");
            }
        }
        let on = ports[0].join(SessionId(1), PlayerId(1), ZoneId(4)).unwrap();
        assert_eq!(Some(on), rehome(ZoneId(4), [ShardId(0), ShardId(2)]));
        // Every shard lost: joins are refused, messages dropped as such.
        board.fence(ShardId(0));
        board.fence(ShardId(2));
        let port = &mut ports[0];
        while let Some(s) = port.lost_shard() {
            port.fence(s);
        }
        assert!(!port.has_live_shard());
        assert_eq!(
            port.join(SessionId(2), PlayerId(2), ZoneId(4)),
            Err(PortError::Unavailable { shard: ShardId(1) })
        );
        assert!(msg(port, Lane::Critical).is_err());
        port.leave(SessionId(1), PlayerId(1), ZoneId(4));
        assert_eq!(port.drops().joins_unavailable, 1);
        assert_eq!(port.drops().get(DropReason::ShardLost, Lane::Critical), 1);
    }
}
