//! `lanegate doctor` on the real host: every check reports, with a verdict,
//! and the summary line closes the report.

use std::process::Command;

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
    let out = Command::new(env!("CARGO_BIN_EXE_lanegate"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .expect("lanegate runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("host checks:"), "{stderr}");
}
