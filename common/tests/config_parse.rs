//! Parsing: the embedded default file, partial overrides, and errors that
//! name the field and line. (That every copy of a default agrees is
//! `config_defaults.rs`.)

use lanegate_common::config::{
    Config, ConfigError, CoreSet, DEFAULT_TOML, GameKind, HostInfo, LaneLimit, LogFormat, ZoneSet,
};
use lanegate_common::ids::ZoneId;
use lanegate_common::lanes::Lane;
use proptest::prelude::*;

#[test]
fn empty_file_is_the_default() {
    assert_eq!(Config::from_toml_str("").unwrap(), Config::default());
}

#[test]
fn default_config_is_valid_on_any_host() {
    for cores in [1, 2, 3, 64] {
        Config::default().validate(&HostInfo { cores }).unwrap();
    }
}

#[test]
fn partial_file_overrides_only_what_it_names() {
    let text = r#"
        [gateway]
        listen = "127.0.0.1:5000"
        cores = [0, 1]

        [lanes.limits.critical]
        burst = 100

        [shards]
        game = "arena"

        [shards.lane_budget_per_tick]
        bulk = 16

        [observability]
        metrics_listen = "off"
        log_format = "json"
    "#;
    let got = Config::from_toml_str(text).unwrap();
    let mut want = Config::default();
    want.gateway.listen = "127.0.0.1:5000".parse().unwrap();
    want.gateway.cores = CoreSet::List(vec![0, 1]);
    // The lane's other field keeps that lane's default, not a generic one.
    want.lanes.limits.critical = LaneLimit::new(240, 100);
    want.shards.game = GameKind::Arena;
    want.shards.lane_budget_per_tick.bulk = 16;
    want.observability.metrics_listen = None;
    want.observability.log_format = LogFormat::Json;
    assert_eq!(got, want);
}

#[test]
fn overriding_one_lane_keeps_the_other_lanes() {
    let got = Config::from_toml_str("[lanes.limits.bulk]\nrate_per_s = 1\n").unwrap();
    let limits = got.lanes.limits;
    assert_eq!(limits.get(Lane::Bulk), LaneLimit::new(1, 20));
    assert_eq!(limits.get(Lane::High), LaneLimit::new(120, 60));
}

#[test]
fn ticket_keys_parse_as_an_array_of_tables() {
    let text = r#"
        [[tickets.keys]]
        id = 1
        secret_file = "/etc/lanegate/ticket-1.key"

        [[tickets.keys]]
        id = 2
        secret_file = "/etc/lanegate/ticket-2.key"
    "#;
    let got = Config::from_toml_str(text).unwrap();
    let ids: Vec<u32> = got.tickets.keys.iter().map(|k| k.id.0).collect();
    assert_eq!(ids, [1, 2]);
}

fn parse_err(text: &str) -> (String, String) {
    let err = Config::from_toml_str(text).expect_err("test text is refused");
    (err.field().to_owned(), err.to_string())
}

#[test]
fn unknown_field_is_refused_by_name() {
    let (field, msg) = parse_err("[gateway]\nlisten_addr = \"0.0.0.0:1\"\n");
    assert_eq!(field, "gateway.listen_addr");
    assert!(
        msg.starts_with("gateway.listen_addr: unknown field `listen_addr`, expected one of"),
        "{msg}"
    );
    assert!(msg.ends_with("(line 2, column 1)"), "{msg}");

    let (field, _) = parse_err("[gateway]\n[telemetry]\nx = 1\n");
    assert_eq!(field, "telemetry");
}

#[test]
fn type_errors_name_the_field_and_line() {
    let (field, msg) = parse_err("\n[gateway]\ncores = 7\n");
    assert_eq!(field, "gateway.cores");
    assert_eq!(
        msg,
        "gateway.cores: invalid type: integer `7`, expected \"auto\" or a list of core indices \
         such as [0, 1] (line 3, column 9)"
    );

    let (field, msg) = parse_err("[lanes.limits.high]\nburst = -1\n");
    assert_eq!(field, "lanes.limits.high.burst");
    assert!(msg.contains("(line 2, column 9)"), "{msg}");

    let (field, _) = parse_err("[observability]\nmetrics_listen = \"localhost\"\n");
    assert_eq!(field, "observability.metrics_listen");
}

#[test]
fn zone_sets_parse_and_bad_ones_name_the_field_and_the_fix() {
    let c = Config::from_toml_str("[shards]\nzones = \"1-8, 100,200-210\"\n").unwrap();
    assert_eq!(c.shards.zones, ZoneSet::parse("1-8,100,200-210").unwrap());
    assert!(c.shards.zones.contains(ZoneId(205)));
    assert!(!c.shards.zones.contains(ZoneId(42)));
    for (text, fix) in [
        ("\"\"", "list at least one zone id or range"),
        ("\"10-1\"", "write the lower id first"),
        ("\"1-10,5\"", "ascending order without overlaps"),
        ("\"0-4294967295\"", "serve fewer zones per gateway"),
        ("\"1;2\"", "separated by commas"),
    ] {
        let (field, msg) = parse_err(&format!("[shards]\nzones = {text}\n"));
        assert_eq!(field, "shards.zones", "{text}");
        assert!(msg.starts_with("shards.zones: "), "{msg}");
        assert!(msg.contains(fix), "{text}: {msg}");
        assert!(msg.contains("(line 2, column 9)"), "{msg}");
    }
    let (field, _) = parse_err("[shards]\nzones = 5\n");
    assert_eq!(field, "shards.zones");
}

#[test]
fn errors_inside_arrays_name_the_element() {
    let (field, msg) = parse_err(
        "[lanes]\ntable = [\n  { types = \"0x1000\", lane = \"high\" },\n  \
         { types = \"0x2000\", lane = \"urgent\" },\n]\n",
    );
    assert_eq!(field, "lanes.table[1].lane");
    assert!(msg.contains("unknown variant `urgent`"), "{msg}");

    let (field, _) = parse_err(
        "[[tickets.keys]]\nid = 1\nsecret_file = \"a\"\n\n[[tickets.keys]]\nid = 2\nsecret = \"b\"\n",
    );
    assert_eq!(field, "tickets.keys[1].secret");
}

#[test]
fn syntax_errors_give_the_line() {
    let err = Config::from_toml_str("[gateway]\nlisten = \n").unwrap_err();
    assert!(matches!(err, ConfigError::Parse { line: 2, .. }), "{err:?}");
}

proptest! {
    #[test]
    fn parsing_never_panics(text in "\\PC*") {
        let _ = Config::from_toml_str(&text);
    }

    /// Mutations of the real file reach deeper than random text.
    #[test]
    fn parsing_edited_default_never_panics(at in 0usize..DEFAULT_TOML.len(), junk in "[\\[\\]{}=\",.a-z0-9 \n-]{0,8}") {
        let mut text = DEFAULT_TOML.to_owned();
        let mut at = at;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.insert_str(at, &junk);
        if let Ok(config) = Config::from_toml_str(&text) {
            let _ = config.validate(&HostInfo { cores: 2 });
        }
    }
}

#[test]
fn deep_nesting_does_not_overflow() {
    let text = format!("a = {}", "[".repeat(100_000));
    assert!(Config::from_toml_str(&text).is_err());
}

#[test]
fn deep_closed_nesting_does_not_overflow() {
    for depth in [100, 10_000] {
        let text = format!("a = {}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(Config::from_toml_str(&text).is_err());
        let text = format!(
            "[gateway]\ncores = {}{}",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        assert!(Config::from_toml_str(&text).is_err());
    }
}
