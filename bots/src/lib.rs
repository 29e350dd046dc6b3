//! `lanegate-bots`: a game-shaped load generator. A swarm of bots plays the
//! Arena traffic shape of `docs/shard.md` against a gateway (or a baseline
//! server) and measures every message's round trip per lane.
//!
//! **Why a crate of its own.** A game client links `lanegate-client` and
//! needs a session, a transport and a probe; a load generator needs
//! progress bars, HDR histograms, JSON and an HTML report, and must host
//! thousands of QUIC endpoints in one process. The two used to share one
//! crate; now the SDK carries nothing only the bots use, and the bots use
//! the SDK exactly as a game would (its public API, no private door). The
//! `lanegate bots` command and the end-to-end harness (`benches/`) are its
//! users.
//!
//! ```text
//!  run ──spawn──▶ bot ×N ──connect_on──▶ lanegate_client::Client ──QUIC──▶ server
//!   │              │ open-loop sends, replies matched by sequence number
//!   │              ├─ counters (atomics) ─────▶ Snapshot ─▶ progress callback
//!   │              └─ RTTs in batches ────────▶ one HDR histogram per lane
//!   └─ at the end: bots' tallies + histograms ─▶ Report (JSON, table, HTML)
//! ```
//!
//! Each bot is one tokio task with its own connection. It sends the
//! diagnostic echo type of each lane (`docs/protocol.md` §9: `0x1fff`
//! critical inputs, `0x2fff` high position updates, `0x3fff` normal chat,
//! `0x4fff` bulk telemetry), so every message the gateway lets through comes
//! back and yields an RTT.
//!
//! **Open loop.** A bot sends on a fixed schedule per lane (message `k` is
//! due at `start + phase + k / rate`) whatever the replies do. When the bot
//! falls behind (a slow runtime, a stream send waiting for flow control) it
//! sends the overdue messages at once, and the RTT of every message is
//! measured from its *intended* send time, never from when it actually left.
//! A closed-loop generator (send, wait, send) slows down exactly when the
//! server does and so hides the stall from its own histogram: coordinated
//! omission. Here a stall shows up in full.
//!
//! **Loss.** A message without a reply within [`BotsConfig::reply_deadline`]
//! is lost. The gateway drops messages over a lane's rate limit silently
//! (`docs/protocol.md` §8), so each bot also runs a mirror of the lane's GCRA
//! with the limits from `Welcome` (the default limits in raw-UDP mode) and
//! marks each send as within or over the limit; the report splits the loss
//! accordingly (`lost_over_limit`), which tells "the gateway rate-limited the
//! flood" from "the network or the server lost messages".
//!
//! **Data flow.** [`run`] spawns the bots on the current tokio runtime,
//! ramping connections at [`BotsConfig::connect_rate_per_s`]. Bots add to
//! shared atomic counters, from which [`run`] builds a [`Snapshot`] for the
//! progress callback every [`BotsConfig::progress_interval`]. RTTs go into
//! one HDR histogram per lane shared by all bots (each bot adds its samples
//! in batches, so a bot costs a few KiB, not a histogram per lane); at the
//! end [`run`] merges the bots' counts and the histograms into the
//! [`Report`] (JSON with serde, a summary table as `Display`, an HTML page
//! with percentile plots via [`Report::write_html`]).
//!
//! **Raw UDP.** With [`Mode::RawUdp`] the bots send the same echo messages
//! as plain UDP datagrams (`type ‖ payload`, no QUIC, no session) to a
//! reflector such as `baseline-udp`: the floor against which QUIC and the
//! gateway's costs are read.
//!
//! **Memory per bot.** Each bot has an endpoint of its own (its own socket,
//! so the server sees one 4-tuple per bot), made by [`endpoint::bind`]: a
//! quinn endpoint whose receive buffer holds one datagram per batch slot
//! (46 KiB) instead of quinn's default 64 GRO segments per slot (3 MiB),
//! with the socket's UDP_GRO off to match. That is what lets one process
//! run swarm after swarm of thousands of bots; [`endpoint`] says why and
//! what it measured.
//!
//! ```no_run
//! # async fn go() -> Result<(), lanegate_bots::BotsError> {
//! use lanegate_bots::{BotsConfig, run};
//! use lanegate_client::ServerVerify;
//! let mut cfg = BotsConfig::new("127.0.0.1:4433".parse().expect("an address"),
//!     ServerVerify::InsecureNoVerify);
//! cfg.clients = 100;
//! let report = run(cfg, |snap| eprintln!("{snap}")).await?;
//! println!("{report}");
//! report.write_html("swarm.html".as_ref())?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod attack;
mod bot;
pub mod endpoint;
mod progress;
mod report;

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use lanegate_common::ids::ZoneId;
use lanegate_common::lanes::Lane;
use lanegate_common::wire::Transport;
use tokio::task::JoinSet;
use tokio::time::Instant;

