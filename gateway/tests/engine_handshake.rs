//! The engine driven in memory on a virtual clock: real `quinn_proto` client
//! endpoints exchange packets with an [`Engine`] directly, no sockets.

// `allow-unwrap-in-tests` covers `#[test]` functions only, not the harness
// helpers below; here a failed unwrap is a failed test, as intended.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use lanegate_client::session::{Event as ClientEvent, Session as ClientSession};
use lanegate_common::config::Config;
use lanegate_common::frame::put_frame;
use lanegate_common::ids::{CoreId, PlayerId, ZoneId};
use lanegate_common::lanes::Lane;
use lanegate_common::ring::{BufClass, PoolBuf, ToGateway, ToShard};
use lanegate_common::ticket::{DEV_KEY_ID, KeySet, Secret, Ticket};
use lanegate_common::wire::{ALPN, CloseCode, Transport, types};
use lanegate_gateway::engine::cid::{CID_BYTES, owner_of};
use lanegate_gateway::engine::tls::{Identity, quic_server_config};
use lanegate_gateway::engine::{
    Admission, AdmitDecision, ConnSlot, Engine, EngineParams, ShardFull, ShardSink,
};
use quinn_proto::crypto::rustls::QuicClientConfig;
use quinn_proto::{
    ClientConfig, Connection, ConnectionError, ConnectionHandle, DatagramEvent, Dir, Endpoint,
    EndpointConfig, Event, StreamEvent, StreamId, TransportConfig,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rustls::pki_types::CertificateDer;

const UNIX_NOW: u64 = 1_767_225_600;
const SERVER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 4433);

/// What the fake shard saw, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Join(PlayerId, ZoneId),
    Leave(PlayerId, ZoneId),
    Message(u16, Transport, usize),
}

/// A shard that records everything and, when `echo` is set, answers each
/// game message with the same body to the same session.
#[derive(Default)]
struct FakeShard {
    inbox: VecDeque<ToShard>,
    full: bool,
}

impl ShardSink for FakeShard {
    fn push(&mut self, message: ToShard) -> Result<(), ShardFull> {
        if self.full {
            return Err(ShardFull);
        }
        self.inbox.push_back(message);
        Ok(())
    }
    fn take_buf(&mut self, class: BufClass) -> Option<PoolBuf> {
        Some(PoolBuf::new(class))
    }
    fn recycle(&mut self, _buf: PoolBuf) {}
}

/// An admission hook whose decision the test sets, recording open/close.
struct Policy {
    decision: AdmitDecision,
    handshakes: bool,
    opened: Vec<ConnSlot>,
    closed: Vec<ConnSlot>,
}

impl Admission for Policy {
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

struct Client {
    addr: SocketAddr,
    endpoint: Endpoint,
    ch: ConnectionHandle,
    conn: Connection,
    session: ClientSession,
    hello: Vec<u8>,
    control: Option<StreamId>,
    /// Send `Hello` as soon as the handshake completes.
    auto_hello: bool,
    events: Vec<ClientEvent>,
    closed: Option<ConnectionError>,
}

impl Client {
    fn close_code(&self) -> Option<u64> {
        match &self.closed {
            Some(ConnectionError::ApplicationClosed(close)) => Some(close.error_code.into_inner()),
            _ => None,
        }
    }

    fn rejected_code(&self) -> Option<CloseCode> {
        self.events.iter().find_map(|e| match e {
            ClientEvent::Rejected(c) => Some(c.code),
            _ => None,
        })
    }

