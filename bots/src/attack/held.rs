//! Held connections: QUIC handshakes that complete and are then held for
//! as long as the gateway allows, each doing what its attack says
//! (`slow.rs`): nothing at all (half-open: no control stream, no `Hello`),
//! a session that trickles a frame (slow sender), or one that never reads
//! (slow reader). The run measures how long the gateway keeps what such a
//! peer made it allocate, and how it ends it.
//!
//! The connections are quinn's, spread over one endpoint per source
//! (`crate::endpoint::bind`, whose small receive buffer lets thousands
//! share a process), started at the asked rate. quinn answers a Retry by
//! itself, as a real client would, so the gateway's Retry under load does
//! not stop the attack, only makes it prove its address. Each connection
//! records how long after its handshake the gateway closed it, and with
//! which code: the gateway's promise is `HELLO_TIMEOUT` within
//! `gateway.hello_timeout_ms` for a half-open one, `ABUSE` within
//! `gateway.frame_stall_ms` for a slow sender.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lanegate_common::wire::CloseCode;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use super::slow::{self, Behaviour};
use super::{AttackConfig, AttackError, Closes, HOLD_MAX, Tally, sources, tls};
use crate::endpoint;

/// How often a held connection's client side sends a keep-alive: it must
/// not be the side that times out.
const KEEP_ALIVE: Duration = Duration::from_secs(1);

/// What became of held connections.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HeldReport {
    /// Handshakes that completed.
    pub established: u64,
    /// Slow clients: sessions that got `Welcome` (before they began to
    /// stall).
    pub sessions: u64,
    /// Slow readers: game messages sent and never read back.
    pub messages_sent: u64,
    /// Handshakes that did not, by reason.
    pub failed: Closes,
    /// Established connections the gateway closed, by close code.
    pub closed: Closes,
    /// Established connections still open after `hold_max` (closed by the
    /// attacker then).
    pub still_open: u64,
    /// Time from handshake to the gateway's close, milliseconds: median.
    pub held_ms_p50: f64,
    /// 99th percentile.
    pub held_ms_p99: f64,
    /// Longest.
    pub held_ms_max: f64,
    /// From the first start until the last connection was closed, seconds.
    pub wall_s: f64,
}

/// Opens `cfg.connections` connections that behave as `behaviour` and
/// waits until each is closed or has been held for `cfg.hold_max`.
pub fn run(cfg: &AttackConfig, behaviour: Behaviour) -> Result<(Tally, HeldReport), AttackError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(open_all(cfg, behaviour))
}

