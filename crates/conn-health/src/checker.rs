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
    passive::{PassiveStats, RequestOutcome},
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

    /// Forgets a closed connection's passive window.
    pub fn forget_connection(&self, encoder: &EncoderId, conn: ConnectionId) {
        self.inner.passive.remove_connection(encoder, conn);
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
    /// its request dropped. A connection whose probe timed out may still have that
    /// request queued on it: replace it rather than reuse it.
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
                            client.get_int(names::SYSTEM_STATE),
                        )
                        .await
                    }
                };
                let temp = ctx.read(
                    names::TEMPERATURE,
                    ctx.mirror.map(|m| m.temperature),
                    client.temperature(),
                );
                let media = ctx.read(
                    names::MEDIA_AVAILABLE,
                    ctx.mirror.map(|m| m.media_available),
                    client.get_int(names::MEDIA_AVAILABLE),
                );
                let links = ctx.read(
                    names::LINK_ERRORS,
                    ctx.mirror.map(|m| m.link_errors),
                    client.get_int(names::LINK_ERRORS),
                );
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
                        async move { client.stream_state().await.map(|s| s.value()) },
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
                        async move { client.record_state().await.map(|s| s.value()) },
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
    /// "unsupported" when the device said so recently, else asked with `poll`.
    /// Answers the value and whether it came from the mirror.
    async fn read<T, E, F>(
        &self,
        param: &'static str,
        mirrored: Option<Reading<T>>,
        poll: F,
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
        let read = match poll.await {
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
    match RequestOutcome::of_error(e.as_ref()) {
        RequestOutcome::Unsupported => Read::Unsupported,
        _ => Read::Failed {
            detail: e.to_string(),
            class: ErrorClass::of(e.as_ref()),
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
mod tests {
    use std::time::Duration;

    use helo_transport::names;
    use tower::ServiceBuilder;

    use super::*;
    use crate::{
        mirror::{BackoffConfig, DeviceStateMirror, MirrorConfig},
        observer::MockHealthObserver,
        status::{CheckOutcome, HealthLevel},
        testing::FakeDevice,
        thermal::{MockThermalReadings, NoThermalReadings},
    };

    fn conn() -> ConnectionId {
        ConnectionId::from_raw(1)
    }

    /// Waits on the mirror's channel, failing the test instead of hanging.
    async fn within<F, T, E>(fut: F)
    where
        F: Future<Output = Result<T, E>>,
        E: fmt::Debug,
    {
        tokio::time::timeout(Duration::from_millis(500), fut)
            .await
            .expect("mirror state not reached in time")
            .expect("mirror dropped");
    }

    fn outcome(s: &HealthStatus, k: CheckKind) -> CheckOutcome {
        s.check(k).map(|c| c.outcome).unwrap()
    }

    fn thermal_at(t: f64) -> MockThermalReadings {
        let mut m = MockThermalReadings::new();
        m.expect_temperature().return_const(Some(t));
        m.expect_temperature_high().return_const(80.0);
        m
    }

    fn mirror_for(dev: &std::sync::Arc<FakeDevice>) -> DeviceStateMirror {
        let d = dev.clone();
        DeviceStateMirror::spawn(
            dev.name.clone(),
            move || {
                let svc = d.service();
                async move { Ok::<_, HeloError>(svc) }
            },
            MirrorConfig {
                backoff: BackoffConfig {
                    jitter: 0.0,
                    ..BackoffConfig::default()
                },
                ..MirrorConfig::default()
            },
            Arc::new(NoopHealthObserver),
        )
        .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn healthy_device_by_polling() {
        let dev = FakeDevice::new();
        let checker = ConnectionHealthChecker::new(thermal_at(30.0));
        let status = checker
            .perform_health_check(&dev.name, conn(), dev.service())
            .await;
        assert_eq!(status.health_score(), 100.0, "{:#?}", status.checks());
        assert_eq!(status.level(), HealthLevel::Healthy);
        assert_eq!(status.result_label(), "success");
        assert_eq!(status.error_class(), None);
        let names: Vec<_> = status.checks().iter().map(|c| c.name).collect();
        assert_eq!(names, CheckKind::ALL);
        assert!(status
            .checks()
            .iter()
            .all(|c| c.outcome == CheckOutcome::Ok));
        // Probe (system state) + stream + record + temperature + media + link errors.
        assert_eq!(dev.gets(), 6);
        // What the checks saw is handed back, so callers need not ask again.
        let seen = status.readings();
        assert_eq!(seen.stream(), Some(helo_transport::StreamState::Idle));
        assert_eq!(seen.record(), Some(helo_transport::RecordState::Idle));
        assert_eq!(seen.temperature, Some(45.0));
        assert_eq!(seen.media_available, Some(90));
        assert_eq!(seen.system_state, Some(4));
        assert_eq!(seen.link_errors, Some(0));
        assert_eq!(status.to_json()["device"]["stream_state"], 1);
        assert_eq!(
            status.check(CheckKind::StreamingState).unwrap().source,
            CheckSource::Device
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_live_mirror_leaves_one_request_per_check() {
        let dev = FakeDevice::new();
        let mirror = mirror_for(&dev);
        let mut rx = mirror.subscribe();
        within(rx.wait_for(DeviceState::is_live)).await;
        let checker = ConnectionHealthChecker::new(NoThermalReadings);
        checker.attach_mirror(&dev.name, mirror.subscribe());

        let before = dev.gets();
        let status = checker
            .perform_health_check(&dev.name, conn(), dev.service())
            .await;
        assert_eq!(dev.gets() - before, 1, "only the connectivity probe");
        assert_eq!(status.health_score(), 100.0, "{:#?}", status.checks());
        for k in [
            CheckKind::StreamingState,
            CheckKind::RecordingState,
            CheckKind::ResourceUsage,
        ] {
            assert_eq!(status.check(k).unwrap().source, CheckSource::Mirror, "{k}");
        }

        // A stream failure pushed by event shows at the next check without polling.
        dev.set(names::STREAM_STATE, 4);
        within(rx.wait_for(|s| s.stream_state.value().is_some_and(|s| s.is_failing()))).await;
        let before = dev.gets();
        let status = checker
            .perform_health_check(&dev.name, conn(), dev.service())
            .await;
        assert_eq!(dev.gets() - before, 1);
        assert_eq!(
            outcome(&status, CheckKind::StreamingState),
            CheckOutcome::Failed
        );
        assert!(status.health_score() < 70.0, "{}", status.health_score());
        assert_eq!(status.result_label(), "failure");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stale_or_unsupported_mirror_falls_back_to_polling() {
        let dev = FakeDevice::new();
        dev.state().events_supported = false;
        let mirror = mirror_for(&dev);
        let mut rx = mirror.subscribe();
        within(rx.wait_for(|s| s.status == crate::MirrorStatus::Unsupported)).await;
        let checker = ConnectionHealthChecker::new(NoThermalReadings);
        checker.attach_mirror(&dev.name, mirror.subscribe());
        dev.set(names::STREAM_STATE, 2);
        let before = dev.gets();
        let status = checker
            .perform_health_check_with(
                &dev.name,
                conn(),
                dev.service(),
                &Expectations {
                    expect_streaming: true,
                    expect_recording: false,
                },
            )
            .await;
        assert_eq!(dev.gets() - before, 6);
        assert_eq!(
            outcome(&status, CheckKind::StreamingState),
            CheckOutcome::Ok
        );
        assert!(status.is_healthy(), "no event API is never unhealthy");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_device_fails_connectivity_at_the_deadline() {
        let dev = FakeDevice::new();
        dev.state().hang = true;
        let checker = ConnectionHealthChecker::builder(NoThermalReadings)
            .config(HealthConfig {
                deadline: Duration::from_secs(2),
                ..HealthConfig::default()
            })
            .build()
            .unwrap();
        let t0 = Instant::now();
        let status = checker
            .perform_health_check(&dev.name, conn(), dev.service())
            .await;
        assert_eq!(t0.elapsed(), Duration::from_secs(2));
        assert_eq!(status.health_score(), 0.0);
        assert_eq!(status.error_class(), Some(ErrorClass::Timeout));
        assert_eq!(status.result_label(), "error");
        let c = status.check(CheckKind::BasicConnectivity).unwrap();
        assert_eq!(c.outcome, CheckOutcome::Failed);
        assert!(c.detail.contains("deadline"), "{}", c.detail);
        assert_eq!(c.took, Duration::from_secs(2));
        // The thermal check needs no device and is not held up.
        assert!(status.check(CheckKind::ThermalStatus).unwrap().took < Duration::from_millis(1));
    }

    #[tokio::test(start_paused = true)]
    async fn connection_errors_surface_with_their_class() {
        let checker = ConnectionHealthChecker::new(NoThermalReadings);
        let enc = EncoderId::from("gone");
        let refused = tower::service_fn(|req: HeloRequest| async move {
            Err::<HeloResponse, _>(HeloError::Connect {
                device: EncoderId::from("gone"),
                request: req.to_string(),
                source: "connection refused".into(),
            })
        });
        let status = checker.perform_health_check(&enc, conn(), refused).await;
        assert_eq!(status.error_class(), Some(ErrorClass::Connection));
        let detail = &status.check(CheckKind::BasicConnectivity).unwrap().detail;
        assert!(detail.contains("connection refused"), "{detail}");
        assert!(detail.starts_with("connection error"), "{detail}");
        match status.error_class() {
            Some(ErrorClass::Connection) => {}
            other => panic!("expected a connection error, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hot_connection_lowers_the_score() {
        let dev = FakeDevice::new();
        let cool = ConnectionHealthChecker::new(thermal_at(40.0))
            .perform_health_check(&dev.name, conn(), dev.service())
            .await;
        let hot = ConnectionHealthChecker::new(thermal_at(95.0))
            .perform_health_check(&dev.name, conn(), dev.service())
            .await;
        assert_eq!(outcome(&cool, CheckKind::ThermalStatus), CheckOutcome::Ok);
        let t = hot.check(CheckKind::ThermalStatus).unwrap();
        assert_eq!(t.outcome, CheckOutcome::Failed);
        assert_eq!(t.source, CheckSource::ThermalManager);
        assert!(t.score < 20.0, "{}", t.score);
        assert!(hot.health_score() < cool.health_score());
    }

    #[tokio::test(start_paused = true)]
    async fn unsupported_parameters_are_unknown_and_not_asked_again() {
        let dev = FakeDevice::new();
        for p in [
            names::TEMPERATURE,
            names::MEDIA_AVAILABLE,
            names::LINK_ERRORS,
            names::SYSTEM_STATE,
        ] {
            dev.remove(p);
        }
        let checker = ConnectionHealthChecker::new(NoThermalReadings);
        let status = checker
            .perform_health_check(&dev.name, conn(), dev.service())
            .await;
        assert_eq!(
            outcome(&status, CheckKind::BasicConnectivity),
            CheckOutcome::Ok
        );
        assert_eq!(
            outcome(&status, CheckKind::ResourceUsage),
            CheckOutcome::Unknown
        );
        assert_eq!(
            outcome(&status, CheckKind::ThermalStatus),
            CheckOutcome::Unknown
        );
        assert_eq!(status.health_score(), 100.0);
        assert_eq!(dev.gets(), 6);
        // Next time only the probe, stream and record are asked.
        let before = dev.gets();
        checker
            .perform_health_check(&dev.name, conn(), dev.service())
            .await;
        assert_eq!(dev.gets() - before, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn growing_link_errors_warn() {
        let dev = FakeDevice::new();
        let checker = ConnectionHealthChecker::new(NoThermalReadings);
        let first = checker
            .perform_health_check(&dev.name, conn(), dev.service())
            .await;
        assert_eq!(outcome(&first, CheckKind::ResourceUsage), CheckOutcome::Ok);
        dev.set(names::LINK_ERRORS, 5);
        let second = checker
            .perform_health_check(&dev.name, conn(), dev.service())
            .await;
        let r = second.check(CheckKind::ResourceUsage).unwrap();
        assert_eq!(r.outcome, CheckOutcome::Warning);
        assert!(r.detail.contains("grew from 0 to 5"), "{}", r.detail);
        let third = checker
            .perform_health_check(&dev.name, conn(), dev.service())
            .await;
        assert_eq!(outcome(&third, CheckKind::ResourceUsage), CheckOutcome::Ok);
        dev.set(names::SYSTEM_STATE, 10);
        let fatal = checker
            .perform_health_check(&dev.name, conn(), dev.service())
            .await;
        assert_eq!(
            outcome(&fatal, CheckKind::ResourceUsage),
            CheckOutcome::Failed
        );
        assert!(fatal.health_score() < 70.0);
    }

    #[tokio::test(start_paused = true)]
    async fn expectations_turn_idle_into_a_warning() {
        let dev = FakeDevice::new();
        let checker = ConnectionHealthChecker::new(NoThermalReadings);
        checker.set_expectations(
            &dev.name,
            Expectations {
                expect_streaming: true,
                expect_recording: true,
            },
        );
        let status = checker
            .perform_health_check(&dev.name, conn(), dev.service())
            .await;
        assert_eq!(
            outcome(&status, CheckKind::StreamingState),
            CheckOutcome::Warning
        );
        assert_eq!(
            outcome(&status, CheckKind::RecordingState),
            CheckOutcome::Warning
        );
        assert!(status.health_score() < 100.0);
        checker.remove_encoder(&dev.name);
        assert_eq!(checker.expectations(&dev.name), Expectations::default());
    }

    #[tokio::test(start_paused = true)]
    async fn passive_traffic_through_a_boxed_stack_feeds_error_rate_and_latency() {
        let dev = FakeDevice::new();
        let checker = ConnectionHealthChecker::new(NoThermalReadings);
        let stack = ServiceBuilder::new()
            .layer(checker.health_layer(&dev.name, conn()))
            .service(dev.service());
        let stack = tower::util::BoxCloneService::new(stack);
        // Live traffic: 10 answers and 4 "not supported" answers (not errors); later a
        // slow phase with 5 more "not supported" and 5 rejected sets.
        for _ in 0..10 {
            stack.get_param(names::SYSTEM_STATE).await.unwrap();
        }
        for _ in 0..4 {
            let e = stack.get_param("eParamID_Nope").await.unwrap_err();
            assert!(e.is::<HeloError>());
        }
        let mut status = checker
            .perform_health_check(&dev.name, conn(), stack.clone())
            .await;
        assert_eq!(outcome(&status, CheckKind::ErrorRate), CheckOutcome::Ok);
        dev.state().latency = Duration::from_millis(2000);
        for _ in 0..5 {
            stack.get_param("eParamID_Nope").await.unwrap_err();
            stack
                .send(HeloRequest::set(names::SYSTEM_STATE, "4"))
                .await
                .unwrap_err();
        }
        dev.state().latency = Duration::from_millis(5);
        status = checker.perform_health_check(&dev.name, conn(), stack).await;
        let e = status.check(CheckKind::ErrorRate).unwrap();
        assert_ne!(e.outcome, CheckOutcome::Ok, "{}", e.detail);
        let r = status.check(CheckKind::ResponseTime).unwrap();
        assert_eq!(r.outcome, CheckOutcome::Warning, "{}", r.detail);
        assert!(r.detail.contains("recent mean"), "{}", r.detail);
    }

    #[tokio::test(start_paused = true)]
    async fn every_check_is_reported_to_the_observer() {
        let dev = FakeDevice::new();
        let mut observer = MockHealthObserver::new();
        observer
            .expect_health_checked()
            .times(1)
            .withf(|s, took| s.result_label() == "success" && *took > Duration::ZERO)
            .return_const(());
        observer
            .expect_encoder_removed()
            .times(1)
            .withf(|e| e.as_str() == "fake-1")
            .return_const(());
        let checker = ConnectionHealthChecker::builder(NoThermalReadings)
            .observer(Arc::new(observer))
            .build()
            .unwrap();
        checker
            .perform_health_check(&dev.name, conn(), dev.service())
            .await;
        checker.remove_encoder(&dev.name);
    }

    #[test]
    fn the_check_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let dev = FakeDevice::new();
        let checker = ConnectionHealthChecker::new(NoThermalReadings);
        let stack = tower::util::BoxCloneService::new(
            ServiceBuilder::new()
                .layer(checker.health_layer(&dev.name, conn()))
                .service(dev.service()),
        );
        let fut = checker.perform_health_check(&dev.name, conn(), stack);
        assert_send(&fut);
    }

    #[test]
    fn invalid_config_is_refused() {
        let err = ConnectionHealthChecker::builder(NoThermalReadings)
            .config(HealthConfig {
                deadline: Duration::ZERO,
                ..HealthConfig::default()
            })
            .build()
            .unwrap_err();
        assert!(err.is_invalid_config());
    }
}
