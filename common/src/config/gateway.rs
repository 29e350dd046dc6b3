//! `[gateway]`: the QUIC edge: sockets, cores, connection limits, message
//! sizes.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::wire::DATAGRAM_MESSAGE_BYTES_LIMIT;

use super::error::non_zero;
use super::shards::LaneFillPercents;
use super::{ConfigError, CoreSet, HostInfo, check_cores};

/// The most unidirectional streams a client may have open
/// (`gateway.uni_streams_max`): a session has a frame reader for each.
pub const UNI_STREAMS_LIMIT: u32 = 4;

/// The largest `gateway.stream_message_bytes_max` allowed: each connection
/// may buffer one message of that size per stream, so it is bounded too
/// (and fits `Welcome`'s `u32`).
pub const STREAM_MESSAGE_BYTES_LIMIT: usize = 16 << 20;

// Validated values convert to `Welcome`'s field widths without loss.
const _: () = assert!(DATAGRAM_MESSAGE_BYTES_LIMIT <= u16::MAX as usize);
const _: () = assert!(STREAM_MESSAGE_BYTES_LIMIT <= u32::MAX as usize);

/// `[gateway]`: the QUIC edge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// UDP address the QUIC endpoint binds. Default `0.0.0.0:4433`: all IPv4
    /// interfaces, on the port of the QUIC examples.
    pub listen: SocketAddr,
    /// CPU cores that run gateway threads, one pinned thread per core.
    /// Default `"auto"`: about half of the host's cores, the others going to
    /// the shards (see [`Config::core_plan`](super::Config::core_plan)).
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
    /// storms, at about 30 KB of state per established connection and at
    /// most about 560 KiB for a hostile one (`docs/memory.md`).
    /// It also sizes the payload pools: `shards.pool_datagram_bufs_max`
    /// (`"auto"`) is one buffer per connection.
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
    /// Connections one source address (an IPv6 address: its /64) may have
    /// open at once on one gateway core; one more is refused by QUIC
    /// (CONNECTION_REFUSED). Default 256: a carrier NAT or a LAN party puts
    /// many players behind one address, yet one address cannot fill a
    /// core's table.
    pub connections_per_ip_max: u32,
    /// Connections whose client address is not yet validated (handshake
    /// not finished, no Retry token), per gateway process and split
    /// across cores like `connections_max`; past it, new unvalidated
    /// handshakes get a QUIC Retry. Default 1000: a tenth of
    /// `connections_max`, so a spoofed flood cannot take the table from
    /// validated players. Above `connections_max` it limits nothing.
    pub unvalidated_connections_max: u32,
    /// Handshakes from addresses not yet validated, per gateway core and
    /// second, above which new connections are answered with a QUIC Retry
    /// (address validation) until the rate falls below half of this for a
    /// second, after at least 5 s; 0 = Retry always. Default 1000: ten
    /// times a busy core's reconnect rate, so players pay the extra round
    /// trip only during a flood, and a flood allocates nothing.
    pub retry_above_handshakes_per_s: u32,
    /// QUIC handshakes one gateway core starts per second: the crypto
    /// budget (each costs a key exchange and a signature on the core's own
    /// thread). One over it is ignored, which sends nothing; the client
    /// resends its Initial after about a second. 0 = no budget. Default
    /// 1000: a few tenths of a core at most, so established players keep
    /// the rest; 10 000 players reconnecting after a restart take about
    /// 10 s per core.
    pub handshakes_per_core_per_s: u32,
    /// Handshakes one core may start at once beyond its rate. Default 100.
    pub handshake_core_burst: u32,
    /// QUIC Initial packets one gateway core lets into QUIC per second;
    /// past it an Initial is dropped on its first byte, unanswered (the
    /// client resends it after about a second). Under a handshake flood this
    /// is what the flood costs the core: without it every Initial costs
    /// header protection and a Retry. 0 = no limit. Default 4000: four
    /// times the crypto budget, so real clients' Initials (and their
    /// resends) pass whenever no flood is on.
    pub initials_per_core_per_s: u32,
    /// Initials one core lets in at once beyond its rate. Default 400.
    pub initial_core_burst: u32,
    /// Time a connection may take to finish its QUIC handshake, from its
    /// first Initial, in ms; past it the connection is closed and its slot
    /// freed (`lanegate_handshake_timeouts_total`). Default 3000: a client
    /// on a 300 ms path finishes in about a second, with a lost flight or
    /// two; a flood of Initials that never finish holds a slot 3 s instead
    /// of the idle timeout. At most `idle_timeout_ms`.
    pub handshake_timeout_ms: u64,
    /// UDP source ports every datagram from which is dropped before QUIC
    /// reads it: no connection starts, nothing is answered. Default
    /// `[0, 17, 19, 53, 111, 123, 137, 138, 161, 389, 500, 1900, 3702, 5353, 5355, 11211]`: port 0 and the services (echo, chargen,
    /// DNS, portmap, NTP, NetBIOS, SNMP, LDAP, IKE, SSDP, WS-Discovery, mDNS,
    /// LLMNR, memcached) whose spoofed packets reflection attacks send,
    /// after s2n-quic's default limiter. No game client sends from them.
    pub blocked_source_ports: Vec<u16>,
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
    /// The payload pools' small buffers hold this less the 2-byte type.
    pub datagram_message_bytes_max: usize,
    /// Largest message (`type + payload`) accepted or sent on a stream, in
    /// bytes. Default 16384: a chat line or inventory update fits; larger
    /// assets belong on a CDN, not in the game connection. At least the
    /// datagram limit, so any message can fall back to a stream. The
    /// payload pools' large buffers hold this less the 2-byte type, and
    /// are preallocated (see `shards.pool_bytes_max`).
    pub stream_message_bytes_max: usize,
    /// Longest a stream frame may stay incomplete, from when its first byte
    /// is read to its last, in ms; past it the connection is closed with
    /// ABUSE (a peer announcing a large frame and trickling it holds a
    /// frame buffer per stream). Default 5000: a whole 16 KiB frame
    /// arrives in that time at 32 kbit/s, far below any link a game runs
    /// on. At most `idle_timeout_ms`.
    pub frame_stall_ms: u64,
    /// QUIC connection-level receive window: the most stream data a client
    /// may have sent and the gateway not yet read, all streams together, in
    /// bytes. Default 65536: a largest message in flight on the control
    /// stream and on one lane stream at once; what a peer leaving gaps in
    /// its streams can make the gateway hold, with the per-stream window
    /// (twice `stream_message_bytes_max`). At least one largest frame
    /// (`stream_message_bytes_max` + 8).
    pub connection_receive_window_bytes: u64,
    /// QUIC datagrams a connection buffers on receive before QUIC drops the
    /// oldest, in bytes (QUIC counts each datagram's length plus about 32
    /// bytes). Default 8800: eight largest datagrams, since the engine
    /// drains them on every packet; a flood of tiny ones is dropped
    /// there, not buffered. At least twice `datagram_message_bytes_max`.
    pub datagram_receive_buffer_bytes: usize,
    /// QUIC datagrams a connection buffers on send while they wait for
    /// congestion window, in bytes (QUIC counts each datagram's length).
    /// Default 8800: eight largest datagrams, a few ticks of one player's
    /// updates; older game state past that is stale anyway. At least twice
    /// `datagram_message_bytes_max`.
    pub datagram_send_buffer_bytes: usize,
    /// `[gateway.send_fill_max_percent]`: how full each connection's send
    /// buffers may be, in percent, before a message of a lane waits or is
    /// dropped (counted per lane): the datagram send buffer
    /// (`datagram_send_buffer_bytes`) and the stream data QUIC holds until
    /// acknowledged (four largest stream messages). The room above a
    /// lane's share is kept for the lanes above it, so a backlog of `bulk`
    /// never delays `critical` (`docs/protocol.md` §3).
    pub send_fill_max_percent: LaneFillPercents,
    /// Unidirectional streams a client may have open at once (QUIC's
    /// `max_concurrent_uni_streams`), each with a frame buffer of
    /// `stream_message_bytes_max`. Default 4: one per lane. 0 to 4
    /// ([`UNI_STREAMS_LIMIT`]); 0 for a game that sends nothing reliable
    /// beyond the control stream.
    pub uni_streams_max: u32,
    /// PEM certificate chain for TLS. Set together with `key_file`. Default
    /// none: a self-signed certificate is made at start, which suits
    /// development and clients that pin the key, not public deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`. Set together with `cert_file`.
    /// Default none (self-signed at start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Where the gateway keeps what must survive a restart: today the
    /// self-signed certificate and its key, when `cert_file` is not set, so
    /// that a client that pinned its fingerprint keeps working. Default
    /// `"auto"`: systemd's `$STATE_DIRECTORY`, else
    /// `$XDG_STATE_HOME/lanegate`, else `$HOME/.local/state/lanegate`
    /// (falling back to a fresh certificate per start, with a warning, if
    /// none can be written); `"off"`: keep nothing; or a directory.
    pub state_dir: StateDir,
}

