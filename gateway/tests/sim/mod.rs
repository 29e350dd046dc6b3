//! The whole path in one deterministic simulation: real `quinn_proto`
//! clients ([`crate::support::Client`]) talk over a seeded lossy,
//! reordering network ([`net`]) to a real [`Engine`], which hands their
//! messages through the real shard links to real [`Shard`] runtimes running
//! a real [`Game`]; the replies travel all the way back. Everything runs on
//! the test's thread on one virtual clock, in a fixed order, so a seed
//! fixes the run: [`Sim::trace`] records every datagram's fate, every event
//! a client sees and everything a game sees, and two runs with the same
//! seed give equal traces (quinn's `Pair` and TigerBeetle's simulator are
//! the models).
//!
//! One gateway core; shards are ticked when due and, when message passes
//! are on, given their messages between ticks, as the shard threads do.
//! [`Sim::with_other_core`] wires a second gateway core's rings to the same
//! shards and hands them to the test ([`Sim::other_core`]), which plays
//! that core by pushing and reading entries itself.

#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

pub mod game;
pub mod net;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lanegate_client::session::Event as ClientEvent;
use lanegate_common::config::Config;
use lanegate_common::ids::{CoreId, ShardId};
use lanegate_common::ticket::KeySet;
use lanegate_gateway::engine::tls::{Identity, quic_server_config};
use lanegate_gateway::engine::{AdmitAll, Engine, EngineParams};
use lanegate_shard::ShardConfig;
use lanegate_shard::clock::{Clock, VirtualClock};
use lanegate_shard::game::Game;
use lanegate_shard::levels::LevelBoard;
use lanegate_shard::port::GatewayPort;
use lanegate_shard::runtime::Shard;
use lanegate_shard::wiring::{self, CoreEnds};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::support::{Client, ConnectOpts, SERVER, UNIX_NOW, shard_config};
use game::{GameLog, GameSaw, Recorder};
use net::{Conditions, Fate, InFlight, Net};

/// Who sent a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    Gateway,
    Client(usize),
}

/// One thing that happened, at a time since the simulation began.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trace {
    Wire {
        at: Duration,
        from: Node,
        len: usize,
        fate: Fate,
    },
    Client {
        at: Duration,
        client: usize,
        event: ClientEvent,
    },
    Closed {
        at: Duration,
        client: usize,
        reason: String,
    },
    Game {
        at: Duration,
        saw: GameSaw,
    },
}

