//! Against the simulator over real loopback sockets: real time, short durations.

// Helpers outside `#[test]` functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use conn_health::{
    CheckKind, CheckOutcome, ConnectionHealthChecker, DeviceState, DeviceStateMirror, EncoderId,
    HealthConfig, HealthLevel, MirrorConfig, MirrorStatus, NoThermalReadings, NoopHealthObserver,
    Reading, ThermalReadings,
};
use helo_sim::{Faults, SimConfig, SimDevice};
use helo_transport::{
    names, ConnectionId, Device, DeviceConfig, ErrorClass, HeloClientExt, HeloConnection, Password,
    StreamState,
};
use tokio::time::{timeout, Instant};

struct FixedThermal(f64);

impl ThermalReadings for FixedThermal {
    fn temperature(&self, _: &EncoderId, _: ConnectionId) -> Option<f64> {
        Some(self.0)
    }
}

async fn start(config: SimConfig) -> (SimDevice, Device, HeloConnection) {
    let sim = SimDevice::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let cfg = DeviceConfig::from_url("sim-1", &sim.url())
        .unwrap()
        .with_request_timeout(Duration::from_millis(1500))
        .unwrap();
    let device = Device::new(cfg);
    let conn = HeloConnection::connect(&device).await.unwrap();
    (sim, device, conn)
}

fn outcome(status: &conn_health::HealthStatus, k: CheckKind) -> CheckOutcome {
    status.check(k).map(|c| c.outcome).unwrap()
}

fn mirror_config() -> MirrorConfig {
    MirrorConfig {
        backoff: helo_transport::Backoff::new(
            Duration::from_millis(50),
            Duration::from_millis(500),
        )
        .without_jitter(),
        ..MirrorConfig::default()
    }
}

