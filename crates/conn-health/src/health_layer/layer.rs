use helo_transport::ConnectionId;
use tower::Layer;

use super::Health;
use crate::{passive::PassiveStats, status::EncoderId};

/// Wraps a connection's stack in [`Health`].
#[derive(Debug, Clone)]
pub struct HealthLayer {
    encoder: EncoderId,
    conn: ConnectionId,
    passive: PassiveStats,
}

impl HealthLayer {
    /// Records into `passive` (usually
    /// [`ConnectionHealthChecker::passive`](crate::ConnectionHealthChecker::passive))
    /// under `encoder` and `conn`.
    pub fn new(encoder: EncoderId, conn: ConnectionId, passive: PassiveStats) -> Self {
        Self {
            encoder,
            conn,
            passive,
        }
    }
}

impl<S> Layer<S> for HealthLayer {
    type Service = Health<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Health::new(inner, self.encoder.clone(), self.conn, self.passive.clone())
    }
}
