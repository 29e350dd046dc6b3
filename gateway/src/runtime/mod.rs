//! The running gateway, as a library: [`Gateway::start`] turns a [`Plan`]
//! and a [`GameFactory`] into serving threads, and the returned handle
//! says where it listens, begins the drain and waits for it.
//!
//! `lanegate serve` is a thin caller of this module (signals, stdout,
//! `sd_notify`); integration tests and a studio's own binary start a
//! gateway the same way, in-process, on an ephemeral port:
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::sync::atomic::AtomicBool;
//!
//! use lanegate_common::config::{Config, HostInfo};
//! use lanegate_gateway::runtime::{Gateway, Plan};
//! use lanegate_shard::games::Echo;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = Config::default();
//! config.gateway.listen = "127.0.0.1:0".parse()?;
//! let host = HostInfo { cores: 2 };
//! config.validate(&host)?;
//! let plan = Plan::new(config, &host)?;
//! let gateway = Gateway::start(&plan, |_shard| Echo, Arc::new(AtomicBool::new(false)))?;
//! println!("serving on {}", gateway.local_addr());
//! gateway.begin_drain();
//! gateway.join()?; // every core drained, the shards stopped
//! # Ok(())
//! # }
//! ```
//!
//! [`Gateway::start`] runs these steps in order, each a function below:
//! `bind_metrics`, `tls`, `start_shards`, `bind_cores`,
//! `spawn_cores`, `await_cores`, then the metrics endpoint. A failure
//! at any step stops what the earlier steps started. The threads, the
//! loop of a core and the path of a message are described once, in
//! `docs/ARCHITECTURE.md` ("Threads and cores", "The running gateway").

mod core_loop;
mod overload;
mod plan;
mod shard_load;
mod shards;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use lanegate_common::config::{Config, GameKind};
use lanegate_common::ids::CoreId;
use lanegate_shard::games::{Arena, Demo, Echo};
use lanegate_shard::levels::LevelBoard;
use lanegate_shard::wiring::{self, CoreEnds};
use lanegate_shard::worker::{HostedShard, ShardThreads};
use lanegate_udp::{self as sys, BackendKind, BoundSocket, SocketDrops, SocketOptions, SysError};
use tracing::{error, info, warn};

use crate::engine::tls::{Identity, quic_server_config};
use crate::engine::{EngineError, EngineParams};
use crate::metrics::http::{self as metrics_http, MetricsError, MetricsServer};
use crate::metrics::monitor_view::MonitorSlot;
use crate::metrics::{CorePublisher, CoreSlot, Sources};
use crate::monitor::Monitor;
use crate::steer;

use self::overload::KernelDropBoard;
pub use self::plan::Plan;
use self::shard_load::{ShardLimits, ShardLoadThread};
pub use self::shards::{GameFactory, GameStart};

/// How long stopped shard threads get to finish their tick before they are
/// left behind (a game stuck in a tick cannot be interrupted).
pub const SHARD_STOP_GRACE: Duration = Duration::from_secs(2);

/// How often [`Gateway::wait_for_stop`] looks at the stop flag and the core
/// threads. Only start-up and shutdown wait on it, never a packet.
const MAIN_WAKE: Duration = Duration::from_millis(20);

/// Why the gateway could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The engine (TLS, QUIC configuration) could not be built.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A socket or IO backend could not be set up.
    #[error(transparent)]
    Sys(#[from] SysError),
    /// The shard tier could not be configured or started.
    #[error("shards: {0}")]
    Shards(String),
    /// Admission limits could not be built.
    #[error("admission: {0}")]
    Admission(String),
    /// The metrics endpoint could not start.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// A thread could not be started, or a signal handler installed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// A gateway core failed while serving.
    #[error("gateway core {core}: {message}")]
    Core {
        /// The core's index among the gateway cores.
        core: usize,
        /// What went wrong.
        message: String,
    },
}

/// What a core reports once it serves (or why it cannot).
type Ready = Result<(usize, SocketAddr, BackendKind), RuntimeError>;

type CoreThread = (usize, JoinHandle<Result<(), RuntimeError>>);

/// A serving gateway: every core bound and serving, the shards running.
///
/// Dropping it without [`Gateway::join`] leaves the threads running; the
/// process then ends them when it exits.
#[must_use = "a gateway serves until it is drained with `begin_drain` and `join`"]
pub struct Gateway {
    addr: SocketAddr,
    backends: Vec<BackendKind>,
    fingerprint: String,
    stop: Arc<AtomicBool>,
    cores: Vec<CoreThread>,
    shards: ShardThreads,
    /// Runs each shard's degradation ladder.
    shard_load: Option<ShardLoadThread>,
    /// Learns the series, alerts and forecasts (`crate::monitor`).
    monitor: Option<Monitor>,
    metrics: Option<MetricsServer>,
}

