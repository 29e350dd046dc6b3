//! The shard worker's core: one tick at a time, no threads, no clock of its
//! own.
//!
//! [`Shard::run_tick`] does one tick:
//!
//! 1. **Intake.** Take what is in each core's inbound ring (as much as was
//!    there when the tick began: bounded work). Joins, leaves and zone
//!    control take effect at once, in ring order. Messages go to a
//!    per-lane inbox; a full inbox sheds the message and counts it.
//! 2. **Messages, in lane order.** Critical, then high, normal, bulk; each
//!    lane at most `lane_budget_per_tick` messages, so a bulk flood waits in
//!    its own inbox and never delays critical.
//! 3. **Zone moves.** A zone with a `Drain` marker from every core and
//!    nothing left in the inbox is exported.
//! 4. **`Game::on_tick`.**
//! 5. **Flush.** Control replies first (never dropped: they wait in a
//!    per-core backlog), then staged messages in lane order, to the rings of
//!    the gateway cores that hold the recipients. A full ring loses the
//!    message and counts it against its lane.
//!
//! Every call into the game runs under `catch_unwind`. A panic discards the
//! call's sends, replaces the game with a fresh instance, re-joins every
//! player to it and queues a `ZoneReset` for each zone with players.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lanegate_common::degradation::Level;
use lanegate_common::ids::{CoreId, PlayerId, SessionId, ShardId, ZoneId};
use lanegate_common::lanes::Lane;
use lanegate_common::link::{Body, ShardHealth, ToGateway, ToShard, ZoneControl, ZoneDrain};
use lanegate_common::wake::Doorbell;

use crate::clock::Clock;
use crate::config::ShardConfig;
use crate::game::{Game, Incoming, Outbound, Outbox};
use crate::health::{HealthSlot, TickStats};
use crate::latency::ServiceClock;
use crate::levels::LevelBoard;
use crate::wiring::{ShardEnds, ShardToCore};
use crate::world::{Member, World};

mod moves;

/// Fresh instances tried after a panic before the shard stops re-joining
/// players (the game then starts with no one joined).
const RESTART_ATTEMPTS_MAX: u32 = 3;

/// Rounds of [`Shard::apply_moves`] per tick: zone changes asked for by
/// the `on_leave` calls of zone changes, and so on.
const MOVE_ROUNDS_MAX: usize = 4;

/// What one tick did, for the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TickReport {
    /// The tick's number (the first is 1).
    pub tick: u64,
    /// How long it took by the clock.
    pub took: Duration,
    /// Whether it took longer than `tick_budget_us`.
    pub overrun: bool,
    /// Game instances replaced during the tick.
    pub restarts: u32,
}

/// A shard: its zones, its game instance and its ends of the rings.
pub struct Shard<G> {
    id: ShardId,
    cores: Vec<CoreLink>,
    factory: Box<dyn FnMut() -> G + Send>,
    game: G,
    world: World,
    out: Outbound,
    inbox: [VecDeque<Staged>; Lane::COUNT],
    inbox_max: [usize; Lane::COUNT],
    lane_budget: [u32; Lane::COUNT],
    drains: HashMap<ZoneId, Draining>,
    stats: TickStats,
    health: Arc<HealthSlot>,
    health_every: u64,
    tick_interval: Duration,
    tick: u64,
    inbound_shed: [u64; Lane::COUNT],
    restarts: u32,
    ring_depth: u32,
    /// Rung by the gateway cores when they push to this shard.
    bell: Arc<Doorbell>,
    /// The zone changes being applied (swapped with the outbox's, so that
    /// `on_leave` can ask for more while these are carried out).
    moving: Vec<(PlayerId, ZoneId)>,
    /// Messages dropped per lane because their sender had left the zone
    /// they were sent in (moved to another, or closed) before their turn.
    stale_dropped: [u64; Lane::COUNT],
    /// The shortest wait of a message handed to the game since the last
    /// health snapshot (`ShardHealth::sojourn_min_us`), and how many
    /// messages it is the minimum of.
    sojourn_min: Option<Duration>,
    sojourn_count: u32,
    /// The live session of each player whose home shard this is
    /// (`ToShard::Claim`), and its core. At most one entry per session the
    /// gateway holds: each is released when its session closes.
    claims: HashMap<PlayerId, (CoreId, SessionId)>,
    /// Every shard's degradation level; this one reads its own each tick.
    levels: Arc<LevelBoard>,
    /// This shard's level for the current tick or pass.
    level: Level,
    /// Outbound `bulk` messages shed because of the level.
    shed_out: u64,
    /// Each message's time from its ring to the reply handed back, and
    /// the ticks' durations (`crate::latency`).
    service: ServiceClock,
}

