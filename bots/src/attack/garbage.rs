//! The garbage flood: random datagrams of 1 to 1500 bytes from many
//! source ports, at a paced rate.
//!
//! A datagram is a random slice of one random pool (a random offset and a
//! uniform length), so generating one costs two draws of a small RNG, not
//! 750 random bytes: at the rates a flood asks for, the attacker's cost is
//! the `send(2)` and nothing else. Every byte is random, the first too, so
//! the flood mixes what QUIC sees as short headers with unknown connection
//! ids, long headers of unknown versions (which draw Version Negotiation)
//! and Initials too short or too damaged to decrypt.

use std::net::UdpSocket;
use std::time::Instant;

use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};

use super::pace::Pacer;
use super::{AttackConfig, GARBAGE_BYTES_MAX, Tally};

/// Bytes of the random pool the datagrams are cut from.
const POOL_BYTES: usize = 64 * 1024;

/// Floods `cfg.server` from `sockets`, one after the other, until the
/// duration is over.
pub fn flood(cfg: &AttackConfig, sockets: &[UdpSocket]) -> Tally {
    let mut rng = SmallRng::from_os_rng();
    let mut pool = vec![0u8; POOL_BYTES + GARBAGE_BYTES_MAX];
    rng.fill_bytes(&mut pool);
    let start = Instant::now();
    let mut pacer = Pacer::new(start, cfg.duration, cfg.rate_per_s);
    let mut tally = Tally::default();
    let mut next = 0usize;
    while let Some(due) = pacer.burst(Instant::now()) {
        for _ in 0..due {
            let datagram = slice(&mut rng, &pool);
            let socket = &sockets[next % sockets.len()];
            next = next.wrapping_add(1);
            match socket.send(datagram) {
                Ok(n) => {
                    tally.sent += 1;
                    tally.bytes += n as u64;
                }
                Err(_) => tally.errors += 1,
            }
        }
        pacer.wait();
    }
    tally.wall = start.elapsed();
    tally
}

/// A random datagram of 1 to [`GARBAGE_BYTES_MAX`] bytes out of `pool`.
fn slice<'a>(rng: &mut SmallRng, pool: &'a [u8]) -> &'a [u8] {
    let len = rng.random_range(1..=GARBAGE_BYTES_MAX);
    let at = rng.random_range(0..=pool.len() - len);
    &pool[at..at + len]
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::attack::{Attack, sources};

    #[test]
    fn slices_cover_every_length_within_the_pool() {
        let mut rng = SmallRng::seed_from_u64(7);
        let pool = vec![1u8; POOL_BYTES + GARBAGE_BYTES_MAX];
        let lens: Vec<usize> = (0..20_000).map(|_| slice(&mut rng, &pool).len()).collect();
        assert!(lens.iter().all(|l| (1..=GARBAGE_BYTES_MAX).contains(l)));
        assert!(lens.iter().any(|&l| l < 10) && lens.iter().any(|&l| l > 1490));
    }

    #[test]
    fn a_short_flood_sends_about_its_rate_from_every_source() {
        let target = UdpSocket::bind("127.0.0.1:0").unwrap();
        target
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut cfg = AttackConfig::new(Attack::GarbageFlood, target.local_addr().unwrap());
        // Few enough that the target's default receive buffer holds them.
        cfg.duration = Duration::from_millis(200);
        cfg.rate_per_s = 200;
        let sockets = sources::bind(cfg.server, 4, 2).unwrap();
        let tally = flood(&cfg, &sockets);
        assert!((30..=42).contains(&tally.sent), "{tally:?}");
        let mut from = std::collections::HashSet::new();
        let mut buf = [0u8; 2048];
        for _ in 0..tally.sent {
            let (n, addr) = target.recv_from(&mut buf).unwrap();
            assert!((1..=GARBAGE_BYTES_MAX).contains(&n));
            from.insert(addr);
        }
        assert_eq!(from.len(), 4, "every source sent");
    }
}
