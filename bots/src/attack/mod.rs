//! Attacks an operator runs against their own gateway (issue 13 §5), to see
//! the defences work before the internet tries them: a handshake flood, a
//! garbage flood, half-open connections and slow clients. (Overload at a multiple of
//! capacity is the swarm itself at N× its lane mix: [`crate::BotsConfig::overload`].)
//!
//! ```text
//!  AttackConfig ─check─▶ sources (sockets on 127.0.0.x:port, or *:port)
//!      │                    │
//!      ├─ HandshakeFlood ──▶ handshake.rs: a fresh QUIC Initial per send (initial.rs), never answered
//!      ├─ GarbageFlood ───▶ garbage.rs: random 1–1500-byte datagrams
//!      ├─ HalfOpen ───────▶ held.rs + slow.rs: handshakes that complete and never send `Hello`
//!      ├─ SlowSenders ────▶ held.rs + slow.rs: sessions that trickle a frame, a byte a second
//!      └─ SlowReaders ────▶ held.rs + slow.rs: sessions that send and never read
//!                           │
//!                           ▼
//!                       AttackReport (Display, JSON)
//! ```
//!
//! **Bounded by construction.** Every knob has a named maximum below and
//! [`AttackConfig::check`] refuses a value past it with the field's name;
//! a run stops at [`AttackConfig::duration`] whatever happens. A target that
//! is not a loopback address is refused unless [`AttackConfig::allow_remote`]
//! is set (`--allow-remote-attack`), so a typo in an address cannot aim a
//! flood at someone else's host.
//!
//! **Cheap to generate.** On a small host the attacker shares the CPUs with
//! the gateway, and every cycle it spends is one the gateway does not get,
//! which would make the defences look worse than they are. The floods run
//! on one thread with connected, blocking sockets and a pacer that sleeps
//! between bursts; garbage is sliced out of one random pool instead of
//! drawn byte by byte; an Initial is one ClientHello sealed again under a
//! fresh connection id (`initial.rs`: a few µs, where a whole client
//! `connect` took 67).
//!
//! **Many sources.** The gateway limits handshakes and connections per
//! source address, so a realistic flood comes from many. Each source is a
//! socket of its own (its own port); on a loopback target the sockets are
//! spread over [`AttackConfig::source_addrs`] addresses of 127/8, which
//! Linux routes to `lo` without configuration. Elsewhere only ports vary:
//! spoofing addresses is not this tool's business.
//!
//! **No trust needed.** Attack traffic carries nothing of value, so its TLS
//! accepts any certificate (`tls.rs`); the handshake signature is still
//! checked, as it costs the server the same either way.

mod garbage;
mod handshake;
mod held;
mod initial;
mod pace;
mod slow;
mod sources;
mod tls;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use lanegate_common::ids::ZoneId;
use serde::{Deserialize, Serialize};

pub use held::HeldReport;
pub use slow::{Behaviour, TRICKLE_PERIOD};

/// Longest attack one run may last.
pub const DURATION_MAX: Duration = Duration::from_secs(600);
/// Most source sockets (ports) one attack may open.
pub const SOURCES_MAX: usize = 4096;
/// Most distinct loopback source addresses (127.0.0.1 and up).
pub const SOURCE_ADDRS_MAX: usize = 4096;
/// Most garbage datagrams per second: about 0.9 GB/s at the mean size, past
/// what one core can send, so the flag cannot ask for the absurd.
pub const GARBAGE_RATE_PER_S_MAX: u32 = 1_000_000;
/// Most Initials per second: four times the flood of issue 13's report.
pub const HANDSHAKE_RATE_PER_S_MAX: u32 = 50_000;
/// Most held connections (half-open, slow) one run opens.
pub const HALF_OPEN_CONNECTIONS_MAX: usize = 20_000;
/// Most held connections started per second.
pub const HALF_OPEN_RATE_PER_S_MAX: u32 = 5_000;
/// Longest a half-open connection waits for the server to close it: past
/// any sane `gateway.hello_timeout_ms` (which may not exceed the idle
/// timeout).
pub const HOLD_MAX: Duration = Duration::from_secs(120);
/// Largest garbage datagram: Ethernet's MTU.
pub const GARBAGE_BYTES_MAX: usize = 1500;

