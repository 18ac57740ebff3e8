//! Warm connection pools, one per encoder, kept up by a background task each.

mod control;
mod encoder;
mod pooled;

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, MutexGuard, RwLock, Weak},
};

use helo_transport::{ConnectionId, Device};

#[cfg(any(test, feature = "test-util"))]
pub use self::control::MockPoolControl;
pub(crate) use self::control::PoolHooks;
use self::encoder::{EncoderSlot, PoolCtx};
pub use self::{
    control::PoolControl,
    encoder::{EncoderPoolState, PoolStats},
    pooled::PooledConnection,
};
use crate::{
    config::PoolConfig,
    conn::{Connector, HeloConnector},
    error::CoreError,
    observer::PoolObserver,
    reasons::RetireReason,
    EncoderId,
};

/// Keeps warm connections to every started encoder and hands them out without I/O.
///
/// Per encoder, a background task keeps `min_warm` validated connections (TCP
/// connected, logged in when a password is set, answered a cheap request), counting
/// the ones handed out: a checkout does not warm a replacement, but a checkout that
/// finds none warm does warm one more. It hands out the most recently returned
/// connection first, pings idle ones every `keepalive_interval` (a connection returned
/// from use counts as checked, so one that serves every check is never pinged) and
/// replaces dead ones before anyone checks them out, rotates them after a jittered
/// `max_lifetime` (the replacement is warmed first), closes surplus ones idle for
/// `idle_timeout`, and paces connects by
/// `refill_interval`. While an encoder is unreachable it retries with exponential
/// backoff and jitter, one connect per backoff period; a refused password
/// (`HeloError::is_wrong_password`) marks it [`EncoderPoolState::AuthFailed`] at once
/// and waits for the device's login lockout to end (`auth_failed_backoff` when it has
/// none), like every other source of logins to that device.
///
/// Cloning is cheap and shares the pools.
pub struct WarmupManager<C: Connector = HeloConnector> {
    shared: Arc<Shared<C>>,
}

struct Shared<C: Connector> {
    connector: Arc<C>,
    ctx: Arc<PoolCtx>,
    slots: Mutex<HashMap<EncoderId, Arc<EncoderSlot<C::Conn>>>>,
}

impl<C: Connector> Drop for Shared<C> {
    fn drop(&mut self) {
        // The upkeep tasks hold their slots, not the manager; without this they would
        // outlive every handle to it.
        for slot in self
            .slots
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            slot.abort_task();
        }
    }
}

impl<C: Connector> Clone for WarmupManager<C> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<C: Connector> fmt::Debug for WarmupManager<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WarmupManager")
            .field("encoders", &self.encoders())
            .field("config", &self.shared.ctx.config)
            .finish()
    }
}

