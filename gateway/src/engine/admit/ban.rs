//! Bans after abuse (`admission.abuse_ban_ms`, `admission.bans_max`;
//! `docs/protocol.md` §8): a connection closed with `ABUSE` bans its source
//! address and its player for a while, so that closing a flooder does not
//! simply invite its next handshake.
//!
//! # Why it cannot be spent by spoofers
//!
//! A ban is only ever added for a connection the engine closed with
//! `ABUSE`, and that takes a completed handshake (a validated address) and,
//! for the lane limits, a verified ticket. Spoofed Initials never add one,
//! so the table's bound (`bans_max`) is about honest operation, not a
//! flood: it holds two bans (address, player) per abusive session.
//!
//! # What is kept
//!
//! One map from key to the end of its ban, allocated for `bans_max` keys
//! at start and never grown: an expired ban is forgotten when next looked
//! at, and a full table first forgets every expired ban, then the one
//! closest to its end (counted: [`BanCounters::evicted`]). Addresses are
//! keyed as the handshake limiter keys them (an IPv6 address by its /64),
//! so one subscriber cannot step around a ban by changing its host bits.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use lanegate_common::ids::PlayerId;

use super::handshake::IpKey;

/// What a ban applies to: a source address or a player.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BanKey(Key);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    Address(IpKey),
    Player(PlayerId),
}

impl BanKey {
    /// The source address `ip` (IPv6: its /64; IPv4-mapped: the IPv4).
    pub fn address(ip: IpAddr) -> Self {
        Self(Key::Address(IpKey::of(ip)))
    }

    /// The player `player`.
    pub fn player(player: PlayerId) -> Self {
        Self(Key::Player(player))
    }
}

/// Counts kept by [`BanList`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BanCounters {
    /// Bans added (or extended), addresses and players.
    pub added: u64,
    /// Bans forgotten before their end because the table was full.
    pub evicted: u64,
}

/// The bans of one gateway core, at most `bans_max` at once.
#[derive(Debug)]
pub struct BanList {
    ban_for: Duration,
    bans_max: usize,
    until: HashMap<BanKey, Instant>,
    counters: BanCounters,
}

impl BanList {
    /// Bans lasting `ban_for` (zero: bans are off), at most `bans_max` held
    /// (at least one).
    pub fn new(ban_for: Duration, bans_max: usize) -> Self {
        let bans_max = bans_max.max(1);
        let capacity = if ban_for.is_zero() { 0 } else { bans_max };
        Self {
            ban_for,
            bans_max,
            until: HashMap::with_capacity(capacity),
            counters: BanCounters::default(),
        }
    }

    /// Whether bans are on (`admission.abuse_ban_ms` above zero).
    pub fn is_on(&self) -> bool {
        !self.ban_for.is_zero()
    }

