//! `baseline-quinn`: the echo server a competent team would write with
//! quinn's high-level API, to measure Lanegate against (issue 5).
//!
//! One tokio current_thread runtime, one `quinn::Endpoint` with rustls (a
//! self-signed certificate for `localhost` made at start by rcgen), ALPN
//! `lanegate/1`, and the session handshake of `docs/protocol.md` §4: the
//! client opens the control stream and sends `Hello`; the ticket is verified
//! with the development key set (`KeySet::dev()`, 30 s skew); a good one gets
//! `Welcome` (the default lane limits, 30 Hz, 1100/16384-byte maximums), a
//! bad one `Reject` and a close with its code. After that every datagram is
//! echoed straight back as a datagram, and every stream frame (control
//! stream or a unidirectional stream) is echoed on the control stream. No
//! lanes, no rate limits, no shards: what is left is quinn, rustls and tokio.
//!
//! Transport settings mirrored from the gateway's
//! `gateway/src/engine/tls.rs` (`transport_config`, `rustls_server_config`),
//! where they change what a client sees:
//!
//! - idle timeout 10 s (`gateway.idle_timeout_ms` default);
//! - one bidirectional stream (the control stream) and four unidirectional;
//! - datagrams on, with receive and send buffers of 8 × 1100 bytes;
//! - per-stream receive window 2 × 16384 + 16 bytes;
//! - no server keep-alive; migration on; TLS 1.3 only, no 0-RTT;
//! - UDP socket buffers (`SO_RCVBUF`, `SO_SNDBUF`) of 8 MiB requested
//!   (`gateway.socket_recv_buffer_bytes`/`socket_send_buffer_bytes`
//!   defaults; Linux caps them at `net.core.rmem_max`/`wmem_max`).
//!
//! Why the socket buffers are set here (they were not until the
//! `bench-portable` branch): `quinn::Endpoint::server` binds a plain socket
//! with the kernel's default buffer (`net.core.rmem_default`, 208 KiB here),
//! which holds about a hundred 1200-byte loopback datagrams. The e2e handshake case offers
//! 2000 connections/s; while this one core signs handshakes, the Initials
//! and the clients' Hellos queued behind them overflow that buffer (the
//! socket's drop counter reached 23 000 in one 1000-connection run, with
//! the server at under half a core), and each dropped Initial costs its
//! client a 1 s probe timeout before the retry. That is what held this
//! baseline at ~250 handshakes/s, not the crypto (with the buffers: ~810/s,
//! bot-bound like the gateway; see `BENCHMARKS.md`). A team that load-tests
//! a quinn server raises them, and the gateway it is compared with does
//! (8 MiB by default): without them the baseline measured the kernel's
//! default, not quinn.
//!
//! It prints `listening ADDR` and `fingerprint HEX` (SHA-256 of the DER
//! certificate, colon-separated lowercase hex) on stdout, as the gateway does.
//!
//! Flags:
//!
//! - `--listen ADDR` (default `127.0.0.1:0`);
//! - test knobs, off by default (they make it less of a baseline):
//!   `--limit LANE=RATE[/BURST]` drops messages of that lane (default lane
//!   table) over a GCRA limit, silently as the gateway does (burst defaults
//!   to the rate); `--delay-ms MS` holds every echo that long before sending
//!   it, to test that clients keep their send schedule.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use lanegate_client::limit::LaneGcra;
use lanegate_common::frame::{FrameReader, put_frame};
use lanegate_common::ids::SessionId;
use lanegate_common::lanes::Lane;
use lanegate_common::ticket::KeySet;
use lanegate_common::wire::{
    ALPN, CloseCode, LaneLimit, Message, PROTOCOL_VERSION, Welcome, reject,
};
use quinn::VarInt;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The gateway's default idle timeout.
const IDLE_TIMEOUT_MS: u32 = 10_000;
/// The gateway's default `hello_timeout`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// The gateway's default `datagram_message_bytes_max`.
const DATAGRAM_MESSAGE_BYTES_MAX: usize = 1100;
/// The gateway's default `stream_message_bytes_max`.
const STREAM_MESSAGE_BYTES_MAX: usize = 16384;
/// As the gateway's default `datagram_send_buffer_bytes` (8800), in messages.
const DATAGRAM_BUFFER_MESSAGES: usize = 8;
/// Clock skew tolerated on tickets, as the gateway's default.
const TICKET_SKEW_S: u64 = 30;
/// Echoes held per connection under `--delay-ms`; beyond, they are dropped.
const DELAYED_MAX: usize = 65_536;
/// Frames from unidirectional streams queued for the control stream.
const UNI_FRAMES_QUEUED_MAX: usize = 1024;
/// Bytes read from a stream at a time.
const READ_CHUNK_BYTES: usize = 16 * 1024;
/// `SO_RCVBUF` and `SO_SNDBUF` requested, as the gateway's defaults
/// (`gateway.socket_recv_buffer_bytes`, `socket_send_buffer_bytes`).
const SOCKET_BUFFER_BYTES: usize = 8 << 20;

