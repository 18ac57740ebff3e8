//! Turns the file's tunables into each library crate's own settings. Names only: every
//! default and every rule lives in the library that uses it.

use conn_core::{PoolConfig, ThermalConfig};
use conn_health::{
    CheckSchedule, HealthConfig, Limits, ReconcilePolicy, Scoring, StatusPolicy, SupervisionPolicy,
    Thresholds,
};

use helo_transport::Backoff;

use crate::config::Tunables;

/// Pool settings (fleet-wide).
pub fn pool(t: &Tunables) -> PoolConfig {
    PoolConfig {
        min_warm: t.min_warm,
        max_connections: t.max_connections,
        keepalive_interval: t.keepalive_interval,
        idle_timeout: t.idle_timeout,
        max_lifetime: t.max_lifetime,
        ping_timeout: t.request_timeout,
        max_in_flight_per_encoder: t.max_in_flight,
        auth_failed_backoff: t.login_lockout,
        ..PoolConfig::default()
    }
    .with_warmup_for(t.connect_timeout, t.request_timeout)
}

/// Thermal settings (fleet-wide).
pub fn thermal(t: &Tunables) -> ThermalConfig {
    ThermalConfig {
        temperature_high: t.temperature_high,
        load_high: t.load_high,
        burst_limit: t.burst_limit,
        cooling_period: t.cooling_period,
        gradual_cooldown: t.gradual_cooldown,
        connection_capacity: t.connection_capacity,
        device_temperature_limit: t.device_temperature_limit,
        overheat_profile: t.overheat_profile,
        ..ThermalConfig::default()
    }
}

/// Health-check settings (fleet-wide).
pub fn health(t: &Tunables) -> HealthConfig {
    HealthConfig {
        deadline: t.health_deadline,
        limits: Limits {
            device_temp_warn_c: t.device_temperature_limit,
            device_temp_fail_c: t.device_temperature_critical,
            media_warn_pct: t.media_available_min,
            media_fail_pct: t.media_available_critical,
            ..Limits::default()
        },
        scoring: Scoring {
            thresholds: Thresholds {
                healthy: t.healthy_threshold,
                degraded: t.degraded_threshold,
            },
            ..Scoring::default()
        },
        ..HealthConfig::default()
    }
}

/// Supervision of one encoder: desired state, status, schedule.
pub fn supervision(t: &Tunables, fleet: &Tunables) -> SupervisionPolicy {
    // Limits and thresholds are fleet-wide: the status judges by the checker's own.
    let health = health(fleet);
    SupervisionPolicy {
        reconcile: ReconcilePolicy {
            grace: t.desired_state_grace,
            start_timeout: t.start_timeout,
            max_attempts: t.recovery_max_attempts,
            backoff: Backoff::new(t.recovery_backoff, ReconcilePolicy::default().backoff.max()),
            retry_after: t.recovery_retry_after,
            ..ReconcilePolicy::default()
        },
        status: StatusPolicy::from_health(&health.limits, &health.scoring),
        schedule: CheckSchedule {
            healthy_interval: t.check_interval,
            unhealthy_interval: t.unhealthy_interval,
            jitter: t.interval_jitter,
        },
        ..SupervisionPolicy::default()
    }
}
