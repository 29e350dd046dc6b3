//! One value per default: `Config::default()` is the source, and every other
//! place that states a default must agree with it. Those places are
//! `default.toml` (the file `config print-default` prints), the tables of
//! `docs/configuration.md`, and the "Default N" of each field's doc comment
//! in `common/src/config/`. A default changed in one place and not the
//! others fails here, naming the field.

use std::collections::BTreeMap;

use lanegate_common::config::{Config, DEFAULT_TOML};

const CONFIGURATION_MD: &str = include_str!("../../docs/configuration.md");

/// The section files whose field docs state defaults, each with the dotted
/// prefix of every struct in it that maps onto a table of the file.
const SOURCES: [(&str, &[(&str, &str)]); 7] = [
    (
        include_str!("../src/config/gateway.rs"),
        &[("GatewayConfig", "gateway")],
    ),
    (
        include_str!("../src/config/tickets.rs"),
        &[("TicketsConfig", "tickets")],
    ),
    (
        include_str!("../src/config/lanes.rs"),
        &[("LanesConfig", "lanes")],
    ),
    (
        include_str!("../src/config/admission.rs"),
        &[("AdmissionConfig", "admission")],
    ),
    (
        include_str!("../src/config/shards.rs"),
        &[
            ("ShardsConfig", "shards"),
            ("LaneFillPercents", "shards.lane_fill_max_percent"),
            ("LaneFillPercents", "gateway.send_fill_max_percent"),
            ("LaneBudgets", "shards.lane_budget_per_tick"),
            ("InboxSlots", "shards.inbox_slots_max"),
        ],
    ),
    (
        include_str!("../src/config/observability.rs"),
        &[("ObservabilityConfig", "observability")],
    ),
    (
        include_str!("../src/config/monitor.rs"),
        &[("MonitorConfig", "monitor")],
    ),
];

const SECTIONS: [&str; 8] = [
    "gateway",
    "tickets",
    "lanes",
    "admission",
    "shards",
    "observability",
    "overload",
    "monitor",
];

#[test]
fn default_file_parses_to_the_default_config() {
    assert_eq!(
        Config::from_toml_str(DEFAULT_TOML).unwrap(),
        Config::default()
    );
}

/// A field added to the structs but not to `default.toml` (or the other way
/// round, or with a different value) fails here.
#[test]
fn default_file_names_every_field() {
    let file: toml::Value = toml::from_str(DEFAULT_TOML).unwrap();
    let defaults = toml::Value::try_from(Config::default()).unwrap();
    assert_eq!(file, defaults);
}