use lanegate_client::ServerVerify;

pub use progress::indicatif_progress;
pub use report::{LaneReport, Lanes, PercentilePoint, Report, RttSummary};

/// Most bots one run may start (each holds a socket and a task).
pub const CLIENTS_MAX: usize = 100_000;
/// Most messages per second one bot may be asked to send in one lane.
pub const RATE_PER_S_MAX: f64 = 100_000.0;
/// Smallest echo payload: the bot's sequence number (`u64`, big-endian).
pub const PAYLOAD_BYTES_MIN: usize = 8;
/// Largest echo payload in a datagram: the protocol's default
/// `datagram_message_bytes_max` (1100) less the two type bytes.
pub const DATAGRAM_PAYLOAD_BYTES_MAX: usize = 1098;
/// Largest echo payload on a stream: the default `stream_message_bytes_max`
/// (16384) less the two type bytes.
pub const STREAM_PAYLOAD_BYTES_MAX: usize = 16382;
/// Largest RTT the histograms record (60 s); longer ones are clamped.
pub const RTT_US_MAX: u64 = 60_000_000;
/// Longest reply deadline: a bot keeps every send of the last deadline's
/// worth (rate × deadline slots per lane).
pub const REPLY_DEADLINE_MAX: Duration = Duration::from_secs(60);
/// Longest dev-key ticket lifetime: the gateway's default `ttl_max`
/// (`docs/protocol.md` §6.4) refuses longer ones.
pub const TICKET_LIFETIME_MAX: Duration = Duration::from_secs(86_400);
/// Distinct bot errors a report keeps (the rest are only counted).
pub const ERRORS_KEPT_MAX: usize = 16;
/// Largest [`BotsConfig::overload`] factor. At 8× the Arena's 30 inputs a
/// second a bot reaches `critical`'s default limit (240/s); past it the
/// overload is a flood of one lane, which `flood` already says.
pub const OVERLOAD_FACTOR_MAX: f64 = 8.0;

pub use lanegate_common::wire::DEFAULT_LANE_LIMITS;

/// What the swarm does.
#[derive(Clone, Debug)]
pub struct BotsConfig {
    /// The gateway's (or baseline server's) UDP address.
    pub server: SocketAddr,
    /// The name in the server's certificate (SNI); `"localhost"` for a
    /// development gateway with a pinned fingerprint.
    pub server_name: String,
    /// How to trust the server's certificate (QUIC mode).
    pub verify: ServerVerify,
    /// QUIC sessions or raw UDP datagrams.
    pub mode: Mode,
    /// Bots to run, one connection each.
    pub clients: usize,
    /// How long each bot plays after its session starts.
    pub duration: Duration,
    /// What each bot sends per lane, in lane order (critical, high, normal,
    /// bulk).
    pub lanes: [LaneLoad; Lane::COUNT],
    /// Abuse: every bot sends this lane at this rate instead of its
    /// configured one (`--flood-lane bulk=RATE`).
    pub flood: Option<Flood>,
    /// Connections started per second (the ramp); `0` starts all at once.
    pub connect_rate_per_s: f64,
    /// A message not answered within this time is lost; after its last send
    /// a bot waits this long for stragglers.
    pub reply_deadline: Duration,
    /// Where each bot's ticket comes from (QUIC mode).
    pub tickets: TicketSource,
    /// How often [`run`] calls the progress callback.
    pub progress_interval: Duration,
}

