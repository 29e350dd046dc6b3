//! `lanegate doctor`: inspects the host the gateway will run on and says what
//! would hurt, each finding with its fix.
//!
//! Facts are gathered once from procfs and sysfs (roots configurable, so
//! tests run on a fabricated host) plus one io_uring probe; the verdicts are
//! a pure function of the facts and the configuration. `lanegate serve` runs
//! the same checks at start and logs a one-line summary.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use lanegate_common::config::{Config, CorePlan, IoBackend};

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Fine.
    Ok,
    /// Works, but costs latency or capacity.
    Warn,
    /// The gateway will not run as configured, or will run badly.
    Fail,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` so that `{:<5}` aligns the report's columns.
        f.pad(match self {
            Level::Ok => "OK",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        })
    }
}

/// One checked item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Short name of the check.
    pub check: &'static str,
    /// Verdict.
    pub level: Level,
    /// What was found.
    pub detail: String,
    /// What to do about it (empty when OK).
    pub fix: String,
}

impl Finding {
    fn new(check: &'static str, level: Level, detail: String, fix: impl Into<String>) -> Self {
        Self {
            check,
            level,
            detail,
            fix: fix.into(),
        }
    }
}

/// The outcome of the io_uring probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UringProbe {
    /// A ring could be created.
    Available,
    /// `io_uring_setup` failed with this OS error.
    Refused(i32),
}

/// Everything the checks look at, gathered before any verdict.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// `io_uring_setup` result; `None` if not probed.
    pub uring: Option<UringProbe>,
    /// `kernel.io_uring_disabled` (absent before Linux 6.6).
    pub io_uring_disabled: Option<u32>,
    /// `net.core.rmem_max`.
    pub rmem_max: Option<u64>,
    /// `net.core.wmem_max`.
    pub wmem_max: Option<u64>,
    /// Online CPUs.
    pub cpus: usize,
    /// Device (non-timer, non-IPI) interrupts handled per CPU.
    pub device_irqs_per_cpu: Vec<u64>,
    /// Scaling governor per CPU, where cpufreq exists.
    pub governors: Vec<(usize, String)>,
    /// Soft limit on open files.
    pub nofile_soft: Option<u64>,
    /// Kernel release, e.g. `6.1.0-18-amd64`.
    pub kernel: Option<String>,
    /// Current clock source.
    pub clocksource: Option<String>,
    /// Whether a time-sync daemon runs (chronyd, ntpd, systemd-timesyncd, ...).
    pub time_sync: Option<String>,
}

/// Where to read the host from.
#[derive(Clone, Debug)]
pub struct Roots {
    /// procfs (normally `/proc`).
    pub proc: PathBuf,
    /// sysfs (normally `/sys`).
    pub sys: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Self {
            proc: PathBuf::from("/proc"),
            sys: PathBuf::from("/sys"),
        }
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

fn read_num(path: &Path) -> Option<u64> {
    read_trimmed(path)?.parse().ok()
}

impl Facts {
    /// Reads the host. Never fails: a fact that cannot be read is `None`,
    /// and its check says so.
    pub fn gather(roots: &Roots, probe_uring: bool) -> Facts {
        let p = |rel: &str| roots.proc.join(rel);
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let governors = (0..cpus)
            .filter_map(|c| {
                let path = roots.sys.join(format!(
                    "devices/system/cpu/cpu{c}/cpufreq/scaling_governor"
                ));
                read_trimmed(&path).map(|g| (c, g))
            })
            .collect();
        Facts {
            uring: probe_uring.then(probe_io_uring),
            io_uring_disabled: read_num(&p("sys/kernel/io_uring_disabled"))
                .and_then(|v| u32::try_from(v).ok()),
            rmem_max: read_num(&p("sys/net/core/rmem_max")),
            wmem_max: read_num(&p("sys/net/core/wmem_max")),
            cpus,
            device_irqs_per_cpu: fs::read_to_string(p("interrupts"))
                .map(|t| device_irqs(&t))
                .unwrap_or_default(),
            governors,
            nofile_soft: fs::read_to_string(p("self/limits"))
                .ok()
                .and_then(|t| nofile_soft(&t)),
            kernel: read_trimmed(&p("sys/kernel/osrelease")),
            clocksource: read_trimmed(
                &roots
                    .sys
                    .join("devices/system/clocksource/clocksource0/current_clocksource"),
            ),
            time_sync: time_sync_daemon(&roots.proc),
        }
    }
}

fn probe_io_uring() -> UringProbe {
    match lanegate_udp::probe_io_uring() {
        Ok(()) => UringProbe::Available,
        Err(e) => UringProbe::Refused(e.raw_os_error().unwrap_or(0)),
    }
}

/// Sums, per CPU, the interrupt lines of `/proc/interrupts` that belong to
/// devices (numbered lines), leaving out timers and inter-processor ones.
fn device_irqs(text: &str) -> Vec<u64> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let ncpu = header.split_whitespace().count();
    let mut sums = vec![0u64; ncpu];
    for line in lines {
        let mut fields = line.split_whitespace();
        let Some(label) = fields.next() else { continue };
        let numbered = label
            .trim_end_matches(':')
            .chars()
            .all(|c| c.is_ascii_digit());
        if !numbered || line.contains("timer") {
            continue;
        }
        for (cpu, field) in fields.take(ncpu).enumerate() {
            sums[cpu] += field.parse::<u64>().unwrap_or(0);
        }
    }
    sums
}

fn nofile_soft(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.split_whitespace().nth(3)?;
    if soft == "unlimited" {
        Some(u64::MAX)
    } else {
        soft.parse().ok()
    }
}

fn time_sync_daemon(proc_root: &Path) -> Option<String> {
    const DAEMONS: [&str; 5] = ["chronyd", "ntpd", "systemd-timesyn", "openntpd", "ptp4l"];
    let entries = fs::read_dir(proc_root).ok()?;
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| read_trimmed(&e.path().join("comm")))
        .find(|comm| DAEMONS.contains(&comm.as_str()))
}

fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Open files the gateway needs: a socket and a ring per core, metrics,
/// logs and key files, with room to spare. UDP sessions use no descriptors.
const NOFILE_MIN: u64 = 4096;

/// Every verdict, in a fixed order.
pub fn evaluate(facts: &Facts, config: &Config, plan: &CorePlan) -> Vec<Finding> {
    let mut out = Vec::new();
    out.push(uring_finding(facts, config));
    out.extend(buffer_findings(facts, config));
    out.push(core_finding(facts, plan));
    out.push(governor_finding(facts, plan));
    out.push(match facts.nofile_soft {
        Some(n) if n >= NOFILE_MIN => {
            Finding::new("fd limit", Level::Ok, format!("{n} open files"), "")
        }
        Some(n) => Finding::new(
            "fd limit",
            Level::Warn,
            format!("soft limit {n} open files, below {NOFILE_MIN}"),
            "raise it: `ulimit -n 65536`, or LimitNOFILE=65536 in the systemd unit",
        ),
        None => Finding::new(
            "fd limit",
            Level::Warn,
            "unknown".into(),
            "check `ulimit -n`",
        ),
    });
    out.push(kernel_finding(facts));
    out.push(match facts.clocksource.as_deref() {
        Some(c @ ("tsc" | "kvm-clock" | "arch_sys_counter")) => Finding::new(
            "clock source",
            Level::Ok,
            format!("{c} (cheap clock reads)"),
            "",
        ),
        Some(c) => Finding::new(
            "clock source",
            Level::Warn,
            format!("{c}: every timestamp is a slow hardware read"),
            "use tsc if the CPU's TSC is stable (clocksource=tsc on the kernel command line); check dmesg for 'TSC unstable'",
        ),
        None => Finding::new("clock source", Level::Warn, "unknown".into(), "check /sys/devices/system/clocksource"),
    });
    out.push(match &facts.time_sync {
        Some(d) => Finding::new("time sync", Level::Ok, format!("{d} running"), ""),
        None => Finding::new(
            "time sync",
            Level::Warn,
            "no chronyd, ntpd or systemd-timesyncd running".into(),
            format!(
                "run a time-sync daemon: tickets are checked against this clock with only {} s of skew tolerance",
                config.tickets.clock_skew_s
            ),
        ),
    });
    out
}

fn uring_finding(facts: &Facts, config: &Config) -> Finding {
    let forced = config.gateway.io_backend == IoBackend::IoUring;
    let portable_note =
        "the portable recvmmsg backend will be used, at a higher CPU cost per packet";
    match (&facts.uring, facts.io_uring_disabled) {
        (Some(UringProbe::Available), _) => {
            Finding::new("io_uring", Level::Ok, "available".into(), "")
        }
        (Some(UringProbe::Refused(errno)), disabled) => {
            let why = match (errno, disabled) {
                (_, Some(2)) => "disabled by kernel.io_uring_disabled = 2".to_owned(),
                (1, Some(1)) => {
                    "restricted by kernel.io_uring_disabled = 1 to kernel.io_uring_group".to_owned()
                }
                (1, _) => "refused with EPERM: a seccomp profile (containers) or an LSM blocks it"
                    .to_owned(),
                (38, _) => "the kernel has no io_uring (ENOSYS)".to_owned(),
                (e, _) => format!("io_uring_setup failed with errno {e}"),
            };
            let level = if forced { Level::Fail } else { Level::Warn };
            Finding::new(
                "io_uring",
                level,
                format!("{why}; {portable_note}"),
                "set kernel.io_uring_disabled = 0 (tuning/lanegate-tune apply), or allow io_uring_setup/enter/register in the container's seccomp profile; or set gateway.io_backend = \"portable\"",
            )
        }
        (None, _) => Finding::new("io_uring", Level::Warn, "not probed".into(), ""),
    }
}

fn buffer_findings(facts: &Facts, config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    for (name, have, want, sysctl) in [
        (
            "recv buffer",
            facts.rmem_max,
            config.gateway.socket_recv_buffer_bytes,
            "net.core.rmem_max",
        ),
        (
            "send buffer",
            facts.wmem_max,
            config.gateway.socket_send_buffer_bytes,
            "net.core.wmem_max",
        ),
    ] {
        let want = u64::try_from(want).unwrap_or(u64::MAX);
        out.push(match have {
            Some(h) if h >= want => Finding::new(
                name,
                Level::Ok,
                format!("{sysctl} = {h} covers the configured {want} bytes"),
                "",
            ),
            Some(h) => Finding::new(
                name,
                Level::Warn,
                format!(
                    "{sysctl} = {h} clamps the configured {want} bytes: bursts will be dropped"
                ),
                format!("sudo tuning/lanegate-tune apply (sets {sysctl} = 16777216)"),
            ),
            None => Finding::new(name, Level::Warn, format!("{sysctl} unreadable"), ""),
        });
    }
    out
}

fn core_finding(facts: &Facts, plan: &CorePlan) -> Finding {
    let ours: Vec<usize> = plan.gateway.iter().chain(&plan.shards).copied().collect();
    if let Some(&missing) = ours.iter().find(|&&c| c >= facts.cpus) {
        return Finding::new(
            "cores",
            Level::Fail,
            format!(
                "core {missing} does not exist (cpus 0-{})",
                facts.cpus.saturating_sub(1)
            ),
            "fix gateway.cores / shards.cores, or use \"auto\"",
        );
    }
    let irqs = &facts.device_irqs_per_cpu;
    let total: u64 = irqs.iter().sum();
    if irqs.len() < 2 || total == 0 {
        return Finding::new("cores", Level::Ok, format!("cores {ours:?} exist"), "");
    }
    // A core of ours taking over 1.5 times its fair share of device
    // interrupts (and a real number of them) is where NIC softirqs will
    // steal time from the datapath.
    let fair = total as f64 / irqs.len() as f64;
    let busy: Vec<usize> = ours
        .iter()
        .copied()
        .filter(|&c| {
            irqs.get(c)
                .is_some_and(|&n| n > 1000 && n as f64 > 1.5 * fair)
        })
        .collect();
    if busy.is_empty() {
        Finding::new(
            "cores",
            Level::Ok,
            format!("cores {ours:?} exist and carry no outsized share of device IRQs"),
            "",
        )
    } else {
        Finding::new(
            "cores",
            Level::Warn,
            format!("cores {busy:?} handle over 1.5 times their share of device interrupts"),
            "move NIC IRQs off them: sudo tuning/lanegate-tune irqs <gateway cores>",
        )
    }
}

fn governor_finding(facts: &Facts, plan: &CorePlan) -> Finding {
    if facts.governors.is_empty() {
        return Finding::new(
            "cpu governor",
            Level::Ok,
            "no cpufreq control (a VM or firmware-managed host)".into(),
            "",
        );
    }
    let slow: Vec<String> = facts
        .governors
        .iter()
        .filter(|(c, g)| {
            g != "performance"
                && plan
                    .gateway
                    .iter()
                    .chain(&plan.shards)
                    .any(|&ours| ours == *c)
        })
        .map(|(c, g)| format!("cpu{c}={g}"))
        .collect();
    if slow.is_empty() {
        Finding::new("cpu governor", Level::Ok, "performance".into(), "")
    } else {
        Finding::new(
            "cpu governor",
            Level::Warn,
            format!(
                "{}: frequency ramps add latency after idle",
                slow.join(", ")
            ),
            "sudo tuning/lanegate-tune governor",
        )
    }
}

fn kernel_finding(facts: &Facts) -> Finding {
    let Some(release) = facts.kernel.as_deref() else {
        return Finding::new("kernel", Level::Warn, "unknown release".into(), "");
    };
    match kernel_version(release) {
        Some(v) if v >= (6, 0) => Finding::new(
            "kernel",
            Level::Ok,
            format!("{release}: multishot recvmsg, buffer rings, UDP GSO and GRO"),
            "",
        ),
        Some(v) if v >= (5, 0) => Finding::new(
            "kernel",
            Level::Warn,
            format!("{release}: UDP GSO/GRO, but no multishot recvmsg (6.0+)"),
            "upgrade to Linux 6.1 LTS or later for the io_uring backend",
        ),
        _ => Finding::new(
            "kernel",
            Level::Fail,
            format!("{release}: no UDP GRO (5.0+)"),
            "upgrade to Linux 6.1 LTS or later",
        ),
    }
}

/// The one-line summary `serve` logs: counts and the names of what is off.
pub fn summary(findings: &[Finding]) -> String {
    let off: Vec<String> = findings
        .iter()
        .filter(|f| f.level != Level::Ok)
        .map(|f| format!("{} {}", f.level, f.check))
        .collect();
    let ok = findings.len() - off.len();
    if off.is_empty() {
        format!("host checks: all {ok} OK")
    } else {
        format!(
            "host checks: {ok} OK, {} off ({}); run `lanegate doctor` for fixes",
            off.len(),
            off.join(", ")
        )
    }
}

/// Prints the report; returns the worst level.
pub fn print(findings: &[Finding], out: &mut impl io::Write) -> io::Result<Level> {
    for f in findings {
        writeln!(out, "{:<5} {:<13} {}", f.level, f.check, f.detail)?;
        if !f.fix.is_empty() {
            writeln!(out, "{:<5} {:<13} fix: {}", "", "", f.fix)?;
        }
    }
    Ok(findings.iter().map(|f| f.level).max().unwrap_or(Level::Ok))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lanegate_common::config::HostInfo;

    fn healthy() -> Facts {
        Facts {
            uring: Some(UringProbe::Available),
            io_uring_disabled: Some(0),
            rmem_max: Some(16 << 20),
            wmem_max: Some(16 << 20),
            cpus: 2,
            device_irqs_per_cpu: vec![100, 100],
            governors: vec![],
            nofile_soft: Some(65536),
            kernel: Some("6.1.0-18-amd64".into()),
            clocksource: Some("tsc".into()),
            time_sync: Some("chronyd".into()),
        }
    }

    fn run(facts: &Facts) -> Vec<Finding> {
        let config = Config::default();
        let plan = config.core_plan(&HostInfo { cores: 2 });
        evaluate(facts, &config, &plan)
    }

    fn level_of(findings: &[Finding], check: &str) -> Level {
        findings.iter().find(|f| f.check == check).unwrap().level
    }

    #[test]
    fn a_healthy_host_is_all_ok() {
        let f = run(&healthy());
        assert!(f.iter().all(|f| f.level == Level::Ok), "{f:#?}");
        assert_eq!(summary(&f), format!("host checks: all {} OK", f.len()));
    }

    #[test]
    fn each_problem_is_named_with_a_fix() {
        let mut facts = healthy();
        facts.uring = Some(UringProbe::Refused(1));
        facts.rmem_max = Some(212_992);
        facts.device_irqs_per_cpu = vec![10_000, 10];
        facts.governors = vec![(0, "powersave".into()), (1, "performance".into())];
        facts.nofile_soft = Some(1024);
        facts.kernel = Some("5.10.0".into());
        facts.clocksource = Some("hpet".into());
        facts.time_sync = None;
        let f = run(&facts);
        for check in [
            "io_uring",
            "recv buffer",
            "cores",
            "cpu governor",
            "fd limit",
            "kernel",
            "clock source",
            "time sync",
        ] {
            assert_eq!(level_of(&f, check), Level::Warn, "{check}: {f:#?}");
            let finding = f.iter().find(|x| x.check == check).unwrap();
            assert!(!finding.fix.is_empty(), "{check} has no fix");
        }
        assert!(f[0].detail.contains("seccomp"), "{}", f[0].detail);
        assert_eq!(level_of(&f, "send buffer"), Level::Ok);
        assert!(summary(&f).contains("WARN io_uring"));
    }

    #[test]
    fn io_uring_reasons_and_forced_backend() {
        let mut facts = healthy();
        facts.uring = Some(UringProbe::Refused(1));
        facts.io_uring_disabled = Some(2);
        let f = run(&facts);
        assert!(f[0].detail.contains("io_uring_disabled = 2"));
        let mut config = Config::default();
        config.gateway.io_backend = IoBackend::IoUring;
        let plan = config.core_plan(&HostInfo { cores: 2 });
        assert_eq!(evaluate(&facts, &config, &plan)[0].level, Level::Fail);
    }

    #[test]
    fn missing_cores_fail() {
        let config = Config::default();
        let plan = CorePlan {
            gateway: vec![0],
            shards: vec![5],
        };
        let f = evaluate(&healthy(), &config, &plan);
        assert_eq!(level_of(&f, "cores"), Level::Fail);
    }

    #[test]
    fn parsers_read_real_formats() {
        let interrupts = "           CPU0       CPU1\n  0:         40          0   IO-APIC   2-edge      timer\n 24:       1000         10   PCI-MSI 1-edge  eth0-rx-0\nNMI:          0          0   Non-maskable interrupts\nLOC:     999999     999999   Local timer interrupts\n";
        assert_eq!(device_irqs(interrupts), vec![1000, 10]);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        assert_eq!(nofile_soft(limits), Some(1024));
        assert_eq!(kernel_version("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(kernel_version("5.15.0"), Some((5, 15)));
    }

    #[test]
    fn gather_on_a_fabricated_host() {
        let dir = std::env::temp_dir().join(format!("lanegate-doctor-{}", std::process::id()));
        let proc = dir.join("proc");
        let sys = dir.join("sys");
        fs::create_dir_all(proc.join("sys/net/core")).unwrap();
        fs::create_dir_all(proc.join("sys/kernel")).unwrap();
        fs::create_dir_all(proc.join("self")).unwrap();
        fs::create_dir_all(proc.join("42")).unwrap();
        fs::create_dir_all(sys.join("devices/system/clocksource/clocksource0")).unwrap();
        fs::write(proc.join("sys/net/core/rmem_max"), "212992\n").unwrap();
        fs::write(proc.join("sys/kernel/osrelease"), "6.8.0\n").unwrap();
        fs::write(proc.join("42/comm"), "chronyd\n").unwrap();
        fs::write(
            sys.join("devices/system/clocksource/clocksource0/current_clocksource"),
            "kvm-clock\n",
        )
        .unwrap();
        let facts = Facts::gather(&Roots { proc, sys }, false);
        assert_eq!(facts.rmem_max, Some(212_992));
        assert_eq!(facts.wmem_max, None);
        assert_eq!(facts.kernel.as_deref(), Some("6.8.0"));
        assert_eq!(facts.clocksource.as_deref(), Some("kvm-clock"));
        assert_eq!(facts.time_sync.as_deref(), Some("chronyd"));
        assert_eq!(facts.uring, None);
        fs::remove_dir_all(dir).unwrap();
    }
}
