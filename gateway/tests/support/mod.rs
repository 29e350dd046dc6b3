//! The in-memory harness shared by the `engine_*` tests: real `quinn_proto`
//! client endpoints exchange packets with an [`Engine`] directly, no sockets,
//! on a virtual clock. Between the engine and the test's scripted shard
//! ([`FakeShard`]) are the real shard links (`lanegate_shard::wiring`,
//! `GatewayPort`): the rings, pools and loss accounting production uses.
//!
//! The world is generic over the admission policy: [`AdmitAll`], the real
//! [`GovernorAdmission`], or a [`ScriptedAdmission`] whose decisions the test
//! sets. Each client has a source address of its own (handshake limits are
//! per IP) and may offer no QUIC datagrams ([`ConnectOpts`]); packets can be
//! lost with a seeded probability ([`World::set_loss`]), so the same seed
//! gives the same trace.

// Each test binary uses a different part of this module.
#![allow(dead_code)]
// `allow-unwrap-in-tests` covers `#[test]` functions only, not the harness;
// here a failed unwrap is a failed test, as intended.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use lanegate_client::session::{Event as ClientEvent, Session as ClientSession};
use lanegate_common::config::Config;
use lanegate_common::ids::{CoreId, PlayerId, ZoneId};
use lanegate_common::lanes::Lane;
use lanegate_common::link::{Body, ToGateway, ToShard};
use lanegate_common::ticket::{DEV_KEY_ID, KeySet, Ticket};
use lanegate_common::wire::{ALPN, CloseCode, Transport};
use lanegate_gateway::engine::admit::{AdmissionTable, GovernorAdmission, HandshakeLimiter};
use lanegate_gateway::engine::cid::CID_BYTES;
use lanegate_gateway::engine::tls::{Identity, quic_server_config};
use lanegate_gateway::engine::{
    Admission, AdmitAll, AdmitDecision, ConnSlot, Engine, EngineParams, OVERFLOW_SLOTS,
};
use lanegate_shard::ShardConfig;
use lanegate_shard::port::GatewayPort;
use lanegate_shard::wiring::{self, ShardEnds};
use quinn_proto::crypto::rustls::QuicClientConfig;
use quinn_proto::{
    ClientConfig, Connection, ConnectionError, ConnectionHandle, DatagramEvent, Dir, Endpoint,
    EndpointConfig, Event, StreamEvent, StreamId, TransportConfig,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rustls::pki_types::CertificateDer;

pub const UNIX_NOW: u64 = 1_767_225_600;
pub const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 4433);

/// What the fake shard saw, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    Join(PlayerId, ZoneId),
    Leave(PlayerId, ZoneId),
    Message(u16, Transport, usize),
}

/// The shard side of the links: what a shard thread would read and write,
/// scripted by the test. It answers every game message with the same body
/// (the demo games' echo) unless told not to, and may stop reading its
/// ring, as a stuck shard does.
pub struct FakeShard {
    pub ends: ShardEnds,
    /// Answer every game message with the same body.
    pub echo: bool,
    /// Leave the ring unread (it fills up).
    pub paused: bool,
}

impl FakeShard {
    /// Takes what the ring holds: records it in `seen` (if given: a
    /// growing record allocates), echoes messages. Returns whether there
    /// was anything.
    pub fn drain(&mut self, mut seen: Option<&mut Vec<Seen>>) -> bool {
        if self.paused {
            return false;
        }
        let ring = &mut self.ends.cores[0];
        let mut any = false;
        while let Some(m) = ring.rx.pop() {
            any = true;
            match m {
                ToShard::Join { player, zone, .. } => record(&mut seen, Seen::Join(player, zone)),
                ToShard::Leave { player, zone, .. } => record(&mut seen, Seen::Leave(player, zone)),
                ToShard::Message {
                    session,
                    player,
                    body,
                    ..
                } => {
                    record(
                        &mut seen,
                        Seen::Message(body.ty, body.transport, body.payload.len()),
                    );
                    if self.echo
                        && let Ok(payload) = self.ends.pool.payload(body.payload.as_slice())
                    {
                        let reply = ToGateway::Unicast {
                            session,
                            player,
                            body: Body {
                                ty: body.ty,
                                lane: body.lane,
                                transport: body.transport,
                                payload,
                            },
                        };
                        if let Err(full) = ring.tx.push(reply)
                            && let ToGateway::Unicast { body, .. } = full.entry
                        {
                            self.ends.pool.recycle(body.payload);
                        }
                    }
                    ring.give_back.give_back(body.payload);
                }
                ToShard::Zone(_) | ToShard::Claim { .. } | ToShard::Release { .. } => {}
            }
        }
        any
    }
}

