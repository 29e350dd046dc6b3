//! Heap allocations per echoed datagram on the engine's steady-state path,
//! against a bare quinn-proto server doing the same traffic (issue: "our
//! share is zero; record quinn-proto's own share").
//!
//! `allocation_counter` (a per-thread counting global allocator) measures
//! each call the harness makes, and [`on`] charges it to a *side*: the
//! client or the server; harness bookkeeping runs outside any `on`. Two worlds carry the same steady stream of
//! datagrams on a virtual clock, with identical clients:
//!
//! - **gateway**: client → `Engine::handle_datagram` → session →
//!   `GovernorAdmission` → the real shard links (`GatewayPort`: payload
//!   copied once into the core's pool, pushed once onto the ring) → a
//!   scripted shard that echoes through its own pool and ring →
//!   `Engine::poll_shards` lending each reply to `Engine::handle_from_shard`
//!   → `Engine::poll_transmit` → client: the path production takes;
//! - **baseline**: client → a bare `quinn_proto` endpoint and connection,
//!   same server and transport configuration, echoing each datagram
//!   zero-copy → client. No Lanegate code runs on its per-packet path.
//!
//! Our share is gateway − baseline server-side allocations. To find where
//! an allocation comes from, run this binary under valgrind's DHAT
//! (`valgrind --tool=dhat target/debug/deps/engine_alloc-<hash>
//! a_steady_echo`): the sites that grow with the number of echoes are the
//! per-datagram ones.

// The unwrap allowance of clippy.toml covers test functions only, not
// the harness; here a failed unwrap is a failed test, as intended.
#![allow(clippy::unwrap_used)]

mod support;

use std::cell::Cell;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use lanegate_client::session::Session as ClientSession;
use lanegate_common::config::{Config, LaneLimit};
use lanegate_common::ids::CoreId;
use lanegate_common::ticket::KeySet;
use lanegate_common::wire::types;
use lanegate_gateway::engine::admit::GovernorAdmission;
use lanegate_gateway::engine::tls::{Identity, quic_server_config};
use lanegate_gateway::engine::{Engine, EngineParams};
use lanegate_shard::port::GatewayPort;
use quinn_proto::{
    Connection, ConnectionHandle, DatagramEvent, Dir, EcnCodepoint, Endpoint, EndpointConfig,
    Event, ServerConfig, StreamEvent, Transmit,
};

use support::{
    FakeShard, SERVER, UNIX_NOW, client_config, governor_admission, links, shard_config, ticket,
};

// ---- Charging allocations to a side ----

/// Who an allocation is charged to; code run outside [`on`] is charged to
/// nobody (harness bookkeeping).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Client = 0,
    Server = 1,
}

thread_local! {
    /// (allocations, bytes) charged to each side on this thread. Per
    /// thread, as `allocation_counter` counts, so tests running in
    /// parallel do not mix.
    static CHARGED: [Cell<(u64, u64)>; 2] = const { [Cell::new((0, 0)), Cell::new((0, 0))] };
}

/// Runs `f`, charging the allocations it makes on this thread to `side`.
fn on<R>(side: Side, f: impl FnOnce() -> R) -> R {
    let mut out = None;
    let info = allocation_counter::measure(|| out = Some(f()));
    CHARGED.with(|c| {
        let (allocs, bytes) = c[side as usize].get();
        c[side as usize].set((allocs + info.count_total, bytes + info.bytes_total));
    });
    out.unwrap()
}

/// (allocations, bytes) charged to `side` so far.
fn counted(side: Side) -> (u64, u64) {
    CHARGED.with(|c| c[side as usize].get())
}

// ---- The two servers ----

/// What the driver needs from a server under test.
trait EchoServer {
    /// One UDP datagram from the client.
    fn handle(&mut self, now: Instant, from: SocketAddr, ecn: Option<EcnCodepoint>, data: &[u8]);
    /// Work between input and output (the gateway's shards answer).
    fn answer(&mut self, now: Instant);
    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit>;
    fn next_timeout(&mut self) -> Option<Instant>;
    fn handle_timeouts(&mut self, now: Instant);
}

/// The engine with the real admission policy and real shard links, behind
/// which a scripted shard echoes.
struct Gateway {
    engine: Engine<GovernorAdmission>,
    links: GatewayPort,
    shard: FakeShard,
}

