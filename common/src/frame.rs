//! Stream framing: `varint length` + `type + payload`, per `docs/protocol.md`.
//!
//! QUIC streams are byte streams; a message may arrive split across many
//! reads, and one read may hold many messages. [`FrameReader`] reassembles
//! them in a buffer whose size is fixed at construction (the largest frame
//! plus its length prefix), so a peer can never make it grow. Oversized or
//! impossible lengths are refused at once: the stream cannot be resynchronised
//! after that, so the caller closes the connection with
//! `PROTOCOL_VIOLATION`.

/// Largest value a QUIC varint can hold (2^62 - 1).
pub const VARINT_MAX: u64 = (1 << 62) - 1;

/// Bytes needed to encode `v` as a QUIC varint (RFC 9000 §16), minimal form.
pub const fn varint_len(v: u64) -> usize {
    if v < 1 << 6 {
        1
    } else if v < 1 << 14 {
        2
    } else if v < 1 << 30 {
        4
    } else {
        8
    }
}

/// Appends `v` as a minimal QUIC varint. Values above [`VARINT_MAX`] are a
/// caller bug and are clamped to it.
#[expect(
    clippy::cast_possible_truncation,
    reason = "each arm runs only for values `varint_len` proved fit its width"
)]
pub fn put_varint(v: u64, out: &mut Vec<u8>) {
    let v = v.min(VARINT_MAX);
    match varint_len(v) {
        1 => out.push(v as u8),
        2 => out.extend_from_slice(&(v as u16 | 0x4000).to_be_bytes()),
        4 => out.extend_from_slice(&(v as u32 | 0x8000_0000).to_be_bytes()),
        _ => out.extend_from_slice(&(v | 0xc000_0000_0000_0000).to_be_bytes()),
    }
}

/// Reads a QUIC varint from the front of `buf`: `Some((value, bytes used))`,
/// or `None` if `buf` does not yet hold all of it. Non-minimal encodings are
/// accepted, as RFC 9000 allows.
pub fn get_varint(buf: &[u8]) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    let len = 1usize << (first >> 6);
    let bytes = buf.get(..len)?;
    let mut v = u64::from(first & 0x3f);
    for b in &bytes[1..] {
        v = (v << 8) | u64::from(*b);
    }
    Some((v, len))
}

/// Appends one stream frame holding `message` (type + payload, already
/// encoded).
pub fn put_frame(message: &[u8], out: &mut Vec<u8>) {
    put_varint(message.len() as u64, out);
    out.extend_from_slice(message);
}

/// Why a stream's bytes cannot be framed. Always a protocol violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A length below 2: no room for the message type.
    #[error("frame length {0} is too short to hold a message type")]
    TooShort(u64),
    /// A length above the configured maximum.
    #[error("frame length {len} exceeds the maximum of {max} bytes")]
    TooLong {
        /// Declared length.
        len: u64,
        /// The reader's maximum.
        max: usize,
    },
    /// The stream ended in the middle of a frame.
    #[error("stream ended inside a frame ({0} bytes buffered)")]
    Unfinished(usize),
}

/// The longest QUIC variable-length integer, in bytes.
const VARINT_BYTES_MAX: usize = 8;

/// Reassembles messages from a stream's reads with a fixed-size buffer.
#[derive(Debug)]
pub struct FrameReader {
    /// Empty until the first bytes arrive, then `cap` bytes for good.
    buf: Vec<u8>,
    cap: usize,
    /// Bytes of `buf` holding data not yet framed.
    len: usize,
    message_bytes_max: usize,
    /// Frames completed since the reader was made.
    frames: u64,
}

impl FrameReader {
    /// A reader that accepts messages (type + payload) of at most
    /// `message_bytes_max` bytes. Allocates its whole buffer on the first
    /// bytes it is fed, and keeps it: a stream that never carries data (a
    /// connection that never sends `Hello`) costs no buffer.
    ///
    /// The buffer holds the largest message behind the longest varint (8
    /// bytes), not the shortest encoding of its length: QUIC varints may be
    /// sent non-minimally, and a frame whose prefix is longer than the
    /// minimum must still fit, or the buffer fills without ever holding a
    /// whole frame (found by the `frame_reader` fuzz target as a hang).
    pub fn new(message_bytes_max: usize) -> Self {
        let cap = message_bytes_max.max(2) + VARINT_BYTES_MAX;
        Self {
            buf: Vec::new(),
            cap,
            len: 0,
            message_bytes_max: message_bytes_max.max(2),
            frames: 0,
        }
    }

