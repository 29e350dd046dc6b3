//! `lanegate serve` (and plain `lanegate`): loads, validates, prints the
//! plan and exits 0, until the datapath lands.

use std::path::PathBuf;
use std::process::{Command, Output};

fn lanegate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lanegate"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the lanegate binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("utf-8 stderr")
}

fn file(name: &str, text: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli_serve-{name}"));
    std::fs::write(&path, text).expect("the target tmp dir is writable");
    path
}

#[test]
fn serve_with_defaults_prints_the_plan() {
    let out = lanegate(&["serve"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan = stdout(&out);
    for want in [
        "0.0.0.0:4433",
        "gateway cores",
        "shard cores",
        "io backend",
        "demo at 30 Hz",
        "critical  0x1000-0x1fff",
        "240/s burst 60",
        "bulk      0x4000-0x4fff, unmapped",
        "ids 0 (DEV KEY",
    ] {
        assert!(plan.contains(want), "missing {want:?} in:\n{plan}");
    }
    assert!(
        stderr(&out).contains("DEV key"),
        "warns loudly: {}",
        stderr(&out)
    );
}

#[test]
fn plain_lanegate_is_serve() {
    let plain = lanegate(&[]);
    let serve = lanegate(&["serve"]);
    assert_eq!(plain.status.code(), Some(0));
    assert_eq!(stdout(&plain), stdout(&serve));
}

#[test]
fn listen_flag_overrides_the_file() {
    let config = file("listen.toml", "[gateway]\nlisten = \"127.0.0.1:5000\"\n");
    let config = config.to_str().expect("utf-8 tmp path");
    let out = lanegate(&["serve", "--config", config]);
    assert!(stdout(&out).contains("127.0.0.1:5000"), "{}", stdout(&out));
    let out = lanegate(&["--config", config, "--listen", "127.0.0.1:6000"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("127.0.0.1:6000 (UDP"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn configured_keys_replace_the_dev_key() {
    let secret = file("ticket.key", "0123456789abcdef0123456789abcdef\n");
    let secret = secret.display().to_string();
    let config = file(
        "keys.toml",
        &format!(
            "[[tickets.keys]]\nid = 1\nsecret_file = {secret:?}\n\n\
             [[tickets.keys]]\nid = 2\nsecret_file = {secret:?}\n"
        ),
    );
    let out = lanegate(&[
        "serve",
        "--config",
        config.to_str().expect("utf-8 tmp path"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("ids 1, 2;"), "{}", stdout(&out));
    assert!(!stdout(&out).contains("DEV"));
    assert!(!stderr(&out).contains("DEV"), "{}", stderr(&out));
}

#[test]
fn invalid_config_exits_2() {
    let config = file("bad.toml", "[shards]\ntick_budget_us = 40000\n");
    let out = lanegate(&[
        "serve",
        "--config",
        config.to_str().expect("utf-8 tmp path"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("shards.tick_budget_us: 40000 exceeds the tick period"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn json_logs_are_json() {
    let config = file("json.toml", "[observability]\nlog_format = \"json\"\n");
    let out = lanegate(&[
        "serve",
        "--config",
        config.to_str().expect("utf-8 tmp path"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let logs = stderr(&out);
    assert!(!logs.is_empty());
    for line in logs.lines() {
        assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
    }
}

#[test]
fn usage_errors_exit_64() {
    let out = lanegate(&["--no-such-flag"]);
    assert_eq!(out.status.code(), Some(64));
    let out = lanegate(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("ticket"));
}
