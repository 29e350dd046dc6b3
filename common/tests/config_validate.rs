//! Validation: each rule's message names the field and the fix.

use lanegate_common::config::{Config, CoreSet, HostInfo};

const TWO_CORES: HostInfo = HostInfo { cores: 2 };

/// The message `text` gets from validation on a 2-core host.
fn invalid(text: &str) -> String {
    let config = Config::from_toml_str(text).expect("test text parses");
    config
        .validate(&TWO_CORES)
        .expect_err("test text is invalid")
        .to_string()
}

#[test]
fn cores_must_exist_on_the_host() {
    assert_eq!(
        invalid("[gateway]\ncores = [7]"),
        "gateway.cores: core 7 does not exist on this host (cores 0-1)"
    );
    let mut c = Config::default();
    c.shards.cores = CoreSet::List(vec![1]);
    assert_eq!(
        c.validate(&HostInfo { cores: 1 }).unwrap_err().to_string(),
        "shards.cores: core 1 does not exist on this host (only core 0)"
    );
}

#[test]
fn cores_must_be_distinct_and_non_empty() {
    assert_eq!(
        invalid("[shards]\ncores = [1, 1]"),
        "shards.cores: core 1 is listed twice; list each core once"
    );
    assert_eq!(
        invalid("[gateway]\ncores = []"),
        "gateway.cores: is empty; list at least one core, or use \"auto\""
    );
}

#[test]
fn explicit_cores_may_overlap_between_tiers() {
    let c = Config::from_toml_str("[gateway]\ncores = [0]\n[shards]\ncores = [0]").unwrap();
    c.validate(&HostInfo { cores: 1 }).unwrap();
}

#[test]
fn socket_buffers_have_a_floor() {
    assert_eq!(
        invalid("[gateway]\nsocket_send_buffer_bytes = 4096"),
        "gateway.socket_send_buffer_bytes: 4096 is below 65536; a smaller buffer drops packets under any burst"
    );
}

#[test]
fn counts_and_rates_are_non_zero() {
    for (text, field) in [
        ("[gateway]\nconnections_max = 0", "gateway.connections_max"),
        (
            "[gateway]\nhandshakes_per_ip_per_s = 0",
            "gateway.handshakes_per_ip_per_s",
        ),
        ("[gateway]\nhandshake_burst = 0", "gateway.handshake_burst"),
        (
            "[gateway]\nhello_timeout_ms = 0",
            "gateway.hello_timeout_ms",
        ),
        ("[gateway]\nframe_stall_ms = 0", "gateway.frame_stall_ms"),
        ("[tickets]\nttl_max_s = 0", "tickets.ttl_max_s"),
        (
            "[admission]\nabuse_window_ms = 0",
            "admission.abuse_window_ms",
        ),
        (
            "[admission]\nabuse_drops_max = 0",
            "admission.abuse_drops_max",
        ),
        (
            "[gateway]\nconnections_per_ip_max = 0",
            "gateway.connections_per_ip_max",
        ),
        (
            "[gateway]\nunvalidated_connections_max = 0",
            "gateway.unvalidated_connections_max",
        ),
        ("[admission]\nbans_max = 0", "admission.bans_max"),
        ("[shards]\ntick_budget_us = 0", "shards.tick_budget_us"),
        ("[shards]\nring_slots_max = 0", "shards.ring_slots_max"),
    ] {
        assert_eq!(
            invalid(text),
            format!("{field}: must be at least 1"),
            "{text}"
        );
    }
}

#[test]
fn hello_timeout_fits_idle_timeout() {
    assert_eq!(
        invalid("[gateway]\nhello_timeout_ms = 20000"),
        "gateway.hello_timeout_ms: 20000 exceeds gateway.idle_timeout_ms (10000), so the idle \
         timeout would fire first; lower it or raise gateway.idle_timeout_ms"
    );
}

#[test]
fn peer_buffers_are_bounded_and_hold_a_largest_message() {
    for (text, field) in [
        (
            "[gateway]\nconnection_receive_window_bytes = 16391",
            "gateway.connection_receive_window_bytes",
        ),
        (
            "[gateway]\nconnection_receive_window_bytes = 2000000000",
            "gateway.connection_receive_window_bytes",
        ),
        (
            "[gateway]\ndatagram_receive_buffer_bytes = 2199",
            "gateway.datagram_receive_buffer_bytes",
        ),
        (
            "[gateway]\ndatagram_receive_buffer_bytes = 2000000",
            "gateway.datagram_receive_buffer_bytes",
        ),
        ("[gateway]\nuni_streams_max = 5", "gateway.uni_streams_max"),
    ] {
        assert!(
            invalid(text).starts_with(&format!("{field}: ")),
            "{text}: {}",
            invalid(text)
        );
    }
    assert!(
        invalid("[gateway]\nconnection_receive_window_bytes = 16391").contains("raise it"),
        "the error says the fix"
    );
}

