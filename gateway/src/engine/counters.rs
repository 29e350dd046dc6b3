//! What an engine counts: only what it saw and decided itself (packets,
//! sessions, admission, outbound). Losses between the core and its shards
//! are the shard links' to count (`lanegate_shard::port::LinkDrops`), so
//! each dropped message is counted exactly once.

use lanegate_common::lanes::Lane;

use super::stateless::StatelessCounts;

/// What the engine has seen, since it started. Plain numbers: the metrics
/// layer reads and exports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// UDP datagrams handed to [`Engine::handle_datagram`](super::Engine::handle_datagram).
    pub udp_in: u64,
    /// UDP datagrams the QUIC endpoint dropped without an event: headers
    /// that do not parse, unknown connection ids, Initials too short or
    /// undecryptable, short unsupported-version packets, resets held back
    /// by quinn's minimum reset interval. Mostly garbage or a flood.
    pub packets_undecodable: u64,
    /// Received packets copied into an allocation of their own because
    /// every receive arena was still held by QUIC (`rx_arenas.rs`): loss,
    /// reordering, or a peer keeping stream data behind gaps.
    pub rx_arena_copies: u64,
    /// Stateless replies queued for sending, by kind (`stateless.rs`).
    pub stateless_replies: StatelessCounts,
    /// QUIC DATAGRAM frames received from clients.
    pub datagrams_in: u64,
    /// Datagrams dropped because their session was not established (yet).
    pub datagrams_before_welcome: u64,
    /// Datagrams too short to hold a type.
    pub malformed_datagrams: u64,
    /// Datagrams larger than `datagram_message_bytes_max`.
    pub oversize_datagrams: u64,
    /// Datagrams with a control-range type.
    pub control_datagrams: u64,
    /// Client uni streams that ended (finished or reset): each counts
    /// toward `ABUSE` as stream churn.
    pub uni_streams_ended: u64,
    /// Connections closed for bad framing or undecodable stream messages.
    pub malformed_streams: u64,
    /// Connections closed with `PROTOCOL_VIOLATION` (any cause).
    pub protocol_violations: u64,
    /// `Hello`s with a bad (malformed, forged, unknown-key...) ticket.
    pub tickets_bad: u64,
    /// `Hello`s with an expired ticket.
    pub tickets_expired: u64,
    /// `Hello`s with another protocol version.
    pub unsupported_versions: u64,
    /// `Hello`s whose ticket verified for a zone outside `shards.zones`.
    pub unknown_zones: u64,
    /// Connections closed with `HELLO_TIMEOUT`.
    pub hello_timeouts: u64,
    /// Connections closed because the client offered no datagrams, or a
    /// `max_datagram_frame_size` below 1200.
    pub datagrams_required: u64,
    /// Sessions closed with `SESSION_REPLACED`: a newer session of the same
    /// player was welcomed, on this core or (told by the shard) another.
    pub sessions_replaced: u64,
    /// Connections closed with `SERVER_FULL`.
    pub server_full: u64,
    /// Connections refused at QUIC level (draining, or no slot at all).
    pub refused: u64,
    /// UDP datagrams dropped unread because their source port is in
    /// `gateway.blocked_source_ports`.
    pub blocked_source_port: u64,
    /// QUIC Retry packets sent: new connections from unvalidated addresses
    /// while Retry was on.
    pub retries_sent: u64,
    /// Times Retry was switched on (`gateway.retry_above_handshakes_per_s`).
    pub retry_engaged: u64,
    /// New connections over admission's handshake limit
    /// (`gateway.handshakes_per_ip_per_s`): answered with a Retry by the
    /// gateway's policy (dropped by a policy that says `Ignore`).
    pub handshakes_ignored: u64,
    /// Handshakes ignored because this core's crypto budget was spent
    /// (`gateway.handshakes_per_core_per_s`).
    pub handshakes_over_budget: u64,
    /// Initial packets dropped unread because this core's Initial budget
    /// was spent (`gateway.initials_per_core_per_s`).
    pub initials_over_budget: u64,
    /// New connections' handshakes this core accepted and pays TLS for
    /// (not those refused, ignored or answered with a Retry): the
    /// handshake rate the degradation ladder reads.
    pub handshakes: u64,
    /// New connections refused because their address had
    /// `gateway.connections_per_ip_max` open.
    pub refused_per_ip: u64,
    /// New connections answered with a Retry because
    /// `gateway.unvalidated_connections_max` were not yet validated.
    pub unvalidated_full: u64,
    /// New connections whose first packet was dropped because their
    /// address is banned after an `ABUSE` close.
    pub handshakes_banned: u64,
    /// `Hello`s refused with `ABUSE` because their player is banned.
    pub hellos_banned: u64,
    /// Bans added (or extended) after `ABUSE` closes, addresses and
    /// players (`admission.abuse_ban_ms`).
    pub bans_added: u64,
    /// Bans forgotten before their end because `admission.bans_max` were
    /// held.
    pub bans_evicted: u64,
    /// Connections the admission hook closed (with `ABUSE`).
    pub admission_closes: u64,
    /// Connections closed with `ABUSE` because a stream frame stayed
    /// incomplete past `gateway.frame_stall_ms`.
    pub frame_stalls: u64,
    /// Connections lost (peer close, idle timeout, transport error), except
    /// those counted in `handshake_timeouts`.
    pub connections_lost: u64,
    /// Connections that timed out before their QUIC handshake completed (a
    /// flood of Initials from spoofed addresses, or a client that gave up).
    pub handshake_timeouts: u64,
    /// Connections currently in the table.
    pub connections_open: u64,
    /// Sessions established, in total.
    pub sessions_opened: u64,
    /// Sessions currently established.
    pub sessions_open: u64,
    /// Game messages the shard links took. What they refused is counted by
    /// the links alone (`GatewayPort::drops`), never here.
    pub messages_to_shard: u64,
    /// Game messages admission dropped, per lane.
    pub admit_dropped: [u64; Lane::COUNT],
    /// Game messages received from clients, per lane (before admission).
    pub messages_in: [u64; Lane::COUNT],
    /// Game messages handed to QUIC for clients, per lane.
    pub messages_out: [u64; Lane::COUNT],
    /// Game messages sent to clients as datagrams.
    pub datagrams_out: u64,
    /// Game and control messages written to control streams.
    pub stream_messages_out: u64,
    /// Outbound datagrams dropped (too large for the peer, or refused by QUIC).
    pub datagrams_out_dropped: u64,
    /// Outbound control messages dropped (control stream backlog full).
    pub stream_out_dropped: u64,
    /// Outbound game messages dropped, per lane, because the connection's
    /// send buffers were full to the lane's share (`egress.rs`): a
    /// datagram past it (for `critical`, the oldest queued datagram it
    /// pushed out), or a stream message past the lane's backlog.
    pub out_congested: [u64; Lane::COUNT],
    /// Shard messages for a session this core no longer has.
    pub unknown_session: u64,
    /// Shard messages this engine does not handle (zone moves).
    pub unhandled_from_shard: u64,
    /// Endpoint responses dropped because the queue was full.
    pub responses_dropped: u64,
    /// Failed-over shards this core re-homed the players of.
    pub shards_lost: u64,
    /// Sessions re-joined to their zone's new shard after a failover, and
    /// sent `ZONE_RESET`.
    pub sessions_rehomed: u64,
    /// Sessions closed, and `Hello`s refused, with `SHARD_UNAVAILABLE`: no
    /// shard could take the player.
    pub shard_unavailable: u64,
}
