//! Synthetic game traffic with labelled faults, to test the detector on:
//! players online with a daily cycle (quiet mornings, an evening peak), a
//! weekly one (busier weekends), a scheduled event every Saturday evening
//! (a surge that is normal, and learnt as such), Poisson-like noise, and
//! faults of six kinds, each with its window. Deterministic from a seed
//! (SplitMix64, Box-Muller): same seed, same trace.

use super::model::SeriesModel;

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// One sample at 2.5 × the value.
    Spike,
    /// Players lost: the value falls to 30 % for 5 minutes.
    Drop,
    /// A step of +30 % for 3 hours.
    Step,
    /// A slow drift, up to +60 % over 4 hours.
    Drift,
    /// The value stuck at one reading for 30 minutes (a dead exporter).
    Flatline,
    /// The noise five times wider for an hour.
    Variance,
}

impl FaultKind {
    /// Every kind, in the order faults cycle through them.
    pub const ALL: [FaultKind; 6] = [
        FaultKind::Spike,
        FaultKind::Drop,
        FaultKind::Step,
        FaultKind::Drift,
        FaultKind::Flatline,
        FaultKind::Variance,
    ];

    /// How long the fault lasts, in s (a spike: one sample).
    pub fn duration_s(self, interval_s: i64) -> i64 {
        match self {
            FaultKind::Spike => interval_s,
            FaultKind::Drop => 300,
            FaultKind::Step => 3 * 3_600,
            FaultKind::Drift => 4 * 3_600,
            FaultKind::Flatline => 1_800,
            FaultKind::Variance => 3_600,
        }
    }
}

/// A labelled fault: its kind and window `[start, end)`, Unix seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// What it is.
    pub kind: FaultKind,
    /// First second.
    pub start_unix_s: i64,
    /// First second after it.
    pub end_unix_s: i64,
}

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrafficSpec {
    /// The PRNG's seed.
    pub seed: u64,
    /// The first sample's time.
    pub start_unix_s: i64,
    /// Between samples, in s.
    pub interval_s: i64,
    /// How many days.
    pub days: i64,
    /// Faults begin after this many days (before: clean, to learn on).
    pub clean_days: i64,
    /// Between fault starts, in s.
    pub fault_every_s: i64,
    /// Players at the evening peak of a weekday.
    pub peak_players: f64,
}

impl Default for TrafficSpec {
    /// Five weeks of 10 s samples (two clean), a fault every 13 hours, 5000
    /// players at peak.
    fn default() -> Self {
        Self {
            seed: 14,
            // Monday 2024-01-01 00:00 UTC.
            start_unix_s: 1_704_067_200,
            interval_s: 10,
            days: 35,
            clean_days: 14,
            fault_every_s: 13 * 3_600,
            peak_players: 5_000.0,
        }
    }
}

/// A generated trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// `(unix_time_s, players)`, one per sample.
    pub samples: Vec<(i64, f64)>,
    /// The faults, in time order.
    pub faults: Vec<Fault>,
}

/// SplitMix64: small, fast, and good enough for noise.
#[derive(Clone, Debug)]
pub struct SplitMix(u64);

