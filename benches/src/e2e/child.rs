//! Each swarm runs in a child process of its own.
//!
//! The generator runs dozens of swarms, up to 10 000 bots each, one after
//! another. In one process the heap carries each swarm's leftovers into the
//! next (fragmentation grew the peak by about 1 GB per 10 000-bot swarm),
//! and the bots of one candidate's run would play on a heap shaped by the
//! run before, which is not the same for every candidate. A child per swarm
//! starts every run from the same state and gives all its memory back when
//! it exits.
//!
//! The parent ([`super::harness::measure`]) starts its own executable with
//! [`SWARM_CHILD_ARG`], writes the swarm as one JSON line ([`SwarmSpec`]) to
//! its stdin, and reads [`ChildLine`]s from its stdout: a progress line per
//! sample, then the report. The child inherits the parent's CPU affinity.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use lanegate_bots::{
    BotsConfig, Flood, LaneLoad, Mode, Report, Snapshot, TicketSource, run_blocking,
};
use lanegate_client::ServerVerify;
use lanegate_common::ids::ZoneId;
use lanegate_common::lanes::Lane;
use lanegate_common::wire::Transport;
use serde::{Deserialize, Serialize};

/// The first argument that makes a harness executable run one swarm from
/// stdin instead of its usual work ([`run_child`]).
pub const SWARM_CHILD_ARG: &str = "--swarm-child";

/// A [`BotsConfig`] as plain data, for the child's stdin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SwarmSpec {
    server: SocketAddr,
    server_name: String,
    /// The pinned certificate's SHA-256 as hex; `None` accepts any
    /// certificate (raw UDP, or a config that asked for no verification).
    fingerprint: Option<String>,
    raw_udp: bool,
    clients: usize,
    duration_us: u64,
    /// Per lane, in lane order: rate per second, payload bytes, stream?
    lanes: Vec<(f64, usize, bool)>,
    /// Lane index and rate.
    flood: Option<(usize, f64)>,
    connect_rate_per_s: f64,
    reply_deadline_us: u64,
    tickets: Tickets,
    progress_interval_us: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Tickets {
    DevKey {
        first_player: u64,
        zone: u32,
        lifetime_us: u64,
    },
    Fixed(String),
}

