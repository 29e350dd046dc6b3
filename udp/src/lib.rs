//! `lanegate-udp`: Lanegate's IO layer. UDP sockets, the two socket
//! backends, cmsgs, core pinning and the eventfd that wakes a sleeping core.
//!
//! Everything above this crate is sans-IO: the engine takes `now` and bytes
//! and returns transmits. This crate owns the file descriptors and nothing
//! else; it makes no protocol decision. It is the only crate of the
//! workspace that allows `unsafe` (system calls, the io_uring rings and the
//! buffers lent to the kernel), and every `unsafe` block carries a
//! `// SAFETY:` comment saying why it holds.
//!
//! # Why io_uring
//!
//! A gateway core spends most of its time moving small datagrams (game input
//! and state, 50 to 1200 bytes). With plain sockets each batch costs at least
//! one `recvmmsg` and one `sendmsg` per packet or GSO batch, plus a `poll` when
//! idle. The io_uring backend ([`uring`]) arms one **multishot `recvmsg`** with
//! a **provided buffer ring**: the kernel keeps receiving into buffers we lent
//! it and posts one completion per datagram, with no request per packet. Sends
//! are `sendmsg` requests (with a `UDP_SEGMENT` cmsg for GSO batches) queued in
//! the submission ring and submitted by the next receive's wait. A loop turn
//! costs one `io_uring_enter`, however many packets move either way.
//!
//! # What the fallback costs
//!
//! The portable backend ([`portable`]) is quinn-udp: `recvmmsg` with GRO,
//! `sendmsg` with GSO, ECN and `IP_PKTINFO`, and `poll(2)` to wait. It is
//! correct everywhere quinn runs; it costs a syscall per receive batch, one
//! per transmit (a GSO batch counts as one) and one per idle wait, which
//! shows up as CPU per packet at high rates, not as a behavioural difference.
//! Both backends copy each datagram once, into the caller's [`RecvBatch`].
//!
//! # How the backend is chosen
//!
//! `gateway.io_backend` in the configuration ([`open`]):
//! - `"auto"` (default): set up io_uring (ring, buffer ring, multishot
//!   receive); if any step fails, log **one** `warn!` naming the reason
//!   (`EPERM` from seccomp or `kernel.io_uring_disabled`, `ENOSYS`, a kernel
//!   older than 6.0 without multishot `recvmsg`) and use the portable backend;
//! - `"io_uring"`: the same setup, but a failure is an error at start;
//! - `"portable"`: no probe.
//!
//! A gateway core's loop holds a `Box<dyn UdpIo>` and cannot tell the
//! backends apart.
//!
//! # A gateway core's loop
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use lanegate_common::config::GatewayConfig;
//! use lanegate_udp::{self as sys, IoLimits, RecvBatch, SocketOptions, Transmit};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = GatewayConfig::default();
//! let limits = IoLimits::default();
//! let options = SocketOptions::from_config(&config);
//! // One socket per gateway core, all on one port (SO_REUSEPORT).
//! let sockets = sys::bind_group(config.listen, 2, &options)?;
//! for (core, socket) in sockets.into_iter().enumerate() {
//!     socket.warn_if_clamped(core);
//!     // On the core's own thread:
//!     sys::pin_current_thread(core)?;
//!     let (mut io, _kind) = sys::open(&config, core, socket, &limits)?;
//!     let mut batch = RecvBatch::for_limits(&limits); // allocated once
//!     loop {
//!         io.recv_batch(&mut batch, Some(Duration::from_millis(5)))?;
//!         for d in batch.iter() {
//!             for packet in d.segments() {
//!                 // endpoint.handle(now, d.remote, d.local_ip, d.ecn, packet.into(), ..)
//!                 let _ = (d.remote, d.local_ip, d.ecn, packet);
//!             }
//!         }
//!         // The engine's transmits, borrowing its send buffer.
//!         let txs: Vec<Transmit<'_>> = Vec::new();
//!         let taken = io.send_batch(&txs)?; // keep txs[taken..] for later
//! #       let _ = taken;
//! #       break;
//!     }
//! }
//! # Ok(())
//! # }
//! ```

pub mod affinity;
#[cfg(target_os = "linux")]
mod cmsg;
pub mod cpu;
pub mod drops;
pub mod portable;
pub mod socket;
#[cfg(target_os = "linux")]
pub mod uring;
pub mod wake;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use lanegate_common::config::{GatewayConfig, IoBackend};