struct CoreLink {
    ring: ShardToCore,
    /// Control replies waiting for room in the ring; never dropped.
    backlog: VecDeque<ToGateway>,
}

/// Messages a health window must hand to the game before its shortest
/// wait counts as a queue (the ladder's sojourn signal): with a handful, one
/// descheduled tick would look like overload.
const SOJOURN_MESSAGES_MIN: u32 = 32;

struct Staged {
    session: SessionId,
    player: PlayerId,
    zone: ZoneId,
    core: CoreId,
    body: Body,
    received_at: Instant,
    ringed_at: Instant,
}

struct Draining {
    drain: ZoneDrain,
    seen: Vec<bool>,
}

impl<G: Game> Shard<G> {
    /// A shard over its ring ends, running games made by `factory` (called
    /// now, and again after each panic).
    pub fn new(
        ends: ShardEnds,
        cfg: &ShardConfig,
        mut factory: impl FnMut() -> G + Send + 'static,
    ) -> Self {
        let cores = ends.cores.len();
        let game = factory();
        let inbox_max = cfg.inbox_slots_max.map(|n| n as usize);
        Self {
            id: ends.shard,
            cores: ends
                .cores
                .into_iter()
                .map(|ring| CoreLink {
                    ring,
                    backlog: VecDeque::new(),
                })
                .collect(),
            factory: Box::new(factory),
            game,
            world: World::new(cores),
            out: Outbound::new(
                ends.pool,
                cfg.outbox_slots_max as usize,
                cfg.lanes.clone(),
                cfg.zones.clone(),
            ),
            inbox: std::array::from_fn(|i| VecDeque::with_capacity(inbox_max[i].min(1024))),
            inbox_max,
            lane_budget: cfg.lane_budget_per_tick,
            drains: HashMap::new(),
            stats: TickStats::new(cfg.tick_window_ticks as usize, cfg.tick_budget()),
            health: ends.health,
            health_every: u64::from(cfg.health_every_ticks.max(1)),
            tick_interval: cfg.tick_interval(),
            tick: 0,
            inbound_shed: [0; Lane::COUNT],
            restarts: 0,
            ring_depth: 0,
            bell: ends.bell,
            moving: Vec::with_capacity((cfg.outbox_slots_max as usize).min(1024)),
            stale_dropped: [0; Lane::COUNT],
            sojourn_min: None,
            sojourn_count: 0,
            claims: HashMap::new(),
            levels: ends.levels,
            level: Level::Normal,
            shed_out: 0,
            service: ServiceClock::new(
                cfg.latency_histograms,
                cfg.lane_budget_per_tick.iter().map(|&b| b as usize).sum(),
                ends.latency,
            ),
        }
    }

    /// This shard's doorbell: the gateway cores ring it after pushing, so
    /// whatever runs the shard can sleep while its rings are empty.
    pub fn bell(&self) -> Arc<Doorbell> {
        Arc::clone(&self.bell)
    }

    /// Whether a ring from a gateway core holds entries.
    pub fn has_input(&self) -> bool {
        self.cores.iter().any(|c| !c.ring.rx.is_empty())
    }