impl EchoServer for Gateway {
    fn handle(&mut self, now: Instant, from: SocketAddr, ecn: Option<EcnCodepoint>, data: &[u8]) {
        self.engine
            .handle_datagram(now, from, None, ecn, data, &mut self.links);
    }

    fn answer(&mut self, now: Instant) {
        self.links.notify();
        self.shard.drain(None);
        self.engine.poll_shards(now, &mut self.links, usize::MAX);
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        self.engine.poll_transmit(now, 1, buf)
    }

    fn next_timeout(&mut self) -> Option<Instant> {
        self.engine.next_timeout()
    }

    fn handle_timeouts(&mut self, now: Instant) {
        self.engine.handle_timeouts(now, &mut self.links);
    }
}

/// quinn-proto alone, used as carefully as the engine uses it: a receive
/// arena split per packet, one reused response buffer, and each datagram
/// echoed as the `Bytes` quinn handed over.
struct Baseline {
    endpoint: Endpoint,
    conn: Option<(ConnectionHandle, Connection)>,
    rx: BytesMut,
    response: Vec<u8>,
}

impl Baseline {
    fn new(server: Arc<ServerConfig>) -> Self {
        Self {
            endpoint: Endpoint::new(
                Arc::new(EndpointConfig::default()),
                Some(server),
                true,
                Some(seed_bytes(42)),
            ),
            conn: None,
            rx: BytesMut::with_capacity(64 * 1024),
            response: Vec::with_capacity(2048),
        }
    }

    fn process(&mut self) {
        let Some((ch, conn)) = self.conn.as_mut() else {
            return;
        };
        loop {
            while let Some(event) = conn.poll() {
                match event {
                    Event::DatagramReceived => {
                        while let Some(d) = conn.datagrams().recv() {
                            let _ = conn.datagrams().send(d, true);
                        }
                    }
                    Event::Stream(StreamEvent::Opened { dir }) => {
                        while conn.streams().accept(dir).is_some() {}
                    }
                    _ => {}
                }
            }
            let mut any = false;
            while let Some(event) = conn.poll_endpoint_events() {
                any = true;
                if let Some(back) = self.endpoint.handle_event(*ch, event) {
                    conn.handle_event(back);
                }
            }
            if !any {
                return;
            }
        }
    }
}

impl EchoServer for Baseline {
    fn handle(&mut self, now: Instant, from: SocketAddr, ecn: Option<EcnCodepoint>, data: &[u8]) {
        // The receive arena is this harness's copy of the engine's, not
        // quinn's: uncounted, so the baseline is quinn-proto's share alone.
        // (Its echoes hold arena slices while quinn queues them, so it
        // refills now and then, as the engine's send arena does.)
        let mut packet = BytesMut::new();
        allocation_counter::opt_out(|| {
            self.rx.reserve(data.len());
            self.rx.extend_from_slice(data);
            packet = self.rx.split();
        });
        self.response.clear();
        match self
            .endpoint
            .handle(now, from, None, ecn, packet, &mut self.response)
        {
            Some(DatagramEvent::NewConnection(incoming)) => {
                let accepted = self
                    .endpoint
                    .accept(incoming, now, &mut self.response, None);
                self.conn = Some(accepted.unwrap());
            }
            Some(DatagramEvent::ConnectionEvent(_, event)) => {
                if let Some((_, conn)) = self.conn.as_mut() {
                    conn.handle_event(event);
                }
            }
            Some(DatagramEvent::Response(_)) | None => {}
        }
        self.process();
    }

    fn answer(&mut self, _now: Instant) {}

    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        buf.clear();
        let (_, conn) = self.conn.as_mut()?;
        conn.poll_transmit(now, 1, buf)
    }

    fn next_timeout(&mut self) -> Option<Instant> {
        self.conn.as_mut()?.1.poll_timeout()
    }

    fn handle_timeouts(&mut self, now: Instant) {
        if let Some((_, conn)) = self.conn.as_mut()
            && conn.poll_timeout().is_some_and(|t| t <= now)
        {
            conn.handle_timeout(now);
        }
        self.process();
    }
}

// ---- The client and the driver ----

