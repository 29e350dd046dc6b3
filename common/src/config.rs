//! Lanegate's configuration: one TOML file, every field optional.
//!
//! Text becomes a running plan in three steps, and only the first two live
//! here (this crate does no IO):
//!
//! 1. [`Config::from_toml_str`] parses the file. Every section and field has
//!    a default, so a partial file overrides only what it names and an empty
//!    one (or none at all) runs [`Config::default`], which is exactly
//!    [`DEFAULT_TOML`]. Syntax errors, wrong types and unknown fields are
//!    refused here, each naming its dotted field and line.
//! 2. [`Config::validate`] checks ranges and the relations between limits
//!    (a datagram fits a QUIC packet, a tick budget fits its tick...)
//!    against the [`HostInfo`] the caller measured. Each error names the
//!    field and says how to fix it.
//! 3. The binary resolves cores with [`Config::core_plan`], builds the
//!    [`LaneTable`] with [`LanesConfig::lane_table`], reads the ticket
//!    secrets and starts the gateway and shards.
//!
//! Limits are named with their unit last (`_max`, `_ms`, `_us`, `_bytes`,
//! `_per_s`), and each default documents the assumption behind it.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::ids::KeyId;
use crate::lanes::{Lane, LaneRule, LaneTable};
use crate::ticket::{DEV_KEY_ID, LIFETIME_S_MAX_DEFAULT};

/// The complete default configuration file, with a comment on every field.
///
/// Parsing it gives [`Config::default`]; `lanegate config print-default`
/// prints it.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// The largest `gateway.datagram_message_bytes_max` allowed (so it also
/// fits `Welcome`'s `u16`).
///
/// QUIC guarantees every path carries 1200-byte UDP payloads. A 1-RTT packet
/// spends up to 50 bytes of that on its short header (1 byte of flags, a
/// connection id of up to 20 bytes, a packet number of up to 4), the 16-byte
/// AEAD tag and the DATAGRAM frame's type and length, which leaves 1150 for
/// one message (`type + payload`).
pub const DATAGRAM_MESSAGE_BYTES_LIMIT: usize = 1150;

/// The largest `gateway.stream_message_bytes_max` allowed: each connection
/// may buffer one message of that size per stream, so it is bounded too
/// (and fits `Welcome`'s `u32`).
pub const STREAM_MESSAGE_BYTES_LIMIT: usize = 16 << 20;

/// The highest `shards.tick_rate_hz` allowed: a 1 ms tick is already below
/// the scheduling jitter of a loaded host (and it fits `Welcome`'s `u16`).
pub const TICK_RATE_HZ_LIMIT: u32 = 1000;

// Validated values convert to `Welcome`'s field widths without loss.
const _: () = assert!(DATAGRAM_MESSAGE_BYTES_LIMIT <= u16::MAX as usize);
const _: () = assert!(STREAM_MESSAGE_BYTES_LIMIT <= u32::MAX as usize);
const _: () = assert!(TICK_RATE_HZ_LIMIT <= u16::MAX as u32);

/// The whole configuration, one field per `[section]` of the file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[gateway]`: the QUIC edge: sockets, cores, connection limits.
    pub gateway: GatewayConfig,
    /// `[tickets]`: the keys that sign session tickets.
    pub tickets: TicketsConfig,
    /// `[lanes]`: which message types travel in which lane, and how fast.
    pub lanes: LanesConfig,
    /// `[admission]`: when a misbehaving connection is closed.
    pub admission: AdmissionConfig,
    /// `[shards]`: the game-logic tier: cores, tick, rings, budgets.
    pub shards: ShardsConfig,
    /// `[observability]`: metrics and logs.
    pub observability: ObservabilityConfig,
}

