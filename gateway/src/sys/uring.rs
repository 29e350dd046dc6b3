//! The io_uring backend.
//!
//! Receive: one multishot `recvmsg` (`RecvMsgMulti`) draws buffers from a
//! provided buffer ring (`register_buf_ring`). Each completion names the
//! buffer the kernel filled with an `io_uring_recvmsg_out` header, the peer
//! address, the cmsgs (pktinfo, TOS, GRO size) and the payload; we copy the
//! datagram into the caller's [`RecvBatch`] and hand the buffer straight
//! back. The kernel ends the multishot (no `IORING_CQE_F_MORE`) when the ring
//! runs dry (`ENOBUFS`) or on an error; we re-arm once buffers are back.
//! Datagrams that arrive meanwhile wait in the socket's receive buffer.
//!
//! Send: each transmit is copied into one of a fixed set of send slots (its
//! own `msghdr`, address, cmsgs and bytes) and queued as a `sendmsg`, with a
//! `UDP_SEGMENT` cmsg for a GSO batch. A batch is one `io_uring_enter`.
//!
//! Completions are reaped in batches. A receive completion that does not fit
//! the caller's batch (or arrives while sending) waits in a backlog that can
//! never overflow: each entry holds one of the ring's buffers.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::collections::VecDeque;
use std::io;
use std::mem::size_of;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use io_uring::types::{BufRingEntry, Fd, RecvMsgOut, SubmitArgs, Timespec};
use io_uring::{IoUring, cqueue, opcode, squeue};

use super::cmsg::{self, RECV_CONTROL_BYTES, SEND_CONTROL_BYTES};
use super::{BackendKind, BoundSocket, IoLimits, Received, RecvBatch, Transmit, UdpIo};

/// Counters of the events the backend absorbs rather than reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UringStats {
    /// Times the multishot receive was armed again after the kernel ended it.
    pub recv_rearms: u64,
    /// Times the buffer ring ran dry (`ENOBUFS`).
    pub recv_no_buffers: u64,
    /// Datagrams dropped because they did not fit a buffer.
    pub recv_truncated: u64,
    /// Receive completions with another error, or unparsable.
    pub recv_errors: u64,
    /// Transmits the kernel refused (dropped).
    pub send_errors: u64,
}

/// Why io_uring could not be set up, with the socket given back.
#[derive(Debug)]
pub struct UringSetupError {
    /// The failed step and the likely cause.
    pub reason: String,
    /// The socket, for the portable backend.
    pub socket: BoundSocket,
}

/// io_uring on one socket.
pub struct UringIo {
    // Declared first: dropped (ring closed) before the memory it points at.
    ring: IoUring,
    socket: UdpSocket,
    local_addr: SocketAddr,
    pool: RecvPool,
    recv_hdr: Box<libc::msghdr>,
    recv_armed: bool,
    /// Receive completions (`res`, `flags`) not yet copied out.
    backlog: VecDeque<(i32, u32)>,
    slots: SendSlots,
    max_gso_segments: usize,
    last_recv_errno: i32,
    stats: UringStats,
}

// SAFETY: the raw pointers inside (`msghdr`s, the buffer ring, the buffers
// and send slots) point only into memory this value owns, which does not
// move when the value moves to another thread; nothing is shared.
unsafe impl Send for UringIo {}

impl std::fmt::Debug for UringIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringIo")
            .field("local_addr", &self.local_addr)
            .field("recv_armed", &self.recv_armed)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

const RECV_TAG: u64 = u64::MAX;
const CANCEL_TAG: u64 = u64::MAX - 1;
const BUF_GROUP: u16 = 0;
/// `msg_namelen` of the receive: room for a `sockaddr_in6`.
const NAME_BYTES: usize = size_of::<libc::sockaddr_in6>();
/// Start of the payload in a provided buffer.
const PAYLOAD_OFFSET: usize = RECVMSG_OUT_BYTES + NAME_BYTES + RECV_CONTROL_BYTES;
/// `struct io_uring_recvmsg_out { u32 namelen, controllen, payloadlen, flags; }`.
const RECVMSG_OUT_BYTES: usize = 16;

