//! Per-connection admission: one GCRA bucket per connection and lane
//! (`[lanes.limits.<lane>]`) and the abuse rule of `[admission]`.
//!
//! A connection with more than `abuse_drops_max` over-limit drops within
//! `abuse_window_ms` is closed with `ABUSE`. The table is allocated once, for
//! `conn_slots_max` connections, and indexed by the engine's connection slot,
//! so [`AdmissionTable::admit`] neither allocates nor hashes.

use std::fmt;
use std::time::Instant;

use governor::{Quota, RateLimiter};
use lanegate_common::config::{AdmissionConfig, LaneLimit, LaneLimits};
use lanegate_common::lanes::Lane;
use lanegate_common::wire::CloseCode;

use super::clock::{EpochTime, SetClock};
use super::gcra::{Gcra, TatTable, quota};
use super::{AdmissionError, AdmitDecision};

/// Per-connection, per-lane rate limits and the abuse rule: the admission
/// state of every connection one engine core serves.
///
/// Memory is fixed at construction: four 8-byte TATs (one per lane) plus
/// under 96 bytes of window state and counters, for each of
/// `conn_slots_max` slots. `open`, `close` and `admit` are O(1) and never
/// allocate.
///
/// # Lane limits
///
/// A freshly opened lane admits `burst` messages at once, then one per
/// `1 / rate_per_s`: governor's GCRA with `allow_burst(burst)`, whose
/// tolerance is `(burst - 1) / rate_per_s`. Over `T` seconds that is
/// `burst + rate_per_s * T` messages, give or take one.
///
/// # Abuse window
///
/// Over-limit drops are counted in a *two-bucket sliding window* (the
/// estimate Cloudflare's rate limiter uses). Each connection keeps the drop
/// count of the current fixed window of `abuse_window_ms` and of the window
/// before it. The drops in the last `abuse_window_ms` are estimated as
/// `previous * (1 - elapsed / window) + current`. When that estimate goes
/// above `abuse_drops_max`, the connection is closed. This uses 16 bytes per
/// connection and does O(1) work per drop. A plain fixed window would let a
/// flood that straddles a window boundary drop up to twice the maximum
/// unnoticed. The estimate is always at least `current`, so more than the
/// maximum within one fixed window always closes the connection. Drops spread
/// evenly, at a rate below `abuse_drops_max` per window, do not.
pub struct AdmissionTable {
    time: EpochTime,
    lanes: [LaneBuckets; Lane::COUNT],
    conns: Box<[ConnEntry]>,
    abuse_window_ns: u64,
    abuse_drops_max: u32,
    totals: AdmitTotals,
}

impl AdmissionTable {
    /// Builds a table for `conn_slots_max` connections. Every slot starts
    /// free. `now` is the table's epoch, and later calls should not pass an
    /// earlier instant (an earlier one is treated as the epoch).
    pub fn new(
        limits: &LaneLimits,
        admission: &AdmissionConfig,
        conn_slots_max: usize,
        now: Instant,
    ) -> Result<Self, AdmissionError> {
        if conn_slots_max == 0 {
            return Err(AdmissionError::Zero {
                field: "conn_slots_max",
            });
        }
        if admission.abuse_window_ms == 0 {
            return Err(AdmissionError::Zero {
                field: "admission.abuse_window_ms",
            });
        }
        let [critical, high, normal, bulk] =
            Lane::ALL.map(|lane| lane_quota(lane, limits.get(lane)));
        let lanes = [
            LaneBuckets::new(critical?, conn_slots_max),
            LaneBuckets::new(high?, conn_slots_max),
            LaneBuckets::new(normal?, conn_slots_max),
            LaneBuckets::new(bulk?, conn_slots_max),
        ];
        Ok(Self {
            time: EpochTime::new(now),
            lanes,
            conns: vec![ConnEntry::default(); conn_slots_max].into_boxed_slice(),
            abuse_window_ns: admission.abuse_window_ms.saturating_mul(1_000_000),
            abuse_drops_max: admission.abuse_drops_max,
            totals: AdmitTotals::default(),
        })
    }

