//! What a held connection does once its handshake completes (`held.rs`
//! holds it): the slow clients of issue 13 §5, beside the half-open one.
//!
//! - [`Behaviour::Silent`]: nothing (half-open: no control stream, no
//!   `Hello`).
//! - [`Behaviour::Trickle`]: a session (`Hello`, `Welcome`), then on the
//!   control stream the length of a largest frame and its bytes one per
//!   [`TRICKLE_PERIOD`]: a frame the gateway must buffer and that never
//!   completes. The gateway's answer is `ABUSE` once the frame has stalled
//!   for `gateway.frame_stall_ms`.
//! - [`Behaviour::NeverRead`]: a session that plays (reliable echo requests
//!   in every lane, at half each lane's limit from `Welcome`, and `critical`
//!   datagrams) and never reads a byte: its receive windows are small
//!   ([`never_read_transport`]) and never opened, so what the gateway sends
//!   it waits in the gateway's send buffers. The gateway must keep that
//!   within its per-lane shares of the send window and serve everyone
//!   else; it may keep such a session open, as a player behind a stalled
//!   link looks the same.
//!
//! Every session's ticket is minted with the development key
//! (`KeySet::dev()`) for player [`AttackConfig::first_player`] and up, so
//! these two attacks need a gateway on the development ticket key (the
//! embedded defaults); elsewhere each is refused and counted as closed
//! with the gateway's code.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lanegate_client::{Event, Session};
use lanegate_common::frame::put_varint;
use lanegate_common::lanes::Lane;
use lanegate_common::wire::{Transport, types};

use super::{AttackConfig, AttackError};
use crate::TicketSource;

/// What a held connection does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Nothing: half-open.
    Silent,
    /// A session whose control stream trickles a frame that never ends.
    Trickle,
    /// A session that sends and never reads.
    NeverRead,
}

/// Time between the trickled bytes: the "one byte a second" of the
/// issue's report.
pub const TRICKLE_PERIOD: Duration = Duration::from_secs(1);
/// A slow reader's receive window per stream: one frame of a few hundred
/// bytes fits, so each stream of the gateway's blocks at once.
const NEVER_READ_STREAM_WINDOW_BYTES: u32 = 4096;
/// A slow reader's receive window over all streams.
const NEVER_READ_WINDOW_BYTES: u32 = 16 * 1024;
/// Payload of each echo request a slow reader sends: the gateway's reply
/// is as large, so the gateway's side fills fast.
const NEVER_READ_PAYLOAD_BYTES: usize = 512;
/// The fraction of each lane's limit a slow reader sends at: below the
/// limit, so that no message of its is dropped as over-limit (which would
/// count toward `ABUSE`) and it is a slow reader, nothing else.
const NEVER_READ_LIMIT_SHARE: f64 = 0.5;
/// Read chunk while waiting for `Welcome`.
const WELCOME_READ_BYTES: usize = 4096;

/// What a held connection's session did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Played {
    /// The gateway sent `Welcome`.
    pub session: bool,
    /// Game messages (stream frames and datagrams) sent.
    pub messages_sent: u64,
}

/// Connection `index`'s ticket (empty for a half-open one, which never
/// sends it).
pub fn ticket(cfg: &AttackConfig, index: usize) -> String {
    if cfg.attack.behaviour() == Behaviour::Silent {
        return String::new();
    }
    let source = TicketSource::DevKey {
        first_player: cfg.first_player,
        zone: cfg.zone,
        lifetime: cfg.duration + cfg.hold_max + Duration::from_secs(60),
    };
    // A dev-key mint fails only on an oversized ticket, which these are not;
    // an empty ticket is refused by the gateway and counted as such.
    crate::bot::ticket(&source, index).unwrap_or_default()
}

/// A slow reader's QUIC transport: small receive windows, nothing else
/// changed from the attacks' own (`tls.rs`).
pub fn never_read_transport(
    idle: Duration,
    keep_alive: Duration,
) -> Result<Arc<quinn_proto::TransportConfig>, AttackError> {
    let mut transport = quinn_proto::TransportConfig::default();
    let idle = quinn_proto::IdleTimeout::try_from(idle)
        .map_err(|_| AttackError::Quic("idle timeout too large for QUIC".into()))?;
    transport
        .max_idle_timeout(Some(idle))
        .keep_alive_interval(Some(keep_alive))
        .stream_receive_window(NEVER_READ_STREAM_WINDOW_BYTES.into())
        .receive_window(NEVER_READ_WINDOW_BYTES.into());
    Ok(Arc::new(transport))
}

