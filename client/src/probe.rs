//! `lanegate probe`: round-trip time and loss per lane, measured with the
//! diagnostic echo of `docs/protocol.md` §9.
//!
//! Each round sends one datagram per lane (types `0x1fff`, `0x2fff`,
//! `0x3fff`, `0x4fff`), payload `seq: u64 ‖ sent_us: u64` (big-endian,
//! microseconds since the probe started). Replies are matched by lane and
//! sequence against the send times the probe kept, so a reply cannot claim
//! an RTT; duplicates and strangers are ignored. Sends are paced per lane by
//! a mirror of the gateway's GCRA using the limits from `Welcome`, so the
//! probe never measures its own rate limiting.

use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use lanegate_common::ids::{SessionId, ZoneId};
use lanegate_common::lanes::Lane;
use lanegate_common::wire::{LaneLimit, Transport, types};
use tokio::time::Instant;

use crate::ClientError;
use crate::client::{ConnectOptions, connect};
use crate::session::Event;

/// Most echoes per lane one probe sends (it keeps a send time for each).
pub const PROBE_COUNT_MAX: u32 = 100_000;
/// How long the probe waits for replies after its last send. Generous for
/// any path a game would be played on; the probe stops earlier once every
/// echo is answered.
pub const REPLY_WAIT: Duration = Duration::from_secs(2);
/// Largest RTT the histograms record; longer ones are clamped to it.
const RTT_US_MAX: u64 = 60_000_000;
/// Bytes of an echo payload: sequence and send timestamp.
const ECHO_PAYLOAD_BYTES: usize = 16;

/// What one probe measured.
#[derive(Clone, Debug)]
pub struct ProbeReport {
    /// The session the probe ran in.
    pub session: SessionId,
    /// The zone the ticket admitted the probe to.
    pub zone: ZoneId,
    /// Echoes asked for per lane.
    pub count: u32,
    /// Time between rounds asked for.
    pub interval: Duration,
    /// One row per lane, in lane order.
    pub lanes: [LaneReport; Lane::COUNT],
}

/// One lane's results.
#[derive(Clone, Debug)]
pub struct LaneReport {
    /// The lane (of the default lane table).
    pub lane: Lane,
    /// The echo type sent in it.
    pub ty: u16,
    /// Echoes sent.
    pub sent: u32,
    /// Distinct echoes answered.
    pub received: u32,
    /// Smallest RTT seen.
    pub rtt_min: Option<Duration>,
    /// Median RTT.
    pub rtt_p50: Option<Duration>,
    /// 99th percentile RTT.
    pub rtt_p99: Option<Duration>,
}

impl LaneReport {
    /// Echoes sent but not answered, in percent of those sent.
    pub fn loss_percent(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        f64::from(self.sent - self.received) * 100.0 / f64::from(self.sent)
    }
}

impl ProbeReport {
    /// Every lane got at least one answer.
    pub fn all_lanes_answered(&self) -> bool {
        self.lanes.iter().all(|l| l.received > 0)
    }
}

impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "session {:#018x}, zone {}: {} echoes per lane, every {:?}",
            self.session.0, self.zone.0, self.count, self.interval
        )?;
        writeln!(
            f,
            "{:<9} {:>6} {:>6} {:>6} {:>7} {:>10} {:>10} {:>10}",
            "lane", "type", "sent", "recv", "loss", "min", "p50", "p99"
        )?;
        for l in &self.lanes {
            writeln!(
                f,
                "{:<9} {:#06x} {:>6} {:>6} {:>6.1}% {:>10} {:>10} {:>10}",
                l.lane.name(),
                l.ty,
                l.sent,
                l.received,
                l.loss_percent(),
                Ms(l.rtt_min),
                Ms(l.rtt_p50),
                Ms(l.rtt_p99),
            )?;
        }
        Ok(())
    }
}

