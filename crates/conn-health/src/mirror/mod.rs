//! The device-state mirror: one event connection per encoder keeps the state current.

mod state;
mod task;

use std::{fmt, future::Future, sync::Arc, time::Duration};

use helo_transport::{
    Backoff, BoxError, Device, HeloConnection, HeloError, HeloRequest, HeloResponse,
};
use tokio::{sync::watch, task::JoinHandle};
use tower::Service;

use crate::{error::HealthError, observer::HealthObserver, status::EncoderId};

pub use self::state::{DeviceState, MirrorStatus, Reading};

/// Settings of a [`DeviceStateMirror`].
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorConfig {
    /// Delays between failed connects (default 250 ms doubling to 30 s, full jitter,
    /// so that many mirrors reconnecting to one device after a reboot spread out; a
    /// device's `Retry-After` is a floor).
    pub backoff: Backoff,
    /// How often a device without an event API is probed again (default 10 min).
    pub reprobe_interval: Duration,
    /// Open event connections on the older `/json?action=connect` path.
    pub legacy_connect: bool,
}

impl Default for MirrorConfig {
    fn default() -> Self {
        Self {
            backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(30)),
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
/// connection is replaced after a jittered, capped backoff ([`MirrorConfig::backoff`]). A device that answers
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
        config.validate()?;
        let (tx, rx) = watch::channel(DeviceState::default());
        let shared = Arc::new(task::Publisher {
            encoder: encoder.clone(),
            tx,
            observer,
        });
        let task = tokio::spawn(task::run(connect, config, shared.clone()));
        Ok(Self {
            encoder,
            shared,
            rx,
            task: Some(task),
        })
    }

    /// Starts a mirror that opens its own [`HeloConnection`]s to `device`.
    pub fn for_device(
        device: Device,
        config: MirrorConfig,
        observer: Arc<dyn HealthObserver>,
    ) -> Result<Self, HealthError> {
        let encoder = device.name().clone();
        Self::spawn(
            encoder,
            move || {
                let device = device.clone();
                async move { HeloConnection::connect(&device).await }
            },
            config,
            observer,
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
