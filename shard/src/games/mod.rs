//! The games that ship with the runtime.
//!
//! - [`Echo`]: echoes the diagnostic echo types, one per lane.
//! - [`Arena`]: players move in a 2D zone; the traffic shape the bot swarm
//!   imitates (`docs/shard.md`, "Arena").
//! - [`Demo`]: both at once, in every zone; what `lanegate serve` runs by
//!   default.

pub mod arena;
mod demo;
mod echo;

pub use arena::{Arena, ArenaConfig};
pub use demo::Demo;
pub use echo::Echo;