/// `[gateway]`: the QUIC edge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// UDP address the QUIC endpoint binds. Default `0.0.0.0:4433`: all IPv4
    /// interfaces, on the port of the QUIC examples.
    pub listen: SocketAddr,
    /// CPU cores that run gateway threads, one pinned thread per core.
    /// Default `"auto"`: about half of the host's cores, the others going to
    /// the shards (see [`Config::core_plan`]).
    pub cores: CoreSet,
    /// How the gateway does socket IO. Default `"auto"`: io_uring where the
    /// kernel offers it, else the portable backend.
    pub io_backend: IoBackend,
    /// `SO_RCVBUF` of each UDP socket, in bytes. Default 8 MiB: tuned to
    /// absorb about 10 ms of a 5 Gbit/s burst while a core is busy; Linux
    /// caps it at `net.core.rmem_max`, so raise that sysctl too.
    pub socket_recv_buffer_bytes: usize,
    /// `SO_SNDBUF` of each UDP socket, in bytes. Default 8 MiB, for the same
    /// reason as the receive buffer (capped by `net.core.wmem_max`).
    pub socket_send_buffer_bytes: usize,
    /// Most concurrent QUIC connections per gateway process; one more is
    /// refused with SERVER_FULL. Default 10000: tuned for a regional edge
    /// of a few thousand concurrent players with headroom for reconnect
    /// storms, at roughly 100 KiB of state and buffers per connection.
    pub connections_max: u32,
    /// Sustained QUIC handshakes accepted per source IP, per second.
    /// Default 10: a player reconnects far less often, but a carrier-grade
    /// NAT may put many players behind one address.
    pub handshakes_per_ip_per_s: u32,
    /// Handshakes a source IP may make at once before the rate above
    /// applies. Default 20: a household or LAN party reconnecting together.
    pub handshake_burst: u32,
    /// Source addresses whose handshake buckets each gateway core tracks at
    /// once. Default 65536: far more than the addresses that reconnect
    /// within one burst period, at 24 bytes each (1.5 MiB per core); when a
    /// spoofed flood fills it, untracked addresses share one bucket.
    pub handshake_ips_tracked_max: usize,
    /// Time from the end of the QUIC handshake to the client's `Hello`
    /// before the connection is closed with HELLO_TIMEOUT, in ms. Default
    /// 5000: a client sends `Hello` in its first round trip, so this only
    /// tolerates very slow links while bounding idle unauthenticated state.
    pub hello_timeout_ms: u64,
    /// QUIC idle timeout, in ms. Default 10000: a game client sends input
    /// many times a second, so 10 s of silence means it is gone; long
    /// enough to ride out a Wi-Fi to cellular handover.
    pub idle_timeout_ms: u64,
    /// On shutdown, time given to clients to leave (after SERVER_DRAINING)
    /// before connections are closed, in ms. Default 10000: tuned for
    /// clients that reconnect elsewhere within a few seconds.
    pub drain_timeout_ms: u64,
    /// Longest an idle gateway core sleeps without looking at its rings, in
    /// µs. Shards and other cores wake a sleeping core at once when they
    /// push to it (an eventfd doorbell), so this is only a safety net: for
    /// control entries waiting for room in a full ring. Default 10000: 100
    /// wake-ups a second on an idle core.
    pub ring_poll_us: u64,
    /// Packets that may wait in each ring between two gateway cores, for a
    /// connection's packets that land on the wrong core (NAT rebinding).
    /// Default 256: a few loop turns of one rebinding client's traffic,
    /// at about 1.5 KiB per slot; more are dropped and counted (QUIC
    /// retransmits them).
    pub steer_slots_max: usize,
    /// Largest message (`type + payload`) accepted or sent in one QUIC
    /// datagram, in bytes. Default 1100, which leaves headroom under the
    /// hard limit of 1150 ([`DATAGRAM_MESSAGE_BYTES_LIMIT`]) for longer
    /// connection ids; at most 1150 so one message fits a 1200-byte packet.
    pub datagram_message_bytes_max: usize,
    /// Largest message (`type + payload`) accepted or sent on a stream, in
    /// bytes. Default 16384: a chat line or inventory update fits; larger
    /// assets belong on a CDN, not in the game connection. At least the
    /// datagram limit, so any message can fall back to a stream.
    pub stream_message_bytes_max: usize,
    /// PEM certificate chain for TLS. Set together with `key_file`. Default
    /// none: a self-signed certificate is made at start, which suits
    /// development and clients that pin the key, not public deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`. Set together with `cert_file`.
    /// Default none (self-signed at start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 4433)),
            cores: CoreSet::Auto,
            io_backend: IoBackend::Auto,
            socket_recv_buffer_bytes: 8 << 20,
            socket_send_buffer_bytes: 8 << 20,
            connections_max: 10_000,
            handshakes_per_ip_per_s: 10,
            handshake_burst: 20,
            handshake_ips_tracked_max: 65_536,
            hello_timeout_ms: 5_000,
            idle_timeout_ms: 10_000,
            drain_timeout_ms: 10_000,
            ring_poll_us: 10_000,
            steer_slots_max: 256,
            datagram_message_bytes_max: 1100,
            stream_message_bytes_max: 16_384,
            cert_file: None,
            key_file: None,
        }
    }
}

/// Which CPU cores a tier runs on: `"auto"` or a list such as `[0, 1]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CoreSet {
    /// Share the host with the other tier; see [`Config::core_plan`].
    #[default]
    Auto,
    /// These core indices (0-based, as the OS numbers them), one pinned
    /// thread each.
    List(Vec<usize>),
}

/// The socket IO implementation of the gateway.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IoBackend {
    /// io_uring if the kernel offers it, else portable.
    #[default]
    Auto,
    /// Linux io_uring with multishot receive; fails at start if unavailable.
    IoUring,
    /// Plain non-blocking sockets with `recvmmsg`/GSO where available.
    Portable,
}

impl IoBackend {
    /// The name used in configuration.
    pub const fn name(self) -> &'static str {
        match self {
            IoBackend::Auto => "auto",
            IoBackend::IoUring => "io_uring",
            IoBackend::Portable => "portable",
        }
    }
}

/// `[tickets]`: the keys that sign session tickets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TicketsConfig {
    /// Live signing keys, each `{ id = 1, secret_file = "..." }`. Several
    /// may be live during a rotation. Default empty: the built-in dev key
    /// (id 0), whose secret is public, so anyone can mint tickets; the
    /// binary warns loudly. Never run production without keys.
    pub keys: Vec<TicketKeyFile>,
    /// How far a ticket's times may disagree with this host's clock, in
    /// seconds. Default 30: NTP-synced hosts agree within milliseconds;
    /// this covers a backend whose clock drifted.
    pub clock_skew_s: u64,
    /// Longest lifetime (`expires_at - issued_at`) a ticket may claim, in
    /// seconds; longer ones are refused. Default 86400 (one day): tickets are
    /// meant to be minted per login, so a leaked one dies within a day.
    pub ttl_max_s: u64,
}

