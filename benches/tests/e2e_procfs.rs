//! The `/proc` parsers of the end-to-end harness, on fixed strings.

use lanegate_benches::e2e::procfs::{CpuTicks, parse_stat, parse_vm_rss_bytes};

#[test]
fn stat_gives_utime_and_stime() {
    // A real line of /proc/PID/stat (fields 14 and 15 are 1234 and 567).
    let line = "4242 (lanegate) S 1 4242 4242 0 -1 4194560 1500 0 0 0 1234 567 0 0 20 0 \
                3 0 123456 123456789 2048 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 \
                17 0 0 0 0 0 0";
    assert_eq!(
        parse_stat(line),
        Some(CpuTicks {
            utime: 1234,
            stime: 567
        })
    );
    assert_eq!(parse_stat(line).map(|t| t.total()), Some(1801));
}

#[test]
fn stat_survives_spaces_and_parentheses_in_the_name() {
    let line = "7 (a) b (c) R 1 7 7 0 -1 0 0 0 0 0 11 22 0 0 20 0 1 0 5 6 7";
    assert_eq!(
        parse_stat(line),
        Some(CpuTicks {
            utime: 11,
            stime: 22
        })
    );
}

#[test]
fn a_short_or_garbled_stat_is_none() {
    assert_eq!(parse_stat(""), None);
    assert_eq!(parse_stat("1 (x) S 1 2 3"), None);
    assert_eq!(parse_stat("1 (x) S 1 2 3 4 5 6 7 8 9 ten 11"), None);
}

#[test]
fn vm_rss_is_read_in_bytes() {
    let status = "Name:\tbaseline-quinn\nUmask:\t0022\nState:\tS (sleeping)\n\
                  VmPeak:\t  123456 kB\nVmHWM:\t   20000 kB\nVmRSS:\t   18432 kB\n\
                  RssAnon:\t    9000 kB\nThreads:\t2\n";
    assert_eq!(parse_vm_rss_bytes(status), Some(18432 * 1024));
}

#[test]
fn vm_rss_missing_or_in_odd_units_is_none() {
    assert_eq!(parse_vm_rss_bytes("Name:\tkthreadd\nThreads:\t1\n"), None);
    assert_eq!(parse_vm_rss_bytes("VmRSS:\t 12 MB\n"), None);
    assert_eq!(parse_vm_rss_bytes("VmRSS:\t lots kB\n"), None);
}

#[test]
fn this_process_can_be_read() {
    let me = lanegate_benches::e2e::procfs::rss_bytes("self").expect("/proc/self/status");
    assert!(me > 1024 * 1024, "{me}");
    assert!(lanegate_benches::e2e::procfs::cpu_ticks("self").is_some());
    assert!(lanegate_benches::e2e::procfs::clock_ticks_per_s() > 0);
}