fn record(seen: &mut Option<&mut Vec<Seen>>, what: Seen) {
    if let Some(seen) = seen {
        seen.push(what);
    }
}

/// The shard runtime's limits from `config`, as the runtime derives them.
pub fn shard_config(config: &Config) -> ShardConfig {
    let lanes = config.lanes.lane_table().unwrap();
    ShardConfig::from_config(config, Vec::new(), lanes)
}

/// The shard links of one core and one shard, as production builds them
/// from `cfg`: the core's side, and the shard's side behind a [`FakeShard`].
pub fn links(cfg: &ShardConfig, now: Instant) -> (GatewayPort, FakeShard) {
    let mut wired = wiring::build(cfg, 1, 1, now).unwrap();
    let links = GatewayPort::new(wired.cores.remove(0), cfg);
    let shard = FakeShard {
        ends: wired.shards.remove(0),
        echo: true,
        paused: false,
    };
    (links, shard)
}

/// The gateway's own admission policy, sized for an engine built from `config`.
pub fn governor_admission(config: &Config, now: Instant) -> GovernorAdmission {
    let slots = usize::try_from(config.gateway.connections_max).unwrap() + OVERFLOW_SLOTS;
    GovernorAdmission {
        table: AdmissionTable::new(&config.lanes.limits, &config.admission, slots, now).unwrap(),
        handshakes: HandshakeLimiter::new(&config.gateway, 1024, now).unwrap(),
    }
}

/// An admission hook whose decisions the test sets, recording open and close.
pub struct ScriptedAdmission {
    /// What every game message gets.
    pub decision: AdmitDecision,
    /// Whether new handshakes are let in.
    pub handshakes: bool,
    pub opened: Vec<ConnSlot>,
    pub closed: Vec<ConnSlot>,
}

impl Default for ScriptedAdmission {
    /// Admits every handshake and every message.
    fn default() -> Self {
        Self {
            decision: AdmitDecision::Admit,
            handshakes: true,
            opened: Vec::new(),
            closed: Vec::new(),
        }
    }
}

impl Admission for ScriptedAdmission {
    fn admit_handshake(&mut self, _now: Instant, _remote: SocketAddr) -> bool {
        self.handshakes
    }
    fn admit(&mut self, _now: Instant, _conn: ConnSlot, _lane: Lane) -> AdmitDecision {
        self.decision
    }
    fn on_open(&mut self, _now: Instant, conn: ConnSlot) {
        self.opened.push(conn);
    }
    fn on_close(&mut self, conn: ConnSlot) {
        self.closed.push(conn);
    }
}

/// How [`World::connect_with`] starts a client.
#[derive(Clone, Copy, Debug)]
pub struct ConnectOpts {
    /// The client's source address (it gets a port of its own).
    pub ip: IpAddr,
    /// Offer QUIC datagrams; the gateway requires them.
    pub datagrams: bool,
    /// With datagrams, the `max_datagram_frame_size` to offer (quinn sends
    /// its receive buffer size, capped at 65535); `None` keeps quinn's
    /// default, which offers 65535.
    pub datagram_frame_size: Option<usize>,
    /// The one ALPN protocol the client offers.
    pub alpn: &'static [u8],
    /// The client's source port; `None` gives it one of its own.
    pub port: Option<u16>,
}