impl SplitMix {
    /// From a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// Players expected at `t` without noise or faults: the daily and weekly
/// cycles and the Saturday event.
pub fn normal_players(spec: &TrafficSpec, t: i64) -> f64 {
    let hour = t.rem_euclid(86_400) as f64 / 3_600.0;
    // 0 (Sunday) to 6; the epoch was a Thursday.
    let dow = (t.div_euclid(86_400) + 4).rem_euclid(7);
    // Lowest at 08:00, highest at 20:00.
    let day = 0.5 - 0.5 * ((hour - 8.0) / 24.0 * std::f64::consts::TAU).cos();
    let week = if dow == 0 || dow == 6 { 1.3 } else { 1.0 };
    let event = if dow == 6 && (18.0..20.0).contains(&hour) {
        // Ramps in over ten minutes.
        1.0 + 0.4 * ((hour - 18.0) * 6.0).min(1.0)
    } else {
        1.0
    };
    spec.peak_players * (0.15 + 0.85 * day) * week * event
}

/// Generates a trace.
pub fn generate(spec: &TrafficSpec) -> Trace {
    let mut rng = SplitMix::new(spec.seed);
    let end = spec.start_unix_s + spec.days * 86_400;
    let mut faults = Vec::new();
    let mut t = spec.start_unix_s + spec.clean_days * 86_400;
    let mut k = 0;
    while t < end {
        // Start somewhere in the first hour of the slot, on a sample.
        let jitter = (rng.next_u64() % 360) as i64 * spec.interval_s;
        let start = t + jitter - (t + jitter - spec.start_unix_s) % spec.interval_s;
        let kind = FaultKind::ALL[k % FaultKind::ALL.len()];
        let stop = start + kind.duration_s(spec.interval_s);
        if stop < end {
            faults.push(Fault {
                kind,
                start_unix_s: start,
                end_unix_s: stop,
            });
        }
        t += spec.fault_every_s;
        k += 1;
    }
    let mut samples = Vec::new();
    let mut stuck = None;
    let mut t = spec.start_unix_s;
    while t < end {
        let base = normal_players(spec, t);
        let fault = faults
            .iter()
            .find(|f| (f.start_unix_s..f.end_unix_s).contains(&t));
        let mut noise_scale = 1.0;
        let mut v = base;
        match fault.map(|f| (f.kind, f)) {
            Some((FaultKind::Spike, _)) => v *= 2.5,
            Some((FaultKind::Drop, _)) => v *= 0.3,
            Some((FaultKind::Step, _)) => v *= 1.3,
            Some((FaultKind::Drift, f)) => {
                let x = (t - f.start_unix_s) as f64 / (f.end_unix_s - f.start_unix_s) as f64;
                v *= 1.0 + 0.6 * x;
            }
            Some((FaultKind::Variance, _)) => noise_scale = 5.0,
            Some((FaultKind::Flatline, _)) | None => {}
        }
        let sd = (v.sqrt() * 1.5 + 0.01 * v) * noise_scale;
        let mut v = (v + sd * rng.normal()).max(0.0).round();
        if fault.is_some_and(|f| f.kind == FaultKind::Flatline) {
            v = *stuck.get_or_insert(v);
        } else {
            stuck = None;
        }
        samples.push((t, v));
        t += spec.interval_s;
    }
    Trace { samples, faults }
}

/// How a detector did on one kind of fault.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct KindResult {
    /// Faults of the kind.
    pub faults: usize,
    /// Faults with an alert raised inside their window (or within
    /// [`GRACE_S`] after it).
    pub found: usize,
    /// Mean time from a found fault's start to its alert, in s.
    pub mean_delay_s: f64,
}

/// After a fault's window, how long an alert still counts as finding it.
pub const GRACE_S: i64 = 600;

/// Runs `model` over `trace`: per fault kind, recall and delay; overall,
/// the alerts raised after the clean days and how many of them fell in no
/// fault's window (false alarms).
pub fn evaluate(model: &mut SeriesModel, trace: &Trace, faults_from_unix_s: i64) -> Evaluation {
    let mut raises = Vec::new();
    for &(t, v) in &trace.samples {
        if let Some(tr) = model.observe(t, v).transition
            && tr.edge == super::model::Edge::Raised
            && t >= faults_from_unix_s
        {
            raises.push(t);
        }
    }
    let mut per_kind = [KindResult::default(); 6];
    for f in &trace.faults {
        let r = &mut per_kind[FaultKind::ALL
            .iter()
            .position(|k| *k == f.kind)
            .unwrap_or(0)];
        r.faults += 1;
        if let Some(&t) = raises
            .iter()
            .find(|&&t| t >= f.start_unix_s && t < f.end_unix_s + GRACE_S)
        {
            r.found += 1;
            r.mean_delay_s += (t - f.start_unix_s) as f64;
        }
    }
    for r in &mut per_kind {
        if r.found > 0 {
            r.mean_delay_s /= r.found as f64;
        }
    }
    let false_alarms = raises
        .iter()
        .filter(|&&t| {
            !trace
                .faults
                .iter()
                .any(|f| t >= f.start_unix_s && t < f.end_unix_s + GRACE_S)
        })
        .count();
    Evaluation {
        per_kind,
        alerts: raises.len(),
        false_alarms,
    }
}

