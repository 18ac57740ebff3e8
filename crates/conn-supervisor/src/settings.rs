//! Turns the file's tunables into each library crate's own settings.

use conn_core::{PoolConfig, ThermalConfig};
use conn_health::{CheckSchedule, HealthConfig, Limits, RecoveryPolicy, Scoring, Thresholds};

use crate::config::Tunables;

/// Pool settings (fleet-wide).
pub fn pool(t: &Tunables) -> PoolConfig {
    PoolConfig {
        min_warm: t.min_warm,
        max_connections: t.max_connections,
        keepalive_interval: t.keepalive_interval,
        idle_timeout: t.idle_timeout,
        max_lifetime: t.max_lifetime,
        warmup_timeout: t.connect_timeout + t.request_timeout * 2,
        ping_timeout: t.request_timeout,
        max_in_flight_per_encoder: t.max_in_flight,
        ..PoolConfig::default()
    }
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
            device_temp_fail_c: t.device_temperature_limit + 15.0,
            media_warn_pct: t.media_available_min,
            media_fail_pct: (t.media_available_min / 5.0).max(1.0),
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

/// The check interval of one encoder.
pub fn schedule(t: &Tunables) -> CheckSchedule {
    CheckSchedule {
        healthy_interval: t.check_interval,
        unhealthy_interval: t.unhealthy_interval,
        jitter: t.interval_jitter,
    }
}

/// Stream recovery of one encoder.
pub fn recovery(t: &Tunables) -> RecoveryPolicy {
    RecoveryPolicy {
        max_attempts: t.recovery_max_attempts,
        backoff: t.recovery_backoff,
        ..RecoveryPolicy::default()
    }
}
