//! The health checker: runs the checks of one health check concurrently under one
//! deadline, scores them, reports them.

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use futures_util::FutureExt;
use helo_transport::{
    names, BoxError, ConnectionId, ErrorClass, HeloClientExt, HeloError, HeloRequest, HeloResponse,
    Outcome,
};
use tokio::{
    sync::watch,
    time::{timeout_at, Instant},
};
use tower::Service;

use crate::{
    checks::{self, Evaluation, Read, Replicator, ResourceInputs},
    config::{Expectations, HealthConfig},
    error::HealthError,
    health_layer::HealthLayer,
    mirror::{DeviceState, Reading},
    observer::{HealthObserver, NoopHealthObserver},
    passive::PassiveStats,
    status::{CheckKind, CheckResult, CheckSource, DeviceReadings, EncoderId, HealthStatus},
    thermal::ThermalReadings,
};

/// Judges connections: basic connectivity, response time, error rate, thermal state,
/// resources, stream and record state, combined into a 0–100 score.
///
/// Cloning is cheap and shares everything (passive windows, expectations, mirrors).
#[derive(Clone)]
pub struct ConnectionHealthChecker {
    inner: Arc<Inner>,
}

struct Inner {
    thermal: Box<dyn ThermalReadings>,
    config: HealthConfig,
    passive: PassiveStats,
    observer: Arc<dyn HealthObserver>,
    encoders: Mutex<HashMap<EncoderId, EncoderEntry>>,
}

#[derive(Default)]
struct EncoderEntry {
    expectations: Expectations,
    mirror: Option<watch::Receiver<DeviceState>>,
    last_link_errors: Option<i64>,
    /// Parameters the device answered "not supported" for, and when.
    unsupported: HashMap<&'static str, Instant>,
}

impl fmt::Debug for ConnectionHealthChecker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionHealthChecker")
            .field("config", &self.inner.config)
            .field("passive", &self.inner.passive)
            .field("encoders", &self.lock().len())
            .finish()
    }
}

/// Builds a [`ConnectionHealthChecker`] with non-default parts.
pub struct HealthCheckerBuilder {
    thermal: Box<dyn ThermalReadings>,
    config: HealthConfig,
    passive: Option<PassiveStats>,
    observer: Arc<dyn HealthObserver>,
}

impl fmt::Debug for HealthCheckerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthCheckerBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl HealthCheckerBuilder {
    /// The checker's settings.
    pub fn config(mut self, config: HealthConfig) -> Self {
        self.config = config;
        self
    }

    /// Where results are reported.
    pub fn observer(mut self, observer: Arc<dyn HealthObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// Shares existing passive windows (by default the checker makes its own).
    pub fn passive(mut self, passive: PassiveStats) -> Self {
        self.passive = Some(passive);
        self
    }

    /// Validates the settings and builds the checker.
    pub fn build(self) -> Result<ConnectionHealthChecker, HealthError> {
        self.config.validate()?;
        Ok(ConnectionHealthChecker {
            inner: Arc::new(Inner {
                thermal: self.thermal,
                config: self.config,
                passive: self.passive.unwrap_or_default(),
                observer: self.observer,
                encoders: Mutex::default(),
            }),
        })
    }
}

/// What the checks of one health check found out along the way.
#[derive(Default)]
struct Notes {
    unsupported: Mutex<Vec<&'static str>>,
    link_errors: Mutex<Option<i64>>,
    readings: Mutex<DeviceReadings>,
}

/// The probe's answer, shared by the checks that need it.
#[derive(Clone)]
struct Probe {
    took: std::time::Duration,
    /// The probe parameter's value when it is an integer.
    read: Read<Option<i64>>,
}

impl ConnectionHealthChecker {
    /// A checker with default settings that reads connection temperatures from
    /// `thermal` (in production the thermal manager).
    pub fn new(thermal: impl ThermalReadings) -> Self {
        Self {
            inner: Arc::new(Inner {
                thermal: Box::new(thermal),
                config: HealthConfig::default(),
                passive: PassiveStats::default(),
                observer: Arc::new(NoopHealthObserver),
                encoders: Mutex::default(),
            }),
        }
    }