    /// This shard's id.
    pub fn id(&self) -> ShardId {
        self.id
    }

    /// The slot this shard publishes its health to.
    pub fn health_slot(&self) -> Arc<HealthSlot> {
        self.health.clone()
    }

    /// The game instance (a fresh one after each panic).
    pub fn game(&self) -> &G {
        &self.game
    }

    /// The game instance, mutably: for tests and tooling that set up a
    /// scene between ticks. Game code never needs it.
    pub fn game_mut(&mut self) -> &mut G {
        &mut self.game
    }

    /// Messages dropped per lane because their sender had left the zone
    /// they were sent in (a zone change, or a close) before the game got
    /// to them: never delivered to another zone.
    pub fn stale_dropped(&self) -> [u64; Lane::COUNT] {
        self.stale_dropped
    }

    /// Runs one tick, reading the time from `clock` at its start and end.
    pub fn run_tick(&mut self, clock: &impl Clock) -> TickReport {
        let start = clock.now();
        self.level = self.levels.get(self.id);
        self.health.tick_started(start);
        let restarts_before = self.restarts;
        self.tick += 1;

        self.intake();
        self.handle_messages(start);
        self.finish_drains();
        self.call(|game, out| game.on_tick(out));
        self.apply_moves();
        self.flush();

        let end = clock.now();
        self.service.handed_back(end);
        let took = end.saturating_duration_since(start);
        self.service.tick(took);
        let overrun = self.stats.record(took);
        self.health.tick_ended();
        if self.tick.is_multiple_of(self.health_every) {
            self.publish_health();
        }
        TickReport {
            tick: self.tick,
            took,
            overrun,
            restarts: self.restarts - restarts_before,
        }
    }

    /// A message pass between ticks: takes what the rings hold, hands it to
    /// the game in lane order with the same per-lane budgets as a tick, and
    /// flushes what the game sent, without advancing the simulation
    /// (`Game::on_tick` is not called and the tick count does not move).
    /// Replies that need no simulation step leave at once instead of waiting
    /// for the next tick. Watched by the stall watchdog like a tick.
    pub fn run_messages(&mut self, clock: &impl Clock) {
        let start = clock.now();
        self.health.tick_started(start);
        self.level = self.levels.get(self.id);
        self.intake();
        self.handle_messages(start);
        self.finish_drains();
        self.apply_moves();
        self.flush();
        self.service.handed_back(clock.now());
        self.health.tick_ended();
    }

    /// Builds the health snapshot, publishes it and returns it.
    pub fn publish_health(&mut self) -> ShardHealth {
        let (p50, p99, max) = self.stats.percentiles();
        let mut outbound_lost = self.out.lost;
        for link in &self.cores {
            for (l, n) in outbound_lost.iter_mut().zip(link.ring.tx.lost()) {
                *l += n;
            }
        }
        let h = ShardHealth {
            shard: self.id,
            ticks: self.stats.ticks,
            overruns: self.stats.overruns,
            tick_p50_us: p50,
            tick_p99_us: p99,
            tick_max_us: max,
            inbox_depth: std::array::from_fn(|i| {
                u32::try_from(self.inbox[i].len()).unwrap_or(u32::MAX)
            }),
            ring_depth: self.ring_depth,
            inbound_shed: self.inbound_shed,
            outbound_lost,
            restarts: self.restarts,
            stale_dropped: self.stale_dropped.iter().sum(),
            level: self.level.number(),
            shed_out: self.shed_out,
            stalled: false,
            stalls: 0,
            fenced: false,
            heartbeat_age_us: 0,
            zones: u32::try_from(self.world.zones.len()).unwrap_or(u32::MAX),
            players: u32::try_from(self.world.players.len()).unwrap_or(u32::MAX),
            // A few messages that waited are a slow moment, not a standing
            // queue: below SOJOURN_MESSAGES_MIN there is no figure.
            sojourn_min_us: self
                .sojourn_min
                .take()
                .filter(|_| std::mem::take(&mut self.sojourn_count) >= SOJOURN_MESSAGES_MIN)
                .map_or(0, |d| u32::try_from(d.as_micros()).unwrap_or(u32::MAX)),
        };
        self.health.publish(&h);
        self.service.publish();
        self.health.read()
    }

