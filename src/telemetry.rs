//! Logging: structured `tracing` events on stderr, where the Functions host collects them.
//!
//! `RUST_LOG` sets the filter (default `info`); `LOG_FORMAT=json` switches to one JSON object per
//! line. Nothing logged anywhere in this crate contains code, outputs, tokens or keys.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls do nothing.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
