//! The running gateway: threads, rings, signals and the service manager.
//!
//! [`run`] turns a [`Plan`] into a serving process:
//!
//! 1. installs the signal handlers ([`signals`]) first, so a SIGTERM during
//!    start-up is not lost;
//! 2. makes the TLS identity (self-signed without cert files) and the QUIC
//!    server configuration all cores share;
//! 3. builds every ring and pool between gateway cores and shards
//!    (`lanegate_shard::wiring::build`) and starts one pinned thread per shard
//!    running the configured game ([`shards`]), except shards on a gateway
//!    core's CPU, which that core's thread runs between its packets;
//! 4. binds one `SO_REUSEPORT` socket per gateway core, builds the steering
//!    mesh between the cores (`lanegate_gateway::steer`) and starts one pinned thread per
//!    gateway core ([`core_loop`]), each with its own engine, admission
//!    policy, shard port ([`sink`]) and IO backend;
//! 5. once every core serves: starts the metrics endpoint when
//!    `observability.metrics_listen` names an address (bound before
//!    anything else, so a taken port fails at once; see
//!    [`crate::metrics`]), prints `listening ADDR`, `metrics ADDR` (with the
//!    endpoint) and `fingerprint HEX` on stdout (one line each, for scripts
//!    and tests), logs them, and tells systemd `READY=1` ([`notify`]);
//! 6. on the first SIGTERM/SIGINT: `STOPPING=1`, every core drains (clients
//!    get `SERVER_DRAINING`) until its connections are closed or
//!    `gateway.drain_timeout_ms` passes, then the shards stop and the
//!    process exits 0. A second signal exits at once (status 1).
//!
//! ```text
//!            main thread: start, wait for a signal, join, stop shards
//!   ┌──────────────┐ steer ring ┌──────────────┐
//!   │ gateway core │◀──────────▶│ gateway core │  one UDP socket each (SO_REUSEPORT)
//!   └──────┬───────┘            └──────┬───────┘
//!          │ ToShard / ToGateway rings │
//!   ┌──────┴───────────────────────────┴───────┐
//!   │ shard threads (tick loop) + watchdog     │
//!   └──────────────────────────────────────────┘
//! ```
//!
//! Nothing here is on the per-packet path except [`core_loop`], the
//! steering rings and [`sink`], which allocate nothing per packet in steady state.

mod core_loop;
mod notify;
mod shards;
mod signals;
mod sink;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use lanegate_common::ids::CoreId;
use lanegate_gateway::engine::tls::{Identity, quic_server_config};
use lanegate_gateway::engine::{EngineError, EngineParams};
use lanegate_gateway::steer;
use lanegate_gateway::sys::{self, BackendKind, SocketOptions, SysError};
use lanegate_shard::wiring;
use tracing::{error, info, warn};

use crate::metrics::http::{self as metrics_http, MetricsError, MetricsServer};
use crate::metrics::{CorePublisher, CoreSlot, Sources};
use crate::serve::Plan;

/// How long stopped shard threads get to finish their tick before they are
/// left behind (a game stuck in a tick cannot be interrupted).
pub const SHARD_STOP_GRACE: Duration = Duration::from_secs(2);

/// How often the main thread looks at the signal flag and the core threads.
/// Only start-up and shutdown wait on it, never a packet.
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

