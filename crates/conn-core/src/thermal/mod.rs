//! The thermal model (policy): per-connection heat, gradual cooling, slow start and
//! AIMD, device heat. It publishes each connection's allowed load; the
//! [`ThermalLayer`](crate::ThermalLayer) only reads it and counts outcomes.

mod aimd;
mod cooling;
mod device;
mod gate;
mod state;
mod stats;
mod temperature;

use std::{
    collections::HashMap,
    fmt,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, MutexGuard, Weak,
    },
};

use helo_transport::ConnectionId;
use tokio::time::Instant;

pub use self::device::DeviceHeat;
pub(crate) use self::state::ConnThermal;
use self::{gate::EncoderThermal, state::Heat};
use crate::{
    config::{PoolConfig, ThermalConfig},
    conn::Connector,
    observer::ThermalObserver,
    pool::{PoolControl, PoolHooks, WarmupManager},
    reasons::CoolingReason,
    thermal_layer::ThermalLayer,
    EncoderId,
};

/// Fewer requests than this in the window say nothing about an error rate.
const MIN_REQUESTS_FOR_ERROR_RATE: u64 = 5;

/// One connection's thermal figures, for the admin API.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionThermalSnapshot {
    /// The connection.
    pub conn: ConnectionId,
    /// Temperature, 0–100.
    pub temperature: f64,
    /// Requests in flight against the connection's capacity, %.
    pub load: f64,
    /// The load % it may carry now (slow start, AIMD and cooling together).
    pub allowed_load: f64,
    /// Requests in flight now.
    pub in_flight: usize,
    /// Why it is cooling, if it is.
    pub cooling: Option<CoolingReason>,
    /// Requests per second over the last cooling period.
    pub request_rate: f64,
    /// Requests in the last cooling period against `burst_limit`, 0–100 (the
    /// temperature's request-rate term).
    pub rate_factor: f64,
    /// Errors against requests over the last cooling period, %.
    pub error_rate: f64,
    /// Requests in the last cooling period.
    pub requests: u64,
    /// Errors in the last cooling period.
    pub errors: u64,
}

impl ConnectionThermalSnapshot {
    /// Whether the connection is cooling.
    pub fn is_cooling(&self) -> bool {
        self.cooling.is_some()
    }
}

/// Tracks how hot each pooled connection runs, cools hot ones gradually, and keeps
/// every encoder's load within what the device and each connection can take.
///
/// * Temperature 0–100 = 0.4 × request-rate factor + 0.3 × error rate % + 0.3 ×
///   load %, over a sliding window of one `cooling_period`
///   ([`ThermalConfig`]). [`check_temperature`](Self::check_temperature) reports it
///   and says whether the connection needs cooling.
/// * [`start_cooling`](Self::start_cooling) steps the connection's allowed load down
///   in `gradual_cooldown` equal steps over `cooling_period`, while the pool keeps it
///   out of rotation and warms its replacement; at the end it is retired. The last
///   usable connection of an encoder never goes below `min_allowed_load`, and is put
///   back on a slow start instead of being retired.
/// * Every connection starts at `ramp_start` % and climbs linearly (`ramp_up`);
///   timeouts and connection errors cut it by `aimd_decrease` (never below the floor).
/// * Per encoder, at most `max_in_flight_per_encoder` requests are in flight over all
///   its connections.
///
/// Policy runs here, never on a request's path: every `update_interval`
/// ([`ThermalConfig`]) a task folds the outcomes each connection's layer counted into
/// its window, applies the AIMD cuts, and publishes the connection's allowed load,
/// which the layer reads with one atomic load. Every read (`allowed_load`,
/// `snapshot`, `check_temperature` …) folds first, so it is never stale. The task runs
/// on the tokio runtime the manager (or its first layer) was made in, and ends with
/// the last clone.
///
/// Cloning is cheap and shares the state.
#[derive(Clone)]
pub struct ConnectionThermalManager {
    shared: Arc<ThermalShared>,
}

pub(crate) struct ThermalShared {
    config: Arc<ThermalConfig>,
    pool_config: PoolConfig,
    pool: Arc<dyn PoolControl>,
    observer: Arc<dyn ThermalObserver>,
    encoders: Mutex<HashMap<EncoderId, EncoderEntry>>,
    me: Weak<ThermalShared>,
    /// Whether the task that folds and publishes (`tick`) runs.
    ticking: AtomicBool,
}

struct EncoderEntry {
    counters: Arc<EncoderThermal>,
    conns: HashMap<ConnectionId, Arc<ConnThermal>>,
    overheated: bool,
}

impl fmt::Debug for ConnectionThermalManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let encoders = self.shared.lock();
        let mut names: Vec<_> = encoders
            .iter()
            .map(|(k, v)| (k.clone(), v.conns.len()))
            .collect();
        names.sort();
        f.debug_struct("ConnectionThermalManager")
            .field("config", &*self.shared.config)
            .field("connections", &names)
            .finish()
    }
}