impl Default for TicketsConfig {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            clock_skew_s: 30,
            ttl_max_s: LIFETIME_S_MAX_DEFAULT,
        }
    }
}

/// One ticket signing key: its id and the file holding its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketKeyFile {
    /// The key id tickets name. 0 is reserved for the dev key.
    pub id: KeyId,
    /// File holding the secret: at least 32 bytes, surrounding whitespace
    /// ignored. Keep it readable by the gateway's user only.
    pub secret_file: PathBuf,
}

/// `[lanes]`: the lane table and per-lane rate limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LanesConfig {
    /// Lane of game types (`0x0100` and up) no rule covers. Default `bulk`,
    /// the lowest, so an unmapped type can never buy priority.
    pub default_lane: Lane,
    /// Rules mapping type ranges to lanes, `{ types = "0x1000-0x1fff",
    /// lane = "critical" }`; ranges must be disjoint and at or above
    /// `0x0100`. Default: one 4096-type block per lane, as in
    /// `docs/protocol.md`.
    pub table: Vec<LaneRule>,
    /// `[lanes.limits.<lane>]`: per-connection token buckets.
    pub limits: LaneLimits,
}

impl Default for LanesConfig {
    fn default() -> Self {
        Self {
            default_lane: Lane::Bulk,
            table: LaneTable::default_rules(),
            limits: LaneLimits::default(),
        }
    }
}

impl LanesConfig {
    /// Builds the classification table from `table` and `default_lane`.
    pub fn lane_table(&self) -> Result<LaneTable, ConfigError> {
        LaneTable::new(&self.table, self.default_lane)
            .map_err(|e| ConfigError::invalid("lanes.table", e.to_string()))
    }
}

/// Per-lane rate limits. A field left out of the file keeps its own lane's
/// default (not some generic one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "LaneLimitsPatch")]
pub struct LaneLimits {
    /// Default 240/s, burst 60: 60 Hz input with 4x headroom for clients
    /// that batch or catch up after a hitch.
    pub critical: LaneLimit,
    /// Default 120/s, burst 60: 60 Hz movement with 2x headroom.
    pub high: LaneLimit,
    /// Default 20/s, burst 20: chat and social are human-paced.
    pub normal: LaneLimit,
    /// Default 10/s, burst 20: telemetry and cosmetics, shed first.
    pub bulk: LaneLimit,
}

impl Default for LaneLimits {
    fn default() -> Self {
        // The protocol's announced defaults (docs/protocol.md §8).
        let d = |lane: Lane| {
            let l = crate::wire::DEFAULT_LANE_LIMITS[lane.index()];
            LaneLimit::new(l.rate_per_s, l.burst)
        };
        Self {
            critical: d(Lane::Critical),
            high: d(Lane::High),
            normal: d(Lane::Normal),
            bulk: d(Lane::Bulk),
        }
    }
}

impl LaneLimits {
    /// The limit of `lane`.
    pub fn get(&self, lane: Lane) -> LaneLimit {
        match lane {
            Lane::Critical => self.critical,
            Lane::High => self.high,
            Lane::Normal => self.normal,
            Lane::Bulk => self.bulk,
        }
    }
}

/// A token bucket on one lane of one connection. Messages over it are
/// dropped and counted toward `[admission]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaneLimit {
    /// Sustained messages per second.
    pub rate_per_s: u32,
    /// Messages accepted at once above the sustained rate (bucket size).
    pub burst: u32,
}

impl LaneLimit {
    /// A bucket refilled at `rate_per_s`, holding `burst`.
    pub const fn new(rate_per_s: u32, burst: u32) -> Self {
        Self { rate_per_s, burst }
    }
}

/// The limit as `Welcome` announces it to the client.
impl From<LaneLimit> for crate::wire::LaneLimit {
    fn from(l: LaneLimit) -> Self {
        crate::wire::LaneLimit {
            rate_per_s: l.rate_per_s,
            burst: l.burst,
        }
    }
}

/// `[admission]`: when a connection that keeps exceeding its limits is closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionConfig {
    /// Window over which over-limit drops are counted, in ms. Default
    /// 10000: long enough that a lag spike's catch-up burst is averaged out.
    pub abuse_window_ms: u64,
    /// A connection with more drops than this within the window is closed
    /// with ABUSE. Default 500: an honest client over its limit drops a few
    /// dozen messages after a hitch; 50 drops a second for 10 s is a flood.
    pub abuse_drops_max: u32,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            abuse_window_ms: 10_000,
            abuse_drops_max: 500,
        }
    }
}

