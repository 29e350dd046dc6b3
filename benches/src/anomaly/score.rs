//! The Numenta Anomaly Benchmark's scoring, standard profile, as
//! `/work/shared/data/nab/README.md` restates it: a detection early in a
//! labelled window earns up to `A_TP`, a window without one costs `A_FN`,
//! a detection outside every window costs up to `A_FP` (less just after a
//! window), and detections in the first 15 % of a file (at most 750 rows)
//! are ignored (15 %: [`probation_rows`]). Scores are summed over files and normalized between a
//! detector that never detects (0) and one that detects every window at its
//! first row (100).

/// The standard profile's weights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Profile {
    /// Weight of a true positive.
    pub a_tp: f64,
    /// Weight of a false positive.
    pub a_fp: f64,
    /// Weight of a missed window.
    pub a_fn: f64,
}

/// NAB's standard profile.
pub const STANDARD: Profile = Profile {
    a_tp: 1.0,
    a_fp: 0.11,
    a_fn: 1.0,
};

/// Most rows in probation.
pub const PROBATION_ROWS_MAX: usize = 750;

/// One file's result.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FileScore {
    /// The detector's raw score.
    pub raw: f64,
    /// A detector that never detects.
    pub null: f64,
    /// A detector that detects each window at its first row.
    pub perfect: f64,
    /// Labelled windows.
    pub windows: usize,
    /// Windows with a detection.
    pub detected: usize,
    /// Detections outside every window, after probation.
    pub false_alarms: usize,
}

impl FileScore {
    /// Adds another file's (or category's) score to this one.
    pub fn add(&mut self, o: &FileScore) {
        self.raw += o.raw;
        self.null += o.null;
        self.perfect += o.perfect;
        self.windows += o.windows;
        self.detected += o.detected;
        self.false_alarms += o.false_alarms;
    }

    /// `100 · (raw − null) / (perfect − null)`; 0 for no windows at all
    /// (where the only possible scores are 0 and below, reported as such
    /// against one window's weight).
    pub fn normalized(&self) -> f64 {
        let range = self.perfect - self.null;
        if range > 0.0 {
            100.0 * (self.raw - self.null) / range
        } else {
            100.0 * (self.raw - self.null)
        }
    }
}

/// `σ(y) = 2 / (1 + e^(5y)) − 1`: near 1 for early detections (y = −1),
/// 0 at a window's end, towards −1 long after it.
pub fn scaled_sigmoid(y: f64) -> f64 {
    if y > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * y).exp()) - 1.0
    }
}

/// Rows in probation for a file of `rows` rows.
pub fn probation_rows(rows: usize) -> usize {
    // floor(15 % of rows), as integers: 15 % is 3/20.
    (rows.saturating_mul(3) / 20).min(PROBATION_ROWS_MAX)
}

/// Row ranges `[first, last]` of the windows, from their times: the first
/// row at or after a window's start to the last at or before its end.
/// Windows that hold no row are dropped.
pub fn window_rows(times: &[i64], windows: &[(i64, i64)]) -> Vec<(usize, usize)> {
    windows
        .iter()
        .filter_map(|&(start, end)| {
            let first = times.partition_point(|&t| t < start);
            let past = times.partition_point(|&t| t <= end);
            (past > first).then(|| (first, past - 1))
        })
        .collect()
}

/// Scores one file's detections (`alarms[i]`: the detector raised at row
/// `i`) against its windows (row ranges, sorted, disjoint).
pub fn score_file(alarms: &[bool], windows: &[(usize, usize)], profile: &Profile) -> FileScore {
    let probation = probation_rows(alarms.len());
    let mut s = FileScore {
        windows: windows.len(),
        null: -profile.a_fn * windows.len() as f64,
        perfect: profile.a_tp * scaled_sigmoid(-1.0) * windows.len() as f64,
        ..FileScore::default()
    };
    let mut hit = vec![false; windows.len()];
    for (i, _) in alarms.iter().enumerate().filter(|(_, a)| **a) {
        if i < probation {
            continue;
        }
        match windows.iter().position(|&(a, b)| (a..=b).contains(&i)) {
            Some(w) => {
                if !hit[w] {
                    hit[w] = true;
                    let (a, b) = windows[w];
                    let width = (b - a + 1) as f64;
                    let y = -((b - i + 1) as f64) / width;
                    s.raw += profile.a_tp * scaled_sigmoid(y);
                }
            }
            None => {
                s.false_alarms += 1;
                let before = windows.iter().rev().find(|&&(_, b)| b < i);
                s.raw += match before {
                    Some(&(a, b)) => {
                        let width = (b - a + 1) as f64;
                        profile.a_fp * scaled_sigmoid((i - b) as f64 / width)
                    }
                    None => -profile.a_fp,
                };
            }
        }
    }
    s.detected = hit.iter().filter(|h| **h).count();
    s.raw -= profile.a_fn * (windows.len() - s.detected) as f64;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sigmoid_at_its_landmarks() {
        assert!((scaled_sigmoid(0.0)).abs() < 1e-12);
        assert!((scaled_sigmoid(-1.0) - 0.986_614_298).abs() < 1e-8);
        assert!((scaled_sigmoid(1.0) + 0.986_614_298).abs() < 1e-8);
        assert_eq!(scaled_sigmoid(3.5), -1.0);
        assert_eq!(probation_rows(1_000), 150);
        assert_eq!(probation_rows(10_000), 750);
    }

    #[test]
    fn windows_map_to_rows() {
        let times: Vec<i64> = (0..10).map(|i| i * 300).collect();
        assert_eq!(
            window_rows(&times, &[(600, 1_200), (1_250, 1_290), (2_000, 9_999)]),
            vec![(2, 4), (7, 9)]
        );
    }

    /// A 100-row file (probation 15 rows) with one window of rows 50-59, by
    /// hand.
    #[test]
    fn a_small_case_by_hand() {
        let w = [(50, 59)];
        let mut alarms = vec![false; 100];
        let p = STANDARD;
        // No detection: the null score.
        let s = score_file(&alarms, &w, &p);
        assert_eq!((s.raw, s.null, s.detected), (-1.0, -1.0, 0));
        assert!((s.perfect - 0.986_614_298).abs() < 1e-8);
        assert_eq!(s.normalized(), 0.0);
        // At row 55: y = -(59 - 55 + 1)/10 = -0.5, σ = 2/(1+e^-2.5) - 1.
        alarms[55] = true;
        // A second detection in the window earns nothing.
        alarms[57] = true;
        // Row 10 is in probation: ignored.
        alarms[10] = true;
        // Row 20: before any window, the full -0.11.
        alarms[20] = true;
        // Row 64: 5 rows after the window's end, y = 0.5.
        alarms[64] = true;
        let s = score_file(&alarms, &w, &p);
        let tp = 2.0 / (1.0 + (-2.5f64).exp()) - 1.0;
        let fp_after = 0.11 * (2.0 / (1.0 + 2.5f64.exp()) - 1.0);
        let want = tp - 0.11 + fp_after;
        assert!((s.raw - want).abs() < 1e-12, "{} vs {want}", s.raw);
        assert_eq!((s.detected, s.false_alarms), (1, 2));
        let n = s.normalized();
        assert!((n - 100.0 * (want + 1.0) / (0.986_614_298 + 1.0)).abs() < 1e-6);
    }
}
