//! Request families, and the outcome labels they use.

use std::{fmt, time::Duration};

use helo_transport::Outcome;
use prometheus::{Histogram, Registry};

use crate::series::IntCounter;

use crate::{
    error::MetricsError,
    family::{self, EncoderSeries, Family, Scope},
    registry::HeloMetrics,
};

/// Request durations: a parameter read takes milliseconds, a login up to seconds, and
/// an event long poll is held by the device for about 50 s.
pub(crate) const REQUEST_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

pub(crate) struct RequestFamilies {
    total: Family<IntCounter, 2>,
    duration: Family<Histogram, 1>,
}

impl RequestFamilies {
    pub(crate) fn register(registry: &Registry, durations: Scope) -> Result<Self, MetricsError> {
        Ok(Self {
            total: family::counter(
                registry,
                "helo_requests_total",
                "Requests sent to an encoder, by operation and outcome.",
                ["operation", "outcome"],
            )?,
            duration: family::histogram(
                registry,
                "helo_request_duration_seconds",
                "Time a request took, by operation, whatever its outcome.",
                (durations, ["operation"]),
                REQUEST_BUCKETS,
            )?,
        })
    }

    pub(crate) fn all(&self) -> [&dyn EncoderSeries; 2] {
        [&self.total, &self.duration]
    }
}

/// Requests: `helo_requests_total`, `helo_request_duration_seconds`.
///
/// [`MetricsLayer`](crate::MetricsLayer) records these for every request through a
/// stack; use this handle for requests made elsewhere.
#[derive(Clone, Debug)]
pub struct RequestMetrics {
    metrics: HeloMetrics,
}

impl RequestMetrics {
    pub(crate) fn new(metrics: HeloMetrics) -> Self {
        Self { metrics }
    }

    /// The metrics this handle belongs to.
    pub fn metrics(&self) -> &HeloMetrics {
        &self.metrics
    }

    /// `helo_requests_total{encoder_id, operation, outcome}`; `operation` as
    /// [`HeloRequest::operation`](helo_transport::HeloRequest::operation) gives it,
    /// `outcome` as [`Outcome::as_str`] does.
    pub fn requests_total(
        &self,
        encoder: impl fmt::Display,
        operation: &str,
        outcome: Outcome,
    ) -> IntCounter {
        self.families()
            .total
            .get(&encoder.to_string(), [operation, outcome.as_str()])
    }

    /// `helo_request_duration_seconds{encoder_id, operation}`.
    pub fn request_duration(&self, encoder: impl fmt::Display, operation: &str) -> Histogram {
        self.families()
            .duration
            .get(&encoder.to_string(), [operation])
    }

    /// One finished request: counts it and records how long it took.
    pub fn record(
        &self,
        encoder: impl fmt::Display,
        operation: &str,
        outcome: Outcome,
        took: Duration,
    ) {
        let encoder = encoder.to_string();
        self.requests_total(&encoder, operation, outcome).inc();
        self.request_duration(&encoder, operation)
            .observe(took.as_secs_f64());
    }

    fn families(&self) -> &RequestFamilies {
        &self.metrics.inner().requests
    }
}