/// `gateway.state_dir`: `"auto"`, `"off"`, or a directory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum StateDir {
    /// From the environment (see [`GatewayConfig::state_dir`]).
    #[default]
    Auto,
    /// Keep nothing across restarts.
    Off,
    /// This directory (created if missing).
    Path(PathBuf),
}

impl TryFrom<String> for StateDir {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "auto" => Ok(StateDir::Auto),
            "off" => Ok(StateDir::Off),
            "" => Err("write \"auto\", \"off\" or a directory".to_owned()),
            _ => Ok(StateDir::Path(PathBuf::from(text))),
        }
    }
}

impl From<StateDir> for String {
    fn from(dir: StateDir) -> String {
        match dir {
            StateDir::Auto => "auto".to_owned(),
            StateDir::Off => "off".to_owned(),
            StateDir::Path(p) => p.display().to_string(),
        }
    }
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
            connections_per_ip_max: 256,
            unvalidated_connections_max: 1000,
            retry_above_handshakes_per_s: 1000,
            handshakes_per_core_per_s: 1000,
            handshake_core_burst: 100,
            initials_per_core_per_s: 4_000,
            initial_core_burst: 400,
            handshake_timeout_ms: 3_000,
            blocked_source_ports: vec![
                0, 17, 19, 53, 111, 123, 137, 138, 161, 389, 500, 1900, 3702, 5353, 5355, 11211,
            ],
            hello_timeout_ms: 5_000,
            idle_timeout_ms: 10_000,
            drain_timeout_ms: 10_000,
            ring_poll_us: 10_000,
            steer_slots_max: 256,
            datagram_message_bytes_max: 1100,
            stream_message_bytes_max: 16_384,
            frame_stall_ms: 5_000,
            connection_receive_window_bytes: 65_536,
            datagram_receive_buffer_bytes: 8_800,
            datagram_send_buffer_bytes: 8_800,
            send_fill_max_percent: LaneFillPercents::default(),
            uni_streams_max: 4,
            cert_file: None,
            key_file: None,
            state_dir: StateDir::Auto,
        }
    }
}

