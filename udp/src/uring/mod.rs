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

use std::collections::VecDeque;
use std::io;
use std::mem::size_of;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use io_uring::types::{Fd, RecvMsgOut, SubmitArgs, Timespec};
use io_uring::{IoUring, cqueue, opcode, squeue};

mod buf_ring;
mod send_slots;

use buf_ring::RecvPool;
use send_slots::SendSlots;

use super::cmsg::{self, RECV_CONTROL_BYTES};
use super::{BackendKind, BoundSocket, IoLimits, Received, RecvBatch, Transmit, UdpIo, WakeFd};

/// Makes the ring, asking the kernel to run its completion work only when
/// the loop asks for completions (`DEFER_TASKRUN`, 6.1+; the ring is used
/// by the thread that made it only, `SINGLE_ISSUER`) or at least not to
/// interrupt the thread for it (`COOP_TASKRUN`, 5.19+). Without either,
/// every arriving datagram sends the busy core an inter-processor
/// interrupt to run the multishot receive's completion: a profile at
/// 5000 datagrams/s put a quarter of the core's time in that path, and
/// the backend cost more CPU per datagram than the portable one
/// (`BENCHMARKS.md`). Older kernels get the plain ring.
fn build_ring(sq_entries: u32, cq_entries: u32) -> Result<IoUring, String> {
    let deferred = IoUring::builder()
        .setup_cqsize(cq_entries)
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_taskrun_flag()
        .build(sq_entries);
    let coop = |_| {
        IoUring::builder()
            .setup_cqsize(cq_entries)
            .setup_coop_taskrun()
            .setup_taskrun_flag()
            .build(sq_entries)
    };
    let plain = |_| {
        IoUring::builder()
            .setup_cqsize(cq_entries)
            .build(sq_entries)
    };
    deferred
        .or_else(coop)
        .or_else(plain)
        .map_err(|e| reason("io_uring_setup", &e))
}

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
    /// Waits ended by the watched wake fd.
    pub wakes: u64,
}

