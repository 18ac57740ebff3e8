use std::{sync::Arc, task::Poll, time::Duration};

use futures_util::FutureExt;
use helo_transport::{BoxError, ConnectionId, HeloError, TimeoutPhase};
use tower_test::{assert_request_eq, mock};

use super::Overloaded;
use crate::{
    config::{PoolConfig, ThermalConfig},
    pool::MockPoolControl,
    ConnectionThermalManager, EncoderId, NoopObserver,
};

fn manager(max_in_flight: usize, owns: bool) -> ConnectionThermalManager {
    let mut pool = MockPoolControl::new();
    pool.expect_owns().returning(move |_, _| owns);
    let pool_config = PoolConfig {
        max_in_flight_per_encoder: max_in_flight,
        ..PoolConfig::default()
    };
    let config = ThermalConfig {
        ramp_start: 100.0,
        ..ThermalConfig::default()
    };
    ConnectionThermalManager::with_pool(
        Arc::new(pool),
        &pool_config,
        config,
        Arc::new(NoopObserver),
    )
}

fn enc() -> EncoderId {
    EncoderId::from("enc-1")
}

fn conn(n: u64) -> ConnectionId {
    ConnectionId::from_raw(n)
}

type Spawned0 = mock::Spawn<super::Thermal<mock::Mock<&'static str, &'static str>>>;
type Handle0 = mock::Handle<&'static str, &'static str>;
type Spawned = (Spawned0, Handle0);

fn spawn(m: &ConnectionThermalManager, id: ConnectionId) -> Spawned {
    mock::spawn_layer(m.layer(&enc(), id))
}

fn overloaded(r: Option<Result<&'static str, BoxError>>) -> Overloaded {
    let err = r.expect("refused at once").expect_err("refused");
    assert!(err.is::<Overloaded>(), "{err}");
    err.downcast_ref::<Overloaded>()
        .cloned()
        .expect("Overloaded")
}

#[tokio::test(start_paused = true)]
async fn admits_up_to_the_allowed_load_then_sheds_at_once() {
    let m = manager(10, true);
    let (mut svc, mut handle) = spawn(&m, conn(1));
    let mut pending = Vec::new();
    for _ in 0..4 {
        assert!(svc.poll_ready().is_ready());
        pending.push(svc.call("get"));
    }
    assert!(svc.poll_ready().is_ready());
    let o = overloaded(svc.call("get").now_or_never());
    assert_eq!(o.conn(), conn(1));
    assert_eq!(o.in_flight(), 4);
    assert_eq!(o.allowed_load(), Some(100.0));
    assert!(!o.is_device_cap());
    assert_eq!(o.request(), "get");
    assert_eq!(
        o.to_string(),
        "enc-1: get: shed: connection 1 overloaded: 4 requests in flight, allowed load 100%"
    );

    // One answer frees one slot.
    assert_request_eq!(handle, "get").send_response("ok");
    assert_eq!(pending.remove(0).await.ok(), Some("ok"));
    assert!(svc.poll_ready().is_ready());
    let _fifth = svc.call("get");
    assert_eq!(m.snapshot(&enc())[0].in_flight, 4);
}

#[tokio::test(start_paused = true)]
async fn cancelled_requests_release_their_slot() {
    let m = manager(10, true);
    let (mut svc, _handle) = spawn(&m, conn(1));
    assert!(svc.poll_ready().is_ready());
    let fut = svc.call("get");
    assert_eq!(m.snapshot(&enc())[0].in_flight, 1);
    assert_eq!(m.encoder_load(&enc()), 10.0);
    drop(fut);
    let snap = &m.snapshot(&enc())[0];
    assert_eq!(snap.in_flight, 0);
    assert_eq!(snap.requests, 0, "a cancelled request is not an outcome");
    assert_eq!(m.encoder_load(&enc()), 0.0);
}

#[tokio::test(start_paused = true)]
async fn sheds_not_queues_when_the_connection_cannot_take_more() {
    let m = manager(10, true);
    let (mut svc, mut handle) = spawn(&m, conn(1));
    // The connection below is at capacity (its queue full): not ready.
    handle.allow(0);
    assert!(matches!(svc.poll_ready(), Poll::Ready(Ok(()))));
    let o = overloaded(svc.call("get eParamID_X").now_or_never());
    assert!(o.is_not_ready(), "{o}");
    assert_eq!(
        (o.device().as_str(), o.request()),
        ("enc-1", "get eParamID_X")
    );
    assert_eq!(m.snapshot(&enc())[0].in_flight, 0, "nothing admitted");
    // Once the connection has room again, work goes through.
    handle.allow(1);
    assert!(svc.poll_ready().is_ready());
    let fut = svc.call("get eParamID_X");
    assert_request_eq!(handle, "get eParamID_X").send_response("ok");
    assert_eq!(fut.await.ok(), Some("ok"));
    assert!(
        handle.poll_request().is_pending(),
        "the shed request never reached it"
    );
}

/// One request through `svc`, answered with `reply`.
async fn answer(
    svc: &mut Spawned0,
    handle: &mut Handle0,
    reply: Result<&'static str, HeloError>,
) -> Result<&'static str, BoxError> {
    assert!(svc.poll_ready().is_ready());
    let fut = svc.call("get eParamID_Temperature");
    let send = assert_request_eq!(handle, "get eParamID_Temperature");
    match reply {
        Ok(r) => send.send_response(r),
        Err(e) => send.send_error(e),
    }
    fut.await
}

