//! The seam between session logic and the socket: one HTTP round trip.

use futures_util::future::BoxFuture;

use crate::{
    error::HeloError,
    wire::{RawRequest, RawResponse},
};

/// Sends one HTTP request and reads its answer (body capped), nothing more: no
/// timeouts, no login, no retries. Those live above it, where they can be tested
/// against a mock of this trait.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
pub trait Exchange: Send + Sync {
    /// One round trip. `label` names the request in errors (never the password).
    fn exchange(
        &self,
        label: String,
        req: RawRequest,
    ) -> BoxFuture<'static, Result<RawResponse, HeloError>>;
}
