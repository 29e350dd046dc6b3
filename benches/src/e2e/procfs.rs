//! Parsers for the two `/proc` files the harness reads about a server:
//! `/proc/PID/stat` (CPU time) and `/proc/PID/status` (resident memory).

use std::path::Path;

/// CPU time a process has used, in clock ticks (`utime`, `stime`: fields
/// 14 and 15 of `/proc/PID/stat`, all threads together).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTicks {
    /// User-mode ticks.
    pub utime: u64,
    /// Kernel-mode ticks.
    pub stime: u64,
}

impl CpuTicks {
    /// User plus kernel ticks.
    pub fn total(&self) -> u64 {
        self.utime + self.stime
    }
}

/// Parses the contents of `/proc/PID/stat`. The command name (field 2) is
/// in parentheses and may hold spaces and parentheses itself, so fields are
/// counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<CpuTicks> {
    let after = &text[text.rfind(')')? + 1..];
    // After the name: field 3 (state) is index 0, so utime (field 14) is
    // index 11 and stime (field 15) index 12.
    let mut fields = after.split_ascii_whitespace().skip(11);
    let utime = fields.next()?.parse().ok()?;
    let stime = fields.next()?.parse().ok()?;
    Some(CpuTicks { utime, stime })
}

/// Parses `VmRSS:` (kB) from the contents of `/proc/PID/status`, in bytes.
pub fn parse_vm_rss_bytes(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut parts = line["VmRSS:".len()..].split_ascii_whitespace();
    let kb: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => Some(kb * 1024),
        Some(_) => None,
    }
}

/// Reads the CPU ticks of `pid` (`"self"` works too).
pub fn cpu_ticks(pid: &str) -> Option<CpuTicks> {
    parse_stat(&std::fs::read_to_string(Path::new("/proc").join(pid).join("stat")).ok()?)
}

/// Reads the resident memory of `pid` in bytes.
pub fn rss_bytes(pid: &str) -> Option<u64> {
    parse_vm_rss_bytes(&std::fs::read_to_string(Path::new("/proc").join(pid).join("status")).ok()?)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 if that fails, the value
/// on every Linux the project targets).
pub fn clock_ticks_per_s() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}