/// A quinn-proto client that sends datagrams and counts the echoes; the
/// same code in both worlds.
struct Client {
    addr: SocketAddr,
    endpoint: Endpoint,
    ch: ConnectionHandle,
    conn: Connection,
    rx: BytesMut,
    scratch: Vec<u8>,
    /// Sent on the control stream once connected (gateway world only).
    hello: Option<Vec<u8>>,
    connected: bool,
    echoes: u64,
}

impl Client {
    fn poll(&mut self) {
        while let Some(event) = self.conn.poll_endpoint_events() {
            if let Some(back) = self.endpoint.handle_event(self.ch, event) {
                self.conn.handle_event(back);
            }
        }
        while let Some(event) = self.conn.poll() {
            match event {
                Event::Connected => {
                    self.connected = true;
                    if let Some(hello) = self.hello.take() {
                        let id = self.conn.streams().open(Dir::Bi).unwrap();
                        self.conn.send_stream(id).write(&hello).unwrap();
                    }
                }
                Event::Stream(StreamEvent::Readable { id }) => {
                    let mut recv = self.conn.recv_stream(id);
                    if let Ok(mut chunks) = recv.read(true) {
                        while let Ok(Some(_)) = chunks.next(usize::MAX) {}
                        let _ = chunks.finalize();
                    }
                }
                Event::DatagramReceived => {
                    while self.conn.datagrams().recv().is_some() {
                        self.echoes += 1;
                    }
                }
                Event::ConnectionLost { reason } => panic!("client lost: {reason}"),
                _ => {}
            }
        }
    }

    fn handle(&mut self, now: Instant, ecn: Option<EcnCodepoint>, data: &[u8]) {
        self.rx.reserve(data.len());
        self.rx.extend_from_slice(data);
        let packet = self.rx.split();
        self.scratch.clear();
        if let Some(DatagramEvent::ConnectionEvent(_, event)) =
            self.endpoint
                .handle(now, SERVER, None, ecn, packet, &mut self.scratch)
        {
            self.conn.handle_event(event);
        }
    }
}

/// One client and one server on a virtual clock.
struct Pair<S> {
    now: Instant,
    client: Client,
    server: S,
    client_buf: Vec<u8>,
    server_buf: Vec<u8>,
}

impl<S: EchoServer> Pair<S> {
    /// Moves packets both ways until nothing moves, charging each call to
    /// its side.
    fn pump(&mut self) {
        let now = self.now;
        loop {
            let mut progress = false;
            on(Side::Client, || self.client.poll());
            while let Some(t) = on(Side::Client, || {
                self.client.conn.poll_transmit(now, 1, &mut self.client_buf)
            }) {
                progress = true;
                on(Side::Server, || {
                    self.server
                        .handle(now, self.client.addr, t.ecn, &self.client_buf[..t.size]);
                });
                self.client_buf.clear();
            }
            on(Side::Server, || self.server.answer(now));
            while let Some(t) = on(Side::Server, || {
                self.server.poll_transmit(now, &mut self.server_buf)
            }) {
                progress = true;
                on(Side::Client, || {
                    self.client.handle(now, t.ecn, &self.server_buf[..t.size]);
                });
            }
            on(Side::Client, || self.client.poll());
            if !progress {
                return;
            }
        }
    }

    /// Advances the clock to `until`, running every timer on the way.
    fn advance(&mut self, until: Instant) {
        loop {
            self.pump();
            let client = on(Side::Client, || self.client.conn.poll_timeout());
            let server = on(Side::Server, || self.server.next_timeout());
            let Some(next) = [client, server].into_iter().flatten().min() else {
                break;
            };
            if next > until {
                break;
            }
            self.now = self.now.max(next);
            let now = self.now;
            if client.is_some_and(|t| t <= now) {
                on(Side::Client, || self.client.conn.handle_timeout(now));
            }
            if server.is_some_and(|t| t <= now) {
                on(Side::Server, || self.server.handle_timeouts(now));
            }
        }
        self.now = self.now.max(until);
        self.pump();
    }

    /// `n` datagrams of `payload` in `pattern`, each echoed.
    fn stream(&mut self, n: u64, pattern: Pattern, payload: &Bytes) {
        for _ in 0..n / pattern.per_tick {
            on(Side::Client, || {
                for _ in 0..pattern.per_tick {
                    self.client
                        .conn
                        .datagrams()
                        .send(payload.clone(), true)
                        .unwrap();
                }
            });
            self.pump();
            let until = self.now + pattern.tick;
            self.advance(until);
        }
    }
}

fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes
}

fn config() -> Config {
    let mut config = Config::default();
    config.gateway.connections_max = 8;
    // The streams below run up to 500/s on the critical lane; nothing may
    // drop, or the two worlds would carry different traffic.
    config.lanes.limits.critical = LaneLimit::new(10_000, 1_000);
    config
}

fn client(now: Instant, server: &Identity, hello: Option<Vec<u8>>) -> Client {
    let mut endpoint = Endpoint::new(
        Arc::new(EndpointConfig::default()),
        None,
        true,
        Some(seed_bytes(7)),
    );
    let (ch, conn) = endpoint
        .connect(now, client_config(server.leaf()), SERVER, "localhost")
        .unwrap();
    Client {
        addr: SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 50_000),
        endpoint,
        ch,
        conn,
        rx: BytesMut::with_capacity(64 * 1024),
        scratch: Vec::with_capacity(2048),
        hello,
        connected: false,
        echoes: 0,
    }
}

fn pair<S: EchoServer>(now: Instant, identity: &Identity, server: S, hello: bool) -> Pair<S> {
    let hello = hello.then(|| ClientSession::start(&ticket(7)).unwrap().1);
    Pair {
        now,
        client: client(now, identity, hello),
        server,
        client_buf: Vec::with_capacity(64 * 1024),
        server_buf: Vec::with_capacity(64 * 1024),
    }
}

fn gateway(now: Instant, config: &Config, identity: &Identity) -> Pair<Gateway> {
    let server = quic_server_config(identity, &config.gateway).unwrap();
    let mut params = EngineParams::from_config(config, CoreId(1), 1, KeySet::dev()).unwrap();
    params.seed = Some(42);
    let engine = Engine::new(
        params,
        server,
        governor_admission(config, now),
        now,
        UNIX_NOW,
    )
    .unwrap();
    let (links, shard) = links(&shard_config(config), now);
    let server = Gateway {
        engine,
        links,
        shard,
    };
    pair(now, identity, server, true)
}

fn baseline(now: Instant, config: &Config, identity: &Identity) -> Pair<Baseline> {
    let server = quic_server_config(identity, &config.gateway).unwrap();
    pair(now, identity, Baseline::new(server), false)
}

// ---- Measurement ----

/// How the client sends: `per_tick` datagrams at once, every `tick`.
#[derive(Clone, Copy, Debug)]
struct Pattern {
    name: &'static str,
    per_tick: u64,
    tick: Duration,
}

const PATTERNS: [Pattern; 2] = [
    // 200 inputs a second, one at a time: a fast game's input stream.
    Pattern {
        name: "1/5ms",
        per_tick: 1,
        tick: Duration::from_millis(5),
    },
    // Eight messages per 60 Hz tick: several per packet, several in flight.
    Pattern {
        name: "8/16ms",
        per_tick: 8,
        tick: Duration::from_millis(16),
    },
];

const WARMUP: u64 = 800;
const MEASURED: u64 = 2_000;
const REPEATS: u32 = 3;

/// Allocations charged to each side over `n` echoed datagrams.
#[derive(Clone, Copy, Debug, Default)]
struct Figures {
    server_allocs: u64,
    server_bytes: u64,
    client_allocs: u64,
    client_bytes: u64,
    n: u64,
}

impl Figures {
    fn per(&self, v: u64) -> f64 {
        v as f64 / self.n as f64
    }

    fn add(&mut self, other: Figures) {
        self.server_allocs += other.server_allocs;
        self.server_bytes += other.server_bytes;
        self.client_allocs += other.client_allocs;
        self.client_bytes += other.client_bytes;
        self.n += other.n;
    }
}

/// Counts what `n` more echoed datagrams cost each side.
fn measure<S: EchoServer>(p: &mut Pair<S>, n: u64, pattern: Pattern, payload: &Bytes) -> Figures {
    let echoes = p.client.echoes;
    let (s0, sb0) = counted(Side::Server);
    let (c0, cb0) = counted(Side::Client);
    p.stream(n, pattern, payload);
    let (s1, sb1) = counted(Side::Server);
    let (c1, cb1) = counted(Side::Client);
    assert_eq!(p.client.echoes - echoes, n, "every datagram is echoed");
    Figures {
        server_allocs: s1 - s0,
        server_bytes: sb1 - sb0,
        client_allocs: c1 - c0,
        client_bytes: cb1 - cb0,
        n,
    }
}