impl Default for ConnectOpts {
    /// From 127.0.0.1, with datagrams.
    fn default() -> Self {
        Self {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            datagrams: true,
            datagram_frame_size: None,
            alpn: ALPN,
            port: None,
        }
    }
}

impl ConnectOpts {
    /// From `ip`, with datagrams.
    pub fn from_ip(ip: IpAddr) -> Self {
        Self {
            ip,
            ..Self::default()
        }
    }

    /// From 127.0.0.1, offering no QUIC datagrams.
    pub fn no_datagrams() -> Self {
        Self {
            datagrams: false,
            ..Self::default()
        }
    }

    /// From 127.0.0.1, offering datagrams up to `size` bytes per frame.
    pub fn datagram_frame_size(size: usize) -> Self {
        Self {
            datagram_frame_size: Some(size),
            ..Self::default()
        }
    }
}

pub struct Client {
    pub addr: SocketAddr,
    pub endpoint: Endpoint,
    pub ch: ConnectionHandle,
    pub conn: Connection,
    pub session: ClientSession,
    pub hello: Vec<u8>,
    pub control: Option<StreamId>,
    /// Send `Hello` as soon as the handshake completes.
    pub auto_hello: bool,
    pub events: Vec<ClientEvent>,
    pub closed: Option<ConnectionError>,
    /// UDP datagrams the engine sent to this client.
    pub packets_in: usize,
}

impl Client {
    /// The `index`th client of a world: a source port and an RNG seed of
    /// its own, so the same index gives the same client in every run.
    pub fn new(
        now: Instant,
        cert: &CertificateDer<'static>,
        index: usize,
        ticket: &str,
        opts: ConnectOpts,
    ) -> Self {
        let port = opts.port.unwrap_or(50_000 + u16::try_from(index).unwrap());
        let addr = SocketAddr::new(opts.ip, port);
        let seed = [u8::try_from(index).unwrap(); 32];
        let mut endpoint =
            Endpoint::new(Arc::new(EndpointConfig::default()), None, true, Some(seed));
        let mut config = client_config_with_alpn(cert, opts.alpn);
        if !opts.datagrams || opts.datagram_frame_size.is_some() {
            let mut transport = TransportConfig::default();
            let size = opts.datagram_frame_size.filter(|_| opts.datagrams);
            transport.datagram_receive_buffer_size(size);
            config.transport_config(Arc::new(transport));
        }
        let (ch, conn) = endpoint.connect(now, config, SERVER, "localhost").unwrap();
        let (session, hello) = ClientSession::start(ticket).unwrap();
        Self {
            addr,
            endpoint,
            ch,
            conn,
            session,
            hello,
            control: None,
            auto_hello: true,
            events: Vec::new(),
            closed: None,
            packets_in: 0,
        }
    }

    /// Hands a UDP datagram from the gateway to the client's endpoint.
    pub fn receive(&mut self, now: Instant, ecn: Option<quinn_proto::EcnCodepoint>, bytes: &[u8]) {
        self.packets_in += 1;
        let mut scratch = Vec::new();
        if let Some(DatagramEvent::ConnectionEvent(_, ev)) =
            self.endpoint
                .handle(now, SERVER, None, ecn, BytesMut::from(bytes), &mut scratch)
        {
            self.conn.handle_event(ev);
        }
    }

    /// Passes the connection's events for the endpoint through it, and the
    /// endpoint's answers back.
    pub fn poll_endpoint(&mut self) {
        while let Some(ev) = self.conn.poll_endpoint_events() {
            if let Some(back) = self.endpoint.handle_event(self.ch, ev) {
                self.conn.handle_event(back);
            }
        }
    }

    /// The application close code the connection ended with, if it did.
    pub fn close_code(&self) -> Option<u64> {
        match &self.closed {
            Some(ConnectionError::ApplicationClosed(close)) => Some(close.error_code.into_inner()),
            _ => None,
        }
    }