    fn welcomed(&self) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, ClientEvent::Welcome(_)))
    }

    fn messages(&self) -> Vec<(u16, Vec<u8>, Transport)> {
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

    fn open_control(&mut self) -> StreamId {
        if let Some(id) = self.control {
            return id;
        }
        let id = self.conn.streams().open(Dir::Bi).expect("one bidi stream");
        self.control = Some(id);
        id
    }

    fn write_control(&mut self, bytes: &[u8]) {
        let id = self.open_control();
        let n = self.conn.send_stream(id).write(bytes).unwrap();
        assert_eq!(n, bytes.len());
    }

    fn send_datagram(&mut self, bytes: &[u8]) {
        self.conn
            .datagrams()
            .send(Bytes::copy_from_slice(bytes), true)
            .unwrap();
    }

    fn poll_events(&mut self) {
        while let Some(event) = self.conn.poll() {
            match event {
                Event::Connected if self.auto_hello => {
                    let hello = self.hello.clone();
                    self.write_control(&hello);
                }
                Event::ConnectionLost { reason } => self.closed = Some(reason),
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
            self.session
                .on_control_bytes(&chunk.bytes, &mut self.events)
                .unwrap();
        }
        let _ = chunks.finalize();
    }
}

struct World {
    now: Instant,
    engine: Engine<Policy, FakeShard>,
    /// Drops each packet (either way) with this probability, seeded.
    loss: Option<(StdRng, f64)>,
    /// Destination connection ids of the client's short-header packets.
    short_dcids: Vec<Vec<u8>>,
    cert: CertificateDer<'static>,
    clients: Vec<Client>,
    echo: bool,
    seen: Vec<Seen>,
    buf: Vec<u8>,
}

impl World {
    fn new() -> Self {
        Self::with_config(Config::default())
    }

    fn with_config(config: Config) -> Self {
        let identity = Identity::self_signed().unwrap();
        let cert = identity.leaf().clone();
        let server = quic_server_config(&identity, &config.gateway).unwrap();
        let mut params = EngineParams::from_config(&config, CoreId(1), 1, KeySet::dev()).unwrap();
        params.seed = Some(42);
        let now = Instant::now();
        let engine = Engine::new(
            params,
            server,
            Policy {
                decision: AdmitDecision::Admit,
                handshakes: true,
                opened: Vec::new(),
                closed: Vec::new(),
            },
            FakeShard::default(),
            now,
            UNIX_NOW,
        )
        .unwrap();
        Self {
            now,
            engine,
            cert,
            clients: Vec::new(),
            echo: true,
            loss: None,
            short_dcids: Vec::new(),
            seen: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// Starts a client with `ticket`; returns its index.
    fn connect(&mut self, ticket: &str, datagrams: bool) -> usize {
        let port = 50_000 + u16::try_from(self.clients.len()).unwrap();
        let addr = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port);
        let seed = [u8::try_from(self.clients.len()).unwrap(); 32];
        let mut endpoint =
            Endpoint::new(Arc::new(EndpointConfig::default()), None, true, Some(seed));
        let (ch, conn) = endpoint
            .connect(
                self.now,
                client_config(&self.cert, datagrams),
                SERVER,
                "localhost",
            )
            .unwrap();
        let (session, hello) = ClientSession::start(ticket).unwrap();
        self.clients.push(Client {
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
        });
        self.clients.len() - 1
    }

    /// Moves packets and shard messages until nothing moves.
    fn pump(&mut self) -> bool {
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
                self.engine
                    .handle_datagram(now, c.addr, None, t.ecn, &self.buf[..t.size]);
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
            let mut scratch = Vec::new();
            if let Some(DatagramEvent::ConnectionEvent(_, ev)) = c.endpoint.handle(
                now,
                SERVER,
                None,
                ecn,
                BytesMut::from(&bytes[..]),
                &mut scratch,
            ) {
                c.conn.handle_event(ev);
            }
        }
        for c in &mut self.clients {
            while let Some(ev) = c.conn.poll_endpoint_events() {
                if let Some(back) = c.endpoint.handle_event(c.ch, ev) {
                    c.conn.handle_event(back);
                }
            }
            c.poll_events();
        }
        while let Some(m) = self.engine.sink_mut().inbox.pop_front() {
            progress = true;
            match m {
                ToShard::Join { player, zone, .. } => self.seen.push(Seen::Join(player, zone)),
                ToShard::Leave { player, zone, .. } => self.seen.push(Seen::Leave(player, zone)),
                ToShard::Message {
                    session,
                    player,
                    body,
                    ..
                } => {
                    self.seen
                        .push(Seen::Message(body.ty, body.transport, body.payload.len()));
                    if self.echo {
                        let reply = ToGateway::Unicast {
                            session,
                            player,
                            body,
                        };
                        let _ = self.engine.handle_from_shard(now, reply);
                    }
                }
                ToShard::Zone(_) => {}
            }
        }
        progress
    }

    /// Runs the world for `d` of virtual time.
    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        for _ in 0..10_000 {
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
                    self.engine.handle_timeouts(now);
                }
                _ => {
                    self.now = end;
                    return;
                }
            }
        }
        panic!("the world did not settle");
    }

    fn settle(&mut self) {
        self.run_for(Duration::from_millis(200));
    }
}

