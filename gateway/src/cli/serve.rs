//! `lanegate serve`: from validated configuration to a running gateway.
//!
//! [`run`] prints the plan, starts a [`Gateway`] running the game (the
//! configured built-in one, or a studio's), prints `listening ADDR`, `metrics ADDR` (when on) and
//! `fingerprint HEX` on stdout (one line each, for scripts and tests),
//! tells systemd `READY=1`, and on the first SIGTERM/SIGINT drains
//! (`STOPPING=1`); a second signal exits at once.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tracing::{info, warn};

use super::{CliError, doctor, notify, signals};
use crate::runtime::{Gateway, Plan};

/// Runs the gateway described by `plan`, started by `start` with the stop
/// flag the signals set: reports the plan on stdout, then serves until
/// SIGTERM/SIGINT and a drain.
pub fn run(
    plan: &Plan,
    start: impl FnOnce(Arc<AtomicBool>) -> Result<Gateway, CliError>,
) -> Result<(), CliError> {
    // First, so a signal during start-up is not lost.
    let stop = signals::install().map_err(|source| CliError::Io {
        what: "installing the signal handlers".to_owned(),
        source,
    })?;
    if plan.uses_dev_key() {
        warn!("!!! NO TICKET KEYS CONFIGURED: using the built-in DEV key (id 0) !!!");
        warn!("!!! its secret is public: ANYONE can mint tickets for this gateway !!!");
        warn!("!!! add [[tickets.keys]] entries before exposing it to players !!!");
    }
    let facts = doctor::Facts::gather(&doctor::Roots::default(), true);
    let findings = doctor::evaluate(&facts, &plan.config, &plan.cores);
    info!("{}", doctor::summary(&findings));
    print!("{plan}");
    let gateway = start(stop)?;
    info!("listening on {}", gateway.local_addr());
    info!(
        "certificate fingerprint (sha-256) {}",
        gateway.fingerprint()
    );
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening {}", gateway.local_addr());
    if let Some(addr) = gateway.metrics_addr() {
        let _ = writeln!(out, "metrics {addr}");
    }
    let _ = writeln!(out, "fingerprint {}", gateway.fingerprint());
    let _ = out.flush();
    drop(out);
    notify::notify("READY=1");
    let waited = gateway.wait_for_stop();
    if waited.is_ok() {
        info!(
            "signal received: draining (up to {} ms); a second signal exits at once",
            plan.config.gateway.drain_timeout_ms
        );
    }
    notify::notify("STOPPING=1");
    let joined = gateway.join();
    waited?;
    joined?;
    info!("drained; exiting");
    Ok(())
}
