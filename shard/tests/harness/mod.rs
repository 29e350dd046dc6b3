//! A deterministic harness: shards driven by fake gateway cores (real
//! `GatewayPort`s over real rings) on a virtual clock, all on the test's
//! thread. One `step` is one tick of every shard followed by one poll of
//! every core; the same calls give the same trace.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use lanegate_common::config::Config;
use lanegate_common::ids::{CoreId, PlayerId, SessionId, ShardId, ZoneId};
use lanegate_common::lanes::{Lane, LaneTable};
use lanegate_common::link::{MoveId, ShardHealth, ToGateway};
use lanegate_common::wire::Transport;
use lanegate_shard::clock::{Clock, VirtualClock};
use lanegate_shard::config::ShardConfig;
use lanegate_shard::directory::{MovePlan, ZoneDirectory};
use lanegate_shard::game::{Game, Incoming, Msg, Outbox};
use lanegate_shard::levels::LevelBoard;
use lanegate_shard::port::{GatewayPort, PortError};
use lanegate_shard::runtime::{Shard, TickReport};
use lanegate_shard::wiring;

/// What a fake gateway core received, with owned payload bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Got {
    Unicast {
        shard: ShardId,
        player: PlayerId,
        ty: u16,
        lane: Lane,
        transport: Transport,
        payload: Vec<u8>,
    },
    Broadcast {
        shard: ShardId,
        zone: ZoneId,
        ty: u16,
        payload: Vec<u8>,
    },
    ZoneReset {
        shard: ShardId,
        zone: ZoneId,
    },
    ZoneImported {
        shard: ShardId,
        zone: ZoneId,
        move_id: MoveId,
    },
}

pub struct Harness<G> {
    pub clock: VirtualClock,
    pub cfg: ShardConfig,
    pub shards: Vec<Shard<G>>,
    pub ports: Vec<GatewayPort>,
    /// Each shard's degradation level, as the gateway's control thread sets it.
    pub levels: Arc<LevelBoard>,
    pub dir: ZoneDirectory,
    /// Per core, everything received so far.
    pub got: Vec<Vec<Got>>,
    /// Moves finished by the harness's control plane.
    pub finished: Vec<MovePlan>,
}