    /// A builder, for settings, an observer or shared passive windows.
    pub fn builder(thermal: impl ThermalReadings) -> HealthCheckerBuilder {
        HealthCheckerBuilder {
            thermal: Box::new(thermal),
            config: HealthConfig::default(),
            passive: None,
            observer: Arc::new(NoopHealthObserver),
        }
    }

    /// The settings.
    pub fn config(&self) -> &HealthConfig {
        &self.inner.config
    }

    /// The passive windows the checker reads; give it to each connection's
    /// [`HealthLayer`].
    pub fn passive(&self) -> PassiveStats {
        self.inner.passive.clone()
    }

    /// A [`HealthLayer`] recording into this checker's passive windows.
    pub fn health_layer(&self, encoder: &EncoderId, conn: ConnectionId) -> HealthLayer {
        HealthLayer::new(encoder.clone(), conn, self.passive())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<EncoderId, EncoderEntry>> {
        self.inner
            .encoders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Says what `encoder` is configured to be doing.
    pub fn set_expectations(&self, encoder: &EncoderId, expectations: Expectations) {
        self.lock().entry(encoder.clone()).or_default().expectations = expectations;
    }

    /// What `encoder` is configured to be doing (nothing, unless set).
    pub fn expectations(&self, encoder: &EncoderId) -> Expectations {
        self.lock()
            .get(encoder)
            .map(|e| e.expectations)
            .unwrap_or_default()
    }

    /// Makes checks of `encoder` read `state` (a
    /// [`DeviceStateMirror::subscribe`](crate::DeviceStateMirror::subscribe)) instead
    /// of polling, whenever it is fresh.
    pub fn attach_mirror(&self, encoder: &EncoderId, state: watch::Receiver<DeviceState>) {
        self.lock().entry(encoder.clone()).or_default().mirror = Some(state);
    }

    /// Stops reading a mirror for `encoder`.
    pub fn detach_mirror(&self, encoder: &EncoderId) {
        if let Some(e) = self.lock().get_mut(encoder) {
            e.mirror = None;
        }
    }

    /// The attached mirror's current state.
    pub fn mirror_state(&self, encoder: &EncoderId) -> Option<DeviceState> {
        self.lock()
            .get(encoder)
            .and_then(|e| e.mirror.as_ref().map(|rx| rx.borrow().clone()))
    }

    /// Forgets everything about `encoder` and tells the observer.
    pub fn remove_encoder(&self, encoder: &EncoderId) {
        self.lock().remove(encoder);
        self.inner.passive.remove_encoder(encoder);
        self.inner.observer.encoder_removed(encoder);
    }

    /// Checks connection `conn` of `encoder` through `client` (a bare
    /// [`HeloConnection`](helo_transport::HeloConnection) or a whole tower stack), with
    /// the expectations set for the encoder.
    ///
    /// Never fails: a broken device gives a status with a failed `basic_connectivity`,
    /// a score of 0 and an [`HealthStatus::error_class`]. All checks share
    /// [`HealthConfig::deadline`]; a check still waiting then is failed as timed out and
    /// its request dropped (a request still queued on a
    /// [`HeloConnection`](helo_transport::HeloConnection) just leaves the queue; one on
    /// the wire has its late answer read in the background, so the connection stays
    /// usable unless the device never answers).
    ///
    /// Device requests: with a fresh mirror attached, only the probe (plus whatever the
    /// mirror lacks); without, the probe and five reads (stream, record, temperature,
    /// media, link errors), fewer once parameters are known to be unsupported.
    pub async fn perform_health_check<S>(
        &self,
        encoder: &EncoderId,
        conn: ConnectionId,
        client: S,
    ) -> HealthStatus
    where
        S: Service<HeloRequest, Response = HeloResponse> + Clone + Send + 'static,
        S::Error: From<HeloError> + Into<BoxError> + Send,
        S::Future: Send,
    {
        let expectations = self.expectations(encoder);
        self.perform_health_check_with(encoder, conn, client, &expectations)
            .await
    }

    /// [`perform_health_check`](Self::perform_health_check) with explicit
    /// expectations.
    pub async fn perform_health_check_with<S>(
        &self,
        encoder: &EncoderId,
        conn: ConnectionId,
        client: S,
        expectations: &Expectations,
    ) -> HealthStatus
    where
        S: Service<HeloRequest, Response = HeloResponse> + Clone + Send + 'static,
        S::Error: From<HeloError> + Into<BoxError> + Send,
        S::Future: Send,
    {
        let cfg = &self.inner.config;
        let started = Instant::now();
        let deadline = started + cfg.deadline;
        let (mirror, previous_link_errors, known_unsupported) = {
            let mut map = self.lock();
            let entry = map.entry(encoder.clone()).or_default();
            entry
                .unsupported
                .retain(|_, at| at.elapsed() < cfg.unsupported_ttl);
            let mirror = entry
                .mirror
                .as_ref()
                .map(|rx| rx.borrow().clone())
                .filter(|s| s.is_fresh(cfg.mirror_stale_after));
            let unsupported: Vec<&'static str> = entry.unsupported.keys().copied().collect();
            (mirror, entry.last_link_errors, unsupported)
        };
        let notes = Notes::default();
        let probe_is_system_state = cfg.probe_param == names::SYSTEM_STATE;

        let probe = {
            let client = client.clone();
            let param = cfg.probe_param.clone();
            async move {
                let t0 = Instant::now();
                let result = client.get_param(&param).await.map_err(Into::into);
                let took = t0.elapsed();
                let read = match result {
                    Ok(p) => Read::Value(p.as_i64().ok()),
                    Err(e) => to_failed_read(e),
                };
                Probe { took, read }
            }
        }
        .boxed()
        .shared();

        let ctx = Ctx {
            checker: self,
            encoder,
            deadline,
            notes: &notes,
            known_unsupported: &known_unsupported,
            mirror: mirror.as_ref(),
        };

        let connectivity = ctx.run(CheckKind::BasicConnectivity, {
            let probe = probe.clone();
            async move {
                let p = probe.await;
                let read = match p.read {
                    Read::Value(_) => Read::Value(()),
                    Read::Unsupported => Read::Unsupported,
                    Read::Failed { detail, class } => Read::Failed { detail, class },
                };
                (checks::connectivity(&read, p.took), CheckSource::Device)
            }
        });
        let response_time = ctx.run(CheckKind::ResponseTime, {
            let probe = probe.clone();
            let passive = self.passive();
            async move {
                let p = probe.await;
                let eval = match &p.read {
                    Read::Failed { .. } => Evaluation::unknown("the probe did not answer"),
                    _ => checks::response_time(
                        p.took,
                        &passive.connection(encoder, conn),
                        &cfg.limits,
                    ),
                };
                (eval, CheckSource::Passive)
            }
        });
        let error_rate = ctx.run(CheckKind::ErrorRate, {
            let probe = probe.clone();
            let passive = self.passive();
            async move {
                let p = probe.await;
                let failed = matches!(p.read, Read::Failed { .. });
                let eval = checks::error_rate(
                    &passive.connection(encoder, conn),
                    &passive.encoder(encoder),
                    failed,
                    &cfg.limits,
                );
                (eval, CheckSource::Passive)
            }
        });
        let thermal = ctx.run(CheckKind::ThermalStatus, async {
            let t = &self.inner.thermal;
            let eval = checks::thermal(
                t.temperature(encoder, conn),
                t.temperature_high(),
                &cfg.limits,
            );
            (eval, CheckSource::ThermalManager)
        });
        let resource = ctx.run(CheckKind::ResourceUsage, {
            let client = client.clone();
            let probe = probe.clone();
            let ctx = &ctx;
            async move {
                // Blocks own their client clone: holding a `&S` across an await would
                // need `S: Sync`, which boxed tower stacks are not.
                let system_state = {
                    let client = client.clone();
                    async move {
                        if probe_is_system_state {
                            let p = probe.await;
                            let read = match p.read {
                                Read::Value(Some(n)) => Read::Value(n),
                                Read::Value(None) => Read::Failed {
                                    detail: "system state is not a number".into(),
                                    class: ErrorClass::Other,
                                },
                                Read::Unsupported => Read::Unsupported,
                                Read::Failed { detail, class } => Read::Failed { detail, class },
                            };
                            return (read, true);
                        }
                        ctx.read(
                            names::SYSTEM_STATE,
                            ctx.mirror.map(|m| m.system_state),
                            || async move { client.get_int(names::SYSTEM_STATE).await },
                        )
                        .await
                    }
                };
                let temp = ctx.read(names::TEMPERATURE, ctx.mirror.map(|m| m.temperature), {
                    let client = client.clone();
                    || async move { client.temperature().await }
                });
                let media = ctx.read(
                    names::MEDIA_AVAILABLE,
                    ctx.mirror.map(|m| m.media_available),
                    {
                        let client = client.clone();
                        || async move { client.get_int(names::MEDIA_AVAILABLE).await }
                    },
                );
                let links = ctx.read(names::LINK_ERRORS, ctx.mirror.map(|m| m.link_errors), {
                    let client = client.clone();
                    || async move { client.get_int(names::LINK_ERRORS).await }
                });
                let ((system_state, s1), (device_temp, s2), (media, s3), (link_errors, s4)) =
                    tokio::join!(system_state, temp, media, links);
                if let Read::Value(n) = link_errors {
                    *lock(&ctx.notes.link_errors) = Some(n);
                }
                {
                    let mut r = lock(&ctx.notes.readings);
                    r.temperature = read_value(&device_temp);
                    r.media_available = read_value(&media);
                    r.system_state = read_value(&system_state);
                    r.link_errors = read_value(&link_errors);
                }
                let input = ResourceInputs {
                    device_temp,
                    media_available: map_read(media, |m| m as f64),
                    system_state,
                    link_errors,
                    previous_link_errors,
                };
                let source = if s1 && s2 && s3 && s4 {
                    CheckSource::Mirror
                } else {
                    CheckSource::Device
                };
                (checks::resource(&input, &cfg.limits), source)
            }
        });
        let streaming = ctx.run(CheckKind::StreamingState, {
            let client = client.clone();
            let ctx = &ctx;
            async move {
                let (read, from_mirror) = ctx
                    .read(
                        names::STREAM_STATE,
                        ctx.mirror
                            .map(|m| reading_map(m.stream_state, |s| s.value())),
                        || async move { client.stream_state().await.map(|s| s.value()) },
                    )
                    .await;
                lock(&ctx.notes.readings).stream_state = read_value(&read);
                let eval =
                    checks::replicator(Replicator::Stream, &read, expectations.expect_streaming);
                (eval, source_of(from_mirror))
            }
        });
        let recording = ctx.run(CheckKind::RecordingState, {
            let client = client.clone();
            let ctx = &ctx;
            async move {
                let (read, from_mirror) = ctx
                    .read(
                        names::RECORD_STATE,
                        ctx.mirror
                            .map(|m| reading_map(m.record_state, |s| s.value())),
                        || async move { client.record_state().await.map(|s| s.value()) },
                    )
                    .await;
                lock(&ctx.notes.readings).record_state = read_value(&read);
                let eval =
                    checks::replicator(Replicator::Record, &read, expectations.expect_recording);
                (eval, source_of(from_mirror))
            }
        });

        let (c1, c2, c3, c4, c5, c6, c7) = tokio::join!(
            connectivity,
            response_time,
            error_rate,
            thermal,
            resource,
            streaming,
            recording
        );
        let results = vec![c1, c2, c3, c4, c5, c6, c7];

        {
            let mut map = self.lock();
            let entry = map.entry(encoder.clone()).or_default();
            let now = Instant::now();
            for p in lock(&notes.unsupported).drain(..) {
                entry.unsupported.insert(p, now);
            }
            if let Some(n) = *lock(&notes.link_errors) {
                entry.last_link_errors = Some(n);
            }
        }

        let readings = *lock(&notes.readings);
        let status =
            HealthStatus::new(encoder.clone(), conn, results, &cfg.scoring).with_readings(readings);
        let took = started.elapsed();
        tracing::debug!(
            encoder_id = %encoder,
            connection = %conn,
            score = status.health_score(),
            level = status.level().as_str(),
            ?took,
            "health check"
        );
        self.inner.observer.health_checked(&status, took);
        status
    }
}

/// What the check futures of one health check share.
struct Ctx<'a> {
    checker: &'a ConnectionHealthChecker,
    encoder: &'a EncoderId,
    deadline: Instant,
    notes: &'a Notes,
    known_unsupported: &'a [&'static str],
    /// The mirror's state, when it is fresh.
    mirror: Option<&'a DeviceState>,
}

impl Ctx<'_> {
    /// Runs one check under the shared deadline and times it.
    async fn run<F>(&self, kind: CheckKind, fut: F) -> CheckResult
    where
        F: Future<Output = (Evaluation, CheckSource)>,
    {
        let t0 = Instant::now();
        let (eval, source) = match timeout_at(self.deadline, fut).await {
            Ok(r) => r,
            Err(_) => {
                let err = HealthError::DeadlineExceeded {
                    encoder: self.encoder.clone(),
                    check: kind,
                    after: self.checker.inner.config.deadline,
                };
                (
                    Evaluation::failed(err.to_string(), err.class()),
                    CheckSource::Device,
                )
            }
        };
        CheckResult {
            name: kind,
            outcome: eval.outcome,
            score: eval.score,
            detail: eval.detail,
            took: t0.elapsed(),
            source,
            error_class: eval.error_class,
        }
    }