/// Connects with `opts`, sends `count` echoes per lane over datagrams, one
/// round every `interval` (later when a lane's rate limit requires), waits
/// up to [`REPLY_WAIT`] for the replies, closes with `NO_ERROR` and reports.
pub async fn probe(
    opts: ConnectOptions,
    count: u32,
    interval: Duration,
) -> Result<ProbeReport, ClientError> {
    if count == 0 || count > PROBE_COUNT_MAX {
        return Err(ClientError::Config {
            field: "count",
            reason: format!("must be 1 to {PROBE_COUNT_MAX}"),
        });
    }
    let mut client = connect(opts).await?;
    let info = *client.info();
    let start = Instant::now();
    let mut lanes: Vec<LaneProbe> = info
        .lane_limits
        .iter()
        .map(|limit| LaneProbe::new(*limit, count))
        .collect();
    let mut payload = [0u8; ECHO_PAYLOAD_BYTES];
    let mut last_send = start;

    loop {
        let now = Instant::now();
        for (lane, ty) in lanes.iter_mut().zip(types::ECHO) {
            while let Some(due) = lane.due(start, interval, now) {
                if due > now {
                    break;
                }
                let seq = lane.sent_at.len() as u64;
                let sent_us = u64::try_from((now - start).as_micros()).unwrap_or(u64::MAX);
                payload[..8].copy_from_slice(&seq.to_be_bytes());
                payload[8..].copy_from_slice(&sent_us.to_be_bytes());
                client.send(ty, &payload, Transport::Datagram).await?;
                lane.record_send(now);
                last_send = now;
            }
        }
        let wake = lanes
            .iter()
            .filter_map(|l| l.due(start, interval, now))
            .min();
        let wake = match wake {
            Some(at) => at,
            None if lanes.iter().all(LaneProbe::all_answered) => break,
            None if now >= last_send + REPLY_WAIT => break,
            None => last_send + REPLY_WAIT,
        };
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            event = client.recv() => {
                if let Event::Message { ty, payload, transport: Transport::Datagram } = event? {
                    let lane = types::ECHO.iter().position(|t| *t == ty);
                    if let Some(lane) = lane {
                        lanes[lane].on_reply(&payload, Instant::now());
                    }
                }
            }
        }
    }
    client.close().await;

    let rows = std::array::from_fn(|i| {
        let lane = Lane::from_index(i).expect("the report has one row per lane");
        lanes[i].report(lane, types::ECHO[i])
    });
    Ok(ProbeReport {
        session: info.session,
        zone: info.zone,
        count,
        interval,
        lanes: rows,
    })
}

/// One lane's sends, replies and pacing.
struct LaneProbe {
    count: u32,
    pacer: Option<Pacer>,
    /// Send time of each sequence number.
    sent_at: Vec<Instant>,
    answered: Vec<bool>,
    received: u32,
    rtt_us: Histogram<u64>,
}

impl LaneProbe {
    fn new(limit: LaneLimit, count: u32) -> Self {
        let capacity = usize::try_from(count).unwrap_or(0);
        Self {
            count,
            pacer: Pacer::new(limit),
            sent_at: Vec::with_capacity(capacity),
            answered: Vec::with_capacity(capacity),
            received: 0,
            rtt_us: Histogram::new_with_bounds(1, RTT_US_MAX, 3)
                .expect("constant histogram bounds are valid"),
        }
    }

    /// When the next echo may go, or `None` if the lane is done (or closed
    /// by a zero rate).
    fn due(&self, start: Instant, interval: Duration, now: Instant) -> Option<Instant> {
        let seq = u32::try_from(self.sent_at.len()).unwrap_or(u32::MAX);
        if seq >= self.count {
            return None;
        }
        let planned = start + interval * seq;
        let allowed = self.pacer.as_ref()?.earliest(now);
        Some(planned.max(allowed))
    }

    fn record_send(&mut self, now: Instant) {
        if let Some(pacer) = &mut self.pacer {
            pacer.record(now);
        }
        self.sent_at.push(now);
        self.answered.push(false);
    }

    fn on_reply(&mut self, payload: &[u8], now: Instant) {
        let Ok(bytes) = <[u8; ECHO_PAYLOAD_BYTES]>::try_from(payload) else {
            return; // not one of ours
        };
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&bytes[..8]);
        let Ok(seq) = usize::try_from(u64::from_be_bytes(seq)) else {
            return;
        };
        let (Some(sent_at), Some(answered)) = (self.sent_at.get(seq), self.answered.get_mut(seq))
        else {
            return; // never sent
        };
        if *answered {
            return; // duplicate
        }
        *answered = true;
        self.received += 1;
        let rtt_us = u64::try_from((now - *sent_at).as_micros()).unwrap_or(u64::MAX);
        self.rtt_us.saturating_record(rtt_us.max(1));
    }

    fn all_answered(&self) -> bool {
        self.received as usize == self.sent_at.len()
    }

    fn report(&self, lane: Lane, ty: u16) -> LaneReport {
        let at = |q: f64| {
            (self.received > 0).then(|| Duration::from_micros(self.rtt_us.value_at_quantile(q)))
        };
        LaneReport {
            lane,
            ty,
            sent: u32::try_from(self.sent_at.len()).unwrap_or(u32::MAX),
            received: self.received,
            rtt_min: (self.received > 0).then(|| Duration::from_micros(self.rtt_us.min())),
            rtt_p50: at(0.5),
            rtt_p99: at(0.99),
        }
    }
}