pub use affinity::pin_current_thread;
pub use drops::SocketDrops;
pub use socket::{BoundSocket, BufferGrant, SocketOptions, bind_group, bind_udp};
pub use wake::{FdWaker, WakeFd};

/// One UDP socket's IO, as the engine sees it. Implemented by the io_uring
/// and the portable backends.
pub trait UdpIo: Send {
    /// Receives datagrams into `out` (cleared first) and returns how many.
    /// `out` must hold at least one datagram of the backend's
    /// [`IoLimits::datagram_bytes_max`] ([`RecvBatch::for_limits`]), else
    /// this returns `InvalidInput`.
    ///
    /// Waits up to `timeout` for the first one (`None`: without limit;
    /// `Some(Duration::ZERO)`: not at all), then takes whatever else is ready
    /// while `out` has room. `Ok(0)` means nothing arrived in time.
    fn recv_batch(&mut self, out: &mut RecvBatch, timeout: Option<Duration>) -> io::Result<usize>;

    /// Takes `txs` for sending, in order, and returns how many it took.
    ///
    /// Fewer than `txs.len()` means the socket (or the backend's send slots)
    /// is full for now: retry the rest later. Errors the network causes
    /// (unreachable peer, a transmit too large) drop that transmit, are
    /// counted and logged at debug, and count as taken.
    ///
    /// The portable backend sends at once. The io_uring backend copies the
    /// transmits into its send slots and queues them; they reach the kernel
    /// with the next [`UdpIo::recv_batch`] (which the loop calls next anyway,
    /// so a turn costs one syscall for both directions), when the slots run
    /// out, or on [`UdpIo::flush`].
    fn send_batch(&mut self, txs: &[Transmit<'_>]) -> io::Result<usize>;

    /// Hands queued transmits to the kernel now, without waiting. Only
    /// needed when no `recv_batch` follows soon (e.g. at shutdown).
    fn flush(&mut self) -> io::Result<()>;

    /// The address the socket is bound to.
    fn local_addr(&self) -> SocketAddr;

    /// Most segments one GSO transmit may carry (1: no GSO).
    fn max_gso_segments(&self) -> usize;

    /// Datagrams the kernel dropped on this socket since it was made (its
    /// receive buffer full), where the backend reads the count from each
    /// receive (io_uring: `SO_RXQ_OVFL`). `None`: the backend cannot, and
    /// the caller reads the kernel's table instead (`drops.rs`).
    fn kernel_drops(&self) -> Option<u64> {
        None
    }

    /// Which backend this is (for logs and metrics only).
    fn kind(&self) -> BackendKind;

    /// Makes every later wait of [`UdpIo::recv_batch`] also end when `wake`
    /// is signalled (a shard or another core has entries for this core).
    /// The backend consumes the signal. One fd per backend; a second call
    /// replaces the first.
    fn watch(&mut self, wake: std::sync::Arc<WakeFd>) -> io::Result<()>;
}

/// The two socket backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// Linux io_uring: multishot `recvmsg` with a provided buffer ring.
    IoUring,
    /// quinn-udp: `recvmmsg`/`sendmsg` with GRO/GSO, and `poll`.
    Portable,
}

impl BackendKind {
    /// The name used in configuration and logs.
    pub const fn name(self) -> &'static str {
        match self {
            BackendKind::IoUring => "io_uring",
            BackendKind::Portable => "portable",
        }
    }
}

/// An Explicit Congestion Notification codepoint (the two low bits of the IP
/// TOS / traffic class byte). Converts to `quinn_proto::EcnCodepoint` through
/// [`Ecn::bits`] and `EcnCodepoint::from_bits`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Ecn {
    /// ECT(0), `0b10`.
    Ect0 = 0b10,
    /// ECT(1), `0b01`.
    Ect1 = 0b01,
    /// Congestion experienced, `0b11`.
    Ce = 0b11,
}

impl Ecn {
    /// The codepoint in the two low bits of `tos`; `None` for Not-ECT.
    pub const fn from_bits(tos: u8) -> Option<Self> {
        match tos & 0b11 {
            0b10 => Some(Ecn::Ect0),
            0b01 => Some(Ecn::Ect1),
            0b11 => Some(Ecn::Ce),
            _ => None,
        }
    }