    /// Starts admitting for a new connection in `slot`. Every lane gets a
    /// full burst, and the counters and abuse window are reset, even if the
    /// slot was never closed.
    pub fn open(&mut self, slot: usize, now: Instant) -> Result<(), AdmissionError> {
        let conn_slots_max = self.conns.len();
        let conn = self
            .conns
            .get_mut(slot)
            .ok_or(AdmissionError::SlotOutOfRange {
                slot,
                conn_slots_max,
            })?;
        *conn = ConnEntry {
            state: SlotState::Open,
            abuse: DropWindow::starting(self.time.nanos(now)),
            counters: ConnCounters::default(),
        };
        for lane in &self.lanes {
            lane.tats.reset(slot);
        }
        Ok(())
    }

    /// Frees `slot` and returns the connection's final counters. Returns
    /// `None` if the slot was not in use or is out of range.
    pub fn close(&mut self, slot: usize) -> Option<ConnCounters> {
        let conn = self.conns.get_mut(slot)?;
        if conn.state == SlotState::Free {
            return None;
        }
        conn.state = SlotState::Free;
        Some(conn.counters)
    }

    /// Decides whether a message on `lane`, arriving at `now` on the
    /// connection in `slot`, is admitted. Every outcome is counted.
    #[must_use]
    pub fn admit(&mut self, slot: usize, lane: Lane, now: Instant) -> AdmitDecision {
        let Some(conn) = self.conns.get_mut(slot) else {
            self.totals.dropped_not_open += 1;
            return AdmitDecision::Drop;
        };
        match conn.state {
            SlotState::Open => {}
            SlotState::Closing => {
                self.totals.dropped_closing += 1;
                return AdmitDecision::Drop;
            }
            SlotState::Free => {
                self.totals.dropped_not_open += 1;
                return AdmitDecision::Drop;
            }
        }
        let now_ns = self.time.nanos(now);
        let i = lane.index();
        if self.lanes[i].check(slot, now_ns) {
            conn.counters.admitted[i] += 1;
            self.totals.admitted[i] += 1;
            return AdmitDecision::Admit;
        }
        conn.counters.dropped[i] += 1;
        self.totals.dropped[i] += 1;
        if conn
            .abuse
            .record_drop(now_ns, self.abuse_window_ns, self.abuse_drops_max)
        {
            conn.state = SlotState::Closing;
            self.totals.abuse_closes += 1;
            return AdmitDecision::Close(CloseCode::Abuse);
        }
        AdmitDecision::Drop
    }

    /// Counts an offence (input the engine dropped as no client should send
    /// it) of the connection in `slot` in its abuse window, as an
    /// over-limit drop is counted: `Close(ABUSE)` when the window's estimate
    /// goes above `abuse_drops_max`, else `Drop`.
    #[must_use]
    pub fn offence(&mut self, slot: usize, now: Instant) -> AdmitDecision {
        let Some(conn) = self.conns.get_mut(slot) else {
            return AdmitDecision::Drop;
        };
        if conn.state != SlotState::Open {
            return AdmitDecision::Drop;
        }
        self.totals.offences += 1;
        let now_ns = self.time.nanos(now);
        if conn
            .abuse
            .record_drop(now_ns, self.abuse_window_ns, self.abuse_drops_max)
        {
            conn.state = SlotState::Closing;
            self.totals.abuse_closes += 1;
            return AdmitDecision::Close(CloseCode::Abuse);
        }
        AdmitDecision::Drop
    }

    /// The counters of the connection in `slot`, or `None` if the slot is
    /// free or out of range.
    pub fn conn_counters(&self, slot: usize) -> Option<&ConnCounters> {
        self.conns
            .get(slot)
            .filter(|c| c.state != SlotState::Free)
            .map(|c| &c.counters)
    }