/// Which attack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attack {
    /// Real QUIC v1 Initials, each from a fresh client connection, from
    /// many sources; none is ever answered, so each costs the server what
    /// an unvalidated handshake costs it (a Retry when it is on).
    HandshakeFlood,
    /// Random datagrams of 1 to 1500 bytes from many sources.
    GarbageFlood,
    /// QUIC handshakes that complete and then say nothing: no control
    /// stream, no `Hello`. The gateway must close each with
    /// `HELLO_TIMEOUT` and free it.
    HalfOpen,
    /// Sessions that announce a largest frame on the control stream and
    /// send it a byte a second. The gateway must close each with `ABUSE`
    /// after `gateway.frame_stall_ms`.
    SlowSenders,
    /// Sessions that send echo requests in every lane and never read a
    /// byte. The gateway must bound what it holds for them and serve
    /// everyone else.
    SlowReaders,
}

impl Attack {
    /// Every attack, as `--attack` names them.
    pub const ALL: [Attack; 5] = [
        Attack::HandshakeFlood,
        Attack::GarbageFlood,
        Attack::HalfOpen,
        Attack::SlowSenders,
        Attack::SlowReaders,
    ];

    /// The name `--attack` takes.
    pub const fn name(self) -> &'static str {
        match self {
            Attack::HandshakeFlood => "handshake-flood",
            Attack::GarbageFlood => "garbage-flood",
            Attack::HalfOpen => "half-open",
            Attack::SlowSenders => "slow-senders",
            Attack::SlowReaders => "slow-readers",
        }
    }

    /// What each connection does once established; `None` for the floods,
    /// which establish nothing.
    pub const fn held(self) -> Option<Behaviour> {
        match self {
            Attack::HandshakeFlood | Attack::GarbageFlood => None,
            Attack::HalfOpen => Some(Behaviour::Silent),
            Attack::SlowSenders => Some(Behaviour::Trickle),
            Attack::SlowReaders => Some(Behaviour::NeverRead),
        }
    }

    const fn behaviour(self) -> Behaviour {
        match self.held() {
            Some(b) => b,
            None => Behaviour::Silent,
        }
    }

    /// The highest [`AttackConfig::rate_per_s`] this attack accepts.
    pub const fn rate_per_s_max(self) -> u32 {
        match self {
            Attack::HandshakeFlood => HANDSHAKE_RATE_PER_S_MAX,
            Attack::GarbageFlood => GARBAGE_RATE_PER_S_MAX,
            Attack::HalfOpen | Attack::SlowSenders | Attack::SlowReaders => {
                HALF_OPEN_RATE_PER_S_MAX
            }
        }
    }
}

impl fmt::Display for Attack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Attack {
    type Err = AttackError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Attack::ALL
            .into_iter()
            .find(|a| a.name() == text)
            .ok_or_else(|| AttackError::Config {
                field: "attack",
                reason: format!(
                    "{text:?} is not handshake-flood, garbage-flood, half-open, slow-senders or slow-readers"
                ),
            })
    }
}

/// What to attack, how hard and for how long.
#[derive(Clone, Debug)]
pub struct AttackConfig {
    /// Which attack.
    pub attack: Attack,
    /// The gateway's UDP address.
    pub server: SocketAddr,
    /// TLS server name (SNI) of the handshakes.
    pub server_name: String,
    /// How long the attack sends (half-open: starts connections); at most
    /// [`DURATION_MAX`].
    pub duration: Duration,
    /// Datagrams (garbage), Initials (handshake flood) or new connections
    /// (half-open) per second, over all sources.
    pub rate_per_s: u32,
    /// Source sockets, each its own port, used in turn.
    pub sources: usize,
    /// Distinct source addresses the sockets spread over (127.0.0.1 and
    /// up); more than one only against a loopback target.
    pub source_addrs: usize,
    /// Held attacks (half-open, slow): connections to open (the run ends
    /// earlier when `duration` passes).
    pub connections: usize,
    /// Held attacks: how long each established connection waits for the
    /// server to close it before it is counted as still open.
    pub hold_max: Duration,
    /// Slow clients: the player of the first session's development-key
    /// ticket; session `i` is `first_player + i`. Far above the swarm's
    /// players by default, so an attack beside a swarm replaces no one.
    pub first_player: u64,
    /// Slow clients: the zone their tickets name.
    pub zone: ZoneId,
    /// Allow a target that is not a loopback address.
    pub allow_remote: bool,
}