/// A certificate whose handshake bytes have the same length in every run
/// (Ed25519 signatures are deterministic; ECDSA's vary by a byte or two).
pub fn identity() -> Identity {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    Identity {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

struct SimShard<G> {
    shard: Shard<Recorder<G>>,
    next_tick: Instant,
}

pub struct Sim<G> {
    pub clock: VirtualClock,
    start: Instant,
    pub engine: Engine<AdmitAll>,
    pub links: GatewayPort,
    /// A second gateway core's ends of the shard rings, played by the test
    /// ([`Sim::with_other_core`]).
    pub other_core: Option<CoreEnds>,
    shards: Vec<SimShard<G>>,
    tick: Duration,
    passes: bool,
    pub clients: Vec<Client>,
    cert: CertificateDer<'static>,
    net: Net,
    log: GameLog,
    pub trace: Vec<Trace>,
    /// Each shard's degradation level (the gateway's control thread sets
    /// it in production; a test sets it by hand).
    pub levels: Arc<LevelBoard>,
    /// Read the shards' rings at most this often (zero: whenever the
    /// simulation steps), as a busy core reads them only between batches of
    /// packets; and when the next read is due.
    link_poll: (Duration, Instant),
    /// Per client, how many of its events and whether its close are traced.
    traced: Vec<(usize, bool)>,
    buf: Vec<u8>,
}

impl<G: Game + 'static> Sim<G> {
    /// A gateway core with `shards` shards running `make`'s games behind
    /// [`Recorder`]s, on a network with `conditions` drawn from `seed`.
    pub fn new(
        config: &Config,
        identity: &Identity,
        shards: u16,
        make: impl Fn(ShardId) -> G + Clone + Send + 'static,
        seed: u64,
        conditions: Conditions,
    ) -> Self {
        Self::build(config, identity, shards, make, seed, conditions, 1)
    }

    /// As [`Sim::new`], with a second gateway core wired to the shards
    /// (its ring ends in [`Sim::other_core`]) beside the simulated one.
    pub fn with_other_core(
        config: &Config,
        identity: &Identity,
        shards: u16,
        make: impl Fn(ShardId) -> G + Clone + Send + 'static,
        seed: u64,
        conditions: Conditions,
    ) -> Self {
        Self::build(config, identity, shards, make, seed, conditions, 2)
    }

    fn build(
        config: &Config,
        identity: &Identity,
        shards: u16,
        make: impl Fn(ShardId) -> G + Clone + Send + 'static,
        seed: u64,
        conditions: Conditions,
        cores: u16,
    ) -> Self {
        let clock = VirtualClock::new();
        let now = clock.now();
        let cfg: ShardConfig = shard_config(config);
        let server = quic_server_config(identity, &config.gateway).unwrap();
        let mut params = EngineParams::from_config(config, CoreId(1), 1, KeySet::dev()).unwrap();
        params.seed = Some(seed);
        let engine = Engine::new(params, server, AdmitAll, now, UNIX_NOW).unwrap();
        let mut wired = wiring::build(&cfg, cores, shards, now).unwrap();
        let levels = Arc::clone(&wired.levels);
        let links = GatewayPort::new(wired.cores.remove(0), &cfg);
        let other_core = wired.cores.pop();
        let log = GameLog::default();
        let shards = wired
            .shards
            .into_iter()
            .map(|ends| {
                let (id, make, log) = (ends.shard, make.clone(), Arc::clone(&log));
                let factory = move || Recorder {
                    inner: make(id),
                    shard: id,
                    log: Arc::clone(&log),
                };
                SimShard {
                    shard: Shard::new(ends, &cfg, factory),
                    next_tick: now + cfg.tick_interval(),
                }
            })
            .collect();
        Self {
            clock,
            start: now,
            engine,
            links,
            other_core,
            shards,
            tick: cfg.tick_interval(),
            passes: cfg.message_pass().is_some(),
            clients: Vec::new(),
            cert: identity.leaf().clone(),
            net: Net::new(seed, conditions),
            log,
            trace: Vec::new(),
            levels,
            link_poll: (Duration::ZERO, now),
            traced: Vec::new(),
            buf: Vec::with_capacity(2048),
        }
    }

    /// From now on, the gateway core reads the shards' rings only every
    /// `every`: replies wait, and so do the games' zone changes, while the
    /// players' messages keep flowing to the shards.
    pub fn set_link_poll_interval(&mut self, every: Duration) {
        self.link_poll = (every, self.now());
    }

    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Time since the simulation began, as [`Trace`] entries give it.
    pub fn elapsed(&self) -> Duration {
        self.at()
    }

    fn at(&self) -> Duration {
        self.now() - self.start
    }

    /// Starts a client with `ticket`; returns its index.
    pub fn connect(&mut self, ticket: &str) -> usize {
        let index = self.clients.len();
        let client = Client::new(
            self.now(),
            &self.cert,
            index,
            ticket,
            ConnectOpts::default(),
        );
        self.clients.push(client);
        self.traced.push((0, false));
        index
    }

    /// Runs the simulation for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now() + d;
        for _ in 0..1_000_000 {
            self.settle_now();
            let next = self.next_event();
            if next > end {
                self.advance_to(end);
                self.settle_now();
                return;
            }
            self.advance_to(next);
            self.handle_timeouts();
        }
        panic!("the simulation did not reach its end");
    }

    /// The earliest timer, arrival or tick.
    fn next_event(&mut self) -> Instant {
        let mut next = self.shards.iter().map(|s| s.next_tick).min();
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        consider(self.net.next_arrival());
        if !self.link_poll.0.is_zero() {
            consider(Some(self.link_poll.1));
        }
        consider(self.engine.next_timeout());
        for c in &mut self.clients {
            consider(c.conn.poll_timeout());
        }
        next.unwrap_or_else(|| self.clock.now() + self.tick)
    }

    fn advance_to(&mut self, t: Instant) {
        let now = self.now();
        if t > now {
            self.clock.advance(t - now);
        }
    }

    fn handle_timeouts(&mut self) {
        let now = self.now();
        for c in &mut self.clients {
            if c.conn.poll_timeout().is_some_and(|t| t <= now) {
                c.conn.handle_timeout(now);
            }
        }
        self.engine.handle_timeouts(now, &mut self.links);
        for s in &mut self.shards {
            if s.next_tick <= now {
                s.shard.run_tick(&self.clock);
                s.next_tick += self.tick;
            }
        }
    }

    /// Moves everything that can move at this instant until nothing does.
    fn settle_now(&mut self) {
        while self.step() {}
        self.trace_clients();
        self.trace_games();
    }

    fn step(&mut self) -> bool {
        let now = self.now();
        let at = self.at();
        let mut progress = false;
        for (i, c) in self.clients.iter_mut().enumerate() {
            c.poll_events();
            while let Some(t) = c.conn.poll_transmit(now, 1, &mut self.buf) {
                progress = true;
                let packet = InFlight {
                    from: c.addr,
                    to: SERVER,
                    ecn: t.ecn,
                    bytes: self.buf[..t.size].to_vec(),
                };
                let len = packet.bytes.len();
                let fate = self.net.send(now, packet, false);
                self.trace.push(Trace::Wire {
                    at,
                    from: Node::Client(i),
                    len,
                    fate,
                });
                self.buf.clear();
            }
        }
        while let Some(t) = self.engine.poll_transmit(now, 1, &mut self.buf) {
            progress = true;
            let packet = InFlight {
                from: SERVER,
                to: t.destination,
                ecn: t.ecn,
                bytes: self.buf[..t.size].to_vec(),
            };
            let len = packet.bytes.len();
            let fate = self.net.send(now, packet, true);
            self.trace.push(Trace::Wire {
                at,
                from: Node::Gateway,
                len,
                fate,
            });
            self.buf.clear();
        }
        while let Some(p) = self.net.arrived(now) {
            progress = true;
            self.deliver(now, &p);
        }
        for c in &mut self.clients {
            c.poll_endpoint();
            c.poll_events();
        }
        if self.passes {
            for s in &mut self.shards {
                if s.shard.has_input() {
                    progress = true;
                    s.shard.run_messages(&self.clock);
                }
            }
        }
        let (every, due) = self.link_poll;
        if every.is_zero() || due <= now {
            if !every.is_zero() {
                self.link_poll.1 = now + every;
            }
            progress |= self.engine.poll_shards(now, &mut self.links, usize::MAX) > 0;
        }
        progress
    }

    fn deliver(&mut self, now: Instant, p: &InFlight) {
        if p.to == SERVER {
            self.engine
                .handle_datagram(now, p.from, None, p.ecn, &p.bytes, &mut self.links);
        } else if let Some(c) = self.clients.iter_mut().find(|c| c.addr == p.to) {
            c.receive(now, p.ecn, &p.bytes);
        }
    }

    fn trace_clients(&mut self) {
        let at = self.at();
        for (i, c) in self.clients.iter().enumerate() {
            let (events, closed) = &mut self.traced[i];
            for event in &c.events[*events..] {
                self.trace.push(Trace::Client {
                    at,
                    client: i,
                    event: event.clone(),
                });
            }
            *events = c.events.len();
            if let (Some(reason), false) = (&c.closed, *closed) {
                *closed = true;
                self.trace.push(Trace::Closed {
                    at,
                    client: i,
                    reason: reason.to_string(),
                });
            }
        }
    }

    fn trace_games(&mut self) {
        let at = self.at();
        let saw = std::mem::take(&mut *self.log.lock().unwrap());
        self.trace
            .extend(saw.into_iter().map(|saw| Trace::Game { at, saw }));
    }

    /// What the games saw so far, in order.
    pub fn games_saw(&self) -> Vec<&GameSaw> {
        self.trace
            .iter()
            .filter_map(|t| match t {
                Trace::Game { saw, .. } => Some(saw),
                _ => None,
            })
            .collect()
    }

    /// Messages the shards dropped because their sender had left the zone
    /// they were sent in, all lanes.
    pub fn stale_dropped(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.shard.stale_dropped().iter().sum::<u64>())
            .sum()
    }

    /// Datagrams the network lost so far.
    pub fn lost(&self) -> usize {
        self.trace
            .iter()
            .filter(|t| {
                matches!(
                    t,
                    Trace::Wire {
                        fate: Fate::Lost,
                        ..
                    }
                )
            })
            .count()
    }

    /// The client at `addr`, if any.
    pub fn client_at(&self, addr: SocketAddr) -> Option<usize> {
        self.clients.iter().position(|c| c.addr == addr)
    }
}