/// A client-side mirror of the gateway's per-lane GCRA (`docs/protocol.md`
/// §8), so the client never sends what the gateway would drop. It grants
/// only half the announced burst: arrivals bunch up on the path, and a probe
/// must measure the network, not the limiter.
#[derive(Debug)]
struct Pacer {
    /// Time per message at the sustained rate.
    emission: Duration,
    /// How far ahead of the sustained rate a send may run.
    tolerance: Duration,
    /// Theoretical arrival time of the next message.
    tat: Option<Instant>,
}

impl Pacer {
    /// `None` for a lane with a zero rate, where nothing may be sent.
    fn new(limit: LaneLimit) -> Option<Self> {
        if limit.rate_per_s == 0 {
            return None;
        }
        let emission = Duration::from_secs(1) / limit.rate_per_s;
        Some(Self {
            emission,
            tolerance: emission * (limit.burst / 2),
            tat: None,
        })
    }

    fn earliest(&self, now: Instant) -> Instant {
        match self.tat {
            None => now,
            Some(tat) => now.max(tat.checked_sub(self.tolerance).unwrap_or(now)),
        }
    }

    fn record(&mut self, at: Instant) {
        let base = self.tat.map_or(at, |tat| tat.max(at));
        self.tat = Some(base + self.emission);
    }
}

/// A duration in milliseconds, or `-` when nothing was measured.
struct Ms(Option<Duration>);

impl fmt::Display for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self.0 {
            Some(d) => format!("{:.3}ms", d.as_secs_f64() * 1e3),
            None => "-".to_owned(),
        };
        f.pad(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BULK: LaneLimit = LaneLimit {
        rate_per_s: 10,
        burst: 20,
    };

    #[test]
    fn pacer_allows_half_the_burst_then_the_sustained_rate() {
        let mut pacer = Pacer::new(BULK).unwrap();
        let t0 = Instant::now();
        let mut sent_at_once = 0;
        while pacer.earliest(t0) <= t0 {
            pacer.record(t0);
            sent_at_once += 1;
        }
        assert_eq!(
            sent_at_once, 11,
            "tolerance of 10 emissions, plus the first"
        );
        let next = pacer.earliest(t0);
        assert_eq!(next - t0, Duration::from_millis(100));
        pacer.record(next);
        assert_eq!(pacer.earliest(next) - next, Duration::from_millis(100));
    }

    #[test]
    fn a_zero_rate_lane_sends_nothing() {
        let lane = LaneProbe::new(
            LaneLimit {
                rate_per_s: 0,
                burst: 0,
            },
            10,
        );
        let now = Instant::now();
        assert_eq!(lane.due(now, Duration::ZERO, now), None);
    }

    #[test]
    fn replies_match_by_sequence_and_ignore_duplicates_and_strangers() {
        let mut lane = LaneProbe::new(BULK, 3);
        let t0 = Instant::now();
        lane.record_send(t0);
        lane.record_send(t0);
        let reply = |seq: u64| {
            let mut p = seq.to_be_bytes().to_vec();
            p.extend_from_slice(&0u64.to_be_bytes());
            p
        };
        let later = t0 + Duration::from_millis(5);
        lane.on_reply(&reply(1), later);
        lane.on_reply(&reply(1), later);
        lane.on_reply(&reply(2), later); // never sent
        lane.on_reply(&[1, 2, 3], later); // wrong size
        let report = lane.report(Lane::Bulk, types::ECHO_BULK);
        assert_eq!((report.sent, report.received), (2, 1));
        assert_eq!(report.loss_percent(), 50.0);
        let p50 = report.rtt_p50.unwrap();
        assert!(p50 >= Duration::from_micros(4990) && p50 <= Duration::from_micros(5010));
        assert!(!lane.all_answered());
    }

    #[test]
    fn display_prints_a_row_per_lane() {
        let row = |lane: Lane| LaneReport {
            lane,
            ty: types::ECHO[lane.index()],
            sent: 10,
            received: 9,
            rtt_min: Some(Duration::from_micros(250)),
            rtt_p50: Some(Duration::from_micros(400)),
            rtt_p99: None,
        };
        let report = ProbeReport {
            session: SessionId(1),
            zone: ZoneId(42),
            count: 10,
            interval: Duration::from_millis(100),
            lanes: Lane::ALL.map(row),
        };
        let text = report.to_string();
        assert_eq!(text.lines().count(), 6, "{text}");
        assert!(
            text.contains("critical  0x1fff     10      9   10.0%"),
            "{text}"
        );
        assert!(text.contains("0.250ms"), "{text}");
        assert!(report.all_lanes_answered());
    }
}