impl ConnectionThermalManager {
    /// A thermal model over `warmup`'s pools: it learns from the pool when
    /// connections come back or are retired, and steers the pool when cooling.
    /// Out-of-range settings are pulled into range (see [`ThermalConfig::validate`]).
    pub fn new<C: Connector>(
        warmup: WarmupManager<C>,
        config: ThermalConfig,
        observer: Arc<dyn ThermalObserver>,
    ) -> Self {
        let pool_config = warmup.config().clone();
        let this = Self::with_pool(Arc::new(warmup.clone()), &pool_config, config, observer);
        let hooks: Weak<dyn PoolHooks> = Arc::downgrade(&this.shared) as Weak<dyn PoolHooks>;
        warmup.set_hooks(hooks);
        this
    }

    /// A thermal model over any [`PoolControl`] (e.g. `MockPoolControl` in tests).
    /// Without a [`WarmupManager`] it hears of no checkins or retirements other than
    /// its own; `pool_config` supplies the per-encoder in-flight cap.
    pub fn with_pool(
        pool: Arc<dyn PoolControl>,
        pool_config: &PoolConfig,
        config: ThermalConfig,
        observer: Arc<dyn ThermalObserver>,
    ) -> Self {
        let shared = Arc::new_cyclic(|me| ThermalShared {
            config: Arc::new(config.normalized()),
            pool_config: pool_config.normalized(),
            pool,
            observer,
            encoders: Mutex::new(HashMap::new()),
            me: me.clone(),
            ticking: AtomicBool::new(false),
        });
        shared.start_ticking();
        Self { shared }
    }

    /// The settings in use.
    pub fn config(&self) -> &ThermalConfig {
        &self.shared.config
    }

    /// Reports the connection's temperature (and its encoder's load) to the observer,
    /// and says whether it needs cooling: load ≥ `load_high`, temperature ≥
    /// `temperature_high`, or error rate ≥ `error_rate_high`. A connection already
    /// cooling, or unknown to the pool, needs no (further) cooling: `false`.
    pub fn check_temperature(&self, encoder: &EncoderId, conn: ConnectionId) -> bool {
        self.cooling_reason(encoder, conn).is_some()
    }

    /// Like [`check_temperature`](Self::check_temperature) (and reports the same),
    /// but says why.
    pub fn cooling_reason(&self, encoder: &EncoderId, conn: ConnectionId) -> Option<CoolingReason> {
        let c = self.shared.entry(encoder, conn)?;
        let heat = c.heat(Instant::now());
        self.shared
            .observer
            .temperature(encoder, conn, heat.temperature);
        self.shared.observer.load(encoder, c.enc.load());
        if heat.cooling.is_some() {
            return None;
        }
        self.shared.reason_for(&heat)
    }

    /// The connection's temperature now, without reporting it; `None` if the pool
    /// does not own it.
    pub fn temperature(&self, encoder: &EncoderId, conn: ConnectionId) -> Option<f64> {
        let c = self.shared.entry(encoder, conn)?;
        Some(c.heat(Instant::now()).temperature)
    }

    /// Starts the gradual cooling of the connection. Idempotent: `false` (and nothing
    /// reported) if it is already cooling, or unknown to the pool. Must be called
    /// within a tokio runtime (the procedure runs as a task).
    ///
    /// The connection leaves rotation at once and the pool starts warming its
    /// replacement; its allowed load then steps down over `cooling_period`, and at
    /// the end it is retired. If the pool refuses a step, the connection is
    /// force-reset and the cooling reported as [`CoolingOutcome::Failed`].
    ///
    /// [`CoolingOutcome::Failed`]: crate::CoolingOutcome::Failed
    pub fn start_cooling(
        &self,
        encoder: &EncoderId,
        conn: ConnectionId,
        reason: CoolingReason,
    ) -> bool {
        self.shared.start_cooling(encoder, conn, reason)
    }

    /// Reviews a connection after a health check, and cools it if it needs it: for its
    /// own figures (temperature, load, error rate: the specific reason wins), or
    /// preventively when the check found the connection itself unhealthy. The floor
    /// rule still holds: an encoder's only usable connection stays in rotation while it
    /// cools. Answers the reason a cooling started with.
    pub fn review(
        &self,
        encoder: &EncoderId,
        conn: ConnectionId,
        connection_unhealthy: bool,
    ) -> Option<CoolingReason> {
        let reason = self
            .cooling_reason(encoder, conn)
            .or(connection_unhealthy.then_some(CoolingReason::Preventive))?;
        self.start_cooling(encoder, conn, reason).then_some(reason)
    }

