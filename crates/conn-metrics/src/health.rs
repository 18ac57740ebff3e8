//! Health score and health-check families.

use std::{fmt, time::Duration};

use helo_transport::{RecordState, StreamState};
use prometheus::{Histogram, Registry};

use crate::series::{Gauge, IntCounter};

use crate::{
    error::MetricsError,
    family::{self, percent, EncoderSeries, Family, Scope},
    registry::HeloMetrics,
};

/// Health-check durations: a check is one to a few requests, milliseconds to seconds.
pub(crate) const HEALTH_CHECK_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

pub(crate) struct HealthFamilies {
    pub(crate) score: Family<Gauge, 1>,
    checks: Family<IntCounter, 1>,
    duration: Family<Histogram, 0>,
}

impl HealthFamilies {
    pub(crate) fn register(registry: &Registry, durations: Scope) -> Result<Self, MetricsError> {
        Ok(Self {
            score: family::gauge(
                registry,
                "helo_connection_health",
                "Health score of a connection, 0 (dead) to 100 (healthy).",
                ["connection_id"],
            )?,
            checks: family::counter(
                registry,
                "helo_health_checks_total",
                "Health checks run, by result (success, degraded, failure, error).",
                ["result"],
            )?,
            duration: family::histogram(
                registry,
                "helo_health_check_duration_seconds",
                "Time one health check took.",
                (durations, []),
                HEALTH_CHECK_BUCKETS,
            )?,
        })
    }

    pub(crate) fn all(&self) -> [&dyn EncoderSeries; 3] {
        [&self.score, &self.checks, &self.duration]
    }
}

/// Health score and health checks: `helo_connection_health`,
/// `helo_health_checks_total`, `helo_health_check_duration_seconds`.
///
/// The plain methods ([`health_checked`](Self::health_checked),
/// [`device_state`](Self::device_state), [`encoder_removed`](Self::encoder_removed))
/// map one to one onto `conn_health::HealthObserver`.
#[derive(Clone, Debug)]
pub struct ConnectionHealthMetrics {
    metrics: HeloMetrics,
}

impl ConnectionHealthMetrics {
    pub(crate) fn new(metrics: HeloMetrics) -> Self {
        Self { metrics }
    }

    /// The metrics this handle belongs to.
    pub fn metrics(&self) -> &HeloMetrics {
        &self.metrics
    }

    /// `helo_connection_health{encoder_id, connection_id}`: the 0–100 score.
    pub fn health_score(&self, encoder: impl fmt::Display, conn: impl fmt::Display) -> Gauge {
        let conn = conn.to_string();
        self.families().score.get(&encoder.to_string(), [&conn])
    }

    /// `helo_health_checks_total{encoder_id, result}`; `result` is one of `success`,
    /// `degraded`, `failure`, `error`.
    pub fn health_checks(&self, encoder: impl fmt::Display, result: &str) -> IntCounter {
        self.families().checks.get(&encoder.to_string(), [result])
    }

    /// `helo_health_check_duration_seconds{encoder_id}`.
    pub fn health_check_duration(&self, encoder: impl fmt::Display) -> Histogram {
        self.families().duration.get(&encoder.to_string(), [])
    }

    /// One finished health check: sets the score (clamped to 0–100; a score that is
    /// not a number is not recorded), counts the result and records the duration.
    pub fn health_checked(
        &self,
        encoder: impl fmt::Display,
        conn: impl fmt::Display,
        score: f64,
        result: &str,
        took: Duration,
    ) {
        let encoder = encoder.to_string();
        if let Some(score) = percent(score) {
            self.health_score(&encoder, conn).set(score);
        }
        self.check_done(&encoder, result, took);
    }

    /// One finished health check without a connection to score: counts the result
    /// and records the duration.
    pub fn check_done(&self, encoder: impl fmt::Display, result: &str, took: Duration) {
        let encoder = encoder.to_string();
        self.health_checks(&encoder, result).inc();
        self.health_check_duration(&encoder)
            .observe(took.as_secs_f64());
    }

    /// The device state a health mirror saw: replicator states and device
    /// temperature, each recorded when known.
    pub fn device_state(
        &self,
        encoder: impl fmt::Display,
        stream_state: Option<StreamState>,
        record_state: Option<RecordState>,
        celsius: Option<f64>,
    ) {
        let encoder = encoder.to_string();
        let device = self.metrics.device();
        if let Some(state) = stream_state {
            device.set_stream_state(&encoder, state);
        }
        if let Some(state) = record_state {
            device.set_record_state(&encoder, state);
        }
        if let Some(celsius) = celsius {
            device.set_device_temperature(&encoder, celsius);
        }
    }

    /// The encoder left the fleet: drops all of its series, in every family.
    pub fn encoder_removed(&self, encoder: impl fmt::Display) {
        self.metrics.remove_encoder(encoder);
    }

    fn families(&self) -> &HealthFamilies {
        &self.metrics.inner().health
    }
}