#[tokio::test(start_paused = true)]
async fn answers_are_not_heat_but_timeouts_are() {
    let m = manager(10, true);
    let (mut svc, mut handle) = spawn(&m, conn(1));
    let unsupported = || HeloError::UnsupportedParam {
        device: enc(),
        request: "get eParamID_Temperature".into(),
        param: "eParamID_Temperature".into(),
    };
    // Four answers the device does not support, then four plain answers.
    for _ in 0..4 {
        let err = answer(&mut svc, &mut handle, Err(unsupported()))
            .await
            .unwrap_err();
        assert!(err
            .downcast_ref::<HeloError>()
            .is_some_and(HeloError::is_unsupported));
    }
    let after_unsupported = m.snapshot(&enc())[0].clone();
    for _ in 0..4 {
        answer(&mut svc, &mut handle, Ok("ok")).await.unwrap();
    }
    let after_answers = m.snapshot(&enc())[0].clone();
    // An unsupported parameter is an answer: it counts as a request (load on the
    // device) exactly like a plain answer, and as nothing more.
    assert_eq!(
        (after_unsupported.requests, after_unsupported.errors),
        (4, 0)
    );
    assert_eq!(after_unsupported.error_rate, 0.0);
    assert_eq!(after_unsupported.temperature, 0.4 * 4.0);
    assert_eq!((after_answers.requests, after_answers.errors), (8, 0));
    assert_eq!(
        after_answers.temperature,
        0.4 * 8.0,
        "same heat per request"
    );
    assert_eq!(after_answers.allowed_load, 100.0, "never cut");

    let timeout = HeloError::Timeout {
        device: enc(),
        request: "get eParamID_Temperature".into(),
        phase: TimeoutPhase::Response,
        after: Duration::from_secs(3),
    };
    let err = answer(&mut svc, &mut handle, Err(timeout))
        .await
        .unwrap_err();
    assert!(err
        .downcast_ref::<HeloError>()
        .is_some_and(HeloError::is_timeout));
    let after_timeout = m.snapshot(&enc())[0].clone();
    assert_eq!((after_timeout.requests, after_timeout.errors), (9, 1));
    // 0.4 × 9 + 0.3 × 100/9: the timeout raised the temperature beyond its request.
    let want = 0.4 * 9.0 + 0.3 * (100.0 / 9.0);
    assert!(
        (after_timeout.temperature - want).abs() < 1e-9,
        "{after_timeout:?}"
    );
    assert!(after_timeout.temperature > after_answers.temperature + 0.4);
    assert_eq!(after_timeout.allowed_load, 50.0, "and cut the allowed load");
}

#[tokio::test(start_paused = true)]
async fn errors_pass_through_and_only_device_trouble_cuts_the_load() {
    let m = manager(10, true);
    let (mut svc, mut handle) = spawn(&m, conn(1));

    assert!(svc.poll_ready().is_ready());
    let fut = svc.call("set");
    assert_request_eq!(handle, "set").send_error(HeloError::Rejected {
        device: enc(),
        request: "set eParamID_X".into(),
        message: "read only".into(),
    });
    let err = fut.await.expect_err("rejected");
    assert!(err
        .downcast_ref::<HeloError>()
        .is_some_and(HeloError::is_rejected));
    assert_eq!(
        m.allowed_load(&enc(), conn(1)),
        100.0,
        "the caller's mistake"
    );

    assert!(svc.poll_ready().is_ready());
    let fut = svc.call("get");
    assert_request_eq!(handle, "get").send_error(HeloError::Timeout {
        device: enc(),
        request: "get eParamID_X".into(),
        phase: TimeoutPhase::Response,
        after: Duration::from_secs(3),
    });
    assert!(fut.await.is_err());
    assert_eq!(m.allowed_load(&enc(), conn(1)), 50.0, "halved on a timeout");
    let snap = &m.snapshot(&enc())[0];
    assert_eq!(
        (snap.requests, snap.errors),
        (2, 1),
        "a rejection is an answer, not an error"
    );
}

#[tokio::test(start_paused = true)]
async fn the_encoder_cap_spans_its_connections() {
    let m = manager(4, true);
    let (mut a, _ha) = spawn(&m, conn(1));
    let (mut b, _hb) = spawn(&m, conn(2));
    let mut pending = Vec::new();
    for _ in 0..3 {
        assert!(a.poll_ready().is_ready());
        pending.push(a.call("get"));
    }
    assert!(b.poll_ready().is_ready());
    pending.push(b.call("get"));
    assert!(b.poll_ready().is_ready());
    let o = overloaded(b.call("get").now_or_never());
    assert!(o.is_device_cap(), "{o}");
    assert_eq!(m.encoder_load(&enc()), 100.0);
}

#[tokio::test(start_paused = true)]
async fn a_connection_the_pool_does_not_own_refuses_everything() {
    let m = manager(4, false);
    let (mut svc, _h) = spawn(&m, conn(9));
    assert!(svc.poll_ready().is_ready());
    let o = overloaded(svc.call("get").now_or_never());
    assert_eq!(o.allowed_load(), Some(0.0));
    assert!(m.snapshot(&enc()).is_empty(), "nothing stored for it");
}

#[tokio::test(start_paused = true)]
async fn wrapper_accessors() {
    let m = manager(4, true);
    let (inner, _h) = mock::pair::<&'static str, &'static str>();
    let mut svc = tower::Layer::layer(&m.layer(&enc(), conn(1)), inner);
    let _ = svc.get_ref();
    let _ = svc.get_mut();
    assert!(format!("{:?}", m.layer(&enc(), conn(1))).contains("enc-1"));
    let _inner: mock::Mock<_, _> = svc.into_inner();
}
