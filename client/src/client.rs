//! The QUIC transport: [`connect`] runs the handshake of `docs/protocol.md`
//! §4 on quinn and hands back a [`Client`] that moves game messages between
//! the game and the gateway, with [`Session`] doing all protocol decisions.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use lanegate_common::wire::{ALPN, CloseCode, Transport};
use quinn::VarInt;

use crate::ClientError;
use crate::session::{
    Event, LANE_STREAMS_MAX, LANE_STREAMS_MAX_U8, Session, SessionError, SessionInfo,
};
use crate::verify::{self, ServerVerify};

/// Default time for the QUIC handshake plus `Welcome`. The gateway gives a
/// client 5 s (`hello_timeout`) to send `Hello`; a gateway that has not
/// answered in twice that is not going to.
pub const HANDSHAKE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// Default QUIC idle timeout the client proposes; the connection uses the
/// smaller of both sides', and the gateway's default is 10 s.
pub const IDLE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// Default keep-alive: a QUIC PING every 3 s, as `docs/protocol.md` §1 asks,
/// well under the gateway's 10 s idle timeout even with two PINGs lost.
pub const KEEP_ALIVE_DEFAULT: Duration = Duration::from_secs(3);
/// Default bytes of received datagrams quinn queues before dropping the
/// oldest. It also sets the `max_datagram_frame_size` transport parameter,
/// which quinn caps at 65535 (the value the protocol recommends); 1 MiB holds
/// about 900 full-size game datagrams, several ticks of a busy zone.
pub const DATAGRAM_RECEIVE_BUFFER_BYTES_DEFAULT: usize = 1 << 20;
/// Smallest datagram receive buffer: the protocol requires a
/// `max_datagram_frame_size` of at least 1200.
pub const DATAGRAM_RECEIVE_BUFFER_BYTES_MIN: usize = 1200;
/// How long [`Client::recv`] waits for the connection close after the gateway
/// finished the control stream, before calling it a protocol violation.
pub const CLOSE_AFTER_FIN_WAIT: Duration = Duration::from_secs(2);
/// Bytes read from the control stream at a time.
const CONTROL_READ_CHUNK_BYTES: usize = 16 * 1024;

/// Where and how to connect.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// The gateway's UDP address.
    pub server: SocketAddr,
    /// The name in the gateway's certificate (SNI); with a pinned
    /// fingerprint any valid DNS name will do, e.g. `"localhost"`.
    pub server_name: String,
    /// The ticket's text form, as the backend issued it.
    pub ticket: String,
    /// How to trust the gateway's certificate.
    pub verify: ServerVerify,
    /// Local address to bind; `None` binds an ephemeral port on the
    /// unspecified address of the server's family.
    pub bind: Option<SocketAddr>,
    /// Time allowed for the QUIC handshake plus `Welcome`.
    pub handshake_timeout: Duration,
    /// Idle timeout the client proposes.
    pub idle_timeout: Duration,
    /// Interval of keep-alive PINGs; must be below `idle_timeout`.
    pub keep_alive: Duration,
    /// See [`DATAGRAM_RECEIVE_BUFFER_BYTES_DEFAULT`].
    pub datagram_receive_buffer_bytes: usize,
}

impl ConnectOptions {
    /// Options with the defaults above.
    pub fn new(
        server: SocketAddr,
        server_name: impl Into<String>,
        ticket: impl Into<String>,
        verify: ServerVerify,
    ) -> Self {
        Self {
            server,
            server_name: server_name.into(),
            ticket: ticket.into(),
            verify,
            bind: None,
            handshake_timeout: HANDSHAKE_TIMEOUT_DEFAULT,
            idle_timeout: IDLE_TIMEOUT_DEFAULT,
            keep_alive: KEEP_ALIVE_DEFAULT,
            datagram_receive_buffer_bytes: DATAGRAM_RECEIVE_BUFFER_BYTES_DEFAULT,
        }
    }

