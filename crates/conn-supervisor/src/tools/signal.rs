//! SIGINT and SIGTERM, both meaning "stop cleanly" for the long-running tools.

use super::ToolError;

/// Listens for SIGINT and SIGTERM (Ctrl-C elsewhere). Create it before starting work,
/// so a signal that arrives early is not lost to the default handler (which would end
/// the process with 130 or 143 instead of the clean exit 0).
#[derive(Debug)]
pub struct Interrupt {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Interrupt {
    /// Installs the handlers. Needs a running tokio runtime.
    pub fn new() -> Result<Self, ToolError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                int: signal(SignalKind::interrupt()).map_err(ToolError::Signal)?,
                term: signal(SignalKind::terminate()).map_err(ToolError::Signal)?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Resolves at the next SIGINT or SIGTERM.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
