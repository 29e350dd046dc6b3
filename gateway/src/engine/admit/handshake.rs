//! Handshakes per source address (`gateway.handshakes_per_ip_per_s`,
//! `gateway.handshake_burst`), in a table that spoofed addresses cannot
//! make grow.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::time::Instant;

use governor::RateLimiter;
use lanegate_common::config::GatewayConfig;

use super::AdmissionError;
use super::clock::{SetClock, nanos_since};
use super::gcra::{Gcra, TatTable, quota};

/// Number of entries per set in [`HandshakeLimiter`]'s table.
pub const HANDSHAKE_SET_WAYS: usize = 4;

/// Handshakes per source address: `gateway.handshakes_per_ip_per_s`
/// sustained, `gateway.handshake_burst` at once.
///
/// # Keys
///
/// An IPv4 address is its own key. An IPv4-mapped IPv6 address counts as
/// the IPv4 address it maps. Any other IPv6 address is keyed by its /64
/// prefix, because one subscriber usually holds a whole /64. Keying by full
/// address would give one host 2^64 buckets.
///
/// # Bounded table
///
/// Buckets live in a set-associative table of `ips_tracked_max` entries
/// (rounded down to a multiple of [`HANDSHAKE_SET_WAYS`], with at least one
/// set). A key hashes to one set with a per-process random hash key, so
/// senders cannot choose which set their addresses land in. The key then
/// takes, in order:
///
/// 1. the entry that already holds it;
/// 2. an empty entry, or an *idle* one (its TAT is at or before `now`). An
///    idle bucket is full, so its state is the same as a fresh bucket's, and
///    giving its entry to a new address loses nothing;
/// 3. when every entry in the set is busy, the shared **overflow bucket**.
///    It has the per-address quota and is shared by every key that found no
///    entry.
///
/// So a flood from spoofed addresses never grows the table and never evicts
/// an address that is still paying off a burst. When the flood fills the
/// table, all untracked addresses together get one address's worth of
/// handshakes until entries go idle again. Tracked addresses keep their own
/// buckets. [`HandshakeCounters::overflowed`] counts how often that
/// happens. An entry stays busy for at most `handshake_burst /
/// handshakes_per_ip_per_s` after its last handshake.
pub struct HandshakeLimiter {
    epoch: Instant,
    buckets: Gcra,
    tats: TatTable,
    keys: Box<[Option<IpKey>]>,
    sets: u64,
    hasher: RandomState,
    counters: HandshakeCounters,
}

/// Counts kept by [`HandshakeLimiter`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HandshakeCounters {
    /// Handshakes allowed.
    pub allowed: u64,
    /// Handshakes refused.
    pub refused: u64,
    /// Checks that found the table full for their address and used the
    /// shared overflow bucket. These are counted in `allowed` or `refused`
    /// as well.
    pub overflowed: u64,
}

impl HandshakeLimiter {
    /// Builds a limiter tracking up to `ips_tracked_max` addresses, with
    /// `now` as its epoch.
    pub fn new(
        gateway: &GatewayConfig,
        ips_tracked_max: usize,
        now: Instant,
    ) -> Result<Self, AdmissionError> {
        if ips_tracked_max == 0 {
            return Err(AdmissionError::Zero {
                field: "ips_tracked_max",
            });
        }
        let quota = quota(
            gateway.handshakes_per_ip_per_s,
            gateway.handshake_burst,
            "gateway.handshakes_per_ip_per_s",
            "gateway.handshake_burst",
        )?;
        let sets = (ips_tracked_max / HANDSHAKE_SET_WAYS).max(1);
        let entries = sets * HANDSHAKE_SET_WAYS;
        // One more TAT than entries: the last one is the overflow bucket.
        let tats = TatTable::new(entries + 1);
        Ok(Self {
            epoch: now,
            buckets: RateLimiter::new(quota, tats.clone(), SetClock::default()),
            tats,
            keys: vec![None; entries].into_boxed_slice(),
            sets: sets as u64,
            hasher: RandomState::new(),
            counters: HandshakeCounters::default(),
        })
    }

    /// Whether a handshake from `ip` at `now` is allowed. Every outcome is
    /// counted.
    #[must_use]
    pub fn check(&mut self, ip: IpAddr, now: Instant) -> bool {
        let now_ns = nanos_since(self.epoch, now);
        let entry = self.entry_for(IpKey::of(ip), now_ns);
        self.buckets.clock().set(now_ns);
        let allowed = self.buckets.check_key(&entry).is_ok();
        if allowed {
            self.counters.allowed += 1;
        } else {
            self.counters.refused += 1;
        }
        allowed
    }

    /// The limiter's counters.
    pub fn counters(&self) -> &HandshakeCounters {
        &self.counters
    }

    /// The number of table entries: `ips_tracked_max` rounded down to a
    /// multiple of [`HANDSHAKE_SET_WAYS`], and at least that.
    pub fn ips_tracked_max(&self) -> usize {
        self.keys.len()
    }

    /// Entries holding an address that is still busy at `now` (its bucket
    /// is not yet full). This scans the whole table, so it is for metrics
    /// and tests, not the handshake path.
    pub fn ips_busy(&self, now: Instant) -> usize {
        let now_ns = nanos_since(self.epoch, now);
        (0..self.keys.len())
            .filter(|&i| self.keys[i].is_some() && self.tats.get(i) > now_ns)
            .count()
    }

