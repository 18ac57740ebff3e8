use std::{
    future::Future,
    pin::Pin,
    task::{ready, Context, Poll},
};

use std::sync::Arc;

use helo_transport::{BoxError, Outcome, RequestClock};
use pin_project_lite::pin_project;
use tokio::time::Instant;

use crate::passive::ConnWindow;

#[derive(Debug)]
pub(super) struct Recorder {
    pub(super) window: Arc<ConnWindow>,
    pub(super) started: Instant,
}

pin_project! {
    /// The future of [`Health`](super::Health): the inner future, recorded when it ends.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        record: Option<Recorder>,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, record: Option<Recorder>) -> Self {
        Self { inner, record }
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
        let result = ready!(this.inner.poll(cx)).map_err(Into::into);
        if let Some(r) = this.record.take() {
            let outcome = match &result {
                Ok(_) => Outcome::Success,
                Err(e) => Outcome::of(e.as_ref()),
            };
            // Published to the metrics layer outside: its end too.
            let now = RequestClock::finish_now();
            r.window
                .record(now, now.saturating_duration_since(r.started), outcome);
        }
        Poll::Ready(result)
    }
}
