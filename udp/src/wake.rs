//! The eventfd a gateway core's event loop waits on besides its socket, so
//! shards and other cores can wake it (`lanegate_common::wake`).
//!
//! Producers write to it ([`FdWaker`], the core's doorbell waker); the IO
//! backend watches it while it waits for datagrams ([`UdpIo::watch`]): the
//! io_uring backend keeps a `read` of it queued, the portable backend adds
//! it to its `poll(2)` set. Either way a wait for packets also ends when
//! the fd is written, and the write is consumed by the backend.
//!
//! [`UdpIo::watch`]: super::UdpIo::watch

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use lanegate_common::wake::Wake;

/// A blocking, close-on-exec eventfd. Blocking on purpose: io_uring
/// returns `EAGAIN` to the application for a non-blocking file instead of
/// waiting on it, and a write only blocks when the counter would overflow
/// 2^64 - 2, which one write per sleep cannot reach.
#[derive(Debug)]
pub struct WakeFd {
    file: File,
}

impl WakeFd {
    /// A new eventfd with its counter at 0.
    pub fn new() -> io::Result<Arc<Self>> {
        // SAFETY: `eventfd` takes no pointers; it returns a new descriptor
        // or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by `eventfd`, is open, and nothing
        // else owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Arc::new(Self {
            file: File::from(owned),
        }))
    }

    /// Adds 1 to the counter, making the fd readable.
    pub fn signal(&self) {
        // Cannot fail short of a closed descriptor; a failed wake-up is
        // covered by the loop's `ring_poll_us` safety poll.
        let _ = (&self.file).write(&1u64.to_ne_bytes());
    }

    /// Resets the counter. Only after a `poll` said it is readable (the
    /// read would block otherwise).
    pub fn consume(&self) {
        let mut buf = [0u8; 8];
        let _ = (&self.file).read(&mut buf);
    }

    /// The descriptor, for the backend's wait.
    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

/// Wakes a core through its [`WakeFd`].
#[derive(Debug)]
pub struct FdWaker(pub Arc<WakeFd>);

impl Wake for FdWaker {
    fn wake(&self) {
        self.0.signal();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(fd: &WakeFd) -> bool {
        let mut pfd = libc::pollfd {
            fd: fd.raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd, count 1; the kernel writes `revents`.
        let rc = unsafe { libc::poll(&raw mut pfd, 1, 0) };
        rc == 1
    }

    #[test]
    fn signal_makes_readable_and_consume_resets() {
        let fd = WakeFd::new().unwrap();
        assert!(!readable(&fd));
        FdWaker(Arc::clone(&fd)).wake();
        fd.signal();
        assert!(readable(&fd));
        fd.consume();
        assert!(!readable(&fd), "one read takes every signal");
    }
}
