//! Steering: packets that land on the wrong gateway core go to the owner.
//!
//! The kernel spreads packets over the `SO_REUSEPORT` group by 4-tuple, so
//! when a client's address changes (NAT rebinding, Wi-Fi to cellular) its
//! packets may reach a core that does not hold its connection. Every
//! connection id a core issues names the core in byte 0
//! (`engine::cid`), so the receiving core reads the destination id and,
//! when it names another core, copies the packet into that core's ring:
//!
//! - short-header (1-RTT) packets: the id is bytes `1..=8`;
//! - long-header Handshake packets of QUIC v1: the id follows its length
//!   byte (byte 5);
//! - Initial and 0-RTT packets stay where they land: a client's first
//!   Initial carries an id the client made up, and any core may take a new
//!   connection. Retry and version negotiation never come from clients.
//!
//! One lock-free SPSC ring (`ringbuf`) per ordered pair of cores, each slot
//! a fixed-size [`SteeredPacket`], all allocated at start: steering
//! allocates nothing per packet. A full ring or a packet larger than a slot
//! is dropped and counted; QUIC retransmits what matters.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use lanegate_common::wake::Doorbell;

use crate::engine::cid::{CID_BYTES, owner_of};
use lanegate_udp::Ecn;
use ringbuf::traits::{Consumer, Observer as _, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};

/// Largest packet a steering slot holds, in bytes: a full Ethernet MTU of
/// UDP payload, above anything QUIC's path MTU discovery reaches on it.
pub const STEER_PACKET_BYTES_MAX: usize = 1500;

/// QUIC version 1 (RFC 9000).
const QUIC_V1: u32 = 1;
/// Long-header packet type of a v1 Handshake packet.
const LONG_TYPE_HANDSHAKE: u8 = 2;

/// One packet on its way to its owning core.
#[derive(Clone, Copy)]
pub struct SteeredPacket {
    /// The peer's address.
    pub remote: SocketAddr,
    /// The local address it was sent to.
    pub local_ip: Option<IpAddr>,
    /// ECN codepoint of its IP header.
    pub ecn: Option<Ecn>,
    /// When the receiving core's kernel received it (or that core's turn
    /// began): the owner measures the gateway's latency from here.
    pub received_at: Instant,
    len: u16,
    data: [u8; STEER_PACKET_BYTES_MAX],
}

impl SteeredPacket {
    /// The packet's bytes.
    pub fn data(&self) -> &[u8] {
        &self.data[..usize::from(self.len)]
    }
}

/// What a core's steering did, since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SteerCounters {
    /// Packets handed to another core's ring.
    pub out: u64,
    /// Packets taken from other cores' rings.
    pub r#in: u64,
    /// Packets dropped because the owner's ring was full.
    pub full: u64,
    /// Packets dropped because they exceed [`STEER_PACKET_BYTES_MAX`].
    pub oversize: u64,
}

/// One core's ends of the steering mesh.
pub struct SteerEnds {
    core: usize,
    /// Per destination core; `None` for this core.
    to: Vec<Option<HeapProd<SteeredPacket>>>,
    /// From every other core.
    from: Vec<HeapCons<SteeredPacket>>,
    /// Per destination core, its doorbell ([`SteerEnds::set_bells`]) and
    /// whether a packet went to it since the last [`SteerEnds::notify`].
    bells: Vec<(Option<Arc<Doorbell>>, bool)>,
    /// What happened.
    pub counters: SteerCounters,
}

impl std::fmt::Debug for SteerEnds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SteerEnds")
            .field("core", &self.core)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// Every steering ring between `cores` cores, `slots` packets each, as
/// each core's ends in core order.
pub fn mesh(cores: usize, slots: usize) -> Vec<SteerEnds> {
    let mut ends: Vec<SteerEnds> = (0..cores)
        .map(|core| SteerEnds {
            core,
            to: (0..cores).map(|_| None).collect(),
            from: Vec::with_capacity(cores.saturating_sub(1)),
            bells: (0..cores).map(|_| (None, false)).collect(),
            counters: SteerCounters::default(),
        })
        .collect();
    for src in 0..cores {
        for dst in 0..cores {
            if src == dst {
                continue;
            }
            let (tx, rx) = HeapRb::<SteeredPacket>::new(slots.max(1)).split();
            ends[src].to[dst] = Some(tx);
            ends[dst].from.push(rx);
        }
    }
    ends
}

impl SteerEnds {
    /// The core `packet` belongs to, if it is another one than this and
    /// exists; `None` means "handle it here".
    pub fn owner_elsewhere(&self, packet: &[u8]) -> Option<usize> {
        owner(packet).filter(|&o| o != self.core && o < self.to.len())
    }

    /// Copies `packet` into `owner`'s ring (dropped and counted if full).
    pub fn send(
        &mut self,
        owner: usize,
        remote: SocketAddr,
        local_ip: Option<IpAddr>,
        ecn: Option<Ecn>,
        received_at: Instant,
        packet: &[u8],
    ) {
        let Some(Some(tx)) = self.to.get_mut(owner) else {
            return;
        };
        let Ok(len) = u16::try_from(packet.len()) else {
            self.counters.oversize += 1;
            return;
        };
        if packet.len() > STEER_PACKET_BYTES_MAX {
            self.counters.oversize += 1;
            return;
        }
        let mut entry = SteeredPacket {
            remote,
            local_ip,
            ecn,
            received_at,
            len,
            data: [0; STEER_PACKET_BYTES_MAX],
        };
        entry.data[..packet.len()].copy_from_slice(packet);
        match tx.try_push(entry) {
            Ok(()) => {
                self.counters.out += 1;
                if let Some(b) = self.bells.get_mut(owner) {
                    b.1 = true;
                }
            }
            Err(_) => self.counters.full += 1,
        }
    }