impl Gateway {
    /// Starts the gateway `plan` describes, its shards running games made
    /// by `games`, and returns once every core serves.
    ///
    /// `stop` begins the drain when it turns true (the CLI registers its
    /// signal handlers on it before calling this, so a signal during
    /// start-up is not lost); [`Gateway::begin_drain`] sets it too.
    pub fn start<F: GameFactory>(
        plan: &Plan,
        games: F,
        stop: Arc<AtomicBool>,
    ) -> Result<Gateway, RuntimeError> {
        let started = (Instant::now(), SystemTime::now());
        let config = Arc::new(plan.config.clone());
        let metrics_listener = bind_metrics(&config)?;
        let (identity, server) = tls(&config)?;
        let cores = plan.cores.gateway.len().max(1);
        let (links, tier, levels) = start_shards(plan, games, cores)?;
        let sockets = match bind_cores(&config, cores) {
            Ok(sockets) => sockets,
            Err(e) => {
                tier.threads.stop(SHARD_STOP_GRACE);
                return Err(e);
            }
        };
        let socket_drops = SocketDrops::new(sockets.iter().map(|s| s.inode).collect());
        let kernel_drops = Arc::new(KernelDropBoard::new(cores));
        let core_slots: Vec<Arc<CoreSlot>> = (0..cores).map(|_| Arc::default()).collect();
        let shared = CoreShared {
            plan,
            config: &config,
            server: &server,
            stop: Arc::clone(&stop),
            cores_busy: Arc::new(AtomicUsize::new(cores)),
            kernel_drops: Arc::clone(&kernel_drops),
        };
        let mut gateway = Gateway {
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            backends: Vec::new(),
            fingerprint: identity.fingerprint(),
            stop,
            cores: Vec::new(),
            shards: tier.threads,
            shard_load: None,
            monitor: None,
            metrics: None,
        };
        let limits = ShardLimits::new(&shards::shard_config(plan), cores);
        let slots = gateway.shards.health_slots().to_vec();
        let kernel = (socket_drops.clone(), kernel_drops);
        match ShardLoadThread::spawn(slots, levels, &config.overload, limits, kernel) {
            Ok(thread) => gateway.shard_load = Some(thread),
            Err(source) => {
                let _ = gateway.join();
                return Err(RuntimeError::Io {
                    what: "starting the shard load thread",
                    source,
                });
            }
        }
        let served = spawn_cores(
            &shared,
            sockets,
            links,
            tier.hosted,
            &core_slots,
            &mut gateway.cores,
        )
        .and_then(|ready| await_cores(&ready, gateway.cores.len()));
        let metrics = served.and_then(|(addr, backends)| {
            gateway.addr = addr;
            gateway.backends = backends;
            let sources = Sources {
                cores: core_slots,
                shards: gateway.shards.health_slots().to_vec(),
                shard_latency: tier.latency_slots,
                socket_drops,
                draining: Arc::clone(&gateway.stop),
                tick_budget_us: config.shards.tick_budget_us,
                started: started.0,
                started_wall: started.1,
                monitor: Some(MonitorSlot::new()),
            };
            let monitor_slot = sources.monitor.clone().unwrap_or_default();
            gateway.monitor = Some(
                Monitor::spawn(&config, sources.clone(), monitor_slot).map_err(|source| {
                    RuntimeError::Io {
                        what: "starting the monitor thread",
                        source,
                    }
                })?,
            );
            metrics_listener
                .map(|l| MetricsServer::start(l, sources))
                .transpose()
                .map_err(RuntimeError::from)
        });
        match metrics {
            Ok(server) => {
                gateway.metrics = server;
                Ok(gateway)
            }
            Err(e) => {
                // Stop what did start: the cores drain like on a signal.
                let _ = gateway.join();
                Err(e)
            }
        }
    }

    /// Starts the built-in game `config.shards.game` names (demo, echo or
    /// arena), as `lanegate serve` does.
    pub fn start_builtin(plan: &Plan, stop: Arc<AtomicBool>) -> Result<Gateway, RuntimeError> {
        match plan.config.shards.game {
            GameKind::Demo => Gateway::start(plan, |_| Demo::default(), stop),
            GameKind::Echo => Gateway::start(plan, |_| Echo, stop),
            GameKind::Arena => Gateway::start(plan, |_| Arena::default(), stop),
        }
    }