/// `[shards]`: the game-logic tier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShardsConfig {
    /// CPU cores that run shards, one shard per core. Default `"auto"`: the
    /// cores the gateway does not take (see [`Config::core_plan`]).
    pub cores: CoreSet,
    /// Game ticks per second. Default 30: tuned for action games whose
    /// clients interpolate; 60 halves latency at twice the CPU.
    pub tick_rate_hz: u32,
    /// Time one tick of a shard may take before it counts as an overrun, in
    /// µs; at most the tick period. Default 20000: 60% of the 33333 µs
    /// period at 30 Hz, leaving the rest for draining rings and jitter.
    pub tick_budget_us: u32,
    /// Slots in each ring between a gateway core and a shard, in messages.
    /// Default 4096: a full critical-lane budget of one tick; a full ring
    /// sheds lowest lanes first.
    pub ring_slots_max: u32,
    /// `[shards.lane_budget_per_tick]`: messages a shard takes from each
    /// lane per tick, so a flood in one lane cannot starve the others.
    pub lane_budget_per_tick: LaneBudgets,
    /// Between ticks, a shard woken by arriving messages hands them to its
    /// game and sends what it replied at once, but at most one such pass
    /// per this many µs, so messages arriving close together are handled
    /// together; 0 = messages wait for the next tick. Default 50: a reply
    /// that needs no simulation step (an echo, an ack, chat) leaves within
    /// about 50 µs instead of up to a tick (33 ms at 30 Hz). An idle shard
    /// sleeps from tick to tick. Must be below the tick period.
    pub message_pass_us: u32,
    /// The game logic shards run. Default `"demo"`.
    pub game: GameKind,
    /// The watchdog reports a shard stalled (in its health, and in the log)
    /// when a tick has not finished for this long, in ms. Default 1000: 30 ticks at
    /// 30 Hz, far beyond any overrun, short enough that players notice little.
    pub stall_after_ms: u64,
    /// A shard whose CPU is also a gateway core's runs on that core's
    /// thread instead of a thread of its own. Default true: two threads
    /// pinned to one CPU only add a context switch to every hand-off, and
    /// replies leave in the same loop turn. The cost: a game stuck in a
    /// tick also stops that core's networking (the watchdog still reports
    /// it). Set false to keep a stuck game from freezing the core.
    pub run_on_gateway_thread: bool,
}

impl Default for ShardsConfig {
    fn default() -> Self {
        Self {
            cores: CoreSet::Auto,
            tick_rate_hz: 30,
            tick_budget_us: 20_000,
            ring_slots_max: 4096,
            lane_budget_per_tick: LaneBudgets::default(),
            message_pass_us: 50,
            game: GameKind::Demo,
            stall_after_ms: 1_000,
            run_on_gateway_thread: true,
        }
    }
}

impl ShardsConfig {
    /// The tick period in µs (rounded down), or `None` when the rate is 0.
    pub fn tick_period_us(&self) -> Option<u32> {
        1_000_000u32.checked_div(self.tick_rate_hz)
    }
}

/// Messages a shard takes from one lane per tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LaneBudgets {
    /// Default 4096: every player's input, every tick.
    pub critical: u32,
    /// Default 2048.
    pub high: u32,
    /// Default 512.
    pub normal: u32,
    /// Default 256: bulk waits when the shard is busy.
    pub bulk: u32,
}

impl Default for LaneBudgets {
    fn default() -> Self {
        Self {
            critical: 4096,
            high: 2048,
            normal: 512,
            bulk: 256,
        }
    }
}

impl LaneBudgets {
    /// The budget of `lane`.
    pub fn get(&self, lane: Lane) -> u32 {
        match lane {
            Lane::Critical => self.critical,
            Lane::High => self.high,
            Lane::Normal => self.normal,
            Lane::Bulk => self.bulk,
        }
    }
}

/// The game logic a shard runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GameKind {
    /// A small shared world for trying Lanegate out.
    #[default]
    Demo,
    /// Echoes every message back to its sender: for load tests.
    Echo,
    /// Match-based arena: one zone per match.
    Arena,
}

impl GameKind {
    /// The name used in configuration.
    pub const fn name(self) -> &'static str {
        match self {
            GameKind::Demo => "demo",
            GameKind::Echo => "echo",
            GameKind::Arena => "arena",
        }
    }
}

/// `[observability]`: metrics and logs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObservabilityConfig {
    /// TCP address of the Prometheus metrics endpoint, or `"off"`. Default
    /// `127.0.0.1:9464` (the OpenTelemetry Prometheus port), loopback only
    /// so metrics are not public by accident.
    #[serde(with = "addr_or_off")]
    pub metrics_listen: Option<SocketAddr>,
    /// Log line format on stderr. Default `"text"`, for people; `"json"` for
    /// log shippers.
    pub log_format: LogFormat,
}

impl Default for ObservabilityConfig {
    fn default() -> Self {
        Self {
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            log_format: LogFormat::Text,
        }
    }
}

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// The name used in configuration.
    pub const fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// What the caller measured about the host; `validate` and `core_plan`
/// need it, and this crate does no IO to find it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostInfo {
    /// Number of CPU cores available to the process (at least 1 is assumed).
    pub cores: usize,
}

/// Which cores each tier runs on, with `"auto"` resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorePlan {
    /// One gateway thread per entry.
    pub gateway: Vec<usize>,
    /// One shard per entry.
    pub shards: Vec<usize>,
}