impl UringIo {
    /// Sets up a ring, a buffer ring and the multishot receive on `socket`.
    /// On failure the socket comes back with the reason.
    pub fn new(socket: BoundSocket, limits: &IoLimits) -> Result<Self, UringSetupError> {
        if let Err(e) = limits.check() {
            return Err(UringSetupError {
                reason: e.to_string(),
                socket,
            });
        }
        // The backend owns a duplicate descriptor, so the original can be
        // handed back whole if a later step fails.
        let dup = match socket.socket.try_clone() {
            Ok(dup) => dup,
            Err(e) => {
                return Err(UringSetupError {
                    reason: reason("dup", &e),
                    socket,
                });
            }
        };
        match Self::setup(dup, socket.local_addr, socket.max_gso_segments, limits) {
            Ok(io) => Ok(io),
            Err(reason) => Err(UringSetupError { reason, socket }),
        }
    }

    fn setup(
        socket: UdpSocket,
        local_addr: SocketAddr,
        max_gso_segments: usize,
        limits: &IoLimits,
    ) -> Result<Self, String> {
        let buffers = limits.uring_recv_buffers_max;
        let slots = limits.send_slots_max;
        let sq_entries = u32::try_from((slots + 8).next_power_of_two())
            .map_err(|_| "send_slots_max too large".to_string())?;
        let cq_entries =
            u32::try_from((2 * (usize::from(buffers) + slots + 8)).next_power_of_two())
                .map_err(|_| "uring_recv_buffers_max too large".to_string())?;
        let ring = IoUring::builder()
            .setup_cqsize(cq_entries)
            .build(sq_entries)
            .map_err(|e| reason("io_uring_setup", &e))?;
        if !ring.params().is_feature_ext_arg() {
            return Err("io_uring_setup: the kernel lacks IORING_FEAT_EXT_ARG (5.11+)".into());
        }
        let mut probe = io_uring::Probe::new();
        ring.submitter()
            .register_probe(&mut probe)
            .map_err(|e| reason("IORING_REGISTER_PROBE", &e))?;
        for (code, name) in [
            (opcode::RecvMsgMulti::CODE, "RECVMSG"),
            (opcode::SendMsg::CODE, "SENDMSG"),
            (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
        ] {
            if !probe.is_supported(code) {
                return Err(format!("the kernel's io_uring lacks IORING_OP_{name}"));
            }
        }
        let pool = RecvPool::new(buffers, PAYLOAD_OFFSET + limits.datagram_bytes_max)
            .map_err(|e| reason("allocating the buffer ring", &e))?;
        // SAFETY: the ring memory is page-aligned, `buffers` entries long,
        // and lives in `pool`, which `UringIo` drops only after the ring
        // (field order) and after cancelling the receive (`Drop`).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(pool.ring_addr(), buffers, BUF_GROUP, 0)
                .map_err(|e| reason("IORING_REGISTER_PBUF_RING (5.19+)", &e))?;
        }
        // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths).
        let mut recv_hdr: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
        recv_hdr.msg_namelen = socklen(NAME_BYTES);
        recv_hdr.msg_controllen = RECV_CONTROL_BYTES as _;
        let mut io = Self {
            ring,
            socket,
            local_addr,
            pool,
            recv_hdr,
            recv_armed: false,
            backlog: VecDeque::with_capacity(usize::from(buffers)),
            slots: SendSlots::new(slots, limits.datagram_bytes_max),
            max_gso_segments,
            last_recv_errno: 0,
            stats: UringStats::default(),
        };
        for bid in 0..buffers {
            io.pool.provide(bid);
        }
        io.arm()
            .map_err(|e| reason("arming the multishot recvmsg", &e))?;
        io.enter(false, None)
            .map_err(|e| reason("io_uring_enter", &e))?;
        io.reap(None);
        if !io.recv_armed && io.last_recv_errno != 0 {
            let e = io::Error::from_raw_os_error(io.last_recv_errno);
            return Err(reason("multishot recvmsg (6.0+)", &e));
        }
        io.stats = UringStats::default();
        Ok(io)
    }