/// A detector's result on a trace.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// Per [`FaultKind::ALL`] entry.
    pub per_kind: [KindResult; 6],
    /// Alerts raised after the clean days.
    pub alerts: usize,
    /// Of them, alerts in no fault's window.
    pub false_alarms: usize,
}

impl Evaluation {
    /// Alerts that found a fault, over all alerts (1 with none).
    pub fn precision(&self) -> f64 {
        if self.alerts == 0 {
            1.0
        } else {
            1.0 - self.false_alarms as f64 / self.alerts as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use lanegate_common::config::MonitorConfig;

    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_trace() {
        let spec = TrafficSpec {
            days: 16,
            ..TrafficSpec::default()
        };
        let a = generate(&spec);
        assert_eq!(a, generate(&spec));
        assert_ne!(
            a.samples,
            generate(&TrafficSpec { seed: 15, ..spec }).samples
        );
        assert_eq!(a.samples.len(), 16 * 8_640);
        assert_eq!(a.faults.len(), 4, "{:?}", a.faults);
        assert!(
            a.faults
                .iter()
                .all(|f| f.start_unix_s >= spec.start_unix_s + 14 * 86_400)
        );
        // Saturday's event is a surge above the weekend evening.
        let sat_19h = spec.start_unix_s + 5 * 86_400 + 19 * 3_600;
        assert!(
            normal_players(&spec, sat_19h) > 1.3 * normal_players(&spec, sat_19h - 86_400) * 1.2
        );
    }

    /// Precision, recall and delay per fault kind on five weeks of 10 s
    /// samples, with the gateway's default configuration. The floors are
    /// below what the detector does today (printed with `--nocapture`), so
    /// a broken detector fails here.
    #[test]
    fn faults_are_found_with_few_false_alarms() {
        let spec = TrafficSpec::default();
        let trace = generate(&spec);
        let mut m = SeriesModel::new(&MonitorConfig::default());
        let from = spec.start_unix_s + spec.clean_days * 86_400;
        let e = evaluate(&mut m, &trace, from);
        for (k, r) in FaultKind::ALL.iter().zip(&e.per_kind) {
            println!(
                "{k:?}: found {}/{}, mean delay {:.0} s",
                r.found, r.faults, r.mean_delay_s
            );
        }
        println!(
            "alerts {}, false alarms {}, precision {:.2}",
            e.alerts,
            e.false_alarms,
            e.precision()
        );
        let floor = |k: FaultKind, recall: f64, delay_s: f64| {
            let r = e.per_kind[FaultKind::ALL.iter().position(|x| *x == k).unwrap()];
            assert!(r.faults > 0);
            let got = r.found as f64 / r.faults as f64;
            assert!(got >= recall, "{k:?}: recall {got:.2} below {recall}");
            assert!(
                r.mean_delay_s <= delay_s,
                "{k:?}: delay {:.0} s",
                r.mean_delay_s
            );
        };
        // Measured: spikes 4/7 (the others fall in an alert's suppression
        // or inside a wide evening band), drops 7/7 in 9 s, steps 5/7 in
        // 20 min, drifts 5/6 in 1.9 h, flatlines 6/6 in 5 min, variance
        // 1/6: a wider noise around the right mean is this model's blind
        // spot.
        floor(FaultKind::Spike, 0.5, 30.0);
        floor(FaultKind::Drop, 0.8, 60.0);
        floor(FaultKind::Step, 0.6, 1_800.0);
        floor(FaultKind::Drift, 0.6, 9_000.0);
        floor(FaultKind::Flatline, 0.8, 600.0);
        floor(FaultKind::Variance, 0.15, 1_200.0);
        assert!(e.precision() >= 0.8, "precision {:.2}", e.precision());
    }
}
