//! Test helpers (feature `test-util`): a scripted connection and connector, and an
//! observer that records every event.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

use futures_util::future::BoxFuture;
use helo_transport::{AuthFailure, ConnectionId, Device, HeloError};
use tokio::time::Instant;

use crate::{
    conn::{Connector, PoolConn},
    observer::{PoolObserver, ThermalObserver},
    reasons::{CoolingOutcome, CoolingReason, RetireReason},
    EncoderId,
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn refused(device: &EncoderId, request: &str) -> HeloError {
    HeloError::Connect {
        device: device.clone(),
        request: request.to_string(),
        source: "connection refused (fake)".into(),
    }
}

/// An in-memory connection: answers pings unless told otherwise, counts them.
#[derive(Debug, Clone)]
pub struct FakeConn {
    inner: Arc<FakeConnInner>,
}

#[derive(Debug)]
struct FakeConnInner {
    id: ConnectionId,
    device: EncoderId,
    closed: AtomicBool,
    ping_ok: AtomicBool,
    ping_shed: AtomicBool,
    pings: AtomicUsize,
}

impl FakeConn {
    /// A fresh open connection to `device` with a new id.
    pub fn new(device: impl Into<EncoderId>) -> Self {
        Self {
            inner: Arc::new(FakeConnInner {
                id: ConnectionId::next(),
                device: device.into(),
                closed: AtomicBool::new(false),
                ping_ok: AtomicBool::new(true),
                ping_shed: AtomicBool::new(false),
                pings: AtomicUsize::new(0),
            }),
        }
    }

    /// Makes later pings succeed or fail.
    pub fn set_ping_ok(&self, ok: bool) {
        self.inner.ping_ok.store(ok, Ordering::SeqCst);
    }

    /// Makes later pings fail as the device's request budget refuses them (not sent).
    pub fn set_ping_shed_by_budget(&self, shed: bool) {
        self.inner.ping_shed.store(shed, Ordering::SeqCst);
    }

    /// Pings answered so far (including failed ones).
    pub fn pings(&self) -> usize {
        self.inner.pings.load(Ordering::SeqCst)
    }

    /// Simulates the device closing the connection.
    pub fn break_now(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
    }
}

impl PoolConn for FakeConn {
    fn id(&self) -> ConnectionId {
        self.inner.id
    }

    fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    fn ping(&self) -> BoxFuture<'static, Result<(), HeloError>> {
        self.inner.pings.fetch_add(1, Ordering::SeqCst);
        let ok = self.inner.ping_ok.load(Ordering::SeqCst) && !self.is_closed();
        let shed = self.inner.ping_shed.load(Ordering::SeqCst);
        let device = self.inner.device.clone();
        Box::pin(async move {
            if shed {
                Err(HeloError::BudgetExhausted {
                    device: device.clone(),
                    request: "ping".to_string(),
                    per_minute: 1,
                    retry_in: std::time::Duration::from_secs(60),
                })
            } else if ok {
                Ok(())
            } else {
                Err(refused(&device, "ping"))
            }
        })
    }

    fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
    }
}

/// How a [`FakeConnector`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FakeMode {
    /// Connects; the connection answers pings.
    Up,
    /// Connection refused.
    Refuse,
    /// The device refuses the password.
    WrongPassword,
    /// Connects, but the validation ping fails.
    PingFails,
    /// Never answers.
    Hang,
    /// Answers `503` with `Retry-After: n` seconds (rebooting).
    Unavailable(u64),
}

/// A scripted [`Connector`] of [`FakeConn`]s that remembers what it made.
#[derive(Debug, Clone)]
pub struct FakeConnector {
    inner: Arc<FakeConnectorInner>,
}

#[derive(Debug)]
struct FakeConnectorInner {
    mode: Mutex<FakeMode>,
    attempts: Mutex<Vec<Instant>>,
    made: Mutex<Vec<FakeConn>>,
}

impl Default for FakeConnector {
    fn default() -> Self {
        Self::new(FakeMode::Up)
    }
}

