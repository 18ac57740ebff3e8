//! Request families, and the outcome labels they use.

use std::{error::Error as StdError, fmt, time::Duration};

use helo_transport::{ErrorClass, HeloError};
use prometheus::{Histogram, IntCounter, Registry};

use crate::{
    error::MetricsError,
    family::{self, EncoderSeries, Family},
    registry::HeloMetrics,
};

/// Request durations: a parameter read takes milliseconds, a login up to seconds, and
/// an event long poll is held by the device for about 50 s.
pub(crate) const REQUEST_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// How a request ended, as the `outcome` label of `helo_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestOutcome {
    /// `ok`: the device answered as asked.
    Ok,
    /// `connection`: the device could not be reached, or the connection broke.
    Connection,
    /// `timeout`: no answer in time (from the transport or a `Timeout` layer).
    Timeout,
    /// `unsupported`: the device does not know the parameter — an answer, not a fault.
    Unsupported,
    /// `other`: anything else (rejected, protocol error, overload shedding …).
    Other,
}

impl RequestOutcome {
    /// Every outcome, in label order.
    pub const ALL: [Self; 5] = [
        Self::Ok,
        Self::Connection,
        Self::Timeout,
        Self::Unsupported,
        Self::Other,
    ];

    /// The outcome of a failed request: `unsupported` when a [`HeloError`] anywhere in
    /// the `source()` chain says so, otherwise the error's [`ErrorClass`].
    pub fn of_error(err: &(dyn StdError + 'static)) -> Self {
        let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
        while let Some(e) = cur {
            if e.downcast_ref::<HeloError>()
                .is_some_and(HeloError::is_unsupported)
            {
                return Self::Unsupported;
            }
            cur = e.source();
        }
        match ErrorClass::of(err) {
            ErrorClass::Connection => Self::Connection,
            ErrorClass::Timeout => Self::Timeout,
            ErrorClass::Other => Self::Other,
        }
    }

    /// The label value: `ok`, `connection`, `timeout`, `unsupported` or `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Connection => "connection",
            Self::Timeout => "timeout",
            Self::Unsupported => "unsupported",
            Self::Other => "other",
        }
    }

    /// Position in [`ALL`](Self::ALL).
    pub(crate) fn index(self) -> usize {
        match self {
            Self::Ok => 0,
            Self::Connection => 1,
            Self::Timeout => 2,
            Self::Unsupported => 3,
            Self::Other => 4,
        }
    }
}

impl fmt::Display for RequestOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) struct RequestFamilies {
    total: Family<IntCounter, 2>,
    duration: Family<Histogram, 1>,
}

impl RequestFamilies {
    pub(crate) fn register(registry: &Registry) -> Result<Self, MetricsError> {
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
                ["operation"],
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
    /// [`HeloRequest::operation`](helo_transport::HeloRequest::operation) gives it.
    pub fn requests_total(
        &self,
        encoder: impl fmt::Display,
        operation: &str,
        outcome: RequestOutcome,
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
        outcome: RequestOutcome,
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

#[cfg(test)]
mod tests {
    use helo_transport::{BoxError, DeviceName, TimeoutPhase};

    use super::*;

    fn dev() -> DeviceName {
        DeviceName::from("enc-1")
    }

    #[derive(Debug)]
    struct Wrapped(BoxError);

    impl fmt::Display for Wrapped {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("wrapped")
        }
    }

    impl StdError for Wrapped {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&*self.0)
        }
    }

    #[test]
    fn outcomes_follow_error_classes_and_unsupported() {
        let cases: Vec<(BoxError, RequestOutcome)> = vec![
            (
                Box::new(HeloError::UnsupportedParam {
                    device: dev(),
                    request: "get eParamID_X".into(),
                    param: "eParamID_X".into(),
                }),
                RequestOutcome::Unsupported,
            ),
            (
                Box::new(Wrapped(Box::new(HeloError::UnsupportedParam {
                    device: dev(),
                    request: "get eParamID_X".into(),
                    param: "eParamID_X".into(),
                }))),
                RequestOutcome::Unsupported,
            ),
            (
                Box::new(HeloError::Timeout {
                    device: dev(),
                    request: "get eParamID_X".into(),
                    phase: TimeoutPhase::Response,
                    after: Duration::from_secs(3),
                }),
                RequestOutcome::Timeout,
            ),
            (
                Box::new(tower::timeout::error::Elapsed::new()),
                RequestOutcome::Timeout,
            ),
            (
                Box::new(HeloError::Connect {
                    device: dev(),
                    request: "get eParamID_X".into(),
                    source: "refused".into(),
                }),
                RequestOutcome::Connection,
            ),
            (
                Box::new(HeloError::Rejected {
                    device: dev(),
                    request: "set eParamID_X".into(),
                    message: "read only".into(),
                }),
                RequestOutcome::Other,
            ),
            ("overloaded".into(), RequestOutcome::Other),
        ];
        for (err, outcome) in cases {
            assert_eq!(RequestOutcome::of_error(&*err), outcome, "{err}");
        }
    }

    #[test]
    fn indexes_match_all() {
        for (i, outcome) in RequestOutcome::ALL.into_iter().enumerate() {
            assert_eq!(outcome.index(), i);
            assert_eq!(outcome.to_string(), outcome.as_str());
        }
    }
}
