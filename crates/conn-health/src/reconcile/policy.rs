//! The limits of reconciliation: grace, settle time, tries and their spacing.

use std::time::Duration;

use crate::error::HealthError;

/// How the supervisor brings an encoder back to its desired state.
///
/// | setting | default | why |
/// | --- | --- | --- |
/// | `grace` | 10 s | an operator's own stop and start settle before the supervisor acts |
/// | `settle` | 1 s | between the stop and the start of a restart, as an operator would wait |
/// | `start_timeout` | 10 s | a start that has not reached streaming by then failed (the protocol says about a second) |
/// | `max_attempts` | 3 | tries in one round before giving up |
/// | `backoff` | 2 s | wait after the first failed try; doubles each try |
/// | `backoff_max` | 60 s | the longest wait between tries (never below `backoff`) |
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
    /// Wait after the first failed try; doubles with each further try.
    pub backoff: Duration,
    /// The longest wait between tries.
    pub backoff_max: Duration,
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
            backoff: Duration::from_secs(2),
            backoff_max: Duration::from_secs(60),
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

    /// The wait after failed try number `attempt` (counting from 1): `backoff`,
    /// doubled per further try, capped at `backoff_max` (but never below `backoff`).
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.backoff
            .saturating_mul(factor)
            .min(self.backoff_max.max(self.backoff))
    }
}
