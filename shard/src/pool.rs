//! Per-core payload buffer pools with a return path.
//!
//! Payloads longer than `INLINE_PAYLOAD_MAX` travel in a [`PoolBuf`]. Each
//! producer thread (a gateway core for inbound traffic, a shard for
//! outbound) owns one [`BufPool`], filled once at start with buffers of the
//! two sizes its [`BufClasses`] gives (from the configured message limits,
//! so any message the configuration allows fits). Each thread it sends
//! to owns a [`BufReturn`] for it and sends every buffer it is done with back
//! over a dedicated SPSC return ring. A return ring has a slot for every
//! buffer of the pool, so giving a buffer back never fails, whichever
//! consumer ends up holding the buffers (a zone move carries held buffers
//! from one shard to another). The producer reclaims returned buffers only
//! when its free list runs dry.
//!
//! An empty pool is a signal like a full ring: the send is refused and
//! counted, nothing allocates.

use lanegate_common::lanes::Lane;
use lanegate_common::link::{BufClass, BufClasses, InlinePayload, Payload, PoolBuf};

use crate::ring::{RingEntry, RingError, RingRx, RingTx, ring};

/// Builds a pool of `datagram` datagram-size and `stream` stream-size
/// buffers, sized by `classes`, and one return path for each of its
/// `consumers`.
pub fn pool(
    classes: BufClasses,
    datagram: usize,
    stream: usize,
    consumers: usize,
) -> Result<(BufPool, Vec<BufReturn>), RingError> {
    let mut returns = Vec::with_capacity(consumers);
    let mut gives = Vec::with_capacity(consumers);
    for _ in 0..consumers {
        let (tx, rx) = ring(datagram + stream + 1, [usize::MAX; Lane::COUNT])?;
        returns.push(rx);
        gives.push(BufReturn { tx, dropped: 0 });
    }
    let pool = BufPool {
        classes,
        datagram: (0..datagram)
            .map(|_| classes.buf(BufClass::Datagram))
            .collect(),
        stream: (0..stream).map(|_| classes.buf(BufClass::Stream)).collect(),
        returns,
        exhausted: 0,
    };
    Ok((pool, gives))
}

/// Why a payload could not be carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// Longer than any buffer class (the configured stream message limit).
    #[error("a {len}-byte payload is larger than any message")]
    TooLarge {
        /// Payload length in bytes.
        len: usize,
    },
    /// Every buffer of the needed class is in flight.
    #[error("no free {class:?} buffer in the pool")]
    Exhausted {
        /// The class that ran out.
        class: BufClass,
    },
}

/// A producer's free buffers.
#[derive(Debug)]
pub struct BufPool {
    classes: BufClasses,
    datagram: Vec<PoolBuf>,
    stream: Vec<PoolBuf>,
    returns: Vec<RingRx<Returned>>,
    exhausted: u64,
}

impl BufPool {
    /// A payload holding a copy of `bytes`: inline if it fits, otherwise in a
    /// pooled buffer.
    pub fn payload(&mut self, bytes: &[u8]) -> Result<Payload, PayloadError> {
        if let Some(inline) = InlinePayload::new(bytes) {
            return Ok(Payload::Inline(inline));
        }
        let class = self
            .classes
            .for_len(bytes.len())
            .ok_or(PayloadError::TooLarge { len: bytes.len() })?;
        let Some(mut buf) = self.take(class) else {
            self.exhausted += 1;
            return Err(PayloadError::Exhausted { class });
        };
        if buf.fill(bytes).is_err() {
            // Cannot happen: the class was chosen to hold `bytes`.
            self.put(buf);
            return Err(PayloadError::TooLarge { len: bytes.len() });
        }
        Ok(Payload::Pooled(buf))
    }

    /// Puts back the buffer of a payload that never left (its push was
    /// refused, or its send was cancelled).
    pub fn recycle(&mut self, payload: Payload) {
        if let Some(buf) = payload.into_pooled() {
            self.put(buf);
        }
    }

    /// What a buffer of each class holds.
    pub fn classes(&self) -> BufClasses {
        self.classes
    }

    /// Free buffers of each class (datagram, stream), after reclaiming
    /// returns.
    pub fn free(&mut self) -> (usize, usize) {
        self.reclaim();
        (self.datagram.len(), self.stream.len())
    }

