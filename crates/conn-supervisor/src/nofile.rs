//! The open-files limit. Every device connection and every admin connection is a file
//! descriptor; distributions start services with a soft limit of 1 024 and a much
//! higher hard limit, so the supervisor raises its own soft limit to the hard one at
//! start instead of running out of descriptors under load.

/// What the soft `RLIMIT_NOFILE` was and became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    /// The soft limit found at start (`None`: unlimited).
    pub before: Option<u64>,
    /// The soft limit now (`None`: unlimited).
    pub now: Option<u64>,
    /// The hard limit, the most the soft one can be raised to (`None`: unlimited).
    pub hard: Option<u64>,
}

/// Raises the soft open-files limit to the hard limit, and says what it is now; an
/// error when the limit could not be read or set (the process keeps its limit).
#[cfg(unix)]
pub fn raise() -> std::io::Result<NofileLimit> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let found = getrlimit(Resource::Nofile);
    if found.current == found.maximum {
        return Ok(NofileLimit {
            before: found.current,
            now: found.current,
            hard: found.maximum,
        });
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: found.maximum,
            maximum: found.maximum,
        },
    )?;
    let now = getrlimit(Resource::Nofile);
    Ok(NofileLimit {
        before: found.current,
        now: now.current,
        hard: now.maximum,
    })
}

/// Not on this platform: nothing to raise.
#[cfg(not(unix))]
pub fn raise() -> std::io::Result<NofileLimit> {
    Ok(NofileLimit {
        before: None,
        now: None,
        hard: None,
    })
}

/// Raises the limit ([`raise`]) and logs the outcome: the limit at info, a failure
/// as a warning.
pub fn raise_and_log() {
    let shown = |l: Option<u64>| l.map_or_else(|| "unlimited".to_string(), |n| n.to_string());
    match raise() {
        Ok(l) if l.before != l.now => tracing::info!(
            before = %shown(l.before),
            now = %shown(l.now),
            "open-files limit raised to the hard limit"
        ),
        Ok(l) => tracing::info!(
            soft = %shown(l.now),
            hard = %shown(l.hard),
            "open-files limit"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-files limit"),
    }
}
