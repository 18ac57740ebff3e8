//! [`HeloMetrics`]: the one registry and every family of the fleet.

use std::{
    fmt,
    sync::{Arc, Mutex, OnceLock, PoisonError},
};

use helo_transport::ConnectionId;
use prometheus::{Histogram, HistogramOpts, Registry, TextEncoder};

use crate::{
    budget::{BudgetFamilies, BudgetMetrics},
    cluster::ClusterMetrics,
    device::{DeviceFamilies, DeviceMetrics},
    error::MetricsError,
    family::{EncoderSeries, Scope},
    health::{ConnectionHealthMetrics, HealthFamilies},
    options::MetricsOptions,
    requests::{RequestFamilies, RequestMetrics},
    slots::ConnectionSlots,
    thermal::{ConnectionThermalMetrics, ThermalFamilies},
    warmup::{ConnectionWarmupMetrics, WarmupFamilies},
};

/// Every HELO metric family, registered once in one [`Registry`].
///
/// Cheap to clone (an `Arc` inside); hand clones, or the typed handles from
/// [`health`](Self::health), [`thermal`](Self::thermal), [`warmup`](Self::warmup),
/// [`requests`](Self::requests), [`device`](Self::device) and [`budget`](Self::budget),
/// to whoever records.
/// The process-wide default registry of the `prometheus` crate is never used.
///
/// Series are created on first use and live until [`remove_connection`] or
/// [`remove_encoder`] drops them, so cardinality follows the live fleet. A handle
/// (`Gauge`, `IntCounter` …) taken before its series was removed keeps working but is
/// no longer exported; take a fresh one after an encoder comes back.
///
/// [`remove_connection`]: Self::remove_connection
/// [`remove_encoder`]: Self::remove_encoder
#[derive(Clone)]
pub struct HeloMetrics {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    registry: Registry,
    pub(crate) health: HealthFamilies,
    pub(crate) thermal: ThermalFamilies,
    pub(crate) warmup: WarmupFamilies,
    pub(crate) requests: RequestFamilies,
    pub(crate) device: DeviceFamilies,
    pub(crate) budget: BudgetFamilies,
    /// Registered on first use, so a registry of a library user stays as it was.
    check_lateness: OnceLock<Option<Histogram>>,
    /// The stable `connection_id` label of each live connection.
    pub(crate) slots: ConnectionSlots,
    /// Registered when the node joins a cluster; `None` for a supervisor alone.
    cluster: Mutex<Option<ClusterMetrics>>,
}

impl HeloMetrics {
    /// The `Content-Type` of [`gather_text`](Self::gather_text): text format 0.0.4.
    pub const CONTENT_TYPE: &'static str = prometheus::TEXT_FORMAT;

    /// All families in a fresh registry of their own, with the default
    /// [`MetricsOptions`] (duration histograms fleet-wide).
    ///
    /// Cannot fail in practice (the names are fixed and the registry is empty; a test
    /// proves it), but registration is fallible in the `prometheus` API and this crate
    /// does not panic, so the `Result` stays.
    pub fn new() -> Result<Self, MetricsError> {
        Self::with_registry(Registry::new())
    }

    /// All families, registered in `registry` (which may hold other collectors).
    ///
    /// Fails if `registry` already holds a family of one of these names, e.g. a
    /// second `HeloMetrics` on the same registry: clone the first one instead.
    pub fn with_registry(registry: Registry) -> Result<Self, MetricsError> {
        Self::build(registry, MetricsOptions::default())
    }

    /// All families in a fresh registry of their own, keeping the detail `options`
    /// asks for. Fails as [`new`](Self::new) does (in practice never).
    pub fn with_options(options: MetricsOptions) -> Result<Self, MetricsError> {
        Self::build(Registry::new(), options)
    }