impl FakeConnector {
    /// A connector answering as `mode`.
    pub fn new(mode: FakeMode) -> Self {
        Self {
            inner: Arc::new(FakeConnectorInner {
                mode: Mutex::new(mode),
                attempts: Mutex::new(Vec::new()),
                made: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Changes how later connects answer.
    pub fn set_mode(&self, mode: FakeMode) {
        *lock(&self.inner.mode) = mode;
    }

    /// Connect attempts so far.
    pub fn attempts(&self) -> usize {
        lock(&self.inner.attempts).len()
    }

    /// When each connect attempt happened.
    pub fn attempt_times(&self) -> Vec<Instant> {
        lock(&self.inner.attempts).clone()
    }

    /// Every connection made, in order.
    pub fn made(&self) -> Vec<FakeConn> {
        lock(&self.inner.made).clone()
    }

    /// The connection made with this id.
    pub fn find(&self, id: ConnectionId) -> Option<FakeConn> {
        lock(&self.inner.made)
            .iter()
            .find(|c| c.id() == id)
            .cloned()
    }

    /// Pings over all connections made.
    pub fn pings(&self) -> usize {
        lock(&self.inner.made).iter().map(FakeConn::pings).sum()
    }
}

impl Connector for FakeConnector {
    type Conn = FakeConn;

    fn connect(&self, device: &Device) -> BoxFuture<'static, Result<FakeConn, HeloError>> {
        lock(&self.inner.attempts).push(Instant::now());
        let mode = *lock(&self.inner.mode);
        let name = device.name().clone();
        let made = match mode {
            FakeMode::Up | FakeMode::PingFails => {
                let c = FakeConn::new(name.clone());
                c.set_ping_ok(mode == FakeMode::Up);
                lock(&self.inner.made).push(c.clone());
                Some(c)
            }
            _ => None,
        };
        Box::pin(async move {
            match (mode, made) {
                (FakeMode::Hang, _) => std::future::pending().await,
                (FakeMode::Unavailable(secs), _) => Err(HeloError::Unavailable {
                    device: name,
                    request: "connect".to_string(),
                    retry_after: Some(std::time::Duration::from_secs(secs)),
                }),
                (FakeMode::WrongPassword, _) => Err(HeloError::Auth {
                    device: name,
                    request: "login".to_string(),
                    failure: AuthFailure::WrongPassword {
                        message: "Login Failed - Passwords did not match".to_string(),
                    },
                }),
                (_, Some(c)) => Ok(c),
                _ => Err(refused(&name, "connect")),
            }
        })
    }
}

/// One observed event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[allow(missing_docs)] // Each variant mirrors the observer method of the same name.
pub enum Event {
    WarmupAttempt {
        encoder: EncoderId,
    },
    WarmupSuccess {
        encoder: EncoderId,
        conn: ConnectionId,
        took: Duration,
    },
    WarmupFailure {
        encoder: EncoderId,
        error: String,
        wrong_password: bool,
    },
    WarmConnections {
        encoder: EncoderId,
        count: usize,
    },
    ConnectionRetired {
        encoder: EncoderId,
        conn: ConnectionId,
        reason: RetireReason,
    },
    EncoderRemoved {
        encoder: EncoderId,
    },
    Temperature {
        encoder: EncoderId,
        conn: ConnectionId,
        value: f64,
    },
    Load {
        encoder: EncoderId,
        percent: f64,
    },
    CoolingStarted {
        encoder: EncoderId,
        conn: ConnectionId,
        reason: CoolingReason,
    },
    CoolingStep {
        encoder: EncoderId,
        conn: ConnectionId,
        step: u32,
        allowed_load: f64,
    },
    CoolingFinished {
        encoder: EncoderId,
        conn: ConnectionId,
        took: Duration,
        outcome: CoolingOutcome,
    },
    DeviceTemperature {
        encoder: EncoderId,
        celsius: f64,
    },
    DeviceOverheated {
        encoder: EncoderId,
        celsius: f64,
    },
    ConnectionRemoved {
        encoder: EncoderId,
        conn: ConnectionId,
    },
}

/// Records every pool and thermal event, with the (tokio) time it happened.
#[derive(Debug, Default)]
pub struct RecordingObserver {
    events: Mutex<Vec<(Instant, Event)>>,
}

impl RecordingObserver {
    /// An empty recorder, shared.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn push(&self, e: Event) {
        lock(&self.events).push((Instant::now(), e));
    }

    /// Every event so far, in order.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.events).iter().map(|(_, e)| e.clone()).collect()
    }

    /// Every event so far with its time.
    pub fn timed_events(&self) -> Vec<(Instant, Event)> {
        lock(&self.events).clone()
    }

    /// The events that match.
    pub fn matching(&self, f: impl Fn(&Event) -> bool) -> Vec<Event> {
        lock(&self.events)
            .iter()
            .map(|(_, e)| e)
            .filter(|e| f(e))
            .cloned()
            .collect()
    }

    /// How many events match.
    pub fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        lock(&self.events).iter().filter(|(_, e)| f(e)).count()
    }