async fn open_all(
    cfg: &AttackConfig,
    behaviour: Behaviour,
) -> Result<(Tally, HeldReport), AttackError> {
    let mut client = tls::client_config(HOLD_MAX + Duration::from_secs(10), Some(KEEP_ALIVE))?;
    if behaviour == Behaviour::NeverRead {
        client.transport_config(slow::never_read_transport(
            HOLD_MAX + Duration::from_secs(10),
            KEEP_ALIVE,
        )?);
    }
    let endpoints = (0..cfg.sources)
        .map(|i| {
            endpoint::bind(SocketAddr::new(
                sources::addr(cfg.server, cfg.source_addrs, i),
                0,
            ))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let start = Instant::now();
    let end = start + cfg.duration;
    let period = Duration::from_secs(1) / cfg.rate_per_s.max(1);
    let mut tally = Tally::default();
    let mut held = JoinSet::new();
    for i in 0..cfg.connections {
        let at = start + period.saturating_mul(u32::try_from(i).unwrap_or(u32::MAX));
        if at >= end {
            break;
        }
        tokio::time::sleep_until(at.into()).await;
        let ep = &endpoints[i % endpoints.len()];
        match ep.connect_with(client.clone(), cfg.server, &cfg.server_name) {
            Ok(connecting) => {
                tally.sent += 1;
                let ticket = slow::ticket(cfg, i);
                held.spawn(hold(connecting, cfg.hold_max, behaviour, ticket));
            }
            Err(_) => tally.errors += 1,
        }
    }
    tally.wall = start.elapsed();
    let mut report = HeldReport::default();
    let mut held_ms = Vec::new();
    while let Some(fate) = held.join_next().await {
        match fate {
            Ok(Fate::Failed(why)) => *report.failed.entry(why).or_default() += 1,
            Ok(Fate::Closed { code, held, played }) => {
                report.established += 1;
                report.add(played);
                *report.closed.entry(code).or_default() += 1;
                held_ms.push(held.as_secs_f64() * 1000.0);
            }
            Ok(Fate::StillOpen(played)) => {
                report.established += 1;
                report.add(played);
                report.still_open += 1;
            }
            Err(e) => *report.failed.entry(format!("task: {e}")).or_default() += 1,
        }
    }
    report.wall_s = start.elapsed().as_secs_f64();
    held_ms.sort_by(f64::total_cmp);
    // Nearest rank: the smallest value with at least `per_mille` ‰ at or below it.
    let at = |per_mille: usize| {
        let rank = (held_ms.len() * per_mille).div_ceil(1000);
        held_ms.get(rank.saturating_sub(1)).copied().unwrap_or(0.0)
    };
    report.held_ms_p50 = at(500);
    report.held_ms_p99 = at(990);
    report.held_ms_max = held_ms.last().copied().unwrap_or(0.0);
    Ok((tally, report))
}

impl HeldReport {
    fn add(&mut self, played: slow::Played) {
        self.sessions += u64::from(played.session);
        self.messages_sent += played.messages_sent;
    }
}

/// How one held connection ended.
enum Fate {
    Failed(String),
    Closed {
        code: String,
        held: Duration,
        played: slow::Played,
    },
    StillOpen(slow::Played),
}

async fn hold(
    connecting: quinn::Connecting,
    hold_max: Duration,
    behaviour: Behaviour,
    ticket: String,
) -> Fate {
    let conn = match tokio::time::timeout(hold_max, connecting).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return Fate::Failed(describe(&e)),
        Err(_) => return Fate::Failed("handshake timed out".into()),
    };
    let established = Instant::now();
    let deadline = established + hold_max;
    // The behaviour runs until the gateway closes the connection (its
    // writes and reads fail then) or the hold is over; the close is what
    // `closed()` reports either way.
    let mut played = slow::Played::default();
    // Past the hold the behaviour is cut off where it is; `played` keeps
    // how far it got.
    let _ = tokio::time::timeout_at(
        deadline.into(),
        slow::behave(&conn, behaviour, &ticket, &mut played),
    )
    .await;
    match tokio::time::timeout_at(deadline.into(), conn.closed()).await {
        Ok(e) => Fate::Closed {
            code: describe(&e),
            held: established.elapsed(),
            played,
        },
        Err(_) => {
            conn.close(0u32.into(), b"");
            Fate::StillOpen(played)
        }
    }
}

/// A close as a report names it: our codes by name.
pub(super) fn describe(e: &quinn::ConnectionError) -> String {
    match e {
        quinn::ConnectionError::ApplicationClosed(close) => {
            let code = close.error_code.into_inner();
            CloseCode::from_code(code)
                .map_or_else(|| format!("application {code}"), |c| c.name().to_owned())
        }
        quinn::ConnectionError::ConnectionClosed(close) => {
            format!("transport {}", close.error_code)
        }
        quinn::ConnectionError::TimedOut => "timed out".to_owned(),
        quinn::ConnectionError::Reset => "reset".to_owned(),
        other => other.to_string(),
    }
}

impl fmt::Display for HeldReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  {} established, {} with a session, {} still open after the hold, in {:.1} s",
            self.established, self.sessions, self.still_open, self.wall_s
        )?;
        if self.messages_sent > 0 {
            writeln!(f, "  {} messages sent, none read back", self.messages_sent)?;
        }
        for (code, n) in &self.closed {
            writeln!(f, "  closed by the gateway with {code}: {n}")?;
        }
        for (why, n) in &self.failed {
            writeln!(f, "  handshake failed ({why}): {n}")?;
        }
        writeln!(
            f,
            "  held until closed: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            self.held_ms_p50, self.held_ms_p99, self.held_ms_max
        )
    }
}
