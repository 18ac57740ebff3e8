//! What the library crates report, logged with `encoder_id`, `connection_id` and
//! `reason`, and forwarded to the Prometheus families.

use std::{
    collections::HashSet,
    sync::{PoisonError, RwLock},
    time::Duration,
};

use conn_core::{
    CoolingOutcome, CoolingReason, EncoderId, PoolObserver, RetireReason, ThermalObserver,
};
use conn_health::{DeviceState, HealthObserver, HealthStatus};
use conn_metrics::HeloMetrics;
use helo_transport::{ConnectionId, HeloError};

/// Logs every connection event and records it in the metrics.
#[derive(Debug)]
pub struct FleetObserver {
    metrics: HeloMetrics,
    /// Encoders the fleet stopped supervising: what the thermal model still reports
    /// of them (a cooling that outlives its connection) is logged, not recorded, so
    /// their series stay removed (in a cluster, the encoder's new owner exports them).
    retired: RwLock<HashSet<EncoderId>>,
}

impl FleetObserver {
    /// An observer recording into `metrics`.
    pub fn new(metrics: HeloMetrics) -> Self {
        Self {
            metrics,
            retired: RwLock::new(HashSet::new()),
        }
    }

    /// The fleet stopped (`true`) or started again (`false`) supervising `encoder`.
    pub(crate) fn set_retired(&self, encoder: &EncoderId, retired: bool) {
        let mut set = self.retired.write().unwrap_or_else(PoisonError::into_inner);
        if retired {
            set.insert(encoder.clone());
        } else {
            set.remove(encoder);
        }
    }

    fn records(&self, encoder: &EncoderId) -> bool {
        !self
            .retired
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(encoder)
    }
}

impl PoolObserver for FleetObserver {
    fn warmup_attempt(&self, encoder: &EncoderId) {
        PoolObserver::warmup_attempt(&self.metrics, encoder);
    }
    fn warmup_success(&self, encoder: &EncoderId, conn: ConnectionId, took: Duration) {
        tracing::debug!(encoder_id = %encoder, connection_id = %conn, reason = "warmed", ?took, "connection warmed");
        PoolObserver::warmup_success(&self.metrics, encoder, conn, took);
    }
    fn warmup_failure(&self, encoder: &EncoderId, error: &HeloError) {
        if error.is_wrong_password() {
            tracing::error!(encoder_id = %encoder, reason = "auth_failed", %error, "wrong password; backing off");
        } else {
            tracing::warn!(encoder_id = %encoder, reason = "warmup_failed", %error, "warmup failed");
        }
        PoolObserver::warmup_failure(&self.metrics, encoder, error);
    }
    fn warm_connections(&self, encoder: &EncoderId, count: usize) {
        PoolObserver::warm_connections(&self.metrics, encoder, count);
    }
    fn connection_retired(&self, encoder: &EncoderId, conn: ConnectionId, reason: RetireReason) {
        // Cooled, expired, idle and stopped connections are routine churn (half of all
        // lines at info once was this); a broken or reset one says something happened.
        match reason {
            RetireReason::Broken | RetireReason::Reset => {
                tracing::info!(encoder_id = %encoder, connection_id = %conn, reason = reason.as_str(), "connection retired")
            }
            _ => {
                tracing::debug!(encoder_id = %encoder, connection_id = %conn, reason = reason.as_str(), "connection retired")
            }
        }
        PoolObserver::connection_retired(&self.metrics, encoder, conn, reason);
    }
    fn encoder_removed(&self, encoder: &EncoderId) {
        PoolObserver::encoder_removed(&self.metrics, encoder);
    }
}

impl ThermalObserver for FleetObserver {
    fn temperature(&self, encoder: &EncoderId, conn: ConnectionId, value: f64) {
        if self.records(encoder) {
            ThermalObserver::temperature(&self.metrics, encoder, conn, value);
        }
    }
    fn load(&self, encoder: &EncoderId, percent: f64) {
        if self.records(encoder) {
            ThermalObserver::load(&self.metrics, encoder, percent);
        }
    }
    fn cooling_started(&self, encoder: &EncoderId, conn: ConnectionId, reason: CoolingReason) {
        tracing::info!(encoder_id = %encoder, connection_id = %conn, reason = reason.as_str(), "cooling started");
        if self.records(encoder) {
            ThermalObserver::cooling_started(&self.metrics, encoder, conn, reason);
        }
    }
    fn cooling_step(&self, encoder: &EncoderId, conn: ConnectionId, step: u32, allowed_load: f64) {
        tracing::debug!(encoder_id = %encoder, connection_id = %conn, reason = "cooling_step", step, allowed_load, "cooling step");
    }
    fn cooling_finished(
        &self,
        encoder: &EncoderId,
        conn: ConnectionId,
        took: Duration,
        outcome: CoolingOutcome,
    ) {
        tracing::info!(encoder_id = %encoder, connection_id = %conn, reason = outcome.as_str(), ?took, "cooling finished");
        if self.records(encoder) {
            ThermalObserver::cooling_finished(&self.metrics, encoder, conn, took, outcome);
        }
    }
    fn device_temperature(&self, encoder: &EncoderId, celsius: f64) {
        if self.records(encoder) {
            ThermalObserver::device_temperature(&self.metrics, encoder, celsius);
        }
    }
    fn device_overheated(&self, encoder: &EncoderId, celsius: f64) {
        tracing::warn!(encoder_id = %encoder, reason = "device_overheated", celsius, "device overheating");
        if self.records(encoder) {
            ThermalObserver::device_overheated(&self.metrics, encoder, celsius);
        }
    }
    fn connection_removed(&self, encoder: &EncoderId, conn: ConnectionId) {
        ThermalObserver::connection_removed(&self.metrics, encoder, conn);
    }
}

impl HealthObserver for FleetObserver {
    fn health_checked(&self, status: &HealthStatus, took: Duration) {
        HealthObserver::health_checked(&self.metrics, status, took);
    }
    fn device_state(&self, encoder: &EncoderId, state: &DeviceState) {
        HealthObserver::device_state(&self.metrics, encoder, state);
    }
    fn encoder_removed(&self, encoder: &EncoderId) {
        HealthObserver::encoder_removed(&self.metrics, encoder);
    }
}