    /// The address the cores' sockets are bound to (the port picked, when
    /// the configuration said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The metrics endpoint's address, when `observability.metrics_listen`
    /// is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsServer::addr)
    }

    /// The SHA-256 fingerprint of the certificate the gateway presents, as
    /// colon-separated hex bytes (clients pin it in development).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The IO backend each core runs, in core order.
    pub fn backends(&self) -> &[BackendKind] {
        &self.backends
    }

    /// Begins the drain: every core closes its sessions with
    /// `SERVER_DRAINING` and refuses new ones. [`Gateway::join`] waits for
    /// it to finish.
    pub fn begin_drain(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Blocks until the drain is asked for (the stop flag rises). A core
    /// thread that ends before that is an error: the gateway can no longer
    /// serve as configured.
    pub fn wait_for_stop(&self) -> Result<(), RuntimeError> {
        while !self.stop.load(Ordering::Relaxed) {
            if let Some((index, _)) = self.cores.iter().find(|(_, h)| h.is_finished()) {
                return Err(RuntimeError::Core {
                    core: *index,
                    message: "stopped serving unexpectedly".to_owned(),
                });
            }
            thread::park_timeout(MAIN_WAKE);
        }
        Ok(())
    }

    /// Drains (if not begun yet), waits for every core to finish its drain
    /// (its connections closed, or `gateway.drain_timeout_ms` passed),
    /// stops the shards and, last, the metrics endpoint, so `/healthz`
    /// says "draining" all through the drain. Returns the first error a
    /// core reported.
    pub fn join(self) -> Result<(), RuntimeError> {
        self.begin_drain();
        let mut result = Ok(());
        for (index, h) in self.cores {
            let outcome = h.join().unwrap_or_else(|_| {
                Err(RuntimeError::Core {
                    core: index,
                    message: "the thread panicked".to_owned(),
                })
            });
            if let Err(e) = outcome {
                error!(core = index, "{e}");
                if result.is_ok() {
                    result = Err(e);
                }
            }
        }
        if let Some(thread) = self.shard_load {
            thread.stop();
        }
        // Writes the baselines file on its way out.
        if let Some(monitor) = self.monitor {
            monitor.stop();
        }
        let stuck = self.shards.stop(SHARD_STOP_GRACE);
        if !stuck.is_empty() {
            warn!(
                ?stuck,
                "shards still in a tick after the grace period were left behind"
            );
        }
        if let Some(server) = self.metrics {
            server.stop();
        }
        result
    }
}

/// Step 1: binds the metrics endpoint's listener first, so a taken port
/// fails the start before anything else runs.
fn bind_metrics(config: &Config) -> Result<Option<TcpListener>, RuntimeError> {
    Ok(config
        .observability
        .metrics_listen
        .map(metrics_http::bind)
        .transpose()?)
}

/// Step 2: the TLS identity (without cert files, a self-signed one kept in
/// `gateway.state_dir`) and the QUIC server configuration all cores share.
fn tls(config: &Config) -> Result<(Identity, Arc<quinn_proto::ServerConfig>), RuntimeError> {
    let g = &config.gateway;
    let kept = match (&g.cert_file, &g.key_file) {
        (None, None) => crate::load::state_dir(&g.state_dir),
        _ => None,
    };
    let identity = match kept {
        Some((dir, named)) => match Identity::self_signed_in(&dir) {
            Ok(identity) => identity,
            Err(e) if !named => {
                tracing::warn!(
                    "cannot keep the self-signed certificate in {} ({e}): using a fresh one, \
                     whose fingerprint changes at every start; set gateway.state_dir",
                    dir.display()
                );
                Identity::self_signed()?
            }
            Err(e) => return Err(e.into()),
        },
        None => Identity::from_config(g)?,
    };
    let server = quic_server_config(&identity, &config.gateway)?;
    Ok((identity, server))
}

