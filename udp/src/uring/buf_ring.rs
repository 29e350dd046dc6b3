//! The provided buffer ring of the multishot receive: a page-aligned ring of
//! `io_uring_buf` entries shared with the kernel, and the buffers it lends.
//! We put a buffer back (`provide`) as soon as its datagram is copied out,
//! and move the shared tail once per batch (`publish`).

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::io;
use std::mem::size_of;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;

/// The provided buffer ring: `entries` ring slots and as many buffers of
/// `buf_len` bytes, each a `recvmsg_out` header, name, cmsgs and payload.
pub(super) struct RecvPool {
    ring: NonNull<BufRingEntry>,
    ring_layout: Layout,
    bufs: NonNull<u8>,
    bufs_layout: Layout,
    entries: u16,
    buf_len: usize,
    /// Our copy of the ring tail; published by [`RecvPool::publish`].
    tail: u16,
    /// Set when the kernel may still write into the buffers: never free.
    leaked: bool,
}

impl RecvPool {
    pub(super) fn new(entries: u16, buf_len: usize) -> io::Result<Self> {
        let too_big = |_| io::Error::from(io::ErrorKind::OutOfMemory);
        let ring_bytes = usize::from(entries) * size_of::<BufRingEntry>();
        let ring_layout = Layout::from_size_align(ring_bytes.max(4096), 4096).map_err(too_big)?;
        let bufs_layout =
            Layout::from_size_align(usize::from(entries) * buf_len, 64).map_err(too_big)?;
        // SAFETY: both layouts have a non-zero size (entries >= 1 and
        // buf_len > 0, checked by IoLimits::check).
        let (ring, bufs) = unsafe { (alloc_zeroed(ring_layout), alloc_zeroed(bufs_layout)) };
        let (Some(ring), Some(bufs)) = (NonNull::new(ring.cast()), NonNull::new(bufs)) else {
            return Err(io::ErrorKind::OutOfMemory.into());
        };
        Ok(Self {
            ring,
            ring_layout,
            bufs,
            bufs_layout,
            entries,
            buf_len,
            tail: 0,
            leaked: false,
        })
    }

    pub(super) fn ring_addr(&self) -> u64 {
        self.ring.as_ptr() as u64
    }

    /// Puts buffer `bid` back in the ring (visible after `publish`).
    pub(super) fn provide(&mut self, bid: u16) {
        let idx = usize::from(self.tail & (self.entries - 1));
        let addr = self.bufs.as_ptr() as u64 + (usize::from(bid) * self.buf_len) as u64;
        // SAFETY: idx < entries, inside the ring allocation. The slot at the
        // tail is not read by the kernel until the tail moves past it: at
        // most `entries` buffers exist, so the kernel has consumed it.
        let entry = unsafe { &mut *self.ring.as_ptr().add(idx) };
        entry.set_addr(addr);
        entry.set_len(u32::try_from(self.buf_len).expect("buffer length fits u32"));
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes the provided buffers visible to the kernel.
    pub(super) fn publish(&self) {
        // SAFETY: the ring is page-aligned and initialized; the tail is the
        // u16 at offset 14 of the first entry (`resv`), shared with the
        // kernel, so it is only accessed atomically.
        let tail = unsafe {
            &*BufRingEntry::tail(self.ring.as_ptr())
                .cast_mut()
                .cast::<AtomicU16>()
        };
        tail.store(self.tail, Ordering::Release);
    }

    /// The first `len` bytes of buffer `bid`, which the kernel just handed
    /// back in a completion.
    pub(super) fn buffer(&self, bid: u16, len: usize) -> &[u8] {
        let bid = usize::from(bid % self.entries);
        let len = len.min(self.buf_len);
        // SAFETY: the buffer lies inside the allocation (bid < entries, len
        // <= buf_len). The kernel filled it and no longer writes to it: it
        // was taken from the ring and is not provided again until the
        // caller is done with this slice (`provide` needs `&mut self`).
        unsafe { std::slice::from_raw_parts(self.bufs.as_ptr().add(bid * self.buf_len), len) }
    }
}

impl RecvPool {
    /// Keeps the memory allocated for good (requests still in flight).
    pub(super) fn leak(&mut self) {
        self.leaked = true;
    }
}

impl Drop for RecvPool {
    fn drop(&mut self) {
        if self.leaked {
            return;
        }
        // SAFETY: allocated in `new` with these layouts; the ring that used
        // them is closed (it is dropped before the pool).
        unsafe {
            dealloc(self.ring.as_ptr().cast(), self.ring_layout);
            dealloc(self.bufs.as_ptr(), self.bufs_layout);
        }
    }
}