/// How the bots reach the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A QUIC session per bot through the client SDK (`Hello`, `Welcome`,
    /// datagrams and the control stream).
    Quic,
    /// Plain UDP datagrams, one message each, to a reflector: no QUIC, no
    /// session, no streams (every lane goes as a datagram).
    RawUdp,
}

/// One lane's traffic per bot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LaneLoad {
    /// Messages per second per bot; `0` sends nothing in the lane.
    pub rate_per_s: f64,
    /// Echo payload bytes (at least [`PAYLOAD_BYTES_MIN`]).
    pub payload_bytes: usize,
    /// Datagram or control stream (raw UDP always uses datagrams).
    pub transport: Transport,
}

/// A lane flooded beyond its limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Flood {
    /// The lane.
    pub lane: Lane,
    /// Messages per second per bot in that lane.
    pub rate_per_s: f64,
}

/// Where bots get their tickets.
#[derive(Clone, Debug)]
pub enum TicketSource {
    /// Mint one per bot with the development key (`KeySet::dev()`): bot `i`
    /// is player `first_player + i` in `zone`, valid for `lifetime`.
    DevKey {
        /// Player id of bot 0.
        first_player: u64,
        /// Zone every ticket names.
        zone: ZoneId,
        /// Ticket lifetime from now.
        lifetime: Duration,
    },
    /// Every bot presents this ticket (a ticket may be reused until it
    /// expires).
    Fixed(String),
}

/// Why a swarm could not run. Failures of single bots (a refused session, a
/// lost connection) do not stop the swarm: they are counted in the
/// [`Report`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BotsError {
    /// A configuration field is out of range.
    #[error("invalid {field}: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The report could not be written, or the runtime not built.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The report could not be serialised.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// The swarm's state while it runs, for a progress display.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Time since [`run`] started.
    pub elapsed: Duration,
    /// How long the run should take (ramp, play and the reply wait).
    pub expected: Duration,
    /// Bots asked for.
    pub clients: usize,
    /// Bots with a session (or a socket, in raw-UDP mode) now.
    pub connected: u64,
    /// Bots whose connection or session failed.
    pub failed: u64,
    /// Messages sent so far, per lane.
    pub sent: [u64; Lane::COUNT],
    /// Replies received so far, per lane.
    pub received: [u64; Lane::COUNT],
    /// The run is over; this is the last snapshot.
    pub done: bool,
}

impl BotsConfig {
    /// The Arena shape of `docs/shard.md` for 10 bots over 10 s: critical
    /// inputs 30/s (8 bytes), high position updates at a 20 Hz tick (64
    /// bytes), normal chat one per 5 s on the control stream (32 bytes),
    /// bulk telemetry 1/s (10 bytes); connections ramp at 50/s, replies are
    /// due within 1 s, dev-key tickets for players 1000.. in zone 1.
    pub fn new(server: SocketAddr, verify: ServerVerify) -> Self {
        let lane = |rate_per_s, payload_bytes, transport| LaneLoad {
            rate_per_s,
            payload_bytes,
            transport,
        };
        Self {
            server,
            server_name: "localhost".to_owned(),
            verify,
            mode: Mode::Quic,
            clients: 10,
            duration: Duration::from_secs(10),
            lanes: [
                lane(30.0, 8, Transport::Datagram),
                lane(20.0, 64, Transport::Datagram),
                lane(0.2, 32, Transport::Stream),
                lane(1.0, 10, Transport::Datagram),
            ],
            flood: None,
            connect_rate_per_s: 50.0,
            reply_deadline: Duration::from_secs(1),
            tickets: TicketSource::DevKey {
                first_player: 1000,
                zone: ZoneId(1),
                lifetime: Duration::from_secs(3600),
            },
            progress_interval: Duration::from_millis(500),
        }
    }

