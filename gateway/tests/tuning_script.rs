//! Runs `tuning/tests/test-tune.sh`, which drives `tuning/lanegate-tune`
//! against a scratch sysctl root: check, apply, revert and `--dry-run`, and
//! proves that revert restores exactly what apply changed.

use std::process::Command;

#[test]
fn lanegate_tune_check_apply_revert() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tuning/tests/test-tune.sh");
    let out = Command::new("bash")
        .arg(script)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "test-tune.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("all checks passed"));
}