    fn build(registry: Registry, options: MetricsOptions) -> Result<Self, MetricsError> {
        let durations = if options.per_encoder_histograms {
            Scope::Encoder
        } else {
            Scope::Fleet
        };
        let inner = Inner {
            check_lateness: OnceLock::new(),
            slots: ConnectionSlots::default(),
            cluster: Mutex::new(None),
            health: HealthFamilies::register(&registry, durations)?,
            thermal: ThermalFamilies::register(&registry, durations)?,
            warmup: WarmupFamilies::register(&registry, durations)?,
            requests: RequestFamilies::register(&registry, durations)?,
            device: DeviceFamilies::register(&registry)?,
            budget: BudgetFamilies::register(&registry)?,
            registry,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The registry the families live in.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Everything in the registry, in the Prometheus text format 0.0.4.
    ///
    /// Each family is encoded on its own, so a foreign collector that cannot be
    /// encoded costs only its own family, never the scrape.
    pub fn gather_text(&self) -> String {
        let encoder = TextEncoder::new();
        let mut text = String::new();
        for family in self.inner.registry.gather() {
            let mut one = String::new();
            if encoder
                .encode_utf8(std::slice::from_ref(&family), &mut one)
                .is_ok()
            {
                text.push_str(&one);
            }
        }
        text
    }

    /// Health score and health checks.
    pub fn health(&self) -> ConnectionHealthMetrics {
        ConnectionHealthMetrics::new(self.clone())
    }

    /// Connection temperature and load, cooling events and their duration.
    pub fn thermal(&self) -> ConnectionThermalMetrics {
        ConnectionThermalMetrics::new(self.clone())
    }

    /// Warm-up attempts, successes, durations and warm pool sizes.
    pub fn warmup(&self) -> ConnectionWarmupMetrics {
        ConnectionWarmupMetrics::new(self.clone())
    }

    /// Requests by operation and outcome, and their duration.
    pub fn requests(&self) -> RequestMetrics {
        RequestMetrics::new(self.clone())
    }

    /// Device temperature, replicator states, recovery actions and `up`.
    pub fn device(&self) -> DeviceMetrics {
        DeviceMetrics::new(self.clone())
    }

    /// Requests refused by an encoder's request budget.
    pub fn budget(&self) -> BudgetMetrics {
        BudgetMetrics::new(self.clone())
    }

    /// How late health checks start against their schedule (fleet-wide, no labels):
    /// the supervisor's measure of keeping up with a large fleet. Registered on first
    /// call; `None` only if a foreign collector already took the name.
    pub fn check_lateness(&self) -> Option<Histogram> {
        self.inner
            .check_lateness
            .get_or_init(|| {
                let opts = HistogramOpts::new(
                    "helo_health_check_lateness_seconds",
                    "How late health checks start against their schedule, fleet-wide.",
                )
                .buckets(vec![
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ]);
                let histogram = Histogram::with_opts(opts).ok()?;
                self.inner
                    .registry
                    .register(Box::new(histogram.clone()))
                    .ok()?;
                Some(histogram)
            })
            .clone()
    }

    /// This node's cluster families (`helo_cluster_*`, labelled `node`), registered on
    /// the first call; later calls answer the same handles, whatever `node` they name
    /// (one process is one node). Fails only if a foreign collector took a name.
    pub fn cluster(&self, node: &str) -> Result<ClusterMetrics, MetricsError> {
        let mut slot = self
            .inner
            .cluster
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(cluster) = &*slot {
            return Ok(cluster.clone());
        }
        let cluster = ClusterMetrics::register(&self.inner.registry, node)?;
        *slot = Some(cluster.clone());
        Ok(cluster)
    }

    /// Drops the series of a retired connection (`helo_connection_health` and
    /// `helo_connection_temperature`); returns how many there were.
    pub fn remove_connection(&self, encoder: impl fmt::Display, conn: impl fmt::Display) -> usize {
        let (encoder, conn) = (encoder.to_string(), conn.to_string());
        let is_conn = |values: &[Box<str>; 1]| *values[0] == *conn;
        self.inner.health.score.remove_if(&encoder, is_conn)
            + self.inner.thermal.temperature.remove_if(&encoder, is_conn)
    }

    /// The `connection_id` label of a live connection: its slot, the lowest number no
    /// other live connection of the encoder holds (so `0..max_connections`). Given
    /// when the pool reports the connection warm (`PoolObserver::warmup_success`) and
    /// freed when it reports it retired; `None` outside that span. The observer
    /// implementations label per-connection series with it, so a replaced
    /// connection's successor takes over its series: connection churn creates no new
    /// series.
    pub fn connection_slot(&self, encoder: impl fmt::Display, conn: ConnectionId) -> Option<usize> {
        self.inner.slots.of(&encoder.to_string(), conn)
    }

    /// Gives `conn` its slot (see [`connection_slot`](Self::connection_slot)).
    pub(crate) fn assign_slot(&self, encoder: &str, conn: ConnectionId) -> usize {
        self.inner.slots.assign(encoder, conn)
    }

    /// The connection is gone: frees its slot and drops the slot's series.
    pub(crate) fn release_connection(&self, encoder: &str, conn: ConnectionId) {
        if let Some(slot) = self.inner.slots.release(encoder, conn) {
            self.remove_connection(encoder, slot);
        }
    }

    /// Drops every series carrying `encoder_id = encoder`, in every family, with every
    /// label combination it used; returns how many there were.
    pub fn remove_encoder(&self, encoder: impl fmt::Display) -> usize {
        let encoder = encoder.to_string();
        self.inner.slots.remove_encoder(&encoder);
        self.inner
            .families()
            .iter()
            .map(|family| family.remove_encoder(&encoder))
            .sum()
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }
}

impl Inner {
    fn families(&self) -> Vec<&dyn EncoderSeries> {
        let mut all: Vec<&dyn EncoderSeries> = Vec::with_capacity(19);
        all.extend(self.health.all());
        all.extend(self.thermal.all());
        all.extend(self.warmup.all());
        all.extend(self.requests.all());
        all.extend(self.device.all());
        all.extend(self.budget.all());
        all
    }
}

impl fmt::Debug for HeloMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.inner.families().iter().map(|f| f.name()).collect();
        f.debug_struct("HeloMetrics")
            .field("families", &names)
            .finish_non_exhaustive()
    }
}
