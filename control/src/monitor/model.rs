//! One series' model: a level under a seasonal profile, the band around
//! them, a CUSUM for shifts the band is too wide to see, and the alert
//! state machine that turns both into raised and cleared alerts.
//!
//! Each [`SeriesModel::observe`] does a fixed amount of arithmetic and
//! touches three buckets; the model's memory is its two bucket arrays,
//! sized once from [`MonitorConfig`]. Per sample, in order:
//!
//! 1. **Time.** Non-finite values (or beyond [`VALUE_ABS_MAX`]) and times that do not move forward are
//!    ignored (reported, not learnt). The interval between samples is
//!    measured, not configured; a gap of more than [`GAP_INTERVALS`]
//!    intervals resets the consecutive counts and the CUSUM, since the
//!    samples on either side are not consecutive.
//! 2. **Expectation.** `expected = level + offset(time of week)`, with the
//!    offset from the seasonal profile ([`season`](super::season)), and a
//!    spread (robust σ) from the same bucket, or the global one.
//! 3. **Detection** (not while learning): `z = (value - expected) / spread`.
//!    `|z|` at or past `raise_deviations` for `raise_after_samples` in a row
//!    raises a [`Cause::Band`] alert; a one-sided CUSUM of `z` past
//!    `cusum_threshold` raises [`Cause::Shift`] (a small step or a slow
//!    drift, each sample inside the band). An alert clears after
//!    `clear_after_samples` in a row within `clear_deviations`, and no new
//!    one is raised for `suppress_after_clear_samples` after that. The
//!    band's half-width is `raise_deviations`, or the series' usual 99th
//!    percentile of `|z|` ([`TAIL_QUANTILE`]) if that is wider, so a
//!    series with routine spikes does not page on each; a single sample
//!    [`RAISE_NOW`] times past the band raises at once; a series that
//!    usually varies and repeats one value [`FLAT_SAMPLES`] times raises
//!    [`Cause::Flat`].
//! 4. **Learning.** The level, the global spread and the buckets move
//!    towards the sample, its residual clipped at the band's edge so that a
//!    fault is learnt slowly rather than at once.
//!
//! The score is `z²/(z² + raise²)` or the CUSUM's `s/(s + threshold)`,
//! whichever is higher: 0.5 at the threshold, towards 1 beyond it.

use lanegate_common::config::MonitorConfig;
use serde::Serialize;

use super::season::{MAD_TO_SIGMA, Profile};

/// A gap of more than this many measured intervals breaks the run of
/// consecutive samples.
pub const GAP_INTERVALS: f64 = 8.0;

/// Largest value magnitude a model takes; beyond it a sample is ignored,
/// so that sums and squares of residuals stay finite.
pub const VALUE_ABS_MAX: f64 = 1e30;

/// A single sample this many times past the band raises at once (a spike
/// does not wait for `raise_after_samples`).
pub const RAISE_NOW: f64 = 3.0;

/// Identical values in a row that raise [`Cause::Flat`] on a series that
/// usually varies (repeats fewer than 5 % of its values).
pub const FLAT_SAMPLES: u32 = 30;

/// The quantile of `|z|` tracked as the series' usual tail.
pub const TAIL_QUANTILE: f64 = 0.99;
/// How fast the tail estimate moves (per sample, multiplicative).
pub const TAIL_RATE: f64 = 0.1;
/// Out of band starts at this multiple of the usual tail, if that is past
/// `raise_deviations`.
pub const TAIL_MARGIN: f64 = 1.0;

/// What one sample did to a series.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Observation {
    /// The series' state after the sample.
    pub status: Status,
    /// What the model expected, before learning from the sample.
    pub expected: f64,
    /// The band a sample must leave to count as out of band.
    pub band: Band,
    /// `(value - expected) / spread`, signed.
    pub deviations: f64,
    /// How anomalous the sample is, 0 to 1 (0.5 at the threshold; 0 while
    /// learning and for ignored samples).
    pub score: f64,
    /// An alert raised or cleared by this sample.
    pub transition: Option<Transition>,
}

/// A series' state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Fewer than `learning_samples_min` samples: no alerts yet.
    Learning,
    /// Modelled, no alert.
    Normal,
    /// An alert is raised.
    Alerting,
    /// The sample was not used: its value was not finite, or its time did
    /// not move forward. Nothing changed.
    Ignored,
}

