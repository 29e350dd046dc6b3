//! A process that runs swarm after swarm of quinn client endpoints must not
//! accumulate resident memory (`sys::malloc`). Its own test binary: the
//! allocator setting is process-wide.

use lanegate_udp::malloc::map_large_allocations;

/// A quinn client endpoint's zeroed receive buffer: 1472 × 64 × 32 bytes.
const ENDPOINT_BUFFER_BYTES: usize = 1472 * 64 * 32;
const ENDPOINTS: usize = 100;
const PAGE_BYTES: usize = 4096;

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm's second field");
    pages * PAGE_BYTES
}

/// One swarm: every endpoint's buffer is allocated zeroed, receives one
/// datagram, and is freed when the swarm ends. Returns the RSS growth while
/// all of them were live.
fn swarm() -> usize {
    let before = rss_bytes();
    let mut buffers: Vec<Vec<u8>> = Vec::with_capacity(ENDPOINTS);
    for _ in 0..ENDPOINTS {
        let mut buffer = vec![0u8; ENDPOINT_BUFFER_BYTES];
        buffer[..1200].fill(0xAB);
        buffers.push(buffer);
    }
    let grown = rss_bytes().saturating_sub(before);
    assert!(buffers.iter().all(|b| b[0] == 0xAB && b[1200] == 0));
    grown
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn swarm_after_swarm_keeps_untouched_receive_buffers_out_of_rss() {
    assert!(map_large_allocations(1 << 20));
    // Without the setting the third swarm makes every buffer resident
    // (300 MiB here): glibc raised its threshold after the first swarm
    // freed its mappings, and `calloc` clears recycled heap memory.
    for round in 0..4 {
        let grown = swarm();
        assert!(
            grown < ENDPOINTS * ENDPOINT_BUFFER_BYTES / 10,
            "swarm {round}: RSS grew {grown} bytes for {ENDPOINTS} mostly untouched buffers"
        );
    }
}