    /// Forgets everything recorded.
    pub fn clear(&self) {
        lock(&self.events).clear();
    }
}

impl PoolObserver for RecordingObserver {
    fn warmup_attempt(&self, encoder: &EncoderId) {
        self.push(Event::WarmupAttempt {
            encoder: encoder.clone(),
        });
    }
    fn warmup_success(&self, encoder: &EncoderId, conn: ConnectionId, took: Duration) {
        self.push(Event::WarmupSuccess {
            encoder: encoder.clone(),
            conn,
            took,
        });
    }
    fn warmup_failure(&self, encoder: &EncoderId, error: &HeloError) {
        self.push(Event::WarmupFailure {
            encoder: encoder.clone(),
            error: error.to_string(),
            wrong_password: error.is_wrong_password(),
        });
    }
    fn warm_connections(&self, encoder: &EncoderId, count: usize) {
        self.push(Event::WarmConnections {
            encoder: encoder.clone(),
            count,
        });
    }
    fn connection_retired(&self, encoder: &EncoderId, conn: ConnectionId, reason: RetireReason) {
        self.push(Event::ConnectionRetired {
            encoder: encoder.clone(),
            conn,
            reason,
        });
    }
    fn encoder_removed(&self, encoder: &EncoderId) {
        self.push(Event::EncoderRemoved {
            encoder: encoder.clone(),
        });
    }
}

impl ThermalObserver for RecordingObserver {
    fn temperature(&self, encoder: &EncoderId, conn: ConnectionId, value: f64) {
        self.push(Event::Temperature {
            encoder: encoder.clone(),
            conn,
            value,
        });
    }
    fn load(&self, encoder: &EncoderId, percent: f64) {
        self.push(Event::Load {
            encoder: encoder.clone(),
            percent,
        });
    }
    fn cooling_started(&self, encoder: &EncoderId, conn: ConnectionId, reason: CoolingReason) {
        self.push(Event::CoolingStarted {
            encoder: encoder.clone(),
            conn,
            reason,
        });
    }
    fn cooling_step(&self, encoder: &EncoderId, conn: ConnectionId, step: u32, allowed_load: f64) {
        self.push(Event::CoolingStep {
            encoder: encoder.clone(),
            conn,
            step,
            allowed_load,
        });
    }
    fn cooling_finished(
        &self,
        encoder: &EncoderId,
        conn: ConnectionId,
        took: Duration,
        outcome: CoolingOutcome,
    ) {
        self.push(Event::CoolingFinished {
            encoder: encoder.clone(),
            conn,
            took,
            outcome,
        });
    }
    fn device_temperature(&self, encoder: &EncoderId, celsius: f64) {
        self.push(Event::DeviceTemperature {
            encoder: encoder.clone(),
            celsius,
        });
    }
    fn device_overheated(&self, encoder: &EncoderId, celsius: f64) {
        self.push(Event::DeviceOverheated {
            encoder: encoder.clone(),
            celsius,
        });
    }
    fn connection_removed(&self, encoder: &EncoderId, conn: ConnectionId) {
        self.push(Event::ConnectionRemoved {
            encoder: encoder.clone(),
            conn,
        });
    }
}
