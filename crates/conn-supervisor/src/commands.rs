//! The long-running commands: `run`, `demo`, `check`.

use std::{net::SocketAddr, path::Path, process::ExitCode};

/// `run --config FILE`.
pub async fn run(config: &Path) -> ExitCode {
    match crate::config::FleetConfig::load(config) {
        Ok(_) => {
            eprintln!(
                "conn-supervisor: run: not yet (the fleet runtime lands with the supervisor issue)"
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("conn-supervisor: {e}");
            ExitCode::from(2)
        }
    }
}

/// `demo`.
pub async fn demo(_encoders: usize, _listen: Option<SocketAddr>) -> ExitCode {
    eprintln!("conn-supervisor: demo: not yet (lands with the supervisor issue)");
    ExitCode::from(1)
}

/// `check URL`.
pub async fn check(
    _url: &str,
    _password_env: Option<&str>,
    _json: bool,
    _expect_streaming: bool,
    _expect_recording: bool,
) -> ExitCode {
    eprintln!("conn-supervisor: check: not yet");
    ExitCode::from(3)
}
