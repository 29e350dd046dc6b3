//! `lanegate serve` (and plain `lanegate`): loads, validates, prints the
//! plan, serves (`listening ADDR`, `fingerprint HEX`) until SIGTERM, then
//! drains and exits 0. Every test listens on an ephemeral loopback port,
//! for QUIC and for the metrics endpoint (`--metrics-listen 127.0.0.1:0`:
//! tests run in parallel, so none may take the default port 9464).

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Runs `lanegate ARGS` to completion (for commands that exit by themselves).
fn lanegate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lanegate"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the lanegate binary runs")
}

/// Runs `lanegate ARGS` as a server (metrics on a free port): waits for its
/// `fingerprint` line (it serves from then on), sends SIGTERM and collects
/// everything. A process that neither serves nor exits within a minute is
/// killed.
fn serve(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lanegate"))
        .args(args)
        .args(["--metrics-listen", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the lanegate binary runs");
    let pid = child.id().to_string();
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (done, pid) = (done.clone(), pid.clone());
        std::thread::spawn(move || {
            for _ in 0..600 {
                if done.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        })
    };
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut text = String::new();
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).expect("stdout reads") == 0 {
            break;
        }
        text.push_str(&line);
        if line.starts_with("fingerprint ") {
            let status = Command::new("kill").args(["-TERM", &pid]).status();
            assert!(status.expect("kill runs").success());
            break;
        }
    }
    stdout.read_to_string(&mut text).expect("stdout reads");
    let mut stderr = Vec::new();
    child
        .stderr
        .take()
        .expect("piped")
        .read_to_end(&mut stderr)
        .expect("stderr reads");
    let status = child.wait().expect("waits");
    done.store(true, Ordering::Relaxed);
    let _ = watchdog.join();
    assert!(status.signal().is_none(), "killed by {:?}", status.signal());
    Output {
        status,
        stdout: text.into_bytes(),
        stderr,
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("utf-8 stderr")
}

/// The plan: stdout before the `listening` line.
fn plan(out: &Output) -> String {
    let text = stdout(out);
    text.split("listening ")
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn file(name: &str, text: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli_serve-{name}"));
    std::fs::write(&path, text).expect("the target tmp dir is writable");
    path
}

#[test]
fn serve_with_defaults_prints_the_plan_then_serves_until_sigterm() {
    let out = serve(&["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan = plan(&out);
    for want in [
        "127.0.0.1:0 (UDP, QUIC)",
        "gateway cores",
        "shard cores",
        "io backend",
        "demo at 30 Hz",
        "critical  0x1000-0x1fff",
        "240/s burst 60",
        "bulk      0x4000-0x4fff, unmapped",
        "ids 0 (DEV KEY",
        "metrics          http://127.0.0.1:<free port>/metrics (see the `metrics` line)",
    ] {
        assert!(plan.contains(want), "missing {want:?} in:\n{plan}");
    }
    let text = stdout(&out);
    let listening = text
        .lines()
        .find_map(|l| l.strip_prefix("listening "))
        .expect("a listening line");
    let addr: std::net::SocketAddr = listening.parse().expect("an address");
    assert_ne!(addr.port(), 0, "the real bound port");
    let fingerprint = text
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint "))
        .expect("a fingerprint line");
    assert_eq!(fingerprint.len(), 95, "{fingerprint}");
    // `docs/protocol.md` §1: lowercase hex pairs separated by colons.
    for (i, pair) in fingerprint.split(':').enumerate() {
        assert!(
            pair.len() == 2 && pair.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            "pair {i} of {fingerprint}"
        );
    }
    let metrics = text
        .lines()
        .find_map(|l| l.strip_prefix("metrics "))
        .expect("a metrics line");
    let metrics: std::net::SocketAddr = metrics.parse().expect("an address");
    assert_ne!(metrics.port(), 0, "the real bound port");
    let logs = stderr(&out);
    assert!(logs.contains("DEV key"), "warns loudly: {logs}");
    assert!(logs.contains(&format!("listening on {addr}")), "{logs}");
    assert!(logs.contains("drained; exiting"), "{logs}");
}

fn fingerprint(out: &Output) -> String {
    stdout(out)
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint "))
        .expect("a fingerprint line")
        .to_owned()
}

#[test]
fn the_self_signed_certificate_survives_a_restart_in_the_state_dir() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli_serve-state");
    let _ = std::fs::remove_dir_all(&dir);
    let config = file(
        "state.toml",
        &format!(
            "[gateway]\nlisten = \"127.0.0.1:0\"\nstate_dir = {:?}\n",
            dir.display().to_string()
        ),
    );
    let config = config.to_str().expect("utf-8 path");
    let first = serve(&["serve", "--config", config]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let again = serve(&["serve", "--config", config]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(
        fingerprint(&first),
        fingerprint(&again),
        "a pinned client keeps working"
    );
    assert!(dir.join("self-signed.pem").is_file());

    let off = file(
        "state-off.toml",
        "[gateway]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"off\"\n",
    );
    let off = off.to_str().expect("utf-8 path");
    let one = serve(&["serve", "--config", off]);
    let two = serve(&["serve", "--config", off]);
    assert_ne!(fingerprint(&one), fingerprint(&two), "off keeps nothing");
}

#[test]
fn plain_lanegate_is_serve() {
    let plain = serve(&["--listen", "127.0.0.1:0"]);
    let serve = serve(&["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(plain.status.code(), Some(0));
    assert_eq!(plan(&plain), plan(&serve));
    assert!(stdout(&plain).contains("\nlistening 127.0.0.1:"));
}

#[test]
fn listen_flag_overrides_the_file() {
    let config = file("listen.toml", "[gateway]\nlisten = \"127.0.0.2:0\"\n");
    let config = config.to_str().expect("utf-8 tmp path");
    let out = serve(&["serve", "--config", config]);
    assert!(plan(&out).contains("127.0.0.2:0 (UDP"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("listening 127.0.0.2:"),
        "{}",
        stdout(&out)
    );
    let out = serve(&["--config", config, "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(plan(&out).contains("127.0.0.1:0 (UDP"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("listening 127.0.0.1:"),
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
    let out = serve(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--config",
        config.to_str().expect("utf-8 tmp path"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("ids 1, 2;"), "{}", stdout(&out));
    assert!(!stdout(&out).contains("DEV"));
    assert!(!stderr(&out).contains("DEV"), "{}", stderr(&out));
}

#[test]
fn a_taken_metrics_port_fails_start_naming_the_field() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = taken.local_addr().expect("bound").to_string();
    let out = lanegate(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        &addr,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "observability.metrics_listen: cannot listen on {addr}"
        )),
        "{err}"
    );
    assert!(err.contains("metrics_listen = \"off\""), "{err}");
    assert!(!stdout(&out).contains("listening "), "{}", stdout(&out));
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
    let out = serve(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
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