    fn intake(&mut self) {
        let mut depth = 0usize;
        for c in 0..self.cores.len() {
            let core = CoreId(u16::try_from(c).unwrap_or(u16::MAX));
            // Only what was there when we looked: a producer that keeps
            // pushing cannot keep us here.
            let available = self.cores[c].ring.rx.len();
            for _ in 0..available {
                let Some(entry) = self.cores[c].ring.rx.pop() else {
                    break;
                };
                self.accept(core, entry);
            }
            depth += self.cores[c].ring.rx.len();
        }
        self.ring_depth = u32::try_from(depth).unwrap_or(u32::MAX);
    }

    fn accept(&mut self, core: CoreId, entry: ToShard) {
        match entry {
            ToShard::Join {
                session,
                player,
                zone,
            } => {
                let member = Member {
                    session,
                    zone,
                    core,
                };
                if let Some(old) = self.world.join(player, member) {
                    self.call(|g, out| g.on_leave(out, old.zone, player));
                    // A new session of a joined player replaces the old
                    // one: its core closes it (`docs/protocol.md` §4). A
                    // re-join of the same session (a zone change, a
                    // failover) replaces nothing.
                    if old.session != session {
                        self.control(
                            old.core,
                            ToGateway::SessionReplaced {
                                session: old.session,
                                player,
                            },
                        );
                    }
                }
                self.call(|g, out| g.on_join(out, zone, player));
            }
            ToShard::Leave {
                session, player, ..
            } => {
                // A leave from a replaced session is stale: ignore it.
                if self.world.players.get(&player).map(|m| m.session) == Some(session)
                    && let Some(old) = self.world.remove(player)
                {
                    self.call(|g, out| g.on_leave(out, old.zone, player));
                }
            }
            ToShard::Message {
                session,
                player,
                zone,
                body,
                received_at,
                held_us,
            } => {
                let lane = body.lane.index();
                if self.inbox[lane].len() >= self.inbox_max[lane] {
                    self.inbound_shed[lane] += 1;
                    self.give_back(core, body);
                    return;
                }
                if let Some(z) = self.world.zones.get_mut(&zone) {
                    z.staged += 1;
                }
                self.inbox[lane].push_back(Staged {
                    session,
                    player,
                    zone,
                    core,
                    body,
                    received_at,
                    ringed_at: received_at + Duration::from_micros(u64::from(held_us)),
                });
            }
            ToShard::Zone(ZoneControl::Drain(drain)) => {
                let cores = self.cores.len();
                let d = self.drains.entry(drain.zone).or_insert_with(|| Draining {
                    drain,
                    seen: vec![false; cores],
                });
                if d.drain.move_id == drain.move_id
                    && let Some(seen) = d.seen.get_mut(usize::from(core.0))
                {
                    *seen = true;
                }
            }
            ToShard::Zone(ZoneControl::Import(handoff)) => self.import(*handoff),
            ToShard::Claim { session, player } => {
                // This is the player's home shard: a second session of the
                // player, from any core, replaces the first.
                if let Some((old_core, old)) = self.claims.insert(player, (core, session))
                    && old != session
                {
                    self.control(
                        old_core,
                        ToGateway::SessionReplaced {
                            session: old,
                            player,
                        },
                    );
                }
            }
            ToShard::Release { session, player } => {
                if self.claims.get(&player).is_some_and(|&(_, s)| s == session) {
                    self.claims.remove(&player);
                }
            }
        }
    }

