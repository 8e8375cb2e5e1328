//! Logging: structured `tracing` events, where the Functions host or the terminal collects them.
//!
//! The handler logs to stdout: the Functions host records every stderr line as an error. The
//! local tools log to stderr, keeping stdout for the addresses they print. Colours only go to a
//! terminal. `RUST_LOG` sets the filter (default `info`); `LOG_FORMAT=json` switches to one JSON
//! object per line. Nothing logged anywhere in this crate contains code, outputs, tokens or keys.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    /// Standard output: the custom handler under the Functions host.
    Stdout,
    /// Standard error: the local tools, whose stdout carries their addresses.
    Stderr,
}

/// Installs the global subscriber once; later calls do nothing.
pub fn init(target: LogTarget) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match (target, json) {
        (LogTarget::Stdout, false) => builder
            .with_ansi(std::io::stdout().is_terminal())
            .with_writer(std::io::stdout)
            .try_init(),
        (LogTarget::Stdout, true) => builder.json().with_writer(std::io::stdout).try_init(),
        (LogTarget::Stderr, false) => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .try_init(),
        (LogTarget::Stderr, true) => builder.json().with_writer(std::io::stderr).try_init(),
    };
    let _ = result;
}
