//! SIGTERM and SIGINT: the first asks for a drain, a second exits at once.
//!
//! Both are turned into one flag (`signal_hook::flag`, no unsafe code here)
//! that every gateway core reads once per loop turn. A second signal while
//! the flag is already set ends the process with status
//! [`SECOND_SIGNAL_EXIT`] without waiting for the drain: the operator's
//! "I mean it".

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;

/// Exit status after a second SIGTERM/SIGINT.
pub const SECOND_SIGNAL_EXIT: i32 = 1;

/// Installs the handlers; the returned flag turns true on the first signal.
pub fn install() -> std::io::Result<Arc<AtomicBool>> {
    let term = Arc::new(AtomicBool::new(false));
    for signal in [SIGTERM, SIGINT] {
        // Order matters: the conditional shutdown runs first and sees the
        // flag as the previous signal left it; then the flag is set.
        flag::register_conditional_shutdown(signal, SECOND_SIGNAL_EXIT, Arc::clone(&term))
            .and_then(|_| flag::register(signal, Arc::clone(&term)))?;
    }
    Ok(term)
}