impl<G: Game + 'static> Harness<G> {
    pub fn new(
        cfg: ShardConfig,
        cores: u16,
        shards: u16,
        factory: impl Fn(ShardId) -> G + Clone + Send + 'static,
    ) -> Self {
        Self::with_clock(VirtualClock::new(), cfg, cores, shards, factory)
    }

    pub fn with_clock(
        clock: VirtualClock,
        cfg: ShardConfig,
        cores: u16,
        shards: u16,
        factory: impl Fn(ShardId) -> G + Clone + Send + 'static,
    ) -> Self {
        let shard_count = shards;
        let links = wiring::build(&cfg, cores, shards, clock.now()).expect("rings");
        let levels = Arc::clone(&links.levels);
        let shards = links
            .shards
            .into_iter()
            .map(|ends| {
                let id = ends.shard;
                let f = factory.clone();
                Shard::new(ends, &cfg, move || f(id))
            })
            .collect();
        let ports = links
            .cores
            .into_iter()
            .map(|ends| GatewayPort::new(ends, &cfg))
            .collect();
        Self {
            clock,
            dir: ZoneDirectory::new(shard_count),
            cfg,
            shards,
            ports,
            got: vec![Vec::new(); usize::from(cores)],
            levels,
            finished: Vec::new(),
        }
    }

    /// One tick: advance the clock, tick every shard, poll every core.
    pub fn step(&mut self) -> Vec<TickReport> {
        self.clock.advance(self.cfg.tick_interval());
        let reports = self
            .shards
            .iter_mut()
            .map(|s| s.run_tick(&self.clock))
            .collect();
        self.poll();
        reports
    }

    /// Polls every core, finishing moves whose import is confirmed.
    pub fn poll(&mut self) {
        let mut imported = Vec::new();
        for (c, port) in self.ports.iter_mut().enumerate() {
            let got = &mut self.got[c];
            port.poll(usize::MAX, |shard, entry| {
                got.push(match entry {
                    ToGateway::Unicast { player, body, .. } => Got::Unicast {
                        shard,
                        player: *player,
                        ty: body.ty,
                        lane: body.lane,
                        transport: body.transport,
                        payload: body.payload.as_slice().to_vec(),
                    },
                    ToGateway::Broadcast { zone, body } => Got::Broadcast {
                        shard,
                        zone: *zone,
                        ty: body.ty,
                        payload: body.payload.as_slice().to_vec(),
                    },
                    ToGateway::ZoneReset { zone } => Got::ZoneReset { shard, zone: *zone },
                    ToGateway::ZoneImported { zone, move_id } => {
                        imported.push((*zone, *move_id));
                        Got::ZoneImported {
                            shard,
                            zone: *zone,
                            move_id: *move_id,
                        }
                    }
                    other => panic!("unexpected {other:?}"),
                });
            });
        }
        for (zone, move_id) in imported {
            let plan = self.dir.finish_move(zone, move_id).expect("known move");
            for port in &mut self.ports {
                port.finish_move(&plan);
            }
            self.finished.push(plan);
        }
    }

    pub fn begin_move(&mut self, zone: ZoneId, to: ShardId, coordinator: CoreId) -> MovePlan {
        let plan = self.dir.begin_move(zone, to, coordinator).expect("move");
        for port in &mut self.ports {
            port.begin_move(&plan);
        }
        plan
    }

    pub fn join(&mut self, core: u16, player: u64, zone: u32) -> ShardId {
        self.ports[usize::from(core)]
            .join(SessionId(player), PlayerId(player), ZoneId(zone))
            .expect("join")
    }

    pub fn leave(&mut self, core: u16, player: u64, zone: u32) {
        self.ports[usize::from(core)].leave(SessionId(player), PlayerId(player), ZoneId(zone));
    }

    #[allow(clippy::too_many_arguments)]
    pub fn send(
        &mut self,
        core: u16,
        player: u64,
        zone: u32,
        lane: Lane,
        transport: Transport,
        ty: u16,
        payload: &[u8],
    ) -> Result<(), PortError> {
        let now = self.clock.now();
        self.ports[usize::from(core)].send(
            now,
            SessionId(player),
            PlayerId(player),
            ZoneId(zone),
            lane,
            transport,
            ty,
            payload,
        )
    }

    pub fn take(&mut self, core: u16) -> Vec<Got> {
        std::mem::take(&mut self.got[usize::from(core)])
    }

    pub fn health(&mut self, shard: u16) -> ShardHealth {
        self.shards[usize::from(shard)].publish_health()
    }
}

/// One call into a [`Recorder`] game.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Join {
        shard: ShardId,
        instance: u32,
        zone: ZoneId,
        player: PlayerId,
    },
    Leave {
        shard: ShardId,
        zone: ZoneId,
        player: PlayerId,
    },
    Message {
        shard: ShardId,
        instance: u32,
        zone: ZoneId,
        player: PlayerId,
        lane: Lane,
        payload: Vec<u8>,
    },
    Tick {
        shard: ShardId,
        tick: u64,
    },
    Export {
        shard: ShardId,
        zone: ZoneId,
    },
    Import {
        shard: ShardId,
        zone: ZoneId,
        state: Vec<u8>,
        players: Vec<PlayerId>,
    },
}

/// A game that records every call in a shared log, panics on a message
/// whose payload is `b"poison"`, and can be told to spend virtual time in
/// its tick.
pub struct Recorder {
    pub shard: ShardId,
    pub instance: u32,
    pub log: Arc<Mutex<Vec<Call>>>,
    pub clock: Option<VirtualClock>,
    pub tick_cost: Arc<Mutex<std::time::Duration>>,
    /// Echo every message back to the sender on the same type.
    pub echo: bool,
}

/// Builds recorders sharing one log; each new instance gets a new number.
#[derive(Clone)]
pub struct RecorderFactory {
    pub log: Arc<Mutex<Vec<Call>>>,
    pub instances: Arc<Mutex<u32>>,
    pub clock: Option<VirtualClock>,
    pub tick_cost: Arc<Mutex<std::time::Duration>>,
    pub echo: bool,
}

impl RecorderFactory {
    pub fn new() -> Self {
        Self {
            log: Arc::default(),
            instances: Arc::default(),
            clock: None,
            tick_cost: Arc::default(),
            echo: false,
        }
    }