/// Why a configuration was refused. Every variant names the dotted field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The text is not TOML, a value has the wrong type, or a field is
    /// unknown.
    #[error("{}{message} (line {line}, column {column})", field_prefix(.field))]
    Parse {
        /// Dotted path of the offending field, e.g. `gateway.cores`; empty
        /// when the error is not inside any field.
        field: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        column: usize,
        /// What is wrong, from the TOML parser.
        message: String,
    },
    /// A value is out of range, or contradicts another value or the host.
    #[error("{field}: {message}")]
    Invalid {
        /// Dotted path of the offending field, e.g. `shards.tick_budget_us`.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl ConfigError {
    /// The dotted path of the field at fault (empty for a syntax error
    /// outside any field).
    pub fn field(&self) -> &str {
        match self {
            ConfigError::Parse { field, .. } | ConfigError::Invalid { field, .. } => field,
        }
    }

    fn invalid(field: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl Config {
    /// Parses a configuration file. Fields the text leaves out keep their
    /// defaults. Does not [`validate`](Config::validate).
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| parse_error(text, &e))
    }

    /// Checks ranges, relations between limits, and that the configured
    /// cores exist on `host`. Returns the first problem found.
    pub fn validate(&self, host: &HostInfo) -> Result<(), ConfigError> {
        self.validate_gateway(host)?;
        self.validate_tickets()?;
        self.validate_lanes()?;
        self.validate_admission()?;
        self.validate_shards(host)
    }

    /// Resolves `gateway.cores` and `shards.cores` on `host`.
    ///
    /// Both `"auto"`: on 1 core both tiers share core 0; on 2 the gateway
    /// gets core 0 and the shards core 1; on N the gateway gets the first
    /// ⌈N/2⌉ cores (it faces the network, where floods land) and the shards
    /// the rest. One `"auto"`: it gets the cores the other list leaves free,
    /// or shares that list's cores if none are free.
    pub fn core_plan(&self, host: &HostInfo) -> CorePlan {
        let n = host.cores.max(1);
        let free = |taken: &[usize]| -> Vec<usize> {
            let rest: Vec<usize> = (0..n).filter(|c| !taken.contains(c)).collect();
            if rest.is_empty() {
                taken.to_vec()
            } else {
                rest
            }
        };
        let (gateway, shards) = match (&self.gateway.cores, &self.shards.cores) {
            (CoreSet::List(g), CoreSet::List(s)) => (g.clone(), s.clone()),
            (CoreSet::List(g), CoreSet::Auto) => (g.clone(), free(g)),
            (CoreSet::Auto, CoreSet::List(s)) => (free(s), s.clone()),
            (CoreSet::Auto, CoreSet::Auto) if n == 1 => (vec![0], vec![0]),
            (CoreSet::Auto, CoreSet::Auto) => {
                let split = n.div_ceil(2);
                ((0..split).collect(), (split..n).collect())
            }
        };
        CorePlan { gateway, shards }
    }

    fn validate_gateway(&self, host: &HostInfo) -> Result<(), ConfigError> {
        let g = &self.gateway;
        check_cores("gateway.cores", &g.cores, host)?;
        for (field, value) in [
            (
                "gateway.socket_recv_buffer_bytes",
                g.socket_recv_buffer_bytes,
            ),
            (
                "gateway.socket_send_buffer_bytes",
                g.socket_send_buffer_bytes,
            ),
        ] {
            if value < SOCKET_BUFFER_BYTES_MIN {
                return Err(ConfigError::invalid(
                    field,
                    format!(
                        "{value} is below {SOCKET_BUFFER_BYTES_MIN}; a smaller buffer drops packets under any burst"
                    ),
                ));
            }
        }
        non_zero("gateway.connections_max", g.connections_max.into())?;
        non_zero(
            "gateway.handshakes_per_ip_per_s",
            g.handshakes_per_ip_per_s.into(),
        )?;
        non_zero("gateway.handshake_burst", g.handshake_burst.into())?;
        non_zero(
            "gateway.handshake_ips_tracked_max",
            g.handshake_ips_tracked_max as u64,
        )?;
        if !(1..=RING_POLL_US_MAX).contains(&g.ring_poll_us) {
            return Err(ConfigError::invalid(
                "gateway.ring_poll_us",
                format!(
                    "{} is outside 1-{RING_POLL_US_MAX}; longer delays shard replies on idle cores by that much",
                    g.ring_poll_us
                ),
            ));
        }
        if !(2..=STEER_SLOTS_LIMIT).contains(&g.steer_slots_max) {
            return Err(ConfigError::invalid(
                "gateway.steer_slots_max",
                format!(
                    "{} is outside 2-{STEER_SLOTS_LIMIT} (each slot holds a whole packet)",
                    g.steer_slots_max
                ),
            ));
        }
        non_zero("gateway.hello_timeout_ms", g.hello_timeout_ms)?;
        non_zero("gateway.idle_timeout_ms", g.idle_timeout_ms)?;
        if g.hello_timeout_ms > g.idle_timeout_ms {
            return Err(ConfigError::invalid(
                "gateway.hello_timeout_ms",
                format!(
                    "{} exceeds gateway.idle_timeout_ms ({}), so the idle timeout would fire first; lower it or raise gateway.idle_timeout_ms",
                    g.hello_timeout_ms, g.idle_timeout_ms
                ),
            ));
        }
        let dgram = g.datagram_message_bytes_max;
        if dgram > DATAGRAM_MESSAGE_BYTES_LIMIT {
            return Err(ConfigError::invalid(
                "gateway.datagram_message_bytes_max",
                format!(
                    "{dgram} exceeds {DATAGRAM_MESSAGE_BYTES_LIMIT}, the most that fits a 1200-byte QUIC packet; lower it"
                ),
            ));
        }
        if dgram < MESSAGE_BYTES_MIN {
            return Err(ConfigError::invalid(
                "gateway.datagram_message_bytes_max",
                format!("{dgram} cannot hold the {MESSAGE_BYTES_MIN}-byte message type; raise it"),
            ));
        }
        let stream = g.stream_message_bytes_max;
        if stream < dgram {
            return Err(ConfigError::invalid(
                "gateway.stream_message_bytes_max",
                format!(
                    "{stream} is below gateway.datagram_message_bytes_max ({dgram}); a message that fits a datagram must also fit a stream"
                ),
            ));
        }
        if stream > STREAM_MESSAGE_BYTES_LIMIT {
            return Err(ConfigError::invalid(
                "gateway.stream_message_bytes_max",
                format!(
                    "{stream} exceeds {STREAM_MESSAGE_BYTES_LIMIT}; each connection may buffer a message this big, so send large data out of band"
                ),
            ));
        }
        match (&g.cert_file, &g.key_file) {
            (Some(_), None) => Err(ConfigError::invalid(
                "gateway.cert_file",
                "set together with gateway.key_file",
            )),
            (None, Some(_)) => Err(ConfigError::invalid(
                "gateway.key_file",
                "set together with gateway.cert_file",
            )),
            _ => Ok(()),
        }
    }

    fn validate_tickets(&self) -> Result<(), ConfigError> {
        let t = &self.tickets;
        let mut ids = BTreeSet::new();
        for key in &t.keys {
            if key.id == DEV_KEY_ID {
                return Err(ConfigError::invalid(
                    "tickets.keys",
                    "key id 0 is reserved for the built-in dev key; number real keys from 1",
                ));
            }
            if !ids.insert(key.id) {
                return Err(ConfigError::invalid(
                    "tickets.keys",
                    format!(
                        "key id {} is listed twice; give each key its own id",
                        key.id
                    ),
                ));
            }
            if key.secret_file.as_os_str().is_empty() {
                return Err(ConfigError::invalid(
                    "tickets.keys",
                    format!(
                        "key id {} has an empty secret_file; name the file holding its secret",
                        key.id
                    ),
                ));
            }
        }
        non_zero("tickets.ttl_max_s", t.ttl_max_s)?;
        if t.clock_skew_s >= t.ttl_max_s {
            return Err(ConfigError::invalid(
                "tickets.clock_skew_s",
                format!(
                    "{} is not below tickets.ttl_max_s ({}), so expired tickets would stay valid for longer than any ticket lives; lower it",
                    t.clock_skew_s, t.ttl_max_s
                ),
            ));
        }
        Ok(())
    }

    fn validate_lanes(&self) -> Result<(), ConfigError> {
        self.lanes.lane_table()?;
        for lane in Lane::ALL {
            let limit = self.lanes.limits.get(lane);
            if limit.rate_per_s == 0 {
                return Err(ConfigError::invalid(
                    &format!("lanes.limits.{lane}.rate_per_s"),
                    format!(
                        "is 0, so every {lane} message would be dropped; set at least 1, or map no types to {lane}"
                    ),
                ));
            }
            if limit.burst == 0 {
                return Err(ConfigError::invalid(
                    &format!("lanes.limits.{lane}.burst"),
                    "is 0, so the bucket can never hold a message; set at least 1",
                ));
            }
        }
        Ok(())
    }

    fn validate_admission(&self) -> Result<(), ConfigError> {
        non_zero("admission.abuse_window_ms", self.admission.abuse_window_ms)?;
        non_zero(
            "admission.abuse_drops_max",
            self.admission.abuse_drops_max.into(),
        )
    }

    fn validate_shards(&self, host: &HostInfo) -> Result<(), ConfigError> {
        let s = &self.shards;
        check_cores("shards.cores", &s.cores, host)?;
        let hz = s.tick_rate_hz;
        let period_us = match s.tick_period_us() {
            Some(p) if hz <= TICK_RATE_HZ_LIMIT => p,
            _ => {
                return Err(ConfigError::invalid(
                    "shards.tick_rate_hz",
                    format!("{hz} is outside 1-{TICK_RATE_HZ_LIMIT}"),
                ));
            }
        };
        non_zero("shards.tick_budget_us", s.tick_budget_us.into())?;
        if s.tick_budget_us > period_us {
            return Err(ConfigError::invalid(
                "shards.tick_budget_us",
                format!(
                    "{} exceeds the tick period of {period_us} us at {hz} Hz; lower it or lower shards.tick_rate_hz",
                    s.tick_budget_us
                ),
            ));
        }
        non_zero("shards.ring_slots_max", s.ring_slots_max.into())?;
        for lane in Lane::ALL {
            let budget = s.lane_budget_per_tick.get(lane);
            let field = format!("shards.lane_budget_per_tick.{lane}");
            if budget == 0 {
                return Err(ConfigError::invalid(
                    &field,
                    format!("is 0, so {lane} messages would never be delivered; set at least 1"),
                ));
            }
            if budget > s.ring_slots_max {
                return Err(ConfigError::invalid(
                    &field,
                    format!(
                        "{budget} exceeds shards.ring_slots_max ({}); a tick cannot take more than a ring holds, lower it or raise shards.ring_slots_max",
                        s.ring_slots_max
                    ),
                ));
            }
        }
        if s.message_pass_us >= period_us {
            return Err(ConfigError::invalid(
                "shards.message_pass_us",
                format!(
                    "{} us is not below the tick period of {period_us} us; lower it, or set 0 to hand messages to the game only at ticks",
                    s.message_pass_us
                ),
            ));
        }
        if s.stall_after_ms.saturating_mul(1000) <= u64::from(period_us) {
            return Err(ConfigError::invalid(
                "shards.stall_after_ms",
                format!(
                    "{} ms is not longer than the tick period of {period_us} us, so every tick would look stalled; raise it",
                    s.stall_after_ms
                ),
            ));
        }
        Ok(())
    }
}

