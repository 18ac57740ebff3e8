use std::{sync::Arc, time::Duration};

use futures_util::FutureExt;
use helo_transport::{
    BoxError, ConnectionId, Device, DeviceConfig, HeloError, HeloRequest, HeloResponse,
};
use tokio::time::{sleep, sleep_until, Instant};
use tower::{Layer, Service};
use tower_test::mock;

use super::*;
use crate::{
    error::CoreError,
    pool::MockPoolControl,
    reasons::{CoolingOutcome, RetireReason},
    testing::{Event, FakeConnector, FakeMode, RecordingObserver},
    thermal_layer::Overloaded,
    PoolConn,
};

const S: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

fn enc() -> EncoderId {
    EncoderId::from("enc-1")
}

fn pool_config() -> PoolConfig {
    PoolConfig {
        backoff_jitter: 0.0,
        lifetime_jitter: 0.0,
        refill_interval: Duration::from_millis(100),
        max_in_flight_per_encoder: 16,
        ..PoolConfig::default()
    }
}

fn thermal_config() -> ThermalConfig {
    ThermalConfig {
        ramp_start: 100.0,
        ..ThermalConfig::default()
    }
}

struct Rig {
    pool: WarmupManager<FakeConnector>,
    thermal: ConnectionThermalManager,
    connector: FakeConnector,
    obs: Arc<RecordingObserver>,
}

async fn rig(config: ThermalConfig) -> Rig {
    let connector = FakeConnector::new(FakeMode::Up);
    let obs = RecordingObserver::new();
    let pool = WarmupManager::new(connector.clone(), pool_config(), obs.clone());
    let thermal = ConnectionThermalManager::new(pool.clone(), config, obs.clone());
    pool.start_warmup(Device::new(
        DeviceConfig::from_url("enc-1", "http://127.0.0.1:9").unwrap(),
    ));
    sleep(S).await;
    assert_eq!(pool.warm_count(&enc()), 3);
    Rig {
        pool,
        thermal,
        connector,
        obs,
    }
}

fn mock_thermal(pool: MockPoolControl, obs: Arc<RecordingObserver>) -> ConnectionThermalManager {
    ConnectionThermalManager::with_pool(Arc::new(pool), &pool_config(), thermal_config(), obs)
}

fn steps(obs: &RecordingObserver, id: ConnectionId) -> Vec<(u32, f64)> {
    obs.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::CoolingStep {
                conn,
                step,
                allowed_load,
                ..
            } if conn == id => Some((step, allowed_load)),
            _ => None,
        })
        .collect()
}

type Svc = mock::Mock<HeloRequest, HeloResponse>;

fn service(
    t: &ConnectionThermalManager,
    id: ConnectionId,
) -> (crate::Thermal<Svc>, mock::Handle<HeloRequest, HeloResponse>) {
    let (inner, handle) = mock::pair();
    (t.layer(&enc(), id).layer(inner), handle)
}

/// Calls `svc` `n` times without completing anything; answers how many were admitted.
fn hold(
    svc: &mut crate::Thermal<Svc>,
    n: usize,
    held: &mut Vec<crate::ThermalResponseFuture<<Svc as Service<HeloRequest>>::Future>>,
) -> usize {
    let mut admitted = 0;
    for _ in 0..n {
        let waker = futures_util::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(svc.poll_ready(&mut cx).is_ready());
        let mut fut = svc.call(HeloRequest::get("eParamID_X"));
        match (&mut fut).now_or_never() {
            Some(Err(e)) if e.is::<Overloaded>() => {}
            Some(other) => panic!("unexpected {other:?}"),
            None => {
                admitted += 1;
                held.push(fut);
            }
        }
    }
    admitted
}

