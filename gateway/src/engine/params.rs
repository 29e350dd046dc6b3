//! What one engine needs, derived once at start from the validated
//! configuration, and why building an engine can fail (setup only: at run
//! time nothing returns an error; peer input is counted, dropped or closed).

use std::time::Duration;

use lanegate_common::config::{Config, ZoneSet};
use lanegate_common::ids::CoreId;
use lanegate_common::lanes::{Lane, LaneTable};
use lanegate_common::ticket::KeySet;

use super::SendShares;
use super::session::WelcomeParams;

/// Why an engine could not be built. Setup only: nothing at run time
/// returns an error (peer input is counted, dropped or closed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A PEM file could not be read or parsed.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// Only one of `gateway.cert_file` and `gateway.key_file` is set.
    #[error("gateway.cert_file and gateway.key_file must be set together")]
    CertKeyPair,
    /// The self-signed certificate could not be made.
    #[error("cannot make a self-signed certificate: {0}")]
    SelfSigned(String),
    /// rustls refused the configuration (bad key, mismatched chain...).
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// A configuration value the engine cannot use.
    #[error("configuration: {0}")]
    Config(String),
    /// A core index connection ids cannot carry.
    #[error("gateway core {0} cannot be named in a connection id (at most 256 cores)")]
    CoreIndex(CoreId),
}

/// What one engine needs, derived from [`Config`] once at start.
#[derive(Clone, Debug)]
pub struct EngineParams {
    /// This core.
    pub core: CoreId,
    /// Sessions this core holds at most (its share of `gateway.connections_max`).
    pub connections_max: usize,
    /// From handshake end to `Hello` (`gateway.hello_timeout_ms`).
    pub hello_timeout: Duration,
    /// Longest a stream frame may stay incomplete (`gateway.frame_stall_ms`).
    pub frame_stall: Duration,
    /// Ticket clock-skew tolerance (`tickets.clock_skew_s`).
    pub clock_skew_s: u64,
    /// What `Welcome` announces.
    pub welcome: WelcomeParams,
    /// Type → lane.
    pub lanes: LaneTable,
    /// Ticket keys.
    pub keys: KeySet,
    /// The zones a ticket may name (`shards.zones`).
    pub zones: ZoneSet,
    /// Control-stream bytes buffered per connection beyond what QUIC takes
    /// (flow control); more outbound stream messages are dropped (counted).
    pub stream_out_bytes_max: usize,
    /// Bytes of a `high`, `normal` or `bulk` stream's backlog beyond what
    /// QUIC takes within the lane's share: one largest frame.
    pub lane_backlog_bytes_max: usize,
    /// What each lane may fill of a connection's send buffers
    /// (`gateway.send_fill_max_percent`).
    pub send_shares: SendShares,
    /// Connections one source address may have open on this core
    /// (`gateway.connections_per_ip_max`).
    pub connections_per_ip_max: u32,
    /// Connections with an address not yet validated this core holds at
    /// most (its share of `gateway.unvalidated_connections_max`).
    pub unvalidated_connections_max: usize,
    /// Unvalidated handshakes per second above which new connections get a
    /// Retry (`gateway.retry_above_handshakes_per_s`; 0: always).
    pub retry_above_handshakes_per_s: u32,
    /// Handshakes this core starts per second, and at once
    /// (`gateway.handshakes_per_core_per_s`, `gateway.handshake_core_burst`;
    /// rate 0: no budget).
    pub handshakes_per_core_per_s: (u32, u32),
    /// Initials this core lets into QUIC per second, and at once
    /// (`gateway.initials_per_core_per_s`, `gateway.initial_core_burst`;
    /// rate 0: no limit).
    pub initials_per_core_per_s: (u32, u32),
    /// From a connection's first Initial to the end of its QUIC handshake
    /// (`gateway.handshake_timeout_ms`).
    pub handshake_timeout: Duration,
    /// UDP source ports whose datagrams are dropped unread
    /// (`gateway.blocked_source_ports`).
    pub blocked_source_ports: Vec<u16>,
    /// How long an `ABUSE` close bans its address and player
    /// (`admission.abuse_ban_ms`; zero: never).
    pub abuse_ban: Duration,
    /// Bans held at once (`admission.bans_max`).
    pub bans_max: usize,
    /// Seed for the endpoint's and the connection ids' randomness (tests);
    /// `None` seeds from the OS.
    pub seed: Option<u64>,
}

