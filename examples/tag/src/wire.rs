//! Tag's messages: types and byte layouts (README.md, "Messages", is the
//! same table for client writers). All integers are big-endian. The lane
//! of each type comes from the gateway's default lane table
//! (`0x1000-0x1fff` critical, `0x2000-0x2fff` high, `0x3000-0x3fff`
//! normal). Decoders take peer bytes: they return `None` for anything
//! malformed and never panic.

use lanegate_common::ids::PlayerId;

/// Client → shard, datagram, critical: the direction the player runs in.
pub const INPUT: u16 = 0x1001;
/// Shard → client, datagram, high: the player and those near them.
pub const POSITIONS: u16 = 0x2001;
/// Client → shard, stream, normal: a chat line for the zone.
pub const CHAT: u16 = 0x3001;
/// Shard → every client in the zone, stream, normal: a chat line and who
/// said it.
pub const CHAT_FROM: u16 = 0x3002;
/// Shard → every client in the zone, stream, normal: who is "it" now.
pub const TAGGED: u16 = 0x3003;

/// Longest chat text, in bytes of UTF-8.
pub const CHAT_TEXT_MAX: usize = 200;
/// Most other players in one positions message (the player comes first,
/// on top of these).
pub const NEIGHBOURS_MAX: usize = 64;
/// Bytes of a positions message's fixed part.
pub const POSITIONS_HEADER_BYTES: usize = 17;
/// Bytes of one positions entry.
pub const POSITION_ENTRY_BYTES: usize = 12;

/// `INPUT`: `seq: u32, dx: i8, dy: i8`, 6 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Input {
    /// The client's input counter; only an input newer than the last one
    /// applied counts (datagrams may arrive out of order).
    pub seq: u32,
    /// East (+127) to west (−127).
    pub dx: i8,
    /// North (+127) to south (−127).
    pub dy: i8,
}

impl Input {
    /// The payload bytes.
    pub fn encode(&self) -> [u8; 6] {
        let s = self.seq.to_be_bytes();
        [
            s[0],
            s[1],
            s[2],
            s[3],
            self.dx.to_be_bytes()[0],
            self.dy.to_be_bytes()[0],
        ]
    }

    /// Reads a payload; `None` unless it is exactly 6 bytes.
    pub fn decode(payload: &[u8]) -> Option<Self> {
        let &[a, b, c, d, dx, dy] = payload else {
            return None;
        };
        Some(Self {
            seq: u32::from_be_bytes([a, b, c, d]),
            dx: i8::from_be_bytes([dx]),
            dy: i8::from_be_bytes([dy]),
        })
    }
}

/// One entry of `POSITIONS`: `player: u64, x_cm: u16, y_cm: u16`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// Who.
    pub player: PlayerId,
    /// Centimetres east of the zone's west edge.
    pub x_cm: u16,
    /// Centimetres north of the zone's south edge.
    pub y_cm: u16,
}

/// `POSITIONS`: `tick: u32, ack_seq: u32, it: u64, count: u8`, then
/// `count` entries, the recipient first, the others nearest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Positions {
    /// The shard's tick.
    pub tick: u32,
    /// The last input applied for the recipient.
    pub ack_seq: u32,
    /// Who is "it" in the zone; 0 when nobody is.
    pub it: u64,
    /// The recipient, then the players in view.
    pub entries: Vec<Position>,
}

impl Positions {
    /// Appends the payload to `out` (which a game reuses every tick).
    pub fn encode_into(tick: u32, ack_seq: u32, it: u64, entries: &[Position], out: &mut Vec<u8>) {
        out.extend_from_slice(&tick.to_be_bytes());
        out.extend_from_slice(&ack_seq.to_be_bytes());
        out.extend_from_slice(&it.to_be_bytes());
        // At most 1 + NEIGHBOURS_MAX entries are ever passed.
        out.push(u8::try_from(entries.len()).unwrap_or(u8::MAX));
        for e in entries.iter().take(usize::from(u8::MAX)) {
            out.extend_from_slice(&e.player.0.to_be_bytes());
            out.extend_from_slice(&e.x_cm.to_be_bytes());
            out.extend_from_slice(&e.y_cm.to_be_bytes());
        }
    }

