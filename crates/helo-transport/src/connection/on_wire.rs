//! A round trip on the wire that must not be dropped half-way.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
    time::Duration,
};

use futures_util::future::BoxFuture;

use super::link::Link;
use crate::{error::HeloError, wire::RawResponse};

/// A request sent (or about to be) on an HTTP/1.1 connection, with its answer not yet
/// read.
///
/// Dropping a round trip half-way would leave part of its answer on the socket, to be
/// read as the next request's; closing the connection instead would fail every
/// request queued behind it. Dropped before it finishes, because its deadline passed
/// or its caller gave up, this hands the round trip to [`OnTheWire::drain`], which
/// reads the late answer in the background.
pub(super) struct OnTheWire {
    fut: Option<BoxFuture<'static, Result<RawResponse, HeloError>>>,
    link: Arc<Link>,
    label: String,
    grace: Duration,
}

impl OnTheWire {
    pub(super) fn new(
        fut: BoxFuture<'static, Result<RawResponse, HeloError>>,
        link: Arc<Link>,
        label: String,
        grace: Duration,
    ) -> Self {
        Self {
            fut: Some(fut),
            link,
            label,
            grace,
        }
    }
}

impl Future for OnTheWire {
    type Output = Result<RawResponse, HeloError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(fut) = self.fut.as_mut() else {
            return Poll::Ready(Err(self.link.closed_error(&self.label)));
        };
        let result = ready!(fut.as_mut().poll(cx));
        self.fut = None;
        Poll::Ready(result)
    }
}

impl Drop for OnTheWire {
    fn drop(&mut self) {
        if let Some(fut) = self.fut.take() {
            Self::drain(
                fut,
                self.link.clone(),
                std::mem::take(&mut self.label),
                self.grace,
            );
        }
    }
}