    /// Whether the connection is cooling.
    pub fn is_cooling(&self, encoder: &EncoderId, conn: ConnectionId) -> bool {
        self.shared
            .existing(encoder, conn)
            .is_some_and(|c| c.is_cooling())
    }

    /// The load % the connection may carry now (0 if the pool does not own it).
    pub fn allowed_load(&self, encoder: &EncoderId, conn: ConnectionId) -> f64 {
        self.shared
            .entry(encoder, conn)
            .map_or(0.0, |c| c.allowed(Instant::now()))
    }

    /// Requests in flight on the encoder against `max_in_flight_per_encoder`, %.
    pub fn encoder_load(&self, encoder: &EncoderId) -> f64 {
        self.shared
            .lock()
            .get(encoder)
            .map_or(0.0, |e| e.counters.load())
    }

    /// Records a device temperature reading (`eParamID_Temperature`, °C) and says
    /// what it means. Every reading is reported; going over
    /// `device_temperature_limit` is reported once per episode, and with
    /// `overheat_profile` configured that first reading asks for a profile switch,
    /// which the caller performs with [`DeviceHeat::apply`].
    pub fn record_device_temperature(&self, encoder: &EncoderId, celsius: f64) -> DeviceHeat {
        let cfg = &self.shared.config;
        self.shared.observer.device_temperature(encoder, celsius);
        let limit = cfg.device_temperature_limit;
        let over = celsius > limit;
        let newly = {
            let mut encoders = self.shared.lock();
            let e = self.shared.encoder_entry(&mut encoders, encoder);
            let newly = over && !e.overheated;
            if over {
                e.overheated = true;
            } else if celsius <= limit - cfg.device_temperature_hysteresis {
                e.overheated = false;
            }
            newly
        };
        if !over {
            return DeviceHeat::Normal { celsius };
        }
        if newly {
            tracing::debug!(encoder_id = %encoder, celsius, limit, "device overheated");
            self.shared.observer.device_overheated(encoder, celsius);
        }
        DeviceHeat::Overheated {
            celsius,
            limit,
            newly,
            switch_profile: cfg.overheat_profile.filter(|_| newly),
        }
    }

    /// Thermal figures of every connection of the encoder it knows, by id.
    pub fn snapshot(&self, encoder: &EncoderId) -> Vec<ConnectionThermalSnapshot> {
        let conns: Vec<Arc<ConnThermal>> = self
            .shared
            .lock()
            .get(encoder)
            .map(|e| e.conns.values().cloned().collect())
            .unwrap_or_default();
        let now = Instant::now();
        let period = self.shared.config.cooling_period.as_secs_f64();
        let mut out: Vec<_> = conns
            .iter()
            .map(|c| {
                let h = c.heat(now);
                ConnectionThermalSnapshot {
                    conn: c.conn,
                    temperature: h.temperature,
                    load: h.load,
                    allowed_load: h.allowed,
                    in_flight: h.in_flight,
                    cooling: h.cooling,
                    request_rate: h.requests as f64 / period,
                    rate_factor: h.rate_factor,
                    error_rate: h.error_rate,
                    requests: h.requests,
                    errors: h.errors,
                }
            })
            .collect();
        out.sort_by_key(|s| s.conn);
        out
    }

    /// The layer to put in front of the connection. For a connection the pool does
    /// not own (retired, reset), the layer refuses everything with
    /// [`Overloaded`](crate::Overloaded).
    pub fn layer(&self, encoder: &EncoderId, conn: ConnectionId) -> ThermalLayer {
        // Made outside a runtime, the manager starts publishing with its first layer.
        self.shared.start_ticking();
        let state = self.shared.entry(encoder, conn).unwrap_or_else(|| {
            let counters = self.shared.counters(encoder);
            Arc::new(ConnThermal::detached(
                encoder.clone(),
                conn,
                counters,
                self.shared.config.clone(),
            ))
        });
        ThermalLayer::new(state)
    }
}

// === impl ThermalShared ===