impl GatewayConfig {
    /// Largest payload (the message after its type) of a datagram, in
    /// bytes: what the pools' datagram-size buffers hold.
    pub fn datagram_payload_bytes_max(&self) -> usize {
        self.datagram_message_bytes_max
            .saturating_sub(MESSAGE_TYPE_BYTES)
    }

    /// Stream data QUIC holds per connection until the client acknowledges
    /// it, all streams together, in bytes: four largest messages. 64 KiB per
    /// round trip is 5 Mbit/s at 100 ms, far above what a game's reliable
    /// messages need, and far below quinn's default (10 MB), which a client
    /// that never acknowledges could make each connection hold. Lanes
    /// share it by `send_fill_max_percent`.
    pub fn stream_send_window_bytes(&self) -> u64 {
        self.stream_message_bytes_max.saturating_mul(4) as u64
    }

    /// Largest payload of a stream message, in bytes: what the pools'
    /// stream-size buffers hold.
    pub fn stream_payload_bytes_max(&self) -> usize {
        self.stream_message_bytes_max
            .saturating_sub(MESSAGE_TYPE_BYTES)
    }

    pub(super) fn validate(&self, host: &HostInfo) -> Result<(), ConfigError> {
        check_cores("gateway.cores", &self.cores, host)?;
        for (field, value) in [
            (
                "gateway.socket_recv_buffer_bytes",
                self.socket_recv_buffer_bytes,
            ),
            (
                "gateway.socket_send_buffer_bytes",
                self.socket_send_buffer_bytes,
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
        non_zero("gateway.connections_max", self.connections_max.into())?;
        non_zero(
            "gateway.connections_per_ip_max",
            self.connections_per_ip_max.into(),
        )?;
        non_zero(
            "gateway.unvalidated_connections_max",
            self.unvalidated_connections_max.into(),
        )?;
        non_zero(
            "gateway.handshakes_per_ip_per_s",
            self.handshakes_per_ip_per_s.into(),
        )?;
        non_zero("gateway.handshake_burst", self.handshake_burst.into())?;
        non_zero(
            "gateway.handshake_ips_tracked_max",
            self.handshake_ips_tracked_max as u64,
        )?;
        if !(1..=RING_POLL_US_MAX).contains(&self.ring_poll_us) {
            return Err(ConfigError::invalid(
                "gateway.ring_poll_us",
                format!(
                    "{} is outside 1-{RING_POLL_US_MAX}; longer delays shard replies on idle cores by that much",
                    self.ring_poll_us
                ),
            ));
        }
        if !(2..=STEER_SLOTS_LIMIT).contains(&self.steer_slots_max) {
            return Err(ConfigError::invalid(
                "gateway.steer_slots_max",
                format!(
                    "{} is outside 2-{STEER_SLOTS_LIMIT} (each slot holds a whole packet)",
                    self.steer_slots_max
                ),
            ));
        }
        self.validate_timeouts()?;
        self.validate_message_sizes()?;
        self.validate_peer_buffers()?;
        match (&self.cert_file, &self.key_file) {
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

    fn validate_timeouts(&self) -> Result<(), ConfigError> {
        non_zero("gateway.hello_timeout_ms", self.hello_timeout_ms)?;
        non_zero("gateway.idle_timeout_ms", self.idle_timeout_ms)?;
        non_zero("gateway.frame_stall_ms", self.frame_stall_ms)?;
        non_zero("gateway.handshake_timeout_ms", self.handshake_timeout_ms)?;
        if self.handshake_timeout_ms > self.idle_timeout_ms {
            return Err(ConfigError::invalid(
                "gateway.handshake_timeout_ms",
                format!(
                    "{} exceeds gateway.idle_timeout_ms ({}), so the idle timeout would fire first; lower it",
                    self.handshake_timeout_ms, self.idle_timeout_ms
                ),
            ));
        }
        if self.initials_per_core_per_s > 0 && self.initial_core_burst == 0 {
            return Err(ConfigError::invalid(
                "gateway.initial_core_burst",
                "is 0, so no Initial could ever pass; set at least 1 (or gateway.initials_per_core_per_s = 0 for no limit)".to_owned(),
            ));
        }
        if self.handshakes_per_core_per_s > 0 && self.handshake_core_burst == 0 {
            return Err(ConfigError::invalid(
                "gateway.handshake_core_burst",
                "is 0, so no handshake could ever start; set at least 1 (or gateway.handshakes_per_core_per_s = 0 for no budget)".to_owned(),
            ));
        }
        if self.frame_stall_ms > self.idle_timeout_ms {
            return Err(ConfigError::invalid(
                "gateway.frame_stall_ms",
                format!(
                    "{} exceeds gateway.idle_timeout_ms ({}), so a trickled frame would outlive an idle connection; lower it",
                    self.frame_stall_ms, self.idle_timeout_ms
                ),
            ));
        }
        if self.hello_timeout_ms > self.idle_timeout_ms {
            return Err(ConfigError::invalid(
                "gateway.hello_timeout_ms",
                format!(
                    "{} exceeds gateway.idle_timeout_ms ({}), so the idle timeout would fire first; lower it or raise gateway.idle_timeout_ms",
                    self.hello_timeout_ms, self.idle_timeout_ms
                ),
            ));
        }
        Ok(())
    }

    fn validate_message_sizes(&self) -> Result<(), ConfigError> {
        let dgram = self.datagram_message_bytes_max;
        if dgram > DATAGRAM_MESSAGE_BYTES_LIMIT {
            return Err(ConfigError::invalid(
                "gateway.datagram_message_bytes_max",
                format!(
                    "{dgram} exceeds {DATAGRAM_MESSAGE_BYTES_LIMIT}, the most that fits a 1200-byte QUIC packet; lower it"
                ),
            ));
        }
        if dgram < MESSAGE_TYPE_BYTES {
            return Err(ConfigError::invalid(
                "gateway.datagram_message_bytes_max",
                format!("{dgram} cannot hold the {MESSAGE_TYPE_BYTES}-byte message type; raise it"),
            ));
        }
        let stream = self.stream_message_bytes_max;
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
        Ok(())
    }

    /// What a peer can make a connection buffer (docs/memory.md).
    fn validate_peer_buffers(&self) -> Result<(), ConfigError> {
        let frame = self.stream_message_bytes_max as u64 + 8;
        let window = self.connection_receive_window_bytes;
        if window < frame {
            return Err(ConfigError::invalid(
                "gateway.connection_receive_window_bytes",
                format!(
                    "{window} cannot hold one largest stream frame ({frame} bytes: gateway.stream_message_bytes_max and its length); raise it"
                ),
            ));
        }
        if window > 1 << 30 {
            return Err(ConfigError::invalid(
                "gateway.connection_receive_window_bytes",
                format!(
                    "{window} exceeds 1 GiB, which a peer could make each connection hold; lower it"
                ),
            ));
        }
        let dgram = self.datagram_message_bytes_max;
        let buffer = self.datagram_receive_buffer_bytes;
        if buffer < 2 * dgram || buffer > 1 << 20 {
            return Err(ConfigError::invalid(
                "gateway.datagram_receive_buffer_bytes",
                format!(
                    "{buffer} is outside {}-1048576 (at least two largest datagrams, gateway.datagram_message_bytes_max {dgram})",
                    2 * dgram
                ),
            ));
        }
        let send = self.datagram_send_buffer_bytes;
        if send < 2 * dgram || send > 1 << 20 {
            return Err(ConfigError::invalid(
                "gateway.datagram_send_buffer_bytes",
                format!(
                    "{send} is outside {}-1048576 (at least two largest datagrams, gateway.datagram_message_bytes_max {dgram})",
                    2 * dgram
                ),
            ));
        }
        self.send_fill_max_percent
            .validate("gateway.send_fill_max_percent", "a send buffer")?;
        if self.uni_streams_max > UNI_STREAMS_LIMIT {
            return Err(ConfigError::invalid(
                "gateway.uni_streams_max",
                format!(
                    "{} exceeds {UNI_STREAMS_LIMIT}, the frame readers a session has; lower it",
                    self.uni_streams_max
                ),
            ));
        }
        Ok(())
    }
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

/// The longest `gateway.ring_poll_us`: 100 ms, three ticks at 30 Hz.
const RING_POLL_US_MAX: u64 = 100_000;

/// The most `gateway.steer_slots_max`: 64 Ki packets per core pair.
const STEER_SLOTS_LIMIT: usize = 1 << 16;

/// Socket buffers below this drop packets under any burst.
const SOCKET_BUFFER_BYTES_MIN: usize = 64 << 10;

/// Every message starts with its 2-byte type (`docs/protocol.md`).
const MESSAGE_TYPE_BYTES: usize = 2;

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

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

    #[test]
    fn payloads_are_messages_less_their_type() {
        let g = GatewayConfig::default();
        assert_eq!(g.datagram_payload_bytes_max(), 1098);
        assert_eq!(g.stream_payload_bytes_max(), 16_382);
    }
}
