//! UDP sockets: one per gateway core, all in one `SO_REUSEPORT` group, so the
//! kernel spreads flows across cores by a hash of the 4-tuple.
//!
//! Each socket is non-blocking, asks for the configured buffer sizes (and
//! reports what the kernel granted), and turns on the per-datagram metadata
//! QUIC wants: the local destination address (`IP_PKTINFO` /
//! `IPV6_RECVPKTINFO`), the ECN bits (`IP_RECVTOS` / `IPV6_RECVTCLASS`), GRO
//! (`UDP_GRO`), and no IP fragmentation (QUIC does its own path MTU).

use std::io;
use std::mem::size_of;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};

use lanegate_common::config::GatewayConfig;
use socket2::{Domain, Protocol, Socket, Type};

use super::SysError;

/// What to ask of each socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketOptions {
    /// `SO_RCVBUF`, in bytes.
    pub recv_buffer_bytes: usize,
    /// `SO_SNDBUF`, in bytes.
    pub send_buffer_bytes: usize,
}

impl SocketOptions {
    /// `gateway.socket_recv_buffer_bytes` and `socket_send_buffer_bytes`.
    pub fn from_config(config: &GatewayConfig) -> Self {
        Self {
            recv_buffer_bytes: config.socket_recv_buffer_bytes,
            send_buffer_bytes: config.socket_send_buffer_bytes,
        }
    }
}

/// A socket buffer size: what we asked for and what the kernel gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferGrant {
    /// The configured size, in bytes.
    pub requested_bytes: usize,
    /// The size the kernel granted, in the same units as the request (Linux
    /// reports double the usable size to account for its bookkeeping; this
    /// is halved back).
    pub granted_bytes: usize,
}

impl BufferGrant {
    /// Whether the kernel gave less than asked (`net.core.rmem_max` /
    /// `wmem_max` too low).
    pub fn is_clamped(&self) -> bool {
        self.granted_bytes < self.requested_bytes
    }
}

/// One bound, configured socket, ready for a backend.
#[derive(Debug)]
pub struct BoundSocket {
    /// The socket (non-blocking).
    pub socket: UdpSocket,
    /// Where it is bound (with the port the kernel chose, if 0 was asked).
    pub local_addr: SocketAddr,
    /// Receive buffer size.
    pub recv_buffer: BufferGrant,
    /// Send buffer size.
    pub send_buffer: BufferGrant,
    /// Whether `UDP_GRO` is on (received datagrams may be coalesced).
    pub gro: bool,
    /// Most segments per GSO send (1: the kernel has no `UDP_SEGMENT`).
    pub max_gso_segments: usize,
    /// The socket's inode, to read its kernel drops by
    /// ([`crate::drops::SocketDrops`]); `None` without `/proc`.
    pub inode: Option<u64>,
}

impl BoundSocket {
    /// Logs one warning per clamped buffer, pointing at the sysctl to raise.
    pub fn warn_if_clamped(&self, core: usize) {
        for (grant, which, sysctl) in [
            (self.recv_buffer, "receive", "net.core.rmem_max"),
            (self.send_buffer, "send", "net.core.wmem_max"),
        ] {
            if grant.is_clamped() {
                tracing::warn!(
                    core,
                    requested_bytes = grant.requested_bytes,
                    granted_bytes = grant.granted_bytes,
                    "UDP {which} buffer clamped by the kernel; raise {sysctl} (see tuning/)"
                );
            }
        }
    }
}

/// Most segments in one GSO send: the kernel's `UDP_MAX_SEGMENTS`.
const GSO_SEGMENTS_MAX: usize = 64;