    /// The two-bit codepoint.
    pub const fn bits(self) -> u8 {
        self as u8
    }
}

/// One outgoing datagram, or a GSO batch of equal-size datagrams. Mirrors
/// `quinn_proto::Transmit`, with the bytes attached.
#[derive(Clone, Copy, Debug)]
pub struct Transmit<'a> {
    /// Where to send.
    pub destination: SocketAddr,
    /// ECN codepoint to mark, if any.
    pub ecn: Option<Ecn>,
    /// The datagram, or `segment_size`-byte datagrams back to back (the last
    /// may be shorter).
    pub contents: &'a [u8],
    /// With GSO: the size of each datagram in `contents`. At most
    /// [`UdpIo::max_gso_segments`] of them.
    pub segment_size: Option<usize>,
    /// Source IP to send from (the local address the peer wrote to), if the
    /// socket is bound to a wildcard address.
    pub src_ip: Option<IpAddr>,
}

/// A received datagram, borrowed from a [`RecvBatch`].
#[derive(Clone, Copy, Debug)]
pub struct Datagram<'a> {
    /// The peer's address.
    pub remote: SocketAddr,
    /// The local address the peer sent to (from `IP_PKTINFO` /
    /// `IPV6_PKTINFO`), if the kernel reported it.
    pub local_ip: Option<IpAddr>,
    /// ECN codepoint of the IP header.
    pub ecn: Option<Ecn>,
    /// With GRO, `data` holds datagrams of this size back to back (the last
    /// may be shorter); without, it equals `data.len()`.
    pub segment_size: usize,
    /// When the kernel received it, on the realtime clock since the Unix
    /// epoch (`SO_TIMESTAMPNS`, io_uring backend with
    /// [`IoLimits::receive_timestamps`]); `None` where the backend cannot
    /// tell. The gateway measures how long a datagram waited in the
    /// socket and the loop from it.
    pub received: Option<Duration>,
    /// The bytes.
    pub data: &'a [u8],
}

impl<'a> Datagram<'a> {
    /// The datagrams GRO coalesced into this one, each as the peer sent it.
    pub fn segments(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        self.data.chunks(self.segment_size.max(1))
    }
}

/// Per-core storage for received datagrams, allocated once at start and
/// refilled by every [`UdpIo::recv_batch`].
#[derive(Debug)]
pub struct RecvBatch {
    data: Box<[u8]>,
    metas: Box<[Meta]>,
    len: usize,
    used_bytes: usize,
}

#[derive(Clone, Copy, Debug)]
struct Meta {
    remote: SocketAddr,
    local_ip: Option<IpAddr>,
    ecn: Option<Ecn>,
    segment_size: usize,
    received: Option<Duration>,
    start: usize,
    len: usize,
}

impl RecvBatch {
    /// Room for `datagrams_max` datagrams and `bytes_max` bytes in all.
    /// A receive only starts while [`IoLimits::datagram_bytes_max`] bytes
    /// are free, so `bytes_max` should be a multiple of it.
    pub fn new(datagrams_max: usize, bytes_max: usize) -> Self {
        let empty = Meta {
            remote: SocketAddr::from(([0, 0, 0, 0], 0)),
            local_ip: None,
            ecn: None,
            segment_size: 0,
            received: None,
            start: 0,
            len: 0,
        };
        Self {
            data: vec![0; bytes_max].into_boxed_slice(),
            metas: vec![empty; datagrams_max].into_boxed_slice(),
            len: 0,
            used_bytes: 0,
        }
    }

    /// Sized for `limits`: [`IoLimits::recv_batch_datagrams_max`] datagrams
    /// of up to [`IoLimits::datagram_bytes_max`] bytes.
    pub fn for_limits(limits: &IoLimits) -> Self {
        Self::new(
            limits.recv_batch_datagrams_max,
            limits.recv_batch_datagrams_max * limits.datagram_bytes_max,
        )
    }