#[tokio::test(start_paused = true)]
async fn a_hot_connection_cools_step_by_step_and_is_replaced() {
    let r = rig(thermal_config()).await;
    let (t, e) = (&r.thermal, enc());
    let hot = r.pool.get_warm_connection(&e).expect("warm");
    let id = hot.id();
    let (mut svc, _handle) = service(t, id);
    let mut held = Vec::new();
    assert_eq!(hold(&mut svc, 3, &mut held), 3);
    // Three of four slots busy: load 75 % ≥ load_high.
    assert!(t.check_temperature(&e, id));
    assert_eq!(t.cooling_reason(&e, id), Some(CoolingReason::HighLoad));
    held.clear();

    let t0 = Instant::now();
    assert!(t.start_cooling(&e, id, "high_load".parse().unwrap()));
    assert!(
        !t.start_cooling(&e, id, CoolingReason::Manual),
        "idempotent"
    );
    assert!(t.is_cooling(&e, id));
    assert!(!t.check_temperature(&e, id), "already cooling");
    drop(hot); // a cooling connection does not go back to the warm set

    let expected = [80.0, 60.0, 40.0, 20.0];
    for (i, want) in expected.iter().enumerate() {
        let step = i as u32 + 1;
        sleep_until(t0 + 12 * S * step + MS).await;
        assert_eq!(t.allowed_load(&e, id), *want, "step {step}");
        // New work moves to cooler connections: the cooling one is never handed out.
        let out: Vec<_> = std::iter::from_fn(|| r.pool.get_warm_connection(&e)).collect();
        assert!(out.len() >= 2, "step {step}: {} warm", out.len());
        assert!(out.iter().all(|c| c.id() != id));
        drop(out);
        // And the connection itself takes no more than its allowed load.
        let admitted = hold(&mut svc, 4, &mut held);
        assert_eq!(admitted, (want / 25.0).floor() as usize, "step {step}");
        held.clear();
    }
    sleep_until(t0 + 60 * S + MS).await;
    assert_eq!(
        steps(&r.obs, id),
        vec![(1, 80.0), (2, 60.0), (3, 40.0), (4, 20.0), (5, 0.0)]
    );
    // Retired, forgotten, closed, and replaced.
    assert!(!t.is_cooling(&e, id));
    assert_eq!(t.allowed_load(&e, id), 0.0);
    assert_eq!(hold(&mut svc, 1, &mut held), 0);
    assert!(r.connector.find(id).is_some_and(|c| c.is_closed()));
    assert_eq!(
        r.obs.count(|ev| *ev
            == Event::ConnectionRetired {
                encoder: e.clone(),
                conn: id,
                reason: RetireReason::Cooled
            }),
        1
    );
    assert_eq!(
        r.obs.count(|ev| *ev
            == Event::ConnectionRemoved {
                encoder: e.clone(),
                conn: id
            }),
        1
    );
    assert_eq!(
        r.obs
            .matching(|ev| matches!(ev, Event::CoolingFinished { .. })),
        vec![Event::CoolingFinished {
            encoder: e.clone(),
            conn: id,
            took: 60 * S,
            outcome: CoolingOutcome::Completed
        }]
    );
    assert_eq!(
        r.obs.count(|ev| matches!(
            ev,
            Event::CoolingStarted {
                reason: CoolingReason::HighLoad,
                ..
            }
        )),
        1,
        "counted once, with its reason"
    );
    sleep(S).await;
    assert_eq!(r.pool.warm_count(&e), 3);
    assert!(t.snapshot(&e).iter().all(|s| s.conn != id));
}

#[tokio::test(start_paused = true)]
async fn cooling_an_idle_warm_connection_takes_it_out_of_rotation() {
    let r = rig(thermal_config()).await;
    let (t, e) = (&r.thermal, enc());
    let id = r.connector.made()[0].id();
    assert!(t.start_cooling(&e, id, CoolingReason::Preventive));
    assert_eq!(r.pool.pool_stats(&e).map(|s| s.cooling), Some(1));
    sleep(S).await;
    assert_eq!(
        r.pool.warm_count(&e),
        3,
        "replacement warmed while it cools"
    );
    let out: Vec<_> = std::iter::from_fn(|| r.pool.get_warm_connection(&e)).collect();
    assert!(out.iter().all(|c| c.id() != id));
}