/// Why io_uring could not be set up, with the socket given back.
#[derive(Debug, thiserror::Error)]
#[error("io_uring setup: {reason}")]
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
    datagram_bytes_max: usize,
    last_recv_errno: i32,
    stats: UringStats,
    /// Watched fd ([`UdpIo::watch`]): a `read` of it into `wake_buf` stays
    /// queued, so a wait also ends when it is written.
    wake: Option<Arc<WakeFd>>,
    wake_buf: Box<[u8; 8]>,
    wake_armed: bool,
    /// A replaced wake fd whose read may still be queued.
    retired_wake: Option<Arc<WakeFd>>,
    /// The socket's kernel receive drops, from the `SO_RXQ_OVFL` count on
    /// received datagrams; `None` if the option could not be set.
    kernel_drops: Option<u64>,
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
const WAKE_TAG: u64 = u64::MAX - 2;
const BUF_GROUP: u16 = 0;
/// Completions copied out of the CQ at once.
const REAP_BATCH: usize = 32;
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
        let ring = build_ring(sq_entries, cq_entries)?;
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
        // The kernel's drop count on every datagram after the first drop:
        // the degradation ladder's kernel signal at no cost per datagram
        // beyond a few bytes of cmsg (RECV_CONTROL_BYTES has room for it).
        // Only here: quinn-udp's control buffer is sized for what it asks.
        let kernel_drops =
            crate::socket::set_int(socket.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1)
                .ok()
                .map(|()| 0);
        // Receive timestamps in the same cmsg area, for the gateway's
        // latency histograms; a kernel that refuses leaves them `None`.
        if limits.receive_timestamps {
            let _ = crate::socket::set_int(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                1,
            );
        }
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
            datagram_bytes_max: limits.datagram_bytes_max,
            last_recv_errno: 0,
            stats: UringStats::default(),
            wake: None,
            wake_buf: Box::new([0; 8]),
            wake_armed: false,
            retired_wake: None,
            kernel_drops,
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
            // buffer ring for the receive, a busy send slot for a send, the
            // boxed `wake_buf` for the read of the wake fd.
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
            // Copy a batch of completions out, then release their CQ slots
            // with one head store (when `cq` drops).
            let mut cqes = [(0u64, 0i32, 0u32); REAP_BATCH];
            let mut n = 0;
            for (slot, cqe) in cqes.iter_mut().zip(self.ring.completion()) {
                *slot = (cqe.user_data(), cqe.result(), cqe.flags());
                n += 1;
            }
            for &(tag, res, flags) in &cqes[..n] {
                self.complete(tag, res, flags, out.as_deref_mut());
            }
            if n < REAP_BATCH {
                break;
            }
        }
    }

    fn complete(&mut self, tag: u64, res: i32, flags: u32, out: Option<&mut RecvBatch>) {
        match tag {
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
                    return;
                }
                match out {
                    Some(o) if self.backlog.is_empty() && o.has_room(payload_len(res)) => {
                        self.deliver(res, flags, o);
                    }
                    // Cannot overflow: each entry holds one of the ring's
                    // buffers, and the capacity is the ring's size.
                    _ if self.backlog.len() < self.backlog.capacity() => {
                        self.backlog.push_back((res, flags));
                    }
                    _ => self.drop_recv(flags),
                }
            }
            CANCEL_TAG => {}
            WAKE_TAG => {
                self.wake_armed = false;
                if res >= 0 {
                    self.stats.wakes += 1;
                } else if -res != libc::ECANCELED {
                    tracing::debug!(errno = -res, "io_uring read of the wake fd failed");
                }
            }
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
                    if let Some(drops) = info.kernel_drops {
                        self.kernel_drops = Some(u64::from(drops));
                    }
                    let data = msg.payload_data();
                    out.push(
                        Received {
                            remote,
                            local_ip: info.local_ip,
                            ecn: info.ecn,
                            segment_size: info.segment_size,
                            received: info.received,
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
    fn kernel_drops(&self) -> Option<u64> {
        self.kernel_drops
    }

    fn recv_batch(&mut self, out: &mut RecvBatch, timeout: Option<Duration>) -> io::Result<usize> {
        out.reset_for(self.datagram_bytes_max)?;
        while let Some(&(res, flags)) = self.backlog.front() {
            if !out.has_room(payload_len(res)) {
                break;
            }
            self.backlog.pop_front();
            self.deliver(res, flags, out);
        }
        // One io_uring_enter: it submits the sends queued since the last
        // turn and the returned buffers, and waits if nothing is ready.
        // A second, non-waiting round runs only if the first ended the
        // multishot (ring ran dry): re-armed with the buffers just returned,
        // it takes what waits in the socket.
        if !self.wake_armed
            && let Some(fd) = self.wake.as_ref().map(|w| w.raw_fd())
        {
            let entry = opcode::Read::new(Fd(fd), self.wake_buf.as_mut_ptr(), 8)
                .build()
                .user_data(WAKE_TAG);
            self.push(&entry)?;
            self.wake_armed = true;
        }
        for round in 0..2 {
            if !self.recv_armed && self.backlog.is_empty() {
                self.stats.recv_rearms += 1;
                self.arm()?;
            }
            let wait = round == 0
                && out.is_empty()
                && self.backlog.is_empty()
                && timeout != Some(Duration::ZERO);
            self.enter(wait, timeout)?;
            self.reap(Some(out));
            if self.recv_armed || !self.backlog.is_empty() {
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
        // Submitted by the next `recv_batch` (or `flush`): one
        // io_uring_enter per loop turn for both directions.
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.enter(false, None)?;
        self.reap(None);
        Ok(())
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

    fn watch(&mut self, wake: Arc<WakeFd>) -> io::Result<()> {
        // A read of the old fd may still be queued: it completes, or is
        // cancelled when the ring closes; the fd stays open meanwhile
        // because the old `Arc` is kept until then.
        if self.wake_armed
            && let Some(old) = self.wake.take()
        {
            self.retired_wake = Some(old);
        }
        self.wake = Some(wake);
        self.wake_armed = false;
        Ok(())
    }
}

impl Drop for UringIo {
    /// Cancels the receive and waits (briefly) for every request to finish,
    /// so the kernel touches no buffer after it is freed. If some never do,
    /// their memory is leaked rather than freed under the kernel's feet.
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
        self.pool.leak();
        self.slots.leak();
        tracing::warn!("io_uring requests still in flight at close; their buffers are leaked");
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

#[cfg(test)]
mod tests {
    use super::*;

    /// This kernel (6.x, as CI's) takes the deferred task-run ring; a
    /// regression to the plain ring would bring back an interrupt per
    /// arriving datagram.
    #[test]
    fn the_ring_defers_completion_work_to_the_loop() {
        let ring = build_ring(8, 16).expect("io_uring works here");
        assert!(ring.params().is_setup_single_issuer());
    }
}
