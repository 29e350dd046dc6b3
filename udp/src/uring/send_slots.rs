//! Send slots: each transmit in flight owns one, with the `msghdr`,
//! `iovec`, destination, cmsgs and bytes that `sendmsg` reads until its
//! completion. Fixed in number and size, allocated at start.

use std::net::SocketAddr;
use std::ptr::NonNull;

use super::super::Transmit;
use super::super::cmsg::{self, SEND_CONTROL_BYTES};

/// A transmit in flight: everything `sendmsg` reads.
struct SendSlot {
    hdr: libc::msghdr,
    iov: libc::iovec,
    addr: socket2::SockAddr,
    control: Control,
    data: Box<[u8]>,
    gso: bool,
}

#[repr(C, align(8))]
struct Control([u8; SEND_CONTROL_BYTES]);

/// Fixed send slots, addressed by index; the kernel reads a busy slot while
/// we write a free one, so they are reached through a raw pointer, one slot
/// at a time.
pub(super) struct SendSlots {
    slots: NonNull<SendSlot>,
    count: usize,
    free: Vec<usize>,
    pub(super) bytes_max: usize,
    /// Set when the kernel may still read a slot: never free.
    leaked: bool,
}

impl SendSlots {
    pub(super) fn new(count: usize, bytes_max: usize) -> Self {
        let slots: Box<[SendSlot]> = (0..count)
            .map(|_| SendSlot {
                // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths).
                hdr: unsafe { std::mem::zeroed() },
                // SAFETY: an all-zero iovec is valid (null base, length 0).
                iov: unsafe { std::mem::zeroed() },
                addr: SocketAddr::from(([0, 0, 0, 0], 0)).into(),
                control: Control([0; SEND_CONTROL_BYTES]),
                data: vec![0; bytes_max].into_boxed_slice(),
                gso: false,
            })
            .collect();
        let slots = NonNull::new(Box::into_raw(slots).cast::<SendSlot>())
            .expect("Box::into_raw is never null");
        Self {
            slots,
            count,
            free: (0..count).rev().collect(),
            bytes_max,
            leaked: false,
        }
    }

    pub(super) fn take(&mut self) -> Option<usize> {
        self.free.pop()
    }

    pub(super) fn all_free(&self) -> bool {
        self.free.len() == self.count
    }

    /// Keeps the slots allocated for good (sends still in flight).
    pub(super) fn leak(&mut self) {
        self.leaked = true;
    }

    /// Frees the slot a completion names; returns whether it was a GSO send.
    pub(super) fn release(&mut self, tag: u64) -> bool {
        let Ok(idx) = usize::try_from(tag) else {
            return false;
        };
        if idx >= self.count || self.free.contains(&idx) {
            return false;
        }
        // SAFETY: idx < count; the send completed, so the kernel no longer
        // reads this slot.
        let gso = unsafe { (*self.slots.as_ptr().add(idx)).gso };
        self.free.push(idx);
        gso
    }

    /// Copies `tx` into free slot `idx` and returns its `msghdr`.
    pub(super) fn fill(
        &mut self,
        idx: usize,
        tx: &Transmit<'_>,
        segment_size: Option<u16>,
    ) -> *const libc::msghdr {
        assert!(idx < self.count, "send slot index out of range");
        // SAFETY: idx < count and the slot is free (taken from `free`), so
        // the kernel is not reading it; only this one slot is borrowed.
        let slot = unsafe { &mut *self.slots.as_ptr().add(idx) };
        let len = tx.contents.len().min(slot.data.len());
        slot.data[..len].copy_from_slice(&tx.contents[..len]);
        slot.addr = tx.destination.into();
        slot.gso = segment_size.is_some();
        let control_len = cmsg::encode_send(
            &mut slot.control.0,
            tx.destination,
            tx.ecn,
            segment_size,
            tx.src_ip,
        );
        slot.iov = libc::iovec {
            iov_base: slot.data.as_mut_ptr().cast(),
            iov_len: len,
        };
        slot.hdr.msg_name = slot.addr.as_ptr().cast_mut().cast();
        slot.hdr.msg_namelen = slot.addr.len();
        slot.hdr.msg_iov = &raw mut slot.iov;
        slot.hdr.msg_iovlen = 1;
        slot.hdr.msg_control = if control_len == 0 {
            std::ptr::null_mut()
        } else {
            slot.control.0.as_mut_ptr().cast()
        };
        slot.hdr.msg_controllen = control_len as _;
        slot.hdr.msg_flags = 0;
        &raw const slot.hdr
    }
}

impl Drop for SendSlots {
    fn drop(&mut self) {
        if self.leaked {
            return;
        }
        let slice = std::ptr::slice_from_raw_parts_mut(self.slots.as_ptr(), self.count);
        // SAFETY: made by Box::into_raw of a boxed slice of `count` slots in
        // `new`; the ring is closed, so no send reads them any more.
        drop(unsafe { Box::from_raw(slice) });
    }
}
