//! Kernel receive drops of each core's socket, read from `/proc/net/udp`
//! and `/proc/net/udp6` off the datapath.
//!
//! A datagram the kernel drops because the socket's receive buffer is full
//! never reaches the engine, so only the kernel can count it: the `drops`
//! column of its UDP table, per socket, found by the socket's inode. Reading
//! that table (rather than asking for `SO_RXQ_OVFL` on every receive) costs
//! the datapath nothing and works for both backends; the metrics thread
//! reads it once per scrape. The table is per network namespace, and the
//! process reads its own. Off Linux, or where `/proc` is not mounted, there
//! is no figure (`None`), never a wrong one.

use std::net::UdpSocket;
use std::os::fd::AsRawFd;

/// The inodes of a set of sockets, to read their drop counts by.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SocketDrops {
    inodes: Vec<Option<u64>>,
}

impl SocketDrops {
    /// Drop counters for sockets with these inodes ([`socket_inode`]), in
    /// order.
    pub fn new(inodes: Vec<Option<u64>>) -> Self {
        Self { inodes }
    }

    /// Each socket's drops since it was created, in order; `None` where the
    /// inode is unknown or not in the tables.
    pub fn read(&self) -> Vec<Option<u64>> {
        if self.inodes.iter().all(Option::is_none) {
            return vec![None; self.inodes.len()];
        }
        let tables: Vec<String> = ["/proc/net/udp", "/proc/net/udp6"]
            .iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .collect();
        self.inodes
            .iter()
            .map(|inode| {
                let inode = (*inode)?;
                tables.iter().find_map(|t| drops_of(t, inode))
            })
            .collect()
    }
}

/// The inode of `socket`, as `/proc/net/udp` names it: the target of
/// `/proc/self/fd/N` reads `socket:[INODE]`.
pub fn socket_inode(socket: &UdpSocket) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", socket.as_raw_fd())).ok()?;
    let link = link.to_str()?;
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The `drops` column of the socket with `inode` in a `/proc/net/udp`
/// (or `udp6`) table; `None` if it is not there or the line is malformed.
pub fn drops_of(table: &str, inode: u64) -> Option<u64> {
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
    const INODE: usize = 9;
    const DROPS: usize = 12;
    table.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace();
        let this: u64 = fields.nth(INODE)?.parse().ok()?;
        if this != inode {
            return None;
        }
        fields.nth(DROPS - INODE - 1)?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops             
  283: 0100007F:1151 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 4242 2 0000000000000000 0          
  900: 00000000:14E9 00000000:0000 07 00000000:00034000 00:00000000 00000000  1000        0 777 2 0000000000000000 1931       
";

    #[test]
    fn drops_are_read_by_inode() {
        assert_eq!(drops_of(TABLE, 777), Some(1931));
        assert_eq!(drops_of(TABLE, 4242), Some(0));
        assert_eq!(drops_of(TABLE, 5), None);
        assert_eq!(drops_of("", 777), None);
        assert_eq!(drops_of("header\n 1: short line 777", 777), None);
    }

    #[test]
    fn a_bound_socket_is_found_in_the_kernel_table() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let Some(inode) = socket_inode(&socket) else {
            // No /proc here: nothing to check.
            return;
        };
        let drops = SocketDrops::new(vec![Some(inode), None]);
        assert_eq!(drops.read(), vec![Some(0), None]);
    }

    #[test]
    fn a_full_receive_buffer_shows_as_drops() {
        let rx = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        rx.set_recv_buffer_size(1).unwrap();
        rx.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        let rx: UdpSocket = rx.into();
        let Some(inode) = socket_inode(&rx) else {
            return;
        };
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        // The kernel's minimum buffer holds a few of these; the rest drop.
        for _ in 0..200 {
            let _ = tx.send_to(&[0u8; 1200], to);
        }
        let drops = SocketDrops::new(vec![Some(inode)]).read();
        assert!(drops[0].is_some_and(|d| d > 0), "{drops:?}");
    }
}
