//! The Grafana dashboard (`deploy/grafana/lanegate.json`) is checked, not
//! just shipped:
//!
//! - it parses, and is a dashboard Grafana imports: a uid, a Prometheus
//!   datasource variable every query uses, unique panel ids, panels on the
//!   24-column grid, and a query on every panel;
//! - every query is valid PromQL (`promtool check rules` over a rule file
//!   made of them, Grafana's variables filled in);
//! - every `lanegate_*` metric a query names, and every one the alert
//!   rules (`deploy/prometheus/alerts.yml`) name, is in a live scrape of a
//!   running gateway, except the monitor's of
//!   [`monitor_metrics::ADDED_BY_ISSUE_14_MONITOR`], which must not be
//!   there yet: the list shrinks as they land.
//!
//! Under a second: one gateway start, a scrape and a promtool run.

#[allow(unused_macros)]
#[macro_use]
mod e2e_support;
mod monitor_metrics;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e_support::{Gateway, Launch};
use monitor_metrics::ADDED_BY_ISSUE_14_MONITOR;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn dashboard() -> Value {
    let path = root().join("deploy/grafana/lanegate.json");
    let text = std::fs::read_to_string(&path).expect("deploy/grafana/lanegate.json");
    serde_json::from_str(&text).expect("the dashboard parses as JSON")
}

/// Every panel, rows' nested panels included.
fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        out.push(p);
        if let Some(inner) = p["panels"].as_array() {
            out.extend(inner);
        }
    }
    out
}

/// Every PromQL query of the panels, with the panel's title.
fn queries(d: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in panels(d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap_or_default().to_owned();
            out.push((p["title"].as_str().unwrap_or("?").to_owned(), expr));
        }
    }
    out
}

/// The `lanegate_*` names in `text`.
fn names(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("lanegate_"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_dashboard_is_well_formed() {
    let d = dashboard();
    assert_eq!(d["uid"], "lanegate");
    assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(d["schemaVersion"].as_u64().is_some_and(|v| v >= 36));
    let vars = d["templating"]["list"].as_array().expect("variables");
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no ${name} variable"))
    };
    assert_eq!(var("datasource")["type"], "datasource");
    assert_eq!(var("datasource")["query"], "prometheus");
    assert_eq!(var("instance")["type"], "query");
    let mut ids = HashSet::new();
    for p in panels(&d) {
        let title = p["title"].as_str().expect("a title");
        let id = p["id"].as_u64().expect("an id");
        assert!(ids.insert(id), "panel id {id} twice ({title})");
        let g = &p["gridPos"];
        let (x, w, h) = (g["x"].as_u64(), g["w"].as_u64(), g["h"].as_u64());
        let (x, w, h) = (x.unwrap(), w.unwrap(), h.unwrap());
        assert!(x + w <= 24 && w > 0 && h > 0, "{title}: gridPos {g}");
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        let mut refs = HashSet::new();
        for t in targets {
            assert!(refs.insert(t["refId"].as_str().expect("refId")), "{title}");
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
            let expr = t["expr"].as_str().unwrap_or_default();
            assert!(expr.contains("lanegate_"), "{title}: {expr:?}");
            assert!(expr.contains("instance=~\"$instance\""), "{title}: {expr}");
        }
    }
    // What the dashboard is for (issue 14 §6): each of these is drawn.
    let used: BTreeSet<String> = queries(&d).iter().flat_map(|(_, e)| names(e)).collect();
    for name in [
        "lanegate_messages_to_shard_total",
        "lanegate_gateway_latency_seconds_count",
        "lanegate_admission_dropped_total",
        "lanegate_link_dropped_total",
        "lanegate_connections_open",
        "lanegate_sessions_open",
        "lanegate_quic_retries_sent_total",
        "lanegate_handshakes_refused_total",
        "lanegate_overload_level",
        "lanegate_shard_overload_level",
        "lanegate_shard_tick_p99_seconds",
        "lanegate_shard_tick_seconds_bucket",
        "lanegate_udp_socket_drops_total",
        "lanegate_gateway_latency_seconds_bucket",
        "lanegate_shard_service_seconds_bucket",
        "lanegate_anomaly_active",
        "lanegate_anomaly_score",
        "lanegate_monitor_learning",
        "lanegate_forecast_connections",
        "lanegate_forecast_connections_upper",
        "lanegate_forecast_messages_per_second",
        "lanegate_forecast_messages_per_second_upper",
    ] {
        assert!(used.contains(name), "no panel draws {name}");
    }
}

#[test]
fn the_dashboards_queries_are_promql() {
    if !have("promtool") {
        eprintln!("skipped promtool check rules: not installed (apt-get install prometheus)");
        return;
    }
    let mut rules = String::from("groups:\n  - name: grafana\n    rules:\n");
    for (i, (_, expr)) in queries(&dashboard()).iter().enumerate() {
        // Grafana's variables, as Grafana fills them in.
        let expr = expr
            .replace("$__rate_interval", "1m")
            .replace("$instance", ".+")
            .replace('\'', "''");
        rules.push_str(&format!(
            "      - record: grafana:query_{i}\n        expr: '{expr}'\n"
        ));
    }
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("grafana-{}.yml", std::process::id()));
    std::fs::write(&path, &rules).unwrap();
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "promtool check rules:\n{}{}\n{rules}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_metric_the_dashboard_and_alerts_name_is_exported() {
    let d = dashboard();
    let mut wanted: BTreeSet<(String, &str)> = BTreeSet::new();
    for (_, expr) in queries(&d) {
        wanted.extend(names(&expr).into_iter().map(|n| (n, "the dashboard")));
    }
    for v in d["templating"]["list"].as_array().unwrap() {
        let q = v["definition"].as_str().unwrap_or_default();
        wanted.extend(names(q).into_iter().map(|n| (n, "a dashboard variable")));
    }
    let rules = std::fs::read_to_string(root().join("deploy/prometheus/alerts.yml")).unwrap();
    wanted.extend(names(&rules).into_iter().map(|n| (n, "alerts.yml")));
    assert!(wanted.len() > 40, "{wanted:?}");

    let gw = Gateway::start_with_metrics(&Launch {
        backend: "auto",
        name: "grafana",
        drain_timeout_ms: 1000,
        extra: "",
    });
    let scrape = Scrape::of(&published(&gw));
    let mut missing = Vec::new();
    let mut pending_used = HashSet::new();
    for (name, from) in &wanted {
        match pending(name) {
            Some(family) => {
                pending_used.insert(family);
                assert!(
                    !scrape.exports(name),
                    "{name} is exported now: delete {family} from ADDED_BY_ISSUE_14_MONITOR \
                     (gateway/tests/monitor_metrics/mod.rs)"
                );
            }
            None if scrape.exports(name) => {}
            None => missing.push(format!("{name} (in {from})")),
        }
    }
    assert!(
        missing.is_empty(),
        "named but not in a live scrape: {missing:?}"
    );
    for family in ADDED_BY_ISSUE_14_MONITOR {
        assert!(
            pending_used.contains(family),
            "{family} is in ADDED_BY_ISSUE_14_MONITOR but neither the dashboard nor the alerts use it"
        );
    }
}