    /// Payloads refused because the pool was empty.
    pub fn exhausted(&self) -> u64 {
        self.exhausted
    }

    fn take(&mut self, class: BufClass) -> Option<PoolBuf> {
        let has = match class {
            BufClass::Datagram => !self.datagram.is_empty(),
            BufClass::Stream => !self.stream.is_empty(),
        };
        if !has {
            self.reclaim();
        }
        match class {
            BufClass::Datagram => self.datagram.pop(),
            BufClass::Stream => self.stream.pop(),
        }
    }

    fn reclaim(&mut self) {
        for i in 0..self.returns.len() {
            while let Some(Returned(buf)) = self.returns[i].pop() {
                self.put(buf);
            }
        }
    }

    fn put(&mut self, buf: PoolBuf) {
        // The free lists were allocated with the pool's full size, and a
        // pool only ever gets its own buffers back, so this never grows.
        match buf.class() {
            BufClass::Datagram => self.datagram.push(buf),
            BufClass::Stream => self.stream.push(buf),
        }
    }
}

/// A consumer's way to give buffers back to one producer's pool.
#[derive(Debug)]
pub struct BufReturn {
    tx: RingTx<Returned>,
    dropped: u64,
}

impl BufReturn {
    /// Gives the payload's buffer (if pooled) back to its pool.
    pub fn give_back(&mut self, payload: Payload) {
        if let Some(buf) = payload.into_pooled()
            && self.tx.push(Returned(buf)).is_err()
        {
            // Only possible if buffers of another pool were returned here:
            // the buffer is freed and the pool has one fewer. Counted.
            self.dropped += 1;
        }
    }

    /// Buffers that could not be returned (see [`BufReturn::give_back`]).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// A buffer on its way back; a control entry as far as the ring goes.
#[derive(Debug)]
struct Returned(PoolBuf);

impl RingEntry for Returned {
    fn lane(&self) -> Option<Lane> {
        None
    }
}

#[cfg(test)]
mod tests {
    use lanegate_common::config::GatewayConfig;
    use lanegate_common::link::INLINE_PAYLOAD_MAX;

    use super::*;

    fn classes() -> BufClasses {
        BufClasses::from_config(&GatewayConfig::default())
    }

    #[test]
    fn small_payloads_go_inline() {
        let (mut pool, _ret) = pool(classes(), 0, 0, 1).unwrap();
        let p = pool.payload(&[1; INLINE_PAYLOAD_MAX]).unwrap();
        assert!(matches!(p, Payload::Inline(_)));
    }

    #[test]
    fn buffers_come_back_over_any_return_ring() {
        let datagram_max = classes().datagram_bytes;
        let stream_max = classes().stream_bytes;
        let (mut pool, mut rets) = pool(classes(), 2, 1, 2).unwrap();
        let a = pool.payload(&[1; INLINE_PAYLOAD_MAX + 1]).unwrap();
        let b = pool.payload(&vec![2; datagram_max]).unwrap();
        assert_eq!(
            pool.payload(&[3; 200]),
            Err(PayloadError::Exhausted {
                class: BufClass::Datagram
            })
        );
        assert_eq!(pool.exhausted(), 1);
        let c = pool.payload(&vec![4; stream_max]).unwrap();
        assert_eq!(c.len(), stream_max);
        assert_eq!(
            pool.payload(&vec![0; stream_max + 1]),
            Err(PayloadError::TooLarge {
                len: stream_max + 1
            })
        );
        // Consumers (other threads, in real use) give them back; both went
        // to the second consumer, which has room for the whole pool.
        rets[1].give_back(a);
        rets[1].give_back(b);
        pool.recycle(c);
        assert_eq!(pool.free(), (2, 1));
        let d = pool.payload(&[5; 300]).unwrap();
        assert_eq!(d.as_slice(), &[5; 300][..]);
        assert_eq!(rets[1].dropped(), 0);
    }

    #[test]
    fn buffer_sizes_follow_the_message_limits() {
        let gateway = GatewayConfig {
            stream_message_bytes_max: 1 << 20,
            ..GatewayConfig::default()
        };
        let (mut pool, _ret) = pool(BufClasses::from_config(&gateway), 1, 1, 1).unwrap();
        let big = pool.payload(&vec![6; (1 << 20) - 2]).unwrap();
        assert_eq!(big.len(), (1 << 20) - 2);
    }
}