    /// Counts over all connections since construction.
    pub fn totals(&self) -> &AdmitTotals {
        &self.totals
    }

    /// The number of connection slots, fixed at construction.
    pub fn conn_slots_max(&self) -> usize {
        self.conns.len()
    }
}

/// Counts for one connection, indexed by [`Lane::index`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnCounters {
    /// Messages admitted.
    pub admitted: [u64; Lane::COUNT],
    /// Messages dropped for being over the lane's limit. This includes the
    /// message that triggered an abuse close.
    pub dropped: [u64; Lane::COUNT],
}

/// Counts over every connection the table has served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdmitTotals {
    /// Messages admitted, per lane.
    pub admitted: [u64; Lane::COUNT],
    /// Messages dropped for being over their lane's limit, per lane.
    pub dropped: [u64; Lane::COUNT],
    /// Offences counted in abuse windows ([`AdmissionTable::offence`]).
    pub offences: u64,
    /// Connections closed with `ABUSE`.
    pub abuse_closes: u64,
    /// Messages dropped because their connection was already closed for
    /// abuse. These are not counted per lane.
    pub dropped_closing: u64,
    /// Messages for a slot that is not open or is out of range. Anything
    /// other than zero is an engine bug.
    pub dropped_not_open: u64,
}

/// Summaries, not every slot: a table may hold tens of thousands.
impl fmt::Debug for AdmissionTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdmissionTable")
            .field("conn_slots_max", &self.conns.len())
            .field("abuse_window_ns", &self.abuse_window_ns)
            .field("abuse_drops_max", &self.abuse_drops_max)
            .field("totals", &self.totals)
            .finish_non_exhaustive()
    }
}

/// One lane's buckets for every connection slot.
#[derive(Debug)]
struct LaneBuckets {
    gcra: Gcra,
    /// The same table `gcra` reads and writes, kept so `open` can reset a
    /// slot.
    tats: TatTable,
}

impl LaneBuckets {
    fn new(quota: Quota, conn_slots_max: usize) -> Self {
        let tats = TatTable::new(conn_slots_max);
        Self {
            gcra: RateLimiter::new(quota, tats.clone(), SetClock::default()),
            tats,
        }
    }

    /// One GCRA step for `slot` at `now_ns`: true if the message conforms.
    #[inline]
    fn check(&self, slot: usize, now_ns: u64) -> bool {
        self.gcra.clock().set(now_ns);
        self.gcra.check_key(&slot).is_ok()
    }
}

/// One connection's entry in the table, beside its lane buckets: whether
/// the slot is in use, its abuse window and its counters.
#[derive(Clone, Copy, Debug, Default)]
struct ConnEntry {
    state: SlotState,
    abuse: DropWindow,
    counters: ConnCounters,
}

/// Whether a slot holds a connection, and whether admission still serves it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum SlotState {
    #[default]
    Free,
    Open,
    /// Closed for abuse; the engine has not freed the slot yet.
    Closing,
}

/// Over-limit drops of one connection in a two-bucket sliding window (see
/// [`AdmissionTable`]).
#[derive(Clone, Copy, Debug, Default)]
struct DropWindow {
    /// Start of the current fixed window, in ns since the epoch.
    start_ns: u64,
    current: u32,
    previous: u32,
}

impl DropWindow {
    fn starting(now_ns: u64) -> Self {
        Self {
            start_ns: now_ns,
            current: 0,
            previous: 0,
        }
    }