/// Does what `behaviour` says on `conn` until the gateway ends it (a write
/// or a read fails then) or the caller's timeout stops it; `played` says
/// how far it got either way.
pub async fn behave(
    conn: &quinn::Connection,
    behaviour: Behaviour,
    ticket: &str,
    played: &mut Played,
) {
    if behaviour == Behaviour::Silent {
        return;
    }
    let Some((mut send, recv, session, info)) = start_session(conn, ticket).await else {
        return;
    };
    played.session = true;
    match behaviour {
        Behaviour::Silent => {}
        Behaviour::Trickle => {
            let mut header = Vec::new();
            put_varint(u64::from(info.stream_message_bytes_max), &mut header);
            if send.write_all(&header).await.is_err() {
                return;
            }
            loop {
                tokio::time::sleep(TRICKLE_PERIOD).await;
                if send.write_all(&[0x40]).await.is_err() {
                    return;
                }
            }
        }
        Behaviour::NeverRead => {
            // Held, never read: dropping it would tell the gateway to stop
            // sending (STOP_SENDING), which is not what a slow reader does.
            let _unread = recv;
            never_read(conn, &mut send, &session, &info, played).await;
        }
    }
}

/// `Hello`, then reads until `Welcome`; `None` if the gateway refused or
/// closed (the close is reported by the holder).
async fn start_session(
    conn: &quinn::Connection,
    ticket: &str,
) -> Option<(
    quinn::SendStream,
    quinn::RecvStream,
    Session,
    lanegate_client::SessionInfo,
)> {
    let (mut send, mut recv) = conn.open_bi().await.ok()?;
    let (mut session, hello) = Session::start(ticket).ok()?;
    send.write_all(&hello).await.ok()?;
    let mut buf = vec![0; WELCOME_READ_BYTES];
    let mut events = Vec::new();
    loop {
        let n = recv.read(&mut buf).await.ok()??;
        session.on_control_bytes(buf.get(..n)?, &mut events).ok()?;
        for event in events.drain(..) {
            match event {
                Event::Welcome(info) => return Some((send, recv, session, info)),
                Event::Rejected(_) => return None,
                _ => {}
            }
        }
    }
}

/// Echo requests in every lane at [`NEVER_READ_LIMIT_SHARE`] of its limit
/// (reliable on the control stream; `critical` also as datagrams), until
/// a send fails.
async fn never_read(
    conn: &quinn::Connection,
    send: &mut quinn::SendStream,
    session: &Session,
    info: &lanegate_client::SessionInfo,
    played: &mut Played,
) {
    let payload = vec![0x5a; NEVER_READ_PAYLOAD_BYTES];
    let start = Instant::now();
    let period = |lane: Lane| {
        let rate = f64::from(info.lane_limits[lane.index()].rate_per_s) * NEVER_READ_LIMIT_SHARE;
        Duration::from_secs_f64(1.0 / rate.max(0.1))
    };
    // Per lane: next send time. Critical sends alternate stream frames and
    // datagrams, each at half the critical share.
    let mut next = Lane::ALL.map(|lane| (lane, start + period(lane)));
    let mut out = Vec::with_capacity(NEVER_READ_PAYLOAD_BYTES + 16);
    let mut datagram = false;
    loop {
        let Some(&(lane, at)) = next.iter().min_by_key(|(_, at)| *at) else {
            return;
        };
        tokio::time::sleep_until(at.into()).await;
        let ty = types::ECHO[lane.index()];
        out.clear();
        let transport = if lane == Lane::Critical && datagram {
            Transport::Datagram
        } else {
            Transport::Stream
        };
        let len = match transport {
            Transport::Datagram => usize::from(info.datagram_message_bytes_max).saturating_sub(2),
            Transport::Stream => NEVER_READ_PAYLOAD_BYTES,
        };
        let body = payload
            .get(..len.min(NEVER_READ_PAYLOAD_BYTES))
            .unwrap_or(&payload);
        if session.encode(ty, body, transport, &mut out).is_err() {
            return;
        }
        let sent = match transport {
            Transport::Datagram => conn.send_datagram(out.clone().into()).is_ok(),
            Transport::Stream => send.write_all(&out).await.is_ok(),
        };
        if !sent {
            return;
        }
        played.messages_sent += 1;
        if lane == Lane::Critical {
            datagram = !datagram;
        }
        if let Some(slot) = next.iter_mut().find(|(l, _)| *l == lane) {
            slot.1 = at + period(lane);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lanegate_common::ids::ZoneId;

    #[test]
    fn only_session_attacks_carry_a_ticket_and_each_is_for_its_own_player() {
        let server = "127.0.0.1:4433".parse().unwrap();
        let half_open = AttackConfig::new(super::super::Attack::HalfOpen, server);
        assert_eq!(ticket(&half_open, 0), "");
        let mut slow = AttackConfig::new(super::super::Attack::SlowReaders, server);
        slow.zone = ZoneId(3);
        let (a, b) = (ticket(&slow, 0), ticket(&slow, 1));
        assert!(!a.is_empty() && a != b);
        let keys = lanegate_common::ticket::KeySet::dev();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let t = keys
            .verify(b.as_bytes(), now, 0)
            .expect("a valid dev ticket");
        assert_eq!(t.player.0, slow.first_player + 1);
        assert_eq!(t.zone, ZoneId(3));
    }

    #[test]
    fn the_slow_reader_transport_builds() {
        never_read_transport(Duration::from_secs(60), Duration::from_secs(1)).unwrap();
    }
}
