//! The device handle: starting, stopping, and direct access for tests.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::counts::Counters;
use crate::state::{later, DeviceState, Down, DownMode};
use crate::{server, DeviceSnapshot, Faults, RequestCounts, RequestKind, SimConfig, SimError};

/// What the device's tasks share.
#[derive(Debug)]
pub(crate) struct DeviceInner {
    pub(crate) cfg: Arc<SimConfig>,
    pub(crate) addr: SocketAddr,
    state: Mutex<DeviceState>,
    pub(crate) faults: watch::Sender<Faults>,
    pub(crate) down: watch::Sender<Option<Down>>,
    pub(crate) shutdown: watch::Sender<bool>,
    /// Wakes the device task to recompute its timer.
    pub(crate) wake: Notify,
    pub(crate) counters: Counters,
}

impl DeviceInner {
    fn new(cfg: SimConfig, addr: SocketAddr) -> Self {
        let faults = cfg.faults.clone();
        let cfg = Arc::new(cfg);
        DeviceInner {
            state: Mutex::new(DeviceState::new(Arc::clone(&cfg), Instant::now())),
            cfg,
            addr,
            faults: watch::Sender::new(faults),
            down: watch::Sender::new(None),
            shutdown: watch::Sender::new(false),
            wake: Notify::new(),
            counters: Counters::default(),
        }
    }

    /// Runs `f` on the state brought up to date; the lock is never held across an await.
    pub(crate) fn with_state<R>(&self, f: impl FnOnce(&mut DeviceState, Instant) -> R) -> R {
        let now = Instant::now();
        let start_fails = self.faults.borrow().stream_start_fails;
        let (result, down, dirty) = {
            // A panic elsewhere cannot leave the state half-written in a way that matters
            // more than stopping the simulator, so a poisoned lock is simply reused.
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.advance(now, start_fails);
            let result = f(&mut s, now);
            (result, s.take_down(), s.take_dirty())
        };
        if let Some(d) = down {
            self.down.send_replace(Some(d));
        }
        if dirty {
            self.wake.notify_one();
        }
        result
    }

    /// Brings the state up to date; returns when it next changes on its own.
    pub(crate) fn tick(&self) -> Option<Instant> {
        self.with_state(|s, now| s.next_deadline(now))
    }

    /// Seconds to send in `Retry-After` while a reboot answers `503`.
    pub(crate) fn unavailable_503(&self, now: Instant) -> Option<u64> {
        match *self.down.borrow() {
            Some(Down {
                until,
                mode: DownMode::Answer503,
            }) if until > now => {
                let left = until.saturating_duration_since(now);
                Some(left.as_secs() + u64::from(left.subsec_nanos() > 0))
            }
            _ => None,
        }
    }

    pub(crate) fn go_unreachable(&self, for_: Duration) {
        self.down.send_replace(Some(Down {
            until: later(Instant::now(), for_),
            mode: DownMode::Refuse,
        }));
    }

    pub(crate) fn set_param(&self, name: &str, value: &str) -> Result<(), SimError> {
        self.with_state(|s, now| {
            let p = s.lookup(name)?;
            s.set(p, value, now, true)
        })
    }

    pub(crate) fn set_faults(&self, faults: Faults) -> Result<(), SimError> {
        faults.validate()?;
        self.faults.send_replace(faults);
        // A stream start may now fail or succeed: recompute at once.
        self.wake.notify_one();
        Ok(())
    }
}

/// One simulated HELO encoder serving HTTP on its own port.
///
/// Dropping the handle stops the device; [`SimDevice::shutdown`] also waits for it.
pub struct SimDevice {
    inner: Arc<DeviceInner>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for SimDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimDevice")
            .field("addr", &self.inner.addr)
            .field("sys_name", &self.inner.cfg.sys_name)
            .finish_non_exhaustive()
    }
}

