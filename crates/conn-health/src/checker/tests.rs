use std::time::Duration;

use helo_transport::names;
use tower::ServiceBuilder;

use super::*;
use crate::{
    mirror::{DeviceStateMirror, MirrorConfig},
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
            backoff: MirrorConfig::default().backoff.without_jitter(),
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
async fn expectations_turn_idle_into_a_failure_below_the_degraded_threshold() {
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
        CheckOutcome::Failed
    );
    assert_eq!(
        outcome(&status, CheckKind::RecordingState),
        CheckOutcome::Failed
    );
    assert!(status.health_score() < 70.0, "{}", status.health_score());
    checker.remove_encoder(&dev.name);
    assert_eq!(checker.expectations(&dev.name), Expectations::default());
}

#[tokio::test(start_paused = true)]
async fn passive_traffic_through_a_boxed_stack_feeds_error_rate_and_latency() {
    let dev = FakeDevice::new();
    let checker = ConnectionHealthChecker::new(NoThermalReadings);
    let stack = ServiceBuilder::new()
        .layer(checker.health_layer(&dev.name, conn()))
        .timeout(Duration::from_millis(2500))
        .service(dev.service());
    let stack = tower::util::BoxCloneService::new(stack);
    // Live traffic: 10 answers and 4 "not supported" answers (not errors); later a
    // slow phase with 5 more "not supported", 5 rejected sets (answers too) and 5
    // requests that time out (errors).
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
    let window = checker.passive().connection(&dev.name, conn());
    assert_eq!(window.errors, 0, "unsupported and rejected are answers");
    dev.state().hang = true;
    for _ in 0..5 {
        let e = stack.get_param(names::SYSTEM_STATE).await.unwrap_err();
        assert!(e.is::<tower::timeout::error::Elapsed>(), "{e}");
    }
    dev.state().hang = false;
    dev.state().latency = Duration::from_millis(5);
    status = checker.perform_health_check(&dev.name, conn(), stack).await;
    let e = status.check(CheckKind::ErrorRate).unwrap();
    assert_ne!(e.outcome, CheckOutcome::Ok, "{}", e.detail);
    assert!(e.detail.starts_with("5 errors"), "{}", e.detail);
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
