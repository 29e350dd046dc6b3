//! Socket addresses and control messages as bytes, for the io_uring backend.
//!
//! The kernel writes `sockaddr`s and cmsgs into buffers we lent it; we read
//! them here with bounds-checked byte copies, so no pointer casts and no
//! alignment assumptions are needed (a provided buffer's control area is not
//! aligned). The layout is the Linux ABI: `cmsghdr` is `{ size_t len; int
//! level; int type; }` and each message is padded to `size_t` alignment.

use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::Duration;

use super::Ecn;

/// Size of `cmsghdr`, where a message's data starts.
const HDR: usize = size_of::<libc::cmsghdr>();

/// Rounds up to the alignment Linux pads control messages to.
const fn align(len: usize) -> usize {
    let a = size_of::<usize>();
    (len + a - 1) & !(a - 1)
}

/// Bytes a control message with `data_len` bytes of data takes.
pub(crate) const fn space(data_len: usize) -> usize {
    HDR + align(data_len)
}

/// What the control messages of one received datagram say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RecvInfo {
    pub local_ip: Option<IpAddr>,
    pub ecn: Option<Ecn>,
    /// `UDP_GRO` segment size; 0 when absent.
    pub segment_size: usize,
    /// `SO_RXQ_OVFL`: datagrams the kernel dropped on the socket since it
    /// was made (its receive buffer full); absent until the first drop.
    pub kernel_drops: Option<u32>,
    /// `SO_TIMESTAMPNS`: when the kernel received the datagram, on the
    /// realtime clock, since the Unix epoch.
    pub received: Option<Duration>,
}

/// Reads the control messages we asked for; ignores the rest and stops at
/// the first malformed header.
pub(crate) fn decode(control: &[u8]) -> RecvInfo {
    let mut info = RecvInfo::default();
    let mut off = 0;
    while let Some(hdr) = control.get(off..off + HDR) {
        let (len, level, kind) = header(hdr);
        if len < HDR {
            break;
        }
        let end = off.saturating_add(len).min(control.len());
        let data = &control[off + HDR..end];
        match (level, kind) {
            (libc::IPPROTO_IP, libc::IP_TOS | libc::IP_RECVTOS) => {
                if let Some(&tos) = data.first() {
                    info.ecn = Ecn::from_bits(tos);
                }
            }
            (libc::IPPROTO_IPV6, libc::IPV6_TCLASS) => {
                if let Some(tclass) = read_i32(data) {
                    info.ecn = Ecn::from_bits(u8::try_from(tclass & 0b11).unwrap_or(0));
                }
            }
            (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                // struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }
                if let Some(addr) = data.get(8..12).and_then(|b| <[u8; 4]>::try_from(b).ok()) {
                    info.local_ip = Some(IpAddr::V4(Ipv4Addr::from(addr)));
                }
            }
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                // struct in6_pktinfo { in6_addr addr; unsigned ifindex; }
                if let Some(addr) = data.get(..16).and_then(|b| <[u8; 16]>::try_from(b).ok()) {
                    info.local_ip = Some(IpAddr::V6(Ipv6Addr::from(addr)));
                }
            }
            (libc::SOL_UDP, libc::UDP_GRO) => {
                if let Some(size) = read_i32(data) {
                    info.segment_size = usize::try_from(size).unwrap_or(0);
                }
            }
            (libc::SOL_SOCKET, libc::SO_TIMESTAMPNS) => {
                // struct timespec { time_t tv_sec; long tv_nsec; }: two
                // native words on the 64-bit targets io_uring runs on.
                let word = |at: usize| {
                    data.get(at..at + 8)
                        .and_then(|b| <[u8; 8]>::try_from(b).ok())
                        .map(i64::from_ne_bytes)
                };
                if let (Some(s), Some(ns)) = (word(0), word(8)) {
                    info.received = u64::try_from(s)
                        .ok()
                        .zip(u32::try_from(ns).ok().filter(|&n| n < 1_000_000_000))
                        .map(|(s, ns)| Duration::new(s, ns));
                }
            }
            (libc::SOL_SOCKET, libc::SO_RXQ_OVFL) => {
                info.kernel_drops = data
                    .get(..4)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map(u32::from_ne_bytes);
            }
            _ => {}
        }
        if len >= control.len() - off {
            break;
        }
        off += align(len);
    }
    info
}

