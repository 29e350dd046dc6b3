//! Log output: tracing to stderr, as text or JSON, filtered by `RUST_LOG`
//! (default `info`). stdout stays for each command's output.

use std::io::IsTerminal;

use lanegate_common::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Call once, before the first log line.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // A subscriber already installed (only possible in tests) is kept.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
