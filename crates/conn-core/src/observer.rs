//! What the pool and the thermal model report, as traits a metrics crate implements.
//!
//! Every method has a no-op default, so an implementation picks what it records.
//! Calls are made from the task or thread where the event happens, never while a
//! lock of this crate is held: an observer may call back into the pool or the
//! thermal manager.

use std::time::Duration;

use helo_transport::{ConnectionId, HeloError};

use crate::{
    reasons::{CoolingOutcome, CoolingReason, RetireReason},
    EncoderId,
};

/// Events of the warm pool.
pub trait PoolObserver: Send + Sync + 'static {
    /// A warmup (connect, login, validate) is starting.
    fn warmup_attempt(&self, encoder: &EncoderId) {
        let _ = encoder;
    }
    /// A warmup succeeded after `took`.
    fn warmup_success(&self, encoder: &EncoderId, conn: ConnectionId, took: Duration) {
        let _ = (encoder, conn, took);
    }
    /// A warmup failed.
    fn warmup_failure(&self, encoder: &EncoderId, error: &HeloError) {
        let _ = (encoder, error);
    }
    /// The number of warm (idle, ready to hand out) connections changed.
    fn warm_connections(&self, encoder: &EncoderId, count: usize) {
        let _ = (encoder, count);
    }
    /// The pool closed a connection.
    fn connection_retired(&self, encoder: &EncoderId, conn: ConnectionId, reason: RetireReason) {
        let _ = (encoder, conn, reason);
    }
    /// `stop_warmup` removed the encoder (after retiring its connections).
    fn encoder_removed(&self, encoder: &EncoderId) {
        let _ = encoder;
    }
}

/// Events of the thermal model.
pub trait ThermalObserver: Send + Sync + 'static {
    /// A connection's temperature, reported by `check_temperature`.
    fn temperature(&self, encoder: &EncoderId, conn: ConnectionId, value: f64) {
        let _ = (encoder, conn, value);
    }
    /// An encoder's load % (requests in flight against its per-encoder cap), reported
    /// by `check_temperature`.
    fn load(&self, encoder: &EncoderId, percent: f64) {
        let _ = (encoder, percent);
    }
    /// A cooling started (counted once per cooling: repeated `start_cooling` calls on
    /// a cooling connection report nothing).
    fn cooling_started(&self, encoder: &EncoderId, conn: ConnectionId, reason: CoolingReason) {
        let _ = (encoder, conn, reason);
    }
    /// Step `step` (1-based) of a cooling set the allowed load to `allowed_load` %.
    fn cooling_step(&self, encoder: &EncoderId, conn: ConnectionId, step: u32, allowed_load: f64) {
        let _ = (encoder, conn, step, allowed_load);
    }
    /// A cooling ended after `took`.
    fn cooling_finished(
        &self,
        encoder: &EncoderId,
        conn: ConnectionId,
        took: Duration,
        outcome: CoolingOutcome,
    ) {
        let _ = (encoder, conn, took, outcome);
    }
    /// A device temperature reading (°C).
    fn device_temperature(&self, encoder: &EncoderId, celsius: f64) {
        let _ = (encoder, celsius);
    }
    /// The device went over its temperature limit (reported once per episode: again
    /// only after it has cooled below the limit minus the hysteresis).
    fn device_overheated(&self, encoder: &EncoderId, celsius: f64) {
        let _ = (encoder, celsius);
    }
    /// The thermal model forgot a connection (retired or reset).
    fn connection_removed(&self, encoder: &EncoderId, conn: ConnectionId) {
        let _ = (encoder, conn);
    }
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopObserver;

impl PoolObserver for NoopObserver {}
impl ThermalObserver for NoopObserver {}