impl<C: Connector> WarmupManager<C> {
    /// A manager with no encoders yet. Out-of-range settings are pulled into range;
    /// use [`WarmupManager::try_new`] to have them rejected instead.
    pub fn new(connector: C, config: PoolConfig, observer: Arc<dyn PoolObserver>) -> Self {
        Self {
            shared: Arc::new(Shared {
                connector: Arc::new(connector),
                ctx: Arc::new(PoolCtx {
                    config: config.normalized(),
                    observer,
                    hooks: RwLock::new(None),
                }),
                slots: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Like [`WarmupManager::new`], but rejects an invalid configuration.
    pub fn try_new(
        connector: C,
        config: PoolConfig,
        observer: Arc<dyn PoolObserver>,
    ) -> Result<Self, CoreError> {
        config.validate()?;
        Ok(Self::new(connector, config, observer))
    }

    /// The settings in use.
    pub fn config(&self) -> &PoolConfig {
        &self.shared.ctx.config
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<EncoderId, Arc<EncoderSlot<C::Conn>>>> {
        self.shared.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn slot(&self, encoder: &EncoderId) -> Option<Arc<EncoderSlot<C::Conn>>> {
        self.slots().get(encoder).cloned()
    }

    /// Starts keeping `device` warm under the encoder id `device.name()`. Idempotent:
    /// for an encoder already started it only wakes the upkeep task (to apply a changed
    /// `Device`, e.g. a new password, `stop_warmup` first). Must be called within a
    /// tokio runtime (otherwise it logs an error and does nothing).
    pub fn start_warmup(&self, device: Device) {
        let encoder = device.name().clone();
        let mut slots = self.slots();
        if let Some(slot) = slots.get(&encoder) {
            slot.wake();
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(encoder_id = %encoder, "start_warmup called outside a tokio runtime");
            return;
        };
        let slot = Arc::new(EncoderSlot::new(
            encoder.clone(),
            device,
            self.shared.ctx.clone(),
        ));
        let task = runtime.spawn(encoder::upkeep(slot.clone(), self.shared.connector.clone()));
        slot.set_task(task);
        slots.insert(encoder, slot);
    }

    /// Wakes the encoder's upkeep task to refill now. A backoff in progress still
    /// applies (so calling this often costs an unreachable device nothing); see
    /// [`WarmupManager::retry_now`].
    pub fn schedule_warmup(&self, encoder: &EncoderId) {
        if let Some(slot) = self.slot(encoder) {
            slot.wake();
        }
    }

    /// Cancels the backoff (also after a refused password, e.g. once the password was
    /// fixed on the device: the device's login lockout is cleared too) and warms now.
    pub fn retry_now(&self, encoder: &EncoderId) {
        if let Some(slot) = self.slot(encoder) {
            slot.retry_now();
        }
    }

    /// Hands out a warm connection, or `None` when none is warm. Synchronous and
    /// O(1): never waits and never touches the network; the pool refills behind it.
    pub fn get_warm_connection(&self, encoder: &EncoderId) -> Option<PooledConnection<C::Conn>> {
        self.slot(encoder)?.checkout()
    }

    /// Closes the connection now, whatever it is doing, and warms a replacement.
    pub fn force_reset_connection(&self, encoder: &EncoderId, conn: ConnectionId) {
        if let Some(slot) = self.slot(encoder) {
            if slot.retire(conn, RetireReason::Reset).is_ok() {
                tracing::info!(encoder_id = %encoder, connection_id = %conn, "connection force-reset");
            }
        }
    }

    /// Stops the encoder's upkeep task and closes every connection the pool owns
    /// (warm, cooling and checked out). A later `start_warmup` starts afresh.
    pub async fn stop_warmup(&self, encoder: &EncoderId) {
        let Some(slot) = self.slots().remove(encoder) else {
            return;
        };
        slot.stop().await;
        self.shared.ctx.observer.encoder_removed(encoder);
        if let Some(hooks) = self.hooks() {
            hooks.on_encoder_removed(encoder);
        }
    }

    /// Warm connections (ready to hand out) of the encoder; 0 if unknown.
    pub fn warm_count(&self, encoder: &EncoderId) -> usize {
        self.slot(encoder).map_or(0, |s| s.warm_count())
    }

    /// Where the encoder's pool stands; `None` if it is not started.
    pub fn encoder_state(&self, encoder: &EncoderId) -> Option<EncoderPoolState> {
        self.slot(encoder).map(|s| s.state())
    }

    /// Counts of the encoder's connections; `None` if it is not started.
    pub fn pool_stats(&self, encoder: &EncoderId) -> Option<PoolStats> {
        self.slot(encoder).map(|s| s.stats())
    }

    /// The started encoders, sorted.
    pub fn encoders(&self) -> Vec<EncoderId> {
        let mut v: Vec<EncoderId> = self.slots().keys().cloned().collect();
        v.sort();
        v
    }

    pub(crate) fn set_hooks(&self, hooks: Weak<dyn PoolHooks>) {
        *self
            .shared
            .ctx
            .hooks
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(hooks);
    }

    fn hooks(&self) -> Option<Arc<dyn PoolHooks>> {
        self.shared
            .ctx
            .hooks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(Weak::upgrade)
    }

    fn known(&self, encoder: &EncoderId) -> Result<Arc<EncoderSlot<C::Conn>>, CoreError> {
        self.slot(encoder).ok_or_else(|| CoreError::UnknownEncoder {
            encoder: encoder.clone(),
        })
    }
}

impl<C: Connector> PoolControl for WarmupManager<C> {
    fn owns(&self, encoder: &EncoderId, conn: ConnectionId) -> bool {
        self.slot(encoder).is_some_and(|s| s.owns(conn))
    }

    fn usable_count(&self, encoder: &EncoderId) -> usize {
        self.slot(encoder).map_or(0, |s| s.usable_count())
    }

    fn begin_cooling(&self, encoder: &EncoderId, conn: ConnectionId) -> Result<(), CoreError> {
        self.known(encoder)?.begin_cooling(conn)
    }

    fn end_cooling(&self, encoder: &EncoderId, conn: ConnectionId) -> Result<(), CoreError> {
        self.known(encoder)?.end_cooling(conn)
    }

    fn retire(
        &self,
        encoder: &EncoderId,
        conn: ConnectionId,
        reason: RetireReason,
    ) -> Result<(), CoreError> {
        self.known(encoder)?.retire(conn, reason)
    }

    fn force_reset(&self, encoder: &EncoderId, conn: ConnectionId) {
        self.force_reset_connection(encoder, conn);
    }

    fn schedule_warmup(&self, encoder: &EncoderId) {
        WarmupManager::schedule_warmup(self, encoder);
    }
}

#[cfg(test)]
mod tests;