/// The allow-listed family `name` belongs to (a histogram's `_bucket`,
/// `_sum` and `_count` belong to it), if any.
fn pending(name: &str) -> Option<&'static str> {
    let family = ["_bucket", "_sum", "_count"]
        .iter()
        .filter_map(|s| name.strip_suffix(s))
        .chain([name]);
    family
        .filter_map(|f| ADDED_BY_ISSUE_14_MONITOR.iter().find(|a| **a == f))
        .copied()
        .next()
}

/// A scrape once every core has published, so per-core families have
/// their series.
fn published(gw: &Gateway) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = gw.scrape();
        if text.contains("lanegate_connections_open{") {
            return text;
        }
        assert!(Instant::now() < deadline, "no core published:\n{text}");
        // Cores publish every 100 ms on their own clock.
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The families (`# TYPE` lines) and series names of a scrape.
struct Scrape {
    types: HashMap<String, String>,
    series: HashSet<String>,
}

impl Scrape {
    fn of(text: &str) -> Scrape {
        let mut types = HashMap::new();
        let mut series = HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, ty) = rest.split_once(' ').unwrap_or((rest, ""));
                types.insert(name.to_owned(), ty.to_owned());
            } else if !line.starts_with('#') && !line.is_empty() {
                let end = line.find(['{', ' ']).unwrap_or(line.len());
                series.insert(line[..end].to_owned());
            }
        }
        Scrape { types, series }
    }

    /// Whether a query's `name` reads something in the scrape: a family or
    /// a series by that name, a histogram's (or summary's) `_bucket`,
    /// `_sum` or `_count`, or an OpenMetrics counter family's `_total`.
    /// Only a family of the right type gets a suffix: `x_count` of a gauge
    /// `x` is not a series.
    fn exports(&self, name: &str) -> bool {
        if self.types.contains_key(name) || self.series.contains(name) {
            return true;
        }
        let family_is = |suffix: &str, kinds: &[&str]| {
            name.strip_suffix(suffix)
                .and_then(|base| self.types.get(base))
                .is_some_and(|ty| kinds.contains(&ty.as_str()))
        };
        ["_bucket", "_sum", "_count"]
            .iter()
            .any(|s| family_is(s, &["histogram", "summary"]))
            || family_is("_total", &["counter"])
    }
}

fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    // CI sets LANEGATE_REQUIRE_TOOLS so these checks cannot pass by skipping.
    assert!(
        found || std::env::var_os("LANEGATE_REQUIRE_TOOLS").is_none(),
        "{tool} is required (LANEGATE_REQUIRE_TOOLS is set)"
    );
    found
}

#[test]
fn suffixes_resolve_only_on_families_that_have_them() {
    let s = Scrape::of(
        "# TYPE a_seconds histogram\na_seconds_bucket{le=\"1\"} 1\n\
         # TYPE g gauge\ng 1\n# TYPE c counter\nc_total 2\n# TYPE d_total counter\nd_total 3\n",
    );
    for yes in [
        "a_seconds",
        "a_seconds_bucket",
        "a_seconds_count",
        "a_seconds_sum",
        "g",
        "c_total",
        "d_total",
    ] {
        assert!(s.exports(yes), "{yes}");
    }
    for no in ["g_count", "g_total", "c_count", "b", "a_seconds_total"] {
        assert!(!s.exports(no), "{no}");
    }
    // Exported since the latency histograms landed: not pending.
    assert_eq!(pending("lanegate_gateway_latency_seconds_bucket"), None);
    assert_eq!(pending("lanegate_forecast_connections_upper"), None);
    assert_eq!(pending("lanegate_shard_tick_p99_seconds"), None);
}
