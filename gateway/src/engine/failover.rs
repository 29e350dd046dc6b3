//! A failed-over shard's players on this core: each re-joined to its zone's
//! new shard and sent `ZONE_RESET`, as after a game panic, or closed with
//! `SHARD_UNAVAILABLE` when no shard can take it (`docs/shard.md`,
//! "Failover").
//!
//! The watchdog decides and fences on the shared board; the core loop asks
//! its port once per turn ([`GatewayPort::lost_shard`]) and hands each newly
//! lost shard to [`Engine::handle_shard_lost`]. Where a zone goes is the
//! port's routing ([`GatewayPort::shard_of`], the same choice on every core),
//! so this file only finds the sessions the shard served, fences the port
//! and re-joins them. The session list is a scratch buffer of one slot per
//! connection, allocated with the engine.

use std::time::Instant;

use lanegate_common::ids::ShardId;
use lanegate_common::wire::{CloseCode, Message, ZoneReset};
use lanegate_shard::port::GatewayPort;

use super::session::{CloseCause, Session};
use super::{Admission, Engine};

impl<A: Admission> Engine<A> {
    /// `shard` was failed over: routes around it from now on
    /// ([`GatewayPort::fence`]) and moves the sessions it served. Each is
    /// re-joined to its zone's new shard, whose game sees a fresh `on_join`,
    /// and gets `ZONE_RESET` so the client resynchronizes; a session no
    /// shard can take is closed with `SHARD_UNAVAILABLE`.
    pub fn handle_shard_lost(&mut self, now: Instant, shard: ShardId, links: &mut GatewayPort) {
        self.counters.shards_lost += 1;
        // Which sessions it served, asked before the port routes around it.
        let mut served = std::mem::take(&mut self.failover_scratch);
        served.clear();
        for idx in 0..self.slots.len() {
            if let Some(zone) = self.zone_of(idx)
                && links.shard_of(zone) == shard
            {
                served.push(idx);
            }
        }
        links.fence(shard);
        for &idx in &served {
            let Some(est) = self.slots[idx]
                .session
                .as_ref()
                .and_then(Session::established)
            else {
                continue;
            };
            match links.join(est.session, est.player, est.zone) {
                Ok(_) => {
                    self.counters.sessions_rehomed += 1;
                    self.send_zone_reset(idx, est.zone);
                }
                Err(_) => {
                    // Counted by the port (`joins_unavailable` or
                    // `joins_refused`); the client reconnects with backoff.
                    let close = self.slots[idx].session.as_mut().and_then(|s| {
                        s.close(CloseCode::ShardUnavailable, CloseCause::ShardUnavailable)
                    });
                    if let Some(close) = close {
                        self.finish_close(idx, now, close, links);
                    }
                }
            }
        }
        self.failover_scratch = served;
    }

    fn send_zone_reset(&mut self, idx: usize, zone: lanegate_common::ids::ZoneId) {
        self.with_control_frame(Message::ZoneReset(ZoneReset { zone }), |e, frame| {
            e.write_control(idx, frame);
        });
    }
}