    /// Overload at `factor` times the lane mix (`--overload`): every
    /// lane's rate, the flood's too, multiplied by `factor` (1 to
    /// [`OVERLOAD_FACTOR_MAX`]). Run against a gateway whose capacity the
    /// unmultiplied mix fills, it is overload at that multiple of capacity.
    pub fn overload(&mut self, factor: f64) -> Result<(), BotsError> {
        if !(1.0..=OVERLOAD_FACTOR_MAX).contains(&factor) {
            return Err(BotsError::Config {
                field: "overload",
                reason: format!("{factor} is not within 1 to {OVERLOAD_FACTOR_MAX}"),
            });
        }
        for lane in &mut self.lanes {
            lane.rate_per_s *= factor;
        }
        if let Some(flood) = &mut self.flood {
            flood.rate_per_s *= factor;
        }
        Ok(())
    }

    /// The rate each bot sends `lane` at, the flood included.
    pub fn rate_per_s(&self, lane: Lane) -> f64 {
        match self.flood {
            Some(f) if f.lane == lane => f.rate_per_s,
            _ => self.lanes[lane.index()].rate_per_s,
        }
    }

    /// The transport `lane` uses in this mode.
    pub fn transport(&self, lane: Lane) -> Transport {
        match self.mode {
            Mode::RawUdp => Transport::Datagram,
            Mode::Quic => self.lanes[lane.index()].transport,
        }
    }

    /// Time from the first connection to the last bot's start.
    pub fn ramp(&self) -> Duration {
        if self.connect_rate_per_s <= 0.0 || self.clients == 0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((self.clients - 1) as f64 / self.connect_rate_per_s)
    }

    /// Checks every field; the error names the one at fault.
    pub fn check(&self) -> Result<(), BotsError> {
        let bad = |field, reason: String| Err(BotsError::Config { field, reason });
        if self.clients == 0 || self.clients > CLIENTS_MAX {
            return bad("clients", format!("must be 1 to {CLIENTS_MAX}"));
        }
        if self.duration.is_zero() {
            return bad("duration", "must be above zero".into());
        }
        if self.reply_deadline.is_zero() || self.reply_deadline > REPLY_DEADLINE_MAX {
            return bad(
                "reply_deadline",
                format!("must be above zero and at most {REPLY_DEADLINE_MAX:?}"),
            );
        }
        if let TicketSource::DevKey { lifetime, .. } = &self.tickets
            && (lifetime.is_zero() || *lifetime > TICKET_LIFETIME_MAX)
        {
            return bad(
                "tickets.lifetime",
                format!("must be above zero and at most {TICKET_LIFETIME_MAX:?} (ttl_max)"),
            );
        }
        for lane in Lane::ALL {
            let rate = self.rate_per_s(lane);
            if !(0.0..=RATE_PER_S_MAX).contains(&rate) {
                return bad(
                    "lanes.rate_per_s",
                    format!("{lane}: {rate} is not within 0 to {RATE_PER_S_MAX}"),
                );
            }
            let bytes = self.lanes[lane.index()].payload_bytes;
            let max = match self.transport(lane) {
                Transport::Datagram => DATAGRAM_PAYLOAD_BYTES_MAX,
                Transport::Stream => STREAM_PAYLOAD_BYTES_MAX,
            };
            if !(PAYLOAD_BYTES_MIN..=max).contains(&bytes) {
                return bad(
                    "lanes.payload_bytes",
                    format!("{lane}: {bytes} is not within {PAYLOAD_BYTES_MIN} to {max}"),
                );
            }
        }
        Ok(())
    }
}

