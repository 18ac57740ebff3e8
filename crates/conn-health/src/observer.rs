//! Where health results go besides the caller: metrics, logs.

use std::time::Duration;

use crate::{mirror::DeviceState, status::EncoderId, HealthStatus};

/// Receives every health check and every device-state change.
///
/// `conn-metrics` implements it to export `helo_connection_health`,
/// `helo_health_checks_total{result}` (see [`HealthStatus::result_label`]) and
/// `helo_health_check_duration_seconds`. Every method has a no-op default. Calls happen
/// on the checking task: keep them quick and never block.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
pub trait HealthObserver: Send + Sync + 'static {
    /// A health check finished after `took`.
    fn health_checked(&self, status: &HealthStatus, took: Duration) {
        let _ = (status, took);
    }

    /// A [`DeviceStateMirror`](crate::DeviceStateMirror) published a new state.
    fn device_state(&self, encoder: &EncoderId, state: &DeviceState) {
        let _ = (encoder, state);
    }

    /// The encoder was removed from the checker: drop its series.
    fn encoder_removed(&self, encoder: &EncoderId) {
        let _ = encoder;
    }
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopHealthObserver;

impl HealthObserver for NoopHealthObserver {}