    fn check(&self) -> Result<(), ClientError> {
        let bad = |field, reason: &str| {
            Err(ClientError::Config {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.keep_alive.is_zero() || self.keep_alive >= self.idle_timeout {
            return bad(
                "keep_alive",
                "must be above zero and below idle_timeout, or the connection idles out",
            );
        }
        if self.handshake_timeout.is_zero() {
            return bad("handshake_timeout", "must be above zero");
        }
        if self.datagram_receive_buffer_bytes < DATAGRAM_RECEIVE_BUFFER_BYTES_MIN {
            return bad(
                "datagram_receive_buffer_bytes",
                "must be at least 1200 (the protocol's minimum max_datagram_frame_size)",
            );
        }
        Ok(())
    }
}

/// An established session with a gateway.
#[derive(Debug)]
pub struct Client {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    control_send: quinn::SendStream,
    control_recv: quinn::RecvStream,
    /// The gateway's lane streams (`high`, `normal`, `bulk` reliable
    /// messages), in the order it opened them.
    lanes: [Option<quinn::RecvStream>; LANE_STREAMS_MAX],
    lanes_opened: usize,
    session: Session,
    info: SessionInfo,
    /// Events decoded from one stream read, not yet returned. At most one
    /// read's worth: every message is at least 3 bytes on the wire.
    pending: VecDeque<Event>,
    read_buf: Vec<u8>,
    send_buf: Vec<u8>,
}

/// Connects to a gateway and runs the session handshake: QUIC (ALPN
/// `lanegate/1`, datagrams on), the control stream, `Hello`, then `Welcome`.
///
/// A `Reject` is [`ClientError::Rejected`]; a close code before `Welcome` is
/// [`ClientError::Closed`]; a certificate that fails verification is
/// [`ClientError::Connection`].
pub async fn connect(opts: ConnectOptions) -> Result<Client, ClientError> {
    opts.check()?;
    let config = quic_config(&opts)?;
    let bind = opts.bind.unwrap_or(match opts.server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    });
    let endpoint = quinn::Endpoint::client(bind)?;
    establish(endpoint, config, &opts).await
}

/// [`connect`] over an endpoint the caller made, for a socket quinn's
/// default does not give: the bots of `lanegate-bots` use one whose receive
/// buffer holds one datagram per slot, so that thousands of endpoints fit in
/// one process. [`ConnectOptions::bind`] is not used (the endpoint is
/// bound); the [`Client`] owns the endpoint from here on, and
/// [`Client::rebind`] wraps its new socket with quinn's default.
pub async fn connect_on(
    endpoint: quinn::Endpoint,
    opts: ConnectOptions,
) -> Result<Client, ClientError> {
    opts.check()?;
    let config = quic_config(&opts)?;
    establish(endpoint, config, &opts).await
}

impl Client {
    fn new(endpoint: quinn::Endpoint, parts: Established) -> Self {
        Self {
            endpoint,
            conn: parts.conn,
            control_send: parts.send,
            control_recv: parts.recv,
            lanes: [None, None, None],
            lanes_opened: 0,
            session: parts.session,
            info: parts.info,
            pending: parts.pending,
            read_buf: vec![0; CONTROL_READ_CHUNK_BYTES],
            send_buf: Vec::new(),
        }
    }

    /// What the gateway granted in `Welcome`.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// Sends a game message. The gateway puts it in the lane of its type;
    /// the size limits from `Welcome` are checked here. Stream messages go
    /// on the control stream, in order; datagrams may be lost or reordered.
    ///
    /// A datagram send never waits. A stream send waits for flow control and
    /// is not cancel-safe: dropping it mid-write leaves half a frame on the
    /// control stream, which the gateway must treat as a protocol violation.
    pub async fn send(
        &mut self,
        ty: u16,
        payload: &[u8],
        transport: Transport,
    ) -> Result<(), ClientError> {
        if let Some(e) = self.conn.close_reason() {
            return Err(ClientError::from_connection(e));
        }
        self.send_buf.clear();
        self.session
            .encode(ty, payload, transport, &mut self.send_buf)?;
        match transport {
            Transport::Datagram => self
                .conn
                .send_datagram(Bytes::copy_from_slice(&self.send_buf))
                .map_err(|e| match e {
                    quinn::SendDatagramError::ConnectionLost(e) => ClientError::from_connection(e),
                    other => ClientError::Datagram(other),
                }),
            Transport::Stream => match self.control_send.write_all(&self.send_buf).await {
                Ok(()) => Ok(()),
                Err(e) => Err(self.stream_failure(e.to_string())),
            },
        }
    }

    /// The next event from the gateway: a game message (a datagram, or a
    /// reliable message from the control stream or a lane stream), a
    /// `ZoneReset`, or a `ZoneChanged` (after which [`Client::info`] names
    /// the new zone). Each stream's messages come in the order they were
    /// sent; datagrams and different streams are not ordered with each
    /// other. Cancel-safe, so it can sit in a `select!` loop whose
    /// other branch sends, as a game's tick loop does:
    ///
    /// ```no_run
    /// # async fn tick_loop(client: &mut lanegate_client::Client) -> Result<(), lanegate_client::ClientError> {
    /// use lanegate_client::{Event, Transport};
    /// let mut tick = tokio::time::interval(std::time::Duration::from_millis(33));
    /// loop {
    ///     tokio::select! {
    ///         _ = tick.tick() => client.send(0x1001, b"input", Transport::Datagram).await?,
    ///         event = client.recv() => match event? {
    ///             Event::ZoneReset(_) => { /* resend what the game needs */ }
    ///             Event::Message { ty, payload, .. } => { /* apply */ }
    ///             _ => {}
    ///         },
    ///     }
    /// }
    /// # }
    /// ```
    ///
    /// Once the connection is lost, every call returns the typed close.
    pub async fn recv(&mut self) -> Result<Event, ClientError> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                if let Event::ZoneChanged { zone, tick_rate_hz } = event {
                    self.info.zone = zone;
                    self.info.tick_rate_hz = tick_rate_hz;
                }
                return Ok(event);
            }
            let [lane0, lane1, lane2] = &mut self.lanes;
            let read = tokio::select! {
                datagram = self.conn.read_datagram() => {
                    let datagram = datagram.map_err(ClientError::from_connection)?;
                    match self.session.on_datagram(&datagram) {
                        Ok(Some(event)) => return Ok(event),
                        Ok(None) => continue,
                        Err(e) => return Err(self.protocol_violation(e)),
                    }
                }
                read = self.control_recv.read(&mut self.read_buf) => read,
                opened = self.conn.accept_uni(), if self.lanes_opened < LANE_STREAMS_MAX => {
                    let stream = opened.map_err(ClientError::from_connection)?;
                    self.lanes[self.lanes_opened] = Some(stream);
                    self.lanes_opened += 1;
                    continue;
                }
                read = read_lane(lane0) => { self.on_lane_read(0, read)?; continue; }
                read = read_lane(lane1) => { self.on_lane_read(1, read)?; continue; }
                read = read_lane(lane2) => { self.on_lane_read(2, read)?; continue; }
            };
            match read {
                Ok(Some(n)) => {
                    let mut events = Vec::new();
                    if let Err(e) = self
                        .session
                        .on_control_bytes(&self.read_buf[..n], &mut events)
                    {
                        return Err(self.protocol_violation(e));
                    }
                    self.pending.extend(events);
                }
                Ok(None) => return Err(self.control_finished().await),
                Err(e) => return Err(self.stream_failure(e.to_string())),
            }
        }
    }

    /// What one read of lane stream `i` brought: its messages to
    /// `pending`; at its end (the gateway only ends one with the
    /// connection) the stream is dropped, and the connection's close comes
    /// through the control stream.
    fn on_lane_read(
        &mut self,
        i: usize,
        read: Result<Option<quinn::Chunk>, quinn::ReadError>,
    ) -> Result<(), ClientError> {
        match read {
            Ok(Some(chunk)) => {
                let mut events = Vec::new();
                if let Err(e) = self
                    .session
                    .on_lane_stream_bytes(i, &chunk.bytes, &mut events)
                {
                    return Err(self.protocol_violation(e));
                }
                self.pending.extend(events);
                Ok(())
            }
            Ok(None) | Err(_) => {
                self.lanes[i] = None;
                Ok(())
            }
        }
    }

    /// Leaves: closes with `NO_ERROR` and waits until the gateway has been
    /// told (or the close times out).
    pub async fn close(self) {
        self.conn.close(close_code(CloseCode::NoError), b"");
        self.endpoint.wait_idle().await;
    }

    /// Moves the client to a new local socket, as a NAT rebinding or a
    /// network change would; the session continues over it
    /// (`docs/protocol.md` §1, migration).
    pub fn rebind(&self, socket: std::net::UdpSocket) -> Result<(), ClientError> {
        Ok(self.endpoint.rebind(socket)?)
    }

    /// The local address of the client's socket.
    pub fn local_addr(&self) -> Result<SocketAddr, ClientError> {
        Ok(self.endpoint.local_addr()?)
    }

    /// The underlying quinn connection, for statistics (`rtt()`, `stats()`).
    pub fn connection(&self) -> &quinn::Connection {
        &self.conn
    }

    /// The gateway broke the protocol: close with `PROTOCOL_VIOLATION`.
    fn protocol_violation(&self, e: SessionError) -> ClientError {
        self.conn
            .close(close_code(CloseCode::ProtocolViolation), b"");
        ClientError::Session(e)
    }

    /// A control-stream error: the connection's close if it is lost,
    /// otherwise the stream's own failure.
    fn stream_failure(&self, what: String) -> ClientError {
        match self.conn.close_reason() {
            Some(e) => ClientError::from_connection(e),
            None => ClientError::ControlStream(what),
        }
    }

    /// The gateway finished the control stream: its close should follow.
    async fn control_finished(&self) -> ClientError {
        let closed = tokio::time::timeout(CLOSE_AFTER_FIN_WAIT, self.conn.closed()).await;
        match closed {
            Ok(e) => ClientError::from_connection(e),
            Err(_) => self.protocol_violation(SessionError::Protocol(
                "the gateway finished the control stream without closing".into(),
            )),
        }
    }
}