    /// Datagrams received by the last call.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the last call received nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `i`th datagram.
    pub fn get(&self, i: usize) -> Option<Datagram<'_>> {
        let m = self.metas.get(..self.len)?.get(i)?;
        Some(Datagram {
            remote: m.remote,
            local_ip: m.local_ip,
            ecn: m.ecn,
            segment_size: m.segment_size,
            received: m.received,
            data: &self.data[m.start..m.start + m.len],
        })
    }

    /// The datagrams, in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = Datagram<'_>> {
        (0..self.len).filter_map(|i| self.get(i))
    }

    /// Clears the batch; an error if it cannot hold one datagram of
    /// `datagram_bytes_max` bytes (it would never receive anything).
    fn reset_for(&mut self, datagram_bytes_max: usize) -> io::Result<()> {
        self.clear();
        if self.metas.is_empty() || self.data.len() < datagram_bytes_max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "RecvBatch of {} bytes cannot hold one datagram of IoLimits::datagram_bytes_max = {datagram_bytes_max}; size it with RecvBatch::for_limits",
                    self.data.len()
                ),
            ));
        }
        Ok(())
    }

    fn clear(&mut self) {
        self.len = 0;
        self.used_bytes = 0;
    }

    /// Whether one more datagram of up to `bytes` bytes fits.
    fn has_room(&self, bytes: usize) -> bool {
        self.len < self.metas.len() && self.data.len() - self.used_bytes >= bytes
    }

    /// The free bytes, for a backend that receives in place.
    fn spare(&mut self) -> &mut [u8] {
        &mut self.data[self.used_bytes..]
    }

    /// Records a datagram received in place at `offset` into [`Self::spare`].
    /// Data past the spare region is clamped away.
    fn commit(&mut self, offset: usize, received: Received) {
        let start = (self.used_bytes + offset).min(self.data.len());
        let len = received.len.min(self.data.len() - start);
        if let Some(m) = self.metas.get_mut(self.len) {
            *m = Meta {
                remote: received.remote,
                local_ip: received.local_ip,
                ecn: received.ecn,
                segment_size: if received.segment_size == 0 {
                    len
                } else {
                    received.segment_size
                },
                received: received.received,
                start,
                len,
            };
            self.len += 1;
        }
    }

    /// Marks `bytes` of the spare region as used (after commits in place).
    fn advance(&mut self, bytes: usize) {
        self.used_bytes = (self.used_bytes + bytes).min(self.data.len());
    }

    /// Copies a datagram in. The caller checked [`Self::has_room`].
    fn push(&mut self, received: Received, data: &[u8]) {
        let spare = self.spare();
        let n = data.len().min(spare.len());
        spare[..n].copy_from_slice(&data[..n]);
        self.commit(0, Received { len: n, ..received });
        self.advance(n);
    }
}

/// What a backend learned about one received datagram.
#[derive(Clone, Copy, Debug)]
struct Received {
    remote: SocketAddr,
    local_ip: Option<IpAddr>,
    ecn: Option<Ecn>,
    segment_size: usize,
    received: Option<Duration>,
    len: usize,
}

/// Sizes of the IO layer's per-core pools, all allocated at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoLimits {
    /// Largest datagram (or GRO train) received or sent at once, in bytes.
    /// Default 65536: GRO coalesces up to 64 KiB, and a truncated train
    /// loses packets, so a receive buffer must hold the largest one.
    pub datagram_bytes_max: usize,
    /// Buffers lent to the kernel in the io_uring buffer ring; a power of
    /// two, at most 32768. Default 64 (4 MiB of 64 KiB buffers): with one
    /// copy out per completion they come back within a loop turn; when the
    /// kernel runs out, datagrams wait in the socket's receive buffer.
    pub uring_recv_buffers_max: u16,
    /// io_uring send slots (a datagram or GSO batch each, in flight at
    /// once). Default 32, one full GSO-less batch of the engine.
    pub send_slots_max: usize,
    /// Datagrams in one [`RecvBatch`]. Default 32 (quinn-udp's batch).
    pub recv_batch_datagrams_max: usize,
    /// Ask the kernel for each datagram's receive time
    /// ([`Datagram::received`]; io_uring only). Default on: the gateway's
    /// latency histograms start from it.
    pub receive_timestamps: bool,
}

impl Default for IoLimits {
    fn default() -> Self {
        Self {
            datagram_bytes_max: 1 << 16,
            uring_recv_buffers_max: 64,
            send_slots_max: 32,
            recv_batch_datagrams_max: 32,
            receive_timestamps: true,
        }
    }
}