impl FromStr for Flood {
    type Err = BotsError;

    /// `LANE=RATE`, as `--flood-lane bulk=500` takes it.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| BotsError::Config {
            field: "flood",
            reason,
        };
        let (lane, rate) = text
            .split_once('=')
            .ok_or_else(|| bad(format!("{text:?} is not LANE=RATE")))?;
        let lane: Lane = lane
            .trim()
            .parse()
            .map_err(|_| bad(format!("{lane:?} is not critical, high, normal or bulk")))?;
        let rate_per_s: f64 = rate
            .trim()
            .parse()
            .map_err(|_| bad(format!("{rate:?} is not a rate")))?;
        if !(0.0..=RATE_PER_S_MAX).contains(&rate_per_s) {
            return Err(bad(format!(
                "{rate_per_s} is not within 0 to {RATE_PER_S_MAX}"
            )));
        }
        Ok(Flood { lane, rate_per_s })
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>5.1}s bots {}/{} failed {}",
            self.elapsed.as_secs_f64(),
            self.connected,
            self.clients,
            self.failed
        )?;
        for lane in Lane::ALL {
            let i = lane.index();
            write!(
                f,
                " | {} {}/{}",
                lane.name(),
                self.received[i],
                self.sent[i]
            )?;
        }
        Ok(())
    }
}

/// Counters and histograms the bots share with [`run`] while they play.
#[derive(Debug)]
struct Live {
    connected: AtomicU64,
    failed: AtomicU64,
    sent: [AtomicU64; Lane::COUNT],
    received: [AtomicU64; Lane::COUNT],
    /// RTTs per lane, microseconds, from every bot (added in batches).
    rtt_us: [Mutex<Histogram<u64>>; Lane::COUNT],
}

impl Live {
    fn new() -> Self {
        Self {
            connected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            sent: Default::default(),
            received: Default::default(),
            rtt_us: std::array::from_fn(|_| Mutex::new(bot::rtt_histogram())),
        }
    }

    /// The histograms, once every bot is done.
    fn take_histograms(&self) -> [Histogram<u64>; Lane::COUNT] {
        self.rtt_us.each_ref().map(|h| {
            let mut h = h.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::replace(&mut *h, bot::rtt_histogram())
        })
    }

    fn snapshot(&self, cfg: &BotsConfig, start: Instant, done: bool) -> Snapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Snapshot {
            elapsed: start.elapsed(),
            expected: cfg.ramp() + cfg.duration + cfg.reply_deadline,
            clients: cfg.clients,
            connected: load(&self.connected),
            failed: load(&self.failed),
            sent: self.sent.each_ref().map(load),
            received: self.received.each_ref().map(load),
            done,
        }
    }
}

/// Runs the swarm on the current tokio runtime (current_thread or
/// multi-thread): starts the bots along the ramp, calls `progress` every
/// [`BotsConfig::progress_interval`] and once more at the end (with
/// [`Snapshot::done`]), and reports once every bot has finished.
pub async fn run(
    cfg: BotsConfig,
    mut progress: impl FnMut(&Snapshot),
) -> Result<Report, BotsError> {
    cfg.check()?;
    let cfg = Arc::new(cfg);
    let live = Arc::new(Live::new());
    let start = Instant::now();
    let mut bots = JoinSet::new();
    for index in 0..cfg.clients {
        let connect_at = if cfg.connect_rate_per_s > 0.0 {
            start + Duration::from_secs_f64(index as f64 / cfg.connect_rate_per_s)
        } else {
            start
        };
        bots.spawn(bot::play(cfg.clone(), live.clone(), index, connect_at));
    }
    let mut report = report::Collector::new(&cfg);
    let mut tick = tokio::time::interval(cfg.progress_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => progress(&live.snapshot(&cfg, start, false)),
            joined = bots.join_next() => match joined {
                Some(Ok(outcome)) => report.add(outcome),
                Some(Err(e)) => report.add_error(format!("bot task failed: {e}")),
                None => break,
            },
        }
    }
    let report = report.finish(start.elapsed(), &live.take_histograms());
    progress(&live.snapshot(&cfg, start, true));
    Ok(report)
}

