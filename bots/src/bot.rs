//! One bot: connects, plays the open-loop schedule of every lane, matches
//! replies to sends and hands back its tallies.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use lanegate_common::ids::PlayerId;
use lanegate_common::lanes::Lane;
use lanegate_common::ticket::{DEV_KEY_ID, KeySet, Ticket};
use lanegate_common::wire::{LaneLimit, Transport, types};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use lanegate_client::limit::LaneGcra;
use lanegate_client::{Client, ClientError, ConnectOptions, Event, connect_on};

use crate::{BotsConfig, DEFAULT_LANE_LIMITS, Live, Mode, RTT_US_MAX, TicketSource, endpoint};

/// Spreads the bots' schedules over a period (golden-ratio sequence), so a
/// swarm does not send in lock step.
const PHASE_STEP: f64 = 0.618_033_988_749_895;
/// RTT samples a lane of a bot buffers before adding them to the swarm's
/// shared histogram: one lock per batch, and a bot's memory stays a few KiB
/// (a histogram of its own would be ~140 KiB per lane).
const RTT_BATCH_SAMPLES: usize = 256;
/// Bytes of a raw-UDP receive buffer: the largest datagram message.
const UDP_RECV_BYTES: usize = 2048;

/// What one bot measured.
#[derive(Debug)]
pub(crate) struct BotOutcome {
    /// The session (or socket) was established.
    pub connected: bool,
    /// Why the bot stopped early, if it did.
    pub error: Option<String>,
    /// The gateway's close code, when the gateway ended the session (by
    /// its `docs/protocol.md` name).
    pub closed_by: Option<&'static str>,
    /// The lane limits the bot accounted against.
    pub limits: [LaneLimit; Lane::COUNT],
    /// Per lane, in lane order.
    pub lanes: [LaneTally; Lane::COUNT],
}

/// One lane's counts for one bot (and, merged, for the swarm). RTTs go to
/// the swarm's shared histograms ([`Live::rtt_us`]) in batches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LaneTally {
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    /// Lost messages the GCRA mirror had marked as over the lane's limit.
    pub lost_over_limit: u64,
    /// Sends the GCRA mirror marked as over the lane's limit.
    pub sent_over_limit: u64,
    /// Sum of how late sends left after their intended time, µs.
    pub send_lag_total_us: u64,
    /// Latest send after its intended time, µs.
    pub send_lag_max_us: u64,
}

impl LaneTally {
    pub fn merge(&mut self, other: &LaneTally) {
        self.sent += other.sent;
        self.received += other.received;
        self.lost += other.lost;
        self.lost_over_limit += other.lost_over_limit;
        self.sent_over_limit += other.sent_over_limit;
        self.send_lag_total_us = self
            .send_lag_total_us
            .saturating_add(other.send_lag_total_us);
        self.send_lag_max_us = self.send_lag_max_us.max(other.send_lag_max_us);
    }
}

/// An empty RTT histogram: microseconds, 1 µs to [`RTT_US_MAX`], three
/// significant digits.
pub(crate) fn rtt_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, RTT_US_MAX, 3).expect("constant histogram bounds are valid")
}

/// Plays one bot: waits for `connect_at`, connects, plays, reports.
pub(crate) async fn play(
    cfg: Arc<BotsConfig>,
    live: Arc<Live>,
    index: usize,
    connect_at: Instant,
) -> BotOutcome {
    tokio::time::sleep_until(connect_at).await;
    let mut outcome = BotOutcome {
        connected: false,
        error: None,
        closed_by: None,
        limits: DEFAULT_LANE_LIMITS,
        lanes: [LaneTally::default(); Lane::COUNT],
    };
    let mut link = match Link::open(&cfg, index).await {
        Ok(link) => link,
        Err(e) => {
            live.failed.fetch_add(1, Ordering::Relaxed);
            outcome.error = Some(format!("connect: {e}"));
            return outcome;
        }
    };
    outcome.connected = true;
    outcome.limits = link.limits();
    live.connected.fetch_add(1, Ordering::Relaxed);
    let result = schedule(&cfg, &live, index, &mut link, &mut outcome).await;
    live.connected.fetch_sub(1, Ordering::Relaxed);
    if let Err(e) = result {
        live.failed.fetch_add(1, Ordering::Relaxed);
        outcome.closed_by = e.closed().map(|c| c.code.name());
        outcome.error = Some(e.to_string());
    }
    link.close().await;
    outcome
}

