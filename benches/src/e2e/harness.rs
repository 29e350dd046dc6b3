//! Starting a server under test and measuring one swarm run against it.
//!
//! A server is a child process, pinned with `taskset -c CORE` when a core
//! is given, that prints `listening ADDR` (and `fingerprint HEX` for QUIC)
//! on stdout. The swarm runs in a child process of its own ([`super::child`])
//! on the core the caller pinned itself to. At each of the child's progress
//! lines the harness samples the server's CPU ticks and the child's, which
//! gives CPU per echoed datagram over the steady stretch (all bots
//! connected, before the last sends) and the bot core's load.

use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use lanegate_bots::{BotsConfig, Mode, Report};
use lanegate_client::ServerVerify;

use super::child::{ChildLine, SWARM_CHILD_ARG, SwarmSpec};
use super::procfs;

/// How long a server may take to print its address.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Stderr lines of a server kept for the error when it fails to start.
const STDERR_KEPT: usize = 20;

/// The candidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// `lanegate serve` on the io_uring backend (`io_backend = "io_uring"`).
    Lanegate,
    /// `lanegate serve` on the portable backend (`io_backend = "portable"`,
    /// quinn-udp): what the `auto` fallback costs where io_uring is refused.
    LanegatePortable,
    /// `lanegate serve` on io_uring with `observability.latency_histograms
    /// = false`: what the latency histograms cost (`--histogram-cost`).
    LanegateNoHistograms,
    /// `baseline-quinn`.
    Quinn,
    /// `baseline-udp`.
    Udp,
}

impl ServerKind {
    /// The name used in figures.
    pub fn name(self) -> &'static str {
        match self {
            Self::Lanegate => "lanegate",
            Self::LanegatePortable => "lanegate-portable",
            Self::LanegateNoHistograms => "lanegate-no-histograms",
            Self::Quinn => "baseline-quinn",
            Self::Udp => "baseline-udp",
        }
    }

    /// Is it `lanegate serve` (either IO backend)?
    pub fn is_lanegate(self) -> bool {
        matches!(
            self,
            Self::Lanegate | Self::LanegatePortable | Self::LanegateNoHistograms
        )
    }

    /// The candidates of the throughput runs, in the order round 0 runs
    /// them (later rounds rotate it, see [`super::stats::rotation`]): the
    /// two lanegate backends side by side, so the pair whose ratio is the
    /// backend headline runs back to back in most rounds.
    pub fn throughput_candidates(portable: bool, histogram_cost: bool) -> Vec<Self> {
        let mut all = vec![Self::Lanegate];
        if histogram_cost {
            all.push(Self::LanegateNoHistograms);
        }
        if portable {
            all.push(Self::LanegatePortable);
        }
        all.extend([Self::Quinn, Self::Udp]);
        all
    }

    /// How the bots talk to it.
    pub fn mode(self) -> Mode {
        match self {
            Self::Udp => Mode::RawUdp,
            _ => Mode::Quic,
        }
    }
}

/// How to start one server.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    /// Which candidate.
    pub kind: ServerKind,
    /// The executable.
    pub exe: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Core to pin it to (`taskset -c`), if any.
    pub core: Option<usize>,
}

/// A running server, killed on drop.
#[derive(Debug)]
pub struct Server {
    /// Which candidate.
    pub kind: ServerKind,
    child: Child,
    /// Its UDP address.
    pub addr: SocketAddr,
    /// Its certificate's SHA-256 (QUIC servers).
    pub fingerprint: Option<String>,
}

