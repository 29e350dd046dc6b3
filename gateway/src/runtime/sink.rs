//! The engine's [`ShardSink`] over the shard crate's [`GatewayPort`].
//!
//! The port routes by zone, keeps control entries (join, leave) in a
//! backlog when a ring is full, and copies each game payload into its own
//! pool (inline up to 88 bytes, else a pooled buffer the shard gives back).
//! The engine, for its part, fills a [`PoolBuf`] from [`ShardSink::take_buf`]
//! for payloads over 88 bytes before it pushes. Those buffers come from a
//! small stash here, preallocated at start: [`ShardSink::push`] hands the
//! payload's bytes to [`GatewayPort::send`] and puts the buffer straight
//! back into the stash. That costs one extra copy for payloads over 88
//! bytes (at most one datagram or one stream message, as the configured
//! limits size them: the stash's buffers have the port pool's
//! [`BufClasses`]) and no allocation: the engine takes one buffer per
//! message and returns it in the same call, so [`STASH_BUFS`] per class
//! never run dry.
//!
//! Outbound, the port lends each entry to a callback while the engine owns
//! this sink, so the core loop takes the port out ([`PortSink::take_port`])
//! around [`GatewayPort::poll`] and feeds the engine with
//! `Engine::deliver`, then puts it back. Pushes while it is out are
//! refused as a full ring (none happen: delivering never pushes).

use lanegate_common::link::{BufClass, BufClasses, PoolBuf, ToShard};
use lanegate_gateway::engine::{ShardFull, ShardSink};
use lanegate_shard::port::GatewayPort;

/// Buffers of each class in the stash. The engine holds at most one at a
/// time; the second is headroom.
pub const STASH_BUFS: usize = 2;

/// A gateway core's shard sink: its port and the engine's buffer stash.
#[derive(Debug)]
pub struct PortSink {
    port: Option<GatewayPort>,
    classes: BufClasses,
    datagram: Vec<PoolBuf>,
    stream: Vec<PoolBuf>,
    /// Entries refused because the port was out (should stay 0).
    pub port_out: u64,
}

impl PortSink {
    /// A sink over `port`, with its stash allocated in the sizes of the
    /// port's pool.
    pub fn new(port: GatewayPort) -> Self {
        let classes = port.buf_classes();
        let stash = |class| (0..STASH_BUFS).map(|_| classes.buf(class)).collect();
        Self {
            port: Some(port),
            classes,
            datagram: stash(BufClass::Datagram),
            stream: stash(BufClass::Stream),
            port_out: 0,
        }
    }

    /// Takes the port out, to poll it while the engine is borrowed.
    pub fn take_port(&mut self) -> Option<GatewayPort> {
        self.port.take()
    }

    /// Puts the port back after [`PortSink::take_port`].
    pub fn put_port(&mut self, port: GatewayPort) {
        self.port = Some(port);
    }

    /// The port, when it is in.
    pub fn port(&self) -> Option<&GatewayPort> {
        self.port.as_ref()
    }

    /// Rings the doorbells of the shards pushed to since the last call.
    pub fn notify(&mut self) {
        if let Some(port) = self.port.as_mut() {
            port.notify();
        }
    }

    fn stash(&mut self, buf: PoolBuf) {
        let list = match buf.class() {
            BufClass::Datagram => &mut self.datagram,
            BufClass::Stream => &mut self.stream,
        };
        // Never more than were taken: the lists keep their capacity.
        if list.len() < STASH_BUFS {
            list.push(buf);
        }
    }
}