/// The open-loop send schedule and reply matching, until every lane has
/// sent its share and every reply is in or overdue.
async fn schedule(
    cfg: &BotsConfig,
    live: &Live,
    index: usize,
    link: &mut Link,
    outcome: &mut BotOutcome,
) -> Result<(), ClientError> {
    let begin = Instant::now();
    let end = begin + cfg.duration;
    let phase = (index as f64 * PHASE_STEP).fract();
    let mut lanes: Vec<LaneRun> = Lane::ALL
        .iter()
        .map(|&lane| LaneRun::new(cfg, lane, outcome.limits[lane.index()], begin, phase))
        .collect();
    let mut payload = Vec::new();
    let result = loop {
        let now = Instant::now();
        let mut failed = None;
        'lanes: for run in lanes.iter_mut() {
            while let Some(due) = run.due(end) {
                if due > now {
                    break;
                }
                let seq = run.next_seq();
                payload.clear();
                payload.extend_from_slice(&seq.to_be_bytes());
                payload.resize(run.payload_bytes, 0);
                let sent = link.send(run.ty, &payload, run.transport).await;
                run.record_send(due, Instant::now());
                live.sent[run.lane.index()].fetch_add(1, Ordering::Relaxed);
                if let Err(e) = sent {
                    failed = Some(e);
                    break 'lanes;
                }
            }
        }
        if let Some(e) = failed {
            break Err(e);
        }
        let now = Instant::now();
        for run in lanes.iter_mut() {
            run.expire(now, cfg.reply_deadline);
        }
        let next_due = lanes.iter().filter_map(|r| r.due(end)).min();
        let wake = match next_due {
            Some(at) => at,
            None if lanes.iter().all(LaneRun::all_answered) => break Ok(()),
            None if now >= end + cfg.reply_deadline => break Ok(()),
            None => end + cfg.reply_deadline,
        };
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            reply = link.recv() => {
                let (ty, payload) = match reply {
                    Ok(Some(reply)) => reply,
                    Ok(None) => continue,
                    Err(e) => break Err(e),
                };
                let Some(run) = lanes.iter_mut().find(|r| r.ty == ty) else { continue };
                if run.on_reply(&payload, Instant::now(), cfg.reply_deadline) {
                    live.received[run.lane.index()].fetch_add(1, Ordering::Relaxed);
                    if run.rtt_batch.len() >= RTT_BATCH_SAMPLES {
                        run.flush_rtts(&live.rtt_us[run.lane.index()]);
                    }
                }
            }
        }
    };
    for (mut run, tally) in lanes.into_iter().zip(outcome.lanes.iter_mut()) {
        run.flush_rtts(&live.rtt_us[run.lane.index()]);
        *tally = run.finish();
    }
    result
}

/// A bot's connection: a client session or a plain UDP socket.
enum Link {
    Quic(Box<Client>),
    Udp {
        socket: UdpSocket,
        /// Receive buffer.
        buf: Vec<u8>,
        /// Send buffer: `type ‖ payload`.
        out: Vec<u8>,
    },
}

