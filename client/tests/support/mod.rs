//! A small gateway stand-in on quinn for the client's tests, built from
//! `lanegate_common` alone: it checks the ticket with the development key
//! set, answers `Welcome` (default limits) or `Reject` plus the close code,
//! then echoes datagrams as datagrams and stream frames on the control
//! stream, as the demo games do with the diagnostic echo. Like the gateway it
//! rate-limits each lane of the default table with a GCRA (`burst` at once,
//! then `rate_per_s`), dropping and counting what does not conform.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use lanegate_client::limit::LaneGcra;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use lanegate_client::{ConnectOptions, ServerVerify};
use lanegate_common::frame::{FrameReader, put_frame};
use lanegate_common::ids::{PlayerId, SessionId, ZoneId};
use lanegate_common::ticket::{DEV_KEY_ID, KeySet, Ticket};
use lanegate_common::wire::{
    ALPN, CloseCode, Message, PROTOCOL_VERSION, Welcome, ZoneReset, reject,
};
use quinn::VarInt;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::sync::mpsc;

/// The session id the stand-in announces.
pub const SESSION: SessionId = SessionId(0x0100_0000_0000_0001);
/// Clock skew the stand-in tolerates, as the gateway's default.
const SKEW_S: u64 = 30;

pub use lanegate_common::wire::DEFAULT_LANE_LIMITS;

/// A running stand-in gateway on 127.0.0.1.
pub struct EchoServer {
    pub addr: SocketAddr,
    /// SHA-256 of the server's DER certificate.
    pub fingerprint: [u8; 32],
    endpoint: quinn::Endpoint,
    dropped: Arc<AtomicU64>,
    client_closes: tokio::sync::Mutex<mpsc::UnboundedReceiver<u64>>,
}

impl EchoServer {
    /// Starts a stand-in with a fresh self-signed certificate for `localhost`.
    pub fn start() -> Self {
        let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("rcgen makes a certificate for a valid name");
        let cert = key.cert.der().clone();
        let key = PrivatePkcs8KeyDer::from(key.signing_key.serialize_der());
        Self::start_with(vec![cert], key.into())
    }

    /// Starts a stand-in presenting `chain` (end-entity first).
    pub fn start_with(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Self {
        let fingerprint = lanegate_client::fingerprint(&chain[0]);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("ring supports TLS 1.3")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("the test certificate matches its key");
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
            .expect("ring offers a QUIC initial suite");
        let config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        let endpoint = quinn::Endpoint::server(config, (Ipv4Addr::LOCALHOST, 0).into())
            .expect("an ephemeral port on localhost is free");
        let addr = endpoint
            .local_addr()
            .expect("a bound socket has an address");
        let accepting = endpoint.clone();
        let dropped = Arc::new(AtomicU64::new(0));
        let counter = dropped.clone();
        let (closes_tx, closes_rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(incoming) = accepting.accept().await {
                let counter = counter.clone();
                let closes_tx = closes_tx.clone();
                tokio::spawn(async move {
                    if let Ok(conn) = incoming.await {
                        serve(&conn, &counter).await;
                        if let quinn::ConnectionError::ApplicationClosed(close) =
                            conn.closed().await
                        {
                            let _ = closes_tx.send(close.error_code.into_inner());
                        }
                    }
                });
            }
        });
        Self {
            addr,
            fingerprint,
            endpoint,
            dropped,
            client_closes: tokio::sync::Mutex::new(closes_rx),
        }
    }

    /// Options that pin this server's certificate.
    pub fn options(&self, ticket: &str) -> ConnectOptions {
        ConnectOptions::new(
            self.addr,
            "localhost",
            ticket,
            ServerVerify::Fingerprint(self.fingerprint),
        )
    }

    /// The application close code of the next connection the client closed.
    pub async fn next_client_close(&self) -> Option<u64> {
        self.client_closes.lock().await.recv().await
    }

