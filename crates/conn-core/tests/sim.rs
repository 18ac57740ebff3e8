//! The pool and the thermal model against the simulated device, over real loopback
//! sockets. Real time with short durations: the paused clock would fire timeouts
//! while tasks wait on sockets.

// Test set-up helpers may fail loudly.
#![allow(clippy::expect_used)]

use std::{sync::Arc, time::Duration};

use conn_core::{
    ConnectionThermalManager, CoolingReason, EncoderId, EncoderPoolState, HeloConnector,
    NoopObserver, PoolConfig, ThermalConfig, WarmupManager,
};
use helo_sim::{SimConfig, SimDevice};
use helo_transport::{names, ConnectionId, Device, DeviceConfig, HeloClientExt, Password};
use tokio::time::{sleep, Instant};
use tower::Layer;

const MS: Duration = Duration::from_millis(1);

fn pool_config() -> PoolConfig {
    PoolConfig {
        min_warm: 2,
        max_connections: 4,
        refill_interval: 10 * MS,
        keepalive_interval: 100 * MS,
        backoff_base: 50 * MS,
        backoff_max: 200 * MS,
        warmup_timeout: 1_000 * MS,
        ping_timeout: 500 * MS,
        ..PoolConfig::default()
    }
}

fn device(sim: &SimDevice, password: &str) -> Device {
    Device::new(
        DeviceConfig::from_url("sim-1", &sim.url())
            .and_then(|c| c.with_connect_timeout(500 * MS))
            .and_then(|c| c.with_request_timeout(500 * MS))
            .expect("config")
            .with_password(Some(Password::new(password))),
    )
}

async fn sim() -> SimDevice {
    SimDevice::start(
        "127.0.0.1:0".parse().expect("addr"),
        SimConfig::fast().with_password("secret"),
    )
    .await
    .expect("sim")
}

/// Ids of every warm connection (all checked out at once, then returned).
fn warm_ids(pool: &WarmupManager, enc: &EncoderId) -> Vec<ConnectionId> {
    let out: Vec<_> = std::iter::from_fn(|| pool.get_warm_connection(enc)).collect();
    out.iter().map(|c| c.id()).collect()
}

/// Waits (real time) until `f` holds, for at most two seconds.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(10 * MS).await;
    }
}

#[tokio::test]
async fn warms_logged_in_connections_and_cools_one_through_the_layer() {
    let sim = sim().await;
    let pool = WarmupManager::new(HeloConnector, pool_config(), Arc::new(NoopObserver));
    let thermal = ConnectionThermalManager::new(
        pool.clone(),
        ThermalConfig {
            cooling_period: 300 * MS,
            gradual_cooldown: 3,
            ramp_start: 100.0,
            ..ThermalConfig::default()
        },
        Arc::new(NoopObserver),
    );
    let enc = EncoderId::from("sim-1");
    pool.start_warmup(device(&sim, "secret"));
    until("two warm connections", || pool.warm_count(&enc) == 2).await;
    assert_eq!(pool.encoder_state(&enc), Some(EncoderPoolState::Ready));
    assert_eq!(
        sim.request_counts().login,
        1,
        "one login serves the device's connections"
    );

    let conn = pool.get_warm_connection(&enc).expect("warm");
    let id = conn.id();
    let svc = thermal.layer(&enc, id).layer((*conn).clone());
    assert_eq!(
        svc.get_param(names::SYS_NAME)
            .await
            .expect("sys name")
            .value,
        "HELO"
    );
    assert_eq!(
        thermal
            .snapshot(&enc)
            .iter()
            .find(|s| s.conn == id)
            .map(|s| s.requests),
        Some(1)
    );

    assert!(thermal.start_cooling(&enc, id, CoolingReason::Manual));
    drop(conn);
    until("the cooled connection to be retired", || {
        !thermal.is_cooling(&enc, id)
    })
    .await;
    assert!(svc.get_ref().is_closed());
    assert!(
        svc.get_param(names::SYS_NAME).await.is_err(),
        "a retired connection takes no work"
    );
    until("a fresh replacement", || pool.warm_count(&enc) == 2).await;
    let fresh = pool.get_warm_connection(&enc).expect("warm");
    assert_ne!(fresh.id(), id);
    drop(fresh);
    pool.stop_warmup(&enc).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_wrong_password_fails_fast_without_hammering_the_login_page() {
    let sim = sim().await;
    let pool = WarmupManager::new(HeloConnector, pool_config(), Arc::new(NoopObserver));
    let enc = EncoderId::from("sim-1");
    pool.start_warmup(device(&sim, "wrong"));
    until("auth_failed", || {
        pool.encoder_state(&enc) == Some(EncoderPoolState::AuthFailed)
    })
    .await;
    sleep(300 * MS).await;
    assert_eq!(sim.request_counts().login, 1);
    assert!(pool.get_warm_connection(&enc).is_none());
    pool.stop_warmup(&enc).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_device_is_backed_off_and_the_pool_recovers() {
    let sim = sim().await;
    let pool = WarmupManager::new(HeloConnector, pool_config(), Arc::new(NoopObserver));
    let enc = EncoderId::from("sim-1");
    pool.start_warmup(device(&sim, "secret"));
    until("two warm connections", || pool.warm_count(&enc) == 2).await;
    let before = warm_ids(&pool, &enc);

    sim.go_unreachable(400 * MS);
    until("unreachable", || {
        pool.encoder_state(&enc).is_some_and(|s| s.is_unreachable())
    })
    .await;
    until("ready again", || pool.warm_count(&enc) >= 2).await;
    assert_eq!(pool.encoder_state(&enc), Some(EncoderPoolState::Ready));
    let after = warm_ids(&pool, &enc);
    assert!(
        after.iter().all(|id| !before.contains(id)),
        "dead ones were replaced"
    );
    pool.stop_warmup(&enc).await;
    sim.shutdown().await;
}
