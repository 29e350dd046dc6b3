//! Frame stalls: how long each of a connection's streams has been inside
//! one frame (`gateway.frame_stall_ms`).
//!
//! A peer may announce a frame of `stream_message_bytes_max` and send it a
//! byte at a time, or leave a gap in the stream right after the length, so
//! the frame never completes: QUIC's flow control keeps such a peer within
//! its windows, but it holds a frame buffer per stream for as long as it
//! likes. So the engine times each stream's frame in progress: when the
//! session reports a stream inside a frame with the same count of completed
//! frames as the last time, the frame has made no complete progress since
//! the clock started; past the limit the connection is closed with `ABUSE`
//! (`docs/protocol.md` §8). A stream whose frames keep completing restarts
//! the clock with each, however full its buffer.
//!
//! One fixed array per connection slot; nothing allocates.

use std::time::{Duration, Instant};

use super::session::FRAME_READERS;

/// Per stream reader of one connection: since when it has been inside the
/// same frame, and how many frames it had completed then.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameStall {
    since: [Option<(u64, Instant)>; FRAME_READERS],
}

impl FrameStall {
    /// Takes the session's [`frames_in_progress`] after a read at `now`.
    ///
    /// [`frames_in_progress`]: super::session::Session::frames_in_progress
    pub fn observe(&mut self, now: Instant, in_progress: [Option<u64>; FRAME_READERS]) {
        for (since, frames) in self.since.iter_mut().zip(in_progress) {
            *since = match (frames, *since) {
                (None, _) => None,
                (Some(f), Some((f0, t))) if f == f0 => Some((f0, t)),
                (Some(f), _) => Some((f, now)),
            };
        }
    }

    /// When the oldest frame in progress has stalled for `limit`.
    pub fn deadline(&self, limit: Duration) -> Option<Instant> {
        self.since.iter().flatten().map(|&(_, t)| t + limit).min()
    }

    /// Whether some frame has been in progress for `limit` at `now`.
    pub fn expired(&self, now: Instant, limit: Duration) -> bool {
        self.deadline(limit).is_some_and(|d| now >= d)
    }

    /// Forgets every stream (the slot's connection ended).
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(5);

    fn progress(control: Option<u64>, uni0: Option<u64>) -> [Option<u64>; FRAME_READERS] {
        let mut p = [None; FRAME_READERS];
        p[0] = control;
        p[1] = uni0;
        p
    }

    #[test]
    fn a_frame_that_makes_no_progress_expires() {
        let t0 = Instant::now();
        let mut s = FrameStall::default();
        assert_eq!(s.deadline(LIMIT), None);
        s.observe(t0, progress(None, Some(3)));
        // Trickled bytes: still inside frame 4.
        s.observe(t0 + Duration::from_secs(2), progress(None, Some(3)));
        assert_eq!(s.deadline(LIMIT), Some(t0 + LIMIT));
        assert!(!s.expired(t0 + LIMIT - Duration::from_millis(1), LIMIT));
        assert!(s.expired(t0 + LIMIT, LIMIT));
    }

    #[test]
    fn completed_frames_restart_the_clock_and_idle_streams_have_none() {
        let t0 = Instant::now();
        let t = |s| t0 + Duration::from_secs(s);
        let mut s = FrameStall::default();
        s.observe(t0, progress(Some(0), Some(1)));
        // The control stream completed a frame and is inside the next: its
        // clock restarts; the uni stream's does not.
        s.observe(t(4), progress(Some(1), Some(1)));
        assert_eq!(s.deadline(LIMIT), Some(t0 + LIMIT));
        // The uni stream completes and is idle between frames.
        s.observe(t(4), progress(Some(1), None));
        assert_eq!(s.deadline(LIMIT), Some(t(4) + LIMIT));
        s.observe(t(5), progress(None, None));
        assert_eq!(s.deadline(LIMIT), None);
        s.observe(t(6), progress(Some(1), None));
        s.clear();
        assert_eq!(s, FrameStall::default());
    }
}