#[test]
fn frame_stall_fits_idle_timeout() {
    assert_eq!(
        invalid("[gateway]\nframe_stall_ms = 10001"),
        "gateway.frame_stall_ms: 10001 exceeds gateway.idle_timeout_ms (10000), so a trickled \
         frame would outlive an idle connection; lower it"
    );
}

#[test]
fn datagram_message_fits_a_quic_packet() {
    assert_eq!(
        invalid("[gateway]\ndatagram_message_bytes_max = 1151"),
        "gateway.datagram_message_bytes_max: 1151 exceeds 1150, the most that fits a 1200-byte \
         QUIC packet; lower it"
    );
    assert_eq!(
        invalid("[gateway]\ndatagram_message_bytes_max = 1"),
        "gateway.datagram_message_bytes_max: 1 cannot hold the 2-byte message type; raise it"
    );
    // 1150 itself is allowed, with a stream limit to match.
    let c = Config::from_toml_str("[gateway]\ndatagram_message_bytes_max = 1150").unwrap();
    c.validate(&TWO_CORES).unwrap();
}

#[test]
fn stream_message_holds_a_datagram_message() {
    assert_eq!(
        invalid("[gateway]\nstream_message_bytes_max = 1000"),
        "gateway.stream_message_bytes_max: 1000 is below gateway.datagram_message_bytes_max \
         (1100); a message that fits a datagram must also fit a stream"
    );
    assert_eq!(
        invalid("[gateway]\nstream_message_bytes_max = 1000000000"),
        "gateway.stream_message_bytes_max: 1000000000 exceeds 16777216; each connection may \
         buffer a message this big, so send large data out of band"
    );
}

#[test]
fn cert_and_key_come_together() {
    assert_eq!(
        invalid("[gateway]\ncert_file = \"/c.pem\""),
        "gateway.cert_file: set together with gateway.key_file"
    );
    assert_eq!(
        invalid("[gateway]\nkey_file = \"/k.pem\""),
        "gateway.key_file: set together with gateway.cert_file"
    );
    let both = "[gateway]\ncert_file = \"/c.pem\"\nkey_file = \"/k.pem\"";
    Config::from_toml_str(both)
        .unwrap()
        .validate(&TWO_CORES)
        .unwrap();
}

#[test]
fn ticket_key_ids_are_unique_and_not_the_dev_id() {
    let key = |id| format!("[[tickets.keys]]\nid = {id}\nsecret_file = \"/k{id}\"\n");
    assert_eq!(
        invalid(&format!("{}{}", key(3), key(3))),
        "tickets.keys: key id 3 is listed twice; give each key its own id"
    );
    assert_eq!(
        invalid(&key(0)),
        "tickets.keys: key id 0 is reserved for the built-in dev key; number real keys from 1"
    );
    assert_eq!(
        invalid("[[tickets.keys]]\nid = 1\nsecret_file = \"\""),
        "tickets.keys: key id 1 has an empty secret_file; name the file holding its secret"
    );
}

#[test]
fn clock_skew_is_below_ticket_lifetime() {
    assert_eq!(
        invalid("[tickets]\nclock_skew_s = 60\nttl_max_s = 60"),
        "tickets.clock_skew_s: 60 is not below tickets.ttl_max_s (60), so expired tickets would \
         stay valid for longer than any ticket lives; lower it"
    );
}

#[test]
fn lane_table_ranges_are_disjoint() {
    let text = r#"
        [lanes]
        table = [
            { types = "0x0100-0x02ff", lane = "high" },
            { types = "0x0100-0x01ff", lane = "bulk" },
        ]
    "#;
    assert_eq!(
        invalid(text),
        "lanes.table: types 0x0100-0x01ff are mapped to two lanes (high and bulk); make the \
         ranges disjoint"
    );
    let control = "[lanes]\ntable = [{ types = \"0x0000-0x0100\", lane = \"critical\" }]";
    assert!(
        invalid(control).starts_with("lanes.table: types 0x0000-0x0100 overlap the control range")
    );
}