impl Link {
    async fn open(cfg: &BotsConfig, index: usize) -> Result<Self, ClientError> {
        match cfg.mode {
            Mode::Quic => {
                let ticket = ticket(&cfg.tickets, index)?;
                let opts = ConnectOptions::new(
                    cfg.server,
                    cfg.server_name.clone(),
                    ticket,
                    cfg.verify.clone(),
                );
                let endpoint = endpoint::bind(unspecified(cfg.server))?;
                Ok(Link::Quic(Box::new(connect_on(endpoint, opts).await?)))
            }
            Mode::RawUdp => {
                let socket = UdpSocket::bind(unspecified(cfg.server)).await?;
                socket.connect(cfg.server).await?;
                Ok(Link::Udp {
                    socket,
                    buf: vec![0; UDP_RECV_BYTES],
                    out: Vec::with_capacity(UDP_RECV_BYTES),
                })
            }
        }
    }

    fn limits(&self) -> [LaneLimit; Lane::COUNT] {
        match self {
            Link::Quic(client) => client.info().lane_limits,
            Link::Udp { .. } => DEFAULT_LANE_LIMITS,
        }
    }

    async fn send(
        &mut self,
        ty: u16,
        payload: &[u8],
        transport: Transport,
    ) -> Result<(), ClientError> {
        match self {
            Link::Quic(client) => match client.send(ty, payload, transport).await {
                // Too large for the path right now: lost, not fatal.
                Err(ClientError::Datagram(_)) => Ok(()),
                other => other,
            },
            Link::Udp { socket, out, .. } => {
                out.clear();
                out.extend_from_slice(&ty.to_be_bytes());
                out.extend_from_slice(payload);
                socket.send(out).await?;
                Ok(())
            }
        }
    }

    /// The next reply: `Ok(None)` for anything that is not a game message.
    /// Cancel-safe.
    async fn recv(&mut self) -> Result<Option<(u16, Vec<u8>)>, ClientError> {
        match self {
            Link::Quic(client) => match client.recv().await? {
                Event::Message { ty, payload, .. } => Ok(Some((ty, payload))),
                _ => Ok(None),
            },
            Link::Udp { socket, buf, .. } => {
                let n = socket.recv(buf).await?;
                let Some((ty, payload)) = buf[..n].split_first_chunk::<2>() else {
                    return Ok(None);
                };
                Ok(Some((u16::from_be_bytes(*ty), payload.to_vec())))
            }
        }
    }

    async fn close(self) {
        if let Link::Quic(client) = self {
            client.close().await;
        }
    }
}

/// An ephemeral port on the unspecified address of `server`'s family.
fn unspecified(server: SocketAddr) -> SocketAddr {
    match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

pub(crate) fn ticket(source: &TicketSource, index: usize) -> Result<String, ClientError> {
    match source {
        TicketSource::Fixed(text) => Ok(text.clone()),
        TicketSource::DevKey {
            first_player,
            zone,
            lifetime,
        } => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            KeySet::dev()
                .mint(&Ticket {
                    key_id: DEV_KEY_ID,
                    player: PlayerId(first_player.saturating_add(index as u64)),
                    zone: *zone,
                    issued_at_s: now,
                    expires_at_s: now + lifetime.as_secs().max(1),
                })
                .map_err(|e| ClientError::Config {
                    field: "tickets",
                    reason: e.to_string(),
                })
        }
    }
}

/// One lane of one bot while it plays.
struct LaneRun {
    lane: Lane,
    ty: u16,
    transport: Transport,
    payload_bytes: usize,
    /// Time between sends; `None` for a silent lane.
    period: Option<Duration>,
    /// Intended time of message 0.
    first: Instant,
    /// Sequence number of the next send.
    seq: u64,
    /// Sequence number of `outstanding[0]`.
    base_seq: u64,
    /// Sends not yet expired, in sequence order.
    outstanding: VecDeque<Slot>,
    limit: LaneGcra,
    tally: LaneTally,
    /// RTTs (µs) not yet added to the shared histogram.
    rtt_batch: Vec<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    intended: Instant,
    answered: bool,
    over_limit: bool,
}

