//! Reflection-prone source ports (`gateway.blocked_source_ports`): every
//! datagram from one of them is dropped before QUIC reads it.
//!
//! A reflection attack spoofs its victim's address and a service port
//! (DNS 53, NTP 123, memcached 11211...) so that the answer lands on the
//! victim. No game client sends from those ports, so a datagram from one
//! is dropped before anything could answer it: no connection state, no
//! version negotiation, no stateless reset. s2n-quic's default endpoint
//! limiter is the precedent. The set is a fixed 8 KiB bitmap, one bit per
//! port, so the check is one load whatever the list.

/// The set of blocked UDP source ports.
#[derive(Clone)]
pub struct BlockedPorts {
    bits: Box<[u64; 1024]>,
    count: usize,
}

impl BlockedPorts {
    /// The set of `ports` (duplicates count once).
    pub fn new(ports: &[u16]) -> Self {
        let mut bits = Box::new([0u64; 1024]);
        for &port in ports {
            bits[usize::from(port >> 6)] |= 1 << (port & 63);
        }
        let count = bits.iter().map(|w| w.count_ones() as usize).sum();
        Self { bits, count }
    }

    /// Whether datagrams from `port` are dropped.
    pub fn contains(&self, port: u16) -> bool {
        self.bits[usize::from(port >> 6)] & (1 << (port & 63)) != 0
    }

    /// How many ports are blocked.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no port is blocked.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl std::fmt::Debug for BlockedPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ports: Vec<u16> = (0..=u16::MAX).filter(|&p| self.contains(p)).collect();
        f.debug_tuple("BlockedPorts").field(&ports).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_the_listed_ports_are_blocked() {
        let blocked = BlockedPorts::new(&[0, 53, 63, 64, 11211, 65535, 53]);
        assert_eq!(blocked.len(), 6);
        let listed = |p: u16| [0, 53, 63, 64, 11211, 65535].contains(&p);
        for port in 0..=u16::MAX {
            assert_eq!(blocked.contains(port), listed(port), "port {port}");
        }
        assert!(BlockedPorts::new(&[]).is_empty());
    }
}
