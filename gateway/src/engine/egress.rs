//! How a connection's outbound lanes share what QUIC can send: the stream
//! each lane's reliable messages take, the share of the connection's send
//! buffers each lane may fill, and the order a loop turn's datagrams enter
//! QUIC. `docs/protocol.md` §3 is the contract.
//!
//! QUIC sends what it holds in its own order, as fast as the congestion
//! window lets: in each packet datagrams first (first in, first out), then
//! stream data by stream priority, highest first. What the gateway controls
//! is what it hands QUIC, and when:
//!
//! - **Streams.** Reliable `critical` messages take the control stream with
//!   the gateway's control messages (priority 3); `high`, `normal` and
//!   `bulk` each take a unidirectional stream of their own (priorities 2, 1,
//!   0), opened on the lane's first reliable message, so a backlog or a lost
//!   packet in one lane never holds up another. A client that allows the
//!   gateway no stream gets the lane on the control stream instead, for the
//!   rest of the session (its order kept).
//! - **Shares.** A lane may fill QUIC's datagram send buffer, and the stream
//!   data QUIC holds until acknowledged, only up to its share
//!   (`gateway.send_fill_max_percent`); the room above is kept for the lanes
//!   above it, as in the shard rings. Past its share a datagram is dropped
//!   (stale game state: the next tick's supersedes it), and a stream message
//!   waits in the lane's backlog (one largest frame), past which it is
//!   dropped. A `critical` datagram that finds the buffer full pushes out the
//!   oldest queued datagram instead. Every drop is counted per lane.
//! - **Order within a turn.** Datagrams of `critical` go to QUIC as they come
//!   from the shards; those of the lower lanes are staged and handed to QUIC
//!   at the end of [`Engine::poll_shards`](super::Engine::poll_shards),
//!   `high`, then `normal`, then `bulk`, each within its share.
//!
//! The stream share is applied by lowering QUIC's connection send window for
//! the length of one write (`Connection::set_send_window`, a field store):
//! QUIC then takes a lower lane's bytes only while everything it holds is
//! below the lane's share, which is the rings' rule, with no copy of QUIC's
//! accounting here.

use bytes::Bytes;
use lanegate_common::lanes::Lane;
use quinn_proto::{Connection, StreamId};

/// Lanes with a stream of their own: all but `critical`.
pub(super) const LANE_STREAMS: usize = Lane::COUNT - 1;

/// Priority of the control stream, which carries `critical`; lane `l`'s
/// stream has `CONTROL_PRIORITY - l.index()`.
pub(super) const CONTROL_PRIORITY: i32 = 3;

/// What each lane may fill of a connection's send buffers, from
/// `gateway.send_fill_max_percent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendShares {
    /// QUIC's datagram send buffer (`gateway.datagram_send_buffer_bytes`).
    datagram_buffer: usize,
    /// Bytes of it each lane may fill.
    datagram: [usize; Lane::COUNT],
    /// QUIC's stream send window (`GatewayConfig::stream_send_window_bytes`).
    window: u64,
    /// Bytes of it each lane may fill.
    stream: [u64; Lane::COUNT],
}

impl SendShares {
    /// Shares of `percent` (critical first) of a datagram buffer and a
    /// stream send window.
    pub fn new(percent: [u8; Lane::COUNT], datagram_buffer: usize, window: u64) -> Self {
        Self {
            datagram_buffer,
            datagram: percent.map(|p| datagram_buffer * usize::from(p.min(100)) / 100),
            window,
            stream: percent.map(|p| window * u64::from(p.min(100)) / 100),
        }
    }

    /// Whether a `len`-byte datagram of `lane` fits its share, with
    /// `buffer_space` bytes of QUIC's buffer free.
    pub(super) fn datagram_fits(&self, lane: Lane, buffer_space: usize, len: usize) -> bool {
        let queued = self.datagram_buffer.saturating_sub(buffer_space);
        queued + len <= self.datagram[lane.index()]
    }