    /// The code of the `Rejected` message the gateway sent, if it did.
    pub fn rejected_code(&self) -> Option<CloseCode> {
        self.events.iter().find_map(|e| match e {
            ClientEvent::Rejected(c) => Some(c.code),
            _ => None,
        })
    }

    pub fn welcomed(&self) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, ClientEvent::Welcome(_)))
    }

    pub fn messages(&self) -> Vec<(u16, Vec<u8>, Transport)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Message {
                    ty,
                    payload,
                    transport,
                } => Some((*ty, payload.clone(), *transport)),
                _ => None,
            })
            .collect()
    }

    /// `ty` and `payload` as a stream frame of this client's session.
    pub fn frame(&self, ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut frame = Vec::new();
        self.session
            .encode(ty, payload, Transport::Stream, &mut frame)
            .unwrap();
        frame
    }

    pub fn open_control(&mut self) -> StreamId {
        if let Some(id) = self.control {
            return id;
        }
        let id = self.conn.streams().open(Dir::Bi).expect("one bidi stream");
        self.control = Some(id);
        id
    }

    pub fn write_control(&mut self, bytes: &[u8]) {
        let id = self.open_control();
        let n = self.conn.send_stream(id).write(bytes).unwrap();
        assert_eq!(n, bytes.len());
    }

    pub fn send_datagram(&mut self, bytes: &[u8]) {
        self.conn
            .datagrams()
            .send(Bytes::copy_from_slice(bytes), true)
            .unwrap();
    }

    pub fn poll_events(&mut self) {
        while let Some(event) = self.conn.poll() {
            match event {
                Event::Connected if self.auto_hello => {
                    let hello = self.hello.clone();
                    self.write_control(&hello);
                }
                Event::ConnectionLost { reason } => self.closed = Some(reason),
                Event::Stream(StreamEvent::Opened { dir: Dir::Uni }) => {
                    while let Some(id) = self.conn.streams().accept(Dir::Uni) {
                        self.read(id);
                    }
                }
                Event::Stream(StreamEvent::Readable { id }) => self.read(id),
                Event::DatagramReceived => {
                    while let Some(d) = self.conn.datagrams().recv() {
                        if let Some(e) = self.session.on_datagram(&d).unwrap() {
                            self.events.push(e);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn read(&mut self, id: StreamId) {
        let mut recv = self.conn.recv_stream(id);
        let Ok(mut chunks) = recv.read(true) else {
            return;
        };
        while let Ok(Some(chunk)) = chunks.next(usize::MAX) {
            // The gateway's bytes must always decode: the control stream's
            // and, on the streams it opens, its lanes' (`protocol.md` §3).
            if id.dir() == Dir::Uni {
                let lane_stream = usize::try_from(id.index()).unwrap();
                self.session
                    .on_lane_stream_bytes(lane_stream, &chunk.bytes, &mut self.events)
                    .unwrap();
            } else {
                self.session
                    .on_control_bytes(&chunk.bytes, &mut self.events)
                    .unwrap();
            }
        }
        let _ = chunks.finalize();
    }
}

pub struct World<A: Admission> {
    pub now: Instant,
    pub engine: Engine<A>,
    /// The core's side of the shard links, as the core loop owns it.
    pub links: GatewayPort,
    /// The shard's side.
    pub shard: FakeShard,
    pub cert: CertificateDer<'static>,
    /// The certificate's fingerprint, as the gateway reports it.
    pub fingerprint: String,
    pub clients: Vec<Client>,
    pub seen: Vec<Seen>,
    /// Destination connection ids of the clients' short-header packets.
    pub short_dcids: Vec<Vec<u8>>,
    /// Drops each packet (either way) with this probability, seeded.
    loss: Option<(StdRng, f64)>,
    buf: Vec<u8>,
}

impl World<AdmitAll> {
    pub fn admit_all(config: Config) -> Self {
        World::with_admission(config, |_, _| AdmitAll)
    }
}

impl World<ScriptedAdmission> {
    /// An engine behind a [`ScriptedAdmission`] that admits everything
    /// until the test says otherwise.
    pub fn scripted(config: Config) -> Self {
        World::with_admission(config, |_, _| ScriptedAdmission::default())
    }
}

impl World<GovernorAdmission> {
    /// An engine behind the gateway's real admission policy, from `config`.
    pub fn governed(config: Config) -> Self {
        World::with_admission(config, governor_admission)
    }
}

impl<A: Admission> World<A> {
    pub fn with_admission(config: Config, admission: impl FnOnce(&Config, Instant) -> A) -> Self {
        let shard_cfg = shard_config(&config);
        Self::with_links(config, shard_cfg, admission)
    }

    /// As [`World::with_admission`], with links built from `shard_cfg`.
    pub fn with_links(
        config: Config,
        shard_cfg: ShardConfig,
        admission: impl FnOnce(&Config, Instant) -> A,
    ) -> Self {
        let identity = Identity::self_signed().unwrap();
        let cert = identity.leaf().clone();
        let fingerprint = identity.fingerprint();
        let server = quic_server_config(&identity, &config.gateway).unwrap();
        let mut params = EngineParams::from_config(&config, CoreId(1), 1, KeySet::dev()).unwrap();
        params.seed = Some(42);
        let now = Instant::now();
        let engine = Engine::new(params, server, admission(&config, now), now, UNIX_NOW).unwrap();
        let (links, shard) = links(&shard_cfg, now);
        Self {
            now,
            engine,
            links,
            shard,
            cert,
            fingerprint,
            clients: Vec::new(),
            seen: Vec::new(),
            short_dcids: Vec::new(),
            loss: None,
            buf: Vec::with_capacity(2048),
        }
    }

    /// From now on, drops each packet (either way) with probability `rate`,
    /// drawn from an RNG seeded with `seed`.
    pub fn set_loss(&mut self, seed: u64, rate: f64) {
        self.loss = Some((StdRng::seed_from_u64(seed), rate));
    }

    /// Starts a client with `ticket` from 127.0.0.1; returns its index.
    pub fn connect(&mut self, ticket: &str) -> usize {
        self.connect_with(ticket, ConnectOpts::default())
    }

    /// Starts a client with `ticket`, settles, and checks it was welcomed;
    /// returns its index.
    pub fn connect_welcomed(&mut self, ticket: &str) -> usize {
        let i = self.connect(ticket);
        self.settle();
        let c = &self.clients[i];
        assert!(
            c.welcomed(),
            "closed: {:?}, events: {:?}",
            c.closed,
            c.events
        );
        i
    }

    /// Starts a client with `ticket` as `opts` say; returns its index.
    pub fn connect_with(&mut self, ticket: &str, opts: ConnectOpts) -> usize {
        let index = self.clients.len();
        let client = Client::new(self.now, &self.cert, index, ticket, opts);
        self.clients.push(client);
        index
    }

    /// Moves packets and shard messages until nothing moves.
    pub fn pump(&mut self) -> bool {
        let mut progress = false;
        let now = self.now;
        for c in &mut self.clients {
            c.poll_events();
            while let Some(t) = c.conn.poll_transmit(now, 1, &mut self.buf) {
                progress = true;
                if self.buf[0] & 0x80 == 0 {
                    self.short_dcids.push(self.buf[1..=CID_BYTES].to_vec());
                }
                if lose(&mut self.loss) {
                    self.buf.clear();
                    continue;
                }
                self.engine.handle_datagram(
                    now,
                    c.addr,
                    None,
                    t.ecn,
                    &self.buf[..t.size],
                    &mut self.links,
                );
                self.buf.clear();
            }
        }
        let mut out = Vec::new();
        while let Some(t) = self.engine.poll_transmit(now, 1, &mut self.buf) {
            progress = true;
            out.push((t.destination, t.ecn, self.buf[..t.size].to_vec()));
        }
        for (dest, ecn, bytes) in out {
            if lose(&mut self.loss) {
                continue;
            }
            let Some(c) = self.clients.iter_mut().find(|c| c.addr == dest) else {
                continue;
            };
            c.receive(now, ecn, &bytes);
        }
        for c in &mut self.clients {
            c.poll_endpoint();
            c.poll_events();
        }
        progress |= self.shard.drain(Some(&mut self.seen));
        progress |= self.engine.poll_shards(now, &mut self.links, usize::MAX) > 0;
        progress
    }

    /// Runs the world for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        for _ in 0..100_000 {
            while self.pump() {}
            let mut next = self.engine.next_timeout();
            for c in &mut self.clients {
                if let Some(t) = c.conn.poll_timeout() {
                    next = Some(next.map_or(t, |n| n.min(t)));
                }
            }
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    for c in &mut self.clients {
                        if c.conn.poll_timeout().is_some_and(|t| t <= now) {
                            c.conn.handle_timeout(now);
                        }
                    }
                    self.engine.handle_timeouts(now, &mut self.links);
                }
                _ => {
                    self.now = end;
                    while self.pump() {}
                    return;
                }
            }
        }
        panic!("the world did not settle");
    }

    pub fn settle(&mut self) {
        self.run_for(Duration::from_millis(200));
    }

    /// Puts `message` on the shard's ring to this core, as a shard would;
    /// the next [`World::pump`] delivers it.
    pub fn push_from_shard(&mut self, message: ToGateway) {
        self.shard.ends.cores[0]
            .tx
            .push(message)
            .unwrap_or_else(|_| panic!("the return ring has room"));
    }

    /// Game messages of type `ty` the shard received.
    pub fn shard_got(&self, ty: u16) -> usize {
        self.seen
            .iter()
            .filter(|s| matches!(s, Seen::Message(t, _, _) if *t == ty))
            .count()
    }
}

/// A client configuration trusting `cert`, with datagrams enabled.
pub fn client_config(cert: &CertificateDer<'static>) -> ClientConfig {
    client_config_with_alpn(cert, ALPN)
}

/// As [`client_config`], offering `alpn` as its one ALPN protocol.
pub fn client_config_with_alpn(cert: &CertificateDer<'static>, alpn: &[u8]) -> ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![alpn.to_vec()];
    let mut config = ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).unwrap()));
    config.transport_config(Arc::new(TransportConfig::default()));
    config
}