/// Step 3: every ring and pool between gateway cores and shards, and the
/// shards themselves (threads, or hosted by the core on their CPU).
fn start_shards<F: GameFactory>(
    plan: &Plan,
    games: F,
    cores: usize,
) -> Result<(Vec<CoreEnds>, shards::ShardTier, Arc<LevelBoard>), RuntimeError> {
    let shard_cfg = shards::shard_config(plan);
    let gateway_count = u16::try_from(cores)
        .map_err(|_| RuntimeError::Shards("too many gateway cores".to_owned()))?;
    let shard_count = u16::try_from(plan.cores.shards.len().max(1))
        .map_err(|_| RuntimeError::Shards("too many shard cores".to_owned()))?;
    let links = wiring::build(&shard_cfg, gateway_count, shard_count, Instant::now())
        .map_err(|e| RuntimeError::Shards(e.to_string()))?;
    let tier = shards::spawn(
        games,
        links.shards,
        &shard_cfg,
        &shards::hosts(plan),
        cores,
        links.fences,
    )?;
    Ok((links.cores, tier, links.levels))
}

/// Step 4: one `SO_REUSEPORT` socket per gateway core.
fn bind_cores(config: &Config, cores: usize) -> Result<Vec<BoundSocket>, RuntimeError> {
    let g = &config.gateway;
    Ok(sys::bind_group(
        g.listen,
        cores,
        &SocketOptions::from_config(g),
    )?)
}

/// What every core's setup shares.
struct CoreShared<'a> {
    plan: &'a Plan,
    config: &'a Arc<Config>,
    server: &'a Arc<quinn_proto::ServerConfig>,
    stop: Arc<AtomicBool>,
    cores_busy: Arc<AtomicUsize>,
    kernel_drops: Arc<KernelDropBoard>,
}

/// Step 5: the steering mesh between the cores and one pinned thread per
/// core, each with its engine, admission, shard links and IO backend. The
/// threads started go into `threads` (even when a later one fails, so the
/// caller joins them); returns where they report that they serve.
fn spawn_cores(
    shared: &CoreShared<'_>,
    sockets: Vec<BoundSocket>,
    links: Vec<CoreEnds>,
    mut hosted: Vec<Vec<HostedShard>>,
    slots: &[Arc<CoreSlot>],
    threads: &mut Vec<CoreThread>,
) -> Result<mpsc::Receiver<Ready>, RuntimeError> {
    let cores = sockets.len();
    let mut mesh = steer::mesh(cores, shared.config.gateway.steer_slots_max);
    let core_bells: Vec<_> = links.iter().map(|c| Arc::clone(&c.bell)).collect();
    for ends in &mut mesh {
        ends.set_bells(&core_bells);
    }
    let (ready_tx, ready_rx) = mpsc::channel::<Ready>();
    let items = sockets.into_iter().zip(links).zip(mesh).zip(slots);
    for (index, (((socket, ends), steer), slot)) in items.enumerate() {
        let core = CoreId(u16::try_from(index).unwrap_or(u16::MAX));
        let params =
            EngineParams::from_config(shared.config, core, cores, shared.plan.keys.clone())?;
        let setup = core_loop::CoreSetup {
            index,
            cpu: shared.plan.cores.gateway.get(index).copied(),
            socket,
            ends,
            shard_cfg: shards::shard_config(shared.plan),
            steer,
            hosted: hosted
                .get_mut(index)
                .map(std::mem::take)
                .unwrap_or_default(),
            cores_busy: Arc::clone(&shared.cores_busy),
            params,
            server: Arc::clone(shared.server),
            config: Arc::clone(shared.config),
            term: Arc::clone(&shared.stop),
            ready: ready_tx.clone(),
            metrics: CorePublisher::new(Arc::clone(slot)),
            kernel_drops: Arc::clone(&shared.kernel_drops),
        };
        let spawned = thread::Builder::new()
            .name(format!("lanegate-gw-{index}"))
            .spawn(move || core_loop::run(setup));
        let handle = spawned.map_err(|source| RuntimeError::Io {
            what: "starting a gateway core thread",
            source,
        })?;
        threads.push((index, handle));
    }
    Ok(ready_rx)
}

/// Step 6: waits until every core serves; returns the bound address and
/// each core's backend, or the first core's error.
fn await_cores(
    ready: &mpsc::Receiver<Ready>,
    cores: usize,
) -> Result<(SocketAddr, Vec<BackendKind>), RuntimeError> {
    let mut addr = None;
    let mut backends = vec![BackendKind::Portable; cores];
    for _ in 0..cores {
        match ready.recv() {
            Ok(Ok((index, bound, backend))) => {
                info!(core = index, backend = backend.name(), %bound, "gateway core serving");
                addr.get_or_insert(bound);
                if let Some(b) = backends.get_mut(index) {
                    *b = backend;
                }
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => break,
        }
    }
    addr.map(|a| (a, backends)).ok_or(RuntimeError::Core {
        core: 0,
        message: "no gateway core started".to_owned(),
    })
}
