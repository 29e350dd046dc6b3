//! Session tickets: what a game's login or matchmaking backend mints so a
//! player may connect, and what the gateway verifies before it creates any
//! session state.
//!
//! A ticket is 65 bytes: a 33-byte body (format, key id, player, zone,
//! issued-at, expiry, all big-endian) and an HMAC-SHA256 of the body under
//! the secret of that key id. Its text form is base64url without padding
//! (87 characters). `docs/protocol.md` specifies the layout and carries a
//! worked example that `tests/protocol_vectors.rs` checks.
//!
//! Several keys can be live at once ([`KeySet`]), so a backend can start
//! minting with a new key while tickets signed by the old one are still in
//! flight.

use std::fmt;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::ids::{KeyId, PlayerId, ZoneId};
use crate::wire::CloseCode;

/// The ticket format byte this crate mints and accepts.
pub const TICKET_FORMAT: u8 = 1;
/// Length of the signed body.
pub const BODY_BYTES: usize = 33;
/// Length of the HMAC-SHA256 tag.
pub const MAC_BYTES: usize = 32;
/// Length of a whole binary ticket.
pub const TICKET_BYTES: usize = BODY_BYTES + MAC_BYTES;
/// Shortest secret a key may have: HMAC-SHA256's block-size guidance says a
/// key shorter than the 32-byte output weakens it.
pub const SECRET_BYTES_MIN: usize = 32;
/// Default bound on `expires_at - issued_at`: one day, long enough for a
/// matchmaking queue and a session, short enough that a leaked ticket dies.
pub const LIFETIME_S_MAX_DEFAULT: u64 = 86_400;

/// Key id of the built-in development key.
pub const DEV_KEY_ID: KeyId = KeyId(0);
/// The built-in development secret. Public by design: anyone can mint tickets
/// for a gateway that uses it, so `lanegate serve` warns loudly when it does.
pub const DEV_SECRET: &[u8] = b"lanegate-dev-ticket-secret-NOT-FOR-PRODUCTION";

/// base64url; minted without padding, accepted with or without it (many
/// languages' encoders pad by default).
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The claims a ticket carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    /// The key that signs (or signed) the ticket.
    pub key_id: KeyId,
    /// The player this ticket admits.
    pub player: PlayerId,
    /// The zone (or match) the player is admitted to.
    pub zone: ZoneId,
    /// Unix time, seconds, when the backend minted it.
    pub issued_at_s: u64,
    /// Unix time, seconds, after which it is refused (plus clock skew).
    pub expires_at_s: u64,
}

impl Ticket {
    /// The canonical body bytes that the MAC covers.
    pub fn body(&self) -> [u8; BODY_BYTES] {
        let mut b = [0u8; BODY_BYTES];
        b[0] = TICKET_FORMAT;
        b[1..5].copy_from_slice(&self.key_id.0.to_be_bytes());
        b[5..13].copy_from_slice(&self.player.0.to_be_bytes());
        b[13..17].copy_from_slice(&self.zone.0.to_be_bytes());
        b[17..25].copy_from_slice(&self.issued_at_s.to_be_bytes());
        b[25..33].copy_from_slice(&self.expires_at_s.to_be_bytes());
        b
    }

    fn from_body(b: &[u8; BODY_BYTES]) -> Self {
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_be_bytes(a)
        };
        Ticket {
            key_id: KeyId(u32_at(1)),
            player: PlayerId(u64_at(5)),
            zone: ZoneId(u32_at(13)),
            issued_at_s: u64_at(17),
            expires_at_s: u64_at(25),
        }
    }
}