impl Server {
    /// Starts the server and waits (at most [`START_TIMEOUT`]) for its
    /// address, and its fingerprint if it speaks QUIC.
    pub fn start(spec: &ServerSpec) -> anyhow::Result<Self> {
        let mut cmd = match spec.core {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(core.to_string()).arg(&spec.exe);
                c
            }
            None => Command::new(&spec.exe),
        };
        let mut child = cmd
            .args(&spec.args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", spec.exe.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        // Reads every line (so the child never blocks on a full pipe) and
        // passes them on until the harness stops listening.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (etx, erx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = etx.send(line);
            }
        });
        let wants_fingerprint = spec.kind.mode() == Mode::Quic;
        let deadline = Instant::now() + START_TIMEOUT;
        let mut addr = None;
        let mut fingerprint = None;
        let failed = |child: &mut Child, why: String| {
            let _ = child.kill();
            let _ = child.wait();
            let tail: Vec<String> = erx.try_iter().collect();
            let tail = &tail[tail.len().saturating_sub(STDERR_KEPT)..];
            anyhow::anyhow!("{} {why}; stderr: {}", spec.kind.name(), tail.join(" | "))
        };
        while addr.is_none() || (wants_fingerprint && fingerprint.is_none()) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(a) = line.strip_prefix("listening ") {
                        match a.trim().parse() {
                            Ok(a) => addr = Some(a),
                            Err(e) => return Err(failed(&mut child, format!("bad address: {e}"))),
                        }
                    } else if let Some(f) = line.strip_prefix("fingerprint ") {
                        fingerprint = Some(f.trim().to_owned());
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(failed(&mut child, "printed no address in time".into()));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Give the stderr reader a moment to collect the reason.
                    std::thread::sleep(Duration::from_millis(100));
                    return Err(failed(&mut child, "exited before listening".into()));
                }
            }
        }
        Ok(Self {
            kind: spec.kind,
            child,
            addr: addr.expect("loop ends with an address"),
            fingerprint,
        })
    }

    /// The process id, as `/proc` names it.
    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// A swarm configuration aimed at this server (mode, verification).
    pub fn bots(&self) -> anyhow::Result<BotsConfig> {
        let verify = match &self.fingerprint {
            Some(f) => ServerVerify::fingerprint_hex(f)
                .map_err(|e| anyhow::anyhow!("fingerprint {f}: {e}"))?,
            None => ServerVerify::InsecureNoVerify,
        };
        let mut cfg = BotsConfig::new(self.addr, verify);
        cfg.mode = self.kind.mode();
        Ok(cfg)
    }

    /// Is it still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One progress sample.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    /// Seconds since the swarm started.
    pub elapsed_s: f64,
    /// Bots connected now.
    pub connected: u64,
    /// Replies received so far, all lanes.
    pub received: u64,
    /// Server CPU ticks so far.
    pub server_ticks: Option<u64>,
    /// This process's CPU ticks so far.
    pub bot_ticks: Option<u64>,
}

/// What one swarm run measured.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// The swarm's own report.
    pub report: Report,
    /// Progress samples.
    pub samples: Vec<Sample>,
    /// Server RSS just before the swarm.
    pub rss_before: Option<u64>,
    /// Server RSS when the most bots were connected.
    pub rss_peak_connected: Option<u64>,
    /// Most bots connected at once.
    pub peak_connected: u64,
    /// Seconds from the start until that peak was first reached.
    pub peak_connected_s: Option<f64>,
    /// Seconds from the start until every bot was connected.
    pub all_connected_s: Option<f64>,
    /// Server CPU microseconds per echoed datagram, steady stretch.
    pub cpu_us_per_dgram: Option<f64>,
    /// Bot-side CPU use over the steady stretch (1.0 = one core).
    pub bot_cpu_load: Option<f64>,
    /// Bot-side CPU use from the first sample until the connection peak
    /// (the handshakes).
    pub bot_cpu_load_connecting: Option<f64>,
}

/// The indices of the steady stretch: from the first sample with at least
/// 98 % of the bots connected (a straggler's handshake retry must not void
/// the run) to the last one at or before `until_s`; `None` if that leaves
/// fewer than two samples.
pub fn steady_window(samples: &[Sample], clients: u64, until_s: f64) -> Option<(usize, usize)> {
    let enough = clients - clients / 50;
    let first = samples.iter().position(|s| s.connected >= enough)?;
    let last = samples.iter().rposition(|s| s.elapsed_s <= until_s)?;
    (last > first).then_some((first, last))
}

/// Server CPU µs per reply received between samples `a` and `b`.
pub fn cpu_us_per_dgram(a: &Sample, b: &Sample, ticks_per_s: u64) -> Option<f64> {
    let ticks = b.server_ticks?.checked_sub(a.server_ticks?)?;
    let echoed = b.received.checked_sub(a.received)?;
    (echoed > 0 && ticks_per_s > 0).then(|| ticks as f64 / ticks_per_s as f64 * 1e6 / echoed as f64)
}