#[tokio::test]
async fn a_healthy_device_scores_at_least_80() {
    let (sim, device, conn) = start(SimConfig::fast()).await;
    let checker = ConnectionHealthChecker::new(FixedThermal(30.0));
    let status = checker
        .perform_health_check(device.name(), conn.id(), conn.clone())
        .await;
    assert!(status.health_score() >= 80.0, "{}", status.to_json());
    assert_eq!(status.level(), HealthLevel::Healthy);
    assert_eq!(status.error_class(), None);
    for c in status.checks() {
        assert_eq!(c.outcome, CheckOutcome::Ok, "{}: {}", c.name, c.detail);
    }
    assert_eq!(status.to_json()["health_score"], status.health_score());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_failing_stream_reaches_the_mirror_by_event_and_drops_the_score() {
    let (sim, device, conn) = start(SimConfig::fast()).await;
    conn.start_streaming().await.unwrap();
    let t0 = Instant::now();
    while conn.stream_state().await.unwrap() != StreamState::Streaming {
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "stream did not start"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let mirror = DeviceStateMirror::for_device(
        device.clone(),
        mirror_config(),
        Arc::new(NoopHealthObserver),
    )
    .unwrap();
    let mut rx = mirror.subscribe();
    let live = timeout(Duration::from_secs(1), rx.wait_for(DeviceState::is_live))
        .await
        .unwrap()
        .unwrap()
        .clone();
    assert_eq!(live.stream_state, Reading::Known(StreamState::Streaming));

    let checker = ConnectionHealthChecker::new(FixedThermal(30.0));
    checker.attach_mirror(device.name(), mirror.subscribe());
    let gets = sim.request_counts().get;
    let healthy = checker
        .perform_health_check(device.name(), conn.id(), conn.clone())
        .await;
    assert_eq!(
        sim.request_counts().get - gets,
        1,
        "one request once the mirror is live"
    );
    assert!(healthy.is_healthy(), "{}", healthy.to_json());

    let gets = sim.request_counts().get;
    let failed_at = Instant::now();
    assert!(sim.fail_stream_now());
    timeout(
        Duration::from_millis(500),
        rx.wait_for(|s| s.stream_state == Reading::Known(StreamState::FailingInStream)),
    )
    .await
    .expect("the mirror did not see the failure within 500 ms")
    .unwrap();
    assert!(failed_at.elapsed() < Duration::from_millis(500));
    assert_eq!(sim.request_counts().get, gets, "seen without a poll");

    let status = checker
        .perform_health_check(device.name(), conn.id(), conn.clone())
        .await;
    assert_eq!(
        outcome(&status, CheckKind::StreamingState),
        CheckOutcome::Failed
    );
    assert!(status.health_score() < 70.0, "{}", status.to_json());
    mirror.stop().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_hot_connection_drops_thermal_status() {
    let (sim, device, conn) = start(SimConfig::fast()).await;
    let cool = ConnectionHealthChecker::new(FixedThermal(30.0))
        .perform_health_check(device.name(), conn.id(), conn.clone())
        .await;
    let hot = ConnectionHealthChecker::new(FixedThermal(95.0))
        .perform_health_check(device.name(), conn.id(), conn.clone())
        .await;
    assert_eq!(outcome(&cool, CheckKind::ThermalStatus), CheckOutcome::Ok);
    assert_eq!(
        outcome(&hot, CheckKind::ThermalStatus),
        CheckOutcome::Failed
    );
    assert!(hot.health_score() < cool.health_score());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_device_without_temperature_is_judged_on_the_rest() {
    let unsupported: BTreeSet<String> = [names::TEMPERATURE.to_string()].into();
    let (sim, device, conn) = start(SimConfig {
        unsupported_params: unsupported,
        ..SimConfig::fast()
    })
    .await;
    let checker = ConnectionHealthChecker::new(NoThermalReadings);
    let status = checker
        .perform_health_check(device.name(), conn.id(), conn.clone())
        .await;
    let r = status.check(CheckKind::ResourceUsage).unwrap();
    assert_eq!(r.outcome, CheckOutcome::Ok, "{}", r.detail);
    assert!(
        r.detail.contains("not supported: temperature"),
        "{}",
        r.detail
    );
    assert_eq!(
        outcome(&status, CheckKind::ThermalStatus),
        CheckOutcome::Unknown
    );
    assert!(status.is_healthy(), "{}", status.to_json());
    sim.shutdown().await;

    // A model lacking every resource parameter: the check is unknown, the score stands.
    let unsupported: BTreeSet<String> = [
        names::TEMPERATURE,
        names::MEDIA_AVAILABLE,
        names::SYSTEM_STATE,
        names::LINK_ERRORS,
    ]
    .map(str::to_string)
    .into();
    let (sim, device, conn) = start(SimConfig {
        unsupported_params: unsupported,
        ..SimConfig::fast()
    })
    .await;
    let status = checker
        .perform_health_check(device.name(), conn.id(), conn.clone())
        .await;
    assert_eq!(
        outcome(&status, CheckKind::BasicConnectivity),
        CheckOutcome::Ok
    );
    assert_eq!(
        outcome(&status, CheckKind::ResourceUsage),
        CheckOutcome::Unknown
    );
    assert_eq!(status.health_score(), 100.0, "{}", status.to_json());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_hung_device_fails_connectivity_within_the_deadline() {
    let (sim, device, conn) = start(SimConfig::fast()).await;
    let checker = ConnectionHealthChecker::builder(NoThermalReadings)
        .config(HealthConfig {
            deadline: Duration::from_millis(400),
            ..HealthConfig::default()
        })
        .build()
        .unwrap();
    sim.set_faults(Faults {
        hang: true,
        ..Faults::default()
    })
    .unwrap();
    let t0 = Instant::now();
    let status = checker
        .perform_health_check(device.name(), conn.id(), conn.clone())
        .await;
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(900),
        "{took:?}"
    );
    assert_eq!(status.health_score(), 0.0);
    assert_eq!(status.error_class(), Some(ErrorClass::Timeout));
    assert_eq!(
        outcome(&status, CheckKind::BasicConnectivity),
        CheckOutcome::Failed
    );
    sim.clear_faults();
    sim.shutdown().await;
}

#[tokio::test]
async fn an_expired_session_mid_check_is_recovered() {
    let sim = SimDevice::start(
        "127.0.0.1:0".parse().unwrap(),
        SimConfig::fast().with_password("hunter2"),
    )
    .await
    .unwrap();
    let device = Device::new(
        DeviceConfig::from_url("sim-auth", &sim.url())
            .unwrap()
            .with_password(Some(Password::new("hunter2"))),
    );
    let conn = HeloConnection::connect(&device).await.unwrap();
    let checker = ConnectionHealthChecker::new(NoThermalReadings);
    assert!(checker
        .perform_health_check(device.name(), conn.id(), conn.clone())
        .await
        .is_healthy());
    let logins = sim.request_counts().login;
    // Slow answers, so the sessions expire while the check's requests are under way.
    sim.update_faults(|f| f.latency_ms = 60).unwrap();
    let check = {
        let (checker, device, conn) = (checker.clone(), device.clone(), conn.clone());
        tokio::spawn(async move {
            checker
                .perform_health_check(device.name(), conn.id(), conn.clone())
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(90)).await;
    sim.expire_sessions_now();
    let status = check.await.unwrap();
    assert!(status.is_healthy(), "{}", status.to_json());
    assert!(status
        .checks()
        .iter()
        .all(|c| c.outcome != CheckOutcome::Failed));
    assert!(sim.request_counts().login > logins, "logged in again");
    sim.shutdown().await;
}

#[tokio::test]
async fn without_events_the_mirror_says_unsupported_and_checks_poll() {
    let (sim, device, conn) = start(SimConfig {
        events_supported: false,
        ..SimConfig::fast()
    })
    .await;
    let mirror = DeviceStateMirror::for_device(
        device.clone(),
        mirror_config(),
        Arc::new(NoopHealthObserver),
    )
    .unwrap();
    let mut rx = mirror.subscribe();
    let s = timeout(
        Duration::from_secs(1),
        rx.wait_for(|s| s.status == MirrorStatus::Unsupported),
    )
    .await
    .unwrap()
    .unwrap()
    .clone();
    assert_eq!(s.last_error, None);

    let checker = ConnectionHealthChecker::new(NoThermalReadings);
    checker.attach_mirror(device.name(), mirror.subscribe());
    let gets = sim.request_counts().get;
    let status = checker
        .perform_health_check(device.name(), conn.id(), conn.clone())
        .await;
    assert!(sim.request_counts().get - gets >= 5, "checks polled");
    assert_eq!(
        status.check(CheckKind::StreamingState).unwrap().source,
        conn_health::CheckSource::Device
    );
    assert!(
        status.is_healthy(),
        "no event API is not unhealthy: {}",
        status.to_json()
    );
    mirror.stop().await;
    sim.shutdown().await;
}
