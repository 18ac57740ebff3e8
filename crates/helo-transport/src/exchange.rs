//! The seam between session logic and the socket: one HTTP round trip.

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::{
    error::HeloError,
    wire::{RawRequest, RawResponse},
};

/// Sends one HTTP request and reads its answer (body capped), nothing more: no login,
/// no retries. Those live above it, where they can be tested against a mock of this
/// trait.
///
/// `limit` bounds the round trip once the request has the connection: waiting behind
/// other requests on the same HTTP/1.1 connection does not count, so a health check
/// that asks six things at once does not time out its last question on a slow but
/// healthy device. An exchange that runs out of time answers
/// [`HeloError::Timeout`]; one that waited too long for the connection,
/// [`HeloError::QueueTimeout`].
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
pub trait Exchange: Send + Sync {
    /// One round trip. `label` names the request in errors (never the password).
    fn exchange(
        &self,
        label: String,
        req: RawRequest,
        limit: Duration,
    ) -> BoxFuture<'static, Result<RawResponse, HeloError>>;
}
