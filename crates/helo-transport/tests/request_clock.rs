//! The connection's request deadline starts at the instant the layer outside called
//! the request (`RequestClock`), when the wire is free: the request reads no clock of
//! its own. Real time against helo-sim over loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use helo_sim::{Faults, SimConfig, SimDevice};
use helo_transport::{
    names, Device, DeviceConfig, HeloConnection, HeloError, HeloRequest, RequestClock, TimeoutPhase,
};
use tokio::time::Instant;
use tower::{Service, ServiceExt};

async fn slow_device() -> (SimDevice, HeloConnection) {
    let sim = SimDevice::start("127.0.0.1:0".parse().unwrap(), SimConfig::fast())
        .await
        .unwrap();
    let device = Device::new(
        DeviceConfig::from_url("enc-1", &sim.url())
            .unwrap()
            .with_request_timeout(Duration::from_millis(600))
            .unwrap(),
    );
    let conn = HeloConnection::connect(&device).await.unwrap();
    sim.set_faults(Faults {
        latency_ms: 400,
        ..Faults::default()
    })
    .unwrap();
    (sim, conn)
}

#[tokio::test]
async fn the_deadline_counts_from_the_callers_instant() {
    let (_sim, mut conn) = slow_device().await;
    let get = || HeloRequest::get(names::SYS_NAME);

    // Called now: 400 ms of latency fit in the 600 ms deadline.
    let now = Instant::now();
    conn.ready().await.unwrap();
    let fut = RequestClock::calling(now, || conn.call(get()));
    fut.await.unwrap();

    // Called "300 ms ago" by the layer outside: 300 ms are left, not enough.
    let earlier = Instant::now()
        .checked_sub(Duration::from_millis(300))
        .unwrap();
    conn.ready().await.unwrap();
    let fut = RequestClock::calling(earlier, || conn.call(get()));
    let started = Instant::now();
    let err = fut.await.unwrap_err();
    assert!(
        matches!(
            err,
            HeloError::Timeout {
                phase: TimeoutPhase::Response,
                ..
            }
        ),
        "{err}"
    );
    let took = started.elapsed();
    assert!(took < Duration::from_millis(390), "{took:?}");

    // Without a caller's instant the connection reads its own clock.
    tokio::time::sleep(Duration::from_millis(500)).await; // the late answer drains
    let fut = conn.call(get());
    fut.await.unwrap();
}
