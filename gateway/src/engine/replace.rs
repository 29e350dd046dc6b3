//! One session per player (`docs/protocol.md` §4): when a player who has a
//! session is welcomed on a new one, the older is closed with
//! `SESSION_REPLACED`.
//!
//! Three paths find the older session, and together they cover every pair
//! of cores and shards:
//!
//! - **On this core**, the engine looks when it welcomes a session
//!   ([`Engine::replace_older`]): one scan of the connection table per
//!   `Hello` accepted (not per packet), like the slot count in
//!   `connection.rs`. It finds the older session whichever shard serves it.
//! - **On another core**, this core cannot see it; the shard can. A `Join`
//!   for a player the shard already has on another session makes it send
//!   [`ToGateway::SessionReplaced`](lanegate_common::link::ToGateway) to
//!   the older session's core, which closes it here
//!   ([`Engine::note_replaced`], then [`Engine::close_replaced`] at the
//!   end of the poll, where the links are at hand for its `Leave`).
//! - **On another core, in another shard's zone**, neither shard sees both
//!   joins; the player's home shard sees both claims: every welcome sends
//!   one (`GatewayPort::claim`, `connection.rs`) and every close releases
//!   it, and a second claim makes the home shard send the same notice.
//!
//! The older session's `Leave` reaches its shard after the newer session's
//! `Join` (same core: same ring, later; other core: the shard has already
//! re-homed the player), so the shard drops it as stale and the game sees
//! one leave and one join. A notice for a session that already closed (the
//! same-core path got there first) is ignored.

use std::time::Instant;

use lanegate_common::ids::{PlayerId, SessionId};
use lanegate_common::wire::CloseCode;
use lanegate_shard::port::GatewayPort;

use super::session::CloseCause;
use super::{Admission, Engine};

impl<A: Admission> Engine<A> {
    /// The session in slot `idx` was just welcomed as `player`: closes every
    /// other established session of `player` on this core.
    pub(super) fn replace_older(
        &mut self,
        idx: usize,
        player: PlayerId,
        now: Instant,
        links: &mut GatewayPort,
    ) {
        for other in 0..self.slots.len() {
            if other == idx || self.slots[other].conn.is_none() {
                continue;
            }
            let same_player = self.slots[other]
                .session
                .as_ref()
                .and_then(|s| s.established())
                .is_some_and(|e| e.player == player);
            if same_player {
                self.close_as_replaced(other, now, links);
            }
        }
    }

    /// A shard says `session` was replaced: remembered, if it is live here,
    /// until the end of the poll.
    pub(super) fn note_replaced(&mut self, session: SessionId) {
        // Bounded by what was allocated (one per slot): a repeated notice
        // is harmless (the second close finds the session closing), and
        // one past the bound waits for nothing: the shard already treats
        // the session as gone and drops its messages.
        if self.slot_of(session).is_some() && self.replaced.len() < self.replaced.capacity() {
            self.replaced.push(session);
        }
    }

    /// Closes the sessions noted during this poll that are still open.
    pub(super) fn close_replaced(&mut self, now: Instant, links: &mut GatewayPort) {
        for i in 0..self.replaced.len() {
            if let Some(idx) = self.slot_of(self.replaced[i]) {
                self.close_as_replaced(idx, now, links);
            }
        }
        self.replaced.clear();
    }

    fn close_as_replaced(&mut self, idx: usize, now: Instant, links: &mut GatewayPort) {
        let close = self.slots[idx]
            .session
            .as_mut()
            .and_then(|s| s.close(CloseCode::SessionReplaced, CloseCause::Replaced));
        if let Some(close) = close {
            self.finish_close(idx, now, close, links);
        }
    }
}
