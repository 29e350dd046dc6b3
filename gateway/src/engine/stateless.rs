//! Stateless replies: what the endpoint sends without a connection, told
//! apart by their first bytes so each kind is counted.
//!
//! quinn-proto hands every such packet back as one `Transmit` without
//! saying which it is; the packet itself says (RFC 9000 §17): a long
//! header with version 0 is version negotiation, a long header of type 3
//! is Retry, another long header is a refusal (an Initial carrying
//! `CONNECTION_CLOSE`), and a short header can only be a stateless reset.
//! An attacker elicits these from spoofed addresses, so the counts are
//! the first sign of reflection or a flood of unknown connection ids.

/// One kind of stateless reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatelessReply {
    /// Version negotiation, for an Initial of a version we do not speak.
    VersionNegotiation,
    /// A stateless reset, for a short-header packet of an unknown connection.
    Reset,
    /// A Retry, asking the client to prove its address.
    Retry,
    /// A refusal: an Initial with `CONNECTION_CLOSE` (draining, no slot).
    Refusal,
}

impl StatelessReply {
    /// The kind of the reply packet `bytes`; `None` for an empty one.
    pub fn of(bytes: &[u8]) -> Option<Self> {
        let first = *bytes.first()?;
        if first & 0x80 == 0 {
            return Some(Self::Reset);
        }
        let version = bytes.get(1..5).map(|v| [v[0], v[1], v[2], v[3]]);
        Some(match version.map(u32::from_be_bytes) {
            Some(0) => Self::VersionNegotiation,
            _ if (first >> 4) & 0x3 == 0x3 => Self::Retry,
            _ => Self::Refusal,
        })
    }
}

/// Stateless replies queued for sending, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatelessCounts {
    /// Version negotiation packets.
    pub version_negotiation: u64,
    /// Stateless resets.
    pub reset: u64,
    /// Retry packets.
    pub retry: u64,
    /// Refusals (`CONNECTION_CLOSE` in an Initial).
    pub refusal: u64,
}

impl StatelessCounts {
    /// Counts one reply of `kind`.
    pub fn count(&mut self, kind: StatelessReply) {
        let n = match kind {
            StatelessReply::VersionNegotiation => &mut self.version_negotiation,
            StatelessReply::Reset => &mut self.reset,
            StatelessReply::Retry => &mut self.retry,
            StatelessReply::Refusal => &mut self.refusal,
        };
        *n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_told_apart_by_their_header() {
        // Version negotiation: long header, version 0.
        assert_eq!(
            StatelessReply::of(&[0xc5, 0, 0, 0, 0, 8]),
            Some(StatelessReply::VersionNegotiation)
        );
        // Retry (v1): long header, type 3.
        assert_eq!(
            StatelessReply::of(&[0xf0, 0, 0, 0, 1, 8]),
            Some(StatelessReply::Retry)
        );
        // Initial (type 0) and Handshake (type 2): a refusal's close.
        assert_eq!(
            StatelessReply::of(&[0xc3, 0, 0, 0, 1, 8]),
            Some(StatelessReply::Refusal)
        );
        assert_eq!(
            StatelessReply::of(&[0xe3, 0, 0, 0, 1]),
            Some(StatelessReply::Refusal)
        );
        // Short header: a stateless reset.
        assert_eq!(
            StatelessReply::of(&[0x41, 1, 2]),
            Some(StatelessReply::Reset)
        );
        assert_eq!(StatelessReply::of(&[]), None);
        // A truncated long header is still a long header, never a panic.
        assert_eq!(StatelessReply::of(&[0xc0]), Some(StatelessReply::Refusal));
    }

    #[test]
    fn counts_go_to_their_kind() {
        let mut c = StatelessCounts::default();
        c.count(StatelessReply::Reset);
        c.count(StatelessReply::Reset);
        c.count(StatelessReply::Retry);
        assert_eq!(
            c,
            StatelessCounts {
                reset: 2,
                retry: 1,
                ..StatelessCounts::default()
            }
        );
    }
}