impl IoLimits {
    /// Checks the relations between the limits, naming the bad field.
    pub fn check(&self) -> Result<(), SysError> {
        let bad = |field, problem: &str| {
            Err(SysError::Limits {
                field,
                problem: problem.into(),
            })
        };
        if !(1500..=1 << 16).contains(&self.datagram_bytes_max) {
            return bad("datagram_bytes_max", "must be 1500..=65536");
        }
        if !self.uring_recv_buffers_max.is_power_of_two() || self.uring_recv_buffers_max > 1 << 15 {
            return bad(
                "uring_recv_buffers_max",
                "must be a power of two up to 32768",
            );
        }
        if !(1..=4096).contains(&self.send_slots_max) {
            return bad("send_slots_max", "must be 1..=4096");
        }
        if self.recv_batch_datagrams_max == 0 {
            return bad("recv_batch_datagrams_max", "must be at least 1");
        }
        Ok(())
    }
}

/// Errors of the IO layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SysError {
    /// A socket could not be created, configured or bound.
    #[error("UDP socket {addr}: {what}: {source}")]
    Socket {
        /// The address being bound.
        addr: SocketAddr,
        /// The step that failed, e.g. `bind` or `SO_REUSEPORT`.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// `gateway.io_backend = "io_uring"` but io_uring cannot be used here.
    #[error("gateway.io_backend = \"io_uring\", but io_uring is unavailable: {reason}")]
    IoUringUnavailable {
        /// Why, naming the failed step and the likely cause.
        reason: String,
    },
    /// The portable backend could not be set up on the socket.
    #[error("portable UDP backend: {0}")]
    Portable(io::Error),
    /// An [`IoLimits`] value is out of range.
    #[error("IO limits: {field} {problem}")]
    Limits {
        /// The field of [`IoLimits`].
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The core to pin to does not exist on this host.
    #[error("cannot pin to core {core}: {available}")]
    NoSuchCore {
        /// The requested core index.
        core: usize,
        /// The cores that exist, or why they are unknown.
        available: String,
    },
    /// The OS refused to pin the thread.
    #[error("the OS refused to pin the thread to core {core}")]
    PinRefused {
        /// The requested core index.
        core: usize,
    },
}

/// Whether this process may set up an io_uring at all (`lanegate doctor`):
/// seccomp, `kernel.io_uring_disabled` or a kernel without it refuse with
/// the OS error returned here.
pub fn probe_io_uring() -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        io_uring::IoUring::new(4).map(|_| ())
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(io::Error::from_raw_os_error(38)) // ENOSYS: io_uring is Linux-only
    }
}

/// Opens the backend `config.io_backend` asks for on `socket` (one core's
/// socket from [`bind_group`]). `core` only names the core in logs.
///
/// `"auto"` falls back to the portable backend with one `warn!` naming the
/// reason (once per process; further cores log it at debug); `"io_uring"`
/// returns [`SysError::IoUringUnavailable`] instead.
pub fn open(
    config: &GatewayConfig,
    core: usize,
    socket: BoundSocket,
    limits: &IoLimits,
) -> Result<(Box<dyn UdpIo>, BackendKind), SysError> {
    limits.check()?;
    match config.io_backend {
        IoBackend::Portable => Ok((
            Box::new(portable::PortableIo::new(socket, limits)?),
            BackendKind::Portable,
        )),
        IoBackend::IoUring | IoBackend::Auto => {
            #[cfg(target_os = "linux")]
            let socket = match uring::UringIo::new(socket, limits) {
                Ok(io) => return Ok((Box::new(io), BackendKind::IoUring)),
                Err(e) if config.io_backend == IoBackend::IoUring => {
                    return Err(SysError::IoUringUnavailable { reason: e.reason });
                }
                Err(e) => {
                    // One line per process, not one per core.
                    static WARNED: std::sync::atomic::AtomicBool =
                        std::sync::atomic::AtomicBool::new(false);
                    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        tracing::warn!(
                            core,
                            reason = %e.reason,
                            "io_uring unavailable, using the portable UDP backend (gateway.io_backend = \"auto\")"
                        );
                    } else {
                        tracing::debug!(core, reason = %e.reason, "io_uring unavailable");
                    }
                    e.socket
                }
            };
            #[cfg(not(target_os = "linux"))]
            if config.io_backend == IoBackend::IoUring {
                return Err(SysError::IoUringUnavailable {
                    reason: "io_uring exists only on Linux".into(),
                });
            }
            Ok((
                Box::new(portable::PortableIo::new(socket, limits)?),
                BackendKind::Portable,
            ))
        }
    }
}
