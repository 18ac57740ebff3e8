//! The pool and the device's login lockout, against the simulator over real loopback
//! sockets (real time, short durations).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{sync::Arc, time::Duration};

use conn_core::{EncoderPoolState, HeloConnector, NoopObserver, PoolConfig, WarmupManager};
use helo_sim::{RequestKind, SimConfig, SimDevice};
use helo_transport::{Device, DeviceConfig, Password};
use tokio::time::{sleep, Instant};

const MS: Duration = Duration::from_millis(1);

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(10 * MS).await;
    }
}

#[tokio::test]
async fn the_pool_waits_for_the_devices_lockout_and_an_operator_retry_ends_it() {
    let sim = SimDevice::start(
        "127.0.0.1:0".parse().unwrap(),
        SimConfig::fast().with_password("right"),
    )
    .await
    .unwrap();
    let device = Device::new(
        DeviceConfig::from_url("sim-1", &sim.url())
            .unwrap()
            .with_request_timeout(500 * MS)
            .unwrap()
            .with_password(Some(Password::new("wrong")))
            .with_login_lockout(Duration::from_millis(800)),
    );
    // The pool's own backoff after a refusal is far longer than the device's lockout:
    // the lockout, which every login source shares, is the one that counts.
    let pool = WarmupManager::new(
        HeloConnector,
        PoolConfig {
            auth_failed_backoff: Duration::from_secs(600),
            ..PoolConfig::default()
        },
        Arc::new(NoopObserver),
    );
    let enc = device.name().clone();
    pool.start_warmup(device.clone());
    until("auth_failed", || {
        pool.encoder_state(&enc) == Some(EncoderPoolState::AuthFailed)
    })
    .await;
    assert_eq!(sim.request_count(RequestKind::LoginRefused), 1);
    until("the retry after the lockout", || {
        sim.request_count(RequestKind::Login) == 2
    })
    .await;
    sleep(200 * MS).await;
    assert_eq!(sim.request_count(RequestKind::Login), 2, "locked again");

    // An operator fixed the password on the device and asks for a retry now.
    pool.retry_now(&enc);
    until("the operator's retry", || {
        sim.request_count(RequestKind::Login) == 3
    })
    .await;
    pool.stop_warmup(&enc).await;
    sim.shutdown().await;
}
