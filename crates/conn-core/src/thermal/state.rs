//! The shared thermal state of one connection: written by the thermal layer and the
//! cooling procedure, read by the manager.

use std::{
    fmt,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
};

use helo_transport::{ConnectionId, ErrorClass};
use tokio::time::Instant;

use super::{aimd::Aimd, budget::RetryBudget, stats::Window, temperature};
use crate::{config::ThermalConfig, reasons::CoolingReason, thermal_layer::Overloaded, EncoderId};

/// Per-encoder counters shared by all its connections' layers.
pub(crate) struct EncoderThermal {
    pub(crate) in_flight: AtomicUsize,
    pub(crate) max_in_flight: usize,
    pub(crate) budget: RetryBudget,
}

impl EncoderThermal {
    pub(crate) fn new(max_in_flight: usize, budget: RetryBudget) -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            max_in_flight: max_in_flight.max(1),
            budget,
        }
    }

    pub(crate) fn load(&self) -> f64 {
        let n = self.in_flight.load(Ordering::Acquire);
        (n as f64 * 100.0 / self.max_in_flight as f64).min(100.0)
    }
}

/// Heat figures of one connection at one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Heat {
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) rate_factor: f64,
    pub(crate) error_rate: f64,
    pub(crate) load: f64,
    pub(crate) temperature: f64,
    pub(crate) allowed: f64,
    pub(crate) in_flight: usize,
    pub(crate) cooling: Option<CoolingReason>,
}

#[derive(Debug, Clone, Copy)]
struct Cooling {
    reason: CoolingReason,
    start_load: f64,
    cap: f64,
}

struct Inner {
    window: Window,
    aimd: Aimd,
    cooling: Option<Cooling>,
    removed: bool,
}

/// One connection's thermal state.
pub(crate) struct ConnThermal {
    pub(crate) encoder: EncoderId,
    pub(crate) conn: ConnectionId,
    pub(crate) enc: Arc<EncoderThermal>,
    config: Arc<ThermalConfig>,
    in_flight: AtomicUsize,
    inner: Mutex<Inner>,
}

