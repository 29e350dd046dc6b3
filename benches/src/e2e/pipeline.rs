//! The in-memory half of a gateway core's inbound path, as one kernel per
//! candidate, shared by the `pipeline` criterion bench and the
//! `pipeline-count` binary (run under callgrind for instruction counts).
//!
//! - [`Pipeline::full_batch`]: per message, `LaneTable::classify`, then
//!   `AdmissionTable::admit` (one `now` per batch of [`BATCH`], as the
//!   engine's loop turn does), then a `ToShard::Message` with an inline
//!   payload pushed onto the shard ring (`lanegate_shard::ring`).
//! - [`Pipeline::bare_batch`]: the baseline, a bare `ringbuf` push of the
//!   same entry, with the same construction of the entry.
//!
//! Both pop what they pushed at the end of each batch (the shard's side, on
//! the same thread), so the ring never fills and every message is admitted.
//! Read the result as the ratio full ÷ bare.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lanegate_common::config::{AdmissionConfig, LaneLimits};
use lanegate_common::ids::{PlayerId, SessionId, ZoneId};
use lanegate_common::lanes::{Lane, LaneTable, MessageClass};
use lanegate_common::link::{Body, InlinePayload, Payload, ToShard};
use lanegate_common::wire::Transport;
use lanegate_gateway::engine::AdmitDecision;
use lanegate_gateway::engine::admit::AdmissionTable;
use lanegate_shard::ring::{RingRx, RingTx, ring};
use ringbuf::HeapRb;
use ringbuf::traits::{Consumer as _, Producer as _, Split as _};

/// Messages per batch: one `now` each, then the consumer drains.
pub const BATCH: usize = 64;
/// Ring slots: the default `ring_slots_max`.
pub const SLOTS: usize = 4096;
/// Connections the messages are spread over.
pub const CONNS: usize = 1000;
/// Inline payload bytes in each entry (an arena input).
pub const PAYLOAD_BYTES: usize = 16;

/// One inbound message as the engine has it after decoding.
#[derive(Clone, Copy, Debug)]
pub struct Inbound {
    /// Connection slot.
    pub slot: usize,
    /// Message type.
    pub ty: u16,
    /// Payload bytes.
    pub payload: [u8; PAYLOAD_BYTES],
}

/// Both candidates' state.
pub struct Pipeline {
    lanes: LaneTable,
    admission: AdmissionTable,
    tx: RingTx<ToShard>,
    rx: RingRx<ToShard>,
    bare_tx: ringbuf::CachingProd<Arc<HeapRb<ToShard>>>,
    bare_rx: ringbuf::CachingCons<Arc<HeapRb<ToShard>>>,
    now: Instant,
    step: Duration,
    batch: [Inbound; BATCH],
    next_slot: usize,
}

impl Pipeline {
    /// Tables for [`CONNS`] open connections, two rings of [`SLOTS`].
    pub fn new() -> Self {
        let now = Instant::now();
        let no_abuse = AdmissionConfig {
            abuse_window_ms: 10_000,
            abuse_drops_max: u32::MAX,
            abuse_ban_ms: 0,
            bans_max: 1,
        };
        let mut admission = AdmissionTable::new(&LaneLimits::default(), &no_abuse, CONNS, now)
            .expect("default limits are valid");
        for slot in 0..CONNS {
            admission.open(slot, now).expect("slot in range");
        }
        let (tx, rx) = ring::<ToShard>(SLOTS, [SLOTS; Lane::COUNT]).expect("ring");
        let (bare_tx, bare_rx) = HeapRb::<ToShard>::new(SLOTS).split();
        // Critical allows 240/s per connection: one message per 5 ms per
        // connection, spread over CONNS, is always admitted.
        let step = Duration::from_millis(5) * u32::try_from(BATCH).expect("small")
            / u32::try_from(CONNS).expect("small");
        let mut p = Self {
            lanes: LaneTable::default(),
            admission,
            tx,
            rx,
            bare_tx,
            bare_rx,
            now,
            step,
            batch: [Inbound {
                slot: 0,
                ty: 0x1fff,
                payload: [0; PAYLOAD_BYTES],
            }; BATCH],
            next_slot: 0,
        };
        p.refill();
        p
    }

    /// Moves the batch to the next [`BATCH`] connections (not measured
    /// separately; both candidates pay it).
    #[inline]
    fn refill(&mut self) {
        for m in &mut self.batch {
            m.slot = self.next_slot;
            m.payload[..8].copy_from_slice(&(self.next_slot as u64).to_be_bytes());
            self.next_slot += 1;
            if self.next_slot == CONNS {
                self.next_slot = 0;
            }
        }
    }

    /// classify + admit + ring push for [`BATCH`] messages, then pops them.
    /// Returns how many were admitted.
    #[inline(never)]
    pub fn full_batch(&mut self) -> usize {
        self.refill();
        self.now += self.step;
        let now = black_box(self.now);
        let mut admitted = 0;
        for m in &self.batch {
            let m = black_box(m);
            let MessageClass::Game(lane) = self.lanes.classify(m.ty) else {
                continue;
            };
            if self.admission.admit(m.slot, lane, now) != AdmitDecision::Admit {
                continue;
            }
            if self.tx.push(entry(m, lane, now)).is_ok() {
                admitted += 1;
            }
        }
        while let Some(e) = self.rx.pop() {
            black_box(e);
        }
        admitted
    }

    /// The baseline: a bare ringbuf push of the same entry, then the pops.
    #[inline(never)]
    pub fn bare_batch(&mut self) -> usize {
        self.refill();
        let now = black_box(self.now);
        let mut pushed = 0;
        for m in &self.batch {
            let m = black_box(m);
            if self.bare_tx.try_push(entry(m, Lane::Critical, now)).is_ok() {
                pushed += 1;
            }
        }
        while let Some(e) = self.bare_rx.try_pop() {
            black_box(e);
        }
        pushed
    }
}

impl Default for Pipeline {
    fn default() -> Self {
        Self::new()
    }
}

#[inline(always)]
fn entry(m: &Inbound, lane: Lane, received_at: Instant) -> ToShard {
    let payload = InlinePayload::new(&m.payload).expect("16 bytes fit inline");
    ToShard::Message {
        session: SessionId(m.slot as u64),
        player: PlayerId(m.slot as u64),
        zone: ZoneId(7),
        body: Body {
            ty: m.ty,
            lane,
            transport: Transport::Datagram,
            payload: Payload::Inline(payload),
        },
        received_at,
        held_us: 0,
    }
}
