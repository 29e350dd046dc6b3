//! Connection ids that name the gateway core owning the connection.
//!
//! Every gateway core runs its own `quinn_proto::Endpoint` behind one
//! `SO_REUSEPORT` group. The kernel picks a socket by the 4-tuple, so after a
//! NAT rebinding a connection's packets can land on another core. The
//! connection id is the only thing that survives the address change, so the
//! ids a core issues carry its index: byte 0 is the core, bytes
//! 1..[`CID_BYTES`] are random. The IO layer (or a BPF steering program)
//! reads [`owner_of`] on short-header packets and hands them to that core.
//!
//! The core byte is visible to observers, as in QUIC-LB's plaintext mode:
//! it links connections to a core, not connections to each other (the rest
//! of the id is 56 bits of fresh randomness per id).

use std::time::Duration;

use lanegate_common::ids::CoreId;
use quinn_proto::{ConnectionId, ConnectionIdGenerator, InvalidCid};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

/// Length of every connection id a gateway core issues, in bytes: one core
/// byte and 7 random bytes (56 bits: collisions within one core's few
/// thousand live ids are negligible).
pub const CID_BYTES: usize = 8;

/// Most gateway cores connection ids can name (one byte).
pub const CORES_MAX: usize = 256;

/// Issues [`CID_BYTES`]-byte ids whose first byte is the owning core.
#[derive(Debug)]
pub struct CoreCidGenerator {
    core: u8,
    rng: StdRng,
    lifetime: Option<Duration>,
}

impl CoreCidGenerator {
    /// A generator for `core`, seeded from the OS; `None` if the core index
    /// does not fit one byte (at most [`CORES_MAX`] cores).
    pub fn new(core: CoreId) -> Option<Self> {
        Self::with_rng(core, StdRng::from_os_rng())
    }

    /// A generator with a fixed seed, for deterministic tests.
    pub fn seeded(core: CoreId, seed: u64) -> Option<Self> {
        Self::with_rng(core, StdRng::seed_from_u64(seed))
    }

    fn with_rng(core: CoreId, rng: StdRng) -> Option<Self> {
        let core = u8::try_from(core.0).ok()?;
        Some(Self {
            core,
            rng,
            lifetime: None,
        })
    }
}

impl ConnectionIdGenerator for CoreCidGenerator {
    fn generate_cid(&mut self) -> ConnectionId {
        let mut bytes = [0u8; CID_BYTES];
        bytes[0] = self.core;
        self.rng.fill_bytes(&mut bytes[1..]);
        ConnectionId::new(&bytes)
    }

    fn validate(&self, cid: &ConnectionId) -> Result<(), InvalidCid> {
        match owner_of(cid) {
            Some(core) if core.0 == u16::from(self.core) => Ok(()),
            _ => Err(InvalidCid),
        }
    }

    fn cid_len(&self) -> usize {
        CID_BYTES
    }

    fn cid_lifetime(&self) -> Option<Duration> {
        self.lifetime
    }
}

/// The core that issued `cid`, if it has the gateway's id length.
///
/// Only meaningful for ids the gateway issued (short-header packets and the
/// destination id of handshake packets after the first flight): a client's
/// first Initial carries an id the client made up, which any core may take.
pub fn owner_of(cid: &[u8]) -> Option<CoreId> {
    match cid {
        [core, ..] if cid.len() == CID_BYTES => Some(CoreId(u16::from(*core))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_their_core_and_have_fixed_length() {
        let mut g = CoreCidGenerator::seeded(CoreId(3), 7).unwrap();
        for _ in 0..100 {
            let cid = g.generate_cid();
            assert_eq!(cid.len(), CID_BYTES);
            assert_eq!(owner_of(&cid), Some(CoreId(3)));
            assert!(g.validate(&cid).is_ok());
        }
        assert_eq!(g.cid_len(), CID_BYTES);
    }

    #[test]
    fn ids_are_random_after_the_core_byte() {
        let mut g = CoreCidGenerator::seeded(CoreId(0), 1).unwrap();
        let a = g.generate_cid();
        let b = g.generate_cid();
        assert_ne!(a[1..], b[1..]);
    }

    #[test]
    fn other_cores_and_lengths_are_not_ours() {
        let g = CoreCidGenerator::seeded(CoreId(1), 1).unwrap();
        let mut other = CoreCidGenerator::seeded(CoreId(2), 1).unwrap();
        assert!(g.validate(&other.generate_cid()).is_err());
        assert_eq!(owner_of(&[1, 2, 3]), None);
        assert_eq!(owner_of(&[]), None);
        assert_eq!(owner_of(&[9; CID_BYTES]), Some(CoreId(9)));
    }

    #[test]
    fn cores_beyond_one_byte_are_refused() {
        assert!(CoreCidGenerator::seeded(CoreId(255), 0).is_some());
        assert!(CoreCidGenerator::seeded(CoreId(256), 0).is_none());
    }
}