    /// Reads a payload; `None` if it is not exactly as long as its count
    /// says.
    pub fn decode(payload: &[u8]) -> Option<Self> {
        let header = payload.get(..POSITIONS_HEADER_BYTES)?;
        let count = usize::from(header[16]);
        let body = &payload[POSITIONS_HEADER_BYTES..];
        if body.len() != count * POSITION_ENTRY_BYTES {
            return None;
        }
        let entries = body
            .chunks_exact(POSITION_ENTRY_BYTES)
            .map(|e| Position {
                player: PlayerId(u64::from_be_bytes(e[..8].try_into().unwrap_or_default())),
                x_cm: u16::from_be_bytes([e[8], e[9]]),
                y_cm: u16::from_be_bytes([e[10], e[11]]),
            })
            .collect();
        Some(Self {
            tick: u32::from_be_bytes(header[..4].try_into().ok()?),
            ack_seq: u32::from_be_bytes(header[4..8].try_into().ok()?),
            it: u64::from_be_bytes(header[8..16].try_into().ok()?),
            entries,
        })
    }
}

/// `CHAT` text, if it is 1 to [`CHAT_TEXT_MAX`] bytes of UTF-8.
pub fn chat_text(payload: &[u8]) -> Option<&str> {
    if payload.is_empty() || payload.len() > CHAT_TEXT_MAX {
        return None;
    }
    std::str::from_utf8(payload).ok()
}

/// `CHAT_FROM`: `from: u64`, then the text.
pub fn chat_from(from: PlayerId, text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&from.0.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// Reads `CHAT_FROM`: who said what.
pub fn decode_chat_from(payload: &[u8]) -> Option<(PlayerId, &str)> {
    let (from, text) = payload.split_at_checked(8)?;
    let from = u64::from_be_bytes(from.try_into().ok()?);
    Some((PlayerId(from), std::str::from_utf8(text).ok()?))
}

/// `TAGGED`: `it: u64, by: u64`, 16 bytes; `by` is 0 when nobody tagged
/// (the zone's first player, or "it" left and the next was picked).
pub fn tagged(it: PlayerId, by: Option<PlayerId>) -> [u8; 16] {
    let mut out = [0; 16];
    out[..8].copy_from_slice(&it.0.to_be_bytes());
    out[8..].copy_from_slice(&by.map_or(0, |p| p.0).to_be_bytes());
    out
}

/// Reads `TAGGED`: the new "it", and who tagged them.
pub fn decode_tagged(payload: &[u8]) -> Option<(PlayerId, Option<PlayerId>)> {
    let bytes: [u8; 16] = payload.try_into().ok()?;
    let it = u64::from_be_bytes(bytes[..8].try_into().ok()?);
    let by = u64::from_be_bytes(bytes[8..].try_into().ok()?);
    Some((PlayerId(it), (by != 0).then_some(PlayerId(by))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_matches_the_readme() {
        let i = Input {
            seq: 7,
            dx: -127,
            dy: 64,
        };
        assert_eq!(i.encode(), [0, 0, 0, 7, 0x81, 0x40]);
        assert_eq!(Input::decode(&i.encode()), Some(i));
        assert_eq!(Input::decode(&[0; 5]), None);
    }

    #[test]
    fn positions_round_trip_and_match_the_readme() {
        let entries = [Position {
            player: PlayerId(3),
            x_cm: 250,
            y_cm: 1000,
        }];
        let mut out = Vec::new();
        Positions::encode_into(9, 7, 3, &entries, &mut out);
        assert_eq!(
            out,
            [
                0, 0, 0, 9, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 3, 1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 250,
                0x03, 0xe8
            ]
        );
        let p = Positions::decode(&out).unwrap();
        assert_eq!((p.tick, p.ack_seq, p.it), (9, 7, 3));
        assert_eq!(p.entries, entries);
        assert_eq!(Positions::decode(&out[..out.len() - 1]), None);
        assert_eq!(Positions::decode(&out[..3]), None);
    }

    #[test]
    fn chat_and_tagged_round_trip() {
        assert_eq!(chat_text(b"hi"), Some("hi"));
        assert_eq!(chat_text(b""), None);
        assert_eq!(chat_text(&[0xff]), None);
        assert_eq!(chat_text(&[b'a'; CHAT_TEXT_MAX + 1]), None);
        let mut out = Vec::new();
        chat_from(PlayerId(5), "gg", &mut out);
        assert_eq!(decode_chat_from(&out), Some((PlayerId(5), "gg")));
        assert_eq!(
            decode_tagged(&tagged(PlayerId(2), None)),
            Some((PlayerId(2), None))
        );
        assert_eq!(
            decode_tagged(&tagged(PlayerId(2), Some(PlayerId(1)))),
            Some((PlayerId(2), Some(PlayerId(1))))
        );
    }
}