fn lose(loss: &mut Option<(StdRng, f64)>) -> bool {
    loss.as_mut().is_some_and(|(rng, p)| rng.random_bool(*p))
}

fn client_config(cert: &CertificateDer<'static>, datagrams: bool) -> ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let mut config = ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).unwrap()));
    let mut transport = TransportConfig::default();
    if !datagrams {
        transport.datagram_receive_buffer_size(None);
    }
    config.transport_config(Arc::new(transport));
    config
}

fn ticket_with(keys: &KeySet, player: u64, expires_at_s: u64) -> String {
    keys.mint(&Ticket {
        key_id: DEV_KEY_ID,
        player: PlayerId(player),
        zone: ZoneId(42),
        issued_at_s: expires_at_s - 7200,
        expires_at_s,
    })
    .unwrap()
}

fn ticket(player: u64) -> String {
    ticket_with(&KeySet::dev(), player, UNIX_NOW + 3600)
}

fn code(c: CloseCode) -> Option<u64> {
    Some(u64::from(c.code()))
}

fn established_world() -> World {
    let mut w = World::new();
    w.connect(&ticket(7), true);
    w.settle();
    assert!(w.clients[0].welcomed(), "events: {:?}", w.clients[0].events);
    w
}

#[test]
fn good_ticket_gets_welcome_and_joins_the_shard() {
    let w = established_world();
    let info = w.clients[0].session.info().unwrap();
    assert_eq!(info.player, PlayerId(7));
    assert_eq!(info.zone, ZoneId(42));
    assert_eq!(info.datagram_message_bytes_max, 1100);
    assert_eq!(info.lane_limits[0].rate_per_s, 240);
    assert_eq!(w.seen, vec![Seen::Join(PlayerId(7), ZoneId(42))]);
    assert_eq!(w.engine.counters().sessions_open, 1);
    assert_eq!(w.engine.connections_open(), 1);
    // The session id names this core (1) in its top 16 bits.
    assert_eq!(info.session.0 >> 48, 1);
}

#[test]
fn expired_ticket_is_rejected_with_ticket_expired() {
    let mut w = World::new();
    w.connect(&ticket_with(&KeySet::dev(), 7, UNIX_NOW - 3600), true);
    w.settle();
    let c = &w.clients[0];
    assert_eq!(c.close_code(), code(CloseCode::TicketExpired));
    assert_eq!(c.rejected_code(), Some(CloseCode::TicketExpired));
    assert_eq!(w.engine.counters().tickets_expired, 1);
    assert!(
        w.seen.is_empty(),
        "no shard state before the ticket verifies"
    );
}

#[test]
fn forged_ticket_is_rejected_with_bad_ticket() {
    let other = KeySet::new(vec![(DEV_KEY_ID, Secret::new(&[9u8; 32]).unwrap())]).unwrap();
    let mut w = World::new();
    w.connect(&ticket_with(&other, 7, UNIX_NOW + 3600), true);
    w.settle();
    assert_eq!(w.clients[0].close_code(), code(CloseCode::BadTicket));
    assert_eq!(w.clients[0].rejected_code(), Some(CloseCode::BadTicket));
    assert_eq!(w.engine.counters().tickets_bad, 1);
    assert!(w.seen.is_empty());
}

