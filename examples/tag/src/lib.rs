//! Tag, on Lanegate: players run around square zones; one player per zone
//! is "it" and tags whoever they touch; a portal on each zone's east edge
//! leads to the next zone, which may be served by another shard.
//!
//! It is the example of a game a studio writes (README.md has the two
//! commands to run it and the byte layout of every message):
//!
//! - [`config`]: the game's own `[game]` table ([`TagConfig`]), read and
//!   validated by `lanegate_gateway::cli::run` before the gateway starts;
//! - [`wire`]: the message types and their codecs. Inputs travel in the
//!   `critical` lane, positions in `high`, chat and tag events in `normal`
//!   (the lane follows from the type, by the default lane table);
//! - [`game`]: [`Tag`], the `lanegate_shard::Game`: inputs set a direction,
//!   each tick moves everyone, tags, walks players through portals
//!   (`Outbox::move_player`) and sends each player the positions of the
//!   players near them (interest filtering), nearest first.
//!
//! Data flows one way: the gateway hands each shard's `Tag` the messages of
//! the players in its zones; `Tag` answers through the `Outbox`.
#![forbid(unsafe_code)]

pub mod config;
pub mod game;
pub mod wire;

pub use config::TagConfig;
pub use game::Tag;
