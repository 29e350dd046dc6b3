//! The gateway's answer to the first message on the control stream: the
//! checks of `docs/protocol.md` §4 ("Checks, in order"), one after the
//! other, so that the first thing wrong with a `Hello` decides the answer
//! and the same bytes always get the same one.
//!
//! A refusal of a `Hello` the gateway could read far enough to answer
//! (another version, a bad or expired ticket, a zone not served, no shard
//! left to play on) carries a
//! reason: the session sends a `Reject` with it before the close. Bytes
//! that are not a `Hello` at all get the close alone (`PROTOCOL_VIOLATION`).

use lanegate_common::ticket::TicketError;
use lanegate_common::wire::{self, CloseCode, DecodeError, Message, PROTOCOL_VERSION, types};

use super::interface::{CloseCause, Established, SessionCtx};
use crate::engine::admit::BanKey;

/// Why a `Hello` was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Refusal {
    /// The close code (and `Reject.code`).
    pub code: CloseCode,
    /// Why, for counters.
    pub cause: CloseCause,
    /// The `Reject` reason, when a `Reject` precedes the close.
    pub reject: Option<&'static str>,
}

/// Checks one complete control-stream message received before `Welcome`;
/// on success, the session it establishes.
pub(super) fn check(message: &[u8], ctx: &SessionCtx<'_>) -> Result<Established, Refusal> {
    let violation = |cause| Refusal {
        code: CloseCode::ProtocolViolation,
        cause,
        reject: None,
    };
    // 1. A Hello: its type, then its version, before any other field.
    match wire::peek_type(message) {
        Ok(types::HELLO) => {}
        Ok(_) => return Err(violation(CloseCause::NotHello)),
        Err(_) => return Err(violation(CloseCause::Malformed)),
    }
    let version =
        wire::peek_hello_version(message).map_err(|_| violation(CloseCause::Malformed))?;
    // 2. The version, whatever follows it: a later version may lay its
    //    Hello out differently and still learn why it was refused.
    if version != PROTOCOL_VERSION {
        return Err(Refusal {
            code: CloseCode::UnsupportedVersion,
            cause: CloseCause::Version,
            reject: Some("unsupported version"),
        });
    }
    // 3. The layout; a ticket_len above the maximum is a bad ticket, not
    //    bad framing: every ticket problem gets one code.
    let hello = match Message::decode(message) {
        Ok(Message::Hello(hello)) => hello,
        Err(DecodeError::TooLong { .. }) => {
            return Err(Refusal {
                code: CloseCode::BadTicket,
                cause: CloseCause::Ticket(TicketError::Malformed("longer than 512 bytes")),
                reject: Some("bad ticket"),
            });
        }
        Ok(_) | Err(_) => return Err(violation(CloseCause::Malformed)),
    };
    // 4. The ticket, in the order of §6.4.
    let ticket = ctx
        .keys
        .verify(hello.ticket, ctx.unix_now_s, ctx.clock_skew_s)
        .map_err(|e| Refusal {
            code: e.close_code(),
            reject: Some(match e.close_code() {
                CloseCode::TicketExpired => "ticket expired",
                _ => "bad ticket",
            }),
            cause: CloseCause::Ticket(e),
        })?;
    // 5. The zone, only once the ticket is known to be genuine.
    if !ctx.zones.contains(ticket.zone) {
        return Err(Refusal {
            code: CloseCode::UnknownZone,
            cause: CloseCause::UnknownZone(ticket.zone),
            reject: Some("unknown zone"),
        });
    }
    // 6. The player, not banned after an ABUSE close (of another session).
    if ctx.bans.is_banned(BanKey::player(ticket.player), ctx.now) {
        return Err(Refusal {
            code: CloseCode::Abuse,
            cause: CloseCause::Banned,
            reject: Some("banned after abuse"),
        });
    }
    // 7. A shard to play on: none is left when every shard was failed over.
    if !ctx.shard_available {
        return Err(Refusal {
            code: CloseCode::ShardUnavailable,
            cause: CloseCause::ShardUnavailable,
            reject: Some("no shard available"),
        });
    }
    Ok(Established {
        session: ctx.session,
        player: ticket.player,
        zone: ticket.zone,
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use lanegate_common::config::ZoneSet;
    use lanegate_common::ids::{KeyId, PlayerId, SessionId, ZoneId};
    use lanegate_common::lanes::{Lane, LaneTable};
    use lanegate_common::ticket::{KeySet, Secret, Ticket};
    use lanegate_common::wire::{Hello, LaneLimit};

    use super::super::interface::WelcomeParams;
    use super::*;
    use crate::engine::admit::BanList;

    const NOW_S: u64 = 1_767_225_600;

    struct Fixture {
        lanes: LaneTable,
        keys: KeySet,
        zones: ZoneSet,
        welcome: WelcomeParams,
        bans: BanList,
        now: Instant,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                lanes: LaneTable::new(&LaneTable::default_rules(), Lane::Bulk).unwrap(),
                keys: KeySet::dev(),
                zones: ZoneSet::parse("1-10").unwrap(),
                welcome: WelcomeParams {
                    tick_rate_hz: 30,
                    datagram_message_bytes_max: 1100,
                    stream_message_bytes_max: 16384,
                    lane_limits: [LaneLimit::default(); 4],
                },
                bans: BanList::new(Duration::from_secs(60), 4),
                now: Instant::now(),
            }
        }

        fn check(&self, message: &[u8]) -> Result<Established, Refusal> {
            let ctx = SessionCtx {
                lanes: &self.lanes,
                keys: &self.keys,
                zones: &self.zones,
                unix_now_s: NOW_S,
                clock_skew_s: 30,
                welcome: &self.welcome,
                session: SessionId(3),
                shard_available: true,
                bans: &self.bans,
                now: self.now,
            };
            check(message, &ctx)
        }
    }

    fn ticket(keys: &KeySet, zone: u32, expires_at_s: u64) -> String {
        keys.mint(&Ticket {
            key_id: KeyId(0),
            player: PlayerId(5),
            zone: ZoneId(zone),
            issued_at_s: NOW_S - 3600,
            expires_at_s,
        })
        .unwrap()
    }

    fn hello(version: u16, ticket: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Message::Hello(Hello { version, ticket })
            .encode(&mut out)
            .unwrap();
        out
    }

    /// A Hello whose `ticket_len` field says `len`, followed by `body`.
    fn raw_hello(version: u16, len: u16, body: &[u8]) -> Vec<u8> {
        let mut out = vec![0x00, 0x01];
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn code(r: Result<Established, Refusal>) -> (CloseCode, bool) {
        let r = r.unwrap_err();
        (r.code, r.reject.is_some())
    }

    #[test]
    fn a_good_hello_establishes_in_its_zone() {
        let fx = Fixture::new();
        let est = fx
            .check(&hello(1, ticket(&fx.keys, 4, NOW_S + 60).as_bytes()))
            .unwrap();
        assert_eq!((est.player, est.zone), (PlayerId(5), ZoneId(4)));
    }

    #[test]
    fn version_is_checked_before_layout_and_ticket() {
        let fx = Fixture::new();
        let expired = ticket(&fx.keys, 4, NOW_S - 100);
        let refused = (CloseCode::UnsupportedVersion, true);
        assert_eq!(code(fx.check(&hello(2, expired.as_bytes()))), refused);
        assert_eq!(code(fx.check(&raw_hello(2, 600, b"x"))), refused);
        assert_eq!(code(fx.check(&[0x00, 0x01, 0x00, 0x07])), refused);
        assert_eq!(
            code(fx.check(&[0x00, 0x01, 0x00])),
            (CloseCode::ProtocolViolation, false)
        );
    }

    #[test]
    fn layout_errors_violate_without_a_reject() {
        let fx = Fixture::new();
        let t = ticket(&fx.keys, 4, NOW_S + 60);
        let violation = (CloseCode::ProtocolViolation, false);
        // ticket_len says more bytes than follow, or fewer.
        assert_eq!(code(fx.check(&raw_hello(1, 88, t.as_bytes()))), violation);
        assert_eq!(code(fx.check(&raw_hello(1, 86, t.as_bytes()))), violation);
        // Another message first.
        assert_eq!(code(fx.check(&[0x1f, 0xff, 1])), violation);
        assert_eq!(code(fx.check(&[0x00, 0x03, 0, 0, 0, 0])), violation);
    }

    #[test]
    fn every_ticket_problem_is_a_bad_ticket_with_a_reject() {
        let fx = Fixture::new();
        let bad = (CloseCode::BadTicket, true);
        // Over 512 bytes: refused before the rest is read.
        assert_eq!(code(fx.check(&raw_hello(1, 513, &[b'A'; 513]))), bad);
        assert_eq!(code(fx.check(&raw_hello(1, 600, b""))), bad);
        // 512 bytes or fewer, but not a ticket.
        assert_eq!(code(fx.check(&hello(1, &[b'A'; 512]))), bad);
        assert_eq!(code(fx.check(&hello(1, b""))), bad);
        let other = KeySet::new(vec![(KeyId(0), Secret::new(&[7; 32]).unwrap())]).unwrap();
        let forged = ticket(&other, 4, NOW_S + 60);
        assert_eq!(code(fx.check(&hello(1, forged.as_bytes()))), bad);
        let expired = ticket(&fx.keys, 4, NOW_S - 100);
        assert_eq!(
            code(fx.check(&hello(1, expired.as_bytes()))),
            (CloseCode::TicketExpired, true)
        );
    }

    #[test]
    fn a_banned_player_gets_abuse_with_a_reject_after_the_zone_check() {
        let mut fx = Fixture::new();
        fx.bans.ban(BanKey::player(PlayerId(5)), fx.now);
        let good = ticket(&fx.keys, 4, NOW_S + 60);
        assert_eq!(
            code(fx.check(&hello(1, good.as_bytes()))),
            (CloseCode::Abuse, true)
        );
        // The ticket and the zone are checked first.
        let outside = ticket(&fx.keys, 40, NOW_S + 60);
        assert_eq!(
            code(fx.check(&hello(1, outside.as_bytes()))),
            (CloseCode::UnknownZone, true)
        );
        // The ban ends after its time.
        fx.now += Duration::from_secs(60);
        assert!(fx.check(&hello(1, good.as_bytes())).is_ok());
    }

    #[test]
    fn surrounding_whitespace_is_ignored() {
        let fx = Fixture::new();
        let t = format!("{}\n", ticket(&fx.keys, 4, NOW_S + 60));
        assert!(fx.check(&hello(1, t.as_bytes())).is_ok());
    }

    #[test]
    fn zone_is_checked_last() {
        let fx = Fixture::new();
        let unknown = ticket(&fx.keys, 11, NOW_S + 60);
        let refusal = fx.check(&hello(1, unknown.as_bytes())).unwrap_err();
        assert_eq!(refusal.code, CloseCode::UnknownZone);
        assert_eq!(refusal.cause, CloseCause::UnknownZone(ZoneId(11)));
        assert_eq!(refusal.reject, Some("unknown zone"));
        // An expired ticket for an unknown zone is refused for its expiry.
        let both = ticket(&fx.keys, 11, NOW_S - 100);
        assert_eq!(
            code(fx.check(&hello(1, both.as_bytes()))),
            (CloseCode::TicketExpired, true)
        );
    }
}