/// Runs the gateway `plan` describes until a signal stops it.
pub fn run(plan: &Plan) -> Result<(), RuntimeError> {
    let started = (Instant::now(), SystemTime::now());
    let term = signals::install()?;
    let config = Arc::new(plan.config.clone());
    let g = &config.gateway;
    let metrics_listener = config
        .observability
        .metrics_listen
        .map(metrics_http::bind)
        .transpose()?;

    let identity = Identity::from_config(g)?;
    let server = quic_server_config(&identity, g)?;
    let fingerprint = identity.fingerprint();

    let cores = plan.cores.gateway.len().max(1);
    let shard_cfg = shards::shard_config(plan);
    let gateway_count = u16::try_from(cores)
        .map_err(|_| RuntimeError::Shards("too many gateway cores".to_owned()))?;
    let shard_count = u16::try_from(plan.cores.shards.len().max(1))
        .map_err(|_| RuntimeError::Shards("too many shard cores".to_owned()))?;
    let links = wiring::build(&shard_cfg, gateway_count, shard_count, Instant::now())
        .map_err(|e| RuntimeError::Shards(e.to_string()))?;
    let tier = shards::spawn(
        config.shards.game,
        links.shards,
        &shard_cfg,
        &shards::hosts(plan),
        cores,
    )?;
    let shard_threads = tier.threads;
    let mut hosted = tier.hosted;
    // Cores still serving connections; a core hosting shards keeps running
    // them until every core has drained (their sessions' last messages).
    let cores_busy = Arc::new(AtomicUsize::new(cores));

    let sockets = match sys::bind_group(g.listen, cores, &SocketOptions::from_config(g)) {
        Ok(s) => s,
        Err(e) => {
            shard_threads.stop(SHARD_STOP_GRACE);
            return Err(e.into());
        }
    };
    let mut mesh = steer::mesh(cores, g.steer_slots_max);
    let core_bells: Vec<_> = links.cores.iter().map(|c| Arc::clone(&c.bell)).collect();
    for ends in &mut mesh {
        ends.set_bells(&core_bells);
    }
    let core_slots: Vec<Arc<CoreSlot>> = (0..cores).map(|_| Arc::default()).collect();

    let (ready_tx, ready_rx) = mpsc::channel::<Ready>();
    let mut handles: Vec<(usize, JoinHandle<Result<(), RuntimeError>>)> = Vec::new();
    let mut start_error = None;
    for (index, (((socket, ends), steer), slot)) in sockets
        .into_iter()
        .zip(links.cores)
        .zip(mesh)
        .zip(&core_slots)
        .enumerate()
    {
        let core = CoreId(u16::try_from(index).unwrap_or(u16::MAX));
        let params = match EngineParams::from_config(&config, core, cores, plan.keys.clone()) {
            Ok(p) => p,
            Err(e) => {
                start_error = Some(e.into());
                break;
            }
        };
        let setup = core_loop::CoreSetup {
            index,
            cpu: plan.cores.gateway.get(index).copied(),
            socket,
            ends,
            shard_cfg: shard_cfg.clone(),
            steer,
            hosted: hosted
                .get_mut(index)
                .map(std::mem::take)
                .unwrap_or_default(),
            cores_busy: Arc::clone(&cores_busy),
            params,
            server: Arc::clone(&server),
            config: Arc::clone(&config),
            term: Arc::clone(&term),
            ready: ready_tx.clone(),
            metrics: CorePublisher::new(Arc::clone(slot)),
        };
        let spawned = thread::Builder::new()
            .name(format!("lanegate-gw-{index}"))
            .spawn(move || core_loop::run(setup));
        match spawned {
            Ok(h) => handles.push((index, h)),
            Err(source) => {
                start_error = Some(RuntimeError::Io {
                    what: "starting a gateway core thread",
                    source,
                });
                break;
            }
        }
    }
    drop(ready_tx);

    let mut bound = None;
    if start_error.is_none() {
        for _ in 0..handles.len() {
            match ready_rx.recv() {
                Ok(Ok((index, addr, backend))) => {
                    info!(core = index, backend = backend.name(), %addr, "gateway core serving");
                    bound.get_or_insert(addr);
                }
                Ok(Err(e)) => {
                    start_error = Some(e);
                    break;
                }
                Err(_) => break,
            }
        }
    }
    let mut metrics_server = None;
    let result = match (start_error, bound) {
        (Some(e), _) => Err(e),
        (None, None) => Err(RuntimeError::Core {
            core: 0,
            message: "no gateway core started".to_owned(),
        }),
        (None, Some(addr)) => {
            let sources = Sources {
                cores: core_slots,
                shards: shard_threads.health_slots().to_vec(),
                draining: Arc::clone(&term),
                tick_budget_us: config.shards.tick_budget_us,
                started: started.0,
                started_wall: started.1,
            };
            match metrics_listener
                .map(|l| MetricsServer::start(l, sources))
                .transpose()
            {
                Err(e) => Err(e.into()),
                Ok(server) => {
                    info!("listening on {addr}");
                    info!("certificate fingerprint (sha-256) {fingerprint}");
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "listening {addr}");
                    if let Some(server) = &server {
                        let _ = writeln!(out, "metrics {}", server.addr());
                    }
                    let _ = writeln!(out, "fingerprint {fingerprint}");
                    let _ = out.flush();
                    drop(out);
                    metrics_server = server;
                    notify::notify("READY=1");
                    wait(&term, &handles, config.gateway.drain_timeout_ms)
                }
            }
        }
    };
    if result.is_err() {
        // Stop the cores that did start: they drain like on a signal.
        term.store(true, Ordering::Relaxed);
    }
    notify::notify("STOPPING=1");
    let mut result = result;
    for (index, h) in handles {
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
    let stuck = shard_threads.stop(SHARD_STOP_GRACE);
    if !stuck.is_empty() {
        warn!(
            ?stuck,
            "shards still in a tick after the grace period were left behind"
        );
    }
    // Last, so load balancers see `/healthz` say "draining" all through
    // the drain.
    if let Some(server) = metrics_server {
        server.stop();
    }
    if result.is_ok() {
        info!("drained; exiting");
    }
    result
}

/// Waits for the stop signal; an early end of a core thread is an error.
fn wait(
    term: &AtomicBool,
    handles: &[(usize, JoinHandle<Result<(), RuntimeError>>)],
    drain_timeout_ms: u64,
) -> Result<(), RuntimeError> {
    while !term.load(Ordering::Relaxed) {
        if let Some((index, _)) = handles.iter().find(|(_, h)| h.is_finished()) {
            return Err(RuntimeError::Core {
                core: *index,
                message: "stopped serving unexpectedly".to_owned(),
            });
        }
        thread::park_timeout(MAIN_WAKE);
    }
    info!("signal received: draining (up to {drain_timeout_ms} ms); a second signal exits at once");
    Ok(())
}