#[test]
fn garbage_ticket_is_rejected_with_bad_ticket() {
    let mut w = World::new();
    w.connect("definitely-not-a-ticket", true);
    w.settle();
    assert_eq!(w.clients[0].close_code(), code(CloseCode::BadTicket));
    assert_eq!(w.clients[0].rejected_code(), Some(CloseCode::BadTicket));
    assert_eq!(w.engine.counters().tickets_bad, 1);
}

#[test]
fn message_before_hello_is_a_protocol_violation() {
    let mut w = World::new();
    let i = w.connect(&ticket(7), true);
    w.clients[i].auto_hello = false;
    w.settle();
    let mut frame = Vec::new();
    put_frame(&[0x1f, 0xff, 0, 1], &mut frame);
    w.clients[i].write_control(&frame);
    w.settle();
    assert_eq!(
        w.clients[i].close_code(),
        code(CloseCode::ProtocolViolation)
    );
    assert_eq!(w.engine.counters().protocol_violations, 1);
    assert!(w.seen.is_empty());
}

#[test]
fn client_without_datagrams_is_closed_with_datagrams_required() {
    let mut w = World::new();
    w.connect(&ticket(7), false);
    w.settle();
    assert_eq!(
        w.clients[0].close_code(),
        code(CloseCode::DatagramsRequired)
    );
    assert_eq!(w.engine.counters().datagrams_required, 1);
}

#[test]
fn no_hello_times_out_with_hello_timeout() {
    let mut w = World::new();
    w.connect(&ticket(7), true);
    w.clients[0].auto_hello = false;
    w.run_for(Duration::from_secs(4));
    assert_eq!(w.clients[0].closed, None);
    w.run_for(Duration::from_secs(2));
    assert_eq!(w.clients[0].close_code(), code(CloseCode::HelloTimeout));
    assert_eq!(w.engine.counters().hello_timeouts, 1);
}

#[test]
fn echo_answers_on_the_same_transport() {
    let mut w = established_world();
    let datagram = [0x1f, 0xff, 0, 0, 0, 0, 0, 0, 0, 1];
    w.clients[0].send_datagram(&datagram);
    let mut frame = Vec::new();
    w.clients[0]
        .session
        .encode(types::ECHO_NORMAL, &[5; 300], Transport::Stream, &mut frame)
        .unwrap();
    w.clients[0].write_control(&frame);
    w.settle();
    let got = w.clients[0].messages();
    assert!(got.contains(&(0x1fff, datagram[2..].to_vec(), Transport::Datagram)));
    assert!(got.contains(&(0x3fff, vec![5; 300], Transport::Stream)));
    assert!(
        w.seen
            .contains(&Seen::Message(0x1fff, Transport::Datagram, 8))
    );
    // 300 bytes do not fit inline: the payload travelled in a pool buffer.
    assert!(
        w.seen
            .contains(&Seen::Message(0x3fff, Transport::Stream, 300))
    );
    assert_eq!(w.engine.counters().messages_to_shard, 2);
}

#[test]
fn malformed_datagrams_are_counted_not_fatal() {
    let mut w = established_world();
    w.clients[0].send_datagram(&[0x1f]);
    w.clients[0].send_datagram(&[0x00, 0x09]);
    w.settle();
    let counters = *w.engine.counters();
    assert_eq!(counters.malformed_datagrams, 1);
    assert_eq!(counters.control_datagrams, 1);
    assert_eq!(w.clients[0].closed, None);
    w.clients[0].send_datagram(&[0x1f, 0xff, 1]);
    w.settle();
    assert_eq!(w.clients[0].messages().len(), 1);
}