    /// The doorbells of every core, in core order: [`SteerEnds::notify`]
    /// rings the owner of a steered packet so an idle owner handles it at
    /// once.
    pub fn set_bells(&mut self, bells: &[Arc<Doorbell>]) {
        for (slot, bell) in self.bells.iter_mut().zip(bells) {
            slot.0 = Some(Arc::clone(bell));
        }
    }

    /// Rings the cores that were sent packets since the last call.
    pub fn notify(&mut self) {
        for (bell, pending) in &mut self.bells {
            if std::mem::take(pending)
                && let Some(bell) = bell
            {
                bell.ring();
            }
        }
    }

    /// Whether other cores steered packets here that wait.
    pub fn has_input(&self) -> bool {
        self.from.iter().any(|rx| !rx.is_empty())
    }

    /// Hands every packet other cores steered here to `handle`, at most
    /// `max` in all (bounded work per turn).
    pub fn drain(&mut self, max: usize, mut handle: impl FnMut(&SteeredPacket)) -> usize {
        let mut taken = 0;
        for rx in &mut self.from {
            while taken < max {
                // Handled in its slot, then released: a `try_pop` would
                // copy the whole 1.5 KB slot out first.
                let Some(packet) = rx.first() else {
                    break;
                };
                handle(packet);
                rx.skip(1);
                taken += 1;
            }
        }
        self.counters.r#in += taken as u64;
        taken
    }
}

/// The core named by `packet`'s destination connection id, for the packets
/// that are steered (see the module doc); `None` for the others.
pub fn owner(packet: &[u8]) -> Option<usize> {
    let first = *packet.first()?;
    let cid = if first & 0x80 == 0 {
        packet.get(1..1 + CID_BYTES)?
    } else {
        let version = u32::from_be_bytes(packet.get(1..5)?.try_into().ok()?);
        if version != QUIC_V1 || (first >> 4) & 0x03 != LONG_TYPE_HANDSHAKE {
            return None;
        }
        let len = usize::from(*packet.get(5)?);
        packet.get(6..6 + len)?
    };
    owner_of(cid).map(|core| usize::from(core.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short(core: u8) -> Vec<u8> {
        let mut p = vec![0x40, core, 1, 2, 3, 4, 5, 6, 7];
        p.extend_from_slice(&[0xaa; 30]);
        p
    }

    fn long(ty: u8, version: u32, cid: &[u8]) -> Vec<u8> {
        let mut p = vec![0xc0 | (ty << 4)];
        p.extend_from_slice(&version.to_be_bytes());
        p.push(u8::try_from(cid.len()).unwrap());
        p.extend_from_slice(cid);
        p.extend_from_slice(&[0; 40]);
        p
    }

    #[test]
    fn short_headers_name_their_core() {
        assert_eq!(owner(&short(3)), Some(3));
        assert_eq!(owner(&short(0)), Some(0));
        // Too short to hold an id.
        assert_eq!(owner(&[0x40, 1, 2]), None);
        assert_eq!(owner(&[]), None);
    }

    #[test]
    fn only_v1_handshake_long_headers_are_steered() {
        let cid = [2u8, 9, 9, 9, 9, 9, 9, 9];
        assert_eq!(owner(&long(LONG_TYPE_HANDSHAKE, QUIC_V1, &cid)), Some(2));
        // Initial, 0-RTT: any core may take them.
        assert_eq!(owner(&long(0, QUIC_V1, &cid)), None);
        assert_eq!(owner(&long(1, QUIC_V1, &cid)), None);
        // Other versions and ids of another length.
        assert_eq!(owner(&long(LONG_TYPE_HANDSHAKE, 0xff00_001d, &cid)), None);
        assert_eq!(owner(&long(LONG_TYPE_HANDSHAKE, QUIC_V1, &cid[..5])), None);
        // Truncated.
        assert_eq!(owner(&long(LONG_TYPE_HANDSHAKE, QUIC_V1, &cid)[..9]), None);
    }

    #[test]
    fn packets_travel_to_their_owner_and_overflow_is_counted() {
        let mut ends = mesh(3, 2);
        let remote: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let p = short(2);
        assert_eq!(ends[0].owner_elsewhere(&p), Some(2));
        assert_eq!(ends[2].owner_elsewhere(&p), None);
        // A core index beyond the mesh stays local.
        assert_eq!(ends[0].owner_elsewhere(&short(7)), None);
        for _ in 0..3 {
            ends[0].send(2, remote, None, Some(Ecn::Ect0), Instant::now(), &p);
        }
        ends[0].send(
            2,
            remote,
            None,
            None,
            Instant::now(),
            &[0x40; STEER_PACKET_BYTES_MAX + 1],
        );
        assert_eq!(
            ends[0].counters,
            SteerCounters {
                out: 2,
                r#in: 0,
                full: 1,
                oversize: 1
            }
        );
        let mut got = Vec::new();
        assert_eq!(
            ends[2].drain(10, |s| got.push((s.data().to_vec(), s.ecn))),
            2
        );
        assert_eq!(got, vec![(p.clone(), Some(Ecn::Ect0)); 2]);
        assert_eq!(ends[1].drain(10, |_| unreachable!()), 0);
    }

    #[test]
    fn a_single_core_has_no_rings() {
        let mut ends = mesh(1, 4);
        assert_eq!(ends[0].owner_elsewhere(&short(0)), None);
        assert_eq!(ends[0].drain(10, |_| unreachable!()), 0);
    }
}