#[tokio::test(start_paused = true)]
async fn an_encoders_only_connection_stays_in_rotation_while_it_cools() {
    let connector = FakeConnector::new(FakeMode::Up);
    let obs = RecordingObserver::new();
    let config = PoolConfig {
        min_warm: 1,
        max_connections: 1,
        ..pool_config()
    };
    let pool = WarmupManager::new(connector.clone(), config, obs.clone());
    let thermal = ConnectionThermalManager::new(pool.clone(), thermal_config(), obs.clone());
    pool.start_warmup(Device::new(
        DeviceConfig::from_url("enc-1", "http://127.0.0.1:9").unwrap(),
    ));
    sleep(S).await;
    let e = enc();
    let id = connector.made()[0].id();
    assert!(thermal.start_cooling(&e, id, CoolingReason::Preventive));
    sleep(S).await;
    // No room for a replacement: the one connection is still handed out (its load
    // held to the floor by the thermal layer), before and after a use.
    for _ in 0..2 {
        let c = pool
            .get_warm_connection(&e)
            .expect("still in rotation while cooling");
        assert_eq!(c.id(), id);
    }
    assert!(thermal.is_cooling(&e, id));
    sleep(61 * S).await;
    assert!(!thermal.is_cooling(&e, id));
    assert_eq!(pool.get_warm_connection(&e).map(|c| c.id()), Some(id));
    assert_eq!(connector.made().len(), 1, "never ejected, never replaced");
}

