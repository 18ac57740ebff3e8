use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
};

use helo_transport::{BoxError, Outcome, RequestClock};
use pin_project_lite::pin_project;
use tokio::time::Instant;

use super::Handles;

pin_project! {
    /// The response future of [`Metrics`](super::Metrics): records the request when it
    /// finishes. A request dropped before it finishes (an outer layer gave up on it) is
    /// not recorded here.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        handles: Arc<Handles>,
        operation: &'static str,
        start: Instant,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(
        inner: F,
        handles: Arc<Handles>,
        operation: &'static str,
        start: Instant,
    ) -> Self {
        Self {
            inner,
            handles,
            operation,
            start,
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let (polled, finished) = RequestClock::polling(|| this.inner.poll(cx));
        let result = ready!(polled).map_err(Into::into);
        let outcome = match &result {
            Ok(_) => Outcome::Success,
            Err(err) => Outcome::of(&**err),
        };
        // When a layer inside (the health layer) read the clock as the request
        // finished, that instant is the end; otherwise read it here.
        let end = finished.unwrap_or_else(Instant::now);
        this.handles.record(
            this.operation,
            outcome,
            end.saturating_duration_since(*this.start),
        );
        Poll::Ready(result)
    }
}
