//! The mechanism in front of each connection: admits work up to the allowed load the
//! thermal manager publishes, sheds the rest, and counts outcomes for the manager.

mod error;
mod future;
mod layer;

use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use helo_transport::BoxError;
use tower::Service;

pub use self::{error::Overloaded, future::ResponseFuture, layer::ThermalLayer};
use crate::thermal::ConnThermal;

/// Refuses at once, with [`Overloaded`], work beyond the connection's allowed load,
/// the encoder's in-flight cap, or what the connection can queue (its `poll_ready` is
/// pending), so the caller can go to another connection; counts how admitted work
/// ended ([`helo_transport::Outcome`]) for the thermal manager.
///
/// A gate, not a policy: the allowed load is the one the
/// [`ConnectionThermalManager`](crate::ConnectionThermalManager) last published, read
/// with atomics, and outcomes are counted into per-connection atomics the manager
/// folds on its own tick. A request takes no lock and reads no clock here.
///
/// Built by [`ThermalLayer`], which
/// [`ConnectionThermalManager::layer`](crate::ConnectionThermalManager::layer) hands out.
pub struct Thermal<S> {
    inner: S,
    state: Arc<ConnThermal>,
    is_ready: bool,
}

impl<S> Thermal<S> {
    pub(crate) fn new(inner: S, state: Arc<ConnThermal>) -> Self {
        Self {
            inner,
            state,
            is_ready: false,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming the wrapper.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone> Clone for Thermal<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            state: self.state.clone(),
            // Readiness belongs to one handle; a clone must poll for its own.
            is_ready: false,
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Thermal<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Thermal")
            .field("inner", &self.inner)
            .field("encoder", &self.state.encoder)
            .field("conn", &self.state.conn)
            .finish()
    }
}

impl<S, R> Service<R> for Thermal<S>
where
    S: Service<R>,
    S::Error: Into<BoxError>,
    R: fmt::Display,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Like tower's load-shed, always report ready: a connection that cannot take
        // the request now must refuse it at once rather than make the caller queue,
        // because the caller has other (cooler) connections to go to. The connection
        // below is pending only when its bounded queue is full, so "not ready" is
        // real back-pressure, and shed like a full allowed load.
        self.is_ready = match self.inner.poll_ready(cx) {
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
            r => r.is_ready(),
        };
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: R) -> Self::Future {
        if !self.is_ready {
            return ResponseFuture::overloaded(Overloaded::not_ready(
                self.state.encoder.clone(),
                self.state.conn,
                &req,
            ));
        }
        self.is_ready = false;
        match self.state.try_acquire(&req) {
            Ok(()) => ResponseFuture::admitted(self.inner.call(req), self.state.clone()),
            Err(overloaded) => ResponseFuture::overloaded(overloaded),
        }
    }
}

#[cfg(test)]
mod tests;