    /// Bans `key` from `now` for the configured time (a ban already held is
    /// extended). Nothing when bans are off.
    pub fn ban(&mut self, key: BanKey, now: Instant) {
        if !self.is_on() {
            return;
        }
        let end = now + self.ban_for;
        if let Some(until) = self.until.get_mut(&key) {
            *until = (*until).max(end);
            self.counters.added += 1;
            return;
        }
        if self.until.len() >= self.bans_max {
            self.until.retain(|_, until| *until > now);
        }
        if self.until.len() >= self.bans_max {
            let soonest = self
                .until
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(k, _)| *k);
            if let Some(k) = soonest {
                self.until.remove(&k);
                self.counters.evicted += 1;
            }
        }
        self.until.insert(key, end);
        self.counters.added += 1;
    }

    /// Whether `key` is banned at `now`. An expired ban is forgotten.
    pub fn check(&mut self, key: BanKey, now: Instant) -> bool {
        if self.until.is_empty() {
            return false;
        }
        match self.until.get(&key) {
            Some(&until) if until > now => true,
            Some(_) => {
                self.until.remove(&key);
                false
            }
            None => false,
        }
    }

    /// Whether `key` is banned at `now`, without forgetting anything.
    pub fn is_banned(&self, key: BanKey, now: Instant) -> bool {
        self.until.get(&key).is_some_and(|&until| until > now)
    }

    /// Bans held, some perhaps expired and not yet forgotten.
    pub fn len(&self) -> usize {
        self.until.len()
    }

    /// Whether no ban is held.
    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }

    /// What the list has counted.
    pub fn counters(&self) -> BanCounters {
        self.counters
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    #[test]
    fn a_ban_lasts_its_time_then_is_forgotten() {
        let t0 = Instant::now();
        let mut bans = BanList::new(MINUTE, 8);
        bans.ban(BanKey::address(v4(1)), t0);
        bans.ban(BanKey::player(PlayerId(7)), t0);
        assert!(bans.check(BanKey::address(v4(1)), t0 + MINUTE / 2));
        assert!(bans.is_banned(BanKey::player(PlayerId(7)), t0 + MINUTE / 2));
        assert!(!bans.check(BanKey::address(v4(2)), t0));
        assert!(!bans.check(BanKey::player(PlayerId(8)), t0));
        assert!(!bans.check(BanKey::address(v4(1)), t0 + MINUTE));
        assert_eq!(bans.len(), 1, "the expired address ban was forgotten");
        assert_eq!(bans.counters().added, 2);
    }

    #[test]
    fn an_ipv6_ban_covers_the_whole_64() {
        let t0 = Instant::now();
        let mut bans = BanList::new(MINUTE, 8);
        let a: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: Ipv6Addr = "2001:db8:1:3::1".parse().unwrap();
        bans.ban(BanKey::address(a.into()), t0);
        assert!(bans.check(BanKey::address(b.into()), t0));
        assert!(!bans.check(BanKey::address(c.into()), t0));
        // An IPv4-mapped address is its IPv4 address.
        bans.ban(BanKey::address(v4(9)), t0);
        let mapped = Ipv4Addr::new(192, 0, 2, 9).to_ipv6_mapped();
        assert!(bans.check(BanKey::address(mapped.into()), t0));
    }

    #[test]
    fn a_full_list_forgets_expired_bans_then_the_one_nearest_its_end() {
        let t0 = Instant::now();
        let mut bans = BanList::new(MINUTE, 3);
        let s = Duration::from_secs(1);
        bans.ban(BanKey::address(v4(1)), t0);
        bans.ban(BanKey::address(v4(2)), t0 + s);
        bans.ban(BanKey::address(v4(3)), t0 + 2 * s);
        // Full and nothing expired: the ban nearest its end (v4(1)) goes.
        bans.ban(BanKey::address(v4(4)), t0 + 3 * s);
        assert_eq!(bans.len(), 3);
        assert_eq!(bans.counters().evicted, 1);
        assert!(!bans.check(BanKey::address(v4(1)), t0 + 3 * s));
        assert!(bans.check(BanKey::address(v4(2)), t0 + 3 * s));
        // Later, v4(2) and v4(3) have expired: they go first, no eviction.
        let later = t0 + MINUTE + 2 * s;
        bans.ban(BanKey::address(v4(5)), later);
        bans.ban(BanKey::address(v4(6)), later);
        assert_eq!(bans.counters().evicted, 1);
        assert!(bans.check(BanKey::address(v4(4)), later));
        assert!(bans.len() <= 3);
    }

    #[test]
    fn banning_again_extends_and_off_bans_nothing() {
        let t0 = Instant::now();
        let mut bans = BanList::new(MINUTE, 2);
        bans.ban(BanKey::player(PlayerId(1)), t0);
        bans.ban(BanKey::player(PlayerId(1)), t0 + MINUTE / 2);
        assert!(bans.check(BanKey::player(PlayerId(1)), t0 + MINUTE));
        assert_eq!(bans.len(), 1);
        let mut off = BanList::new(Duration::ZERO, 2);
        assert!(!off.is_on());
        off.ban(BanKey::player(PlayerId(1)), t0);
        assert!(!off.check(BanKey::player(PlayerId(1)), t0));
        assert!(off.is_empty());
    }
}