/// The longest `gateway.ring_poll_us`: 100 ms, three ticks at 30 Hz.
const RING_POLL_US_MAX: u64 = 100_000;

/// The most `gateway.steer_slots_max`: 64 Ki packets per core pair.
const STEER_SLOTS_LIMIT: usize = 1 << 16;

/// Socket buffers below this drop packets under any burst.
const SOCKET_BUFFER_BYTES_MIN: usize = 64 << 10;

/// Every message starts with its 2-byte type.
const MESSAGE_BYTES_MIN: usize = 2;

fn non_zero(field: &str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        Err(ConfigError::invalid(field, "must be at least 1"))
    } else {
        Ok(())
    }
}

fn check_cores(field: &str, set: &CoreSet, host: &HostInfo) -> Result<(), ConfigError> {
    let CoreSet::List(cores) = set else {
        return Ok(());
    };
    if cores.is_empty() {
        return Err(ConfigError::invalid(
            field,
            "is empty; list at least one core, or use \"auto\"",
        ));
    }
    let n = host.cores.max(1);
    let mut seen = BTreeSet::new();
    for &core in cores {
        if core >= n {
            let range = if n == 1 {
                "only core 0".to_owned()
            } else {
                format!("cores 0-{}", n - 1)
            };
            return Err(ConfigError::invalid(
                field,
                format!("core {core} does not exist on this host ({range})"),
            ));
        }
        if !seen.insert(core) {
            return Err(ConfigError::invalid(
                field,
                format!("core {core} is listed twice; list each core once"),
            ));
        }
    }
    Ok(())
}