#[test]
fn documented_defaults_are_the_defaults() {
    let defaults = defaults();
    let mut wrong = Vec::new();
    for (field, stated) in doc_rows() {
        let actual = lookup(&defaults, &field);
        match (stated, actual) {
            (Some(stated), Some(actual)) if stated == *actual => {}
            (Some(stated), actual) => wrong.push(format!(
                "{field}: the doc says `{stated}`, Config::default() has {}",
                actual.map_or("no such field".to_owned(), ToString::to_string)
            )),
            // "none": an optional field, absent from the default and shown
            // commented out in the default file.
            (None, None) if DEFAULT_TOML.contains(&format!("# {} = ", leaf(&field))) => {}
            (None, actual) => wrong.push(format!(
                "{field}: the doc gives no default, Config::default() has {}",
                actual.map_or("no such field".to_owned(), ToString::to_string)
            )),
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/configuration.md:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_field_is_documented() {
    let documented: Vec<String> = doc_rows().into_keys().collect();
    let missing: Vec<String> = leaves(&defaults())
        .into_iter()
        .filter(|field| {
            !documented
                .iter()
                .any(|d| field == d || field.starts_with(&format!("{d}.")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "fields missing from the tables of docs/configuration.md: {missing:?}"
    );
}

#[test]
fn field_docs_state_the_defaults() {
    let defaults = defaults();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (field, stated) in field_doc_defaults() {
        let Some(actual) = lookup(&defaults, &field) else {
            wrong.push(format!("{field}: not in Config::default()"));
            continue;
        };
        checked += 1;
        if stated != *actual {
            wrong.push(format!(
                "{field}: the doc comment says {stated}, Config::default() has {actual}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "common/src/config/:\n{}",
        wrong.join("\n")
    );
    // Most fields state a default in a form this test reads; if it read
    // none, it would check nothing.
    assert!(checked >= 50, "only {checked} field docs state a default");
}

/// `Config::default()` as the file would write it.
fn defaults() -> toml::Value {
    toml::Value::try_from(Config::default()).expect("the default config serializes")
}

/// The value at dotted `path`, if there is one.
fn lookup<'a>(root: &'a toml::Value, path: &str) -> Option<&'a toml::Value> {
    path.split('.').try_fold(root, |v, key| v.get(key))
}

fn leaf(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

/// The dotted path of every value that is not a table.
fn leaves(root: &toml::Value) -> Vec<String> {
    fn walk(prefix: &str, value: &toml::Value, out: &mut Vec<String>) {
        match value {
            toml::Value::Table(table) => {
                for (key, value) in table {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&path, value, out);
                }
            }
            _ => out.push(prefix.to_owned()),
        }
    }
    let mut out = Vec::new();
    walk("", root, &mut out);
    out
}

/// Parses a TOML value as written after `=`.
fn toml_value(text: &str) -> Option<toml::Value> {
    let table: toml::Table = toml::from_str(&format!("v = {text}")).ok()?;
    table.get("v").cloned()
}

/// The rows `` | `section.field` | `default` | ... | `` of the doc's tables:
/// each field's stated default, `None` for "none".
fn doc_rows() -> BTreeMap<String, Option<toml::Value>> {
    let mut rows = BTreeMap::new();
    for line in CONFIGURATION_MD.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let [_, field, default, ..] = cells[..] else {
            continue;
        };
        let Some(field) = backticked(field) else {
            continue;
        };
        let is_field = field.split_once('.').is_some_and(|(section, rest)| {
            SECTIONS.contains(&section)
                && rest
                    .split('.')
                    .all(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        });
        if !is_field {
            continue;
        }
        let stated = match backticked(default) {
            Some(text) => Some(
                toml_value(text).unwrap_or_else(|| panic!("{field}: `{text}` is not a TOML value")),
            ),
            None => {
                assert_eq!(
                    default, "none",
                    "{field}: write a default in backticks, or none"
                );
                None
            }
        };
        assert!(
            rows.insert(field.to_owned(), stated).is_none(),
            "{field} is listed twice"
        );
    }
    rows
}

fn backticked(cell: &str) -> Option<&str> {
    cell.strip_prefix('`')?
        .strip_suffix('`')
        .filter(|s| !s.is_empty() && !s.contains('`'))
}

/// Every `Default X` the field doc comments of the section structs state,
/// where X is a number (with an optional `KiB` or `MiB`), `true`/`false`, or
/// a value in backticks, with the field's dotted path. Other forms ("Default
/// empty", "Default none") are prose, not checked.
fn field_doc_defaults() -> Vec<(String, toml::Value)> {
    let mut out = Vec::new();
    for (source, structs) in SOURCES {
        let mut prefix = None;
        let mut doc = String::new();
        for line in source.lines() {
            let line = line.trim();
            if let Some(name) = line
                .strip_prefix("pub struct ")
                .and_then(|rest| rest.strip_suffix(" {"))
            {
                prefix = structs.iter().find(|(s, _)| *s == name).map(|(_, p)| *p);
                doc.clear();
            } else if line == "}" {
                prefix = None;
            } else if let Some(text) = line.strip_prefix("///") {
                doc.push(' ');
                doc.push_str(text.trim());
            } else if line.starts_with("#[") {
                // Attributes sit between a field's doc and the field.
            } else {
                if let (Some(prefix), Some(field)) = (prefix, field_name(line))
                    && let Some(value) = stated_default(&doc)
                {
                    out.push((format!("{prefix}.{field}"), value));
                }
                doc.clear();
            }
        }
    }
    out
}

fn field_name(line: &str) -> Option<&str> {
    let (name, _) = line.strip_prefix("pub ")?.split_once(':')?;
    name.chars()
        .all(|c| c.is_ascii_lowercase() || c == '_')
        .then_some(name)
}

fn stated_default(doc: &str) -> Option<toml::Value> {
    let (_, after) = doc.split_once("Default ")?;
    if let Some(quoted) = after.strip_prefix('`') {
        let (text, _) = quoted.split_once('`')?;
        // A bare word (`bulk`) is the string it names.
        return Some(toml_value(text).unwrap_or_else(|| toml::Value::String(text.to_owned())));
    }
    for word in ["true", "false"] {
        if after.starts_with(word) {
            return Some(toml::Value::Boolean(word == "true"));
        }
    }
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    let rest = &after[digits.len()..];
    // Not a rate (`240/s`) nor a fraction (`1.5`).
    let decimal = rest.starts_with('.') && rest[1..].starts_with(|c: char| c.is_ascii_digit());
    if digits.is_empty() || rest.starts_with('/') || decimal {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    let n = if rest.starts_with(" MiB") {
        n << 20
    } else if rest.starts_with(" KiB") {
        n << 10
    } else {
        n
    };
    Some(toml::Value::Integer(n))
}
