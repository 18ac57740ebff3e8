//! The limits of reconciliation: grace, settle time, tries and their spacing.

use std::time::Duration;

use helo_transport::Backoff;

use crate::error::HealthError;

/// How the supervisor brings an encoder back to its desired state.
///
/// | setting | default | why |
/// | --- | --- | --- |
/// | `grace` | 10 s | an operator's own stop and start settle before the supervisor acts |
/// | `settle` | 1 s | between the stop and the start of a restart, as an operator would wait |
/// | `start_timeout` | 10 s | a start that has not reached streaming by then failed (the protocol says about a second) |
/// | `max_attempts` | 3 | tries in one round before giving up |
/// | `backoff` | 2 s doubling to 60 s, full jitter | between tries: the jitter keeps a fleet that failed together (a site's uplink) from restarting in step |
/// | `retry_after` | 5 min | after giving up, a new round of tries |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReconcilePolicy {
    /// How long a state that is not the desired one (and not failing) is left alone.
    pub grace: Duration,
    /// Between the stop and the start of a restart.
    pub settle: Duration,
    /// How long a start may take to reach the active state.
    pub start_timeout: Duration,
    /// Tries per round; 0 never acts (observe and report only).
    pub max_attempts: u32,
    /// The wait after a failed try (the workspace's one backoff).
    pub backoff: Backoff,
    /// After the last try of a round failed, how long until a new round.
    pub retry_after: Duration,
}

impl Default for ReconcilePolicy {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(10),
            settle: Duration::from_secs(1),
            start_timeout: Duration::from_secs(10),
            max_attempts: 3,
            backoff: Backoff::new(Duration::from_secs(2), Duration::from_secs(60)),
            retry_after: Duration::from_secs(300),
        }
    }
}

impl ReconcilePolicy {
    /// Checks every value.
    pub fn validate(&self) -> Result<(), HealthError> {
        if self.start_timeout.is_zero() {
            return Err(HealthError::config(
                "start_timeout must be greater than zero",
            ));
        }
        if self.retry_after.is_zero() {
            return Err(HealthError::config("retry_after must be greater than zero"));
        }
        Ok(())
    }

    /// The wait after failed try number `attempt` (counting from 1): the backoff's
    /// draw for its retry `attempt - 1`.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        self.backoff.delay_random(attempt.saturating_sub(1))
    }
}