    fn handle_messages(&mut self, now: Instant) {
        for lane in Lane::ALL {
            let i = lane.index();
            // Loaded (level 2 and up): normal waits in its inbox, which is
            // bounded (`inbox_slots_max`; past it, messages are shed and
            // counted), and a quarter of its budget goes to the game.
            let budget = if lane == Lane::Normal && self.level >= Level::DeferNormal {
                (self.lane_budget[i] / 4).max(1)
            } else {
                self.lane_budget[i]
            };
            for _ in 0..budget {
                let Some(s) = self.inbox[i].pop_front() else {
                    break;
                };
                if let Some(z) = self.world.zones.get_mut(&s.zone) {
                    z.staged = z.staged.saturating_sub(1);
                }
                let waited = now.saturating_duration_since(s.received_at);
                self.service.delivered(lane, s.ringed_at);
                self.sojourn_min = Some(self.sojourn_min.map_or(waited, |m| m.min(waited)));
                self.sojourn_count = self.sojourn_count.saturating_add(1);
                // Messages from a session that has since left are dropped.
                let current = self.world.players.get(&s.player);
                if current.is_some_and(|m| m.session == s.session && m.zone == s.zone) {
                    let msg = Incoming {
                        player: s.player,
                        zone: s.zone,
                        ty: s.body.ty,
                        lane: s.body.lane,
                        transport: s.body.transport,
                        payload: s.body.payload.as_slice(),
                    };
                    self.call(|g, out| g.on_message(out, msg));
                } else {
                    self.stale_dropped[i] += 1;
                }
                self.give_back(s.core, s.body);
            }
        }
    }

    fn flush(&mut self) {
        for link in &mut self.cores {
            while let Some(entry) = link.backlog.pop_front() {
                if let Err(full) = link.ring.tx.offer(entry) {
                    link.backlog.push_front(full.entry);
                    break;
                }
            }
        }
        for lane in Lane::ALL {
            let staged = &mut self.out.staged[lane.index()];
            if lane == Lane::Bulk && self.level >= Level::ShedBulk {
                // Loaded: what the game sent in bulk goes no further.
                for (_, entry) in staged.drain(..) {
                    self.shed_out += 1;
                    if let ToGateway::Unicast { body, .. } | ToGateway::Broadcast { body, .. } =
                        entry
                    {
                        self.out.pool.recycle(body.payload);
                    }
                }
                continue;
            }
            for (core, entry) in staged.drain(..) {
                let Some(link) = self.cores.get_mut(usize::from(core.0)) else {
                    continue;
                };
                if let Err(full) = link.ring.tx.push(entry)
                    && let ToGateway::Unicast { body, .. } | ToGateway::Broadcast { body, .. } =
                        full.entry
                {
                    self.out.pool.recycle(body.payload);
                }
            }
        }
        // One ring per core that got entries, for the whole batch.
        for link in &mut self.cores {
            link.ring.tx.notify();
        }
    }

