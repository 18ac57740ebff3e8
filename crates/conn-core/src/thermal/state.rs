//! The thermal state of one connection: the [`Gate`] the layer uses on every
//! request, and the policy state only the manager touches.

use std::{
    fmt,
    sync::{Arc, Mutex, MutexGuard},
};

use helo_transport::{ConnectionId, Outcome, Overloaded};
use tokio::time::Instant;

use super::{
    aimd::Aimd,
    gate::{EncoderThermal, Gate, Refusal, Totals},
    stats::Window,
    temperature,
};
use crate::{config::ThermalConfig, reasons::CoolingReason, EncoderId};

/// Cuts applied in one sync at most: beyond this many halvings every allowed load is
/// at its floor anyway.
const MAX_CUTS_PER_SYNC: u64 = 64;

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

/// The manager's side: the sliding window, AIMD and cooling.
struct Policy {
    window: Window,
    aimd: Aimd,
    cooling: Option<Cooling>,
    removed: bool,
    /// The gate's totals as of the last sync.
    seen: Totals,
}

/// One connection's thermal state.
pub(crate) struct ConnThermal {
    pub(crate) encoder: EncoderId,
    pub(crate) conn: ConnectionId,
    pub(crate) enc: Arc<EncoderThermal>,
    config: Arc<ThermalConfig>,
    gate: Gate,
    policy: Mutex<Policy>,
}

impl fmt::Debug for ConnThermal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnThermal")
            .field("encoder", &self.encoder)
            .field("conn", &self.conn)
            .field("in_flight", &self.gate.in_flight())
            .field("allowed_load", &self.gate.allowed())
            .finish_non_exhaustive()
    }
}

impl ConnThermal {
    /// A fresh connection: empty window, allowed load at `ramp_start`, published.
    pub(crate) fn new(
        encoder: EncoderId,
        conn: ConnectionId,
        enc: Arc<EncoderThermal>,
        config: Arc<ThermalConfig>,
    ) -> Self {
        let now = Instant::now();
        let this = Self {
            policy: Mutex::new(Policy {
                window: Window::new(now, config.cooling_period),
                aimd: Aimd::new(
                    now,
                    config.ramp_start,
                    config.min_allowed_load,
                    config.ramp_up,
                ),
                cooling: None,
                removed: false,
                seen: Totals::default(),
            }),
            encoder,
            conn,
            enc,
            config,
            gate: Gate::default(),
        };
        this.sync(now);
        this
    }

    /// A connection the pool does not own: admits nothing.
    pub(crate) fn detached(
        encoder: EncoderId,
        conn: ConnectionId,
        enc: Arc<EncoderThermal>,
        config: Arc<ThermalConfig>,
    ) -> Self {
        let this = Self::new(encoder, conn, enc, config);
        this.mark_removed();
        this
    }

    // === the layer's side: atomics only ===

    /// Admits one request, or refuses it naming `request`: the encoder's cap, or this
    /// connection's allowed load as last published.
    pub(crate) fn try_acquire(&self, request: impl fmt::Display) -> Result<(), Overloaded> {
        self.gate
            .try_acquire(&self.enc)
            .map_err(|refusal| match refusal {
                Refusal::Encoder { in_flight, cap } => {
                    Overloaded::device_cap(self.encoder.clone(), self.conn, request, in_flight, cap)
                }
                Refusal::Connection { in_flight, allowed } => Overloaded::connection(
                    self.encoder.clone(),
                    self.conn,
                    request,
                    in_flight,
                    allowed,
                ),
            })
    }

    /// Ends one admitted request; `outcome` is `None` when it was cancelled.
    pub(crate) fn release(&self, outcome: Option<Outcome>) {
        self.gate.release(&self.enc, outcome);
    }

    // === the manager's side ===

