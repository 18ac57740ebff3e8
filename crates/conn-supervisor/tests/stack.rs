//! The supervisor's request stack (`build_stack`) over a real pooled connection to
//! helo-sim on loopback, with the fleet's default settings: a slow device, requests
//! at once, deadlines, the queue, and load shedding. Real time with short timeouts:
//! the paused clock would auto-advance while we wait on sockets.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{sync::Arc, time::Duration};

use conn_core::{
    ConnectionThermalManager, HeloConnector, NoopObserver, Overloaded, PooledConnection,
    WarmupManager,
};
use conn_health::ConnectionHealthChecker;
use conn_metrics::{HeloMetrics, MetricsLayer};
use conn_supervisor::{
    config::Tunables,
    settings,
    stack::{build_stack, EncoderStack},
};
use futures_util::future::join_all;
use helo_sim::{Faults, SimConfig, SimDevice};
use helo_transport::{
    names, BoxError, Device, DeviceConfig, DeviceName, HeloClientExt, HeloConnection, HeloError,
    Outcome, ParamValue,
};

const TIMEOUT: Duration = Duration::from_millis(400);

/// The six reads a health check makes at once (probe, stream, record, temperature,
/// media, link errors).
const SIX: [&str; 6] = [
    names::SYSTEM_STATE,
    names::STREAM_STATE,
    names::RECORD_STATE,
    names::TEMPERATURE,
    names::MEDIA_AVAILABLE,
    names::LINK_ERRORS,
];

struct Rig {
    sim: SimDevice,
    encoder: DeviceName,
    metrics: HeloMetrics,
    stack: EncoderStack,
    conn: HeloConnection,
    checker: ConnectionHealthChecker,
    // Held so the connection stays checked out of the pool while the test uses it.
    _pooled: PooledConnection<HeloConnection>,
    _warmup: WarmupManager<HeloConnector>,
    _thermal: ConnectionThermalManager,
}

/// A warm pooled connection to a fresh simulator, wrapped by `build_stack` with the
/// fleet's default pool, thermal and health settings; `config` adjusts the device.
async fn rig(config: impl FnOnce(DeviceConfig) -> DeviceConfig) -> Rig {
    let sim = SimDevice::start("127.0.0.1:0".parse().unwrap(), SimConfig::fast())
        .await
        .unwrap();
    let device_config = DeviceConfig::from_url("enc-1", &sim.url())
        .unwrap()
        .with_request_timeout(TIMEOUT)
        .unwrap()
        .with_connect_timeout(TIMEOUT)
        .unwrap();
    let device = Device::new(config(device_config));
    let encoder = device.name().clone();
    let tunables = Tunables::default();
    let warmup = WarmupManager::new(
        HeloConnector,
        settings::pool(&tunables),
        Arc::new(NoopObserver),
    );
    let thermal = ConnectionThermalManager::new(
        warmup.clone(),
        settings::thermal(&tunables),
        Arc::new(NoopObserver),
    );
    let checker = ConnectionHealthChecker::builder(thermal.clone())
        .config(settings::health(&tunables))
        .build()
        .unwrap();
    let metrics = HeloMetrics::new().unwrap();
    warmup.start_warmup(device);
    let pooled = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(c) = warmup.get_warm_connection(&encoder) {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("a warm connection within 5 s");
    let conn = pooled.get_ref().clone();
    let metrics_layer = MetricsLayer::new(&metrics, &encoder);
    let stack = build_stack(&encoder, conn.clone(), &metrics_layer, &checker, &thermal);
    Rig {
        sim,
        encoder,
        metrics,
        stack,
        conn,
        checker,
        _pooled: pooled,
        _warmup: warmup,
        _thermal: thermal,
    }
}

impl Rig {
    fn slow(&self, latency_ms: u64) {
        self.sim
            .set_faults(Faults {
                latency_ms,
                ..Faults::default()
            })
            .unwrap();
    }

    /// `get` of every parameter at once, through clones of the one stack.
    async fn get_all(&self, params: &[&str]) -> Vec<Result<ParamValue, BoxError>> {
        join_all(params.iter().map(|p| self.stack.get_param(p))).await
    }

    fn requests_total(&self, outcome: Outcome) -> u64 {
        self.metrics
            .requests()
            .requests_total(&self.encoder, "get_param", outcome)
            .get()
    }
}

/// The error of a request that did not answer: a `HeloError` that names the device
/// and this request.
fn helo_error<'a>(err: &'a BoxError, param: &str) -> &'a HeloError {
    let e = err
        .downcast_ref::<HeloError>()
        .unwrap_or_else(|| panic!("not a typed HeloError: {err}"));
    assert_eq!(e.device().as_str(), "enc-1", "{e}");
    assert_eq!(e.request(), format!("get {param}"), "{e}");
    let text = e.to_string();
    assert!(text.starts_with(&format!("enc-1: get {param}: ")), "{text}");
    e
}

