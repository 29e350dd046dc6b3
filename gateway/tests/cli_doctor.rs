//! `lanegate doctor` on the real host: every check reports, with a verdict,
//! and the summary line closes the report.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn doctor_reports_every_check() {
    let out = Command::new(env!("CARGO_BIN_EXE_lanegate"))
        .arg("doctor")
        .output()
        .expect("lanegate runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for check in [
        "io_uring",
        "recv buffer",
        "send buffer",
        "cores",
        "cpu governor",
        "fd limit",
        "kernel",
        "clock source",
        "time sync",
    ] {
        assert!(
            stdout.lines().any(|l| l.contains(check)
                && (l.starts_with("OK") || l.starts_with("WARN") || l.starts_with("FAIL"))),
            "no verdict for {check}:\n{stdout}"
        );
    }
    assert!(stdout.contains("host checks:"), "{stdout}");
    // Exit 0 unless something failed outright.
    assert_eq!(out.status.success(), !stdout.contains("\nFAIL"), "{stdout}");
}

#[test]
fn serve_logs_the_host_check_summary() {
    // `serve` runs until signalled: stop it once it serves (its
    // `fingerprint` line), then read what it logged.
    let mut child = Command::new(env!("CARGO_BIN_EXE_lanegate"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "off",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lanegate runs");
    let stdout = BufReader::new(child.stdout.take().expect("piped"));
    for line in stdout.lines() {
        if line.expect("stdout reads").starts_with("fingerprint ") {
            break;
        }
    }
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(killed.expect("kill runs").success());
    let out = child.wait_with_output().expect("lanegate exits");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("host checks:"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