    pub fn make(&self, shard: ShardId) -> Recorder {
        let mut n = self
            .instances
            .lock()
            .expect("no test thread panicked holding it");
        *n += 1;
        Recorder {
            shard,
            instance: *n,
            log: self.log.clone(),
            clock: self.clock.clone(),
            tick_cost: self.tick_cost.clone(),
            echo: self.echo,
        }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.log
            .lock()
            .expect("no test thread panicked holding it")
            .clone()
    }

    pub fn clear(&self) {
        self.log
            .lock()
            .expect("no test thread panicked holding it")
            .clear();
    }
}

impl Game for Recorder {
    fn on_join(&mut self, _out: &mut Outbox<'_>, zone: ZoneId, player: PlayerId) {
        self.log
            .lock()
            .expect("no test thread panicked holding it")
            .push(Call::Join {
                shard: self.shard,
                instance: self.instance,
                zone,
                player,
            });
    }

    fn on_leave(&mut self, _out: &mut Outbox<'_>, zone: ZoneId, player: PlayerId) {
        self.log
            .lock()
            .expect("no test thread panicked holding it")
            .push(Call::Leave {
                shard: self.shard,
                zone,
                player,
            });
    }

    fn on_message(&mut self, out: &mut Outbox<'_>, msg: Incoming<'_>) {
        if msg.payload == b"poison" {
            panic!("poisoned message from player {}", msg.player);
        }
        self.log
            .lock()
            .expect("no test thread panicked holding it")
            .push(Call::Message {
                shard: self.shard,
                instance: self.instance,
                zone: msg.zone,
                player: msg.player,
                lane: msg.lane,
                payload: msg.payload.to_vec(),
            });
        if self.echo {
            let _ = out.send(
                msg.player,
                Msg {
                    ty: msg.ty,
                    transport: msg.transport,
                    payload: msg.payload,
                },
            );
        }
    }

    fn on_tick(&mut self, out: &mut Outbox<'_>) {
        self.log
            .lock()
            .expect("no test thread panicked holding it")
            .push(Call::Tick {
                shard: self.shard,
                tick: out.tick(),
            });
        if let Some(clock) = &self.clock {
            clock.advance(
                *self
                    .tick_cost
                    .lock()
                    .expect("no test thread panicked holding it"),
            );
        }
    }

    fn export_zone(&mut self, zone: ZoneId) -> Vec<u8> {
        self.log
            .lock()
            .expect("no test thread panicked holding it")
            .push(Call::Export {
                shard: self.shard,
                zone,
            });
        format!("state of {zone}").into_bytes()
    }

    fn import_zone(
        &mut self,
        _out: &mut Outbox<'_>,
        zone: ZoneId,
        state: &[u8],
        players: &[PlayerId],
    ) {
        self.log
            .lock()
            .expect("no test thread panicked holding it")
            .push(Call::Import {
                shard: self.shard,
                zone,
                state: state.to_vec(),
                players: players.to_vec(),
            });
    }
}

/// Only the message calls, as (shard, player, lane, payload).
pub fn messages(calls: &[Call]) -> Vec<(ShardId, PlayerId, Lane, Vec<u8>)> {
    calls
        .iter()
        .filter_map(|c| match c {
            Call::Message {
                shard,
                player,
                lane,
                payload,
                ..
            } => Some((*shard, *player, *lane, payload.clone())),
            _ => None,
        })
        .collect()
}

/// The default configuration's limits (`Config::default()`), no pinning,
/// the default lane table: the base tests override.
pub fn default_cfg() -> ShardConfig {
    ShardConfig::from_config(&Config::default(), Vec::new(), LaneTable::default())
}

/// A small config for tests: 100 Hz, small rings and pools.
pub fn small_cfg() -> ShardConfig {
    ShardConfig {
        tick_rate_hz: 100,
        tick_budget_us: 5_000,
        stall_after_ms: 100,
        ring_slots_max: 256,
        pool_datagram_bufs_max: 64,
        pool_stream_bufs_max: 4,
        health_every_ticks: 1,
        // The budgets these tests were written against (normal 1024, not
        // the configuration's 512).
        lane_budget_per_tick: [4096, 2048, 1024, 256],
        ..default_cfg()
    }
}

/// A datagram-lane message payload "p<player>-<lane>-<n>".
pub fn tag(player: u64, lane: Lane, n: u32) -> Vec<u8> {
    format!("p{player}-{}-{n}", lane.index()).into_bytes()
}
