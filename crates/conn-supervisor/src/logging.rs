//! Log output: `tracing` to stderr, text or JSON lines, filtered by `RUST_LOG`.
//!
//! Text carries ANSI colours only when stderr is a terminal and `NO_COLOR` is not set:
//! files, pipes and journald get plain lines.

use std::io::IsTerminal;

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber once; later calls do nothing.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.with_ansi(use_colour()).try_init()
    };
}

/// Colour only for a person at a terminal who has not asked for none.
fn use_colour() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    std::io::stderr().is_terminal() && !no_color
}