#[test]
fn lane_table_is_built_from_config() {
    let text =
        "[lanes]\ndefault_lane = \"normal\"\ntable = [{ types = \"0x0200\", lane = \"critical\" }]";
    let table = Config::from_toml_str(text)
        .unwrap()
        .lanes
        .lane_table()
        .unwrap();
    use lanegate_common::lanes::{Lane, MessageClass};
    assert_eq!(table.classify(0x0200), MessageClass::Game(Lane::Critical));
    assert_eq!(table.classify(0x1000), MessageClass::Game(Lane::Normal));
}

#[test]
fn lane_limits_are_non_zero() {
    assert_eq!(
        invalid("[lanes.limits.high]\nrate_per_s = 0"),
        "lanes.limits.high.rate_per_s: is 0, so every high message would be dropped; set at \
         least 1, or map no types to high"
    );
    assert_eq!(
        invalid("[lanes.limits.bulk]\nburst = 0"),
        "lanes.limits.bulk.burst: is 0, so the bucket can never hold a message; set at least 1"
    );
}

#[test]
fn tick_rate_is_in_range() {
    for hz in [0, 1001] {
        assert_eq!(
            invalid(&format!("[shards]\ntick_rate_hz = {hz}")),
            format!("shards.tick_rate_hz: {hz} is outside 1-1000")
        );
    }
}

#[test]
fn tick_budget_fits_the_tick() {
    assert_eq!(
        invalid("[shards]\ntick_budget_us = 40000"),
        "shards.tick_budget_us: 40000 exceeds the tick period of 33333 us at 30 Hz; lower it or \
         lower shards.tick_rate_hz"
    );
    // Raising the rate alone makes the default budget too long, and says so.
    assert!(
        invalid("[shards]\ntick_rate_hz = 60").starts_with("shards.tick_budget_us: 20000 exceeds")
    );
}

#[test]
fn lane_budgets_fit_a_ring() {
    assert_eq!(
        invalid("[shards.lane_budget_per_tick]\nnormal = 0"),
        "shards.lane_budget_per_tick.normal: is 0, so normal messages would never be delivered; \
         set at least 1"
    );
    assert_eq!(
        invalid("[shards]\nring_slots_max = 1024"),
        "shards.lane_budget_per_tick.critical: 4096 exceeds shards.ring_slots_max (1024); a tick \
         cannot take more than a ring holds, lower it or raise shards.ring_slots_max"
    );
}

#[test]
fn watchdog_outlasts_a_tick() {
    assert_eq!(
        invalid("[shards]\nstall_after_ms = 33"),
        "shards.stall_after_ms: 33 ms is not longer than the tick period of 33333 us, so every \
         tick would look stalled; raise it"
    );
}

#[test]
fn errors_expose_their_field() {
    let c = Config::from_toml_str("[shards]\nmessage_pass_us = 40000").unwrap();
    assert_eq!(
        c.validate(&TWO_CORES).unwrap_err().field(),
        "shards.message_pass_us"
    );
}

#[test]
fn tick_budget_message_names_the_period() {
    // Formerly `ShardConfig::validate`'s check in the shard crate.
    assert_eq!(
        invalid("[shards]\ntick_budget_us = 50000"),
        "shards.tick_budget_us: 50000 exceeds the tick period of 33333 us at 30 Hz; lower it or \
         lower shards.tick_rate_hz"
    );
}

#[test]
fn inboxes_hold_a_tick_of_their_lane() {
    assert_eq!(
        invalid("[shards.inbox_slots_max]\nbulk = 1"),
        "shards.inbox_slots_max.bulk: 1 is below shards.lane_budget_per_tick.bulk (256), so a \
         tick could never take its budget; raise it or lower the budget"
    );
}

#[test]
fn lane_fill_falls_from_critical_at_100() {
    assert_eq!(
        invalid("[shards.lane_fill_max_percent]\nhigh = 50"),
        "shards.lane_fill_max_percent.normal: 75 exceeds shards.lane_fill_max_percent.high (50); \
         a lower lane may not fill more of a ring than the lane above it, lower it"
    );
    assert_eq!(
        invalid("[shards.lane_fill_max_percent]\ncritical = 90"),
        "shards.lane_fill_max_percent.critical: is 90; it must be 100: no lane is above critical \
         to keep room for"
    );
    assert_eq!(
        invalid("[shards.lane_fill_max_percent]\nbulk = 0"),
        "shards.lane_fill_max_percent.bulk: is 0, so every bulk message would be refused; set at \
         least 1"
    );
}