/// Binds one socket on `addr` in an `SO_REUSEPORT` group.
pub fn bind_udp(addr: SocketAddr, opts: &SocketOptions) -> Result<BoundSocket, SysError> {
    let err = |what| move |source| SysError::Socket { addr, what, source };
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(err("socket"))?;
    socket.set_reuse_port(true).map_err(err("SO_REUSEPORT"))?;
    socket.set_nonblocking(true).map_err(err("O_NONBLOCK"))?;
    // Size the buffers before bind so no datagram lands in a small one.
    socket
        .set_recv_buffer_size(opts.recv_buffer_bytes)
        .map_err(err("SO_RCVBUF"))?;
    socket
        .set_send_buffer_size(opts.send_buffer_bytes)
        .map_err(err("SO_SNDBUF"))?;
    let recv_buffer = BufferGrant {
        requested_bytes: opts.recv_buffer_bytes,
        granted_bytes: granted(socket.recv_buffer_size().map_err(err("SO_RCVBUF"))?),
    };
    let send_buffer = BufferGrant {
        requested_bytes: opts.send_buffer_bytes,
        granted_bytes: granted(socket.send_buffer_size().map_err(err("SO_SNDBUF"))?),
    };
    let fd = socket.as_raw_fd();
    let v4 = addr.is_ipv4();
    let dual_stack = !v4 && !socket.only_v6().map_err(err("IPV6_V6ONLY"))?;
    if v4 || dual_stack {
        best_effort(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1, "IP_PKTINFO");
        best_effort(fd, libc::IPPROTO_IP, libc::IP_RECVTOS, 1, "IP_RECVTOS");
        best_effort(
            fd,
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_PROBE,
            "IP_MTU_DISCOVER",
        );
    }
    if !v4 {
        best_effort(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_RECVPKTINFO,
            1,
            "IPV6_RECVPKTINFO",
        );
        best_effort(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_RECVTCLASS,
            1,
            "IPV6_RECVTCLASS",
        );
        best_effort(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU_DISCOVER,
            libc::IPV6_PMTUDISC_PROBE,
            "IPV6_MTU_DISCOVER",
        );
        best_effort(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_DONTFRAG,
            1,
            "IPV6_DONTFRAG",
        );
    }
    let gro = set_int(fd, libc::SOL_UDP, libc::UDP_GRO, 1).is_ok();
    // Reading UDP_SEGMENT succeeds exactly where the kernel has GSO;
    // setting it would change the default for every send.
    let max_gso_segments = if get_int(fd, libc::SOL_UDP, libc::UDP_SEGMENT).is_ok() {
        GSO_SEGMENTS_MAX
    } else {
        1
    };
    socket.bind(&addr.into()).map_err(err("bind"))?;
    let local_addr = socket
        .local_addr()
        .map_err(err("getsockname"))?
        .as_socket()
        .ok_or_else(|| err("getsockname")(io::ErrorKind::InvalidData.into()))?;
    let socket: UdpSocket = socket.into();
    let inode = crate::drops::socket_inode(&socket);
    Ok(BoundSocket {
        socket,
        local_addr,
        recv_buffer,
        send_buffer,
        gro,
        max_gso_segments,
        inode,
    })
}

/// Binds `count` sockets on `addr` in one `SO_REUSEPORT` group, one per
/// gateway core. With port 0 the first socket's port is used for the rest.
pub fn bind_group(
    addr: SocketAddr,
    count: usize,
    opts: &SocketOptions,
) -> Result<Vec<BoundSocket>, SysError> {
    let mut sockets = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count {
        let socket = bind_udp(addr, opts)?;
        addr.set_port(socket.local_addr.port());
        sockets.push(socket);
    }
    Ok(sockets)
}

/// Linux reports twice the size it was asked for (the kernel's
/// bookkeeping); halve it so it compares with the request.
fn granted(reported: usize) -> usize {
    if cfg!(target_os = "linux") {
        reported / 2
    } else {
        reported
    }
}

fn best_effort(fd: RawFd, level: i32, name: i32, value: i32, what: &'static str) {
    if let Err(e) = set_int(fd, level, name, value) {
        tracing::debug!(option = what, error = %e, "UDP socket option unavailable");
    }
}

// A c_int is 4 bytes; socklen_t is 32 bits.
#[allow(clippy::cast_possible_truncation)]
const INT_LEN: libc::socklen_t = size_of::<libc::c_int>() as libc::socklen_t;

pub(crate) fn set_int(fd: RawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: `value` is a live c_int on the stack and INT_LEN is its size;
    // the kernel only reads that many bytes. A bad `fd` yields EBADF.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const value).cast::<libc::c_void>(),
            INT_LEN,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

pub(crate) fn get_int(fd: RawFd, level: i32, name: i32) -> io::Result<i32> {
    let mut value: libc::c_int = 0;
    let mut len = INT_LEN;
    // SAFETY: `value` and `len` are live locals; `len` tells the kernel it
    // may write at most a c_int into `value`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&raw mut value).cast::<libc::c_void>(),
            &raw mut len,
        )
    };
    if rc == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}
