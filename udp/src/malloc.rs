//! The C allocator's mmap threshold, for processes that host a bot swarm.
//!
//! A quinn client endpoint allocates its receive buffer zeroed: 1472 bytes ×
//! 64 GRO segments × 32 datagrams per batch, about 3 MiB per endpoint, and a
//! bot has one endpoint (its own socket, so the server sees one 4-tuple per
//! bot). The first time, glibc serves that from fresh `mmap` pages, which
//! stay untouched and cost no RSS. But glibc raises its mmap threshold to the
//! size of every mapped block freed, so once a swarm's bots have closed, the
//! next swarm's buffers come from the heap, and `calloc` must clear recycled
//! heap memory: every page becomes resident. A generator that ran a few
//! 1000-bot swarms in one process held 3 GB, and 10 000 bots were killed by
//! the OOM killer at 24 GB.
//!
//! Fixing the threshold (which also turns off glibc's dynamic adjustment)
//! keeps large buffers on their own mappings: untouched pages stay free and
//! a freed buffer goes back to the kernel at once.

/// The threshold for processes that host bots: far below an endpoint's
/// receive buffer, far above anything allocated per message.
pub const BOT_HOST_MMAP_THRESHOLD_BYTES: usize = 1 << 20;

/// Serves every allocation of at least `threshold_bytes` from its own
/// mapping, for the rest of the process. Returns whether the allocator took
/// the setting (only glibc has it; elsewhere this does nothing).
pub fn map_large_allocations(threshold_bytes: usize) -> bool {
    imp::map_large_allocations(threshold_bytes)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    pub fn map_large_allocations(threshold_bytes: usize) -> bool {
        let Ok(value) = libc::c_int::try_from(threshold_bytes) else {
            return false;
        };
        // SAFETY: `mallopt` only changes the allocator's tunables; any value
        // is accepted or refused (return 0), and it touches no memory of ours.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, value) == 1 }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub fn map_large_allocations(_threshold_bytes: usize) -> bool {
        false
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    #[test]
    fn glibc_takes_a_threshold_and_refuses_one_out_of_range() {
        // Within glibc's limit (32 MiB on 64-bit) it is taken; beyond an int
        // it cannot even be passed.
        assert!(map_large_allocations(1 << 20));
        assert!(!map_large_allocations(usize::MAX));
    }
}