/// A ticket signing secret. Its bytes never appear in `Debug` output.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A secret from raw bytes, at least [`SECRET_BYTES_MIN`] long.
    pub fn new(bytes: &[u8]) -> Result<Self, TicketError> {
        if bytes.len() < SECRET_BYTES_MIN {
            return Err(TicketError::SecretTooShort(bytes.len()));
        }
        Ok(Self(bytes.to_vec()))
    }

    /// A secret from a key file's contents: the whole file, with leading and
    /// trailing ASCII whitespace (such as the newline editors add) removed.
    pub fn from_file_bytes(bytes: &[u8]) -> Result<Self, TicketError> {
        Self::new(bytes.trim_ascii())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// Why a ticket was refused, or a key set could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TicketError {
    /// Not base64url, or not 65 bytes once decoded.
    #[error("ticket is malformed: {0}")]
    Malformed(&'static str),
    /// A format byte this version does not know.
    #[error("ticket format {0} is not supported (expected {TICKET_FORMAT})")]
    UnsupportedFormat(u8),
    /// Signed by a key id the verifier does not hold.
    #[error("ticket is signed by unknown key id {0}")]
    UnknownKey(KeyId),
    /// The MAC does not match: forged, altered, or signed with another secret.
    #[error("ticket signature does not verify")]
    BadSignature,
    /// Issued further in the future than the clock-skew tolerance allows.
    #[error("ticket is issued at {issued_at_s}, in the future (now {now_s}, skew {skew_s} s)")]
    NotYetValid {
        /// The ticket's issued-at.
        issued_at_s: u64,
        /// The verifier's clock.
        now_s: u64,
        /// The tolerance applied.
        skew_s: u64,
    },
    /// Expired (beyond the clock-skew tolerance).
    #[error("ticket expired at {expires_at_s} (now {now_s}, skew {skew_s} s)")]
    Expired {
        /// The ticket's expiry.
        expires_at_s: u64,
        /// The verifier's clock.
        now_s: u64,
        /// The tolerance applied.
        skew_s: u64,
    },
    /// Expiry not after issue, or a lifetime longer than the verifier allows.
    #[error(
        "ticket lifetime is invalid: issued {issued_at_s}, expires {expires_at_s}, at most {lifetime_s_max} s allowed"
    )]
    BadLifetime {
        /// The ticket's issued-at.
        issued_at_s: u64,
        /// The ticket's expiry.
        expires_at_s: u64,
        /// The verifier's bound.
        lifetime_s_max: u64,
    },
    /// A secret shorter than [`SECRET_BYTES_MIN`].
    #[error(
        "secret is {0} bytes; at least {SECRET_BYTES_MIN} are required (generate one with `head -c 32 /dev/urandom | base64`)"
    )]
    SecretTooShort(usize),
    /// The same key id twice in one key set.
    #[error("key id {0} appears twice; each key needs its own id")]
    DuplicateKey(KeyId),
}

impl TicketError {
    /// The close code a gateway sends for this refusal.
    pub fn close_code(&self) -> CloseCode {
        match self {
            TicketError::Expired { .. } => CloseCode::TicketExpired,
            _ => CloseCode::BadTicket,
        }
    }
}

/// The live signing keys, by id.
#[derive(Clone, Debug)]
pub struct KeySet {
    /// Few keys (rotation keeps two or three), so a linear scan beats a map.
    keys: Vec<(KeyId, Secret)>,
    lifetime_s_max: u64,
}

impl KeySet {
    /// A key set holding `keys`; ids must be distinct.
    pub fn new(keys: Vec<(KeyId, Secret)>) -> Result<Self, TicketError> {
        for (i, (id, _)) in keys.iter().enumerate() {
            if keys[..i].iter().any(|(other, _)| other == id) {
                return Err(TicketError::DuplicateKey(*id));
            }
        }
        Ok(Self {
            keys,
            lifetime_s_max: LIFETIME_S_MAX_DEFAULT,
        })
    }

    /// The built-in development key set: [`DEV_KEY_ID`] with [`DEV_SECRET`].
    pub fn dev() -> Self {
        Self {
            keys: vec![(DEV_KEY_ID, Secret(DEV_SECRET.to_vec()))],
            lifetime_s_max: LIFETIME_S_MAX_DEFAULT,
        }
    }

    /// Sets the longest lifetime (`expires_at - issued_at`) `verify` accepts.
    pub fn with_lifetime_s_max(mut self, lifetime_s_max: u64) -> Self {
        self.lifetime_s_max = lifetime_s_max;
        self
    }

