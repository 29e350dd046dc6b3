//! The per-core metric families `/metrics` encodes, as tables: each a
//! name, its help text and what it reads from a core's snapshot, so that
//! adding a counter is one row here (`encode.rs` walks the tables).

use lanegate_common::lanes::Lane;

use super::CoreSnapshot;

/// A per-core counter: name (without `_total`), help, value.
pub(super) type CoreCounter = (&'static str, &'static str, fn(&CoreSnapshot) -> u64);

/// Counters with one series per core.
pub(super) const CORE_COUNTERS: &[CoreCounter] = &[
    (
        "lanegate_udp_datagrams_in",
        "UDP datagrams received (after GRO splitting), including those steered here.",
        |s| s.engine.udp_in,
    ),
    (
        "lanegate_quic_packets_undecodable",
        "UDP datagrams the QUIC endpoint dropped without an event: unparseable, unknown \
         connection id, undecryptable or short Initial (garbage or a flood).",
        |s| s.engine.packets_undecodable,
    ),
    (
        "lanegate_quic_initials_dropped",
        "QUIC Initial packets dropped unread, over the core's Initial budget \
         (gateway.initials_per_core_per_s): a handshake flood.",
        |s| s.engine.initials_over_budget,
    ),
    (
        "lanegate_rx_arena_copies",
        "Received packets copied into an allocation of their own because every receive arena \
         was still held by QUIC (loss, reordering, or stream data kept behind gaps).",
        |s| s.engine.rx_arena_copies,
    ),
    (
        "lanegate_uni_streams_ended",
        "Client uni streams that ended (finished or reset); each counts toward ABUSE as churn.",
        |s| s.engine.uni_streams_ended,
    ),
    (
        "lanegate_quic_datagrams_in",
        "QUIC DATAGRAM frames received from clients.",
        |s| s.engine.datagrams_in,
    ),
    (
        "lanegate_sessions_opened",
        "Sessions established (ticket accepted).",
        |s| s.engine.sessions_opened,
    ),
    (
        "lanegate_sessions_replaced",
        "Sessions closed with SESSION_REPLACED: a newer session of the same player was welcomed.",
        |s| s.engine.sessions_replaced,
    ),
    (
        "lanegate_quic_retries_sent",
        "QUIC Retry packets sent to unvalidated addresses while Retry was on.",
        |s| s.engine.retries_sent,
    ),
    (
        "lanegate_retries_unvalidated_full",
        "Retries sent because gateway.unvalidated_connections_max connections were not yet validated.",
        |s| s.engine.unvalidated_full,
    ),
    (
        "lanegate_retry_engaged",
        "Times Retry was switched on: unvalidated handshakes passed gateway.retry_above_handshakes_per_s.",
        |s| s.engine.retry_engaged,
    ),
    (
        "lanegate_blocked_source_port_dropped",
        "UDP datagrams dropped unread because their source port is in gateway.blocked_source_ports.",
        |s| s.engine.blocked_source_port,
    ),
    (
        "lanegate_bans_added",
        "Bans of an address or a player added (or extended) after an ABUSE close.",
        |s| s.engine.bans_added,
    ),
    (
        "lanegate_bans_evicted",
        "Bans forgotten before their end because admission.bans_max were held.",
        |s| s.engine.bans_evicted,
    ),
    (
        "lanegate_messages_to_shard",
        "Game messages forwarded to shards.",
        |s| s.engine.messages_to_shard,
    ),
    (
        "lanegate_datagrams_out",
        "Game messages sent to clients as QUIC datagrams.",
        |s| s.engine.datagrams_out,
    ),
    (
        "lanegate_stream_messages_out",
        "Game and control messages written to control streams.",
        |s| s.engine.stream_messages_out,
    ),
    (
        "lanegate_overload_transitions",
        "Steps of the core's degradation ladder, up and down.",
        |s| s.overload.transitions,
    ),
    (
        "lanegate_link_joins_refused",
        "Session joins the shard links refused: the shard's control backlog was full.",
        |s| s.link_drops.joins_refused,
    ),
    (
        "lanegate_link_fenced_dropped",
        "Entries a failed-over shard sent after its fence, dropped unread: a stuck game that woke up.",
        |s| s.link_drops.fenced_dropped,
    ),
    (
        "lanegate_link_deferred",
        "normal messages the core's degradation level (2 and up) held back in its bounded queue.",
        |s| s.link_drops.deferred,
    ),
    (
        "lanegate_link_deferred_expired",
        "Deferred normal messages dropped at release for having waited past overload.defer_normal_max_ms.",
        |s| s.link_drops.deferred_expired,
    ),
    (
        "lanegate_failover_sessions_rehomed",
        "Sessions re-joined to a healthy shard after theirs was failed over, and sent ZONE_RESET.",
        |s| s.engine.sessions_rehomed,
    ),
    (
        "lanegate_shard_unavailable",
        "Sessions closed and Hellos refused with SHARD_UNAVAILABLE: no shard could take the player.",
        |s| s.engine.shard_unavailable,
    ),
    (
        "lanegate_quic_responses_dropped",
        "Stateless QUIC responses dropped because their queue was full.",
        |s| s.engine.responses_dropped,
    ),
    (
        "lanegate_steered_out",
        "Packets handed to the owning core's steering ring.",
        |s| s.steer.out,
    ),
    (
        "lanegate_steered_in",
        "Packets other cores steered to this one.",
        |s| s.steer.r#in,
    ),
    (
        "lanegate_tx_blocked",
        "Transmits the IO backend could not take at once (retried next turn).",
        |s| s.tx_blocked,
    ),
    (
        "lanegate_recv_transient_errors",
        "Receives that failed for a passing reason (signal, ICMP error).",
        |s| s.recv_transient,
    ),
];