/// Why an attack could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttackError {
    /// A field is out of range.
    #[error("invalid {field}: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The target is not on this host and remote attacks were not allowed.
    #[error(
        "{server} is not a loopback address: attack only hosts you run, and say so with --allow-remote-attack"
    )]
    RemoteTarget {
        /// The target.
        server: SocketAddr,
    },
    /// A socket or the runtime could not be made.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The QUIC client side could not be set up.
    #[error("quic: {0}")]
    Quic(String),
    /// The report could not be serialised.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// What an attack did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttackReport {
    /// The attack.
    pub attack: Attack,
    /// The target.
    pub server: String,
    /// The rate asked for, per second.
    pub rate_per_s: u32,
    /// Source sockets.
    pub sources: usize,
    /// Distinct source addresses.
    pub source_addrs: usize,
    /// Wall time from the first send to the end, seconds.
    pub wall_s: f64,
    /// Datagrams sent (garbage, Initials); for half-open, connections
    /// started.
    pub sent: u64,
    /// Bytes of those datagrams (floods only).
    pub bytes_sent: u64,
    /// Sends the kernel refused (a full buffer, an ICMP error from a
    /// target that went away).
    pub send_errors: u64,
    /// Achieved rate: `sent / wall_s`.
    pub achieved_per_s: f64,
    /// Held attacks only: what became of the connections.
    pub held: Option<HeldReport>,
}

impl AttackConfig {
    /// `attack` against `server` with the defaults: 10 s at 1000 per
    /// second from 200 sources over 50 addresses; a held attack opens 1000
    /// connections and waits up to 30 s for each to be closed; slow
    /// clients are players 4 000 000 000 and up, in zone 1.
    pub fn new(attack: Attack, server: SocketAddr) -> Self {
        Self {
            attack,
            server,
            server_name: "localhost".to_owned(),
            duration: Duration::from_secs(10),
            rate_per_s: 1000,
            sources: 200,
            source_addrs: 50,
            connections: 1000,
            hold_max: Duration::from_secs(30),
            first_player: 4_000_000_000,
            zone: ZoneId(1),
            allow_remote: false,
        }
    }

    /// Checks every field and the target; the error names what is wrong.
    pub fn check(&self) -> Result<(), AttackError> {
        check_target(self.server, self.allow_remote)?;
        let bad = |field, reason: String| Err(AttackError::Config { field, reason });
        if self.duration.is_zero() || self.duration > DURATION_MAX {
            return bad(
                "duration",
                format!("must be above zero and at most {DURATION_MAX:?}"),
            );
        }
        let rate_max = self.attack.rate_per_s_max();
        if self.rate_per_s == 0 || self.rate_per_s > rate_max {
            return bad(
                "rate_per_s",
                format!("{}: must be 1 to {rate_max}", self.attack),
            );
        }
        if self.sources == 0 || self.sources > SOURCES_MAX {
            return bad("sources", format!("must be 1 to {SOURCES_MAX}"));
        }
        if self.source_addrs == 0 || self.source_addrs > SOURCE_ADDRS_MAX {
            return bad("source_addrs", format!("must be 1 to {SOURCE_ADDRS_MAX}"));
        }
        if self.source_addrs > 1 && !sources::many_addrs_possible(self.server) {
            return bad(
                "source_addrs",
                "several source addresses only against an IPv4 loopback target".into(),
            );
        }
        if self.attack.held().is_some() {
            if self.connections == 0 || self.connections > HALF_OPEN_CONNECTIONS_MAX {
                return bad(
                    "connections",
                    format!("must be 1 to {HALF_OPEN_CONNECTIONS_MAX}"),
                );
            }
            if self.hold_max.is_zero() || self.hold_max > HOLD_MAX {
                return bad(
                    "hold_max",
                    format!("must be above zero and at most {HOLD_MAX:?}"),
                );
            }
        }
        Ok(())
    }
}

/// Refuses a target off this host unless `allow_remote`: the check every
/// attack (and the overloading swarm) makes before it sends anything.
pub fn check_target(server: SocketAddr, allow_remote: bool) -> Result<(), AttackError> {
    if allow_remote || server.ip().to_canonical().is_loopback() {
        Ok(())
    } else {
        Err(AttackError::RemoteTarget { server })
    }
}

/// Runs `cfg`'s attack on the calling thread until it is over. Floods
/// block this thread; half-open runs a current-thread tokio runtime of its
/// own, so call it off any runtime (a plain thread, `spawn_blocking`).
pub fn run(cfg: &AttackConfig) -> Result<AttackReport, AttackError> {
    cfg.check()?;
    let mut report = AttackReport {
        attack: cfg.attack,
        server: cfg.server.to_string(),
        rate_per_s: cfg.rate_per_s,
        sources: cfg.sources,
        source_addrs: cfg.source_addrs,
        wall_s: 0.0,
        sent: 0,
        bytes_sent: 0,
        send_errors: 0,
        achieved_per_s: 0.0,
        held: None,
    };
    let tally = match cfg.attack {
        Attack::GarbageFlood => garbage::flood(
            cfg,
            &sources::bind(cfg.server, cfg.sources, cfg.source_addrs)?,
        ),
        Attack::HandshakeFlood => handshake::flood(
            cfg,
            &sources::bind(cfg.server, cfg.sources, cfg.source_addrs)?,
        )?,
        Attack::HalfOpen | Attack::SlowSenders | Attack::SlowReaders => {
            let (tally, held) = held::run(cfg, cfg.attack.behaviour())?;
            report.held = Some(held);
            tally
        }
    };
    report.wall_s = tally.wall.as_secs_f64();
    report.sent = tally.sent;
    report.bytes_sent = tally.bytes;
    report.send_errors = tally.errors;
    report.achieved_per_s = tally.sent as f64 / report.wall_s.max(1e-9);
    Ok(report)
}

