//! Warm-pool families.

use std::{fmt, time::Duration};

use helo_transport::HeloError;
use prometheus::{Histogram, Registry};

use crate::series::{IntCounter, IntGauge};

use crate::{
    error::MetricsError,
    family::{self, EncoderSeries, Family, Scope},
    registry::HeloMetrics,
};

/// Warm-up durations: connect plus login takes milliseconds on a healthy device and
/// minutes while one reboots.
pub(crate) const WARMUP_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

pub(crate) struct WarmupFamilies {
    attempts: Family<IntCounter, 0>,
    successes: Family<IntCounter, 0>,
    duration: Family<Histogram, 0>,
    warm: Family<IntGauge, 0>,
}

impl WarmupFamilies {
    pub(crate) fn register(registry: &Registry, durations: Scope) -> Result<Self, MetricsError> {
        Ok(Self {
            attempts: family::counter(
                registry,
                "helo_warmup_attempts_total",
                "Attempts to open and warm a connection.",
                [],
            )?,
            successes: family::counter(
                registry,
                "helo_warmup_success_total",
                "Connections opened and warmed successfully.",
                [],
            )?,
            duration: family::histogram(
                registry,
                "helo_warmup_duration_seconds",
                "Time a successful warm-up took.",
                (durations, []),
                WARMUP_BUCKETS,
            )?,
            warm: family::int_gauge(
                registry,
                "helo_warm_connections",
                "Warm connections in an encoder's pool.",
                [],
            )?,
        })
    }

    pub(crate) fn all(&self) -> [&dyn EncoderSeries; 4] {
        [&self.attempts, &self.successes, &self.duration, &self.warm]
    }
}

/// The warm pool: `helo_warmup_attempts_total`, `helo_warmup_success_total`,
/// `helo_warmup_duration_seconds`, `helo_warm_connections`.
///
/// The plain methods map one to one onto `conn_core::PoolObserver`.
#[derive(Clone, Debug)]
pub struct ConnectionWarmupMetrics {
    metrics: HeloMetrics,
}

impl ConnectionWarmupMetrics {
    pub(crate) fn new(metrics: HeloMetrics) -> Self {
        Self { metrics }
    }

    /// The metrics this handle belongs to.
    pub fn metrics(&self) -> &HeloMetrics {
        &self.metrics
    }

    /// `helo_warmup_attempts_total{encoder_id}`.
    pub fn warmup_attempts(&self, encoder: impl fmt::Display) -> IntCounter {
        self.families().attempts.get(&encoder.to_string(), [])
    }

    /// `helo_warmup_success_total{encoder_id}`.
    pub fn warmup_successes(&self, encoder: impl fmt::Display) -> IntCounter {
        self.families().successes.get(&encoder.to_string(), [])
    }

    /// `helo_warmup_duration_seconds{encoder_id}`.
    pub fn warmup_duration(&self, encoder: impl fmt::Display) -> Histogram {
        self.families().duration.get(&encoder.to_string(), [])
    }

    /// `helo_warm_connections{encoder_id}`.
    pub fn warm_connections_gauge(&self, encoder: impl fmt::Display) -> IntGauge {
        self.families().warm.get(&encoder.to_string(), [])
    }

    /// A warm-up started. The success counter is created too (at 0), so that
    /// `success / attempts` is defined from the first attempt on.
    pub fn warmup_attempt(&self, encoder: impl fmt::Display) {
        let encoder = encoder.to_string();
        self.warmup_attempts(&encoder).inc();
        self.warmup_successes(&encoder);
    }

    /// A warm-up succeeded after `took`.
    pub fn warmup_success(
        &self,
        encoder: impl fmt::Display,
        _conn: impl fmt::Display,
        took: Duration,
    ) {
        let encoder = encoder.to_string();
        self.warmup_successes(&encoder).inc();
        self.warmup_duration(&encoder).observe(took.as_secs_f64());
    }

    /// A warm-up failed. Records nothing of its own: failures are attempts minus
    /// successes, and the error's class shows in `helo_requests_total`.
    pub fn warmup_failure(&self, _encoder: impl fmt::Display, _error: &HeloError) {}

    /// The pool now holds `count` warm connections.
    pub fn warm_connections(&self, encoder: impl fmt::Display, count: usize) {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        self.warm_connections_gauge(encoder).set(count);
    }

    /// The pool retired a connection: drops its per-connection series.
    pub fn connection_retired(&self, encoder: impl fmt::Display, conn: impl fmt::Display) {
        self.metrics.remove_connection(encoder, conn);
    }

    /// The encoder left the fleet: drops all of its series, in every family.
    pub fn encoder_removed(&self, encoder: impl fmt::Display) {
        self.metrics.remove_encoder(encoder);
    }

    fn families(&self) -> &WarmupFamilies {
        &self.metrics.inner().warmup
    }
}