    /// The TAT index for `key`: its own entry, a reclaimed one, or the
    /// overflow bucket (see the type's docs).
    fn entry_for(&mut self, key: IpKey, now_ns: u64) -> usize {
        let set = usize::try_from(self.hasher.hash_one(key) % self.sets)
            .expect("a set number is below the table length, a usize");
        let first = set * HANDSHAKE_SET_WAYS;
        let mut reusable = None;
        for i in first..first + HANDSHAKE_SET_WAYS {
            match self.keys[i] {
                Some(k) if k == key => return i,
                Some(_) if self.tats.get(i) > now_ns => {}
                _ => {
                    reusable.get_or_insert(i);
                }
            }
        }
        if let Some(i) = reusable {
            self.keys[i] = Some(key);
            self.tats.reset(i);
            return i;
        }
        self.counters.overflowed += 1;
        self.keys.len()
    }
}

/// Summaries, not every entry: a table may hold tens of thousands.
impl fmt::Debug for HandshakeLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandshakeLimiter")
            .field("ips_tracked_max", &self.keys.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// The key a source address is limited by (see [`HandshakeLimiter`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum IpKey {
    V4(u32),
    V6Prefix64(u64),
}

impl IpKey {
    pub(super) fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => IpKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpKey::V4(u32::from(v4)),
                None => IpKey::V6Prefix64(
                    v6.segments()[..4]
                        .iter()
                        .fold(0, |prefix, &s| (prefix << 16) | u64::from(s)),
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::Duration;

    use super::*;

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    fn v4(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(n))
    }

    #[test]
    fn handshakes_are_limited_per_ip() {
        let t0 = Instant::now();
        let mut h = HandshakeLimiter::new(&GatewayConfig::default(), 1024, t0).unwrap();
        let (a, b) = (v4(0x0a00_0001), v4(0x0a00_0002));
        // Default: burst 20, then 10/s.
        for _ in 0..20 {
            assert!(h.check(a, t0));
        }
        assert!(!h.check(a, t0));
        assert!(h.check(b, t0), "another address has its own bucket");
        let one_s = ms(t0, 1_000);
        let allowed = (0..20).filter(|_| h.check(a, one_s)).count();
        assert_eq!(allowed, 10);
        assert_eq!(
            *h.counters(),
            HandshakeCounters {
                allowed: 31,
                refused: 11,
                overflowed: 0
            }
        );
    }

    #[test]
    fn ipv6_is_keyed_by_its_64_prefix_and_mapped_v4_by_the_v4_address() {
        let t0 = Instant::now();
        let mut h = HandshakeLimiter::new(&GatewayConfig::default(), 1024, t0).unwrap();
        let host = |low: u16| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, low));
        for low in 0..20 {
            assert!(h.check(host(low), t0));
        }
        assert!(!h.check(host(999), t0), "same /64 shares the bucket");
        let other = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1));
        assert!(h.check(other, t0));
        let v4 = Ipv4Addr::new(192, 0, 2, 1);
        for _ in 0..20 {
            assert!(h.check(IpAddr::V4(v4), t0));
        }
        assert!(!h.check(IpAddr::V6(v4.to_ipv6_mapped()), t0));
    }

    #[test]
    fn handshake_table_stays_bounded_under_spoofed_addresses() {
        let t0 = Instant::now();
        // One set of four entries, so every address competes for it.
        let mut h = HandshakeLimiter::new(&GatewayConfig::default(), 4, t0).unwrap();
        assert_eq!(h.ips_tracked_max(), 4);
        let player = v4(0xc000_0201);
        assert!(h.check(player, t0));
        let spoofed = 100_000u32;
        let allowed = (0..spoofed).filter(|&n| h.check(v4(n), t0)).count();
        // Three spoofed addresses got entries, and the rest shared the
        // overflow bucket's burst of 20.
        assert_eq!(allowed, 3 + 20);
        assert_eq!(h.counters().overflowed, u64::from(spoofed - 3));
        assert_eq!(h.ips_busy(t0), 4);
        // The player is still tracked and keeps its own burst.
        for _ in 1..20 {
            assert!(h.check(player, t0));
        }
        assert!(!h.check(player, t0));
        // Once buckets are full again (20 / 10 per s = 2 s), their entries
        // are reclaimed by new addresses without overflow.
        let later = ms(t0, 2_100);
        assert_eq!(h.ips_busy(later), 0);
        let overflowed = h.counters().overflowed;
        for n in 0..4 {
            assert!(h.check(v4(1_000_000 + n), later));
        }
        assert_eq!(h.counters().overflowed, overflowed);
    }

    #[test]
    fn handshake_table_rounds_to_whole_sets() {
        let t0 = Instant::now();
        let g = GatewayConfig::default();
        assert_eq!(
            HandshakeLimiter::new(&g, 1, t0).unwrap().ips_tracked_max(),
            4
        );
        assert_eq!(
            HandshakeLimiter::new(&g, 10, t0).unwrap().ips_tracked_max(),
            8
        );
        assert!(HandshakeLimiter::new(&g, 0, t0).is_err());
    }

    #[test]
    fn zero_burst_is_rejected_naming_the_field() {
        let t0 = Instant::now();
        let gateway = GatewayConfig {
            handshake_burst: 0,
            ..GatewayConfig::default()
        };
        let err = HandshakeLimiter::new(&gateway, 16, t0).unwrap_err();
        assert_eq!(
            err,
            AdmissionError::Zero {
                field: "gateway.handshake_burst"
            }
        );
    }

    #[test]
    fn limiter_is_send_and_sync_and_debug_is_short() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<HandshakeLimiter>();
        let h = HandshakeLimiter::new(&GatewayConfig::default(), 10_000, Instant::now()).unwrap();
        assert!(format!("{h:?}").len() < 1_000);
    }
}