fn field_prefix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("{field}: ")
    }
}

/// Turns toml's error into one naming the dotted field and the line.
fn parse_error(text: &str, err: &toml::de::Error) -> ConfigError {
    let start = err.span().map_or(0, |s| s.start);
    let (line, column) = line_column(text, start);
    let (root, _) = toml::de::DeTable::parse_recoverable(text);
    let mut field = String::new();
    for segment in table_path(root.get_ref(), start) {
        match segment {
            PathSegment::Key(key) if field.is_empty() => field = key,
            PathSegment::Key(key) => {
                field.push('.');
                field.push_str(&key);
            }
            PathSegment::Index(i) => field.push_str(&format!("[{i}]")),
        }
    }
    ConfigError::Parse {
        field,
        line,
        column,
        message: err.message().trim_end().to_owned(),
    }
}

/// 1-based line and character column of byte offset `at`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

enum PathSegment {
    Key(String),
    Index(usize),
}

fn covers(span: std::ops::Range<usize>, at: usize) -> bool {
    span.contains(&at) || span.start == at
}

/// The keys leading to the innermost entry of `table` whose key or value
/// covers byte offset `at`; empty if none does.
fn table_path(table: &toml::de::DeTable<'_>, at: usize) -> Vec<PathSegment> {
    let hit = table
        .iter()
        .find(|(key, value)| covers(key.span(), at) || covers(value.span(), at));
    if let Some((key, value)) = hit {
        let mut path = vec![PathSegment::Key(key.get_ref().to_string())];
        path.extend(value_path(value.get_ref(), at));
        return path;
    }
    // Under `[section]` and `[[array.of.tables]]` headers a table's span
    // covers only its header, not its body: look inside each one.
    for (key, value) in table {
        let inner = value_path(value.get_ref(), at);
        if !inner.is_empty() {
            let mut path = vec![PathSegment::Key(key.get_ref().to_string())];
            path.extend(inner);
            return path;
        }
    }
    Vec::new()
}

