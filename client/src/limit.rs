//! A client-side copy of the gateway's per-lane rate limit
//! (`docs/protocol.md` §8): GCRA admitting `burst` messages at once, then one
//! per `1 / rate_per_s`. A client can use it to know, before sending,
//! whether the gateway would admit a message; the bots use it to tell loss
//! from the limit apart from loss on the path.

use std::time::{Duration, Instant};

use lanegate_common::wire::LaneLimit;

/// One lane's limit, as the gateway applies it.
#[derive(Clone, Copy, Debug)]
pub struct LaneGcra {
    /// Time per message at the sustained rate; `None` for a zero-rate lane,
    /// which admits nothing.
    emission: Option<Duration>,
    /// How far ahead of the sustained rate a message may arrive.
    tolerance: Duration,
    /// Theoretical arrival time of the next message.
    tat: Option<Instant>,
}

impl LaneGcra {
    /// The limit `limit`, with a full burst available.
    pub fn new(limit: LaneLimit) -> Self {
        let emission = (limit.rate_per_s > 0).then(|| Duration::from_secs(1) / limit.rate_per_s);
        Self {
            emission,
            tolerance: emission.map_or(Duration::ZERO, |e| e * limit.burst.saturating_sub(1)),
            tat: None,
        }
    }

    /// Whether a message at `now` is within the limit; records it if so.
    pub fn admit(&mut self, now: Instant) -> bool {
        let Some(emission) = self.emission else {
            return false;
        };
        let tat = self.tat.unwrap_or(now).max(now);
        if tat.saturating_duration_since(now) > self.tolerance {
            return false;
        }
        self.tat = Some(tat + emission);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let mut g = LaneGcra::new(LaneLimit {
            rate_per_s: 10,
            burst: 5,
        });
        let t0 = Instant::now();
        assert_eq!((0..20).filter(|_| g.admit(t0)).count(), 5);
        assert!(!g.admit(t0 + Duration::from_millis(50)));
        assert!(g.admit(t0 + Duration::from_millis(100)));
        let mut zero = LaneGcra::new(LaneLimit {
            rate_per_s: 0,
            burst: 5,
        });
        assert!(!zero.admit(t0));
    }
}
