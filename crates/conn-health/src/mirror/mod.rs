//! The device-state mirror: one event connection per encoder keeps the state current.

mod state;
mod task;

use std::{fmt, future::Future, sync::Arc, time::Duration};

use helo_transport::{
    Backoff, BoxError, Device, HeloConnection, HeloError, HeloRequest, HeloResponse,
    DEFAULT_LOGIN_LOCKOUT,
};
use tokio::{sync::watch, task::JoinHandle};
use tower::Service;

use crate::{error::HealthError, observer::HealthObserver, status::EncoderId};

pub use self::state::{DeviceState, MirrorStatus, Reading};

/// The largest [`MirrorConfig::min_poll_gap`]: event connections unused for about a
/// minute expire, so polls must follow each other well within that.
const MAX_MIN_POLL_GAP: Duration = Duration::from_secs(10);

/// Settings of a [`DeviceStateMirror`].
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorConfig {
    /// Delays between failed connects, and after event connections that ended
    /// without one long poll held or bringing events (default 250 ms doubling to
    /// 30 s, full jitter, so that many mirrors reconnecting to one device after a
    /// reboot spread out; a device's `Retry-After` is a floor). It starts again from
    /// the bottom only once a long poll was held by the device or brought events, so
    /// a device that fails or answers at once in a loop stays backed off.
    pub backoff: Backoff,
    /// Least time from the start of one long poll to the start of the next (default
    /// 250 ms, at most 10 s). A device that holds its polls, as the protocol says, is never
    /// delayed by it (its previous poll started long ago), so a change still shows
    /// within this time; one that answers at once gets at most one poll per gap.
    pub min_poll_gap: Duration,
    /// Pause after the device refused the password (or wanted one that is not
    /// configured): retrying cannot help, and repeated refusals may lock the account.
    /// A mirror made by [`DeviceStateMirror::for_device`] waits for the device's
    /// login lockout ([`Device::login_locked_for`]) instead, when there is one.
    /// Default [`DEFAULT_LOGIN_LOCKOUT`] (10 min).
    pub auth_failed_pause: Duration,
    /// How often a device without an event API is probed again (default 10 min).
    pub reprobe_interval: Duration,
    /// Open event connections on the older `/json?action=connect` path.
    pub legacy_connect: bool,
}

impl Default for MirrorConfig {
    fn default() -> Self {
        Self {
            backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(30)),
            min_poll_gap: Duration::from_millis(250),
            auth_failed_pause: DEFAULT_LOGIN_LOCKOUT,
            reprobe_interval: Duration::from_secs(600),
            legacy_connect: false,
        }
    }
}

impl MirrorConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), HealthError> {
        if self.backoff.base().is_zero() {
            return Err(HealthError::config(
                "the mirror's backoff base must be greater than zero",
            ));
        }
        if self.min_poll_gap.is_zero() || self.min_poll_gap > MAX_MIN_POLL_GAP {
            return Err(HealthError::config(format!(
                "the mirror's min_poll_gap must be greater than zero and at most {MAX_MIN_POLL_GAP:?} (an event connection unused for about a minute expires)"
            )));
        }
        if self.auth_failed_pause.is_zero() {
            return Err(HealthError::config(
                "the mirror's auth_failed_pause must be greater than zero",
            ));
        }
        if self.reprobe_interval.is_zero() {
            return Err(HealthError::config(
                "reprobe_interval must be greater than zero",
            ));
        }
        Ok(())
    }
}

/// Keeps one encoder's stream and record state, temperature, free media, system state,
/// link errors and auto-recovery setting current from pushed events, on a dedicated
/// connection (a long poll holds its connection), and publishes them through a
/// `tokio::sync::watch` channel.
///
/// After each event connect it polls the kept parameters once, because devices need
/// not send initial values. An expired event connection is opened again; a broken
/// connection is replaced after a jittered, capped backoff ([`MirrorConfig::backoff`]).
/// Long polls start at least [`MirrorConfig::min_poll_gap`] apart, so a device that
/// answers them at once cannot drive the mirror into a loop. A refused password
/// pauses it for [`MirrorConfig::auth_failed_pause`]. A device that answers
/// `connect` with an error has no event API: the mirror says
/// [`MirrorStatus::Unsupported`], probes again every
/// [`MirrorConfig::reprobe_interval`], and checks poll instead.
///
/// Dropping the mirror (or [`DeviceStateMirror::stop`]) ends its task and closes its
/// connection. It must be created inside a tokio runtime.
pub struct DeviceStateMirror {
    encoder: EncoderId,
    shared: Arc<task::Publisher>,
    rx: watch::Receiver<DeviceState>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for DeviceStateMirror {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceStateMirror")
            .field("encoder", &self.encoder)
            .field("status", &self.rx.borrow().status)
            .finish()
    }
}

impl DeviceStateMirror {
    /// Starts a mirror that opens its connections with `connect` (each call must give a
    /// new connection, not a shared one: the long poll holds it).
    pub fn spawn<C, Fut, S>(
        encoder: EncoderId,
        connect: C,
        config: MirrorConfig,
        observer: Arc<dyn HealthObserver>,
    ) -> Result<Self, HealthError>
    where
        C: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<S, HeloError>> + Send + 'static,
        S: Service<HeloRequest, Response = HeloResponse> + Clone + Send + 'static,
        S::Error: From<HeloError> + Into<BoxError> + Send,
        S::Future: Send,
    {
        Self::start(encoder, connect, config, observer, None)
    }

    fn start<C, Fut, S>(
        encoder: EncoderId,
        connect: C,
        config: MirrorConfig,
        observer: Arc<dyn HealthObserver>,
        device: Option<Device>,
    ) -> Result<Self, HealthError>
    where
        C: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<S, HeloError>> + Send + 'static,
        S: Service<HeloRequest, Response = HeloResponse> + Clone + Send + 'static,
        S::Error: From<HeloError> + Into<BoxError> + Send,
        S::Future: Send,
    {
        config.validate()?;
        let (tx, rx) = watch::channel(DeviceState::default());
        let shared = Arc::new(task::Publisher {
            encoder: encoder.clone(),
            tx,
            observer,
        });
        let task = tokio::spawn(task::run(connect, config, shared.clone(), device));
        Ok(Self {
            encoder,
            shared,
            rx,
            task: Some(task),
        })
    }

    /// Starts a mirror that opens its own [`HeloConnection`]s to `device`. After a
    /// refused password it waits for the device's login lockout to end.
    pub fn for_device(
        device: Device,
        config: MirrorConfig,
        observer: Arc<dyn HealthObserver>,
    ) -> Result<Self, HealthError> {
        let encoder = device.name().clone();
        let lockout = device.clone();
        Self::start(
            encoder,
            move || {
                let device = device.clone();
                async move { HeloConnection::connect(&device).await }
            },
            config,
            observer,
            Some(lockout),
        )
    }

    /// The encoder mirrored.
    pub fn encoder(&self) -> &EncoderId {
        &self.encoder
    }

    /// A receiver of every new state.
    pub fn subscribe(&self) -> watch::Receiver<DeviceState> {
        self.rx.clone()
    }

    /// The current state.
    pub fn state(&self) -> DeviceState {
        self.rx.borrow().clone()
    }

    /// Ends the task, closes its connection and publishes [`MirrorStatus::Stopped`].
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            // Cancelled is the expected end; a panic inside the task has nothing left
            // to clean up either.
            let _ = task.await;
        }
        self.shared.stopped();
    }
}

impl Drop for DeviceStateMirror {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            self.shared.stopped();
        }
    }
}

#[cfg(test)]
mod tests;