use lanegate_common::wire::DEFAULT_LANE_LIMITS;

/// Command-line flags.
#[derive(Debug, Clone, Default)]
struct Args {
    listen: Option<SocketAddr>,
    limits: [Option<LaneLimit>; Lane::COUNT],
    delay: Duration,
}

fn main() -> anyhow::Result<()> {
    let args = parse_args(std::env::args().skip(1))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let listen = args
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    let cert = certified.cert.der().clone();
    let fingerprint = Sha256::digest(&cert)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.max_early_data_size = 0;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport_config()));
    config.migration(true);
    let endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(config),
        bind_udp(listen)?,
        quinn::default_runtime().context("a tokio runtime")?,
    )?;
    println!("listening {}", endpoint.local_addr()?);
    println!("fingerprint {fingerprint}");

    let args = Arc::new(args);
    let mut next_session = 1u64;
    while let Some(incoming) = endpoint.accept().await {
        let args = args.clone();
        let session = SessionId(next_session);
        next_session += 1;
        tokio::spawn(async move {
            if let Ok(conn) = incoming.await {
                session_task(conn, session, &args).await;
            }
        });
    }
    Ok(())
}

/// The UDP socket, with the gateway's buffer sizes (see the file header);
/// otherwise what `quinn::Endpoint::server` binds.
fn bind_udp(listen: SocketAddr) -> anyhow::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(listen),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    socket.set_nonblocking(true).context("O_NONBLOCK")?;
    // Before bind, so no datagram lands in a small buffer.
    socket
        .set_recv_buffer_size(SOCKET_BUFFER_BYTES)
        .context("SO_RCVBUF")?;
    socket
        .set_send_buffer_size(SOCKET_BUFFER_BYTES)
        .context("SO_SNDBUF")?;
    socket
        .bind(&listen.into())
        .with_context(|| format!("binding {listen}"))?;
    Ok(socket.into())
}

/// The transport parameters the gateway uses (see the file header).
fn transport_config() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.max_idle_timeout(Some(VarInt::from_u32(IDLE_TIMEOUT_MS).into()))
        .max_concurrent_bidi_streams(VarInt::from_u32(1))
        .max_concurrent_uni_streams(VarInt::from_u32(4))
        .datagram_receive_buffer_size(Some(DATAGRAM_BUFFER_MESSAGES * DATAGRAM_MESSAGE_BYTES_MAX))
        .datagram_send_buffer_size(DATAGRAM_BUFFER_MESSAGES * DATAGRAM_MESSAGE_BYTES_MAX)
        .stream_receive_window(VarInt::from_u32(
            u32::try_from(STREAM_MESSAGE_BYTES_MAX * 2 + 16).expect("32 KiB fits in u32"),
        ))
        .keep_alive_interval(None);
    t
}