/// One line of the child's stdout.
#[derive(Debug, Serialize, Deserialize)]
pub enum ChildLine {
    /// A progress sample.
    Progress {
        /// Seconds since the swarm started.
        elapsed_s: f64,
        /// Bots connected now.
        connected: u64,
        /// Replies received so far, all lanes.
        received: u64,
    },
    /// The swarm's report; the last line.
    Report(Box<Report>),
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl SwarmSpec {
    /// The spec of `cfg`. Certificate roots cannot cross a pipe: only a
    /// pinned fingerprint or no verification can.
    pub fn from_config(cfg: &BotsConfig) -> anyhow::Result<Self> {
        let fingerprint = match &cfg.verify {
            ServerVerify::Fingerprint(pin) => {
                Some(pin.iter().map(|b| format!("{b:02x}")).collect())
            }
            ServerVerify::InsecureNoVerify => None,
            other => bail!("a swarm child takes a fingerprint or no verification, not {other:?}"),
        };
        let tickets = match &cfg.tickets {
            TicketSource::DevKey {
                first_player,
                zone,
                lifetime,
            } => Tickets::DevKey {
                first_player: *first_player,
                zone: zone.0,
                lifetime_us: micros(*lifetime),
            },
            TicketSource::Fixed(text) => Tickets::Fixed(text.clone()),
        };
        Ok(Self {
            server: cfg.server,
            server_name: cfg.server_name.clone(),
            fingerprint,
            raw_udp: cfg.mode == Mode::RawUdp,
            clients: cfg.clients,
            duration_us: micros(cfg.duration),
            lanes: cfg
                .lanes
                .iter()
                .map(|l| {
                    (
                        l.rate_per_s,
                        l.payload_bytes,
                        l.transport == Transport::Stream,
                    )
                })
                .collect(),
            flood: cfg.flood.map(|f| (f.lane.index(), f.rate_per_s)),
            connect_rate_per_s: cfg.connect_rate_per_s,
            reply_deadline_us: micros(cfg.reply_deadline),
            tickets,
            progress_interval_us: micros(cfg.progress_interval),
        })
    }

    /// The configuration this spec describes.
    pub fn to_config(&self) -> anyhow::Result<BotsConfig> {
        let verify = match &self.fingerprint {
            Some(hex) => ServerVerify::fingerprint_hex(hex).map_err(|e| anyhow::anyhow!("{e}"))?,
            None => ServerVerify::InsecureNoVerify,
        };
        let mut cfg = BotsConfig::new(self.server, verify);
        cfg.server_name.clone_from(&self.server_name);
        cfg.mode = if self.raw_udp {
            Mode::RawUdp
        } else {
            Mode::Quic
        };
        cfg.clients = self.clients;
        cfg.duration = Duration::from_micros(self.duration_us);
        if self.lanes.len() != Lane::COUNT {
            bail!(
                "{} lanes in the spec, not {}",
                self.lanes.len(),
                Lane::COUNT
            );
        }
        for (load, &(rate_per_s, payload_bytes, stream)) in cfg.lanes.iter_mut().zip(&self.lanes) {
            *load = LaneLoad {
                rate_per_s,
                payload_bytes,
                transport: if stream {
                    Transport::Stream
                } else {
                    Transport::Datagram
                },
            };
        }
        cfg.flood = match self.flood {
            Some((index, rate_per_s)) => Some(Flood {
                lane: *Lane::ALL.get(index).context("the flood's lane index")?,
                rate_per_s,
            }),
            None => None,
        };
        cfg.connect_rate_per_s = self.connect_rate_per_s;
        cfg.reply_deadline = Duration::from_micros(self.reply_deadline_us);
        cfg.tickets = match &self.tickets {
            Tickets::DevKey {
                first_player,
                zone,
                lifetime_us,
            } => TicketSource::DevKey {
                first_player: *first_player,
                zone: ZoneId(*zone),
                lifetime: Duration::from_micros(*lifetime_us),
            },
            Tickets::Fixed(text) => TicketSource::Fixed(text.clone()),
        };
        cfg.progress_interval = Duration::from_micros(self.progress_interval_us);
        Ok(cfg)
    }
}

/// The child's side: reads one [`SwarmSpec`] line from stdin, runs it on a
/// current_thread runtime, and writes [`ChildLine`]s to stdout.
pub fn run_child() -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the swarm spec")?;
    let spec: SwarmSpec = serde_json::from_str(&line).context("parsing the swarm spec")?;
    let cfg = spec.to_config()?;
    let stdout = std::io::stdout();
    let mut write_error = None;
    let report = run_blocking(cfg, 1, |snap: &Snapshot| {
        let progress = ChildLine::Progress {
            elapsed_s: snap.elapsed.as_secs_f64(),
            connected: snap.connected,
            received: snap.received.iter().sum(),
        };
        if write_error.is_none()
            && let Err(e) = emit(&mut stdout.lock(), &progress)
        {
            write_error = Some(e);
        }
    })
    .context("the swarm")?;
    if let Some(e) = write_error {
        return Err(e);
    }
    emit(&mut stdout.lock(), &ChildLine::Report(Box::new(report)))
}

fn emit(out: &mut impl Write, line: &ChildLine) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, line).context("encoding a child line")?;
    out.write_all(b"\n").context("writing to the parent")?;
    out.flush().context("writing to the parent")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_survives_the_pipe() {
        let mut cfg = BotsConfig::new(
            "127.0.0.1:4433".parse().unwrap(),
            ServerVerify::Fingerprint([7; 32]),
        );
        cfg.clients = 1234;
        cfg.duration = Duration::from_millis(4500);
        cfg.lanes[Lane::Normal.index()].transport = Transport::Stream;
        cfg.lanes[Lane::Critical.index()].payload_bytes = 150;
        cfg.flood = Some(Flood {
            lane: Lane::Bulk,
            rate_per_s: 100.0,
        });
        cfg.connect_rate_per_s = 500.0;
        cfg.reply_deadline = Duration::from_millis(500);
        cfg.progress_interval = Duration::from_millis(20);
        let spec = SwarmSpec::from_config(&cfg).unwrap();
        let text = serde_json::to_string(&spec).unwrap();
        let back: SwarmSpec = serde_json::from_str(&text).unwrap();
        assert_eq!(back, spec);
        let rebuilt = back.to_config().unwrap();
        // Every field, through the spec again (BotsConfig has no PartialEq).
        assert_eq!(SwarmSpec::from_config(&rebuilt).unwrap(), spec);
        assert_eq!(rebuilt.clients, 1234);
        assert_eq!(rebuilt.lanes, cfg.lanes);
        assert_eq!(rebuilt.flood, cfg.flood);
        assert!(matches!(rebuilt.verify, ServerVerify::Fingerprint(p) if p == [7; 32]));
    }

    #[test]
    fn certificate_roots_are_refused_by_name() {
        let cfg = BotsConfig::new(
            "127.0.0.1:4433".parse().unwrap(),
            ServerVerify::CaRootsPem("/etc/ca.pem".into()),
        );
        let err = SwarmSpec::from_config(&cfg).unwrap_err();
        assert!(err.to_string().contains("fingerprint"), "{err}");
    }
}
