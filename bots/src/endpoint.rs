//! The bots' QUIC endpoints: quinn's, on a socket that receives one datagram
//! per batch slot, so that a process can host thousands of them, swarm
//! after swarm.
//!
//! **Why.** A quinn endpoint allocates its receive buffer zeroed when it is
//! made: `max_udp_payload_size` (1472) × the socket's
//! `max_receive_segments()` × `BATCH_SIZE` (32 datagrams per `recvmmsg`).
//! quinn-udp turns the kernel's UDP GRO on and then reports 64 segments, the
//! most the kernel coalesces into one receive, so the buffer is 3 MiB. A
//! game client has one endpoint and never notices. A bot swarm has one per
//! bot (its own socket, so the server sees one 4-tuple per bot), and glibc
//! makes it worse than 3 MiB × bots suggests: the first swarm's buffers come
//! from fresh `mmap` pages that stay untouched, but glibc raises its mmap
//! threshold to the size of every mapped block freed, so the next swarm's
//! buffers come from the heap and `calloc` clears recycled heap memory,
//! making every page resident. Three 1000-bot swarms in one process held
//! 3 GB; 10 000 bots were killed by the OOM killer at 24 GB.
//!
//! **What.** [`bind`] makes the endpoint as `quinn::Endpoint::client` does,
//! except that its socket is wrapped in `OneSegmentSocket`, which
//! delegates everything to quinn's tokio socket but reports
//! `max_receive_segments() == 1`, and that the socket's UDP_GRO is switched
//! back off after quinn-udp switched it on, so the kernel never delivers a
//! coalesced train larger than a slot (it would be truncated). The buffer is
//! 1472 × 32 = 46 KiB ([`RECEIVE_BUFFER_BYTES`]), below glibc's mmap
//! threshold whatever it has grown to, and recycled between swarms like any
//! small allocation. Receives still batch: quinn-udp's `recvmmsg` takes up
//! to 32 datagrams per call; only the kernel's coalescing of one flow's
//! back-to-back segments is given up, which a bot receiving a game's
//! message rate does not need.
//!
//! **Measured** with `bots/tests/endpoint_rss.rs` (its doc has the
//! commands): three successive swarms of 1000 endpoints in one process, each
//! connecting to a loopback responder whose Version Negotiation answer it
//! receives, memory while the swarm is up, above the process's start (debug
//! build, glibc 2.36, three runs). quinn's default endpoints, which is what
//! the bots had without the old allocator setting: 2.9 GiB of address space
//! in every swarm, RSS 48, 192, then 2796–2916 MiB. These: 64 MiB of
//! address space, RSS 60, 91, 92 MiB.
//!
//! No `unsafe`: the socket option goes through nix's `setsockopt`, and the
//! wrapper is plain delegation. Off Linux there is no UDP_GRO and [`bind`]
//! returns quinn's default endpoint.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, EndpointConfig, Runtime, UdpPoller};
use socket2::{Domain, Protocol, Socket, Type};

/// Datagrams per receive batch: quinn's `BATCH_SIZE` on Linux.
pub const RECEIVE_BATCH_DATAGRAMS: usize = quinn::udp::BATCH_SIZE;
/// An endpoint's receive buffer from [`bind`]: quinn's default
/// `max_udp_payload_size` (Ethernet's 1500 less IP and UDP headers) per
/// batch slot.
pub const RECEIVE_BUFFER_BYTES: usize = 1472 * RECEIVE_BATCH_DATAGRAMS;

/// A client endpoint on `addr` (port 0 for an ephemeral one) whose receive
/// buffer is [`RECEIVE_BUFFER_BYTES`]. An IPv6 address is made dual-stack
/// where the system allows, as `quinn::Endpoint::client` does. Must be
/// called within a tokio runtime.
pub fn bind(addr: SocketAddr) -> io::Result<quinn::Endpoint> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // As quinn: a socket that stays IPv6-only still works for IPv6.
        let _ = socket.set_only_v6(false);
    }
    socket.bind(&addr.into())?;
    let runtime = quinn::default_runtime()
        .ok_or_else(|| io::Error::other("no async runtime found (bots run on tokio)"))?;
    let socket = one_segment_socket(socket.into(), runtime.as_ref())?;
    quinn::Endpoint::new_with_abstract_socket(EndpointConfig::default(), None, socket, runtime)
}