    /// One value: from the mirror when it has it (or knows the device lacks it), else
    /// "unsupported" when the device said so recently, else asked with the request
    /// `poll` makes. Answers the value and whether it came from the mirror.
    ///
    /// The request is made only when it is needed, and boxed: inline, every read's
    /// request future (the whole tower stack's) would be part of the check's future
    /// whether it is sent or not, and a fleet starting up holds a check of every
    /// encoder at once. With events on, most reads come from the mirror.
    async fn read<T, E, F>(
        &self,
        param: &'static str,
        mirrored: Option<Reading<T>>,
        poll: impl FnOnce() -> F,
    ) -> (Read<T>, bool)
    where
        T: Copy,
        E: Into<BoxError>,
        F: Future<Output = Result<T, E>>,
    {
        match mirrored {
            Some(Reading::Known(v)) => return (Read::Value(v), true),
            Some(Reading::Unsupported) => return (Read::Unsupported, true),
            _ => {}
        }
        if self.known_unsupported.contains(&param) {
            return (Read::Unsupported, false);
        }
        let read = match Box::pin(poll()).await {
            Ok(v) => Read::Value(v),
            Err(e) => to_failed_read(e.into()),
        };
        if matches!(read, Read::Unsupported) {
            lock(&self.notes.unsupported).push(param);
        }
        (read, false)
    }
}