impl ThermalShared {
    /// Starts the task that folds and publishes, once, if a tokio runtime is there.
    fn start_ticking(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.ticking.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.me.clone();
        let period = self.config.update_interval;
        runtime.spawn(async move {
            let mut every = tokio::time::interval(period);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let Some(shared) = me.upgrade() else { break };
                shared.tick(Instant::now());
            }
        });
    }

    /// Folds and publishes every connection's state.
    fn tick(&self, now: Instant) {
        let conns: Vec<Arc<ConnThermal>> = self
            .lock()
            .values()
            .flat_map(|e| e.conns.values().cloned())
            .collect();
        for c in conns {
            c.sync(now);
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<EncoderId, EncoderEntry>> {
        self.encoders.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn encoder_entry<'a>(
        &self,
        encoders: &'a mut HashMap<EncoderId, EncoderEntry>,
        encoder: &EncoderId,
    ) -> &'a mut EncoderEntry {
        encoders
            .entry(encoder.clone())
            .or_insert_with(|| EncoderEntry {
                counters: Arc::new(EncoderThermal::new(
                    self.pool_config.max_in_flight_per_encoder,
                )),
                conns: HashMap::new(),
                overheated: false,
            })
    }

    fn counters(&self, encoder: &EncoderId) -> Arc<EncoderThermal> {
        let mut encoders = self.lock();
        self.encoder_entry(&mut encoders, encoder).counters.clone()
    }

    fn existing(&self, encoder: &EncoderId, conn: ConnectionId) -> Option<Arc<ConnThermal>> {
        self.lock().get(encoder)?.conns.get(&conn).cloned()
    }

    /// The connection's state, created on first use if the pool owns it.
    fn entry(&self, encoder: &EncoderId, conn: ConnectionId) -> Option<Arc<ConnThermal>> {
        if let Some(c) = self.existing(encoder, conn) {
            return Some(c);
        }
        // Asked without our lock held: the pool may call back into us.
        if !self.pool.owns(encoder, conn) {
            return None;
        }
        let mut encoders = self.lock();
        let config = self.config.clone();
        let e = self.encoder_entry(&mut encoders, encoder);
        let counters = e.counters.clone();
        let c = e
            .conns
            .entry(conn)
            .or_insert_with(|| Arc::new(ConnThermal::new(encoder.clone(), conn, counters, config)));
        Some(c.clone())
    }

    /// Forgets the connection; reported once.
    pub(crate) fn forget(&self, encoder: &EncoderId, conn: ConnectionId) {
        let removed = self
            .lock()
            .get_mut(encoder)
            .and_then(|e| e.conns.remove(&conn));
        if let Some(c) = removed {
            c.mark_removed();
            self.observer.connection_removed(encoder, conn);
        }
    }

    fn reason_for(&self, heat: &Heat) -> Option<CoolingReason> {
        let cfg = &self.config;
        if heat.load >= cfg.load_high {
            Some(CoolingReason::HighLoad)
        } else if heat.temperature >= cfg.temperature_high {
            Some(CoolingReason::HighTemperature)
        } else if heat.requests >= MIN_REQUESTS_FOR_ERROR_RATE
            && heat.error_rate >= cfg.error_rate_high
        {
            Some(CoolingReason::ErrorRate)
        } else {
            None
        }
    }

    fn start_cooling(
        &self,
        encoder: &EncoderId,
        conn: ConnectionId,
        reason: CoolingReason,
    ) -> bool {
        let Some(c) = self.entry(encoder, conn) else {
            tracing::debug!(encoder_id = %encoder, connection_id = %conn, "start_cooling on a connection the pool does not own");
            return false;
        };
        let (Ok(runtime), Some(me)) = (tokio::runtime::Handle::try_current(), self.me.upgrade())
        else {
            tracing::error!(encoder_id = %encoder, connection_id = %conn, "start_cooling called outside a tokio runtime");
            return false;
        };
        let started = Instant::now();
        if c.begin_cooling(started, reason).is_none() {
            return false;
        }
        tracing::debug!(encoder_id = %encoder, connection_id = %conn, %reason, "cooling started");
        self.observer.cooling_started(encoder, conn, reason);
        if let Err(e) = self.pool.begin_cooling(encoder, conn) {
            tracing::warn!(encoder_id = %encoder, connection_id = %conn, error = %e, "cooling failed to start; resetting the connection");
            self.pool.force_reset(encoder, conn);
            self.forget(encoder, conn);
            self.observer.cooling_finished(
                encoder,
                conn,
                std::time::Duration::ZERO,
                crate::reasons::CoolingOutcome::Failed,
            );
            return true;
        }
        runtime.spawn(cooling::run(me, c, started));
        true
    }
}

impl PoolHooks for ThermalShared {
    fn on_checkin(&self, encoder: &EncoderId, conn: ConnectionId) {
        let Some(c) = self.existing(encoder, conn) else {
            return;
        };
        let heat = c.heat(Instant::now());
        if heat.cooling.is_some() {
            return;
        }
        // A hot connection does not go back to the warm set: it cools first.
        if let Some(reason) = self.reason_for(&heat) {
            self.start_cooling(encoder, conn, reason);
        }
    }

    fn on_retired(&self, encoder: &EncoderId, conn: ConnectionId) {
        self.forget(encoder, conn);
    }

    fn on_encoder_removed(&self, encoder: &EncoderId) {
        let removed = self.lock().remove(encoder);
        if let Some(e) = removed {
            let mut ids: Vec<_> = e.conns.into_iter().collect();
            ids.sort_by_key(|(id, _)| *id);
            for (id, c) in ids {
                c.mark_removed();
                self.observer.connection_removed(encoder, id);
            }
        }
    }
}

#[cfg(test)]
mod tests;