impl ShardSink for PortSink {
    fn push(&mut self, message: ToShard) -> Result<(), ShardFull> {
        let Some(port) = self.port.as_mut() else {
            self.port_out += 1;
            if let ToShard::Message { body, .. } = message
                && let Some(buf) = body.payload.into_pooled()
            {
                self.stash(buf);
            }
            return Err(ShardFull);
        };
        match message {
            ToShard::Join {
                session,
                player,
                zone,
            } => port
                .join(session, player, zone)
                .map(|_| ())
                .map_err(|_| ShardFull),
            ToShard::Leave {
                session,
                player,
                zone,
            } => {
                port.leave(session, player, zone);
                Ok(())
            }
            ToShard::Message {
                session,
                player,
                zone,
                body,
            } => {
                let sent = port.send(
                    session,
                    player,
                    zone,
                    body.lane,
                    body.transport,
                    body.ty,
                    body.payload.as_slice(),
                );
                if let Some(buf) = body.payload.into_pooled() {
                    self.stash(buf);
                }
                sent.map_err(|_| ShardFull)
            }
            // Zone moves are the control plane's, through the port itself;
            // the engine never sends them.
            _ => Err(ShardFull),
        }
    }

    fn take_buf(&mut self, len: usize) -> Option<PoolBuf> {
        match self.classes.for_len(len)? {
            BufClass::Datagram => self.datagram.pop(),
            BufClass::Stream => self.stream.pop(),
        }
    }

    fn recycle(&mut self, buf: PoolBuf) {
        self.stash(buf);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use lanegate_common::config::Config;
    use lanegate_common::ids::{PlayerId, SessionId, ZoneId};
    use lanegate_common::lanes::{Lane, LaneTable};
    use lanegate_common::link::{Body, Payload, ToShard};
    use lanegate_common::wire::Transport;
    use lanegate_shard::ShardConfig;
    use lanegate_shard::wiring::build;

    use super::*;

    #[test]
    fn messages_reach_the_shard_ring_and_buffers_return_to_the_stash() {
        let cfg = ShardConfig::from_config(&Config::default(), Vec::new(), LaneTable::default());
        let mut links = build(&cfg, 1, 1, Instant::now()).unwrap();
        let mut sink = PortSink::new(GatewayPort::new(links.cores.remove(0), &cfg));
        let (session, player, zone) = (SessionId(1), PlayerId(2), ZoneId(3));
        sink.push(ToShard::Join {
            session,
            player,
            zone,
        })
        .unwrap();
        for len in [10usize, 500] {
            let payload = vec![7u8; len];
            let payload = match lanegate_common::link::InlinePayload::new(&payload) {
                Some(inline) => Payload::Inline(inline),
                None => {
                    let mut buf = sink.take_buf(payload.len()).unwrap();
                    buf.fill(&payload).unwrap();
                    Payload::Pooled(buf)
                }
            };
            sink.push(ToShard::Message {
                session,
                player,
                zone,
                body: Body {
                    ty: 0x1fff,
                    lane: Lane::Critical,
                    transport: Transport::Datagram,
                    payload,
                },
            })
            .unwrap();
        }
        assert_eq!(sink.datagram.len(), STASH_BUFS);
        let rx = &mut links.shards[0].cores[0].rx;
        assert!(matches!(rx.pop(), Some(ToShard::Join { .. })));
        for len in [10usize, 500] {
            match rx.pop() {
                Some(ToShard::Message { body, .. }) => {
                    assert_eq!(body.payload.as_slice(), &vec![7u8; len][..]);
                }
                other => panic!("expected a message, got {other:?}"),
            }
        }
    }

    #[test]
    fn with_the_port_out_pushes_are_refused_and_buffers_kept() {
        let cfg = ShardConfig::from_config(&Config::default(), Vec::new(), LaneTable::default());
        let mut links = build(&cfg, 1, 1, Instant::now()).unwrap();
        let mut sink = PortSink::new(GatewayPort::new(links.cores.remove(0), &cfg));
        let port = sink.take_port().unwrap();
        let buf = sink.take_buf(sink.classes.stream_bytes).unwrap();
        let refused = sink.push(ToShard::Message {
            session: SessionId(1),
            player: PlayerId(1),
            zone: ZoneId(1),
            body: Body {
                ty: 0x4001,
                lane: Lane::Bulk,
                transport: Transport::Stream,
                payload: Payload::Pooled(buf),
            },
        });
        assert_eq!(refused, Err(ShardFull));
        assert_eq!(sink.stream.len(), STASH_BUFS);
        sink.put_port(port);
        assert!(sink.port().is_some());
    }
}