/// What the handshake leaves for the [`Client`].
struct Established {
    conn: quinn::Connection,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    session: Session,
    info: SessionInfo,
    pending: VecDeque<Event>,
}

/// The handshake of [`connect`] within its timeout, on `endpoint`.
async fn establish(
    endpoint: quinn::Endpoint,
    config: quinn::ClientConfig,
    opts: &ConnectOptions,
) -> Result<Client, ClientError> {
    let handshake = handshake(&endpoint, config, opts);
    match tokio::time::timeout(opts.handshake_timeout, handshake).await {
        Ok(Ok(parts)) => Ok(Client::new(endpoint, parts)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ClientError::Timeout(
            opts.handshake_timeout,
            "QUIC handshake and Welcome",
        )),
    }
}

async fn handshake(
    endpoint: &quinn::Endpoint,
    config: quinn::ClientConfig,
    opts: &ConnectOptions,
) -> Result<Established, ClientError> {
    let conn = endpoint
        .connect_with(config, opts.server, &opts.server_name)?
        .await
        .map_err(ClientError::from_connection)?;
    let lost = |conn: &quinn::Connection, what: String| match conn.close_reason() {
        Some(e) => ClientError::from_connection(e),
        None => ClientError::ControlStream(what),
    };
    let (mut send, mut recv) = conn.open_bi().await.map_err(ClientError::from_connection)?;
    let (mut session, hello) = Session::start(&opts.ticket)?;
    send.write_all(&hello)
        .await
        .map_err(|e| lost(&conn, e.to_string()))?;

    let mut buf = vec![0; CONTROL_READ_CHUNK_BYTES];
    let mut events = Vec::new();
    loop {
        let n = match recv.read(&mut buf).await {
            Ok(Some(n)) => n,
            Ok(None) => {
                // The gateway ends the stream only to close; wait for the code.
                let e = tokio::time::timeout(CLOSE_AFTER_FIN_WAIT, conn.closed()).await;
                return Err(match e {
                    Ok(e) => ClientError::from_connection(e),
                    Err(_) => ClientError::ControlStream("finished before Welcome".into()),
                });
            }
            Err(e) => return Err(lost(&conn, e.to_string())),
        };
        if let Err(e) = session.on_control_bytes(&buf[..n], &mut events) {
            conn.close(close_code(CloseCode::ProtocolViolation), b"");
            return Err(e.into());
        }
        let mut decoded = events.drain(..);
        match decoded.next() {
            None => continue,
            Some(Event::Welcome(info)) => {
                let pending = decoded.collect();
                return Ok(Established {
                    conn,
                    send,
                    recv,
                    session,
                    info,
                    pending,
                });
            }
            Some(Event::Rejected(closed)) => {
                conn.close(close_code(CloseCode::NoError), b"");
                return Err(ClientError::Rejected(closed));
            }
            Some(other) => {
                // The session only yields Welcome or Reject first.
                conn.close(close_code(CloseCode::ProtocolViolation), b"");
                return Err(SessionError::Protocol(format!(
                    "expected Welcome or Reject, got {other:?}"
                ))
                .into());
            }
        }
    }
}