impl fmt::Debug for ConnThermal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnThermal")
            .field("encoder", &self.encoder)
            .field("conn", &self.conn)
            .field("in_flight", &self.in_flight.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl ConnThermal {
    /// A fresh connection: empty window, allowed load at `ramp_start`.
    pub(crate) fn new(
        encoder: EncoderId,
        conn: ConnectionId,
        enc: Arc<EncoderThermal>,
        config: Arc<ThermalConfig>,
    ) -> Self {
        let now = Instant::now();
        Self {
            inner: Mutex::new(Inner {
                window: Window::new(now, config.cooling_period),
                aimd: Aimd::new(
                    now,
                    config.ramp_start,
                    config.min_allowed_load,
                    config.ramp_up,
                ),
                cooling: None,
                removed: false,
            }),
            encoder,
            conn,
            enc,
            config,
            in_flight: AtomicUsize::new(0),
        }
    }

    /// A connection the pool does not own: admits nothing.
    pub(crate) fn detached(
        encoder: EncoderId,
        conn: ConnectionId,
        enc: Arc<EncoderThermal>,
        config: Arc<ThermalConfig>,
    ) -> Self {
        let this = Self::new(encoder, conn, enc, config);
        this.lock().removed = true;
        this
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn allowed_locked(inner: &Inner, now: Instant) -> f64 {
        if inner.removed {
            return 0.0;
        }
        let a = inner.aimd.current(now);
        match inner.cooling {
            Some(c) => a.min(c.cap),
            None => a,
        }
    }

    /// The allowed load % now.
    pub(crate) fn allowed(&self, now: Instant) -> f64 {
        Self::allowed_locked(&self.lock(), now)
    }

    /// Admits one request, or says why not: the encoder's cap, or this connection's
    /// allowed load.
    pub(crate) fn try_acquire(&self, now: Instant) -> Result<(), Overloaded> {
        let enc = &self.enc;
        let took_encoder_slot =
            enc.in_flight
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < enc.max_in_flight).then_some(n + 1)
                });
        if let Err(n) = took_encoder_slot {
            return Err(Overloaded::encoder_cap(
                self.encoder.clone(),
                self.conn,
                n,
                enc.max_in_flight,
            ));
        }
        let inner = self.lock();
        let allowed = Self::allowed_locked(&inner, now);
        let in_flight = self.in_flight.load(Ordering::Acquire);
        if !temperature::admits(in_flight, allowed, self.config.connection_capacity) {
            drop(inner);
            enc.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(Overloaded::connection(
                self.encoder.clone(),
                self.conn,
                in_flight,
                allowed,
            ));
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        drop(inner);
        enc.budget.deposit();
        Ok(())
    }

    /// Ends one admitted request; `outcome` is `None` when it was cancelled.
    pub(crate) fn release(&self, now: Instant, outcome: Option<Result<(), ErrorClass>>) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.enc.in_flight.fetch_sub(1, Ordering::AcqRel);
        let Some(outcome) = outcome else { return };
        let mut inner = self.lock();
        inner.window.add(now, 1, u64::from(outcome.is_err()));
        // Only trouble on the device's side cuts the allowed load: a rejected
        // parameter is the caller's business, not a sign of heat.
        if matches!(outcome, Err(ErrorClass::Timeout | ErrorClass::Connection)) {
            inner.aimd.cut(now, self.config.aimd_decrease);
        }
    }

    /// Heat figures now.
    pub(crate) fn heat(&self, now: Instant) -> Heat {
        let cfg = &self.config;
        let inner = self.lock();
        let (requests, errors) = inner.window.totals(now);
        let in_flight = self.in_flight.load(Ordering::Acquire);
        let rate_factor = temperature::rate_factor(requests, cfg.burst_limit);
        let error_rate = temperature::error_rate(requests, errors);
        let load = temperature::load(in_flight, cfg.connection_capacity);
        Heat {
            requests,
            errors,
            rate_factor,
            error_rate,
            load,
            temperature: temperature::temperature(rate_factor, error_rate, load),
            allowed: Self::allowed_locked(&inner, now),
            in_flight,
            cooling: inner.cooling.map(|c| c.reason),
        }
    }

    /// Marks the connection cooling and returns the allowed load it starts from;
    /// `None` if it already cools or is gone.
    pub(crate) fn begin_cooling(&self, now: Instant, reason: CoolingReason) -> Option<f64> {
        let mut inner = self.lock();
        if inner.removed || inner.cooling.is_some() {
            return None;
        }
        let start = Self::allowed_locked(&inner, now);
        inner.cooling = Some(Cooling {
            reason,
            start_load: start,
            cap: start,
        });
        Some(start)
    }

    pub(crate) fn cooling_start_load(&self) -> Option<f64> {
        self.lock().cooling.map(|c| c.start_load)
    }

    pub(crate) fn set_cooling_cap(&self, cap: f64, step: u32) {
        if let Some(c) = self.lock().cooling.as_mut() {
            c.cap = cap;
        }
        tracing::debug!(encoder_id = %self.encoder, connection_id = %self.conn, step, allowed_load = cap, "cooling step");
    }

    pub(crate) fn is_cooling(&self) -> bool {
        self.lock().cooling.is_some()
    }

    pub(crate) fn reset_stats(&self) {
        self.lock().window.reset();
    }

    /// Back in service after a cooling: fresh stats, slow start.
    pub(crate) fn finish_cooling(&self, now: Instant) {
        let mut inner = self.lock();
        inner.cooling = None;
        inner.window.reset();
        let start = self.config.ramp_start;
        inner.aimd.restart(now, start);
    }

    pub(crate) fn mark_removed(&self) {
        self.lock().removed = true;
    }

    pub(crate) fn is_removed(&self) -> bool {
        self.lock().removed
    }
}