/// The expected range of a sample.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Band {
    /// `expected - raise_deviations × spread`.
    pub low: f64,
    /// `expected + raise_deviations × spread`.
    pub high: f64,
}

/// Why an alert was raised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Outside the band for `raise_after_samples` in a row.
    Band,
    /// The CUSUM of the deviations passed its threshold: a step or a drift.
    Shift,
    /// A series that usually varies repeated one value [`FLAT_SAMPLES`]
    /// times: a stuck counter or a dead exporter.
    Flat,
}

/// Whether an alert began or ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Edge {
    /// The sample raised an alert.
    Raised,
    /// The sample cleared the alert.
    Cleared,
}

/// An alert raised or cleared, with what its message needs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Transition {
    /// Raised or cleared.
    pub edge: Edge,
    /// Why it was raised (kept on the clear).
    pub cause: Cause,
    /// The sample's time, Unix seconds.
    pub at_unix_s: i64,
    /// When the alert was raised (equal to `at_unix_s` when raised).
    pub since_unix_s: i64,
    /// The series' value at the sample.
    pub value: f64,
    /// What the model expected.
    pub expected: f64,
    /// The band.
    pub band: Band,
    /// The sample's score.
    pub score: f64,
    /// The highest score while the alert was raised (the sample's own on
    /// raising).
    pub peak_score: f64,
    /// Whether the series was above its band (or shifted up) when raised.
    pub above: bool,
}

/// The configuration a model needs, as numbers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Params {
    pub bucket_samples_min: u32,
    pub season_cycles: u32,
    pub season_bucket_s: f64,
    pub level_memory_s: f64,
    pub default_interval_s: f64,
    pub learning_samples_min: u64,
    pub raise: f64,
    pub raise_after: u32,
    pub clear: f64,
    pub clear_after: u32,
    pub suppress: u32,
    pub cusum_k: f64,
    pub cusum_h: f64,
    pub horizon_s: u32,
    pub step_s: u32,
    pub upper_z: f64,
    pub tail_margin: f64,
    pub raise_now: f64,
    pub tail_quantile: f64,
    pub tail_rate: f64,
    pub warn_share: f64,
    pub warn_lead_s: u32,
}

impl Params {
    pub fn new(cfg: &MonitorConfig) -> Self {
        let tenths = |v: u32| f64::from(v) / 10.0;
        Self {
            bucket_samples_min: cfg.season_bucket_samples_min.max(1),
            season_cycles: cfg.season_memory_cycles.max(1),
            season_bucket_s: f64::from(cfg.season_bucket_s.max(1)),
            level_memory_s: f64::from(cfg.level_memory_s.max(1)),
            default_interval_s: (cfg.sample_interval_ms.max(1) as f64) / 1000.0,
            learning_samples_min: u64::from(cfg.learning_samples_min),
            raise: tenths(cfg.raise_deviations_tenths).max(0.1),
            raise_after: cfg.raise_after_samples.max(1),
            clear: tenths(cfg.clear_deviations_tenths),
            clear_after: cfg.clear_after_samples.max(1),
            suppress: cfg.suppress_after_clear_samples,
            cusum_k: tenths(cfg.cusum_drift_tenths),
            cusum_h: tenths(cfg.cusum_threshold_tenths).max(0.1),
            horizon_s: cfg.forecast_horizon_s.max(1),
            step_s: cfg.forecast_step_s.max(1),
            tail_margin: TAIL_MARGIN,
            raise_now: RAISE_NOW,
            tail_quantile: TAIL_QUANTILE,
            tail_rate: TAIL_RATE,
            upper_z: normal_quantile(f64::from(cfg.forecast_upper_percent.clamp(50, 99)) / 100.0),
            warn_share: f64::from(cfg.forecast_warn_capacity_percent) / 100.0,
            warn_lead_s: cfg.forecast_warn_lead_s,
        }
    }
}