#[test]
fn datagrams_before_welcome_are_dropped_and_counted() {
    let mut w = World::new();
    let i = w.connect(&ticket(7), true);
    w.clients[i].auto_hello = false;
    w.settle();
    w.clients[i].send_datagram(&[0x1f, 0xff, 1]);
    w.settle();
    assert_eq!(w.engine.counters().datagrams_before_welcome, 1);
    assert!(w.seen.is_empty());
}

#[test]
fn control_type_on_a_stream_after_welcome_is_a_protocol_violation() {
    let mut w = established_world();
    let hello = w.clients[0].hello.clone();
    w.clients[0].write_control(&hello);
    w.settle();
    assert_eq!(
        w.clients[0].close_code(),
        code(CloseCode::ProtocolViolation)
    );
    assert_eq!(
        w.seen,
        vec![
            Seen::Join(PlayerId(7), ZoneId(42)),
            Seen::Leave(PlayerId(7), ZoneId(42))
        ]
    );
}

#[test]
fn drain_closes_sessions_with_server_draining_and_refuses_new_ones() {
    let mut w = established_world();
    w.engine.begin_drain(w.now);
    w.settle();
    assert_eq!(w.clients[0].close_code(), code(CloseCode::ServerDraining));
    assert!(w.seen.contains(&Seen::Leave(PlayerId(7), ZoneId(42))));
    assert_eq!(w.engine.counters().sessions_open, 0);
    w.connect(&ticket(8), true);
    w.settle();
    assert!(w.clients[1].closed.is_some());
    assert!(!w.clients[1].welcomed());
    assert_eq!(w.engine.counters().refused, 1);
    w.run_for(Duration::from_secs(5));
    assert_eq!(w.engine.connections_open(), 0);
}

#[test]
fn connections_above_the_max_are_closed_with_server_full() {
    let mut config = Config::default();
    config.gateway.connections_max = 1;
    let mut w = World::with_config(config);
    w.connect(&ticket(1), true);
    w.settle();
    w.connect(&ticket(2), true);
    w.settle();
    assert!(w.clients[0].welcomed());
    assert_eq!(w.clients[1].close_code(), code(CloseCode::ServerFull));
    assert_eq!(w.engine.counters().server_full, 1);
}

#[test]
fn zone_reset_reaches_the_zone_on_the_control_stream() {
    let mut w = established_world();
    let _ = w
        .engine
        .handle_from_shard(w.now, ToGateway::ZoneReset { zone: ZoneId(42) });
    w.settle();
    assert!(
        w.clients[0]
            .events
            .contains(&ClientEvent::ZoneReset(ZoneId(42)))
    );
}

#[test]
fn client_close_sends_leave_and_frees_the_slot() {
    let mut w = established_world();
    let now = w.now;
    w.clients[0].conn.close(now, 0u32.into(), Bytes::new());
    w.run_for(Duration::from_secs(5));
    assert_eq!(
        w.seen,
        vec![
            Seen::Join(PlayerId(7), ZoneId(42)),
            Seen::Leave(PlayerId(7), ZoneId(42))
        ]
    );
    assert_eq!(w.engine.counters().sessions_open, 0);
    assert_eq!(w.engine.connections_open(), 0);
}

#[test]
fn full_shard_ring_is_counted_per_lane() {
    let mut w = established_world();
    w.engine.sink_mut().full = true;
    w.clients[0].send_datagram(&[0x1f, 0xff, 1]);
    w.clients[0].send_datagram(&[0x4f, 0xff, 1]);
    w.settle();
    let c = w.engine.counters();
    assert_eq!(c.ring_full, [1, 0, 0, 1]);
    assert_eq!(w.clients[0].closed, None);
}

#[test]
fn reliable_messages_on_uni_streams_are_answered_on_the_control_stream() {
    let mut w = established_world();
    let mut frame = Vec::new();
    w.clients[0]
        .session
        .encode(types::ECHO_HIGH, &[1, 2, 3], Transport::Stream, &mut frame)
        .unwrap();
    let c = &mut w.clients[0];
    let uni = c.conn.streams().open(Dir::Uni).unwrap();
    c.conn.send_stream(uni).write(&frame).unwrap();
    c.conn.send_stream(uni).finish().unwrap();
    w.settle();
    assert_eq!(
        w.clients[0].messages(),
        vec![(0x2fff, vec![1, 2, 3], Transport::Stream)]
    );
    assert_eq!(w.clients[0].closed, None);
}