fn header(hdr: &[u8]) -> (usize, i32, i32) {
    const W: usize = size_of::<usize>();
    let mut len = [0; W];
    len.copy_from_slice(&hdr[..W]);
    let level = read_i32(&hdr[W..]).unwrap_or(-1);
    let kind = read_i32(&hdr[W + 4..]).unwrap_or(-1);
    (usize::from_ne_bytes(len), level, kind)
}

fn read_i32(data: &[u8]) -> Option<i32> {
    Some(i32::from_ne_bytes(data.get(..4)?.try_into().ok()?))
}

/// Reads a `sockaddr_in` or `sockaddr_in6`.
pub(crate) fn decode_sockaddr(name: &[u8]) -> Option<SocketAddr> {
    let family = i32::from(u16::from_ne_bytes(name.get(..2)?.try_into().ok()?));
    let port = u16::from_be_bytes(name.get(2..4)?.try_into().ok()?);
    match family {
        libc::AF_INET => {
            let ip: [u8; 4] = name.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::V4(SocketAddrV4::new(ip.into(), port)))
        }
        libc::AF_INET6 => {
            let flowinfo = u32::from_ne_bytes(name.get(4..8)?.try_into().ok()?);
            let ip: [u8; 16] = name.get(8..24)?.try_into().ok()?;
            let scope_id = u32::from_ne_bytes(name.get(24..28)?.try_into().ok()?);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip.into(),
                port,
                flowinfo,
                scope_id,
            )))
        }
        _ => None,
    }
}

/// Writes control messages into a zeroed buffer.
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        buf.fill(0);
        Self { buf, len: 0 }
    }

    /// Appends one message; `false` (and nothing written) if it does not fit.
    pub(crate) fn push(&mut self, level: i32, kind: i32, data: &[u8]) -> bool {
        const W: usize = size_of::<usize>();
        let Some(msg) = self.buf.get_mut(self.len..self.len + space(data.len())) else {
            return false;
        };
        msg[..W].copy_from_slice(&(HDR + data.len()).to_ne_bytes());
        msg[W..W + 4].copy_from_slice(&level.to_ne_bytes());
        msg[W + 4..W + 8].copy_from_slice(&kind.to_ne_bytes());
        msg[HDR..HDR + data.len()].copy_from_slice(data);
        self.len += msg.len();
        true
    }

    /// Bytes written, for `msg_controllen`.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// Control messages for one send: ECN, GSO segment size, source address.
/// Returns the length written into `buf` (see [`SEND_CONTROL_BYTES`]).
pub(crate) fn encode_send(
    buf: &mut [u8],
    destination: SocketAddr,
    ecn: Option<Ecn>,
    segment_size: Option<u16>,
    src_ip: Option<IpAddr>,
) -> usize {
    let mut w = Writer::new(buf);
    if let Some(ecn) = ecn {
        let tos = i32::from(ecn.bits());
        if destination.is_ipv4() {
            w.push(libc::IPPROTO_IP, libc::IP_TOS, &tos.to_ne_bytes());
        } else {
            w.push(libc::IPPROTO_IPV6, libc::IPV6_TCLASS, &tos.to_ne_bytes());
        }
    }
    if let Some(size) = segment_size {
        w.push(libc::SOL_UDP, libc::UDP_SEGMENT, &size.to_ne_bytes());
    }
    match src_ip {
        Some(IpAddr::V4(ip)) if destination.is_ipv4() => {
            let mut info = [0u8; 12];
            info[4..8].copy_from_slice(&ip.octets());
            w.push(libc::IPPROTO_IP, libc::IP_PKTINFO, &info);
        }
        Some(ip) if destination.is_ipv6() => {
            let v6 = match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            let mut info = [0u8; 20];
            info[..16].copy_from_slice(&v6.octets());
            w.push(libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &info);
        }
        _ => {}
    }
    w.len()
}