    /// Messages dropped by the lane rate limits so far.
    pub fn rate_limited(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Closes every connection with `code`, as a gateway does.
    pub fn close_all(&self, code: CloseCode) {
        self.endpoint
            .close(VarInt::from(code.code()), code.name().as_bytes());
    }
}

/// A ticket for player 7 in zone 42, valid for five minutes from now.
pub fn dev_ticket() -> String {
    let now = now_s();
    KeySet::dev()
        .mint(&Ticket {
            key_id: DEV_KEY_ID,
            player: PlayerId(7),
            zone: ZoneId(42),
            issued_at_s: now,
            expires_at_s: now + 300,
        })
        .expect("the dev key signs")
}

/// The player whose `Hello` the stand-in answers by closing with
/// `SERVER_FULL`, without a `Reject`.
pub const FULL_PLAYER: PlayerId = PlayerId(0);

/// A valid ticket for [`FULL_PLAYER`].
pub fn full_ticket() -> String {
    let now = now_s();
    KeySet::dev()
        .mint(&Ticket {
            key_id: DEV_KEY_ID,
            player: FULL_PLAYER,
            zone: ZoneId(42),
            issued_at_s: now,
            expires_at_s: now + 300,
        })
        .expect("the dev key signs")
}

/// A ticket that expired ten minutes ago (beyond any clock skew).
pub fn expired_ticket() -> String {
    let now = now_s();
    KeySet::dev()
        .mint(&Ticket {
            key_id: DEV_KEY_ID,
            player: PlayerId(7),
            zone: ZoneId(42),
            issued_at_s: now - 900,
            expires_at_s: now - 600,
        })
        .expect("the dev key signs")
}

/// A game type the stand-in answers with a second `Welcome`, which breaks
/// the protocol.
pub const ASK_PROTOCOL_VIOLATION: u16 = 0x3002;

/// A game type the stand-in answers with a `ZoneReset` of the player's zone
/// (on the control stream) before echoing it.
pub const ASK_ZONE_RESET: u16 = 0x3001;

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

async fn serve(conn: &quinn::Connection, dropped: &AtomicU64) {
    let close = |code: CloseCode| conn.close(VarInt::from(code.code()), code.name().as_bytes());
    if conn.max_datagram_size().is_none() {
        return close(CloseCode::DatagramsRequired);
    }
    let Ok((mut send, mut recv)) = conn.accept_bi().await else {
        return;
    };
    let mut reader = FrameReader::new(16 * 1024);
    let mut buf = vec![0u8; 4096];
    let mut zone = None;
    let mut limits = DEFAULT_LANE_LIMITS.map(LaneGcra::new);
    let mut admit = |ty: u16| {
        let ok = limits[lane_index(ty)].admit(Instant::now());
        if !ok {
            dropped.fetch_add(1, Ordering::Relaxed);
        }
        ok
    };
    loop {
        tokio::select! {
            datagram = conn.read_datagram() => {
                let Ok(datagram) = datagram else { return };
                let ty = datagram.get(..2).map(|t| u16::from_be_bytes([t[0], t[1]]));
                if zone.is_some() && ty.is_some_and(&mut admit) {
                    // Echo unchanged; a full send buffer drops, as datagrams may.
                    let _ = conn.send_datagram(datagram);
                }
            }
            read = recv.read(&mut buf) => {
                let Ok(Some(n)) = read else { return };
                let mut messages = Vec::new();
                if reader.feed(&buf[..n], |m| messages.push(m.to_vec())).is_err() {
                    return close(CloseCode::ProtocolViolation);
                }
                for bytes in messages {
                    let mut out = Vec::new();
                    match (zone, Message::decode(&bytes)) {
                        (None, Ok(Message::Hello(hello))) => {
                            match KeySet::dev().verify(hello.ticket, now_s(), SKEW_S) {
                                Ok(ticket) if ticket.player == FULL_PLAYER => {
                                    // A close without Reject, as a gateway
                                    // with no room may do.
                                    return close(CloseCode::ServerFull);
                                }
                                Ok(ticket) => {
                                    zone = Some(ticket.zone);
                                    encode_frame(&welcome(&ticket), &mut out);
                                }
                                Err(e) => {
                                    let code = e.close_code();
                                    encode_frame(&Message::Reject(reject(code, code.name())), &mut out);
                                    let _ = send.write_all(&out).await;
                                    let _ = send.finish();
                                    // Close once the client has the Reject,
                                    // so the test sees both in a known order.
                                    let _ = send.stopped().await;
                                    return close(code);
                                }
                            }
                        }
                        (Some(_), Ok(Message::Game(game))) if !admit(game.ty) => continue,
                        (Some(zone), Ok(Message::Game(game))) => {
                            if game.ty == ASK_PROTOCOL_VIOLATION {
                                let ticket = Ticket {
                                    key_id: DEV_KEY_ID,
                                    player: PlayerId(7),
                                    zone,
                                    issued_at_s: 0,
                                    expires_at_s: 0,
                                };
                                encode_frame(&welcome(&ticket), &mut out);
                            }
                            if game.ty == ASK_ZONE_RESET {
                                encode_frame(&Message::ZoneReset(ZoneReset { zone }), &mut out);
                            }
                            put_frame(&bytes, &mut out);
                        }
                        _ => return close(CloseCode::ProtocolViolation),
                    }
                    if send.write_all(&out).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

fn welcome(ticket: &Ticket) -> Message<'static> {
    Message::Welcome(Welcome {
        version: PROTOCOL_VERSION,
        session: SESSION,
        player: ticket.player,
        zone: ticket.zone,
        tick_rate_hz: 30,
        datagram_message_bytes_max: 1100,
        stream_message_bytes_max: 16384,
        lane_limits: DEFAULT_LANE_LIMITS,
    })
}

fn encode_frame(message: &Message<'_>, out: &mut Vec<u8>) {
    let mut bytes = Vec::new();
    message
        .encode(&mut bytes)
        .expect("the stand-in encodes valid messages");
    put_frame(&bytes, out);
}

/// The lane of `ty` in the default lane table, as an index.
fn lane_index(ty: u16) -> usize {
    match ty {
        0x1000..=0x1fff => 0,
        0x2000..=0x2fff => 1,
        0x3000..=0x3fff => 2,
        _ => 3,
    }
}