#[test]
fn connection_ids_name_the_owning_core() {
    let mut w = established_world();
    w.clients[0].send_datagram(&[0x1f, 0xff, 1]);
    w.settle();
    assert!(!w.short_dcids.is_empty());
    for cid in &w.short_dcids {
        assert_eq!(owner_of(cid), Some(CoreId(1)));
    }
}

#[test]
fn admission_drops_are_counted_per_lane_and_close_ends_the_session() {
    let mut w = established_world();
    assert_eq!(w.engine.admission_mut().opened.len(), 1);
    w.engine.admission_mut().decision = AdmitDecision::Drop;
    w.clients[0].send_datagram(&[0x2f, 0xff, 1]);
    w.settle();
    assert_eq!(w.engine.counters().admit_dropped, [0, 1, 0, 0]);
    assert!(w.clients[0].messages().is_empty());

    w.engine.admission_mut().decision = AdmitDecision::Close(CloseCode::Abuse);
    w.clients[0].send_datagram(&[0x2f, 0xff, 1]);
    w.settle();
    assert_eq!(w.clients[0].close_code(), code(CloseCode::Abuse));
    assert_eq!(w.engine.admission_mut().closed.len(), 1);
    assert!(w.seen.contains(&Seen::Leave(PlayerId(7), ZoneId(42))));
}

#[test]
fn broadcast_reaches_every_session_in_the_zone() {
    let mut w = established_world();
    w.connect(&ticket(8), true);
    w.settle();
    assert!(w.clients[1].welcomed());
    let body = lanegate_common::ring::Body {
        ty: 0x3001,
        lane: Lane::Normal,
        transport: Transport::Datagram,
        payload: lanegate_common::ring::Payload::Inline(
            lanegate_common::ring::InlinePayload::new(&[4, 2]).unwrap(),
        ),
    };
    let _ = w.engine.handle_from_shard(
        w.now,
        ToGateway::Broadcast {
            zone: ZoneId(42),
            body,
        },
    );
    w.settle();
    for c in &w.clients {
        assert_eq!(
            c.messages(),
            vec![(0x3001, vec![4, 2], Transport::Datagram)]
        );
    }
}

#[test]
fn handshakes_admission_refuses_are_dropped_silently() {
    let mut w = World::new();
    w.engine.admission_mut().handshakes = false;
    w.connect(&ticket(7), true);
    w.run_for(Duration::from_secs(2));
    assert!(w.engine.counters().handshakes_ignored >= 1);
    assert_eq!(w.engine.connections_open(), 0);
    assert!(!w.clients[0].welcomed());
}

#[test]
fn handshake_and_echo_survive_seeded_packet_loss() {
    for seed in 0..4 {
        let mut w = World::new();
        w.loss = Some((StdRng::seed_from_u64(seed), 0.2));
        w.connect(&ticket(7), true);
        w.run_for(Duration::from_secs(3));
        assert!(
            w.clients[0].welcomed(),
            "seed {seed}: {:?}",
            w.clients[0].closed
        );
        let mut frame = Vec::new();
        for i in 0..10u8 {
            w.clients[0]
                .session
                .encode(types::ECHO_CRITICAL, &[i], Transport::Stream, &mut frame)
                .unwrap();
        }
        w.clients[0].write_control(&frame);
        w.run_for(Duration::from_secs(3));
        let got: Vec<_> = w.clients[0]
            .messages()
            .into_iter()
            .map(|m| m.1[0])
            .collect();
        assert_eq!(
            got,
            (0..10).collect::<Vec<u8>>(),
            "seed {seed}: stream echo is reliable and ordered"
        );
    }
}
