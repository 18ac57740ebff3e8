//! The running fleet: the library crates' managers, shared by one supervision loop
//! per encoder, and what the admin API reads.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, MutexGuard, OnceLock,
    },
    time::Duration,
};

use conn_cluster::{ClusterError, ClusterView};
use conn_core::{ConnectionThermalManager, CoolingReason, EncoderId, HeloConnector, WarmupManager};
use conn_health::{
    ConnectionHealthChecker, DesiredState, DeviceStateMirror, EncoderSupervision, Expectations,
    HealthError, MirrorConfig,
};
use conn_metrics::{HeloMetrics, MetricsError, MetricsLayer, MetricsOptions};
use helo_transport::Device;
use tokio::{task::JoinHandle, time::Instant};

use crate::{
    changes::Changes,
    cluster::{self, Cluster, ClusterStatus, NotActing},
    config::{EncoderConfig, FleetConfig, Tunables},
    observer::FleetObserver,
    report::{ConnectionView, EncoderView, PoolView, ViewParts},
    settings,
    supervise::{self, EncoderTask, FirstCheck, Signal},
};

/// Why the fleet could not start or take an encoder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// The health settings were refused.
    #[error("health settings: {0}")]
    Health(#[from] HealthError),
    /// The metric families could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] MetricsError),
    /// An encoder with this id is already supervised.
    #[error("encoder {0:?} is already supervised")]
    DuplicateEncoder(String),
    /// No encoder with this id in the fleet.
    #[error("no encoder {0:?}")]
    UnknownEncoder(String),
    /// Another node owns the encoder, or this one may not act now.
    #[error("encoder {encoder:?}: {why}")]
    NotActing {
        /// The encoder.
        encoder: String,
        /// Why not.
        why: NotActing,
    },
    /// Joining the cluster failed (a `[cluster]` setting, or etcd not answering).
    #[error("{0}")]
    Cluster(#[from] ClusterError),
    /// The thread that talks to etcd could not start.
    #[error("cannot start the cluster thread: {0}")]
    ClusterThread(std::io::Error),
    /// A TLS file of the admin API cannot be used (`admin_tls_cert`, `admin_tls_key`).
    #[error("{key} = {path}: {why}")]
    AdminTls {
        /// The configuration key naming the file.
        key: &'static str,
        /// The file, as resolved.
        path: String,
        /// What is wrong with it (never its content).
        why: String,
    },
}

impl FleetError {
    /// A TLS file of the admin API cannot be used.
    pub fn is_admin_tls(&self) -> bool {
        matches!(self, Self::AdminTls { .. })
    }

    /// No encoder with this id in the fleet.
    pub fn is_unknown_encoder(&self) -> bool {
        matches!(self, Self::UnknownEncoder(_))
    }

    /// Why this node does not act on the encoder, if that is the error.
    pub fn not_acting(&self) -> Option<&NotActing> {
        match self {
            Self::NotActing { why, .. } => Some(why),
            _ => None,
        }
    }

    /// Joining the cluster failed.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }
}

/// What every supervision loop shares.
pub(crate) struct Shared {
    pub(crate) warmup: WarmupManager<HeloConnector>,
    pub(crate) thermal: ConnectionThermalManager,
    pub(crate) checker: ConnectionHealthChecker,
    pub(crate) metrics: HeloMetrics,
    /// Fleet-wide settings: what the fleet-wide managers were built with.
    defaults: Tunables,
    observer: Arc<FleetObserver>,
    encoders: Mutex<BTreeMap<String, Running>>,
    ready: AtomicBool,
    /// Which encoders' views may have changed (the fleet page's live updates).
    pub(crate) changes: Changes,
    /// This node's membership, when it runs in a cluster.
    pub(crate) cluster: OnceLock<Arc<Cluster>>,
}

struct Running {
    /// Shared with the loop: an encoder's configuration is kept once.
    config: Arc<EncoderConfig>,
    supervision: Arc<Mutex<EncoderSupervision>>,
    signal: Arc<Signal>,
    task: JoinHandle<()>,
    mirror: Option<DeviceStateMirror>,
}

/// A supervised fleet. Cheap to clone.
#[derive(Clone)]
pub struct Fleet {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("encoders", &self.encoder_ids())
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// An empty fleet with these fleet-wide settings and the default metrics detail.
    pub fn new(defaults: &Tunables) -> Result<Self, FleetError> {
        Self::with_metrics(defaults, MetricsOptions::default())
    }

    /// An empty fleet with these fleet-wide settings, keeping the metrics detail
    /// `options` asks for (`[metrics]` in the configuration file).
    pub fn with_metrics(defaults: &Tunables, options: MetricsOptions) -> Result<Self, FleetError> {
        let metrics = HeloMetrics::with_options(options)?;
        let observer = Arc::new(FleetObserver::new(metrics.clone()));
        let warmup = WarmupManager::new(HeloConnector, settings::pool(defaults), observer.clone());
        let thermal = ConnectionThermalManager::new(
            warmup.clone(),
            settings::thermal(defaults),
            observer.clone(),
        );
        let checker = ConnectionHealthChecker::builder(thermal.clone())
            .config(settings::health(defaults))
            .observer(observer.clone())
            .build()?;
        Ok(Self {
            shared: Arc::new(Shared {
                warmup,
                thermal,
                checker,
                metrics,
                defaults: defaults.clone(),
                observer,
                encoders: Mutex::new(BTreeMap::new()),
                ready: AtomicBool::new(false),
                changes: Changes::default(),
                cluster: OnceLock::new(),
            }),
        })
    }

    /// Starts supervising every encoder of `config`.
    pub fn start(config: &FleetConfig) -> Result<Self, FleetError> {
        let fleet = Self::with_metrics(&config.defaults, config.metrics)?;
        for encoder in &config.encoders {
            fleet.add_encoder(encoder.clone())?;
        }
        fleet.set_ready();
        Ok(fleet)
    }

    /// This fleet as a member of `cluster`: its loops follow the cluster's view.
    pub(crate) fn join(self, cluster: Arc<Cluster>) -> Self {
        let _ = self.shared.cluster.set(cluster);
        self
    }

    fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.shared.cluster.get()
    }

    pub(crate) fn set_ready(&self) {
        self.shared.ready.store(true, Ordering::Release);
    }

    /// Starts and stops loops so that they follow `view`: an encoder given up is
    /// released only once its loop has stopped.
    pub(crate) async fn follow(&self, view: &ClusterView) {
        let Some(cluster) = self.cluster() else {
            return;
        };
        let _one_at_a_time = cluster.changing.lock().await;
        self.follow_locked(cluster, view).await;
    }

    async fn follow_locked(&self, cluster: &Cluster, view: &ClusterView) {
        let running = self.lock().keys().cloned().collect();
        let moves = cluster::moves(view, &cluster.fleet_ids(), &running);
        if moves.stop.is_empty() && moves.release.is_empty() && moves.start.is_empty() {
            return;
        }
        let began = Instant::now();
        let release = &moves.release;
        let stops = moves.stop.iter().map(|id| async move {
            self.remove_encoder(id).await;
            if release.contains(id) {
                cluster.release(id).await;
            }
        });
        futures_util::future::join_all(stops).await;
        for id in moves.release.iter().filter(|id| !moves.stop.contains(id)) {
            cluster.release(id).await;
        }
        for id in &moves.start {
            let Some(config) = cluster.config_of(id) else {
                continue;
            };
            if let Err(e) = self.add_encoder(config) {
                tracing::error!(encoder_id = %id, error = %e, "could not start supervising");
            }
        }
        tracing::info!(
            members = ?view.members,
            stopped = moves.stop.len(),
            released = moves.release.len(),
            started = moves.start.len(),
            took = ?began.elapsed(),
            "following the cluster"
        );
    }

    /// Starts supervising one more encoder: warm pool, event mirror, check loop.
    pub fn add_encoder(&self, config: EncoderConfig) -> Result<(), FleetError> {
        let mut encoders = self.lock();
        if encoders.contains_key(&config.id) {
            return Err(FleetError::DuplicateEncoder(config.id));
        }
        let s = &self.shared;
        let id = EncoderId::from(config.id.as_str());
        let device = Device::new(config.device.clone());
        s.observer.set_retired(&id, false);
        s.warmup.start_warmup(device.clone());
        s.checker.set_expectations(
            &id,
            Expectations {
                expect_streaming: config.expect_streaming,
                expect_recording: config.expect_recording,
            },
        );
        let mirror = if config.tunables.events {
            match DeviceStateMirror::for_device(
                device.clone(),
                MirrorConfig::default(),
                s.observer.clone(),
            ) {
                Ok(m) => {
                    s.checker.attach_mirror(&id, m.subscribe());
                    Some(m)
                }
                Err(e) => {
                    tracing::warn!(encoder_id = %id, error = %e, "event mirror not started; polling");
                    None
                }
            }
        } else {
            None
        };
        let supervision = Arc::new(Mutex::new(EncoderSupervision::new(
            DesiredState {
                streaming: config.expect_streaming,
                recording: config.expect_recording,
            },
            config.hold,
            settings::supervision(&config.tunables, &s.defaults),
        )));
        let signal = Arc::new(Signal::default());
        let config = Arc::new(config);
        let task = EncoderTask {
            refused: Mutex::new(None),
            // Once the fleet has started, an added encoder is a takeover or a reload:
            // no start-up storm to spread, and nobody watching its streams.
            first_check: if s.ready.load(Ordering::Acquire) {
                FirstCheck::WhenWarm
            } else {
                FirstCheck::Spread
            },
            id: id.clone(),
            config: config.clone(),
            device,
            shared: self.shared.clone(),
            supervision: supervision.clone(),
            signal: signal.clone(),
            metrics_layer: MetricsLayer::new(&s.metrics, &id),
            mirror: mirror.as_ref().map(DeviceStateMirror::subscribe),
        };
        let task = tokio::spawn(supervise::run(task));
        tracing::info!(encoder_id = %id, url = %config.device.url(), "supervising");
        s.changes.touch(&config.id);
        encoders.insert(
            config.id.clone(),
            Running {
                config,
                supervision,
                signal,
                task,
                mirror,
            },
        );
        Ok(())
    }

    /// Stops supervising an encoder and closes everything it owned; its metric series
    /// go with it. Answers whether it was supervised.
    pub async fn remove_encoder(&self, id: &str) -> bool {
        let Some(running) = self.lock().remove(id) else {
            return false;
        };
        self.stop_running(id, running, Duration::from_secs(5)).await;
        true
    }

    async fn stop_running(&self, id: &str, running: Running, grace: Duration) {
        let s = &self.shared;
        let encoder = EncoderId::from(id);
        running.signal.stop();
        let mut task = running.task;
        // The loop finishes its current check (bounded by the health deadline); past
        // the grace period it is cut off.
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
        }
        if let Some(mirror) = running.mirror {
            mirror.stop().await;
        }
        s.warmup.stop_warmup(&encoder).await;
        s.checker.remove_encoder(&encoder);
        s.observer.set_retired(&encoder, true);
        s.metrics.remove_encoder(&encoder);
        // After the loop has stopped, so that no mark of it comes after this.
        s.changes.forget(id);
        tracing::info!(encoder_id = %encoder, reason = "stopped", "no longer supervised");
    }

    /// Applies a new configuration without restarting unchanged encoders: new ones
    /// start, missing ones stop, changed ones restart. Fleet-wide defaults apply to
    /// encoders started from now on.
    pub async fn reload(&self, config: &FleetConfig) -> Result<(), FleetError> {
        if let Some(cluster) = self.cluster() {
            // The cluster decides which encoders run here; a changed one restarts
            // (its owner key stays), the others follow the new view.
            let _one_at_a_time = cluster.changing.lock().await;
            for id in cluster.set_configs(config)? {
                if self.remove_encoder(&id).await {
                    tracing::info!(encoder_id = %id, reason = "reloaded", "configuration changed; restarting its loop");
                }
            }
            self.follow_locked(cluster, &cluster.view()).await;
            return Ok(());
        }
        let wanted: BTreeMap<String, &EncoderConfig> =
            config.encoders.iter().map(|e| (e.id.clone(), e)).collect();
        let current: Vec<(String, Arc<EncoderConfig>)> = self
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.config.clone()))
            .collect();
        for (id, old) in &current {
            let keep = wanted.get(id).is_some_and(|new| same_encoder(old, new));
            if !keep {
                self.remove_encoder(id).await;
            }
        }
        for (id, new) in wanted {
            if !self.lock().contains_key(&id) {
                self.add_encoder(new.clone())?;
            }
        }
        Ok(())
    }

    /// Stops every loop, lets in-flight checks finish within `grace`, closes all
    /// connections.
    pub async fn shutdown(&self, grace: Duration) {
        self.shared.ready.store(false, Ordering::Release);
        let cluster = self.cluster();
        // A change of the loops in progress finishes first (loops stopped, keys
        // released), then the driver stops following the view.
        let _one_at_a_time = match cluster {
            Some(c) => {
                let changing = c.changing.lock().await;
                c.stop_driver();
                Some(changing)
            }
            None => None,
        };
        let all: Vec<(String, Running)> = std::mem::take(&mut *self.lock()).into_iter().collect();
        for (_, running) in &all {
            running.signal.stop();
        }
        let stops = all
            .into_iter()
            .map(|(id, running)| async move { self.stop_running(&id, running, grace).await });
        futures_util::future::join_all(stops).await;
        // Only after every loop stopped: the others take over at once.
        if let Some(c) = cluster {
            c.leave().await;
        }
    }

    /// Whether this node may act on `id` now: it supervises it and, in a cluster,
    /// owns it with a valid lease.
    fn permit(&self, id: &str) -> Result<(), FleetError> {
        let running = self.lock().contains_key(id);
        match self.cluster() {
            None if running => Ok(()),
            None => Err(FleetError::UnknownEncoder(id.to_string())),
            Some(c) if !c.knows(id) => Err(FleetError::UnknownEncoder(id.to_string())),
            Some(c) => c.permit(id).map_err(|why| FleetError::NotActing {
                encoder: id.to_string(),
                why,
            }),
        }
    }

    /// Manual cooling (reason `manual`) of every connection of an encoder the thermal
    /// model knows; answers the connections now cooling. Refused for an unknown
    /// encoder and, in a cluster, for one this node may not act on
    /// ([`FleetError::not_acting`] says why, and who owns it).
    pub fn cooldown(&self, id: &str) -> Result<Vec<u64>, FleetError> {
        self.permit(id)?;
        let encoder = EncoderId::from(id);
        let t = &self.shared.thermal;
        let mut cooled = Vec::new();
        for snap in t.snapshot(&encoder) {
            t.start_cooling(&encoder, snap.conn, CoolingReason::Manual);
            if t.is_cooling(&encoder, snap.conn) {
                cooled.push(snap.conn.get());
            }
        }
        tracing::info!(encoder_id = %encoder, reason = "manual", connections = ?cooled, "manual cooldown");
        self.shared.changes.touch(id);
        Ok(cooled)
    }

    /// Holds (`true`) or releases an encoder: while held, reconciliation is paused
    /// (maintenance) and the status says `held`. Answers the hold now. Refused like
    /// [`cooldown`](Self::cooldown). A hold lasts until released, the process stops
    /// or (in a cluster) the encoder moves to another node; a hold that must survive
    /// these belongs in the configuration: `hold = true`.
    pub fn hold(&self, id: &str, held: bool) -> Result<bool, FleetError> {
        self.permit(id)?;
        let (supervision, wake) = {
            let encoders = self.lock();
            let running = encoders
                .get(id)
                .ok_or_else(|| FleetError::UnknownEncoder(id.to_string()))?;
            (running.supervision.clone(), running.signal.clone())
        };
        let was = {
            let mut sup = lock(&supervision);
            let was = sup.is_held();
            sup.set_held(held, Instant::now(), std::time::SystemTime::now());
            was
        };
        if was != held {
            tracing::warn!(
                encoder_id = %id,
                reason = if held { "held" } else { "released" },
                "{}",
                if held { "held for maintenance: reconciliation paused" } else { "released: reconciliation resumed" }
            );
        }
        // The loop exports the new status and checks at once.
        wake.wake();
        self.shared.changes.touch(id);
        Ok(held)
    }

    /// Ids of the supervised encoders.
    pub fn encoder_ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Everything known about one encoder.
    pub fn view(&self, id: &str) -> Option<EncoderView> {
        let entry = self.lock().get(id).map(|r| self.entry_of(r))?;
        Some(self.view_of(entry))
    }

    /// Everything known about every encoder, by id.
    pub fn views(&self) -> Vec<EncoderView> {
        let entries: Vec<_> = self.lock().values().map(|r| self.entry_of(r)).collect();
        entries.into_iter().map(|e| self.view_of(e)).collect()
    }

    fn entry_of(&self, r: &Running) -> (Arc<EncoderConfig>, conn_health::SupervisionReport) {
        (
            r.config.clone(),
            lock(&r.supervision).report(Instant::now()),
        )
    }

    fn view_of(
        &self,
        (config, supervision): (Arc<EncoderConfig>, conn_health::SupervisionReport),
    ) -> EncoderView {
        let s = &self.shared;
        let encoder = EncoderId::from(config.id.as_str());
        let events = match s.checker.mirror_state(&encoder) {
            Some(state) => state.status.as_str().to_string(),
            None => "off".to_string(),
        };
        let mut view = EncoderView::new(ViewParts {
            id: config.id.clone(),
            url: config.device.url(),
            supervision,
            events,
            pool: PoolView::new(
                s.warmup.encoder_state(&encoder),
                s.warmup.pool_stats(&encoder),
                s.warmup.config().max_connections,
            ),
            connections: s
                .thermal
                .snapshot(&encoder)
                .iter()
                .map(ConnectionView::from)
                .collect(),
            load: s.thermal.encoder_load(&encoder),
        });
        view.owner = self.cluster().and_then(|c| c.owner_of(&config.id));
        view
    }

    /// Which encoders' views may have changed, for readers that follow the fleet.
    pub fn changes(&self) -> &Changes {
        &self.shared.changes
    }

    /// The metric families.
    pub fn metrics(&self) -> &HeloMetrics {
        &self.shared.metrics
    }

    /// Configuration loaded and loops running.
    pub fn is_ready(&self) -> bool {
        self.shared.ready.load(Ordering::Acquire)
    }

    /// `Ok` when ready; else why not, for `/readyz`: not started yet, or (in a
    /// cluster) this node cannot act because etcd is unreachable. Such a node keeps
    /// observing.
    pub fn readiness(&self) -> Result<(), String> {
        if !self.is_ready() {
            return Err("not ready".to_string());
        }
        match self.cluster().and_then(|c| c.unready()) {
            Some(why) => Err(format!("not ready: {why}")),
            None => Ok(()),
        }
    }

    /// This node's view of the cluster; `None` for a supervisor alone.
    pub fn cluster_status(&self) -> Option<ClusterStatus> {
        self.cluster().map(|c| c.status())
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Running>> {
        lock(&self.shared.encoders)
    }
}

pub(crate) fn same_encoder(a: &EncoderConfig, b: &EncoderConfig) -> bool {
    a.device.url() == b.device.url()
        && a.device.password() == b.device.password()
        && a.expect_streaming == b.expect_streaming
        && a.expect_recording == b.expect_recording
        && a.hold == b.hold
        && a.tunables == b.tunables
}

/// Locks a mutex, recovering from poisoning: the data behind these locks is plain
/// state that stays consistent between statements.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
