//! The seasonal profile: what a series usually is, above or below its
//! level, at this time of the week, and how far it usually strays there.
//!
//! Two fixed arrays of buckets, allocated once from the configuration and
//! never grown: one per time-of-week bucket (168 of an hour) and one per
//! time-of-day bucket (24). A weekly bucket is seen once a week, so a new
//! model falls back to the daily bucket for this hour, which is seen every
//! day, and a new daily bucket to no offset at all (the global level).
//! Each bucket holds an offset from the level and a robust spread (a mean
//! absolute residual, scaled to a Gaussian σ), averaged over the samples of
//! its last `season_memory_cycles` visits. Between bucket centres the
//! offset is interpolated, so a profile of hours still follows a series
//! that rises through the hour.

use lanegate_common::config::{DAY_S, MonitorConfig, WEEK_S};

/// `E|x| = σ·√(2/π)` for a Gaussian: a mean absolute residual times this is
/// a σ.
pub(crate) const MAD_TO_SIGMA: f64 = 1.253_314_137;

/// One bucket's statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Bucket {
    /// Mean of `value - level` over the bucket's recent samples.
    pub offset: f64,
    /// Mean absolute residual of the model's prediction in this bucket.
    pub abs_dev: f64,
    /// Samples seen (saturating).
    pub samples: u32,
}

/// Both profiles of one series.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Profile {
    pub bucket_s: u32,
    pub week: Box<[Bucket]>,
    pub day: Box<[Bucket]>,
}

/// Where a time falls: the bucket of each profile and the interpolation
/// between the day bucket and its neighbour.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Slot {
    week: usize,
    day: usize,
    /// The other weekly bucket for interpolation and the weight it gets.
    week_next: usize,
    day_next: usize,
    frac: f64,
}

/// What the profile expects at a slot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Expect {
    /// Offset from the level.
    pub offset: f64,
    /// The σ-scaled spread of the bucket that answered, if one did.
    pub spread: Option<f64>,
}

impl Profile {
    pub fn new(cfg: &MonitorConfig) -> Self {
        Self {
            bucket_s: cfg.season_bucket_s,
            week: vec![Bucket::default(); cfg.week_buckets()].into_boxed_slice(),
            day: vec![Bucket::default(); cfg.day_buckets()].into_boxed_slice(),
        }
    }

    /// The buckets of `unix_time_s` (UTC; the week starts on a Thursday,
    /// as the epoch does, which changes nothing).
    pub fn slot(&self, unix_time_s: i64) -> Slot {
        let b = i64::from(self.bucket_s);
        let tw = unix_time_s.rem_euclid(i64::from(WEEK_S));
        let td = unix_time_s.rem_euclid(i64::from(DAY_S));
        let nw = self.week.len();
        let nd = self.day.len();
        // Position against bucket centres: frac 0 at a centre, toward the
        // next bucket in the second half, the previous in the first.
        let within = (tw % b) as f64 / b as f64 - 0.5;
        // Both below a week's seconds: they fit any usize.
        let week = usize::try_from(tw / b).unwrap_or(0) % nw;
        let day = usize::try_from(td / b).unwrap_or(0) % nd;
        let (week_next, day_next, frac) = if within >= 0.0 {
            ((week + 1) % nw, (day + 1) % nd, within)
        } else {
            ((week + nw - 1) % nw, (day + nd - 1) % nd, -within)
        };
        Slot {
            week,
            day,
            week_next,
            day_next,
            frac,
        }
    }

    /// The offset and spread expected at `slot`: the daily bucket's once it
    /// has `min` samples, blended into the weekly bucket's as that one
    /// fills (all weekly after `cycles` visits of `per_visit` samples), else
    /// none (the global level and spread answer).
    pub fn expect(&self, slot: &Slot, min: u32, per_visit: f64, cycles: u32) -> Expect {
        let pick = |buckets: &[Bucket], i: usize, j: usize| -> Option<(f64, f64, u32)> {
            let a = buckets[i];
            if a.samples < min {
                return None;
            }
            let b = buckets[j];
            let offset = if b.samples >= min {
                a.offset + (b.offset - a.offset) * slot.frac
            } else {
                a.offset
            };
            Some((offset, a.abs_dev * MAD_TO_SIGMA, a.samples))
        };
        let week = pick(&self.week, slot.week, slot.week_next);
        let day = pick(&self.day, slot.day, slot.day_next);
        let (offset, spread) = match (week, day) {
            (Some((wo, ws, n)), Some((d_o, ds, _))) => {
                let w = (f64::from(n) / (per_visit * f64::from(cycles)).max(1.0)).min(1.0);
                (d_o + w * (wo - d_o), Some(ds + w * (ws - ds)))
            }
            (Some((o, s, _)), None) | (None, Some((o, s, _))) => (o, Some(s)),
            (None, None) => (0.0, None),
        };
        Expect { offset, spread }
    }