fn value_path(value: &toml::de::DeValue<'_>, at: usize) -> Vec<PathSegment> {
    let items = match value {
        toml::de::DeValue::Table(table) => return table_path(table, at),
        toml::de::DeValue::Array(items) => items,
        _ => return Vec::new(),
    };
    let hit = items.iter().position(|item| covers(item.span(), at));
    let found = hit
        .map(|i| (i, value_path(items[i].get_ref(), at)))
        .or_else(|| {
            items.iter().enumerate().find_map(|(i, item)| {
                let inner = value_path(item.get_ref(), at);
                (!inner.is_empty()).then_some((i, inner))
            })
        });
    match found {
        Some((i, inner)) => {
            let mut path = vec![PathSegment::Index(i)];
            path.extend(inner);
            path
        }
        None => Vec::new(),
    }
}

impl Serialize for CoreSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CoreSet::Auto => s.serialize_str("auto"),
            CoreSet::List(cores) => cores.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for CoreSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CoreSetVisitor;

        impl<'de> Visitor<'de> for CoreSetVisitor {
            type Value = CoreSet;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"auto\" or a list of core indices such as [0, 1]")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<CoreSet, E> {
                if v == "auto" {
                    Ok(CoreSet::Auto)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CoreSet, A::Error> {
                let mut cores = Vec::new();
                while let Some(core) = seq.next_element()? {
                    cores.push(core);
                }
                Ok(CoreSet::List(cores))
            }
        }

        d.deserialize_any(CoreSetVisitor)
    }
}

/// `LaneLimits` as written in the file: each lane's fields optional, filled
/// from that lane's own default.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct LaneLimitsPatch {
    critical: LaneLimitPatch,
    high: LaneLimitPatch,
    normal: LaneLimitPatch,
    bulk: LaneLimitPatch,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LaneLimitPatch {
    rate_per_s: Option<u32>,
    burst: Option<u32>,
}

impl LaneLimitPatch {
    fn over(self, default: LaneLimit) -> LaneLimit {
        LaneLimit {
            rate_per_s: self.rate_per_s.unwrap_or(default.rate_per_s),
            burst: self.burst.unwrap_or(default.burst),
        }
    }
}

impl From<LaneLimitsPatch> for LaneLimits {
    fn from(p: LaneLimitsPatch) -> Self {
        let d = LaneLimits::default();
        LaneLimits {
            critical: p.critical.over(d.critical),
            high: p.high.over(d.high),
            normal: p.normal.over(d.normal),
            bulk: p.bulk.over(d.bulk),
        }
    }
}

/// `Option<SocketAddr>` written as an address or `"off"`, since TOML has
/// no null.
mod addr_or_off {
    use std::net::SocketAddr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        v: &Option<SocketAddr>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(addr) => s.collect_str(addr),
            None => s.serialize_str("off"),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SocketAddr>, D::Error> {
        let text = String::deserialize(d)?;
        if text == "off" {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|_| {
            serde::de::Error::custom(format!(
                "`{text}` is not an address; write \"127.0.0.1:9464\" or \"off\""
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column("a = 1\nbé = x", 10), (2, 4));
        assert_eq!(line_column("", 3), (1, 1));
    }

    #[test]
    fn auto_cores_split_the_host() {
        let c = Config::default();
        let plan = |n| {
            let p = c.core_plan(&HostInfo { cores: n });
            (p.gateway, p.shards)
        };
        assert_eq!(plan(0), (vec![0], vec![0]));
        assert_eq!(plan(1), (vec![0], vec![0]));
        assert_eq!(plan(2), (vec![0], vec![1]));
        assert_eq!(plan(3), (vec![0, 1], vec![2]));
        assert_eq!(plan(8), (vec![0, 1, 2, 3], vec![4, 5, 6, 7]));
    }

    #[test]
    fn one_auto_side_takes_the_free_cores() {
        let mut c = Config::default();
        c.gateway.cores = CoreSet::List(vec![1]);
        let p = c.core_plan(&HostInfo { cores: 4 });
        assert_eq!((p.gateway, p.shards), (vec![1], vec![0, 2, 3]));
        c.gateway.cores = CoreSet::List(vec![0]);
        let p = c.core_plan(&HostInfo { cores: 1 });
        assert_eq!(p.shards, vec![0], "nothing free: share the gateway's cores");
    }

    #[test]
    fn runtime_limits_are_checked_and_named() {
        let host = HostInfo { cores: 2 };
        let field = |edit: fn(&mut GatewayConfig)| {
            let mut c = Config::default();
            edit(&mut c.gateway);
            c.validate(&host).err().map(|e| e.field().to_owned())
        };
        assert_eq!(field(|_| {}), None);
        assert_eq!(
            field(|g| g.ring_poll_us = 0).as_deref(),
            Some("gateway.ring_poll_us")
        );
        assert_eq!(
            field(|g| g.ring_poll_us = RING_POLL_US_MAX + 1).as_deref(),
            Some("gateway.ring_poll_us")
        );
        assert_eq!(
            field(|g| g.steer_slots_max = 1).as_deref(),
            Some("gateway.steer_slots_max")
        );
        assert_eq!(
            field(|g| g.handshake_ips_tracked_max = 0).as_deref(),
            Some("gateway.handshake_ips_tracked_max")
        );
    }
}