    /// Calls into the game under `catch_unwind`; on a panic, undoes the
    /// call's sends and restarts the game. Returns whether it completed.
    fn call(&mut self, f: impl FnOnce(&mut G, &mut Outbox<'_>)) -> bool {
        let mark = self.out.mark();
        let result = self.catch_game(f);
        match result {
            Ok(()) => true,
            Err(panic) => {
                self.out.truncate(mark);
                self.restart(&*panic);
                false
            }
        }
    }

    /// Runs `f` on the game with an outbox, catching a panic.
    fn catch_game(&mut self, f: impl FnOnce(&mut G, &mut Outbox<'_>)) -> std::thread::Result<()> {
        let Self {
            game,
            world,
            out,
            tick,
            tick_interval,
            level,
            ..
        } = self;
        catch_unwind(AssertUnwindSafe(|| {
            let mut outbox = Outbox {
                world,
                out,
                tick: *tick,
                tick_interval: *tick_interval,
                level: *level,
            };
            f(game, &mut outbox);
        }))
    }

    /// Replaces the game with a fresh instance and re-joins every player.
    fn restart(&mut self, panic: &(dyn Any + Send)) {
        let what = panic
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(non-string panic payload)");
        tracing::error!(shard = %self.id, panic = what, "game panicked; restarting it with a fresh instance");
        // Tell every zone's players, on each core that has some.
        let resets: Vec<(CoreId, ZoneId)> = self
            .world
            .zones
            .iter()
            .flat_map(|(&zone, z)| {
                z.per_core
                    .iter()
                    .enumerate()
                    .filter(|&(_, &n)| n > 0)
                    .map(move |(c, _)| (CoreId(u16::try_from(c).unwrap_or(u16::MAX)), zone))
            })
            .collect();
        for (core, zone) in resets {
            self.control(core, ToGateway::ZoneReset { zone });
        }
        let memberships = self.world.memberships();
        for _ in 0..RESTART_ATTEMPTS_MAX {
            self.restarts += 1;
            self.game = (self.factory)();
            let mark = self.out.mark();
            let rejoined = self.catch_game(|game, outbox| {
                for &(zone, player) in &memberships {
                    game.on_join(outbox, zone, player);
                }
            });
            if rejoined.is_ok() {
                return;
            }
            self.out.truncate(mark);
            tracing::error!(shard = %self.id, "fresh game instance panicked while re-joining players");
        }
        self.restarts += 1;
        self.game = (self.factory)();
    }

    fn control(&mut self, core: CoreId, entry: ToGateway) {
        if let Some(link) = self.cores.get_mut(usize::from(core.0)) {
            link.backlog.push_back(entry);
        }
    }

    fn give_back(&mut self, core: CoreId, body: Body) {
        if let Some(link) = self.cores.get_mut(usize::from(core.0)) {
            link.ring.give_back.give_back(body.payload);
        }
    }
}

impl<G> std::fmt::Debug for Shard<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("id", &self.id)
            .field("tick", &self.tick)
            .field("zones", &self.world.zones.len())
            .field("players", &self.world.players.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use lanegate_common::link::{InlinePayload, Payload};
    use lanegate_common::wire::Transport;

    use super::*;
    use crate::clock::VirtualClock;
    use crate::wiring::build;

    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<String>>>);

    impl Game for Log {
        fn on_join(&mut self, _: &mut Outbox<'_>, zone: ZoneId, player: PlayerId) {
            self.0.lock().unwrap().push(format!("join {player} {zone}"));
        }
        fn on_leave(&mut self, _: &mut Outbox<'_>, zone: ZoneId, player: PlayerId) {
            self.0
                .lock()
                .unwrap()
                .push(format!("leave {player} {zone}"));
        }
        fn on_message(&mut self, _: &mut Outbox<'_>, msg: Incoming<'_>) {
            let text = String::from_utf8_lossy(msg.payload).into_owned();
            self.0
                .lock()
                .unwrap()
                .push(format!("msg {} {text}", msg.player));
        }
    }

    fn message(session: u64, text: &[u8]) -> ToShard {
        message_at(session, text, Instant::now())
    }

    fn message_at(session: u64, text: &[u8], received_at: Instant) -> ToShard {
        ToShard::Message {
            session: SessionId(session),
            player: PlayerId(1),
            zone: ZoneId(0),
            body: Body {
                ty: 0x1000,
                lane: Lane::Critical,
                transport: Transport::Datagram,
                payload: Payload::Inline(InlinePayload::new(text).unwrap()),
            },
            received_at,
            held_us: 0,
        }
    }

    #[test]
    fn health_says_the_shortest_wait_of_what_the_game_got() {
        let cfg = ShardConfig::test_default();
        let clock = VirtualClock::new();
        let mut links = build(&cfg, 1, 1, clock.now()).unwrap();
        let mut shard = Shard::new(links.shards.remove(0), &cfg, Log::default);
        let tx = &mut links.cores[0].shards[0].tx;
        tx.push(ToShard::Join {
            session: SessionId(10),
            player: PlayerId(1),
            zone: ZoneId(0),
        })
        .unwrap();
        let t0 = clock.now();
        tx.push(message_at(10, b"a", t0)).unwrap();
        clock.advance(Duration::from_millis(30));
        for _ in 1..SOJOURN_MESSAGES_MIN {
            tx.push(message_at(10, b"b", clock.now())).unwrap();
        }
        clock.advance(Duration::from_millis(10));
        shard.run_tick(&clock);
        // Waited 40 and 10 ms: the queue stood at 10 ms.
        assert_eq!(shard.publish_health().sojourn_min_us, 10_000);
        // One message that waited is no queue.
        tx.push(message_at(10, b"c", clock.now())).unwrap();
        clock.advance(Duration::from_millis(40));
        shard.run_tick(&clock);
        assert_eq!(shard.publish_health().sojourn_min_us, 0);
        // Nothing handed over since: no figure, not the old one.
        shard.run_tick(&clock);
        assert_eq!(shard.publish_health().sojourn_min_us, 0);
    }

    #[test]
    fn a_reconnect_replaces_the_session_and_stale_entries_are_ignored() {
        let cfg = ShardConfig::test_default();
        let clock = VirtualClock::new();
        let mut links = build(&cfg, 1, 1, Instant::now()).unwrap();
        let log = Log::default();
        let game = log.clone();
        let mut shard = Shard::new(links.shards.remove(0), &cfg, move || game.clone());
        let tx = &mut links.cores[0].shards[0].tx;
        let join = |session, zone| ToShard::Join {
            session: SessionId(session),
            player: PlayerId(1),
            zone: ZoneId(zone),
        };
        tx.push(join(10, 0)).unwrap();
        tx.push(message(10, b"old")).unwrap();
        // The player reconnects on session 11, in another zone; the old
        // session's leave arrives late.
        tx.push(join(11, 1)).unwrap();
        tx.push(ToShard::Leave {
            session: SessionId(10),
            player: PlayerId(1),
            zone: ZoneId(0),
        })
        .unwrap();
        shard.run_tick(&clock);
        assert_eq!(
            *log.0.lock().unwrap(),
            ["join 1 0", "leave 1 0", "join 1 1"],
            "the old session's message and leave were dropped"
        );
        assert_eq!(shard.publish_health().players, 1);
    }

    #[test]
    fn a_second_session_of_a_player_tells_the_old_sessions_core() {
        let cfg = ShardConfig::test_default();
        let clock = VirtualClock::new();
        let mut links = build(&cfg, 2, 1, Instant::now()).unwrap();
        let log = Log::default();
        let game = log.clone();
        let mut shard = Shard::new(links.shards.remove(0), &cfg, move || game.clone());
        let join = |session, zone| ToShard::Join {
            session: SessionId(session),
            player: PlayerId(1),
            zone: ZoneId(zone),
        };
        // Session 10 on core 0; a re-join of the same session (a zone
        // change) replaces nothing.
        links.cores[0].shards[0].tx.push(join(10, 0)).unwrap();
        links.cores[0].shards[0].tx.push(join(10, 2)).unwrap();
        shard.run_tick(&clock);
        assert_eq!(links.cores[0].shards[0].rx.pop(), None);
        // The player's new session 11 arrives through core 1: core 0 is
        // told to close session 10, core 1 hears nothing.
        links.cores[1].shards[0].tx.push(join(11, 1)).unwrap();
        shard.run_tick(&clock);
        assert_eq!(
            links.cores[0].shards[0].rx.pop(),
            Some(ToGateway::SessionReplaced {
                session: SessionId(10),
                player: PlayerId(1),
            })
        );
        assert_eq!(links.cores[0].shards[0].rx.pop(), None);
        assert_eq!(links.cores[1].shards[0].rx.pop(), None);
        assert_eq!(
            *log.0.lock().unwrap(),
            ["join 1 0", "leave 1 0", "join 1 2", "leave 1 2", "join 1 1"]
        );
    }
}