impl LaneRun {
    fn new(cfg: &BotsConfig, lane: Lane, limit: LaneLimit, begin: Instant, phase: f64) -> Self {
        let rate = cfg.rate_per_s(lane);
        let period = (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate));
        Self {
            lane,
            ty: types::ECHO[lane.index()],
            transport: cfg.transport(lane),
            payload_bytes: cfg.lanes[lane.index()].payload_bytes,
            period,
            first: begin + period.map_or(Duration::ZERO, |p| p.mul_f64(phase)),
            seq: 0,
            base_seq: 0,
            outstanding: VecDeque::new(),
            limit: LaneGcra::new(limit),
            tally: LaneTally::default(),
            rtt_batch: Vec::with_capacity(RTT_BATCH_SAMPLES),
        }
    }

    /// Intended time of the next send, if it falls before `end`.
    fn due(&self, end: Instant) -> Option<Instant> {
        let period = self.period?;
        let at = self.first + period.mul_f64(self.seq as f64);
        (at < end).then_some(at)
    }

    fn next_seq(&self) -> u64 {
        self.seq
    }

    fn record_send(&mut self, intended: Instant, now: Instant) {
        let over_limit = !self.limit.admit(now.into_std());
        self.outstanding.push_back(Slot {
            intended,
            answered: false,
            over_limit,
        });
        self.seq += 1;
        self.tally.sent += 1;
        self.tally.sent_over_limit += u64::from(over_limit);
        let lag_us =
            u64::try_from(now.saturating_duration_since(intended).as_micros()).unwrap_or(u64::MAX);
        self.tally.send_lag_total_us = self.tally.send_lag_total_us.saturating_add(lag_us);
        self.tally.send_lag_max_us = self.tally.send_lag_max_us.max(lag_us);
    }

    /// Matches a reply; true if it answered a send in time.
    fn on_reply(&mut self, payload: &[u8], now: Instant, deadline: Duration) -> bool {
        let Some(seq) = payload.first_chunk::<8>() else {
            return false;
        };
        let seq = u64::from_be_bytes(*seq);
        let Some(index) = seq
            .checked_sub(self.base_seq)
            .and_then(|i| usize::try_from(i).ok())
        else {
            return false; // expired already, or garbage
        };
        let Some(slot) = self.outstanding.get_mut(index) else {
            return false; // never sent
        };
        let rtt = now.saturating_duration_since(slot.intended);
        if slot.answered || rtt > deadline {
            return false; // duplicate, or late (lost when it expires)
        }
        slot.answered = true;
        self.tally.received += 1;
        let rtt_us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
        self.rtt_batch.push(rtt_us.max(1));
        true
    }

    /// Adds the buffered RTTs to `histogram`.
    fn flush_rtts(&mut self, histogram: &Mutex<Histogram<u64>>) {
        let mut histogram = histogram.lock().unwrap_or_else(PoisonError::into_inner);
        for rtt_us in self.rtt_batch.drain(..) {
            histogram.saturating_record(rtt_us);
        }
    }

    /// Retires sends older than the deadline, counting the unanswered ones.
    fn expire(&mut self, now: Instant, deadline: Duration) {
        while let Some(slot) = self.outstanding.front() {
            if slot.intended + deadline > now {
                break;
            }
            self.retire_front();
        }
    }

    fn retire_front(&mut self) {
        if let Some(slot) = self.outstanding.pop_front() {
            self.base_seq += 1;
            if !slot.answered {
                self.tally.lost += 1;
                self.tally.lost_over_limit += u64::from(slot.over_limit);
            }
        }
    }

    fn all_answered(&self) -> bool {
        self.outstanding.iter().all(|s| s.answered)
    }

    fn finish(mut self) -> LaneTally {
        while !self.outstanding.is_empty() {
            self.retire_front();
        }
        self.tally
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lanegate_client::ServerVerify;

    fn lane_run(rate: f64) -> (LaneRun, Instant) {
        let mut cfg = BotsConfig::new(
            "127.0.0.1:1".parse().expect("an address"),
            ServerVerify::InsecureNoVerify,
        );
        cfg.lanes[0].rate_per_s = rate;
        let begin = Instant::now();
        let run = LaneRun::new(&cfg, Lane::Critical, DEFAULT_LANE_LIMITS[0], begin, 0.0);
        (run, begin)
    }

    #[test]
    fn the_schedule_is_fixed_by_rate_and_end() {
        let (mut run, begin) = lane_run(10.0);
        let end = begin + Duration::from_secs(1);
        let mut dues = Vec::new();
        while let Some(due) = run.due(end) {
            dues.push(due);
            run.record_send(due, due);
        }
        assert_eq!(dues.len(), 10);
        assert_eq!(dues[3] - begin, Duration::from_millis(300));
    }

    #[test]
    fn rtt_counts_from_the_intended_time() {
        let (mut run, begin) = lane_run(10.0);
        // Sent 40 ms late; replied 10 ms after the actual send.
        run.record_send(begin, begin + Duration::from_millis(40));
        assert_eq!(run.tally.send_lag_max_us, 40_000);
        let deadline = Duration::from_secs(1);
        assert!(run.on_reply(
            &0u64.to_be_bytes(),
            begin + Duration::from_millis(50),
            deadline
        ));
        let histogram = Mutex::new(rtt_histogram());
        run.flush_rtts(&histogram);
        assert!(run.rtt_batch.is_empty());
        let p50 = histogram.lock().unwrap().value_at_quantile(0.5);
        assert!((49_900..=50_100).contains(&p50), "{p50}");
    }

    #[test]
    fn duplicates_strangers_and_late_replies_do_not_count() {
        let (mut run, begin) = lane_run(10.0);
        let deadline = Duration::from_millis(100);
        run.record_send(begin, begin);
        run.record_send(begin, begin);
        run.record_send(begin, begin);
        let at = begin + Duration::from_millis(5);
        assert!(run.on_reply(&1u64.to_be_bytes(), at, deadline));
        assert!(!run.on_reply(&1u64.to_be_bytes(), at, deadline));
        assert!(!run.on_reply(&9u64.to_be_bytes(), at, deadline));
        assert!(!run.on_reply(&[1, 2], at, deadline));
        assert!(!run.on_reply(
            &2u64.to_be_bytes(),
            begin + Duration::from_millis(101),
            deadline
        ));
        run.expire(begin + Duration::from_millis(200), deadline);
        assert!(!run.on_reply(&0u64.to_be_bytes(), at, deadline), "expired");
        let tally = run.finish();
        assert_eq!((tally.sent, tally.received, tally.lost), (3, 1, 2));
    }

    #[test]
    fn the_limit_mirror_admits_the_burst_then_the_rate() {
        let mut mirror = LaneGcra::new(LaneLimit {
            rate_per_s: 10,
            burst: 20,
        });
        let t0 = Instant::now();
        let admitted = (0..30).filter(|_| mirror.admit(t0.into_std())).count();
        assert_eq!(admitted, 20);
        assert!(mirror.admit((t0 + Duration::from_millis(100)).into_std()));
        assert!(!mirror.admit((t0 + Duration::from_millis(100)).into_std()));
        let mut closed = LaneGcra::new(LaneLimit::default());
        assert!(!closed.admit(t0.into_std()));
    }

    #[test]
    fn over_limit_losses_are_split_out() {
        let (mut run, begin) = lane_run(10.0);
        run.limit = LaneGcra::new(LaneLimit {
            rate_per_s: 1,
            burst: 1,
        });
        run.record_send(begin, begin);
        run.record_send(begin, begin);
        let tally = run.finish();
        assert_eq!((tally.lost, tally.lost_over_limit), (2, 1));
        assert_eq!(tally.sent_over_limit, 1);
    }
}
