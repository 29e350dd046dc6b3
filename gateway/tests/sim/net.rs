//! The simulated network between the clients and the gateway: every UDP
//! datagram is lost with a seeded probability or delivered after a seeded
//! delay, so datagrams sent close together overtake each other. Everything
//! it decides comes from one RNG, so the same seed gives the same fates.
//! Optionally the gateway's side sends through a bottleneck (a slow link
//! with a drop-tail queue), which keeps its congestion window small.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use quinn_proto::EcnCodepoint;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How the network treats datagrams.
#[derive(Clone, Copy, Debug)]
pub struct Conditions {
    /// Probability that a datagram is lost, each way.
    pub loss: f64,
    /// Every datagram's least one-way delay.
    pub delay: Duration,
    /// A uniformly drawn extra delay of up to this much: datagrams sent
    /// less than this apart may arrive out of order.
    pub jitter: Duration,
    /// The link from the gateway to the clients, if it is slower than
    /// everything the gateway sends.
    pub downlink: Option<Bottleneck>,
}

/// A slow link: datagrams leave one after another at `bytes_per_s`, and
/// one that finds `queue_bytes_max` already waiting is lost, as at a
/// router's full buffer.
#[derive(Clone, Copy, Debug)]
pub struct Bottleneck {
    pub bytes_per_s: u64,
    pub queue_bytes_max: u64,
}

impl Conditions {
    /// A perfect link with a 1 ms one-way delay.
    pub fn clean() -> Self {
        Self {
            loss: 0.0,
            delay: Duration::from_millis(1),
            jitter: Duration::ZERO,
            downlink: None,
        }
    }

    /// Lossy and reordering: `loss` of the datagrams lost, 1–21 ms delays.
    pub fn rough(loss: f64) -> Self {
        Self {
            loss,
            delay: Duration::from_millis(1),
            jitter: Duration::from_millis(20),
            downlink: None,
        }
    }
}

/// A datagram on its way.
#[derive(Debug)]
pub struct InFlight {
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub ecn: Option<EcnCodepoint>,
    pub bytes: Vec<u8>,
}

/// What became of a datagram handed to [`Net::send`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Lost,
    /// Arrives this long after it was sent.
    Arrives(Duration),
}

pub struct Net {
    rng: StdRng,
    conditions: Conditions,
    /// By arrival time, then by send order (so equal times keep a fixed
    /// order).
    queue: BinaryHeap<Reverse<(Instant, u64)>>,
    packets: std::collections::HashMap<u64, InFlight>,
    sent: u64,
    /// When the downlink has sent everything queued on it.
    downlink_free_at: Option<Instant>,
}

impl Net {
    pub fn new(seed: u64, conditions: Conditions) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            conditions,
            queue: BinaryHeap::new(),
            packets: std::collections::HashMap::new(),
            sent: 0,
            downlink_free_at: None,
        }
    }

    /// Puts a datagram on the wire at `now` (through the downlink if it
    /// is the gateway's); returns its fate.
    pub fn send(&mut self, now: Instant, packet: InFlight, downlink: bool) -> Fate {
        let c = self.conditions;
        if c.loss > 0.0 && self.rng.random_bool(c.loss) {
            return Fate::Lost;
        }
        let mut queued = Duration::ZERO;
        if let (true, Some(link)) = (downlink, c.downlink) {
            let free_at = self.downlink_free_at.unwrap_or(now).max(now);
            let waiting = free_at - now;
            let waiting_bytes = waiting.as_secs_f64() * link.bytes_per_s as f64;
            if waiting_bytes + packet.bytes.len() as f64 > link.queue_bytes_max as f64 {
                return Fate::Lost;
            }
            let sending =
                Duration::from_secs_f64(packet.bytes.len() as f64 / link.bytes_per_s as f64);
            self.downlink_free_at = Some(free_at + sending);
            queued = waiting + sending;
        }
        let jitter_us = u64::try_from(c.jitter.as_micros()).unwrap_or(u64::MAX);
        let extra = if jitter_us == 0 {
            Duration::ZERO
        } else {
            Duration::from_micros(self.rng.random_range(0..=jitter_us))
        };
        let after = queued + c.delay + extra;
        let id = self.sent;
        self.sent += 1;
        self.queue.push(Reverse((now + after, id)));
        self.packets.insert(id, packet);
        Fate::Arrives(after)
    }

    /// When the next datagram arrives, if one is on its way.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((at, _))| *at)
    }

    /// The next datagram that has arrived by `now`.
    pub fn arrived(&mut self, now: Instant) -> Option<InFlight> {
        let Reverse((at, id)) = *self.queue.peek()?;
        if at > now {
            return None;
        }
        self.queue.pop();
        self.packets.remove(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(n: u8) -> InFlight {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        InFlight {
            from: addr,
            to: addr,
            ecn: None,
            bytes: vec![n],
        }
    }

    #[test]
    fn jitter_reorders_and_loss_drops_the_same_way_for_the_same_seed() {
        let run = |seed| {
            let mut net = Net::new(seed, Conditions::rough(0.2));
            let t0 = Instant::now();
            let fates: Vec<_> = (0..50).map(|n| net.send(t0, packet(n), false)).collect();
            let mut order = Vec::new();
            while let Some(p) = net.arrived(t0 + Duration::from_secs(1)) {
                order.push(p.bytes[0]);
            }
            (fates, order)
        };
        let (fates, order) = run(1);
        assert_eq!(run(1), (fates.clone(), order.clone()));
        assert!(fates.contains(&Fate::Lost));
        assert!(order.windows(2).any(|w| w[0] > w[1]), "{order:?}");
        assert_ne!(run(2).1, order);
    }
}