fn row(world: &str, pattern: Pattern, bytes: usize, f: &Figures) -> String {
    format!(
        "| {world:<8} | {:<6} | {bytes:>5} | {:>6} | {:>6.4} | {:>7.1} | {:>6.4} | {:>7.1} |\n",
        pattern.name,
        f.n,
        f.per(f.server_allocs),
        f.per(f.server_bytes),
        f.per(f.client_allocs),
        f.per(f.client_bytes),
    )
}

/// Runs both worlds through `pattern` with small (inline) and larger
/// (pooled) payloads; returns the table and our share per payload.
fn compare(pattern: Pattern) -> (String, Vec<(usize, i64, i64)>) {
    let config = config();
    let identity = Identity::self_signed().unwrap();
    let now = Instant::now();
    let mut gw = gateway(now, &config, &identity);
    let mut bare = baseline(now, &config, &identity);
    gw.advance(now + Duration::from_millis(200));
    bare.advance(now + Duration::from_millis(200));
    assert_eq!(gw.server.engine.counters().sessions_open, 1, "Welcome");
    assert!(bare.client.connected);
    // The counter works: the handshakes allocated on both sides.
    assert!(counted(Side::Server).0 > 0 && counted(Side::Client).0 > 0);

    let mut out = String::from(
        "| world    | stream | bytes | echoes | server allocs/dgram | server bytes/dgram \
         | client allocs/dgram | client bytes/dgram |\n\
         |---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut shares = Vec::new();
    // 8 bytes travel inline in the ring entry, 200 in a pool buffer.
    for payload_len in [8usize, 200] {
        let mut body = types::ECHO_CRITICAL.to_be_bytes().to_vec();
        body.resize(2 + payload_len, 0xab);
        let payload = Bytes::from(body);
        // Warm up: arenas, queues and quinn's tables reach steady size.
        gw.stream(WARMUP, pattern, &payload);
        bare.stream(WARMUP, pattern, &payload);
        // Interleaved A/B repeats, summed.
        let (mut g, mut b) = (Figures::default(), Figures::default());
        for _ in 0..REPEATS {
            g.add(measure(&mut gw, MEASURED, pattern, &payload));
            b.add(measure(&mut bare, MEASURED, pattern, &payload));
        }
        out.push_str(&row("gateway", pattern, payload.len(), &g));
        out.push_str(&row("baseline", pattern, payload.len(), &b));
        let allocs = g.server_allocs as i64 - b.server_allocs as i64;
        let bytes = g.server_bytes as i64 - b.server_bytes as i64;
        shares.push((payload.len(), allocs, bytes));
    }
    let c = gw.server.engine.counters();
    assert_eq!(c.admit_dropped, [0; 4]);
    assert_eq!(gw.server.links.lost(), [0; 4], "the links dropped nothing");
    assert_eq!(c.datagrams_out_dropped, 0);
    assert_eq!(c.messages_to_shard, gw.client.echoes);
    for (bytes, allocs, alloc_bytes) in &shares {
        out.push_str(&format!(
            "our share, {}, {bytes}-byte datagrams: {allocs:+} allocations, \
             {alloc_bytes:+} bytes over {} datagrams\n",
            pattern.name,
            MEASURED * u64::from(REPEATS)
        ));
    }
    println!("{out}");
    (out, shares)
}

#[test]
fn a_steady_echo_stream_allocates_nothing_beyond_quinn() {
    let (table, shares) = compare(PATTERNS[0]);
    assert!(
        shares.iter().all(|s| s.1 <= 0),
        "the engine allocates beyond quinn-proto on the echo path (see the module \
         doc to find where):\n{table}"
    );
}

#[test]
fn a_bursty_echo_stream_allocates_nothing_beyond_quinn() {
    let (table, shares) = compare(PATTERNS[1]);
    assert!(
        shares.iter().all(|s| s.1 <= 0),
        "the engine allocates beyond quinn-proto on the echo path (see the module \
         doc to find where):\n{table}"
    );
}