impl AttackReport {
    /// Writes the report as pretty JSON to `path`.
    pub fn write_json(&self, path: &Path) -> Result<(), AttackError> {
        std::fs::write(path, serde_json::to_vec_pretty(self)?)?;
        Ok(())
    }
}

impl fmt::Display for AttackReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} against {}: {} sources over {} addresses, asked {}/s",
            self.attack, self.server, self.sources, self.source_addrs, self.rate_per_s
        )?;
        let unit = match self.attack {
            Attack::HalfOpen | Attack::SlowSenders | Attack::SlowReaders => "connections started",
            Attack::HandshakeFlood => "Initials",
            Attack::GarbageFlood => "datagrams",
        };
        writeln!(
            f,
            "  {} {unit} ({} bytes) in {:.1} s = {:.0}/s, {} send errors",
            self.sent, self.bytes_sent, self.wall_s, self.achieved_per_s, self.send_errors
        )?;
        if let Some(h) = &self.held {
            write!(f, "{h}")?;
        }
        Ok(())
    }
}

/// What a sender did, before it becomes a report.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    wall: Duration,
    sent: u64,
    bytes: u64,
    errors: u64,
}

/// Close codes by name, for reports: a code of ours by its
/// `docs/protocol.md` name, anything else as it came.
type Closes = BTreeMap<String, u64>;

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(attack: Attack) -> AttackConfig {
        AttackConfig::new(attack, "127.0.0.1:4433".parse().expect("an address"))
    }

    #[test]
    fn the_defaults_pass_and_every_name_parses_back() {
        for attack in Attack::ALL {
            cfg(attack).check().unwrap();
            assert_eq!(attack.name().parse::<Attack>().unwrap(), attack);
        }
        assert!("syn-flood".parse::<Attack>().is_err());
    }

    #[test]
    fn a_remote_target_needs_the_flag_and_the_error_names_it() {
        let mut c = cfg(Attack::GarbageFlood);
        c.server = "192.0.2.1:4433".parse().unwrap();
        c.source_addrs = 1;
        let e = c.check().unwrap_err();
        assert!(matches!(e, AttackError::RemoteTarget { .. }));
        assert!(e.to_string().contains("--allow-remote-attack"), "{e}");
        c.allow_remote = true;
        c.check().unwrap();
        // Several addresses are a loopback trick only.
        c.source_addrs = 2;
        assert!(matches!(
            c.check(),
            Err(AttackError::Config {
                field: "source_addrs",
                ..
            })
        ));
        assert!(check_target("[::1]:1".parse().unwrap(), false).is_ok());
        assert!(check_target("[::ffff:127.0.0.1]:1".parse().unwrap(), false).is_ok());
    }

    #[test]
    fn every_bound_is_checked_by_name() {
        let field = |c: AttackConfig| match c.check() {
            Err(AttackError::Config { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let mut c = cfg(Attack::HandshakeFlood);
        c.rate_per_s = HANDSHAKE_RATE_PER_S_MAX + 1;
        assert_eq!(field(c), "rate_per_s");
        let mut c = cfg(Attack::GarbageFlood);
        c.duration = DURATION_MAX + Duration::from_secs(1);
        assert_eq!(field(c), "duration");
        let mut c = cfg(Attack::GarbageFlood);
        c.sources = SOURCES_MAX + 1;
        assert_eq!(field(c), "sources");
        let mut c = cfg(Attack::HalfOpen);
        c.connections = HALF_OPEN_CONNECTIONS_MAX + 1;
        assert_eq!(field(c), "connections");
        let mut c = cfg(Attack::HalfOpen);
        c.hold_max = Duration::ZERO;
        assert_eq!(field(c), "hold_max");
        let mut c = cfg(Attack::SlowReaders);
        c.connections = 0;
        assert_eq!(field(c), "connections");
    }
}