/// Room [`encode_send`] needs at most.
pub(crate) const SEND_CONTROL_BYTES: usize = space(4) + space(2) + space(20);

/// Room for the control messages a receive can carry: pktinfo (the v6 one
/// is the larger), TOS or traffic class, the GRO segment size and the
/// kernel's drop count (`SO_RXQ_OVFL`) and the receive timestamp
/// (`SO_TIMESTAMPNS`), with headroom for one more.
pub(crate) const RECV_CONTROL_BYTES: usize =
    space(20) + space(4) + space(4) + space(4) + space(16) + space(20);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_through_writer() {
        let mut buf = [0u8; SEND_CONTROL_BYTES];
        let dst: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let n = encode_send(
            &mut buf,
            dst,
            Some(Ecn::Ect0),
            Some(1200),
            Some("127.0.0.2".parse().unwrap()),
        );
        assert_eq!(n, space(4) + space(2) + space(12));
        // The reader sees TOS; spec_dst of a sent pktinfo sits where a
        // received one has ifindex/spec_dst, so only check ECN here.
        assert_eq!(decode(&buf[..n]).ecn, Some(Ecn::Ect0));
    }

    #[test]
    fn reads_gro_pktinfo_and_tclass() {
        let mut buf = [0u8; RECV_CONTROL_BYTES];
        let mut w = Writer::new(&mut buf);
        let mut info6 = [0u8; 20];
        info6[15] = 1;
        assert!(w.push(libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &info6));
        assert!(w.push(libc::IPPROTO_IPV6, libc::IPV6_TCLASS, &3i32.to_ne_bytes()));
        assert!(w.push(libc::SOL_UDP, libc::UDP_GRO, &1200i32.to_ne_bytes()));
        assert!(w.push(libc::SOL_SOCKET, libc::SO_RXQ_OVFL, &77u32.to_ne_bytes()));
        let mut ts = [0u8; 16];
        ts[..8].copy_from_slice(&1_700_000_000i64.to_ne_bytes());
        ts[8..].copy_from_slice(&250_000_000i64.to_ne_bytes());
        assert!(w.push(libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &ts));
        let n = w.len();
        let info = decode(&buf[..n]);
        assert_eq!(info.kernel_drops, Some(77));
        assert_eq!(
            info.received,
            Some(Duration::new(1_700_000_000, 250_000_000))
        );
        assert_eq!(info.local_ip, Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(info.ecn, Some(Ecn::Ce));
        assert_eq!(info.segment_size, 1200);
    }

    #[test]
    fn malformed_control_is_ignored() {
        assert_eq!(decode(&[0xff; 7]), RecvInfo::default());
        let mut buf = [0u8; 32];
        buf[0] = 3; // cmsg_len shorter than the header
        assert_eq!(decode(&buf), RecvInfo::default());
        let mut huge = [0u8; 24];
        huge[..8].copy_from_slice(&usize::MAX.to_ne_bytes()[..8]);
        assert_eq!(decode(&huge), RecvInfo::default());
    }

    #[test]
    fn sockaddrs() {
        assert_eq!(decode_sockaddr(&[]), None);
        let mut v4 = [0u8; 16];
        v4[..2].copy_from_slice(&u16::try_from(libc::AF_INET).unwrap().to_ne_bytes());
        v4[2..4].copy_from_slice(&4433u16.to_be_bytes());
        v4[4..8].copy_from_slice(&[10, 0, 0, 1]);
        assert_eq!(decode_sockaddr(&v4), Some("10.0.0.1:4433".parse().unwrap()));
    }
}