    /// Counters since start.
    pub fn stats(&self) -> UringStats {
        self.stats
    }

    /// Queues the multishot receive.
    fn arm(&mut self) -> io::Result<()> {
        let entry = opcode::RecvMsgMulti::new(
            Fd(self.socket.as_raw_fd()),
            &raw const *self.recv_hdr,
            BUF_GROUP,
        )
        .build()
        .user_data(RECV_TAG);
        self.push(&entry)?;
        self.recv_armed = true;
        Ok(())
    }

    fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        for _ in 0..2 {
            // SAFETY: every entry we build points at memory `self` owns and
            // keeps still until its completion: the receive `msghdr` and the
            // buffer ring for the receive, a busy send slot for a send.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                return Ok(());
            }
            self.ring.submit()?;
        }
        Err(io::Error::other("io_uring submission queue stays full"))
    }

    /// Publishes returned buffers and submits; waits for one completion if
    /// `wait`, at most `timeout`.
    fn enter(&mut self, wait: bool, timeout: Option<Duration>) -> io::Result<()> {
        self.pool.publish();
        let result = match (wait, timeout) {
            (false, _) => self.ring.submit(),
            (true, None) => self.ring.submit_and_wait(1),
            (true, Some(d)) => {
                let ts = Timespec::new().sec(d.as_secs()).nsec(d.subsec_nanos());
                let args = SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
        };
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Takes every completion; receives go to `out` while it has room (and
    /// nothing older waits), else to the backlog.
    fn reap(&mut self, mut out: Option<&mut RecvBatch>) {
        loop {
            let Some(cqe) = self.ring.completion().next() else {
                break;
            };
            let (res, flags) = (cqe.result(), cqe.flags());
            match cqe.user_data() {
                RECV_TAG => {
                    if !cqueue::more(flags) {
                        self.recv_armed = false;
                    }
                    if res < 0 {
                        match -res {
                            libc::ENOBUFS => self.stats.recv_no_buffers += 1,
                            libc::ECANCELED => {}
                            errno => {
                                self.stats.recv_errors += 1;
                                self.last_recv_errno = errno;
                                tracing::debug!(errno, "io_uring recvmsg failed");
                            }
                        }
                        continue;
                    }
                    let fits = out.as_deref().is_some_and(|o| o.has_room(payload_len(res)));
                    match out.as_deref_mut() {
                        Some(o) if fits && self.backlog.is_empty() => self.deliver(res, flags, o),
                        _ if self.backlog.len() < self.backlog.capacity() => {
                            self.backlog.push_back((res, flags));
                        }
                        _ => self.drop_recv(flags),
                    }
                }
                CANCEL_TAG => {}
                tag => {
                    let gso = self.slots.release(tag);
                    if res < 0 {
                        self.stats.send_errors += 1;
                        if -res == libc::EIO && gso && self.max_gso_segments > 1 {
                            // No checksum offload on the route: no GSO.
                            self.max_gso_segments = 1;
                            tracing::info!("UDP GSO failed with EIO; sending without GSO");
                        }
                        tracing::debug!(errno = -res, "io_uring sendmsg failed");
                    }
                }
            }
        }
    }

    /// Copies one received datagram out and returns its buffer.
    fn deliver(&mut self, res: i32, flags: u32, out: &mut RecvBatch) {
        let Some(bid) = cqueue::buffer_select(flags) else {
            self.stats.recv_errors += 1;
            return;
        };
        let len = usize::try_from(res).unwrap_or(0);
        let buf = self.pool.buffer(bid, len);
        match RecvMsgOut::parse(buf, &self.recv_hdr) {
            Ok(msg) if msg.is_payload_truncated() => self.stats.recv_truncated += 1,
            Ok(msg) => match cmsg::decode_sockaddr(msg.name_data()) {
                Some(remote) => {
                    let info = cmsg::decode(msg.control_data());
                    let data = msg.payload_data();
                    out.push(
                        Received {
                            remote,
                            local_ip: info.local_ip,
                            ecn: info.ecn,
                            segment_size: info.segment_size,
                            len: data.len(),
                        },
                        data,
                    );
                }
                None => self.stats.recv_errors += 1,
            },
            Err(()) => self.stats.recv_errors += 1,
        }
        self.pool.provide(bid);
    }

    fn drop_recv(&mut self, flags: u32) {
        self.stats.recv_errors += 1;
        if let Some(bid) = cqueue::buffer_select(flags) {
            self.pool.provide(bid);
        }
    }
}

impl UdpIo for UringIo {
    fn recv_batch(&mut self, out: &mut RecvBatch, timeout: Option<Duration>) -> io::Result<usize> {
        out.clear();
        while let Some(&(res, flags)) = self.backlog.front() {
            if !out.has_room(payload_len(res)) {
                break;
            }
            self.backlog.pop_front();
            self.deliver(res, flags, out);
        }
        // Two rounds: if the first ends the multishot (ring ran dry), the
        // buffers it returned let a second take what waits in the socket.
        for round in 0..2 {
            if !self.backlog.is_empty() {
                break;
            }
            if !self.recv_armed {
                self.stats.recv_rearms += 1;
                self.arm()?;
            }
            let wait = round == 0 && out.is_empty() && timeout != Some(Duration::ZERO);
            self.enter(wait, timeout)?;
            self.reap(Some(out));
            if self.recv_armed {
                break;
            }
        }
        Ok(out.len())
    }

    fn send_batch(&mut self, txs: &[Transmit<'_>]) -> io::Result<usize> {
        let mut taken = 0;
        for tx in txs {
            let segment_size = match tx.segment_size {
                Some(s) if s < tx.contents.len() => match u16::try_from(s) {
                    Ok(s) if s > 0 => Some(s),
                    _ => None,
                },
                _ => None,
            };
            if tx.contents.len() > self.slots.bytes_max
                || (tx.segment_size.is_some_and(|s| s < tx.contents.len())
                    && segment_size.is_none())
            {
                self.stats.send_errors += 1;
                tracing::debug!(len = tx.contents.len(), "transmit too large; dropped");
                taken += 1;
                continue;
            }
            let slot = match self.slots.take() {
                Some(slot) => slot,
                None => {
                    self.enter(false, None)?;
                    self.reap(None);
                    match self.slots.take() {
                        Some(slot) => slot,
                        None => break,
                    }
                }
            };
            let hdr = self.slots.fill(slot, tx, segment_size);
            let entry = opcode::SendMsg::new(Fd(self.socket.as_raw_fd()), hdr)
                .build()
                .user_data(slot as u64);
            if let Err(e) = self.push(&entry) {
                self.slots.release(slot as u64);
                return Err(e);
            }
            taken += 1;
        }
        self.enter(false, None)?;
        Ok(taken)
    }

    fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    fn max_gso_segments(&self) -> usize {
        self.max_gso_segments
    }

    fn kind(&self) -> BackendKind {
        BackendKind::IoUring
    }
}

impl Drop for UringIo {
    /// Cancels the receive and waits (briefly) for every request to finish,
    /// so the kernel touches no buffer after it is freed.
    fn drop(&mut self) {
        if self.recv_armed {
            let cancel = opcode::AsyncCancel::new(RECV_TAG)
                .build()
                .user_data(CANCEL_TAG);
            let _ = self.push(&cancel);
        }
        for _ in 0..100 {
            if !self.recv_armed && self.slots.all_free() {
                return;
            }
            if self.enter(true, Some(Duration::from_millis(10))).is_err() {
                break;
            }
            // Backlogged receives hold buffers, not requests; drop them.
            self.backlog.clear();
            self.reap(None);
        }
        tracing::warn!("io_uring requests still in flight at close");
    }
}

/// Payload bytes a receive completion of `res` bytes carries at most.
fn payload_len(res: i32) -> usize {
    usize::try_from(res)
        .unwrap_or(0)
        .saturating_sub(PAYLOAD_OFFSET)
}

fn socklen(n: usize) -> libc::socklen_t {
    libc::socklen_t::try_from(n).expect("socket address lengths fit socklen_t")
}

/// The failed step, the OS error and its likely cause.
fn reason(step: &str, e: &io::Error) -> String {
    let hint = match e.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => {
            match std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
                Ok(v) if v.trim() != "0" => {
                    format!(" (kernel.io_uring_disabled = {})", v.trim())
                }
                _ => " (denied by a seccomp filter or container policy)".into(),
            }
        }
        Some(libc::ENOSYS) => " (no io_uring in this kernel, or hidden by seccomp)".into(),
        Some(libc::EINVAL) => " (the kernel is too old for this io_uring feature)".into(),
        Some(libc::ENOMEM) => " (RLIMIT_MEMLOCK too low for the rings)".into(),
        _ => String::new(),
    };
    format!("{step}: {e}{hint}")
}

/// The provided buffer ring: `entries` ring slots and as many buffers of
/// `buf_len` bytes, each a `recvmsg_out` header, name, cmsgs and payload.
struct RecvPool {
    ring: NonNull<BufRingEntry>,
    ring_layout: Layout,
    bufs: NonNull<u8>,
    bufs_layout: Layout,
    entries: u16,
    buf_len: usize,
    /// Our copy of the ring tail; published by [`RecvPool::publish`].
    tail: u16,
}

impl RecvPool {
    fn new(entries: u16, buf_len: usize) -> io::Result<Self> {
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
        })
    }

    fn ring_addr(&self) -> u64 {
        self.ring.as_ptr() as u64
    }

    /// Puts buffer `bid` back in the ring (visible after `publish`).
    fn provide(&mut self, bid: u16) {
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
    fn publish(&self) {
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
    fn buffer(&self, bid: u16, len: usize) -> &[u8] {
        let bid = usize::from(bid % self.entries);
        let len = len.min(self.buf_len);
        // SAFETY: the buffer lies inside the allocation (bid < entries, len
        // <= buf_len). The kernel filled it and no longer writes to it: it
        // was taken from the ring and is not provided again until the
        // caller is done with this slice (`provide` needs `&mut self`).
        unsafe { std::slice::from_raw_parts(self.bufs.as_ptr().add(bid * self.buf_len), len) }
    }
}

impl Drop for RecvPool {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with these layouts; the ring that used
        // them is closed (it is dropped before the pool).
        unsafe {
            dealloc(self.ring.as_ptr().cast(), self.ring_layout);
            dealloc(self.bufs.as_ptr(), self.bufs_layout);
        }
    }
}

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
struct SendSlots {
    slots: NonNull<SendSlot>,
    count: usize,
    free: Vec<usize>,
    bytes_max: usize,
}

impl SendSlots {
    fn new(count: usize, bytes_max: usize) -> Self {
        let slots: Box<[SendSlot]> = (0..count)
            .map(|_| SendSlot {
                // SAFETY: an all-zero msghdr / iovec is valid (null, 0).
                hdr: unsafe { std::mem::zeroed() },
                // SAFETY: as above.
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
        }
    }

    fn take(&mut self) -> Option<usize> {
        self.free.pop()
    }

    fn all_free(&self) -> bool {
        self.free.len() == self.count
    }

    /// Frees the slot a completion names; returns whether it was a GSO send.
    fn release(&mut self, tag: u64) -> bool {
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
    fn fill(
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
        let slice = std::ptr::slice_from_raw_parts_mut(self.slots.as_ptr(), self.count);
        // SAFETY: made by Box::into_raw of a boxed slice of `count` slots in
        // `new`; the ring is closed, so no send reads them any more.
        drop(unsafe { Box::from_raw(slice) });
    }
}