#[tokio::test(start_paused = true)]
async fn the_last_usable_connection_keeps_a_floor_and_ramps_back() {
    let obs = RecordingObserver::new();
    let mut pool = MockPoolControl::new();
    pool.expect_owns().returning(|_, _| true);
    pool.expect_usable_count().returning(|_| 0);
    pool.expect_begin_cooling()
        .times(1)
        .returning(|_, _| Ok(()));
    pool.expect_end_cooling().times(1).returning(|_, _| Ok(()));
    pool.expect_retire().never();
    pool.expect_force_reset().never();
    let t = mock_thermal(pool, obs.clone());
    let (e, id) = (enc(), ConnectionId::from_raw(7));
    assert!(t.start_cooling(&e, id, CoolingReason::Manual));
    sleep(61 * S).await;
    assert_eq!(
        steps(&obs, id),
        vec![(1, 80.0), (2, 60.0), (3, 40.0), (4, 25.0), (5, 25.0)],
        "degrade, never eject"
    );
    assert!(!t.is_cooling(&e, id));
    // Back in service from ramp_start (100 % in this config; see
    // a_fresh_connection_ramps_up_after_cooldown for the slow start).
    assert_eq!(t.allowed_load(&e, id), 100.0);
    let snap = t.snapshot(&e);
    assert_eq!(snap.len(), 1);
    assert_eq!(snap[0].requests, 0, "stats reset");
    assert!(matches!(
        obs.events().last(),
        Some(Event::CoolingFinished {
            outcome: CoolingOutcome::Completed,
            ..
        })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_fresh_connection_ramps_up_after_cooldown() {
    let obs = RecordingObserver::new();
    let mut pool = MockPoolControl::new();
    pool.expect_owns().returning(|_, _| true);
    pool.expect_usable_count().returning(|_| 0);
    pool.expect_begin_cooling().returning(|_, _| Ok(()));
    pool.expect_end_cooling().returning(|_, _| Ok(()));
    let cfg = ThermalConfig {
        ramp_start: 50.0,
        min_allowed_load: 25.0,
        ramp_up: 30 * S,
        ..ThermalConfig::default()
    };
    let t = ConnectionThermalManager::with_pool(Arc::new(pool), &pool_config(), cfg, obs);
    let (e, id) = (enc(), ConnectionId::from_raw(8));
    let check = |at: &str, want: f64| {
        let got = t.allowed_load(&e, id);
        assert!((got - want).abs() < 1e-6, "{at}: got {got}, want {want}");
    };
    check("fresh", 50.0);
    sleep(10 * S).await;
    check("10 s", 75.0);
    sleep(10 * S).await;
    check("20 s", 100.0);
    assert!(t.start_cooling(&e, id, CoolingReason::Manual));
    sleep(60 * S + MS).await;
    check("after cooldown", 50.0 + 2.5 * 0.001);
    sleep(20 * S).await;
    check("ramped back", 100.0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_cooling_force_resets_the_connection() {
    let obs = RecordingObserver::new();
    let mut pool = MockPoolControl::new();
    pool.expect_owns().returning(|_, _| true);
    pool.expect_usable_count().returning(|_| 2);
    pool.expect_begin_cooling().returning(|_, _| Ok(()));
    pool.expect_retire().times(1).returning(|e, c, _| {
        Err(CoreError::UnknownConnection {
            encoder: e.clone(),
            conn: c,
        })
    });
    pool.expect_force_reset().times(1).return_const(());
    let t = mock_thermal(pool, obs.clone());
    let (e, id) = (enc(), ConnectionId::from_raw(9));
    assert!(t.start_cooling(&e, id, CoolingReason::ErrorRate));
    sleep(61 * S).await;
    assert_eq!(
        obs.matching(|ev| matches!(ev, Event::CoolingFinished { .. })),
        vec![Event::CoolingFinished {
            encoder: e.clone(),
            conn: id,
            took: 60 * S,
            outcome: CoolingOutcome::Failed
        }]
    );
    assert_eq!(
        obs.count(|ev| matches!(ev, Event::ConnectionRemoved { .. })),
        1
    );
    assert!(!t.is_cooling(&e, id));
}

#[tokio::test(start_paused = true)]
async fn a_cooling_the_pool_refuses_fails_at_once() {
    let obs = RecordingObserver::new();
    let mut pool = MockPoolControl::new();
    pool.expect_owns().returning(|_, _| true);
    pool.expect_begin_cooling().returning(|e, c| {
        Err(CoreError::UnknownConnection {
            encoder: e.clone(),
            conn: c,
        })
    });
    pool.expect_force_reset().times(1).return_const(());
    let t = mock_thermal(pool, obs.clone());
    let (e, id) = (enc(), ConnectionId::from_raw(10));
    assert!(t.start_cooling(&e, id, CoolingReason::Manual));
    assert!(matches!(
        obs.events().last(),
        Some(Event::CoolingFinished {
            outcome: CoolingOutcome::Failed,
            ..
        })
    ));
}

#[tokio::test(start_paused = true)]
async fn unknown_connections_are_not_cooled() {
    let obs = RecordingObserver::new();
    let mut pool = MockPoolControl::new();
    pool.expect_owns().returning(|_, _| false);
    pool.expect_begin_cooling().never();
    let t = mock_thermal(pool, obs.clone());
    let id = ConnectionId::from_raw(11);
    assert!(!t.start_cooling(&enc(), id, CoolingReason::Manual));
    assert!(!t.check_temperature(&enc(), id));
    assert_eq!(t.temperature(&enc(), id), None);
    assert!(obs.events().is_empty());
}

#[tokio::test(start_paused = true)]
async fn check_temperature_reports_temperature_and_load() {
    let obs = RecordingObserver::new();
    let mut pool = MockPoolControl::new();
    pool.expect_owns().returning(|_, _| true);
    let pc = PoolConfig {
        max_in_flight_per_encoder: 4,
        ..pool_config()
    };
    let t = ConnectionThermalManager::with_pool(Arc::new(pool), &pc, thermal_config(), obs.clone());
    let id = ConnectionId::from_raw(12);
    let (mut svc, mut handle) = service(&t, id);
    let mut held = Vec::new();
    assert_eq!(hold(&mut svc, 2, &mut held), 2);
    assert!(!t.check_temperature(&enc(), id), "50 % load is fine");
    assert_eq!(
        obs.events(),
        vec![
            Event::Temperature {
                encoder: enc(),
                conn: id,
                value: 15.0
            },
            Event::Load {
                encoder: enc(),
                percent: 50.0
            },
        ]
    );
    // Ten errors in ten requests: 0.4 × 10 + 0.3 × 100 = 34, but 100 % errors.
    held.clear();
    for _ in 0..2 {
        let _cancelled = handle.next_request().await;
    }
    for _ in 0..10 {
        let fut = {
            let mut cx = std::task::Context::from_waker(futures_util::task::noop_waker_ref());
            assert!(svc.poll_ready(&mut cx).is_ready());
            svc.call(HeloRequest::get("eParamID_X"))
        };
        let (_, send) = handle.next_request().await.expect("request");
        // A malformed answer: an error (heat), though not a sign of overload.
        send.send_error(HeloError::Protocol {
            device: enc(),
            request: "get eParamID_X".into(),
            detail: "not json".into(),
        });
        let _: Result<HeloResponse, BoxError> = fut.await;
    }
    assert_eq!(t.temperature(&enc(), id), Some(34.0));
    assert_eq!(t.cooling_reason(&enc(), id), Some(CoolingReason::ErrorRate));
    let snap = &t.snapshot(&enc())[0];
    assert_eq!(
        (snap.requests, snap.errors, snap.error_rate),
        (10, 10, 100.0)
    );
    assert!((snap.request_rate - 10.0 / 60.0).abs() < 1e-9);
    assert_eq!(snap.rate_factor, 10.0);
    assert!(!snap.is_cooling());
}

#[tokio::test(start_paused = true)]
async fn a_hot_connection_returned_to_the_pool_starts_cooling() {
    let r = rig(ThermalConfig {
        burst_limit: 10,
        temperature_high: 40.0,
        ..thermal_config()
    })
    .await;
    let (t, e) = (&r.thermal, enc());
    let hot = r.pool.get_warm_connection(&e).expect("warm");
    let id = hot.id();
    let (mut svc, mut handle) = service(t, id);
    for _ in 0..10 {
        let fut = {
            let mut cx = std::task::Context::from_waker(futures_util::task::noop_waker_ref());
            assert!(svc.poll_ready(&mut cx).is_ready());
            svc.call(HeloRequest::get("eParamID_X"))
        };
        let (_, send) = handle.next_request().await.expect("request");
        send.send_response(HeloResponse::LoggedIn);
        assert!(fut.await.is_ok());
    }
    assert_eq!(t.temperature(&e, id), Some(40.0));
    drop(hot);
    assert!(t.is_cooling(&e, id));
    assert_eq!(
        r.obs.count(|ev| matches!(
            ev,
            Event::CoolingStarted {
                reason: CoolingReason::HighTemperature,
                ..
            }
        )),
        1
    );
    let out: Vec<_> = std::iter::from_fn(|| r.pool.get_warm_connection(&e)).collect();
    assert!(
        out.iter().all(|c| c.id() != id),
        "hot: not back in the warm set"
    );
}

#[tokio::test(start_paused = true)]
async fn device_heat_is_reported_once_per_episode_with_an_opt_in_switch() {
    let obs = RecordingObserver::new();
    let mut pool = MockPoolControl::new();
    pool.expect_owns().returning(|_, _| true);
    let cfg = ThermalConfig {
        device_temperature_limit: 70.0,
        device_temperature_hysteresis: 5.0,
        overheat_profile: Some(2),
        ..ThermalConfig::default()
    };
    let t = ConnectionThermalManager::with_pool(Arc::new(pool), &pool_config(), cfg, obs.clone());
    let e = enc();
    let check = |celsius: f64, over: bool, switch: Option<u8>| {
        let heat = t.record_device_temperature(&e, celsius);
        assert_eq!(heat.celsius(), celsius);
        assert_eq!(
            (heat.is_overheated(), heat.switch_profile()),
            (over, switch),
            "{celsius} °C"
        );
        heat
    };
    check(65.0, false, None);
    let first = check(72.0, true, Some(2));
    check(75.0, true, None);
    check(68.0, false, None); // cooler, but still within the hysteresis band
    check(80.0, true, None); // same episode
    check(64.0, false, None); // episode over
    check(71.0, true, Some(2));
    assert_eq!(
        obs.count(|ev| matches!(ev, Event::DeviceTemperature { .. })),
        7
    );
    assert_eq!(
        obs.matching(|ev| matches!(ev, Event::DeviceOverheated { .. })),
        vec![
            Event::DeviceOverheated {
                encoder: e.clone(),
                celsius: 72.0
            },
            Event::DeviceOverheated {
                encoder: e.clone(),
                celsius: 71.0
            },
        ]
    );

    // The caller applies the switch through any client.
    let (client, mut handle) = mock::pair::<HeloRequest, HeloResponse>();
    let applied = tokio::spawn(async move { first.apply(&client).await });
    let (req, send) = handle.next_request().await.expect("set");
    assert_eq!(req, HeloRequest::set("eParamID_StreamingProfileSel", "2"));
    send.send_response(HeloResponse::Set(None));
    assert_eq!(applied.await.ok().and_then(Result::ok), Some(Some(2)));
}

#[tokio::test(start_paused = true)]
async fn without_an_overheat_profile_the_device_is_only_reported() {
    let mut pool = MockPoolControl::new();
    pool.expect_owns().returning(|_, _| true);
    let t = mock_thermal(pool, RecordingObserver::new());
    let heat = t.record_device_temperature(&enc(), 90.0);
    assert!(heat.is_overheated());
    assert_eq!(heat.switch_profile(), None);
    let (client, _handle) = mock::pair::<HeloRequest, HeloResponse>();
    assert_eq!(heat.apply(&client).await.ok(), Some(None));
}

#[tokio::test(start_paused = true)]
async fn stopping_an_encoder_forgets_its_connections() {
    let r = rig(thermal_config()).await;
    let e = enc();
    for c in r.connector.made() {
        assert!(r.thermal.temperature(&e, c.id()).is_some());
    }
    assert_eq!(r.thermal.snapshot(&e).len(), 3);
    r.pool.stop_warmup(&e).await;
    assert!(r.thermal.snapshot(&e).is_empty());
    assert_eq!(
        r.obs
            .count(|ev| matches!(ev, Event::ConnectionRemoved { .. })),
        3
    );
}

#[tokio::test(start_paused = true)]
async fn the_manager_publishes_cuts_and_climbs_on_its_own_tick() {
    let mut pool = MockPoolControl::new();
    pool.expect_owns().returning(|_, _| true);
    let cfg = ThermalConfig {
        ramp_start: 50.0,
        min_allowed_load: 25.0,
        ramp_up: 30 * S,
        update_interval: 500 * MS,
        ..ThermalConfig::default()
    };
    let t = ConnectionThermalManager::with_pool(
        Arc::new(pool),
        &pool_config(),
        cfg,
        Arc::new(crate::NoopObserver),
    );
    assert!(format!("{t:?}").contains("ConnectionThermalManager"));
    let id = ConnectionId::from_raw(13);
    let (mut svc, mut handle) = service(&t, id);
    // 50 % of capacity 4: two at once; nobody reads the manager from here on, so
    // what the layer admits is what the tick published.
    let mut held = Vec::new();
    assert_eq!(hold(&mut svc, 3, &mut held), 2);
    held.clear();
    for _ in 0..2 {
        let _cancelled = handle.next_request().await;
    }
    // A timeout: the layer only counts it; the next tick halves the allowed load.
    let fut = {
        let mut cx = std::task::Context::from_waker(futures_util::task::noop_waker_ref());
        assert!(svc.poll_ready(&mut cx).is_ready());
        svc.call(HeloRequest::get("eParamID_X"))
    };
    let (_, send) = handle.next_request().await.expect("request");
    send.send_error(HeloError::Timeout {
        device: enc(),
        request: "get eParamID_X".into(),
        phase: helo_transport::TimeoutPhase::Response,
        after: 3 * S,
    });
    assert!(fut.await.is_err());
    sleep(600 * MS).await;
    assert_eq!(
        hold(&mut svc, 3, &mut held),
        1,
        "cut to 25 %: one at a time"
    );
    held.clear();
    for _ in 0..1 {
        let _cancelled = handle.next_request().await;
    }
    // 2.5 points a second: back to 50 % (two at once) ten seconds later, published
    // by the tick alone.
    sleep(10 * S + MS).await;
    assert_eq!(hold(&mut svc, 3, &mut held), 2, "climbed back");
}

#[tokio::test(start_paused = true)]
async fn review_cools_for_a_specific_reason_or_preventively_and_only_once() {
    let r = rig(thermal_config()).await;
    let (t, e) = (&r.thermal, enc());
    let made = r.connector.made();
    let (calm, sick) = (made[0].id(), made[1].id());
    // A connection the check found healthy and whose figures are calm: left alone.
    assert_eq!(t.review(&e, calm, false), None);
    assert!(!t.is_cooling(&e, calm));
    // Unhealthy by the check: cooled preventively, once.
    assert_eq!(t.review(&e, sick, true), Some(CoolingReason::Preventive));
    assert!(t.is_cooling(&e, sick));
    assert_eq!(t.review(&e, sick, true), None, "already cooling");
    // A connection the pool does not own is never cooled.
    assert_eq!(t.review(&e, ConnectionId::from_raw(999_999), true), None);
}
