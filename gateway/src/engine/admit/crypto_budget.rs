//! Handshakes one gateway core starts per second
//! (`gateway.handshakes_per_core_per_s`, `gateway.handshake_core_burst`):
//! the crypto budget that keeps a storm of new connections from starving
//! the established ones (quinn's #2633: accepting runs the TLS server's
//! key exchange and signature on the core's own thread).
//!
//! Only a handshake the engine is about to accept is charged: a Retry, a
//! refusal or an ignored Initial costs no asymmetric crypto. One over the
//! budget is ignored, which sends nothing (never more bytes than it
//! brought) and keeps no state; the client's QUIC stack sends its Initial
//! again after its probe timeout (about a second), by when the budget has
//! refilled. A flood from spoofed addresses meets Retry first
//! (`retry.rs`), so what reaches this budget has mostly proven its address.
//!
//! The same budget, with its own rate, bounds the Initials a core lets into
//! QUIC at all (`gateway.initials_per_core_per_s`): each costs header
//! protection and, under a flood, a Retry's token and integrity tag. Past
//! it an Initial is dropped on its first byte, before QUIC reads it.
//!
//! Governor's GCRA on the engine's `now` (sans-IO, as `handshake.rs`): one
//! bucket, no allocation after start.

use std::time::Instant;

use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use super::AdmissionError;
use super::clock::{SetClock, nanos_since};
use super::gcra::quota;

type Direct = RateLimiter<NotKeyed, InMemoryState, SetClock, NoOpMiddleware<Nanos>>;

/// The crypto budget of one gateway core.
pub struct CryptoBudget {
    epoch: Instant,
    /// `None`: unlimited (`gateway.handshakes_per_core_per_s = 0`).
    limiter: Option<Direct>,
    over: u64,
}

impl std::fmt::Debug for CryptoBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CryptoBudget")
            .field("limited", &self.limiter.is_some())
            .field("over", &self.over)
            .finish()
    }
}

impl CryptoBudget {
    /// `rate_per_s` handshakes a second with `burst` at once, from `now`;
    /// a zero rate means no budget.
    pub fn new(rate_per_s: u32, burst: u32, now: Instant) -> Result<Self, AdmissionError> {
        Self::for_fields(
            rate_per_s,
            burst,
            (
                "gateway.handshakes_per_core_per_s",
                "gateway.handshake_core_burst",
            ),
            now,
        )
    }

    /// The same GCRA for another per-core budget of the handshake path
    /// (the Initials let into QUIC, `gateway.initials_per_core_per_s`);
    /// `fields` name its rate and burst in errors.
    pub fn for_fields(
        rate_per_s: u32,
        burst: u32,
        fields: (&'static str, &'static str),
        now: Instant,
    ) -> Result<Self, AdmissionError> {
        let limiter = if rate_per_s == 0 {
            None
        } else {
            let quota: Quota = quota(rate_per_s, burst, fields.0, fields.1)?;
            Some(RateLimiter::direct_with_clock(quota, SetClock::default()))
        };
        Ok(Self {
            epoch: now,
            limiter,
            over: 0,
        })
    }

    /// Takes one handshake from the budget at `now`; `false` (counted) if
    /// none is left.
    #[must_use]
    pub fn take(&mut self, now: Instant) -> bool {
        let Some(limiter) = &self.limiter else {
            return true;
        };
        limiter.clock().set(nanos_since(self.epoch, now));
        let ok = limiter.check().is_ok();
        if !ok {
            self.over += 1;
        }
        ok
    }

    /// Handshakes refused for the budget so far.
    pub fn over(&self) -> u64 {
        self.over
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_then_the_rate_and_nothing_more() {
        let t0 = Instant::now();
        let mut budget = CryptoBudget::new(100, 10, t0).unwrap();
        let taken = (0..50).filter(|_| budget.take(t0)).count();
        assert_eq!(taken, 10, "the burst at once");
        assert_eq!(budget.over(), 40);
        // One a 10 ms, as the rate says; over a second, 100 more.
        let mut later = 0;
        for ms in 1..=1000 {
            let now = t0 + Duration::from_millis(ms);
            later += (0..5).filter(|_| budget.take(now)).count();
        }
        assert!((99..=101).contains(&later), "{later}");
    }

    #[test]
    fn zero_means_no_budget_and_a_zero_burst_names_its_field() {
        let t0 = Instant::now();
        let mut unlimited = CryptoBudget::new(0, 0, t0).unwrap();
        assert!((0..10_000).all(|_| unlimited.take(t0)));
        assert_eq!(
            CryptoBudget::new(10, 0, t0).unwrap_err(),
            AdmissionError::Zero {
                field: "gateway.handshake_core_burst"
            }
        );
    }
}