    /// The key ids held, in the order given.
    pub fn key_ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.keys.iter().map(|(id, _)| *id)
    }

    fn secret(&self, id: KeyId) -> Option<&Secret> {
        self.keys.iter().find(|(k, _)| *k == id).map(|(_, s)| s)
    }

    fn mac(secret: &Secret, body: &[u8; BODY_BYTES]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&secret.0).expect("HMAC accepts keys of any length");
        mac.update(body);
        mac
    }

    /// Signs `ticket` with the key it names and returns the text form.
    pub fn mint(&self, ticket: &Ticket) -> Result<String, TicketError> {
        Ok(B64.encode(self.mint_bytes(ticket)?))
    }

    /// Signs `ticket` and returns the 65 binary bytes.
    pub fn mint_bytes(&self, ticket: &Ticket) -> Result<[u8; TICKET_BYTES], TicketError> {
        let secret = self
            .secret(ticket.key_id)
            .ok_or(TicketError::UnknownKey(ticket.key_id))?;
        let body = ticket.body();
        let tag = Self::mac(secret, &body).finalize().into_bytes();
        let mut out = [0u8; TICKET_BYTES];
        out[..BODY_BYTES].copy_from_slice(&body);
        out[BODY_BYTES..].copy_from_slice(&tag);
        Ok(out)
    }

    /// Verifies a ticket's text form at `now_s` (Unix seconds), tolerating
    /// `skew_s` seconds of clock difference with the backend that minted it.
    /// The signature is checked before any claim is trusted, and in constant
    /// time.
    ///
    /// Leading and trailing ASCII whitespace (space, tab, LF, FF, CR) is
    /// ignored: a ticket copied from `lanegate ticket` or read from a file
    /// often ends in a newline. Inside the text, decoding is strict
    /// (`docs/protocol.md` §6.3): the URL-safe alphabet only, padding absent
    /// or exactly one `=`, and the unused low bits of the last character
    /// zero.
    pub fn verify(&self, text: &[u8], now_s: u64, skew_s: u64) -> Result<Ticket, TicketError> {
        let text = text.trim_ascii();
        // 87 characters unpadded, 88 padded; refuse anything longer before
        // decoding so a hostile Hello cannot make us work.
        if text.len() > 88 {
            return Err(TicketError::Malformed("longer than 88 characters"));
        }
        let mut raw = [0u8; 66];
        let n = B64
            .decode_slice(text, &mut raw)
            .map_err(|_| TicketError::Malformed("not base64url"))?;
        if n != TICKET_BYTES {
            return Err(TicketError::Malformed("not 65 bytes once decoded"));
        }
        let mut body = [0u8; BODY_BYTES];
        body.copy_from_slice(&raw[..BODY_BYTES]);
        if body[0] != TICKET_FORMAT {
            return Err(TicketError::UnsupportedFormat(body[0]));
        }
        let claims = Ticket::from_body(&body);
        let secret = self
            .secret(claims.key_id)
            .ok_or(TicketError::UnknownKey(claims.key_id))?;
        Self::mac(secret, &body)
            .verify_slice(&raw[BODY_BYTES..TICKET_BYTES])
            .map_err(|_| TicketError::BadSignature)?;

        if claims.expires_at_s <= claims.issued_at_s
            || claims.expires_at_s - claims.issued_at_s > self.lifetime_s_max
        {
            return Err(TicketError::BadLifetime {
                issued_at_s: claims.issued_at_s,
                expires_at_s: claims.expires_at_s,
                lifetime_s_max: self.lifetime_s_max,
            });
        }
        if claims.issued_at_s > now_s.saturating_add(skew_s) {
            return Err(TicketError::NotYetValid {
                issued_at_s: claims.issued_at_s,
                now_s,
                skew_s,
            });
        }
        if now_s > claims.expires_at_s.saturating_add(skew_s) {
            return Err(TicketError::Expired {
                expires_at_s: claims.expires_at_s,
                now_s,
                skew_s,
            });
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: u64 = 1_767_225_600;

    fn claims(key: u32) -> Ticket {
        Ticket {
            key_id: KeyId(key),
            player: PlayerId(7),
            zone: ZoneId(9),
            issued_at_s: NOW,
            expires_at_s: NOW + 3600,
        }
    }

    fn keys() -> KeySet {
        KeySet::new(vec![
            (KeyId(1), Secret::new(&[1; 32]).unwrap()),
            (KeyId(2), Secret::new(&[2; 40]).unwrap()),
        ])
        .unwrap()
    }

    #[test]
    fn minted_tickets_verify_under_every_live_key() {
        let ks = keys();
        for id in [1, 2] {
            let text = ks.mint(&claims(id)).unwrap();
            assert_eq!(text.len(), 87);
            assert_eq!(ks.verify(text.as_bytes(), NOW, 30), Ok(claims(id)));
        }
    }

    #[test]
    fn padded_text_is_accepted() {
        let ks = keys();
        let text = ks.mint(&claims(1)).unwrap() + "=";
        assert_eq!(ks.verify(text.as_bytes(), NOW, 30), Ok(claims(1)));
    }

    #[test]
    fn surrounding_ascii_whitespace_is_ignored_and_nothing_else() {
        let ks = keys();
        let text = ks.mint(&claims(1)).unwrap();
        for padded in [
            format!("{text}\n"),
            format!("{text}\r\n"),
            format!(" \t{text}=\x0c "),
        ] {
            assert_eq!(ks.verify(padded.as_bytes(), NOW, 30), Ok(claims(1)));
        }
        let (head, tail) = text.split_at(40);
        for bad in [
            format!("{head} {tail}"),
            format!("{text}\x0b"),
            format!("{text}=="),
            format!("{text}\u{a0}"),
        ] {
            assert!(
                matches!(
                    ks.verify(bad.as_bytes(), NOW, 30),
                    Err(TicketError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn non_canonical_last_character_is_refused() {
        let ks = keys();
        let text = ks.mint(&claims(1)).unwrap();
        // 65 bytes are 520 bits; 87 characters carry 522: the last
        // character's two low bits are unused and must be zero.
        let last = text.as_bytes()[86];
        let pos = base64::alphabet::URL_SAFE
            .as_str()
            .bytes()
            .position(|c| c == last)
            .unwrap();
        assert_eq!(pos & 0b11, 0, "a minted ticket is canonical");
        let other = base64::alphabet::URL_SAFE.as_str().as_bytes()[pos | 1];
        let mut bad = text.into_bytes();
        bad[86] = other;
        assert_eq!(
            ks.verify(&bad, NOW, 30),
            Err(TicketError::Malformed("not base64url"))
        );
    }

    #[test]
    fn rotation_retires_old_keys() {
        let old = keys().mint(&claims(1)).unwrap();
        let rotated = KeySet::new(vec![(KeyId(2), Secret::new(&[2; 40]).unwrap())]).unwrap();
        assert_eq!(
            rotated.verify(old.as_bytes(), NOW, 30),
            Err(TicketError::UnknownKey(KeyId(1)))
        );
    }

    #[test]
    fn forged_and_altered_tickets_are_refused() {
        let ks = keys();
        // Signed with a different secret under the same id.
        let forger = KeySet::new(vec![(KeyId(1), Secret::new(&[9; 32]).unwrap())]).unwrap();
        let forged = forger.mint(&claims(1)).unwrap();
        assert_eq!(
            ks.verify(forged.as_bytes(), NOW, 30),
            Err(TicketError::BadSignature)
        );
        // Any single flipped bit in the binary form fails.
        let raw = ks.mint_bytes(&claims(1)).unwrap();
        for byte in 0..TICKET_BYTES {
            let mut bad = raw;
            bad[byte] ^= 0x10;
            let text = B64.encode(bad);
            let res = ks.verify(text.as_bytes(), NOW, 30);
            assert!(res.is_err(), "flip in byte {byte} verified");
            assert_eq!(res.unwrap_err().close_code(), CloseCode::BadTicket);
        }
    }

    #[test]
    fn time_bounds_honour_skew() {
        let ks = keys();
        let text = ks.mint(&claims(1)).unwrap();
        let t = text.as_bytes();
        assert!(ks.verify(t, NOW - 30, 30).is_ok());
        assert!(matches!(
            ks.verify(t, NOW - 31, 30),
            Err(TicketError::NotYetValid { .. })
        ));
        assert!(ks.verify(t, NOW + 3600 + 30, 30).is_ok());
        let expired = ks.verify(t, NOW + 3600 + 31, 30).unwrap_err();
        assert!(matches!(expired, TicketError::Expired { .. }));
        assert_eq!(expired.close_code(), CloseCode::TicketExpired);
    }

    #[test]
    fn lifetime_is_bounded() {
        let ks = keys().with_lifetime_s_max(600);
        let text = ks.mint(&claims(1)).unwrap();
        assert!(matches!(
            ks.verify(text.as_bytes(), NOW, 30),
            Err(TicketError::BadLifetime { .. })
        ));
        let mut backwards = claims(1);
        backwards.expires_at_s = backwards.issued_at_s;
        let text = keys().mint(&backwards).unwrap();
        assert!(matches!(
            keys().verify(text.as_bytes(), NOW, 30),
            Err(TicketError::BadLifetime { .. })
        ));
    }

    #[test]
    fn key_set_construction_rules() {
        assert_eq!(
            Secret::new(&[0; 31]).unwrap_err(),
            TicketError::SecretTooShort(31)
        );
        assert_eq!(
            Secret::from_file_bytes(b"  0123456789abcdef0123456789abcdef\n")
                .unwrap()
                .0
                .len(),
            32
        );
        let dup = KeySet::new(vec![
            (KeyId(1), Secret::new(&[1; 32]).unwrap()),
            (KeyId(1), Secret::new(&[2; 32]).unwrap()),
        ]);
        assert_eq!(dup.unwrap_err(), TicketError::DuplicateKey(KeyId(1)));
        assert!(!format!("{:?}", Secret::new(&[0x41; 32]).unwrap()).contains("AAAA"));
    }

    #[test]
    fn dev_key_set_round_trips() {
        let ks = KeySet::dev();
        let t = Ticket {
            key_id: DEV_KEY_ID,
            ..claims(0)
        };
        let text = ks.mint(&t).unwrap();
        assert_eq!(ks.verify(text.as_bytes(), NOW, 0), Ok(t));
    }

    proptest! {
        /// Hostile text never panics the verifier.
        #[test]
        fn verify_never_panics(text in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = keys().verify(&text, NOW, 30);
        }

        /// Base64url of random 65 bytes reaches the MAC check and fails there
        /// (or earlier), never passes.
        #[test]
        fn random_binary_tickets_fail(raw in proptest::collection::vec(any::<u8>(), TICKET_BYTES)) {
            let text = B64.encode(&raw);
            prop_assert!(keys().verify(text.as_bytes(), NOW, 30).is_err());
        }
    }
}