#[tokio::test]
async fn six_requests_to_a_slow_device_all_get_their_turn_and_the_connection_stays_usable() {
    let r = rig(|c| c).await;
    // Each answer takes 250 ms of a 400 ms deadline; six at once need 1.5 s on one
    // HTTP/1.1 connection. The deadline covers each request's own turn on the wire,
    // so none of them fails for having waited behind the others.
    r.slow(250);
    let results = r.get_all(&SIX).await;
    for (param, result) in SIX.iter().zip(&results) {
        match result {
            Ok(p) => assert_eq!(p.name, *param),
            Err(e) => {
                let e = helo_error(e, param);
                panic!("a request failed though every turn fits its deadline: {e}");
            }
        }
    }
    assert_eq!(r.requests_total(Outcome::Success), 6);
    assert!(!r.conn.is_closed());
    r.sim.clear_faults();
    r.stack.get_param(names::SYS_NAME).await.unwrap();
}

#[tokio::test]
async fn waiting_past_the_queue_deadline_fails_each_request_with_its_own_typed_error() {
    let r = rig(|c| c.with_queue_timeout(Duration::from_millis(600)).unwrap()).await;
    r.slow(250);
    // Turns start at 0, 250, 500, 750 … ms: the first three get the wire within the
    // 600 ms queue deadline, the last three do not and are never sent.
    let results = r.get_all(&SIX).await;
    for (i, (param, result)) in SIX.iter().zip(&results).enumerate() {
        if i < 3 {
            assert_eq!(result.as_ref().unwrap().name, *param);
        } else {
            let err = result.as_ref().unwrap_err();
            let e = helo_error(err, param);
            assert!(e.is_queue_timeout(), "{e}");
            assert!(!e.breaks_connection());
            assert_eq!(Outcome::of(err.as_ref()), Outcome::QueueTimeout);
        }
    }
    assert_eq!(r.requests_total(Outcome::Success), 3);
    assert_eq!(r.requests_total(Outcome::QueueTimeout), 3);
    assert!(!r.conn.is_closed());
    r.sim.clear_faults();
    r.stack.get_param(names::SYS_NAME).await.unwrap();
}

#[tokio::test]
async fn a_request_that_times_out_does_not_break_the_requests_behind_it() {
    let r = rig(|c| c).await;
    // The first answer takes 600 ms, past its 400 ms deadline; the requests queued
    // behind it are answered at once when they get the wire.
    r.slow(600);
    let first = r.stack.get_param(names::SYS_NAME);
    let behind = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        r.sim.clear_faults();
        r.get_all(&SIX[..3]).await
    };
    let (first, behind) = tokio::join!(first, behind);
    let err = first.unwrap_err();
    let e = helo_error(&err, names::SYS_NAME);
    assert!(e.is_timeout(), "{e}");
    assert!(
        e.to_string()
            .ends_with("timed out during response after 400ms"),
        "{e}"
    );
    for (param, result) in SIX.iter().zip(&behind) {
        assert_eq!(result.as_ref().unwrap().name, *param);
    }
    assert_eq!(r.requests_total(Outcome::Timeout), 1);
    assert_eq!(r.requests_total(Outcome::Success), 3);
    assert!(!r.conn.is_closed(), "the late answer was read, not dropped");
    r.stack.get_param(names::SYS_NAME).await.unwrap();
}

#[tokio::test]
async fn a_full_connection_queue_is_shed_at_once_by_the_thermal_layer() {
    // Thermal would admit eight at once (the fleet default), but the connection holds
    // two: the third request finds it not ready and is refused at once, not queued.
    let r = rig(|c| c.with_max_queued(2).unwrap()).await;
    r.slow(250);
    let started = tokio::time::Instant::now();
    let results = r.get_all(&SIX[..3]).await;
    assert!(results[0].is_ok() && results[1].is_ok(), "{results:?}");
    let err = results[2].as_ref().unwrap_err();
    let shed = err
        .downcast_ref::<Overloaded>()
        .unwrap_or_else(|| panic!("not shed: {err}"));
    assert!(shed.is_not_ready(), "{shed}");
    assert_eq!(
        (shed.device().as_str(), shed.request()),
        ("enc-1", "get eParamID_ReplicatorRecordState")
    );
    assert_eq!(Outcome::of(err.as_ref()), Outcome::Shed);
    assert_eq!(r.requests_total(Outcome::Shed), 1);
    assert_eq!(r.requests_total(Outcome::Other), 0);
    assert!(started.elapsed() < Duration::from_secs(1));
    r.sim.clear_faults();
    r.stack.get_param(names::SYS_NAME).await.unwrap();
}

/// A fleet starting up has every encoder's first check in flight at once, so the
/// size of one check's future is paid a thousand times over in the heap's peak (and
/// glibc keeps the peak): issue 11's memory per encoder. The reads of a check are
/// made only when the event mirror does not already have the value.
#[tokio::test]
async fn a_health_checks_future_is_small_and_still_checks() {
    let rig = rig(|c| c).await;
    let expectations = conn_health::Expectations::default();
    let check = rig.checker.perform_health_check_with(
        &rig.encoder,
        rig.conn.id(),
        rig.stack.clone(),
        &expectations,
    );
    // 25 KiB before its reads were made lazily and boxed; the bound leaves room for
    // the layers to change, not for the requests to come back inline.
    let size = std::mem::size_of_val(&check);
    assert!(size <= 8 * 1024, "a health check's future: {size} bytes");
    let status = check.await;
    assert!(status.error_class().is_none(), "{status:?}");
}
