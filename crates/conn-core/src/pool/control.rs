//! How the thermal model steers the pool, and how the pool tells it what happened.

use helo_transport::ConnectionId;

use crate::{error::CoreError, reasons::RetireReason, EncoderId};

/// The pool operations the thermal model needs, as a small object-safe trait so that
/// [`ConnectionThermalManager`](crate::ConnectionThermalManager) is not generic over
/// the connector. [`WarmupManager`](crate::WarmupManager) implements it; tests use
/// `MockPoolControl` (feature `test-util`).
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
pub trait PoolControl: Send + Sync + 'static {
    /// Whether the pool owns this connection (warm, checked out or cooling).
    fn owns(&self, encoder: &EncoderId, conn: ConnectionId) -> bool;
    /// Connections of the encoder that can take work: owned, open, not cooling.
    fn usable_count(&self, encoder: &EncoderId) -> usize;
    /// Takes the connection out of rotation (it is no longer handed out, and not
    /// returned to the warm set when dropped) and starts warming its replacement.
    fn begin_cooling(&self, encoder: &EncoderId, conn: ConnectionId) -> Result<(), CoreError>;
    /// Puts a cooled connection back into rotation.
    fn end_cooling(&self, encoder: &EncoderId, conn: ConnectionId) -> Result<(), CoreError>;
    /// Closes the connection and forgets it; the pool warms a replacement.
    fn retire(
        &self,
        encoder: &EncoderId,
        conn: ConnectionId,
        reason: RetireReason,
    ) -> Result<(), CoreError>;
    /// Closes the connection at once, whatever its state (no-op if unknown).
    fn force_reset(&self, encoder: &EncoderId, conn: ConnectionId);
    /// Wakes the encoder's upkeep task to refill now (backoff still applies).
    fn schedule_warmup(&self, encoder: &EncoderId);
}

/// What the pool tells the thermal model. Called with no lock of the pool held.
pub(crate) trait PoolHooks: Send + Sync {
    /// A checked-out connection is coming back: a hot one may start cooling here (the
    /// pool then keeps it out of the warm set).
    fn on_checkin(&self, encoder: &EncoderId, conn: ConnectionId);
    /// The pool closed and forgot a connection.
    fn on_retired(&self, encoder: &EncoderId, conn: ConnectionId);
    /// `stop_warmup` removed the encoder.
    fn on_encoder_removed(&self, encoder: &EncoderId);
}
