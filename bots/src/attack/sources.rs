//! The attack's source sockets: many ports and, against a loopback
//! target, many addresses of 127/8, so that the gateway's per-address
//! limits see a crowd and not one abuser.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

/// Kernel receive buffer of a source socket: the attack never reads what
/// the gateway answers (Retry, Version Negotiation, resets), and a small
/// buffer keeps thousands of sockets from pinning kernel memory.
const RECV_BUFFER_BYTES: usize = 16 * 1024;

/// Whether a target can be reached from several local addresses: Linux
/// routes all of 127/8 to `lo`, IPv6 has one loopback address.
pub fn many_addrs_possible(server: SocketAddr) -> bool {
    match server.ip().to_canonical() {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(_) => false,
    }
}

/// The `i`th source address of `addrs`: 127.0.0.1 + i (never past
/// 127.255.255.254), or the unspecified address of the target's family.
pub fn addr(server: SocketAddr, addrs: usize, i: usize) -> IpAddr {
    if addrs > 1 && many_addrs_possible(server) {
        let base = u32::from(Ipv4Addr::new(127, 0, 0, 1));
        let k = u32::try_from(i % addrs).unwrap_or(0) % 0x00ff_fffe;
        IpAddr::V4(Ipv4Addr::from(base + k))
    } else if server.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    }
}

/// `count` sockets on ephemeral ports, spread over `addrs` addresses,
/// each connected to `server` (so a send is one `send(2)` with no route
/// lookup, and an ICMP error shows as a send error).
pub fn bind(server: SocketAddr, count: usize, addrs: usize) -> io::Result<Vec<UdpSocket>> {
    (0..count)
        .map(|i| {
            let domain = socket2::Domain::for_address(server);
            let socket =
                socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
            // Best effort: a kernel that keeps a larger minimum is fine.
            let _ = socket.set_recv_buffer_size(RECV_BUFFER_BYTES);
            socket.bind(&SocketAddr::new(addr(server, addrs, i), 0).into())?;
            socket.connect(&server.into())?;
            Ok(socket.into())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_targets_get_many_addresses_others_one() {
        let lo: SocketAddr = "127.0.0.1:4433".parse().unwrap();
        assert_eq!(addr(lo, 3, 0), IpAddr::from([127, 0, 0, 1]));
        assert_eq!(addr(lo, 3, 2), IpAddr::from([127, 0, 0, 3]));
        assert_eq!(addr(lo, 3, 3), IpAddr::from([127, 0, 0, 1]));
        assert_eq!(addr(lo, 300, 299), IpAddr::from([127, 0, 1, 44]));
        let remote: SocketAddr = "192.0.2.1:4433".parse().unwrap();
        assert!(addr(remote, 3, 2).is_unspecified());
        assert!(!many_addrs_possible("[::1]:1".parse().unwrap()));
    }

    #[test]
    fn sockets_bind_on_their_addresses_and_reach_the_target() {
        let target = UdpSocket::bind("127.0.0.1:0").unwrap();
        let server = target.local_addr().unwrap();
        let sockets = bind(server, 4, 2).unwrap();
        let ips: Vec<IpAddr> = sockets
            .iter()
            .map(|s| s.local_addr().unwrap().ip())
            .collect();
        assert_eq!(ips[1], IpAddr::from([127, 0, 0, 2]));
        sockets[1].send(b"x").unwrap();
        let mut buf = [0u8; 4];
        let (n, from) = target.recv_from(&mut buf).unwrap();
        assert_eq!((n, from.ip()), (1, ips[1]));
    }
}