    /// Feeds bytes read from the stream; calls `on_message` with every
    /// complete message (type + payload) in order. On error the stream is
    /// unusable and the caller should close the connection.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        mut on_message: impl FnMut(&[u8]),
    ) -> Result<(), FrameError> {
        if self.buf.is_empty() && !data.is_empty() {
            self.buf = vec![0; self.cap];
        }
        loop {
            let room = self.buf.len() - self.len;
            let n = room.min(data.len());
            self.buf[self.len..self.len + n].copy_from_slice(&data[..n]);
            self.len += n;
            data = &data[n..];

            let mut start = 0;
            while let Some((body, used)) = self.next_frame(start)? {
                on_message(&self.buf[body..body + used]);
                self.frames += 1;
                start = body + used;
            }
            // Compact: move the unframed tail to the front.
            self.buf.copy_within(start..self.len, 0);
            self.len -= start;

            if data.is_empty() {
                return Ok(());
            }
            if n == 0 && start == 0 {
                // A full buffer that holds no whole frame: cannot happen
                // with the buffer sized as in `new`, but a reader must
                // never spin on peer input.
                return Err(FrameError::TooLong {
                    len: self.len as u64,
                    max: self.message_bytes_max,
                });
            }
        }
    }

    /// Call when the stream finishes: an error if a frame was cut short.
    pub fn finish(&self) -> Result<(), FrameError> {
        match self.len {
            0 => Ok(()),
            n => Err(FrameError::Unfinished(n)),
        }
    }

    /// Bytes buffered but not yet framed.
    pub fn buffered(&self) -> usize {
        self.len
    }

    /// Frames completed since the reader was made: with [`Self::buffered`],
    /// tells a frame that makes no progress from a stream of frames that
    /// each complete (`gateway.frame_stall_ms`).
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// `(body start, body length)` of the complete frame at `start`, if any.
    fn next_frame(&self, start: usize) -> Result<Option<(usize, usize)>, FrameError> {
        let Some((len, used)) = get_varint(&self.buf[start..self.len]) else {
            return Ok(None);
        };
        if len < 2 {
            return Err(FrameError::TooShort(len));
        }
        if len > self.message_bytes_max as u64 {
            return Err(FrameError::TooLong {
                len,
                max: self.message_bytes_max,
            });
        }
        let body = start + used;
        let len = usize::try_from(len).map_err(|_| FrameError::TooLong {
            len,
            max: self.message_bytes_max,
        })?;
        Ok((self.len - body >= len).then_some((body, len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn varint_vectors_from_rfc9000() {
        // RFC 9000 Appendix A.1 sample encodings.
        let cases: [(&[u8], u64); 4] = [
            (
                &[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c],
                151_288_809_941_952_652,
            ),
            (&[0x9d, 0x7f, 0x3e, 0x7d], 494_878_333),
            (&[0x7b, 0xbd], 15_293),
            (&[0x25], 37),
        ];
        for (bytes, v) in cases {
            assert_eq!(get_varint(bytes), Some((v, bytes.len())));
            let mut out = Vec::new();
            put_varint(v, &mut out);
            assert_eq!(out, bytes);
        }
        // Non-minimal 37 is still 37.
        assert_eq!(get_varint(&[0x40, 0x25]), Some((37, 2)));
        assert_eq!(get_varint(&[0x40]), None);
    }

    #[test]
    fn frames_count_completed_messages_and_buffered_the_rest() {
        let mut reader = FrameReader::new(16);
        assert_eq!((reader.frames(), reader.buffered()), (0, 0));
        // One whole frame and the first byte of the next.
        reader.feed(&[0x02, 0x1f, 0xff, 0x03], |_| {}).unwrap();
        assert_eq!((reader.frames(), reader.buffered()), (1, 1));
        reader.feed(&[0x1f], |_| {}).unwrap();
        assert_eq!((reader.frames(), reader.buffered()), (1, 2));
        reader.feed(&[0xff, 0x07], |_| {}).unwrap();
        assert_eq!((reader.frames(), reader.buffered()), (2, 0));
    }

    /// A largest message behind a non-minimal (8-byte) length prefix, fed
    /// in small pieces: it arrives whole (the first version's buffer had
    /// room only for the minimal prefix, filled up and spun forever).
    #[test]
    fn a_largest_message_behind_an_overlong_prefix_arrives() {
        let max = 300;
        let mut stream = vec![0xc0, 0, 0, 0, 0, 0, 0x01, 0x2c]; // 300, 8 bytes
        stream.extend((0..300).map(|i| (i % 251) as u8));
        stream.extend([0x02, 0xab, 0xcd]); // and a small one after it
        let mut reader = FrameReader::new(max);
        let mut got = Vec::new();
        for piece in stream.chunks(7) {
            reader.feed(piece, |m| got.push(m.to_vec())).unwrap();
        }
        reader.finish().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].len(), 300);
        assert_eq!(got[1], [0xab, 0xcd]);
    }

    #[test]
    fn frames_split_anywhere_reassemble() {
        let mut wire = Vec::new();
        put_frame(&[0x10, 0x00, 1, 2, 3], &mut wire);
        put_frame(&[0x30, 0x00], &mut wire);
        for split in 0..=wire.len() {
            let mut r = FrameReader::new(64);
            let mut got = Vec::new();
            r.feed(&wire[..split], |m| got.push(m.to_vec())).unwrap();
            r.feed(&wire[split..], |m| got.push(m.to_vec())).unwrap();
            assert_eq!(got, vec![vec![0x10, 0x00, 1, 2, 3], vec![0x30, 0x00]]);
            r.finish().unwrap();
        }
    }

    #[test]
    fn oversized_and_undersized_frames_are_refused() {
        let mut r = FrameReader::new(16);
        let mut wire = Vec::new();
        put_varint(17, &mut wire);
        assert_eq!(
            r.feed(&wire, |_| panic!("no frame")),
            Err(FrameError::TooLong { len: 17, max: 16 })
        );
        let mut r = FrameReader::new(16);
        assert_eq!(r.feed(&[1, 0x10], |_| {}), Err(FrameError::TooShort(1)));
        let mut r = FrameReader::new(16);
        r.feed(&[5, 0x10, 0], |_| {}).unwrap();
        assert_eq!(r.finish(), Err(FrameError::Unfinished(3)));
    }

    #[test]
    fn a_max_size_frame_fits_the_fixed_buffer() {
        let max = 300;
        let mut r = FrameReader::new(max);
        let body = vec![0x41u8; max];
        let mut wire = Vec::new();
        for _ in 0..3 {
            put_frame(&body, &mut wire);
        }
        let mut n = 0;
        r.feed(&wire, |m| {
            assert_eq!(m, &body[..]);
            n += 1;
        })
        .unwrap();
        assert_eq!(n, 3);
        assert_eq!(
            r.buf.len(),
            max + VARINT_BYTES_MAX,
            "the buffer never grows"
        );
    }

    proptest! {
        #[test]
        fn varint_round_trips(v in 0..=VARINT_MAX) {
            let mut out = Vec::new();
            put_varint(v, &mut out);
            prop_assert_eq!(out.len(), varint_len(v));
            prop_assert_eq!(get_varint(&out), Some((v, out.len())));
        }

        /// Any messages, cut into any chunks, come out whole and in order.
        #[test]
        fn reader_reassembles_any_chunking(
            msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 2..200), 0..20),
            cuts in proptest::collection::vec(1usize..64, 1..50),
        ) {
            let mut wire = Vec::new();
            for m in &msgs { put_frame(m, &mut wire); }
            let mut r = FrameReader::new(200);
            let mut got = Vec::new();
            let mut rest = &wire[..];
            let mut i = 0;
            while !rest.is_empty() {
                let n = cuts[i % cuts.len()].min(rest.len());
                r.feed(&rest[..n], |m| got.push(m.to_vec())).unwrap();
                rest = &rest[n..];
                i += 1;
            }
            prop_assert_eq!(got, msgs);
            prop_assert_eq!(r.buffered(), 0);
        }

        /// Arbitrary bytes never panic the reader, and it never exceeds its buffer.
        #[test]
        fn reader_survives_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let mut r = FrameReader::new(100);
            let _ = r.feed(&data, |m| assert!(m.len() >= 2 && m.len() <= 100));
            prop_assert!(r.buffered() <= r.buf.len());
            prop_assert_eq!(r.buf.len(), 100 + VARINT_BYTES_MAX, "the buffer never grows");
        }
    }
}
