//! `tag-server` is the whole `lanegate` command line with Tag behind
//! `serve`: its `[game]` table is checked like every other section, the
//! other subcommands come for free, and it serves until SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn tag_server(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tag-server"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("tag-server runs")
}

fn file(name: &str, text: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("tag-{name}"));
    std::fs::write(&path, text).expect("the target tmp dir is writable");
    path
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn config_check_reads_the_game_table() {
    let good = file(
        "good.toml",
        "[shards]\nzones = \"0-5\"\n[game]\narena_m = 80\n",
    );
    let out = tag_server(&["config", "check", good.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let typo = file("typo.toml", "[game]\narena = 80\n");
    let out = tag_server(&["config", "check", typo.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("game.arena: unknown field"),
        "{}",
        stderr(&out)
    );

    let range = file("range.toml", "[game]\nportal_m = 30\n");
    let out = tag_server(&["config", "check", range.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("game.portal_m: must be above 0 and at most arena_m / 4"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_other_subcommands_come_for_free() {
    let out = tag_server(&["ticket", "--player", "1", "--zone", "2", "--ttl", "1h"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!out.stdout.is_empty());
    let out = tag_server(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for command in ["serve", "ticket", "probe", "bots", "config", "doctor"] {
        assert!(help.contains(command), "{help}");
    }
}

#[test]
fn serves_tag_until_sigterm() {
    let config = file(
        "serve.toml",
        "[gateway]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"off\"\n\
         [observability]\nmetrics_listen = \"off\"\n",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_tag-server"))
        .args(["serve", "--config", config.to_str().expect("utf-8")])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tag-server runs");
    let stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut served = false;
    for line in stdout.lines() {
        if line.expect("stdout reads").starts_with("fingerprint ") {
            served = true;
            let pid = child.id().to_string();
            let status = Command::new("kill").args(["-TERM", &pid]).status();
            assert!(status.expect("kill runs").success());
        }
    }
    let status = child.wait().expect("waits");
    assert!(served, "it printed its fingerprint");
    assert_eq!(status.code(), Some(0), "drained and exited");
}