/// One series' online model. Build one per series with
/// [`SeriesModel::new`], feed it every sample with
/// [`observe`](SeriesModel::observe).
#[derive(Clone, Debug)]
pub struct SeriesModel {
    pub(crate) p: Params,
    pub(crate) profile: Profile,
    /// What persists: see [`super::persist`].
    pub(crate) learnt: Learnt,
    /// What does not: the runs, the CUSUM and the alert.
    watch: Watch,
}

/// The learnt part of a model, saved across restarts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Learnt {
    pub level: f64,
    /// Global mean absolute residual.
    pub abs_dev: f64,
    /// Measured interval between samples, in s (0 until two samples).
    pub interval_s: f64,
    pub last_unix_s: Option<i64>,
    pub samples: u64,
    /// Running `TAIL_QUANTILE` quantile of `|z|`.
    pub tail: f64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Watch {
    last_value: f64,
    /// Share of samples that repeat the one before (slow average).
    repeats: f64,
    /// `repeats` when the current run of repeats began.
    repeats_before_run: f64,
    run_flat: u32,
    run_out: u32,
    run_in: u32,
    cusum_hi: f64,
    cusum_lo: f64,
    quiet_left: u32,
    alert: Option<Raised>,
}

#[derive(Clone, Copy, Debug)]
struct Raised {
    cause: Cause,
    since_unix_s: i64,
    peak_score: f64,
    above: bool,
}

/// What the model expects at a time: the value and its spread.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Expected {
    pub value: f64,
    pub spread: f64,
}

impl SeriesModel {
    /// An empty model, learning, with `cfg`'s settings (which must have
    /// passed validation; out-of-range values are clamped, never a panic).
    pub fn new(cfg: &MonitorConfig) -> Self {
        Self {
            p: Params::new(cfg),
            profile: Profile::new(cfg),
            learnt: Learnt {
                level: 0.0,
                abs_dev: 0.0,
                interval_s: 0.0,
                last_unix_s: None,
                samples: 0,
                tail: 1.0,
            },
            watch: Watch {
                repeats: 1.0,
                ..Watch::default()
            },
        }
    }

    /// Samples learnt from.
    pub fn samples(&self) -> u64 {
        self.learnt.samples
    }

    /// Whether the model is still learning (and so never alerts).
    pub fn is_learning(&self) -> bool {
        self.learnt.samples < self.p.learning_samples_min
    }

    /// Whether an alert is raised.
    pub fn is_alerting(&self) -> bool {
        self.watch.alert.is_some()
    }

    /// The measured interval between samples, in s (the configured one
    /// until two samples have been seen).
    pub fn interval_s(&self) -> f64 {
        if self.learnt.interval_s > 0.0 {
            self.learnt.interval_s
        } else {
            self.p.default_interval_s
        }
    }

    /// Takes the sample `value` at `unix_time_s` (wall-clock seconds; the
    /// time of week comes from it). Never panics: a non-finite value or a
    /// time that does not move forward is [`Status::Ignored`].
    pub fn observe(&mut self, unix_time_s: i64, value: f64) -> Observation {
        let l = self.learnt;
        if !value.is_finite()
            || value.abs() > VALUE_ABS_MAX
            || l.last_unix_s.is_some_and(|last| unix_time_s <= last)
        {
            return self.ignored(unix_time_s);
        }
        if let Some(last) = l.last_unix_s {
            let dt = unix_time_s.saturating_sub(last) as f64;
            if l.interval_s <= 0.0 {
                self.learnt.interval_s = dt;
            } else if dt > GAP_INTERVALS * l.interval_s {
                self.gap();
            } else {
                self.learnt.interval_s += (dt - l.interval_s) / 16.0;
            }
        }
        if l.samples == 0 {
            self.learnt.level = value;
        }
        let slot = self.profile.slot(unix_time_s);
        let e = self.expect(&slot);
        let exp = self.expected_with(e.offset, e.spread);
        let r = value - exp.value;
        let z = r / exp.spread;
        let thr = self.threshold();
        let band = Band {
            low: exp.value - thr * exp.spread,
            high: exp.value + thr * exp.spread,
        };
        let learning = self.is_learning();
        let (score, transition) = if learning {
            (0.0, None)
        } else {
            self.detect(unix_time_s, value, exp.value, band, z, thr)
        };
        self.learn(&slot, e.offset, r, exp.spread, z, thr);
        self.learnt.last_unix_s = Some(unix_time_s);
        Observation {
            status: self.status(),
            expected: exp.value,
            band,
            deviations: z,
            score,
            transition,
        }
    }

