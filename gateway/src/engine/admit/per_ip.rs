//! Concurrent connections per source address (`gateway.connections_per_ip_max`;
//! `docs/protocol.md` §8), beside the handshake rate of `handshake.rs`: one
//! address (or IPv6 /64) cannot take more than its share of a core's
//! connection table, however slowly it opens them.
//!
//! The count lives in a map allocated at start for one entry per connection
//! slot: an entry exists only while its address has a connection, so the
//! map never holds more entries than the table has connections and never
//! grows.

use std::collections::HashMap;
use std::net::IpAddr;

use super::handshake::IpKey;

/// Open connections per source address on one gateway core.
#[derive(Debug)]
pub struct IpConnections {
    per_ip_max: u32,
    counts: HashMap<IpKey, u32>,
}

impl IpConnections {
    /// At most `per_ip_max` connections per address, for a table of `slots`
    /// connections.
    pub fn new(per_ip_max: u32, slots: usize) -> Self {
        Self {
            per_ip_max,
            counts: HashMap::with_capacity(slots),
        }
    }

    /// Whether `ip` may open one more connection.
    pub fn has_room(&self, ip: IpAddr) -> bool {
        self.count(ip) < self.per_ip_max
    }

    /// Connections `ip` has open.
    pub fn count(&self, ip: IpAddr) -> u32 {
        self.counts.get(&IpKey::of(ip)).copied().unwrap_or(0)
    }

    /// `ip` opened a connection.
    pub fn opened(&mut self, ip: IpAddr) {
        *self.counts.entry(IpKey::of(ip)).or_insert(0) += 1;
    }

    /// A connection of `ip` closed.
    pub fn closed(&mut self, ip: IpAddr) {
        let key = IpKey::of(ip);
        if let Some(n) = self.counts.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.counts.remove(&key);
            }
        }
    }

    /// Addresses with a connection open.
    pub fn addresses(&self) -> usize {
        self.counts.len()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn an_address_is_capped_and_room_comes_back_on_close() {
        let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        let mut t = IpConnections::new(2, 8);
        t.opened(a);
        assert!(t.has_room(a));
        t.opened(a);
        assert!(!t.has_room(a));
        assert!(t.has_room(b));
        t.closed(a);
        assert!(t.has_room(a));
        t.closed(a);
        t.closed(a);
        assert_eq!((t.count(a), t.addresses()), (0, 0));
    }

    #[test]
    fn an_ipv6_64_counts_as_one_address() {
        let mut t = IpConnections::new(1, 8);
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8::2".parse().unwrap();
        t.opened(a.into());
        assert!(!t.has_room(b.into()));
    }
}