fn to_failed_read<T>(e: BoxError) -> Read<T> {
    let outcome = Outcome::of(e.as_ref());
    match outcome {
        Outcome::Unsupported => Read::Unsupported,
        _ => Read::Failed {
            detail: e.to_string(),
            class: outcome.error_class().unwrap_or(ErrorClass::Other),
        },
    }
}

fn read_value<T: Copy>(r: &Read<T>) -> Option<T> {
    match r {
        Read::Value(v) => Some(*v),
        _ => None,
    }
}

fn map_read<T, U>(r: Read<T>, f: impl FnOnce(T) -> U) -> Read<U> {
    match r {
        Read::Value(v) => Read::Value(f(v)),
        Read::Unsupported => Read::Unsupported,
        Read::Failed { detail, class } => Read::Failed { detail, class },
    }
}

fn reading_map<T, U>(r: Reading<T>, f: impl FnOnce(T) -> U) -> Reading<U> {
    match r {
        Reading::Known(v) => Reading::Known(f(v)),
        Reading::Unsupported => Reading::Unsupported,
        Reading::Unknown => Reading::Unknown,
    }
}

fn source_of(from_mirror: bool) -> CheckSource {
    if from_mirror {
        CheckSource::Mirror
    } else {
        CheckSource::Device
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