/// A swarm child that must not outlive a measurement that gave up on it
/// (a bad line, a read error): its bots would load the next run's server.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `cfg` against `server` in a child process (`swarm_exe`
/// [`SWARM_CHILD_ARG`], see [`super::child`]; it inherits this thread's CPU
/// affinity) and samples the server and the child every `sample_every`.
pub fn measure(
    server: &Server,
    swarm_exe: &Path,
    mut cfg: BotsConfig,
    sample_every: Duration,
    ticks_per_s: u64,
) -> anyhow::Result<RunOutcome> {
    cfg.progress_interval = sample_every;
    let pid = server.pid();
    let clients = cfg.clients as u64;
    // The first bot starts at once and stops sending `duration` after its
    // session starts: past that, the offered load falls off. Callers make
    // `duration` longer than the ramp so the stretch exists.
    let steady_until = cfg.duration.as_secs_f64();
    let spec = serde_json::to_string(&SwarmSpec::from_config(&cfg)?)?;
    let rss_before = procfs::rss_bytes(&pid);
    let mut child = KillOnDrop(
        Command::new(swarm_exe)
            .arg(SWARM_CHILD_ARG)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting the swarm child {}", swarm_exe.display()))?,
    );
    let bots_pid = child.0.id().to_string();
    {
        let mut stdin = child.0.stdin.take().expect("stdin is piped");
        writeln!(stdin, "{spec}").context("writing the swarm spec")?;
    }
    let stdout = child.0.stdout.take().expect("stdout is piped");
    let mut samples = Vec::new();
    let mut peak_connected = 0;
    let mut peak_connected_s = None;
    let mut rss_peak_connected = None;
    let mut all_connected_s = None;
    let mut report = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading the swarm child")?;
        match serde_json::from_str(&line).with_context(|| format!("swarm child line {line:?}"))? {
            ChildLine::Progress {
                elapsed_s,
                connected,
                received,
            } => {
                let s = Sample {
                    elapsed_s,
                    connected,
                    received,
                    server_ticks: procfs::cpu_ticks(&pid).map(|t| t.total()),
                    bot_ticks: procfs::cpu_ticks(&bots_pid).map(|t| t.total()),
                };
                if s.connected > peak_connected {
                    peak_connected = s.connected;
                    peak_connected_s = Some(s.elapsed_s);
                    rss_peak_connected = procfs::rss_bytes(&pid);
                }
                if all_connected_s.is_none() && s.connected >= clients {
                    all_connected_s = Some(s.elapsed_s);
                }
                samples.push(s);
            }
            ChildLine::Report(r) => report = Some(*r),
        }
    }
    let status = child.0.wait().context("waiting for the swarm child")?;
    let Some(report) = report.filter(|_| status.success()) else {
        bail!("the swarm child failed ({status}) before its report");
    };
    if report.connected == 0 {
        bail!("no bot connected: {report}");
    }
    let window = steady_window(&samples, clients, steady_until);
    let cpu = window.and_then(|(a, b)| cpu_us_per_dgram(&samples[a], &samples[b], ticks_per_s));
    let bot_cpu_load = window.and_then(|(a, b)| {
        let (a, b) = (&samples[a], &samples[b]);
        let ticks = b.bot_ticks?.checked_sub(a.bot_ticks?)?;
        let wall = b.elapsed_s - a.elapsed_s;
        (wall > 0.0).then(|| ticks as f64 / ticks_per_s as f64 / wall)
    });
    let peak_at = samples.iter().position(|s| s.connected >= peak_connected);
    let bot_cpu_load_connecting = peak_at.and_then(|b| {
        let (a, b) = (samples.first()?, &samples[b]);
        let ticks = b.bot_ticks?.checked_sub(a.bot_ticks?)?;
        let wall = b.elapsed_s - a.elapsed_s;
        (wall > 0.0).then(|| ticks as f64 / ticks_per_s as f64 / wall)
    });
    Ok(RunOutcome {
        report,
        bot_cpu_load_connecting,
        samples,
        rss_before,
        rss_peak_connected,
        peak_connected,
        peak_connected_s,
        all_connected_s,
        cpu_us_per_dgram: cpu,
        bot_cpu_load,
    })
}

/// Mean send lag above which the generator counts as behind. tokio's timer
/// has 1 ms granularity, so a keeping-up generator shows 0.5–1.5 ms.
pub const SEND_LAG_LIMITED_US: f64 = 5_000.0;

/// Did the generator fall behind in the measured stretch? Mean send lag
/// over [`SEND_LAG_LIMITED_US`] in a lane that sent, or the bot core above
/// 90 % busy over the steady stretch (throughput runs) or while connecting
/// (handshake runs, which have no steady stretch). The bots are always busy
/// while a throughput run connects; that stretch is not measured.
pub fn bots_limited(outcome: &RunOutcome) -> bool {
    let lagging = outcome
        .report
        .lanes
        .all()
        .iter()
        .any(|l| l.sent > 0 && l.send_lag_mean_us > SEND_LAG_LIMITED_US);
    let busy = |load: Option<f64>| load.is_some_and(|l| l > 0.9);
    let load = outcome.bot_cpu_load.or(outcome.bot_cpu_load_connecting);
    lagging || busy(load)
}