    /// Counts one drop at `now_ns`. Returns true if the estimated drops in
    /// the last `window_ns` are now above `drops_max`.
    fn record_drop(&mut self, now_ns: u64, window_ns: u64, drops_max: u32) -> bool {
        let elapsed = now_ns.saturating_sub(self.start_ns);
        if elapsed >= window_ns {
            let windows = elapsed / window_ns;
            self.previous = if windows == 1 { self.current } else { 0 };
            self.current = 0;
            self.start_ns += windows * window_ns;
        }
        self.current = self.current.saturating_add(1);
        let into = now_ns.saturating_sub(self.start_ns);
        let window = u128::from(window_ns);
        // previous * (window - into) / window + current > drops_max, with
        // both sides scaled by window. `into < window` here.
        let estimate_scaled = u128::from(self.previous) * u128::from(window_ns - into)
            + u128::from(self.current) * window;
        estimate_scaled > u128::from(drops_max) * window
    }
}

/// `lane`'s quota; a zero rate or burst is an error naming the field as the
/// configuration file does.
fn lane_quota(lane: Lane, limit: LaneLimit) -> Result<Quota, AdmissionError> {
    let (rate_field, burst_field) = match lane {
        Lane::Critical => (
            "lanes.limits.critical.rate_per_s",
            "lanes.limits.critical.burst",
        ),
        Lane::High => ("lanes.limits.high.rate_per_s", "lanes.limits.high.burst"),
        Lane::Normal => (
            "lanes.limits.normal.rate_per_s",
            "lanes.limits.normal.burst",
        ),
        Lane::Bulk => ("lanes.limits.bulk.rate_per_s", "lanes.limits.bulk.burst"),
    };
    quota(limit.rate_per_s, limit.burst, rate_field, burst_field)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    const NO_ABUSE: AdmissionConfig = AdmissionConfig {
        abuse_window_ms: 10_000,
        abuse_drops_max: u32::MAX,
        abuse_ban_ms: 0,
        bans_max: 1,
    };

    fn table(admission: &AdmissionConfig, slots: usize) -> (AdmissionTable, Instant) {
        let t0 = Instant::now();
        let mut t = AdmissionTable::new(&LaneLimits::default(), admission, slots, t0)
            .expect("default limits are valid");
        t.open(0, t0).expect("slot 0 exists");
        (t, t0)
    }

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    /// Sends one message per `every_ms` on `lane` from `from_ms` to
    /// `to_ms` inclusive and returns (admitted, dropped).
    fn pace(
        t: &mut AdmissionTable,
        t0: Instant,
        lane: Lane,
        (from_ms, to_ms, every_ms): (u64, u64, u64),
    ) -> (u64, u64) {
        let (mut admitted, mut dropped) = (0, 0);
        for at in (from_ms..=to_ms).step_by(usize::try_from(every_ms).unwrap()) {
            match t.admit(0, lane, ms(t0, at)) {
                AdmitDecision::Admit => admitted += 1,
                AdmitDecision::Drop => dropped += 1,
                AdmitDecision::Close(code) => panic!("unexpected close {code:?}"),
            }
        }
        (admitted, dropped)
    }

    #[test]
    fn burst_then_rate_admits_exactly_the_allowance_per_lane() {
        let (mut t, t0) = table(&NO_ABUSE, 1);
        let limits = LaneLimits::default();
        let mut sent = [0u64; Lane::COUNT];
        // All four lanes at 1000 msg/s for 10 virtual seconds, interleaved.
        for at in 0..=10_000 {
            for lane in Lane::ALL {
                let _ = t.admit(0, lane, ms(t0, at));
                sent[lane.index()] += 1;
            }
        }
        let c = *t.conn_counters(0).unwrap();
        for lane in Lane::ALL {
            let l = limits.get(lane);
            let allowance = u64::from(l.burst) + u64::from(l.rate_per_s) * 10;
            let got = c.admitted[lane.index()];
            assert!(
                got.abs_diff(allowance) <= 1,
                "{lane:?}: admitted {got}, allowance {allowance}"
            );
            assert_eq!(got + c.dropped[lane.index()], sent[lane.index()]);
        }
        assert_eq!(t.totals().admitted, c.admitted);
        assert_eq!(t.totals().dropped, c.dropped);
    }

    #[test]
    fn burst_is_admitted_at_once_and_the_next_message_dropped() {
        let (mut t, t0) = table(&NO_ABUSE, 1);
        let (admitted, dropped) = pace(&mut t, t0, Lane::Normal, (0, 0, 1));
        assert_eq!((admitted, dropped), (1, 0));
        for _ in 1..20 {
            assert_eq!(t.admit(0, Lane::Normal, t0), AdmitDecision::Admit);
        }
        assert_eq!(t.admit(0, Lane::Normal, t0), AdmitDecision::Drop);
        // One emission interval (50 ms at 20/s) later, exactly one more.
        assert_eq!(t.admit(0, Lane::Normal, ms(t0, 50)), AdmitDecision::Admit);
        assert_eq!(t.admit(0, Lane::Normal, ms(t0, 50)), AdmitDecision::Drop);
    }

    #[test]
    fn bulk_flood_does_not_affect_critical_on_the_same_connection() {
        let (mut t, t0) = table(&NO_ABUSE, 1);
        // 10 s of bulk at 10 000 msg/s, with critical at 60 Hz in between.
        let mut critical = (0, 0);
        for tick in 0..100_000u64 {
            let at = t0 + Duration::from_micros(tick * 100);
            let _ = t.admit(0, Lane::Bulk, at);
            if tick % 167 == 0 {
                match t.admit(0, Lane::Critical, at) {
                    AdmitDecision::Admit => critical.0 += 1,
                    _ => critical.1 += 1,
                }
            }
        }
        assert_eq!(critical, (599, 0));
        let c = t.conn_counters(0).unwrap();
        assert!(c.dropped[Lane::Bulk.index()] > 99_000);
        assert_eq!(c.dropped[Lane::Critical.index()], 0);
        // Critical's burst is still whole.
        let end = ms(t0, 20_000);
        for _ in 0..60 {
            assert_eq!(t.admit(0, Lane::Critical, end), AdmitDecision::Admit);
        }
    }

    #[test]
    fn abuse_closes_once_after_the_threshold_within_the_window() {
        let (mut t, t0) = table(&AdmissionConfig::default(), 1);
        // Bulk: burst 20, then 500 drops are tolerated.
        for i in 0..520 {
            let d = t.admit(0, Lane::Bulk, ms(t0, 1));
            assert_ne!(d, AdmitDecision::Close(CloseCode::Abuse), "message {i}");
        }
        assert_eq!(
            t.admit(0, Lane::Bulk, ms(t0, 2)),
            AdmitDecision::Close(CloseCode::Abuse)
        );
        for lane in Lane::ALL {
            for _ in 0..25 {
                assert_eq!(t.admit(0, lane, ms(t0, 3)), AdmitDecision::Drop);
            }
        }
        let totals = t.totals();
        assert_eq!(totals.abuse_closes, 1);
        assert_eq!(totals.dropped_closing, 100);
        assert_eq!(totals.dropped[Lane::Bulk.index()], 501);
        assert_eq!(t.conn_counters(0).unwrap().dropped[Lane::Bulk.index()], 501);
    }

    #[test]
    fn offences_share_the_abuse_window_with_drops() {
        let (mut t, t0) = table(&AdmissionConfig::default(), 2);
        // Unopened: never counted, never closed.
        assert_eq!(t.offence(1, ms(t0, 1)), AdmitDecision::Drop);
        assert_eq!(t.totals().offences, 0);
        // 300 over-limit drops and 200 offences are 500: tolerated...
        for _ in 0..320 {
            let _ = t.admit(0, Lane::Bulk, ms(t0, 1));
        }
        for _ in 0..200 {
            assert_eq!(t.offence(0, ms(t0, 2)), AdmitDecision::Drop);
        }
        // ...and the next offence closes.
        assert_eq!(
            t.offence(0, ms(t0, 3)),
            AdmitDecision::Close(CloseCode::Abuse)
        );
        assert_eq!(t.offence(0, ms(t0, 4)), AdmitDecision::Drop, "closing");
        assert_eq!(t.totals().offences, 201);
        assert_eq!(t.totals().abuse_closes, 1);
        // Offences spread below the maximum per window never close.
        t.open(0, ms(t0, 10)).unwrap();
        for s in 0..100u64 {
            for _ in 0..40 {
                assert_eq!(t.offence(0, ms(t0, 10 + s * 1000)), AdmitDecision::Drop);
            }
        }
        assert_eq!(t.totals().abuse_closes, 1);
    }

    #[test]
    fn drops_spread_over_many_windows_do_not_close() {
        let (mut t, t0) = table(&AdmissionConfig::default(), 1);
        // Bulk at 50 msg/s against 10/s: 40 drops/s, 400 per 10 s window,
        // for 100 s; 4000 drops in all, never 500 in one window.
        let (admitted, dropped) = pace(&mut t, t0, Lane::Bulk, (0, 100_000, 20));
        assert!(dropped > 3_900, "dropped {dropped}");
        assert!(admitted.abs_diff(20 + 10 * 100) <= 1, "admitted {admitted}");
        assert_eq!(t.totals().abuse_closes, 0);
    }

    #[test]
    fn drops_straddling_a_window_boundary_close() {
        let (mut t, t0) = table(&AdmissionConfig::default(), 1);
        // 300 drops just before the first window ends and 300 just after.
        // A fixed window would see 300 in each; the sliding estimate sees
        // about 600 in 10 s.
        assert_eq!(pace(&mut t, t0, Lane::Bulk, (9_990, 9_999, 1)), (10, 0));
        for _ in 0..310 {
            let _ = t.admit(0, Lane::Bulk, ms(t0, 9_999));
        }
        assert_eq!(t.totals().dropped[Lane::Bulk.index()], 300);
        let mut closed = false;
        for _ in 0..300 {
            if t.admit(0, Lane::Bulk, ms(t0, 10_001)) == AdmitDecision::Close(CloseCode::Abuse) {
                closed = true;
                break;
            }
        }
        assert!(closed);
    }

    #[test]
    fn slot_reuse_resets_state() {
        let (mut t, t0) = table(&AdmissionConfig::default(), 2);
        // Drive slot 0 to an abuse close.
        let mut closed_at = None;
        for i in 0..600 {
            if let AdmitDecision::Close(_) = t.admit(0, Lane::Bulk, t0) {
                closed_at = Some(i);
                break;
            }
        }
        assert_eq!(closed_at, Some(520));
        let last = t.close(0).expect("slot 0 was open");
        assert_eq!(last.admitted[Lane::Bulk.index()], 20);
        assert_eq!(last.dropped[Lane::Bulk.index()], 501);
        assert_eq!(t.close(0), None);
        assert_eq!(t.conn_counters(0), None);
        // Reopened at the same instant: full burst, fresh window, zeroed
        // counters.
        t.open(0, t0).unwrap();
        assert_eq!(t.conn_counters(0), Some(&ConnCounters::default()));
        for i in 0..521 {
            let d = t.admit(0, Lane::Bulk, t0);
            let want = if i < 20 {
                AdmitDecision::Admit
            } else if i < 520 {
                AdmitDecision::Drop
            } else {
                AdmitDecision::Close(CloseCode::Abuse)
            };
            assert_eq!(d, want, "message {i}");
        }
        // Reopening also resets a slot that was never closed.
        t.open(1, t0).unwrap();
        for _ in 0..20 {
            assert_eq!(t.admit(1, Lane::Bulk, t0), AdmitDecision::Admit);
        }
        t.open(1, t0).unwrap();
        assert_eq!(t.admit(1, Lane::Bulk, t0), AdmitDecision::Admit);
        assert_eq!(t.totals().abuse_closes, 2);
    }

    #[test]
    fn unopened_and_out_of_range_slots_drop_and_count() {
        let (mut t, t0) = table(&AdmissionConfig::default(), 2);
        assert_eq!(t.admit(1, Lane::Critical, t0), AdmitDecision::Drop);
        assert_eq!(t.admit(2, Lane::Critical, t0), AdmitDecision::Drop);
        assert_eq!(t.totals().dropped_not_open, 2);
        assert_eq!(
            t.open(2, t0),
            Err(AdmissionError::SlotOutOfRange {
                slot: 2,
                conn_slots_max: 2
            })
        );
        assert_eq!(t.close(5), None);
    }

    #[test]
    fn zero_limits_are_rejected_naming_the_field() {
        let t0 = Instant::now();
        let mut limits = LaneLimits::default();
        limits.high.rate_per_s = 0;
        let err = AdmissionTable::new(&limits, &AdmissionConfig::default(), 1, t0).unwrap_err();
        assert_eq!(
            err,
            AdmissionError::Zero {
                field: "lanes.limits.high.rate_per_s"
            }
        );
        let mut limits = LaneLimits::default();
        limits.bulk.burst = 0;
        let err = AdmissionTable::new(&limits, &AdmissionConfig::default(), 1, t0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "lanes.limits.bulk.burst must be at least 1"
        );
        let err = AdmissionTable::new(&LaneLimits::default(), &AdmissionConfig::default(), 0, t0)
            .unwrap_err();
        assert_eq!(
            err,
            AdmissionError::Zero {
                field: "conn_slots_max"
            }
        );
    }

    #[test]
    fn window_estimate_weights_the_previous_window() {
        let mut w = DropWindow::starting(0);
        let window = 1_000;
        for _ in 0..10 {
            assert!(!w.record_drop(500, window, 10));
        }
        // Half-way through the next window, the 10 old drops weigh 5.
        for _ in 0..5 {
            assert!(!w.record_drop(1_500, window, 10));
        }
        assert!(w.record_drop(1_500, window, 10));
        // Two windows on, the old drops are forgotten.
        let mut w = DropWindow::starting(0);
        for _ in 0..10 {
            w.record_drop(0, window, 10);
        }
        assert!(!w.record_drop(2_000, window, 10));
        assert_eq!((w.previous, w.current, w.start_ns), (0, 1, 2_000));
    }

    #[test]
    fn table_is_send_and_sync_and_debug_is_short() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<AdmissionTable>();
        assert!(size_of::<ConnEntry>() < 96, "as the type's docs say");
        let (t, _) = table(&AdmissionConfig::default(), 10_000);
        assert!(format!("{t:?}").len() < 1_000);
    }

    proptest! {
        #[test]
        fn admitted_never_exceeds_burst_plus_rate_times_elapsed(
            rate_per_s in 1u32..2_000,
            burst in 1u32..200,
            events in prop::collection::vec((0usize..Lane::COUNT, 0u64..20_000), 1..3_000),
        ) {
            let limit = LaneLimit::new(rate_per_s, burst);
            let limits = LaneLimits { critical: limit, high: limit, normal: limit, bulk: limit };
            let t0 = Instant::now();
            let mut t = AdmissionTable::new(&limits, &NO_ABUSE, 1, t0).unwrap();
            t.open(0, t0).unwrap();
            let mut elapsed_us = 0u64;
            for (lane, dt_us) in events {
                elapsed_us += dt_us;
                let lane = Lane::from_index(lane).unwrap();
                let _ = t.admit(0, lane, t0 + Duration::from_micros(elapsed_us));
                let admitted = t.conn_counters(0).unwrap().admitted[lane.index()];
                // admitted <= burst + rate * elapsed + 1, in µs units.
                let allowance_us =
                    u128::from(burst + 1) * 1_000_000 + u128::from(rate_per_s) * u128::from(elapsed_us);
                prop_assert!(u128::from(admitted) * 1_000_000 <= allowance_us,
                    "lane {lane:?}: {admitted} admitted after {elapsed_us} µs");
            }
        }
    }
}