/// One connection: handshake, then echo until it closes.
async fn session_task(conn: quinn::Connection, session: SessionId, args: &Args) {
    let close = |code: CloseCode| conn.close(VarInt::from(code.code()), code.name().as_bytes());
    if conn.max_datagram_size().is_none() {
        return close(CloseCode::DatagramsRequired);
    }
    let (mut send, mut recv) = match tokio::time::timeout(HELLO_TIMEOUT, conn.accept_bi()).await {
        Ok(Ok(streams)) => streams,
        Ok(Err(_)) => return,
        Err(_) => return close(CloseCode::HelloTimeout),
    };
    let mut reader = FrameReader::new(STREAM_MESSAGE_BYTES_MAX);
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let deadline = Instant::now() + HELLO_TIMEOUT;
    // Handshake: the first frame must be Hello.
    let hello = loop {
        if let Some(first) = frames.first() {
            break first.clone();
        }
        let read = tokio::time::timeout_at(deadline, recv.read(&mut buf)).await;
        let n = match read {
            Ok(Ok(Some(n))) => n,
            Ok(_) => return,
            Err(_) => return close(CloseCode::HelloTimeout),
        };
        if reader.feed(&buf[..n], |m| frames.push(m.to_vec())).is_err() {
            return close(CloseCode::ProtocolViolation);
        }
    };
    let mut out = Vec::new();
    match Message::decode(&hello) {
        Ok(Message::Hello(h)) if h.version != PROTOCOL_VERSION => {
            let code = CloseCode::UnsupportedVersion;
            encode_frame(&Message::Reject(reject(code, code.name())), &mut out);
            let _ = send.write_all(&out).await;
            return close(code);
        }
        Ok(Message::Hello(h)) => match KeySet::dev().verify(h.ticket, now_s(), TICKET_SKEW_S) {
            Ok(ticket) => {
                let welcome = Welcome {
                    version: PROTOCOL_VERSION,
                    session,
                    player: ticket.player,
                    zone: ticket.zone,
                    tick_rate_hz: 30,
                    datagram_message_bytes_max: u16::try_from(DATAGRAM_MESSAGE_BYTES_MAX)
                        .expect("1100 fits in u16"),
                    stream_message_bytes_max: u32::try_from(STREAM_MESSAGE_BYTES_MAX)
                        .expect("16384 fits in u32"),
                    lane_limits: DEFAULT_LANE_LIMITS,
                };
                encode_frame(&Message::Welcome(welcome), &mut out);
            }
            Err(e) => {
                let code = e.close_code();
                encode_frame(&Message::Reject(reject(code, code.name())), &mut out);
                let _ = send.write_all(&out).await;
                let _ = send.finish();
                // Give the Reject a moment to arrive before the close.
                let _ = tokio::time::timeout(Duration::from_secs(1), send.stopped()).await;
                return close(code);
            }
        },
        _ => return close(CloseCode::ProtocolViolation),
    }
    if send.write_all(&out).await.is_err() {
        return;
    }
    let mut echo = Echo::new(args);
    // Frames that came in the same read as the Hello.
    for frame in frames.drain(..).skip(1) {
        if !echo.on_frame(frame) {
            return close(CloseCode::ProtocolViolation);
        }
    }
    let (uni_tx, mut uni_rx) = mpsc::channel::<UniFrame>(UNI_FRAMES_QUEUED_MAX);
    loop {
        if echo.flush(&conn, &mut send).await.is_err() {
            return;
        }
        let wake = echo.next_release();
        tokio::select! {
            datagram = conn.read_datagram() => {
                let Ok(datagram) = datagram else { return };
                echo.on_datagram(datagram);
            }
            read = recv.read(&mut buf) => {
                let n = match read {
                    Ok(Some(n)) => n,
                    // Finishing the control stream ends the session.
                    Ok(None) => return close(CloseCode::NoError),
                    Err(_) => return,
                };
                let mut violation = reader.feed(&buf[..n], |m| frames.push(m.to_vec())).is_err();
                for frame in frames.drain(..) {
                    violation |= !echo.on_frame(frame);
                }
                if violation {
                    return close(CloseCode::ProtocolViolation);
                }
            }
            uni = conn.accept_uni() => {
                let Ok(stream) = uni else { return };
                tokio::spawn(read_uni(stream, uni_tx.clone()));
            }
            frame = uni_rx.recv() => {
                let valid = match frame {
                    Some(UniFrame::Frame(frame)) => echo.on_frame(frame),
                    Some(UniFrame::Violation) => false,
                    None => true,
                };
                if !valid {
                    return close(CloseCode::ProtocolViolation);
                }
            }
            () = sleep_until(wake) => {}
        }
    }
}

/// What a unidirectional stream's reader hands the connection task.
enum UniFrame {
    Frame(Vec<u8>),
    Violation,
}