#[test]
fn shard_queues_and_cadence_are_non_zero() {
    for field in [
        "outbox_slots_max",
        "hold_slots_max",
        "control_backlog_max",
        "health_every_ticks",
        "pool_stream_bufs_max",
    ] {
        assert_eq!(
            invalid(&format!("[shards]\n{field} = 0")),
            format!("shards.{field}: must be at least 1")
        );
    }
    assert_eq!(
        invalid("[shards]\ntick_window_ticks = 5000"),
        "shards.tick_window_ticks: 5000 is outside 1-4096; the percentiles sort the window at \
         every snapshot"
    );
    assert!(
        invalid("[shards]\nring_slots_max = 2000000")
            .starts_with("shards.ring_slots_max: 2000000 exceeds 1048576;")
    );
}

#[test]
fn datagram_pool_covers_every_connection() {
    assert_eq!(
        invalid("[shards]\npool_datagram_bufs_max = 1024"),
        "shards.pool_datagram_bufs_max: 1024 is below gateway.connections_max (10000), so a crowd \
         of that many players loses datagram-size messages (one positions update each per tick) \
         for want of a buffer; raise it to at least 10000, set \"auto\", or lower \
         gateway.connections_max"
    );
    // "auto" follows the players.
    let c = Config::from_toml_str("[gateway]\nconnections_max = 20000").unwrap();
    c.validate(&TWO_CORES).unwrap();
    assert_eq!(c.shards.pool_datagram_bufs(&c.gateway), 20_000);
    let c = Config::from_toml_str(
        "[gateway]\nconnections_max = 1000\n[shards]\npool_datagram_bufs_max = 1024",
    )
    .unwrap();
    c.validate(&TWO_CORES).unwrap();
}

#[test]
fn huge_stream_messages_exceed_the_pool_budget() {
    // 16 MiB is within the stream limit itself, but 32 preallocated stream
    // buffers of that size are 512 MiB per pool.
    let msg = invalid(
        "[gateway]\nstream_message_bytes_max = 16777216\nconnection_receive_window_bytes = 33554432",
    );
    assert_eq!(
        msg,
        "gateway.stream_message_bytes_max: 16777216 with shards.pool_stream_bufs_max = 32: each \
         payload pool would preallocate 547850848 bytes (10000 datagram buffers of 1098 bytes and \
         32 stream buffers of 16777214 bytes), above shards.pool_bytes_max (67108864); 2 pools \
         (one per gateway core and per shard) would take 1095701696 bytes; lower \
         gateway.stream_message_bytes_max or shards.pool_stream_bufs_max, or raise \
         shards.pool_bytes_max"
    );
    // Fewer stream buffers fit the same budget.
    let c = Config::from_toml_str(
        "[gateway]\nstream_message_bytes_max = 16777216\nconnection_receive_window_bytes = 33554432\n\
         [shards]\npool_stream_bufs_max = 3",
    )
    .unwrap();
    c.validate(&TWO_CORES).unwrap();
}

#[test]
fn many_datagram_buffers_exceed_the_pool_budget() {
    // "auto": the connections size the datagram buffers, so they are named.
    let text = "[gateway]\nconnections_max = 100000";
    let config = Config::from_toml_str(text).unwrap();
    let err = config.validate(&HostInfo { cores: 8 }).unwrap_err();
    assert_eq!(err.field(), "gateway.connections_max");
    let msg = err.to_string();
    assert!(
        msg.contains("8 pools (one per gateway core and per shard) would take"),
        "{msg}"
    );
    assert!(
        msg.ends_with("raise shards.pool_bytes_max, or lower gateway.connections_max"),
        "{msg}"
    );
    let raised = format!("{text}\n[shards]\npool_bytes_max = 134217728");
    Config::from_toml_str(&raised)
        .unwrap()
        .validate(&HostInfo { cores: 8 })
        .unwrap();
    // A count is named itself.
    let counted = "[shards]\npool_datagram_bufs_max = 100000";
    let err = Config::from_toml_str(counted)
        .unwrap()
        .validate(&TWO_CORES)
        .unwrap_err();
    assert_eq!(err.field(), "shards.pool_datagram_bufs_max");
    assert!(
        err.to_string().ends_with(
            "lower it (not below gateway.connections_max), or raise shards.pool_bytes_max"
        ),
        "{err}"
    );
}
