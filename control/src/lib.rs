//! `lanegate-control`: the policies that read load and decide, apart from
//! the IO that samples and applies them (`docs/ARCHITECTURE.md`,
//! "Overload"). Each is a plain type that takes samples and `now` and
//! returns decisions, so it is tested on a virtual clock; the gateway's
//! runtime samples its cores, calls the policy and applies what it says.
//!
//! - [`ladder`]: the degradation ladder: load signals in, a level out
//!   (shed `bulk`, defer `normal`, thin `high`, protect), with hysteresis,
//!   a dwell time and a report when a level cannot be left.
//! - [`monitor`]: learned baselines: a seasonal model per series, anomaly
//!   alerts with hysteresis, next-hour forecasts with a capacity warning,
//!   and the bytes the baselines persist as.
#![forbid(unsafe_code)]

pub mod ladder;
pub mod monitor;

pub use ladder::{Ladder, Level, Signal, Signals, Transition};