    /// Folds one sample into both profiles. `deviation` is `value - level`
    /// (clipped by the caller), `abs_residual` the size of the prediction's
    /// miss (clipped too); `per_visit` how many samples one visit of a
    /// bucket holds, `cycles` how many visits a bucket averages over.
    pub fn learn(
        &mut self,
        slot: &Slot,
        deviation: f64,
        abs_residual: f64,
        per_visit: f64,
        cycles: u32,
    ) {
        let cap = (per_visit * f64::from(cycles)).max(1.0);
        for b in [&mut self.week[slot.week], &mut self.day[slot.day]] {
            b.samples = b.samples.saturating_add(1);
            let w = 1.0 / f64::from(b.samples).min(cap);
            b.offset += w * (deviation - b.offset);
            b.abs_dev += w * (abs_residual - b.abs_dev);
        }
    }

    /// The profile's state, checked: every number finite, spreads not
    /// negative. Used after decoding.
    pub fn is_sane(&self) -> bool {
        self.week
            .iter()
            .chain(self.day.iter())
            .all(|b| b.offset.is_finite() && b.abs_dev.is_finite() && b.abs_dev >= 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        Profile::new(&MonitorConfig::default())
    }

    #[test]
    fn slots_wrap_by_week_and_day() {
        let p = profile();
        let s = p.slot(0);
        assert_eq!((s.week, s.day), (0, 0));
        let s = p.slot(3 * 86_400 + 5 * 3_600 + 1_800);
        assert_eq!((s.week, s.day), (77, 5));
        assert_eq!(s.frac, 0.0, "the centre of a bucket");
        let s = p.slot(-1);
        assert_eq!((s.week, s.day), (167, 23));
        assert_eq!((s.week_next, s.day_next), (0, 0), "past the centre: next");
        let s = p.slot(10);
        assert_eq!((s.week_next, s.day_next), (167, 23), "before it: previous");
    }

    #[test]
    fn the_weekly_bucket_answers_once_filled_else_the_daily_else_none() {
        let mut p = profile();
        let t = 1_800; // centre of bucket 0
        let s = p.slot(t);
        assert_eq!(p.expect(&s, 3, 12.0, 4).spread, None);
        for _ in 0..3 {
            p.learn(&p.slot(t + 86_400), 10.0, 1.0, 12.0, 4);
        }
        // Day bucket 0 has 3 samples, week bucket 0 none (they went to
        // week bucket 24).
        let e = p.expect(&s, 3, 12.0, 4);
        assert_eq!(e.offset, 10.0);
        assert!((e.spread.unwrap() - MAD_TO_SIGMA).abs() < 1e-12);
        for _ in 0..48 {
            p.learn(&s, -4.0, 2.0, 12.0, 4);
        }
        // Four visits of 12: the weekly bucket alone.
        assert!((p.expect(&s, 3, 12.0, 4).offset + 4.0).abs() < 1e-9);
    }

    #[test]
    fn offsets_interpolate_between_bucket_centres() {
        let mut p = profile();
        for _ in 0..3 {
            p.learn(&p.slot(1_800), 0.0, 1.0, 12.0, 4);
            p.learn(&p.slot(5_400), 10.0, 1.0, 12.0, 4);
        }
        let e = p.expect(&p.slot(3_600), 3, 12.0, 4);
        assert!((e.offset - 5.0).abs() < 1e-9, "{e:?}");
        let e = p.expect(&p.slot(2_700), 3, 12.0, 4);
        assert!((e.offset - 2.5).abs() < 1e-9, "{e:?}");
    }
}
