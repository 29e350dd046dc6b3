//! `lanegate-shard`: the game-logic tier (see issue 3).
#![forbid(unsafe_code)]
