//! Medians and ratios over repeated runs, where any figure may be missing
//! (a server that could not start, a run that lost messages).

/// The median of the present values (mean of the middle two for an even
/// count); `None` if there are none. NaNs are ignored.
pub fn median(values: &[Option<f64>]) -> Option<f64> {
    let mut v: Vec<f64> = values
        .iter()
        .flatten()
        .copied()
        .filter(|x| !x.is_nan())
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// `a ÷ b`, if both are present, finite, and `b` is above zero.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 && a.is_finite() && b.is_finite() => Some(a / b),
        _ => None,
    }
}

/// The order of candidates in interleaved round `round`: A B C, then
/// B C A, then C A B, so each candidate runs first, second and last equally
/// often and a drifting neighbour load hits them alike.
pub fn rotation(candidates: usize, round: usize) -> Vec<usize> {
    (0..candidates).map(|i| (i + round) % candidates).collect()
}
