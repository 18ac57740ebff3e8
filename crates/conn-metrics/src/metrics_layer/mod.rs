//! Counts and times every request through a stack: `helo_requests_total` and
//! `helo_request_duration_seconds`.
//!
//! The label handles for one encoder are resolved once, on the first request of each
//! operation and outcome, then cached: a request costs a clock read (the other one,
//! at its end, is the health layer's when it sits inside, see
//! [`RequestClock`](helo_transport::RequestClock)), an `Arc` clone,
//! one atomic increment and one histogram observation — no allocation, no hashing.
//! Series that never happen are never created, which keeps a 5 000-encoder scrape
//! small.

mod future;
mod layer;

use std::{
    fmt,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
    time::Duration,
};

use helo_transport::{BoxError, HeloRequest, Outcome, RequestClock};
use prometheus::Histogram;

use crate::series::IntCounter;
use tokio::time::Instant;
use tower::Service;

pub use self::{future::ResponseFuture, layer::MetricsLayer};
use crate::{registry::HeloMetrics, requests::RequestMetrics};

/// Every value [`HeloRequest::operation`] gives today; anything else (a newer
/// transport) still gets counted, through the slower labelled path.
pub(crate) const OPERATIONS: [&str; 6] = [
    "get_param",
    "set_param",
    "get_descriptor",
    "login",
    "connect_events",
    "wait_events",
];

/// Records `helo_requests_total` and `helo_request_duration_seconds` for every request
/// to one encoder; see [`MetricsLayer`].
#[derive(Clone, Debug)]
pub struct Metrics<S> {
    inner: S,
    handles: Arc<Handles>,
}

impl<S> Metrics<S> {
    /// Wraps `inner`, recording into `metrics` under `encoder_id = encoder`.
    pub fn new(inner: S, metrics: &HeloMetrics, encoder: impl fmt::Display) -> Self {
        Self {
            inner,
            handles: Arc::new(Handles::new(metrics, encoder)),
        }
    }

    pub(crate) fn from_handles(inner: S, handles: Arc<Handles>) -> Self {
        Self { inner, handles }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S> Service<HeloRequest> for Metrics<S>
where
    S: Service<HeloRequest>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    // Readiness is not a request: a stack that sheds load at `poll_ready` is counted by
    // the layer that sheds, not here.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: HeloRequest) -> Self::Future {
        let operation = req.operation();
        // The request's first clock read, shared with the layers inside (the health
        // layer's start, the connection's deadline when the wire is free).
        let start = Instant::now();
        let inner = RequestClock::calling(start, || self.inner.call(req));
        ResponseFuture::new(inner, Arc::clone(&self.handles), operation, start)
    }
}

/// The series of one operation: its duration and one counter per outcome, each
/// created on first use.
#[derive(Default)]
struct OperationSeries {
    duration: OnceLock<Histogram>,
    outcomes: [OnceLock<IntCounter>; Outcome::ALL.len()],
}

/// The label handles of one encoder, resolved on first use and cached.
pub(crate) struct Handles {
    encoder: Box<str>,
    requests: RequestMetrics,
    /// Boxed on an operation's first request: an encoder's checks use one or two of
    /// the six, and twelve handles for each of all six were a kilobyte an encoder.
    operations: [OnceLock<Box<OperationSeries>>; OPERATIONS.len()],
}

impl Handles {
    fn new(metrics: &HeloMetrics, encoder: impl fmt::Display) -> Self {
        let encoder: Box<str> = encoder.to_string().into();
        let requests = metrics.requests();
        let operations = OPERATIONS.map(|_| OnceLock::new());
        Self {
            encoder,
            requests,
            operations,
        }
    }

    /// Records one finished request.
    pub(crate) fn record(&self, operation: &'static str, outcome: Outcome, took: Duration) {
        match OPERATIONS.iter().position(|known| *known == operation) {
            Some(i) => {
                let series = self.operations[i].get_or_init(Box::default);
                series.outcomes[outcome.index()]
                    .get_or_init(|| {
                        self.requests
                            .requests_total(&self.encoder, operation, outcome)
                    })
                    .inc();
                series
                    .duration
                    .get_or_init(|| self.requests.request_duration(&self.encoder, operation))
                    .observe(took.as_secs_f64());
            }
            None => self
                .requests
                .record(&self.encoder, operation, outcome, took),
        }
    }
}

impl fmt::Debug for Handles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handles")
            .field("encoder", &self.encoder)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