/// A dev-key ticket for `player` in zone 42, valid for the next hour.
pub fn ticket(player: u64) -> String {
    ticket_with(&KeySet::dev(), player, UNIX_NOW + 3600)
}

/// A dev-key ticket for `player` in `zone`, valid for the next hour.
pub fn ticket_in(player: u64, zone: ZoneId) -> String {
    mint(&KeySet::dev(), player, zone, UNIX_NOW + 3600)
}

/// A ticket for `player` in zone 42 signed with `keys`' `DEV_KEY_ID`,
/// issued two hours before it expires at `expires_at_s`.
pub fn ticket_with(keys: &KeySet, player: u64, expires_at_s: u64) -> String {
    mint(keys, player, ZoneId(42), expires_at_s)
}

fn mint(keys: &KeySet, player: u64, zone: ZoneId, expires_at_s: u64) -> String {
    keys.mint(&Ticket {
        key_id: DEV_KEY_ID,
        player: PlayerId(player),
        zone,
        issued_at_s: expires_at_s - 7200,
        expires_at_s,
    })
    .unwrap()
}

/// `c` as the close code a quinn client reports.
pub fn code(c: CloseCode) -> Option<u64> {
    Some(u64::from(c.code()))
}

/// Whether to drop the next packet, as `loss` (if any) draws it.
fn lose(loss: &mut Option<(StdRng, f64)>) -> bool {
    loss.as_mut().is_some_and(|(rng, p)| rng.random_bool(*p))
}