    /// The state without a sample.
    pub fn status(&self) -> Status {
        if self.is_learning() {
            Status::Learning
        } else if self.watch.alert.is_some() {
            Status::Alerting
        } else {
            Status::Normal
        }
    }

    /// What the model expects at `unix_time_s` from what it knows now.
    pub(crate) fn expected_at(&self, unix_time_s: i64) -> Expected {
        let slot = self.profile.slot(unix_time_s);
        let e = self.expect(&slot);
        self.expected_with(e.offset, e.spread)
    }

    fn expect(&self, slot: &super::season::Slot) -> super::season::Expect {
        let per_visit = self.p.season_bucket_s / self.interval_s();
        self.profile.expect(
            slot,
            self.p.bucket_samples_min,
            per_visit,
            self.p.season_cycles,
        )
    }

    fn expected_with(&self, offset: f64, bucket_spread: Option<f64>) -> Expected {
        let l = &self.learnt;
        let value = l.level + offset;
        let global = l.abs_dev * MAD_TO_SIGMA;
        // A quiet bucket may not claim a spread far below the series' own;
        // a flat series keeps a spread relative to its size, so that a
        // change of one part in a million is not an anomaly.
        let floor = (0.25 * global).max(1e-6 * value.abs()).max(1e-9);
        Expected {
            value,
            spread: bucket_spread.unwrap_or(global).max(floor),
        }
    }

    fn detect(
        &mut self,
        at: i64,
        value: f64,
        expected: f64,
        band: Band,
        z: f64,
        thr: f64,
    ) -> (f64, Option<Transition>) {
        let p = self.p;
        let w = &mut self.watch;
        let repeated = value == w.last_value;
        w.run_flat = if repeated { w.run_flat + 1 } else { 0 };
        if w.run_flat <= 1 {
            w.repeats_before_run = w.repeats;
        }
        w.repeats += (f64::from(u8::from(repeated)) - w.repeats) / 512.0;
        w.last_value = value;
        // Only a series that rarely repeats a value is stuck when it does.
        let flat = w.run_flat + 1 >= FLAT_SAMPLES
            && w.repeats_before_run < 0.05
            && self.learnt.abs_dev > 1e-6 * expected.abs();
        let a = z.abs();
        w.run_out = if a >= thr { w.run_out + 1 } else { 0 };
        w.run_in = if a <= p.clear * thr / p.raise {
            w.run_in + 1
        } else {
            0
        };
        // The CUSUM reads deviations in units of the band, so that a series
        // with a wide usual tail does not sum its routine spikes.
        let zc = (z * p.raise / thr).clamp(-p.raise, p.raise);
        w.cusum_hi = (w.cusum_hi + zc - p.cusum_k).max(0.0);
        w.cusum_lo = (w.cusum_lo - zc - p.cusum_k).max(0.0);
        let cusum = w.cusum_hi.max(w.cusum_lo);
        let score = (z * z / (z * z + thr * thr)).max(cusum / (cusum + p.cusum_h));
        let score = if score.is_finite() { score } else { 1.0 };
        let score = if flat { score.max(0.5) } else { score };
        let mut t = Transition {
            edge: Edge::Raised,
            cause: Cause::Band,
            at_unix_s: at,
            since_unix_s: at,
            value,
            expected,
            band,
            score,
            peak_score: score,
            above: z > 0.0,
        };
        match &mut w.alert {
            Some(raised) => {
                raised.peak_score = raised.peak_score.max(score);
                w.cusum_hi = 0.0;
                w.cusum_lo = 0.0;
                if w.run_in < p.clear_after || (raised.cause == Cause::Flat && flat) {
                    return (score, None);
                }
                t.edge = Edge::Cleared;
                t.cause = raised.cause;
                t.since_unix_s = raised.since_unix_s;
                t.peak_score = raised.peak_score;
                t.above = raised.above;
                w.alert = None;
                w.quiet_left = p.suppress;
                (score, Some(t))
            }
            None if w.quiet_left > 0 => {
                w.quiet_left -= 1;
                (score, None)
            }
            None => {
                if w.run_out >= p.raise_after || a >= p.raise_now * thr {
                    t.cause = Cause::Band;
                } else if cusum >= p.cusum_h {
                    t.cause = Cause::Shift;
                    t.above = w.cusum_hi >= w.cusum_lo;
                } else if flat {
                    t.cause = Cause::Flat;
                } else {
                    return (score, None);
                }
                w.cusum_hi = 0.0;
                w.cusum_lo = 0.0;
                w.alert = Some(Raised {
                    cause: t.cause,
                    since_unix_s: at,
                    peak_score: score,
                    above: t.above,
                });
                (score, Some(t))
            }
        }
    }