/// [`run`] on a fresh runtime, for callers without one: current_thread for
/// `worker_threads <= 1`, else a multi-thread runtime with that many
/// workers (the bots then spread over them; the progress callback stays on
/// the calling thread).
pub fn run_blocking(
    cfg: BotsConfig,
    worker_threads: usize,
    progress: impl FnMut(&Snapshot),
) -> Result<Report, BotsError> {
    let runtime = if worker_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(run(cfg, progress))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BotsConfig {
        BotsConfig::new(
            "127.0.0.1:1".parse().expect("an address"),
            ServerVerify::InsecureNoVerify,
        )
    }

    #[test]
    fn the_default_shape_passes_its_checks() {
        cfg().check().unwrap();
        assert_eq!(cfg().ramp(), Duration::from_secs_f64(9.0 / 50.0));
    }

    #[test]
    fn checks_name_the_field() {
        let mut c = cfg();
        c.lanes[0].payload_bytes = 4;
        assert!(matches!(
            c.check(),
            Err(BotsError::Config {
                field: "lanes.payload_bytes",
                ..
            })
        ));
        let mut c = cfg();
        c.flood = Some(Flood {
            lane: Lane::Bulk,
            rate_per_s: -1.0,
        });
        assert!(matches!(
            c.check(),
            Err(BotsError::Config {
                field: "lanes.rate_per_s",
                ..
            })
        ));
        let mut c = cfg();
        c.clients = 0;
        assert!(c.check().is_err());
    }

    #[test]
    fn a_flood_overrides_its_lane_only() {
        let mut c = cfg();
        c.flood = Some(Flood {
            lane: Lane::Bulk,
            rate_per_s: 500.0,
        });
        assert_eq!(c.rate_per_s(Lane::Bulk), 500.0);
        assert_eq!(c.rate_per_s(Lane::Critical), 30.0);
    }

    #[test]
    fn a_flood_parses_from_lane_equals_rate() {
        let flood: Flood = "bulk=500".parse().unwrap();
        assert_eq!(
            flood,
            Flood {
                lane: Lane::Bulk,
                rate_per_s: 500.0
            }
        );
        assert!("bulk".parse::<Flood>().is_err());
        assert!("loud=5".parse::<Flood>().is_err());
        assert!("bulk=-5".parse::<Flood>().is_err());
    }

    #[test]
    fn ticket_lifetime_and_deadline_are_bounded() {
        let mut c = cfg();
        c.tickets = TicketSource::DevKey {
            first_player: 1,
            zone: ZoneId(1),
            lifetime: Duration::from_secs(86_401),
        };
        assert!(matches!(
            c.check(),
            Err(BotsError::Config {
                field: "tickets.lifetime",
                ..
            })
        ));
        let mut c = cfg();
        c.reply_deadline = Duration::from_secs(61);
        assert!(c.check().is_err());
    }

    #[test]
    fn overload_multiplies_every_lane_within_bounds() {
        let mut c = cfg();
        c.overload(2.0).unwrap();
        assert_eq!(c.rate_per_s(Lane::Critical), 60.0);
        assert_eq!(c.rate_per_s(Lane::Normal), 0.4);
        assert!(matches!(
            c.overload(OVERLOAD_FACTOR_MAX + 1.0),
            Err(BotsError::Config {
                field: "overload",
                ..
            })
        ));
        assert!(c.overload(0.5).is_err());
    }

    #[test]
    fn raw_udp_sends_every_lane_as_datagrams() {
        let mut c = cfg();
        c.mode = Mode::RawUdp;
        assert_eq!(c.transport(Lane::Normal), Transport::Datagram);
    }
}
