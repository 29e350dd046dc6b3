//! `lanegate config print-default` and `lanegate config check`, run as a
//! real process.

use std::path::PathBuf;
use std::process::{Command, Output};

use lanegate_common::config::DEFAULT_TOML;

fn lanegate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lanegate"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the lanegate binary runs")
}

/// Writes `text` to a file of this test's own and returns its path.
fn file(name: &str, text: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli_config-{name}"));
    std::fs::write(&path, text).expect("the target tmp dir is writable");
    path
}

fn check(path: &std::path::Path) -> (Option<i32>, String, String) {
    let out = lanegate(&["config", "check", path.to_str().expect("utf-8 tmp path")]);
    let text = |b: Vec<u8>| String::from_utf8(b).expect("utf-8 output");
    (out.status.code(), text(out.stdout), text(out.stderr))
}

#[test]
fn print_default_prints_the_embedded_file_exactly() {
    let out = lanegate(&["config", "print-default"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), DEFAULT_TOML);
}

#[test]
fn printed_default_passes_check() {
    let out = lanegate(&["config", "print-default"]);
    let path = file("default.toml", &String::from_utf8(out.stdout).unwrap());
    let (code, stdout, stderr) = check(&path);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "ok\n");
}

#[test]
fn missing_core_fails_naming_the_field() {
    let path = file("cores.toml", "[gateway]\ncores = [4096]\n");
    let (code, stdout, stderr) = check(&path);
    assert_eq!(code, Some(2));
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("gateway.cores: core 4096 does not exist on this host"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cli_config-cores.toml"),
        "names the file: {stderr}"
    );
}

#[test]
fn overlapping_lane_table_fails_naming_the_field() {
    let path = file(
        "lanes.toml",
        r#"
[lanes]
table = [
    { types = "0x0100-0x02ff", lane = "high" },
    { types = "0x0100-0x01ff", lane = "bulk" },
]
"#,
    );
    let (code, _, stderr) = check(&path);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains(
            "lanes.table: types 0x0100-0x01ff are mapped to two lanes (high and bulk); make the ranges disjoint"
        ),
        "{stderr}"
    );
}

#[test]
fn unknown_field_fails_with_its_name_and_line() {
    let path = file("typo.toml", "[gateway]\nlisten_address = \"0.0.0.0:1\"\n");
    let (code, _, stderr) = check(&path);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("gateway.listen_address: unknown field `listen_address`"),
        "{stderr}"
    );
    assert!(stderr.contains("(line 2, column 1)"), "{stderr}");
}

#[test]
fn the_built_in_games_refuse_a_game_table_with_fields() {
    let path = file("game.toml", "[game]\narena_m = 80\n");
    let (code, _, stderr) = check(&path);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("game.arena_m: unknown field"), "{stderr}");
    assert!(stderr.contains("(line 2, column 1)"), "{stderr}");
    let empty = file("game-empty.toml", "[game]\n");
    assert_eq!(check(&empty).0, Some(0));
}

#[test]
fn unreadable_file_exits_1() {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli_config-does-not-exist.toml");
    let (code, _, stderr) = check(&path);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("cannot read"), "{stderr}");
}

#[test]
fn check_reads_the_ticket_key_files() {
    let missing = file(
        "key-missing.toml",
        "[[tickets.keys]]\nid = 1\nsecret_file = \"/nonexistent/lanegate-ticket.key\"\n",
    );
    let (code, _, stderr) = check(&missing);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("/nonexistent/lanegate-ticket.key"),
        "{stderr}"
    );

    let short = file("short.key", "too short\n");
    let config = file(
        "key-short.toml",
        &format!(
            "[[tickets.keys]]\nid = 1\nsecret_file = {:?}\n",
            short.display().to_string()
        ),
    );
    let (code, _, stderr) = check(&config);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("tickets.keys[0].secret_file"), "{stderr}");
    assert!(stderr.contains("at least 32"), "{stderr}");
}
