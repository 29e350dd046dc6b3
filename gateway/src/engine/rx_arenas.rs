//! Where received packets live while QUIC holds them: a fixed set of
//! receive arenas per core, and an exact-size copy when every arena is
//! still held.
//!
//! The engine hands quinn each packet as a slice of a 64 KiB arena (one
//! copy, no allocation per packet). quinn may keep a packet's slices long
//! after it was read: stream data behind a gap stays until the gap fills,
//! and quinn counts what it keeps by the packets' own lengths, not by the
//! arenas behind them. With an arena allocated whenever the current one was
//! still held, a peer sending tiny stream frames past a gap, each in a
//! packet with other traffic between, could make each kept packet pin a
//! different 64 KiB arena: about 350 MB for one connection before quinn's
//! own bound (`docs/memory.md`). Here the arenas are made at start and
//! never added to; when none can be reclaimed, the packet is copied into an
//! allocation of its own size, so a kept packet pins its own bytes and no
//! more, and quinn's count is the truth again. Normal traffic is read at
//! once and gives its arena back within the loop turn, so the copies happen
//! only while packets are held (loss, reordering, or an attack), and are
//! counted (`lanegate_rx_arena_copies_total`).

use bytes::BytesMut;

/// Bytes in each arena.
pub(super) const RX_ARENA_BYTES: usize = 64 * 1024;
/// Arenas per core: about 350 full-size packets held at once before
/// packets are copied one by one.
pub(super) const RX_ARENAS: usize = 8;

/// The receive arenas of one engine.
#[derive(Debug)]
pub(super) struct RxArenas {
    current: BytesMut,
    spares: [BytesMut; RX_ARENAS - 1],
    copies: u64,
}

impl RxArenas {
    /// [`RX_ARENAS`] arenas of [`RX_ARENA_BYTES`], allocated now.
    pub(super) fn new() -> Self {
        Self {
            current: shared_arena(RX_ARENA_BYTES),
            spares: std::array::from_fn(|_| shared_arena(RX_ARENA_BYTES)),
            copies: 0,
        }
    }

    /// `data` as a buffer quinn may keep: a slice of an arena, or a copy of
    /// its own when every arena is still held.
    pub(super) fn packet(&mut self, data: &[u8]) -> BytesMut {
        let len = data.len();
        if self.current.capacity() < len && !self.current.try_reclaim(len) {
            match self.spares.iter_mut().position(|a| a.try_reclaim(len)) {
                Some(i) => std::mem::swap(&mut self.current, &mut self.spares[i]),
                None => {
                    self.copies += 1;
                    return BytesMut::from(data);
                }
            }
        }
        self.current.extend_from_slice(data);
        self.current.split()
    }

    /// Packets copied because every arena was held.
    pub(super) fn copies(&self) -> u64 {
        self.copies
    }
}

/// An arena whose header is already shared, so splitting and reclaiming it
/// later never allocates.
pub(super) fn shared_arena(bytes: usize) -> BytesMut {
    let mut arena = BytesMut::with_capacity(bytes + 1);
    arena.extend_from_slice(&[0]);
    drop(arena.split_to(1));
    arena
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_share_arenas_until_all_are_held_then_each_pins_only_itself() {
        let mut arenas = RxArenas::new();
        let packet = [7u8; 1200];
        // Hold every packet, as quinn holds stream data behind a gap: the
        // arenas fill one after the other, then packets are copied.
        let per_arena = RX_ARENA_BYTES / packet.len();
        let mut held = Vec::new();
        for _ in 0..per_arena * RX_ARENAS {
            held.push(arenas.packet(&packet).freeze());
        }
        assert_eq!(arenas.copies(), 0, "the arenas took the first ones");
        for _ in 0..100 {
            let copy = arenas.packet(&packet);
            assert_eq!(copy.capacity(), packet.len(), "a copy of its own size");
            held.push(copy.freeze());
        }
        assert_eq!(arenas.copies(), 100);
        assert!(held.iter().all(|p| p[..] == packet[..]));
        // Let everything go: the arenas come back, and copying stops.
        held.clear();
        let again = arenas.packet(&packet);
        assert_eq!(arenas.copies(), 100);
        assert!(again.capacity() >= packet.len());
    }

    #[test]
    fn one_held_packet_keeps_only_its_arena_from_reuse() {
        let mut arenas = RxArenas::new();
        let packet = [1u8; 1500];
        let kept = arenas.packet(&packet).freeze();
        // Everything else is read at once and dropped; the other arenas
        // carry the traffic, and nothing is copied.
        for _ in 0..10_000 {
            drop(arenas.packet(&packet));
        }
        assert_eq!(arenas.copies(), 0);
        assert_eq!(kept[..], packet[..]);
    }
}