    fn learn(
        &mut self,
        slot: &super::season::Slot,
        offset: f64,
        r: f64,
        spread: f64,
        z: f64,
        thr: f64,
    ) {
        let p = self.p;
        let learning = self.is_learning();
        let l = &mut self.learnt;
        // Clip at the band's edge once the model knows a spread.
        let rc = if learning || l.abs_dev == 0.0 {
            r
        } else {
            r.clamp(-thr * spread, thr * spread)
        };
        // The tail of |z|, once the spread means something.
        if l.samples * 2 >= p.learning_samples_min {
            let up = z.abs().min(1e3) > l.tail;
            let step = if up {
                p.tail_rate * p.tail_quantile
            } else {
                -p.tail_rate * (1.0 - p.tail_quantile)
            };
            l.tail = (l.tail * step.exp()).clamp(0.1, 1e3);
        }
        let interval = if l.interval_s > 0.0 {
            l.interval_s
        } else {
            p.default_interval_s
        };
        let n = l.samples as f64 + 1.0;
        let alpha = (interval / p.level_memory_s).max(1.0 / n).min(1.0);
        let before = l.level;
        l.level += alpha * rc;
        l.abs_dev += alpha * (rc.abs() - l.abs_dev);
        let deviation = before + offset + rc - l.level;
        let per_visit = p.season_bucket_s / interval;
        self.profile
            .learn(slot, deviation, rc.abs(), per_visit, p.season_cycles);
        l.samples += 1;
    }

    /// How many deviations out of band starts: `raise_deviations`, or more
    /// for a series whose usual tail is wider than a Gaussian's.
    fn threshold(&self) -> f64 {
        self.p.raise.max(self.p.tail_margin * self.learnt.tail)
    }

    fn gap(&mut self) {
        let w = &mut self.watch;
        w.run_flat = 0;
        w.run_out = 0;
        w.run_in = 0;
        w.cusum_hi = 0.0;
        w.cusum_lo = 0.0;
    }

    fn ignored(&self, at: i64) -> Observation {
        let e = self.expected_at(at);
        let thr = self.threshold();
        Observation {
            status: Status::Ignored,
            expected: e.value,
            band: Band {
                low: e.value - thr * e.spread,
                high: e.value + thr * e.spread,
            },
            deviations: 0.0,
            score: 0.0,
            transition: None,
        }
    }
}