    fn lock(&self) -> MutexGuard<'_, Policy> {
        self.policy.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn allowed_locked(&self, policy: &Policy, now: Instant) -> f64 {
        if policy.removed {
            return 0.0;
        }
        let a = policy.aimd.current(now);
        match policy.cooling {
            Some(c) => a.min(c.cap),
            None => a,
        }
    }

    fn publish_locked(&self, policy: &Policy, now: Instant) -> f64 {
        let allowed = self.allowed_locked(policy, now);
        let slots = temperature::slots(allowed, self.config.connection_capacity);
        self.gate.publish(allowed, slots);
        allowed
    }

    /// Folds the outcomes the layer counted since the last sync into the window (as of
    /// `now`), cuts the allowed load once per sign of overload, and publishes the
    /// allowed load (which also climbs with time). The manager's tick calls this for
    /// every connection; every read calls it first, so reads are never stale.
    pub(crate) fn sync(&self, now: Instant) -> f64 {
        let mut policy = self.lock();
        self.sync_locked(&mut policy, now)
    }

    fn sync_locked(&self, policy: &mut Policy, now: Instant) -> f64 {
        let totals = self.gate.totals();
        let new = totals.since(policy.seen);
        policy.seen = totals;
        if new.requests > 0 {
            policy.window.add(now, new.requests, new.errors);
        }
        for _ in 0..new.cuts.min(MAX_CUTS_PER_SYNC) {
            policy.aimd.cut(now, self.config.aimd_decrease);
        }
        self.publish_locked(policy, now)
    }

    /// The allowed load % now.
    pub(crate) fn allowed(&self, now: Instant) -> f64 {
        self.sync(now)
    }

    /// Heat figures now.
    pub(crate) fn heat(&self, now: Instant) -> Heat {
        let cfg = &self.config;
        let mut policy = self.lock();
        let allowed = self.sync_locked(&mut policy, now);
        let (requests, errors) = policy.window.totals(now);
        let in_flight = self.gate.in_flight();
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
            allowed,
            in_flight,
            cooling: policy.cooling.map(|c| c.reason),
        }
    }

    /// Marks the connection cooling and returns the allowed load it starts from;
    /// `None` if it already cools or is gone.
    pub(crate) fn begin_cooling(&self, now: Instant, reason: CoolingReason) -> Option<f64> {
        let mut policy = self.lock();
        if policy.removed || policy.cooling.is_some() {
            return None;
        }
        let start = self.sync_locked(&mut policy, now);
        policy.cooling = Some(Cooling {
            reason,
            start_load: start,
            cap: start,
        });
        Some(start)
    }

    pub(crate) fn cooling_start_load(&self) -> Option<f64> {
        self.lock().cooling.map(|c| c.start_load)
    }

    pub(crate) fn set_cooling_cap(&self, now: Instant, cap: f64, step: u32) {
        {
            let mut policy = self.lock();
            if let Some(c) = policy.cooling.as_mut() {
                c.cap = cap;
            }
            self.sync_locked(&mut policy, now);
        }
        tracing::debug!(encoder_id = %self.encoder, connection_id = %self.conn, step, allowed_load = cap, "cooling step");
    }

    pub(crate) fn is_cooling(&self) -> bool {
        self.lock().cooling.is_some()
    }

    pub(crate) fn reset_stats(&self) {
        let mut policy = self.lock();
        policy.seen = self.gate.totals();
        policy.window.reset();
    }

    /// Back in service after a cooling: fresh stats, slow start.
    pub(crate) fn finish_cooling(&self, now: Instant) {
        let mut policy = self.lock();
        policy.cooling = None;
        policy.seen = self.gate.totals();
        policy.window.reset();
        policy.aimd.restart(now, self.config.ramp_start);
        self.publish_locked(&policy, now);
    }

    /// Gone from the pool: admits nothing from now on.
    pub(crate) fn mark_removed(&self) {
        let mut policy = self.lock();
        policy.removed = true;
        self.publish_locked(&policy, Instant::now());
    }

    pub(crate) fn is_removed(&self) -> bool {
        self.lock().removed
    }
}
