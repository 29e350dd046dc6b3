//! What the attack suites (`e2e_attacks`, `e2e_slow_clients`) share: a
//! gateway with metrics, the bot swarm of `lanegate_bots` as the players,
//! attacks on a thread of their own started when every player is in, the
//! players' critical figures, and a sampler of levels and memory.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lanegate_bots::attack::{self, Attack, AttackConfig, AttackReport};
use lanegate_bots::{BotsConfig, Report, TicketSource};
use lanegate_client::ServerVerify;
use lanegate_common::ids::ZoneId;

use super::{Gateway, Launch, START_TIMEOUT, http_get, metric, rss_bytes};

/// How long a level, a connection count or the memory may take to settle.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// One scenario at a time: each measures a host the others would load.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(f)
}

pub fn start(name: &str, drain_timeout_ms: u64, extra: &str) -> Gateway {
    Gateway::start_with_metrics(&Launch {
        backend: "auto",
        name,
        drain_timeout_ms,
        extra,
    })
}

/// `players` bots of the Arena mix for `play`, players `first..`.
pub fn swarm(gw: &Gateway, players: usize, play: Duration, first: u64) -> BotsConfig {
    let verify = ServerVerify::fingerprint_hex(&gw.fingerprint).expect("a printed pin");
    let mut cfg = BotsConfig::new(gw.addr, verify);
    cfg.clients = players;
    cfg.duration = play;
    cfg.connect_rate_per_s = 200.0;
    cfg.progress_interval = Duration::from_millis(50);
    cfg.tickets = TicketSource::DevKey {
        first_player: first,
        zone: ZoneId(1),
        lifetime: Duration::from_secs(3600),
    };
    cfg
}

/// Runs the swarm; `when_connected` runs once, as soon as every bot has its
/// session (or has failed to get one: a generator on a loaded host may
/// miss a handshake; each scenario checks how many played).
pub async fn play(cfg: BotsConfig, when_connected: impl FnOnce() + Send) -> Report {
    let clients = cfg.clients as u64;
    let mut once = Some(when_connected);
    lanegate_bots::run(cfg, move |snap| {
        if snap.connected + snap.failed >= clients
            && let Some(f) = once.take()
        {
            f();
        }
    })
    .await
    .expect("the swarm runs")
}

/// `cfg`'s attack on a thread of its own, started when `go` fires.
pub fn attack_on(go: mpsc::Receiver<()>, cfg: AttackConfig) -> JoinHandle<AttackReport> {
    std::thread::spawn(move || {
        go.recv_timeout(START_TIMEOUT)
            .expect("the players connected");
        attack::run(&cfg).expect("the attack runs")
    })
}

pub fn attack_cfg(
    kind: Attack,
    gw: &Gateway,
    rate_per_s: u32,
    secs: f64,
    sources: usize,
) -> AttackConfig {
    let mut cfg = AttackConfig::new(kind, gw.addr);
    cfg.rate_per_s = rate_per_s;
    cfg.duration = Duration::from_secs_f64(secs);
    cfg.sources = sources;
    cfg.source_addrs = sources.min(attack::SOURCE_ADDRS_MAX);
    cfg
}

/// Critical echoes answered, of those sent, in percent.
pub fn critical_goodput(r: &Report) -> f64 {
    let c = &r.lanes.critical;
    100.0 * c.received as f64 / c.sent.max(1) as f64
}

pub fn critical_p99_ms(r: &Report) -> f64 {
    r.lanes
        .critical
        .rtt
        .map_or(f64::NAN, |rtt| rtt.p99_us as f64 / 1e3)
}

/// Highest values seen while sampling `/metrics` and `/proc` every 100 ms.
#[derive(Clone, Copy, Debug, Default)]
pub struct Peaks {
    pub shard_level: f64,
    pub core_level: f64,
    pub rss_bytes: u64,
}

/// Samples the gateway until stopped; the metrics endpoint publishes on its
/// own clock, so polling is the only way to see a level.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Peaks>,
}

impl Sampler {
    pub fn start(gw: &Gateway) -> Sampler {
        let (metrics, pid) = (gw.metrics.expect("metrics on"), gw.pid());
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut peaks = Peaks::default();
            while !flag.load(Ordering::Relaxed) {
                if let Ok((200, text)) = http_get(metrics, "/metrics") {
                    let max = |name| max_series(&text, name);
                    peaks.shard_level = peaks.shard_level.max(max("lanegate_shard_overload_level"));
                    peaks.core_level = peaks.core_level.max(max("lanegate_overload_level"));
                }
                peaks.rss_bytes = peaks.rss_bytes.max(rss_bytes(pid));
                std::thread::sleep(Duration::from_millis(100));
            }
            peaks
        });
        Sampler { stop, handle }
    }

    pub fn finish(self) -> Peaks {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("the sampler")
    }
}

/// The largest value of any series of `name`.
pub fn max_series(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .fold(0.0, f64::max)
}

/// Polls `/metrics` until `done` holds for it; how long that took.
pub fn settle(gw: &Gateway, what: &str, done: impl Fn(&str) -> bool) -> Duration {
    let begin = Instant::now();
    loop {
        let text = gw.scrape();
        if done(&text) {
            return begin.elapsed();
        }
        assert!(
            begin.elapsed() < SETTLE_TIMEOUT,
            "{what}: not within {SETTLE_TIMEOUT:?}; last scrape:\n{text}\nlog:\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn connections_open(text: &str) -> f64 {
    metric(text, "lanegate_connections_open", &[]).unwrap_or(f64::NAN)
}

pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}