/// The standard normal quantile for `p` in (0, 1) (Acklam's rational
/// approximation, relative error below 1.2e-9).
pub(crate) fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> MonitorConfig {
        MonitorConfig::default()
    }

    /// A quiet series with a little deterministic noise around `base`.
    fn noisy(i: i64, base: f64) -> f64 {
        base + ((i * 7919) % 11) as f64 - 5.0
    }

    #[test]
    fn learns_first_and_never_alerts_while_learning() {
        let c = cfg();
        let mut m = SeriesModel::new(&c);
        for i in 0..i64::from(c.learning_samples_min) {
            // Wild values while learning: no alert.
            let v = if i % 7 == 0 { 1e6 } else { noisy(i, 100.0) };
            let o = m.observe(i * 10, v);
            assert_eq!(o.transition, None);
            assert_eq!(o.score, 0.0);
            if i + 1 < i64::from(c.learning_samples_min) {
                assert_eq!(o.status, Status::Learning);
            }
        }
        assert!(!m.is_learning());
    }

    #[test]
    fn a_sustained_excursion_raises_once_and_clears_with_hysteresis() {
        let c = cfg();
        let mut m = SeriesModel::new(&c);
        let mut t = 0;
        for i in 0..2_000 {
            t += 10;
            m.observe(t, noisy(i, 100.0));
        }
        assert_eq!(m.status(), Status::Normal);
        let mut raised = Vec::new();
        for i in 0..20 {
            t += 10;
            if let Some(tr) = m.observe(t, noisy(i, 125.0)).transition {
                raised.push((i, tr));
            }
        }
        assert_eq!(raised.len(), 1, "{raised:?}");
        let (i, tr) = raised[0];
        assert_eq!(i + 1, i64::from(c.raise_after_samples));
        assert_eq!(
            (tr.edge, tr.cause, tr.above),
            (Edge::Raised, Cause::Band, true)
        );
        assert!(tr.value > tr.band.high && tr.score > 0.5);
        assert!((tr.expected - 100.0).abs() < 5.0, "{tr:?}");
        // Back to normal: clears after clear_after_samples in band.
        let mut cleared = None;
        for i in 0..20 {
            t += 10;
            if let Some(tr) = m.observe(t, noisy(i, 100.0)).transition {
                cleared = Some((i, tr));
                break;
            }
        }
        let (i, tr) = cleared.expect("cleared");
        assert_eq!(i + 1, i64::from(c.clear_after_samples));
        assert_eq!(tr.edge, Edge::Cleared);
        assert_eq!(tr.since_unix_s, raised[0].1.at_unix_s);
        assert!(tr.peak_score >= raised[0].1.score);
    }

    #[test]
    fn a_small_step_is_found_by_the_cusum() {
        let mut m = SeriesModel::new(&cfg());
        let mut t = 0;
        // A day and more, so every hour's bucket has settled.
        for i in 0..10_000 {
            t += 10;
            m.observe(t, noisy(i, 100.0));
        }
        // A step of about 2.6 spreads: never two samples in a row outside the
        // band, found by the sum.
        let mut found = None;
        for i in 0..200 {
            t += 10;
            if let Some(tr) = m.observe(t, noisy(i, 109.0)).transition {
                found = Some((i, tr));
                break;
            }
        }
        let (i, tr) = found.expect("the step is found");
        assert_eq!((tr.cause, tr.above), (Cause::Shift, true));
        assert!(i < 60, "found after {i} samples");
    }

    #[test]
    fn bad_values_and_times_are_ignored_and_gaps_do_not_panic() {
        let mut m = SeriesModel::new(&cfg());
        for i in 0..500 {
            m.observe(i * 10, noisy(i, 50.0));
        }
        let n = m.samples();
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(m.observe(6_000, v).status, Status::Ignored);
        }
        assert_eq!(m.observe(4_990, 50.0).status, Status::Ignored, "backwards");
        assert_eq!(m.observe(4_990, 50.0).status, Status::Ignored, "repeated");
        assert_eq!(m.samples(), n);
        // A day's gap, then extreme but finite values: no panic, finite
        // output.
        let o = m.observe(100_000, 50.0);
        assert_eq!(o.status, Status::Normal);
        assert_eq!(m.observe(100_005, f64::MAX).status, Status::Ignored);
        for (i, v) in [1e29, -1e29, 0.0, 1e29].into_iter().enumerate() {
            let o = m.observe(100_010 + i as i64 * 10, v);
            assert!((0.0..=1.0).contains(&o.score), "{o:?}");
        }
        assert!(m.observe(i64::MAX, 1.0).score <= 1.0);
        assert_eq!(m.observe(i64::MIN, 1.0).status, Status::Ignored);
    }

    #[test]
    fn the_interval_is_measured_from_the_timestamps() {
        let mut m = SeriesModel::new(&cfg());
        assert_eq!(m.interval_s(), 10.0, "configured until measured");
        for i in 0..100 {
            m.observe(i * 300, 1.0);
        }
        assert!((m.interval_s() - 300.0).abs() < 1e-9);
    }

    #[test]
    fn normal_quantiles() {
        assert!(normal_quantile(0.5).abs() < 1e-9);
        assert!((normal_quantile(0.95) - 1.644_853_6).abs() < 1e-6);
        assert!((normal_quantile(0.99) - 2.326_347_9).abs() < 1e-6);
        assert!((normal_quantile(0.001) + 3.090_232_3).abs() < 1e-6);
    }
}