/// A per-core counter split by `reason`.
pub(super) type ReasonCounter = (
    &'static str,
    &'static str,
    &'static [(&'static str, fn(&CoreSnapshot) -> u64)],
);

pub(super) const REASON_COUNTERS: &[ReasonCounter] = &[
    (
        "lanegate_tickets_refused",
        "Hellos refused for their ticket, its zone, the protocol version, or a ban on their player.",
        &[
            ("bad", |s| s.engine.tickets_bad),
            ("expired", |s| s.engine.tickets_expired),
            ("version", |s| s.engine.unsupported_versions),
            ("unknown_zone", |s| s.engine.unknown_zones),
            ("banned", |s| s.engine.hellos_banned),
        ],
    ),
    (
        "lanegate_handshakes_refused",
        "New connections turned away: refused at QUIC level (draining or no slot), \
         over the per-IP handshake limit (sent a Retry), from a banned address, over the per-IP \
         connection limit (refused), over the core's crypto budget (ignored), or closed with \
         SERVER_FULL.",
        &[
            ("refused", |s| s.engine.refused),
            ("rate_limited", |s| s.engine.handshakes_ignored),
            ("crypto_budget", |s| s.engine.handshakes_over_budget),
            ("banned", |s| s.engine.handshakes_banned),
            ("per_ip", |s| s.engine.refused_per_ip),
            ("server_full", |s| s.engine.server_full),
        ],
    ),
    (
        "lanegate_connections_closed",
        "Connections closed by the gateway or lost, by cause.",
        &[
            ("hello_timeout", |s| s.engine.hello_timeouts),
            ("datagrams_required", |s| s.engine.datagrams_required),
            ("abuse", |s| s.engine.admission_closes),
            ("frame_stall", |s| s.engine.frame_stalls),
            ("protocol_violation", |s| s.engine.protocol_violations),
            ("malformed_stream", |s| s.engine.malformed_streams),
            ("lost", |s| s.engine.connections_lost),
            ("handshake_timeout", |s| s.engine.handshake_timeouts),
        ],
    ),
    (
        "lanegate_stateless_replies_sent",
        "Packets the QUIC endpoint sent without a connection, by kind: version negotiation, \
         stateless reset, Retry, refusal (CONNECTION_CLOSE in an Initial).",
        &[
            ("version_negotiation", |s| {
                s.engine.stateless_replies.version_negotiation
            }),
            ("reset", |s| s.engine.stateless_replies.reset),
            ("retry", |s| s.engine.stateless_replies.retry),
            ("refusal", |s| s.engine.stateless_replies.refusal),
        ],
    ),
    (
        "lanegate_datagrams_in_dropped",
        "Inbound datagrams dropped before classification, by cause.",
        &[
            ("before_welcome", |s| s.engine.datagrams_before_welcome),
            ("malformed", |s| s.engine.malformed_datagrams),
            ("oversize", |s| s.engine.oversize_datagrams),
            ("control_type", |s| s.engine.control_datagrams),
        ],
    ),
    (
        "lanegate_messages_out_dropped",
        "Outbound messages dropped (datagram too large or refused; stream backlog full).",
        &[
            ("datagram", |s| s.engine.datagrams_out_dropped),
            ("stream", |s| s.engine.stream_out_dropped),
        ],
    ),
    (
        "lanegate_shard_messages_dropped",
        "Messages from shards the core could not deliver.",
        &[
            ("unknown_session", |s| s.engine.unknown_session),
            ("unhandled", |s| s.engine.unhandled_from_shard),
        ],
    ),
    (
        "lanegate_steer_dropped",
        "Packets for another core dropped: its ring was full, or the packet too large.",
        &[
            ("full", |s| s.steer.full),
            ("oversize", |s| s.steer.oversize),
        ],
    ),
];

/// A per-core counter with one series per lane.
pub(super) type LaneCounter = (&'static str, &'static str, fn(&CoreSnapshot, Lane) -> u64);

pub(super) const LANE_COUNTERS: &[LaneCounter] = &[
    (
        "lanegate_messages_in",
        "Game messages received from clients, before admission.",
        |s, l| s.engine.messages_in[l.index()],
    ),
    (
        "lanegate_messages_out",
        "Game messages handed to QUIC for clients.",
        |s, l| s.engine.messages_out[l.index()],
    ),
    (
        "lanegate_admission_dropped",
        "Game messages over their lane's per-connection rate, dropped.",
        |s, l| s.engine.admit_dropped[l.index()],
    ),
    (
        "lanegate_messages_out_congested",
        "Outbound game messages dropped because the connection's send buffers were full to the lane's share.",
        |s, l| s.engine.out_congested[l.index()],
    ),
];