    /// Hands as much of `backlog` to stream `id` as QUIC takes within
    /// `lane`'s share of the send window, and removes it from `backlog`.
    /// Returns the bytes QUIC took.
    pub(super) fn write(
        &self,
        conn: &mut Connection,
        id: StreamId,
        lane: Lane,
        backlog: &mut Vec<u8>,
    ) -> usize {
        if backlog.is_empty() {
            return 0;
        }
        let share = self.stream[lane.index()];
        let lowered = share < self.window;
        if lowered {
            conn.set_send_window(share);
        }
        let n = conn.send_stream(id).write(backlog).unwrap_or(0);
        if lowered {
            conn.set_send_window(self.window);
        }
        backlog.drain(..n);
        n
    }
}

/// Where a lane's reliable messages go on one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LaneRoute {
    /// The control stream (`critical`, or a lane the client allowed no
    /// stream for).
    Control,
    /// The lane's own stream, opened.
    Stream(StreamId),
}

/// One connection's lane streams (`high`, `normal`, `bulk`), and the bytes
/// QUIC has not taken yet for each.
#[derive(Debug, Default)]
pub(super) struct LaneStreams {
    routes: [Option<LaneRoute>; LANE_STREAMS],
    /// At most one largest frame each (`EngineParams::lane_backlog_bytes_max`).
    backlog: [Vec<u8>; LANE_STREAMS],
}

impl LaneStreams {
    /// Forgets the previous connection's streams (the backlogs keep their
    /// capacity for the next).
    pub(super) fn clear(&mut self) {
        self.routes = [None; LANE_STREAMS];
        for backlog in &mut self.backlog {
            backlog.clear();
        }
    }

    /// Where `lane` (not `critical`) goes, opening its stream on first use.
    pub(super) fn route(&mut self, conn: &mut Connection, lane: Lane) -> LaneRoute {
        let i = stream_index(lane);
        if let Some(route) = self.routes[i] {
            return route;
        }
        let route = match conn.streams().open(quinn_proto::Dir::Uni) {
            Some(id) => {
                let priority = CONTROL_PRIORITY - i32::from(lane as u8);
                // Just opened: it cannot be closed yet.
                let _ = conn.send_stream(id).set_priority(priority);
                LaneRoute::Stream(id)
            }
            None => LaneRoute::Control,
        };
        self.routes[i] = Some(route);
        route
    }

    /// Appends `frame` to `lane`'s backlog if the backlog stays within
    /// `max` bytes; `false` if it would not (the message is dropped).
    pub(super) fn queue(
        &mut self,
        lane: Lane,
        max: usize,
        frame: impl FnOnce(&mut Vec<u8>),
    ) -> bool {
        let backlog = &mut self.backlog[stream_index(lane)];
        let before = backlog.len();
        frame(backlog);
        if backlog.len() > max {
            backlog.truncate(before);
            return false;
        }
        true
    }

    /// Hands each lane's backlog to its stream within its share. Returns
    /// whether QUIC took anything.
    pub(super) fn flush(&mut self, conn: &mut Connection, shares: &SendShares) -> bool {
        let mut took = false;
        for (i, lane) in [Lane::High, Lane::Normal, Lane::Bulk]
            .into_iter()
            .enumerate()
        {
            let Some(LaneRoute::Stream(id)) = self.routes[i] else {
                continue;
            };
            took |= shares.write(conn, id, lane, &mut self.backlog[i]) > 0;
        }
        took
    }
}

fn stream_index(lane: Lane) -> usize {
    // `critical` never has a stream of its own; it maps onto `high`'s slot
    // only if a caller breaks that rule, which the debug assertion catches.
    debug_assert!(lane != Lane::Critical, "critical takes the control stream");
    lane.index().saturating_sub(1)
}

/// Datagrams of `high`, `normal` and `bulk` from one turn's shard messages,
/// waiting for the `critical` ones to go first. Preallocated: a full turn's
/// broadcast to every slot fits each lane; past that a datagram goes to QUIC
/// at once, in arrival order.
#[derive(Debug)]
pub(super) struct StagedDatagrams {
    lanes: [Vec<(usize, Bytes)>; LANE_STREAMS],
}

