//! The portable backend: quinn-udp's `UdpSocketState` (`recvmmsg` with GRO,
//! ECN and `IP_PKTINFO`; `sendmsg` with GSO), and `poll(2)` to wait.

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use quinn_udp::{BATCH_SIZE, EcnCodepoint, RecvMeta, UdpSockRef, UdpSocketState};

use super::{
    BackendKind, BoundSocket, Ecn, IoLimits, Received, RecvBatch, SysError, Transmit, UdpIo, WakeFd,
};

/// quinn-udp on a [`BoundSocket`].
#[derive(Debug)]
pub struct PortableIo {
    socket: UdpSocket,
    state: UdpSocketState,
    local_addr: SocketAddr,
    /// Bytes one receive may need (a full GRO train).
    slot_bytes: usize,
    metas: [RecvMeta; BATCH_SIZE],
    /// Also polled while waiting ([`UdpIo::watch`]).
    wake: Option<Arc<WakeFd>>,
}

impl PortableIo {
    /// Sets quinn-udp up on `socket`.
    pub fn new(socket: BoundSocket, limits: &IoLimits) -> Result<Self, SysError> {
        let state =
            UdpSocketState::new(UdpSockRef::from(&socket.socket)).map_err(SysError::Portable)?;
        Ok(Self {
            local_addr: socket.local_addr,
            socket: socket.socket,
            state,
            slot_bytes: limits.datagram_bytes_max,
            metas: [RecvMeta::default(); BATCH_SIZE],
            wake: None,
        })
    }

    /// One `recvmmsg` into the free part of `out`.
    fn recv_once(&mut self, out: &mut RecvBatch) -> io::Result<usize> {
        let slot = self.slot_bytes;
        let room = out.metas.len() - out.len;
        let n = {
            let spare = out.spare();
            let k = BATCH_SIZE.min(spare.len() / slot).min(room);
            let mut chunks = spare.chunks_mut(slot);
            let mut iovs: [IoSliceMut<'_>; BATCH_SIZE] =
                std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or_default()));
            self.state.recv(
                UdpSockRef::from(&self.socket),
                &mut iovs[..k],
                &mut self.metas[..k],
            )?
        };
        for (i, m) in self.metas[..n].iter().enumerate() {
            out.commit(
                i * slot,
                Received {
                    remote: m.addr,
                    local_ip: m.dst_ip,
                    ecn: m.ecn.and_then(from_quinn),
                    segment_size: m.stride,
                    // quinn-udp does not ask for receive timestamps.
                    received: None,
                    len: m.len,
                },
            );
        }
        out.advance(n * slot);
        Ok(n)
    }
}

impl UdpIo for PortableIo {
    fn recv_batch(&mut self, out: &mut RecvBatch, timeout: Option<Duration>) -> io::Result<usize> {
        out.reset_for(self.slot_bytes)?;
        let mut waited = false;
        while out.has_room(self.slot_bytes) {
            match self.recv_once(out) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !out.is_empty() || waited || timeout == Some(Duration::ZERO) {
                        break;
                    }
                    if !wait_readable(&self.socket, self.wake.as_deref(), timeout)? {
                        break;
                    }
                    waited = true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => break,
                Err(e) => return Err(e),
            }
        }
        Ok(out.len())
    }

    fn send_batch(&mut self, txs: &[Transmit<'_>]) -> io::Result<usize> {
        for (i, tx) in txs.iter().enumerate() {
            let transmit = quinn_udp::Transmit {
                destination: tx.destination,
                ecn: tx.ecn.map(to_quinn),
                contents: tx.contents,
                segment_size: tx.segment_size,
                src_ip: tx.src_ip,
            };
            // `send` logs and swallows network errors; only a full socket
            // buffer comes back.
            match self.state.send(UdpSockRef::from(&self.socket), &transmit) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(i),
                Err(e) => return Err(e),
            }
        }
        Ok(txs.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    fn max_gso_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Portable
    }

    fn watch(&mut self, wake: Arc<WakeFd>) -> io::Result<()> {
        self.wake = Some(wake);
        Ok(())
    }
}

fn from_quinn(ecn: EcnCodepoint) -> Option<Ecn> {
    Some(match ecn {
        EcnCodepoint::Ect0 => Ecn::Ect0,
        EcnCodepoint::Ect1 => Ecn::Ect1,
        EcnCodepoint::Ce => Ecn::Ce,
    })
}

fn to_quinn(ecn: Ecn) -> EcnCodepoint {
    match ecn {
        Ecn::Ect0 => EcnCodepoint::Ect0,
        Ecn::Ect1 => EcnCodepoint::Ect1,
        Ecn::Ce => EcnCodepoint::Ce,
    }
}

/// Waits until `socket` is readable or `timeout` passes; `false` on timeout
/// or a signal.
/// Waits until the socket is readable (`true`), or `wake` was signalled
/// or the timeout passed (`false`); consumes the signal.
fn wait_readable(
    socket: &UdpSocket,
    wake: Option<&WakeFd>,
    timeout: Option<Duration>,
) -> io::Result<bool> {
    let ms = match timeout {
        None => -1,
        Some(d) => i32::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX),
    };
    let pollfd = |fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let mut pfds = [
        pollfd(socket.as_raw_fd()),
        pollfd(wake.map_or(-1, WakeFd::raw_fd)),
    ];
    let count: libc::nfds_t = if wake.is_some() { 2 } else { 1 };
    // SAFETY: `pfds` holds two live pollfds and we pass a count of at most
    // 2; the kernel writes only their `revents`.
    let rc = unsafe { libc::poll(pfds.as_mut_ptr(), count, ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(e)
        };
    }
    if let Some(w) = wake
        && pfds[1].revents & libc::POLLIN != 0
    {
        w.consume();
    }
    Ok(pfds[0].revents != 0)
}
