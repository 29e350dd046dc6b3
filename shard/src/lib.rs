//! `lanegate-shard`: the game-logic tier.
//!
//! Gateway cores terminate QUIC, classify each message into a priority lane
//! and forward it here; shards run the game. This crate is the shard side,
//! the rings between the two, and the Game API that game developers write
//! against. It is sans-IO: the runtime ([`runtime::Shard`]) reads the time
//! from a [`clock::Clock`] it is given and never touches a socket or a
//! thread, so the whole tier runs in tests on a virtual clock. The only code
//! that touches real threads and time is the thin driver in [`worker`].
//!
//! # Data flow
//!
//! ```text
//!  gateway core c ──ToShard ring (c,s)──▶ shard s ──▶ inbox per lane ──▶ Game
//!        ▲                                   │                           │
//!        └──────ToGateway ring (s,c)─────────┴──── outbox per lane ◀─────┘
//! ```
//!
//! - **Rings** ([`ring`]): one lock-free SPSC ring per (gateway core, shard)
//!   pair in each direction, over `ringbuf`. Entries are fixed-size (128
//!   bytes); payloads up to 72 bytes travel inline and larger ones in
//!   buffers of a per-core [`pool`], which come back over a return ring: no
//!   allocation per message. A full ring refuses the push at once and counts
//!   it against the message's lane; each lane may fill only part of the ring,
//!   so a bulk flood leaves room for critical.
//! - **Ticks** ([`runtime`]): each tick a shard takes what its rings hold,
//!   hands messages to the game critical lane first with a per-lane budget,
//!   runs [`Game::on_tick`], and flushes what the game sent to the rings of
//!   the gateway cores holding the recipients.
//! - **Zones** ([`directory`], [`port`]): a zone belongs to one shard at a
//!   time; a gateway core's [`port::GatewayPort`] routes each player to their
//!   zone's shard and holds a moving zone's messages until its new owner has
//!   its state, so a move loses and reorders nothing.
//! - **Faults** ([`health`]): a panic in game code replaces the game instance
//!   and resets its zones, and leaves other shards alone; a stalled shard
//!   (a tick that never ends, or a thread stopped between ticks) is flagged
//!   by a watchdog thread from its heartbeat, and past
//!   `shards.stall_failover_ms` failed over ([`failover`]): fenced for good
//!   ([`fence`]) while the gateway cores re-home its zones. Each shard
//!   publishes a [`ShardHealth`](lanegate_common::link::ShardHealth) snapshot.
//!
//! `docs/shard.md` is the guide for game developers; this page is enough to
//! write a game.
//!
//! # Writing a game
//!
//! Implement [`Game`]: react to players joining and leaving zones, to their
//! messages, and to ticks, and send through the [`Outbox`] you are handed —
//! to one player, a list, a whole zone, or the players of a zone a filter
//! picks (interest management). The lane of what you send follows from its
//! type, by the same lane table as the gateway's (`0x1000-0x1fff` critical,
//! `0x2000` high, `0x3000` normal, `0x4000` bulk by default).
//!
//! ```
//! use std::collections::HashMap;
//!
//! use lanegate_common::ids::{PlayerId, ZoneId};
//! use lanegate_shard::{Game, Incoming, Msg, Outbox};
//!
//! /// Players shout a number; everyone within 10 of it hears about it.
//! #[derive(Default)]
//! struct Shout {
//!     numbers: HashMap<PlayerId, i64>,
//! }
//!
//! const SHOUT: u16 = 0x3001; // normal lane
//! const HEARD: u16 = 0x3002;
//!
//! impl Game for Shout {
//!     fn on_join(&mut self, _out: &mut Outbox<'_>, _zone: ZoneId, player: PlayerId) {
//!         self.numbers.insert(player, 0);
//!     }
//!
//!     fn on_leave(&mut self, _out: &mut Outbox<'_>, _zone: ZoneId, player: PlayerId) {
//!         self.numbers.remove(&player);
//!     }
//!
//!     fn on_message(&mut self, out: &mut Outbox<'_>, msg: Incoming<'_>) {
//!         // Peer input: parse it, never trust its length.
//!         let (SHOUT, Ok(bytes)) = (msg.ty, <[u8; 8]>::try_from(msg.payload)) else {
//!             return;
//!         };
//!         let n = i64::from_be_bytes(bytes);
//!         self.numbers.insert(msg.player, n);
//!         let numbers = &self.numbers;
//!         // Only players whose own number is near this one get it.
//!         let _ = out.broadcast_where(msg.zone, Msg::stream(HEARD, msg.payload), |p| {
//!             numbers.get(&p).is_some_and(|m| (m - n).abs() <= 10)
//!         });
//!     }
//!
//!     fn on_tick(&mut self, out: &mut Outbox<'_>) {
//!         if out.tick() % 30 == 0 {
//!             let zones: Vec<ZoneId> = out.zones().collect();
//!             for zone in zones {
//!                 let _ = out.broadcast(zone, Msg::datagram(0x4001, b"still here"));
//!             }
//!         }
//!     }
//! }
//!
//! // Run it: one gateway core, one shard, on a virtual clock.
//! use lanegate_common::ids::SessionId;
//! use lanegate_common::lanes::Lane;
//! use lanegate_common::wire::Transport;
//! use lanegate_shard::clock::{Clock, VirtualClock};
//! use lanegate_common::config::Config;
//! use lanegate_common::lanes::LaneTable;
//! use lanegate_shard::{ShardConfig, Shard, wiring, port::GatewayPort};
//!
//! // The limits of the default configuration; a real gateway passes the
//! // file it validated, its shard CPUs and the lane table it built.
//! let cfg = ShardConfig::from_config(&Config::default(), Vec::new(), LaneTable::default());
//! let clock = VirtualClock::new();
//! let mut links = wiring::build(&cfg, 1, 1, clock.now()).unwrap();
//! let mut shard = Shard::new(links.shards.remove(0), &cfg, Shout::default);
//! let mut gateway = GatewayPort::new(links.cores.remove(0), &cfg);
//!
//! let zone = ZoneId(1);
//! for p in [1, 2] {
//!     gateway.join(SessionId(p), PlayerId(p), zone).unwrap();
//! }
//! let five = 5i64.to_be_bytes();
//! // Sent at the clock's now: the shard measures how long it waited.
//! let (player, session) = (PlayerId(1), SessionId(1));
//! gateway
//!     .send(clock.now(), session, player, zone, Lane::Normal, Transport::Stream, SHOUT, &five)
//!     .unwrap();
//! clock.advance(cfg.tick_interval());
//! shard.run_tick(&clock);
//!
//! let mut heard = Vec::new();
//! gateway.poll(usize::MAX, |_shard, entry| {
//!     if let lanegate_common::link::ToGateway::Unicast { player, body, .. } = entry {
//!         heard.push((player.0, body.ty));
//!     }
//! });
//! // Player 2's number (0) is within 10 of 5: both hear it.
//! assert_eq!(heard, [(1, HEARD), (2, HEARD)]);
//! ```
//!
//! Rules of the road, all enforced by the runtime rather than trusted:
//!
//! - Calls come one at a time on the shard's thread. Do not block: a tick
//!   that runs past `stall_after_ms` is reported stalled, and cannot be
//!   interrupted.
//! - A panic costs the shard's whole game state: a fresh instance is made,
//!   its players re-join it and are sent `ZONE_RESET`. Parse peer bytes
//!   without panicking.
//! - Sends never block. When there is no room (outbox, pool or ring full) the
//!   message is dropped, counted in `ShardHealth::outbound_lost`, and the
//!   call returns [`game::SendError::NoRoom`].
//! - To let zones move between shards with their state, implement
//!   [`Game::export_zone`] and [`Game::import_zone`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod clock;
pub mod config;
pub mod directory;
pub mod failover;
pub mod fence;
pub mod game;
pub mod games;
pub mod health;
pub mod latency;
pub mod levels;
pub mod pool;
pub mod port;
pub mod ring;
pub mod runtime;
pub mod wiring;
pub mod worker;
mod world;

pub use config::ShardConfig;
pub use game::{Game, Incoming, MoveError, Msg, Outbox, SendError};
pub use runtime::Shard;