impl EngineParams {
    /// Parameters of core `core` of `cores`, from a validated `config`.
    /// `keys` are the loaded ticket keys (`KeySet::dev()` when none are set).
    pub fn from_config(
        config: &Config,
        core: CoreId,
        cores: usize,
        keys: KeySet,
    ) -> Result<Self, EngineError> {
        let gw = &config.gateway;
        let cores = cores.max(1);
        let connections_max = usize::try_from(gw.connections_max)
            .map_err(|_| EngineError::Config("gateway.connections_max is too large".to_owned()))?
            .div_ceil(cores);
        let lanes = config
            .lanes
            .lane_table()
            .map_err(|e| EngineError::Config(e.to_string()))?;
        let welcome = WelcomeParams {
            tick_rate_hz: u16::try_from(config.shards.tick_rate_hz).map_err(|_| {
                EngineError::Config("shards.tick_rate_hz does not fit Welcome (u16)".to_owned())
            })?,
            datagram_message_bytes_max: u16::try_from(gw.datagram_message_bytes_max).map_err(
                |_| EngineError::Config("gateway.datagram_message_bytes_max is too large".into()),
            )?,
            stream_message_bytes_max: u32::try_from(gw.stream_message_bytes_max).map_err(|_| {
                EngineError::Config("gateway.stream_message_bytes_max is too large".into())
            })?,
            lane_limits: Lane::ALL.map(|lane| config.lanes.limits.get(lane).into()),
        };
        Ok(Self {
            core,
            connections_max,
            hello_timeout: Duration::from_millis(gw.hello_timeout_ms),
            frame_stall: Duration::from_millis(gw.frame_stall_ms),
            clock_skew_s: config.tickets.clock_skew_s,
            welcome,
            lanes,
            keys,
            zones: config.shards.zones.clone(),
            stream_out_bytes_max: gw.stream_message_bytes_max.saturating_mul(4),
            lane_backlog_bytes_max: gw.stream_message_bytes_max + 8,
            send_shares: SendShares::new(
                gw.send_fill_max_percent.to_array(),
                gw.datagram_send_buffer_bytes,
                gw.stream_send_window_bytes(),
            ),
            connections_per_ip_max: gw.connections_per_ip_max,
            unvalidated_connections_max: usize::try_from(gw.unvalidated_connections_max)
                .unwrap_or(usize::MAX)
                .div_ceil(cores),
            retry_above_handshakes_per_s: gw.retry_above_handshakes_per_s,
            handshakes_per_core_per_s: (gw.handshakes_per_core_per_s, gw.handshake_core_burst),
            initials_per_core_per_s: (gw.initials_per_core_per_s, gw.initial_core_burst),
            handshake_timeout: Duration::from_millis(gw.handshake_timeout_ms),
            blocked_source_ports: gw.blocked_source_ports.clone(),
            abuse_ban: Duration::from_millis(config.admission.abuse_ban_ms),
            bans_max: usize::try_from(config.admission.bans_max).unwrap_or(usize::MAX),
            seed: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_split_connections_across_cores() {
        let config = Config::default();
        let p = EngineParams::from_config(&config, CoreId(0), 3, KeySet::dev()).unwrap();
        assert_eq!(p.connections_max, 10_000usize.div_ceil(3));
        assert_eq!(p.welcome.datagram_message_bytes_max, 1100);
        assert_eq!(p.welcome.lane_limits[0].rate_per_s, 240);
        assert_eq!(p.hello_timeout, Duration::from_secs(5));
    }
}