fn quic_config(opts: &ConnectOptions) -> Result<quinn::ClientConfig, ClientError> {
    let mut tls = verify::tls_config(&opts.verify)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| {
        ClientError::Config {
            field: "verify",
            reason: e.to_string(),
        }
    })?;
    let idle =
        quinn::IdleTimeout::try_from(opts.idle_timeout).map_err(|_| ClientError::Config {
            field: "idle_timeout",
            reason: "too large for QUIC".into(),
        })?;
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_idle_timeout(Some(idle))
        .keep_alive_interval(Some(opts.keep_alive))
        .datagram_receive_buffer_size(Some(opts.datagram_receive_buffer_bytes))
        // The gateway opens one stream per lane below critical (§3).
        .max_concurrent_uni_streams(VarInt::from(LANE_STREAMS_MAX_U8));
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// The next chunk of a lane stream, or never if there is none (a
/// `select!` branch that stays idle). Cancel-safe, as quinn's `read_chunk`.
async fn read_lane(
    stream: &mut Option<quinn::RecvStream>,
) -> Result<Option<quinn::Chunk>, quinn::ReadError> {
    match stream {
        Some(stream) => stream.read_chunk(CONTROL_READ_CHUNK_BYTES, true).await,
        None => std::future::pending().await,
    }
}

fn close_code(code: CloseCode) -> VarInt {
    VarInt::from(code.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> ConnectOptions {
        ConnectOptions::new(
            (Ipv4Addr::LOCALHOST, 4433).into(),
            "localhost",
            "ticket",
            ServerVerify::InsecureNoVerify,
        )
    }

    #[test]
    fn defaults_pass_their_own_checks() {
        options().check().unwrap();
        quic_config(&options()).unwrap();
    }

    #[test]
    fn keep_alive_must_be_below_the_idle_timeout() {
        let mut opts = options();
        opts.keep_alive = opts.idle_timeout;
        assert!(matches!(
            opts.check(),
            Err(ClientError::Config {
                field: "keep_alive",
                ..
            })
        ));
    }

    #[test]
    fn the_datagram_buffer_cannot_be_below_the_protocol_minimum() {
        let mut opts = options();
        opts.datagram_receive_buffer_bytes = 1199;
        assert!(matches!(
            opts.check(),
            Err(ClientError::Config {
                field: "datagram_receive_buffer_bytes",
                ..
            })
        ));
    }
}
