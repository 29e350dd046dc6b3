//! `lanegate-shard`: the game-logic tier (see issue 3).
#![forbid(unsafe_code)]

pub mod clock;
pub mod config;
pub mod directory;
pub mod game;
pub mod games;
pub mod health;
pub mod link;
pub mod pool;
pub mod port;
pub mod ring;
pub mod runtime;
pub mod worker;
mod world;
