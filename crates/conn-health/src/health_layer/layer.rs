use std::sync::Arc;

use helo_transport::ConnectionId;
use tower::Layer;

use super::Health;
use crate::{
    passive::{ConnWindow, PassiveStats},
    status::EncoderId,
};

/// Wraps a connection's stack in [`Health`].
#[derive(Debug, Clone)]
pub struct HealthLayer {
    window: Arc<ConnWindow>,
}

impl HealthLayer {
    /// Records into `passive` (usually
    /// [`ConnectionHealthChecker::passive`](crate::ConnectionHealthChecker::passive))
    /// under `encoder` and `conn`. The connection's window is looked up here, once:
    /// requests then write to it without touching the shared map.
    pub fn new(encoder: EncoderId, conn: ConnectionId, passive: PassiveStats) -> Self {
        Self {
            window: passive.handle(&encoder, conn),
        }
    }
}

impl<S> Layer<S> for HealthLayer {
    type Service = Health<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Health::from_window(inner, self.window.clone())
    }
}
