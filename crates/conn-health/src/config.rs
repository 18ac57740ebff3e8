//! Settings of the checker: deadline, limits of each check, scoring.

use std::time::Duration;

use helo_transport::names;

use crate::{error::HealthError, score::Scoring};

/// What an encoder is configured to be doing, so that idle can be told from stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Expectations {
    /// The encoder should be streaming: idle is a warning.
    pub expect_streaming: bool,
    /// The encoder should be recording: idle is a warning.
    pub expect_recording: bool,
}

/// Limits the checks judge against.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Latency up to which `response_time` scores 100 (default 500 ms).
    pub latency_warn: Duration,
    /// Latency at which it scores 0 and fails (default 2.5 s: field clients time out at
    /// 2–3 s).
    pub latency_fail: Duration,
    /// Error rate up to which `error_rate` is ok (default 5 %).
    pub error_rate_warn: f64,
    /// Error rate at which it scores 0 and fails (default 25 %).
    pub error_rate_fail: f64,
    /// Fraction of the thermal manager's `temperature_high` up to which
    /// `thermal_status` scores 100 (default 0.75).
    pub thermal_warn_fraction: f64,
    /// Device temperature (°C, as `eParamID_Temperature` reads) up to which it is fine
    /// (default 70).
    pub device_temp_warn_c: f64,
    /// Device temperature at which `resource_usage` fails (default 85).
    pub device_temp_fail_c: f64,
    /// Free media (%) below which it warns (default 10).
    pub media_warn_pct: f64,
    /// Free media (%) at or below which `resource_usage` fails (default 2).
    pub media_fail_pct: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            latency_warn: Duration::from_millis(500),
            latency_fail: Duration::from_millis(2500),
            error_rate_warn: 0.05,
            error_rate_fail: 0.25,
            thermal_warn_fraction: 0.75,
            device_temp_warn_c: 70.0,
            device_temp_fail_c: 85.0,
            media_warn_pct: 10.0,
            media_fail_pct: 2.0,
        }
    }
}

impl Limits {
    fn validate(&self) -> Result<(), HealthError> {
        let finite = [
            self.error_rate_warn,
            self.error_rate_fail,
            self.thermal_warn_fraction,
            self.device_temp_warn_c,
            self.device_temp_fail_c,
            self.media_warn_pct,
            self.media_fail_pct,
        ]
        .iter()
        .all(|v| v.is_finite());
        if !finite {
            return Err(HealthError::config("limits must be finite numbers"));
        }
        if self.latency_warn >= self.latency_fail {
            return Err(HealthError::config(
                "latency_warn must be below latency_fail",
            ));
        }
        if !(0.0 <= self.error_rate_warn
            && self.error_rate_warn < self.error_rate_fail
            && self.error_rate_fail <= 1.0)
        {
            return Err(HealthError::config(
                "error rates must satisfy 0 <= warn < fail <= 1",
            ));
        }
        if !(0.0 < self.thermal_warn_fraction && self.thermal_warn_fraction <= 1.0) {
            return Err(HealthError::config(
                "thermal_warn_fraction must be within (0, 1]",
            ));
        }
        if self.device_temp_warn_c >= self.device_temp_fail_c {
            return Err(HealthError::config(
                "device_temp_warn_c must be below device_temp_fail_c",
            ));
        }
        if self.media_fail_pct >= self.media_warn_pct {
            return Err(HealthError::config(
                "media_fail_pct must be below media_warn_pct",
            ));
        }
        Ok(())
    }
}

/// Settings of a [`ConnectionHealthChecker`](crate::ConnectionHealthChecker).
#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    /// All checks of one health check share this deadline (default 5 s).
    pub deadline: Duration,
    /// The parameter read by `basic_connectivity` (default `eParamID_SystemState`, whose
    /// value `resource_usage` then uses without a second request). Any answer from the
    /// device proves connectivity, "parameter not supported" included.
    pub probe_param: String,
    /// A live mirror whose device has not been heard from for this long is stale, and
    /// checks poll instead (default 120 s: above the 50 s long-poll hold time).
    pub mirror_stale_after: Duration,
    /// A parameter the device answered "not supported" for is not asked again for this
    /// long (default 10 min).
    pub unsupported_ttl: Duration,
    /// Limits of the checks.
    pub limits: Limits,
    /// Weights and thresholds.
    pub scoring: Scoring,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(5),
            probe_param: names::SYSTEM_STATE.to_string(),
            mirror_stale_after: Duration::from_secs(120),
            unsupported_ttl: Duration::from_secs(600),
            limits: Limits::default(),
            scoring: Scoring::default(),
        }
    }
}

impl HealthConfig {
    /// Checks every value.
    pub fn validate(&self) -> Result<(), HealthError> {
        if self.deadline.is_zero() {
            return Err(HealthError::config("deadline must be greater than zero"));
        }
        if self.probe_param.trim().is_empty() {
            return Err(HealthError::config("probe_param must not be empty"));
        }
        self.limits.validate()?;
        self.scoring.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert!(HealthConfig::default().validate().is_ok());
        let cases: Vec<(HealthConfig, &str)> = vec![
            (
                HealthConfig {
                    deadline: Duration::ZERO,
                    ..HealthConfig::default()
                },
                "deadline",
            ),
            (
                HealthConfig {
                    probe_param: " ".into(),
                    ..HealthConfig::default()
                },
                "probe_param",
            ),
            (
                HealthConfig {
                    limits: Limits {
                        latency_warn: Duration::from_secs(3),
                        ..Limits::default()
                    },
                    ..HealthConfig::default()
                },
                "latency_warn",
            ),
            (
                HealthConfig {
                    limits: Limits {
                        error_rate_fail: 1.5,
                        ..Limits::default()
                    },
                    ..HealthConfig::default()
                },
                "error rates",
            ),
            (
                HealthConfig {
                    limits: Limits {
                        media_fail_pct: 50.0,
                        ..Limits::default()
                    },
                    ..HealthConfig::default()
                },
                "media_fail_pct",
            ),
        ];
        for (cfg, needle) in cases {
            let err = cfg.validate().unwrap_err();
            assert!(err.is_invalid_config());
            assert!(err.to_string().contains(needle), "{err}");
        }
    }
}