/// Reads frames from a client's unidirectional stream.
async fn read_uni(mut stream: quinn::RecvStream, tx: mpsc::Sender<UniFrame>) {
    let mut reader = FrameReader::new(STREAM_MESSAGE_BYTES_MAX);
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    let mut frames = Vec::new();
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(Some(n)) => n,
            Ok(None) => {
                if reader.finish().is_err() {
                    let _ = tx.send(UniFrame::Violation).await;
                }
                return;
            }
            Err(_) => return,
        };
        if reader.feed(&buf[..n], |m| frames.push(m.to_vec())).is_err() {
            let _ = tx.send(UniFrame::Violation).await;
            return;
        }
        for frame in frames.drain(..) {
            if tx.send(UniFrame::Frame(frame)).await.is_err() {
                return;
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A connection's echo: optional per-lane limits and delay, then the replies.
struct Echo {
    limits: [Option<LaneGcra>; Lane::COUNT],
    delay: Duration,
    /// Echoes waiting for their release time, oldest first.
    delayed: VecDeque<(Instant, Reply)>,
    /// Echoes ready to send.
    ready: Vec<Reply>,
}

enum Reply {
    Datagram(bytes::Bytes),
    /// A message (type ‖ payload) to frame on the control stream.
    Stream(Vec<u8>),
}

impl Echo {
    fn new(args: &Args) -> Self {
        Self {
            limits: args.limits.map(|l| l.map(LaneGcra::new)),
            delay: args.delay,
            delayed: VecDeque::new(),
            ready: Vec::new(),
        }
    }

    fn on_datagram(&mut self, datagram: bytes::Bytes) {
        let Some(ty) = datagram.first_chunk::<2>().map(|t| u16::from_be_bytes(*t)) else {
            return;
        };
        if ty < lanegate_common::lanes::GAME_TYPE_FIRST {
            return; // control types in a datagram are dropped
        }
        if self.admit(ty) {
            self.queue(Reply::Datagram(datagram));
        }
    }

    /// A frame from a stream; false for a protocol violation.
    fn on_frame(&mut self, frame: Vec<u8>) -> bool {
        match Message::decode(&frame) {
            Ok(Message::Game(game)) => {
                if self.admit(game.ty) {
                    self.queue(Reply::Stream(frame));
                }
                true
            }
            _ => false,
        }
    }

    fn admit(&mut self, ty: u16) -> bool {
        let lane = match ty {
            0x1000..=0x1fff => Lane::Critical,
            0x2000..=0x2fff => Lane::High,
            0x3000..=0x3fff => Lane::Normal,
            _ => Lane::Bulk,
        };
        match &mut self.limits[lane.index()] {
            Some(gcra) => gcra.admit(std::time::Instant::now()),
            None => true,
        }
    }

    fn queue(&mut self, reply: Reply) {
        if self.delay.is_zero() {
            self.ready.push(reply);
        } else if self.delayed.len() < DELAYED_MAX {
            self.delayed.push_back((Instant::now() + self.delay, reply));
        }
    }

    fn next_release(&self) -> Option<Instant> {
        self.delayed.front().map(|(at, _)| *at)
    }

    /// Sends what is due.
    async fn flush(
        &mut self,
        conn: &quinn::Connection,
        send: &mut quinn::SendStream,
    ) -> Result<(), quinn::WriteError> {
        let now = Instant::now();
        while self.delayed.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, reply)) = self.delayed.pop_front() {
                self.ready.push(reply);
            }
        }
        let mut framed = Vec::new();
        for reply in self.ready.drain(..) {
            match reply {
                // A full send buffer drops the oldest, as datagrams may be.
                Reply::Datagram(d) => {
                    let _ = conn.send_datagram(d);
                }
                Reply::Stream(message) => put_frame(&message, &mut framed),
            }
        }
        if !framed.is_empty() {
            send.write_all(&framed).await?;
        }
        Ok(())
    }
}

fn encode_frame(message: &Message<'_>, out: &mut Vec<u8>) {
    let mut bytes = Vec::new();
    message
        .encode(&mut bytes)
        .expect("the server encodes only valid control messages");
    put_frame(&bytes, out);
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn parse_args(mut args: impl Iterator<Item = String>) -> anyhow::Result<Args> {
    let mut parsed = Args::default();
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => parsed.listen = Some(value()?.parse().context("--listen")?),
            "--delay-ms" => {
                parsed.delay = Duration::from_millis(value()?.parse().context("--delay-ms")?);
            }
            "--limit" => {
                let text = value()?;
                let (lane, limit) = text
                    .split_once('=')
                    .context("--limit wants LANE=RATE[/BURST]")?;
                let lane: Lane = lane.parse().context("--limit lane")?;
                let (rate, burst) = match limit.split_once('/') {
                    Some((r, b)) => (r.parse()?, b.parse()?),
                    None => {
                        let r: u32 = limit.parse().context("--limit rate")?;
                        (r, r.max(1))
                    }
                };
                parsed.limits[lane.index()] = Some(LaneLimit {
                    rate_per_s: rate,
                    burst,
                });
            }
            "-h" | "--help" => {
                println!(
                    "baseline-quinn [--listen ADDR] [--limit LANE=RATE[/BURST]]... [--delay-ms MS]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown flag {other}; see --help"),
        }
    }
    Ok(parsed)
}