/// A quinn socket that receives one datagram per slot: quinn's own, told
/// to report a single receive segment. Only valid on a socket whose kernel
/// GRO is off ([`one_segment_socket`] makes sure).
#[derive(Debug)]
struct OneSegmentSocket {
    inner: Arc<dyn AsyncUdpSocket>,
}

impl AsyncUdpSocket for OneSegmentSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        self.inner.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        self.inner.try_send(transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_recv(cx, bufs, meta)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.inner.max_transmit_segments()
    }

    /// One: what sizes quinn's receive buffer to one datagram per slot.
    fn max_receive_segments(&self) -> usize {
        1
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}

/// Wraps `socket` with `runtime` as quinn does, then turns the kernel's GRO
/// back off and reports one receive segment; where GRO cannot be turned off
/// (not Linux), quinn's socket as it is.
fn one_segment_socket(
    socket: std::net::UdpSocket,
    runtime: &dyn Runtime,
) -> io::Result<Arc<dyn AsyncUdpSocket>> {
    // The same kernel socket, for the option: quinn's wrapper keeps no handle
    // we could reach.
    let handle = socket.try_clone()?;
    let inner = runtime.wrap_udp_socket(socket)?;
    if gro::switch_off(&handle)? {
        Ok(Arc::new(OneSegmentSocket { inner }))
    } else {
        Ok(inner)
    }
}

#[cfg(target_os = "linux")]
mod gro {
    use nix::errno::Errno;
    use nix::sys::socket::{setsockopt, sockopt};

    /// Turns UDP_GRO off; true if the socket now delivers one datagram per
    /// receive. A kernel without the option (before 5.0) never coalesces.
    pub fn switch_off(socket: &std::net::UdpSocket) -> std::io::Result<bool> {
        match setsockopt(socket, sockopt::UdpGroSegment, &false) {
            Ok(()) | Err(Errno::ENOPROTOOPT) => Ok(true),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the kernel would coalesce receives on `socket`.
    #[cfg(test)]
    pub fn is_on(socket: &std::net::UdpSocket) -> bool {
        nix::sys::socket::getsockopt(socket, sockopt::UdpGroSegment).unwrap_or(false)
    }
}

#[cfg(not(target_os = "linux"))]
mod gro {
    /// No UDP_GRO to turn off: keep quinn's socket as it is.
    pub fn switch_off(_socket: &std::net::UdpSocket) -> std::io::Result<bool> {
        Ok(false)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::net::{Ipv4Addr, UdpSocket};

    use super::*;

    #[tokio::test]
    async fn the_wrapped_socket_reports_one_segment_and_the_kernel_gro_is_off() {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("a loopback port");
        let handle = socket.try_clone().expect("a second handle");
        let runtime = quinn::default_runtime().expect("inside tokio");
        let wrapped = one_segment_socket(socket, runtime.as_ref()).expect("wrapped");
        assert_eq!(wrapped.max_receive_segments(), 1);
        assert!(!gro::is_on(&handle), "UDP_GRO must be off");
        // quinn's own wrapper turns it on (where the kernel has it): that is
        // what this module undoes.
        let plain = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("a loopback port");
        let plain_handle = plain.try_clone().expect("a second handle");
        let quinns = runtime.wrap_udp_socket(plain).expect("wrapped");
        assert_eq!(gro::is_on(&plain_handle), quinns.max_receive_segments() > 1);
    }

    #[tokio::test]
    async fn bind_gives_an_endpoint_on_an_ephemeral_port() {
        let endpoint = bind((Ipv4Addr::LOCALHOST, 0).into()).expect("an endpoint");
        let addr = endpoint.local_addr().expect("bound");
        assert_ne!(addr.port(), 0);
        let v6 = bind((std::net::Ipv6Addr::UNSPECIFIED, 0).into());
        // A host without IPv6 may refuse `[::]`; one with it gets a port.
        if let Ok(v6) = v6 {
            assert_ne!(v6.local_addr().expect("bound").port(), 0);
        }
    }
}