impl SimDevice {
    /// Binds `addr` (port 0 picks a free port) and serves in background tasks.
    pub async fn start(addr: SocketAddr, config: SimConfig) -> Result<SimDevice, SimError> {
        config.validate()?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| SimError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| SimError::Bind { addr, source })?;
        let inner = Arc::new(DeviceInner::new(config, local));
        let task = tokio::spawn(server::run_device(Arc::clone(&inner), listener));
        Ok(SimDevice {
            inner,
            task: Some(task),
        })
    }

    pub(crate) fn inner(&self) -> &Arc<DeviceInner> {
        &self.inner
    }

    /// The address the device listens on.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// `http://IP:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// Closes the listener and every live connection, and waits until they are gone.
    pub async fn shutdown(mut self) {
        self.inner.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    // === state ===

    /// The device's state now.
    pub fn snapshot(&self) -> DeviceSnapshot {
        self.inner.with_state(|s, now| s.snapshot(now))
    }

    /// A parameter's value as the device would send it; `None` when unknown/unsupported.
    pub fn param(&self, name: &str) -> Option<String> {
        self.inner.with_state(|s, now| {
            let p = s.lookup(name).ok()?;
            Some(s.value(p, now).to_text())
        })
    }

    /// Sets a parameter as a client would, but read-only ones too (e.g.
    /// `eParamID_SystemState` = 10, `eParamID_ReplicatorStreamState` = 4,
    /// `eParamID_Temperature` = 90). The durations, being computed, cannot be set.
    pub fn set_param(&self, name: &str, value: &str) -> Result<(), SimError> {
        self.inner.set_param(name, value)
    }

    /// Fails the stream now (`eRRSFailingInStream`; an idle stream shows
    /// `eRRSFailingInIdle`). False when the stream was in neither state.
    pub fn fail_stream_now(&self) -> bool {
        self.inner.with_state(|s, now| s.fail_stream(now))
    }

    /// Fails the recording now, like [`SimDevice::fail_stream_now`].
    pub fn fail_record_now(&self) -> bool {
        self.inner.with_state(|s, now| s.fail_record(now))
    }

    /// Jumps to `temp_c` °C. A device that streams or records stays that hot until it
    /// goes idle, then cools toward its baseline.
    pub fn overheat(&self, temp_c: i64) {
        self.inner.with_state(|s, now| s.overheat(now, temp_c));
    }

    /// Forgets an overheat: back to the temperature normal for what the device does.
    pub fn cool_down(&self) {
        self.inner.with_state(|s, now| s.cool_down(now));
    }

    /// Ends every login session now.
    pub fn expire_sessions_now(&self) {
        self.inner.with_state(|s, _| s.sessions.expire_all());
    }

    /// Adds to `eParamID_LinkErrors`.
    pub fn bump_link_errors(&self, n: u64) {
        self.inner.with_state(|s, now| s.bump_link_errors(now, n));
    }

    /// Reboots now, exactly as `eParamID_Reboot` = 1 does.
    pub fn reboot(&self) {
        self.inner.with_state(|s, now| s.reboot(now));
    }

    /// Closes the listener (connections are refused) and live connections for `for_`.
    pub fn go_unreachable(&self, for_: Duration) {
        self.inner.go_unreachable(for_);
    }

    // === faults ===

    /// The faults now in force.
    pub fn faults(&self) -> Faults {
        self.inner.faults.borrow().clone()
    }

    /// Replaces the faults.
    pub fn set_faults(&self, faults: Faults) -> Result<(), SimError> {
        self.inner.set_faults(faults)
    }

    /// Changes some faults: `dev.update_faults(|f| f.hang = true)`.
    pub fn update_faults(&self, change: impl FnOnce(&mut Faults)) -> Result<(), SimError> {
        let mut f = self.faults();
        change(&mut f);
        self.inner.set_faults(f)
    }

    /// Clears every fault; requests held by `hang` are then answered.
    pub fn clear_faults(&self) {
        self.inner.faults.send_replace(Faults::default());
        self.inner.wake.notify_one();
    }

    // === counters ===

    /// Requests received so far.
    pub fn request_counts(&self) -> RequestCounts {
        self.inner.counters.snapshot()
    }

    /// One request counter: how many requests of `kind` arrived since the start or the
    /// last [`SimDevice::reset_request_counts`].
    pub fn request_count(&self, kind: RequestKind) -> u64 {
        self.inner.counters.snapshot().of(kind)
    }

    /// Sets every request counter back to zero.
    pub fn reset_request_counts(&self) {
        self.inner.counters.reset();
    }
}

impl Drop for SimDevice {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            // Aborting drops the listener and, through the task's JoinSet, every connection.
            task.abort();
        }
    }
}