impl StagedDatagrams {
    /// Room for `per_lane` datagrams in each lane.
    pub(super) fn with_capacity(per_lane: usize) -> Self {
        Self {
            lanes: std::array::from_fn(|_| Vec::with_capacity(per_lane)),
        }
    }

    /// Stages `bytes` for slot `idx`; gives it back when the lane is full.
    pub(super) fn stage(&mut self, idx: usize, lane: Lane, bytes: Bytes) -> Result<(), Bytes> {
        let staged = &mut self.lanes[stream_index(lane)];
        if staged.len() == staged.capacity() {
            return Err(bytes);
        }
        staged.push((idx, bytes));
        Ok(())
    }

    /// Whether nothing is staged.
    pub(super) fn is_empty(&self) -> bool {
        self.lanes.iter().all(Vec::is_empty)
    }

    /// Calls `send` for each staged datagram, `high` first, in the order
    /// each lane staged them, and empties the stage.
    pub(super) fn drain(&mut self, mut send: impl FnMut(usize, Lane, Bytes)) {
        for (i, lane) in [Lane::High, Lane::Normal, Lane::Bulk]
            .into_iter()
            .enumerate()
        {
            for (idx, bytes) in self.lanes[i].drain(..) {
                send(idx, lane, bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_keep_the_room_above_a_lane_for_the_lanes_above() {
        let shares = SendShares::new([100, 90, 75, 50], 8800, 65_536);
        // Empty buffer: every lane fits a largest datagram.
        for lane in Lane::ALL {
            assert!(shares.datagram_fits(lane, 8800, 1100), "{lane}");
        }
        // 4400 bytes queued: bulk's share is used up, the others still fit.
        assert!(!shares.datagram_fits(Lane::Bulk, 4400, 1));
        assert!(shares.datagram_fits(Lane::Normal, 4400, 1100));
        assert!(shares.datagram_fits(Lane::High, 4400, 1100));
        assert!(shares.datagram_fits(Lane::Critical, 4400, 1100));
        // Full but for 100 bytes: only critical fits a small one.
        assert!(!shares.datagram_fits(Lane::High, 100, 50));
        assert!(shares.datagram_fits(Lane::Critical, 100, 50));
        assert_eq!(shares.stream, [65_536, 58_982, 49_152, 32_768]);
    }

    #[test]
    fn staged_datagrams_leave_high_first_and_in_order_within_a_lane() {
        let mut staged = StagedDatagrams::with_capacity(2);
        let b = |n: u8| Bytes::from(vec![n]);
        staged.stage(1, Lane::Bulk, b(1)).unwrap();
        staged.stage(2, Lane::Normal, b(2)).unwrap();
        staged.stage(3, Lane::High, b(3)).unwrap();
        staged.stage(4, Lane::Bulk, b(4)).unwrap();
        // A full lane gives the datagram back, to be sent at once.
        assert_eq!(staged.stage(5, Lane::Bulk, b(5)), Err(b(5)));
        let mut order = Vec::new();
        staged.drain(|idx, lane, _| order.push((idx, lane)));
        assert_eq!(
            order,
            [
                (3, Lane::High),
                (2, Lane::Normal),
                (1, Lane::Bulk),
                (4, Lane::Bulk)
            ]
        );
        assert!(staged.is_empty());
    }

    #[test]
    fn a_lane_backlog_refuses_what_would_pass_its_bound() {
        let mut lanes = LaneStreams::default();
        assert!(lanes.queue(Lane::Bulk, 10, |b| b.extend_from_slice(&[0; 6])));
        assert!(!lanes.queue(Lane::Bulk, 10, |b| b.extend_from_slice(&[1; 6])));
        // The refused frame left nothing behind; another lane is separate.
        assert_eq!(lanes.backlog[stream_index(Lane::Bulk)], [0; 6]);
        assert!(lanes.queue(Lane::High, 10, |b| b.extend_from_slice(&[2; 10])));
    }
}
