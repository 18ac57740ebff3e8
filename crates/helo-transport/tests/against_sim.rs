//! helo-transport against helo-sim over real loopback sockets: every request kind,
//! auth on and off, session expiry, event connections, and every fault mapped to its
//! error variant. Real time with short timeouts: the paused clock would auto-advance
//! while we wait on sockets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use helo_sim::{Faults, SimConfig, SimDevice};
use helo_transport::{
    names, AuthFailure, Device, DeviceConfig, ErrorClass, HeloClientExt, HeloConnection, HeloError,
    HeloRequest, HeloResponse, Password, RecordState, StreamState, TimeoutPhase,
};

const TIMEOUT: Duration = Duration::from_millis(400);

async fn sim(config: SimConfig) -> SimDevice {
    SimDevice::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

fn device_for(sim: &SimDevice, password: Option<&str>) -> Device {
    Device::new(
        DeviceConfig::from_url("enc-1", &sim.url())
            .unwrap()
            .with_request_timeout(TIMEOUT)
            .unwrap()
            .with_connect_timeout(TIMEOUT)
            .unwrap()
            .with_event_wait_timeout(Duration::from_secs(3))
            .unwrap()
            .with_password(password.map(Password::new)),
    )
}

async fn connect(sim: &SimDevice, password: Option<&str>) -> HeloConnection {
    HeloConnection::connect(&device_for(sim, password))
        .await
        .unwrap()
}

/// Polls `f` until it is true, for at most two seconds.
async fn eventually(mut f: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition not reached in 2 s");
}

#[tokio::test]
async fn every_request_kind_works_without_auth() {
    let sim = sim(SimConfig::fast()).await;
    let conn = connect(&sim, None).await;

    let p = conn.get_param(names::STREAM_STATE).await.unwrap();
    assert_eq!(p.name, names::STREAM_STATE);
    assert_eq!(p.as_i64().unwrap(), 1);
    assert_eq!(conn.stream_state().await.unwrap(), StreamState::Idle);
    assert_eq!(conn.record_state().await.unwrap(), RecordState::Idle);

    // A value with every character the protocol says to encode round-trips.
    let name = "Sunday service/ä?&%:\\+";
    let echo = conn.set_param(names::FILENAME_PREFIX, name).await.unwrap();
    assert_eq!(echo.map(|p| p.value).as_deref(), Some(name));
    assert_eq!(sim.param(names::FILENAME_PREFIX).as_deref(), Some(name));

    let d = conn.descriptor(names::STREAM_STATE).await.unwrap();
    assert!(d.is_readonly());
    assert_eq!(d.enum_values.len(), 6);

    let t = conn.temperature().await.unwrap();
    assert!((0.0..150.0).contains(&t), "{t}");
    assert_eq!(conn.media_available().await.unwrap(), 100);

    let sub = conn.connect_events().await.unwrap();
    assert!(!sub.connection_id.is_empty());
    let legacy = conn
        .send(HeloRequest::Connect { legacy: true })
        .await
        .unwrap();
    assert!(matches!(legacy, HeloResponse::Connected(_)));
    assert_eq!(conn.stats().errors, 0);
}

#[tokio::test]
async fn replicator_commands_drive_the_state_machine() {
    let sim = sim(SimConfig::fast()).await;
    let conn = connect(&sim, None).await;
    conn.start_streaming().await.unwrap();
    eventually(async || conn.stream_state().await.unwrap() == StreamState::Streaming).await;
    sim.fail_stream_now();
    eventually(async || conn.stream_state().await.unwrap() == StreamState::FailingInStream).await;
    conn.stop_streaming().await.unwrap();
    conn.start_streaming().await.unwrap();
    eventually(async || conn.stream_state().await.unwrap() == StreamState::Streaming).await;
    conn.start_recording().await.unwrap();
    eventually(async || conn.record_state().await.unwrap() == RecordState::Recording).await;
    conn.stop_recording().await.unwrap();
    eventually(async || conn.record_state().await.unwrap() == RecordState::Idle).await;
}

#[tokio::test]
async fn device_answers_map_to_their_variants() {
    let sim = sim(SimConfig::fast()).await;
    let conn = connect(&sim, None).await;
    let err = conn.get_param("eParamID_NoSuchThing").await.unwrap_err();
    assert!(err.is_unsupported(), "{err}");
    assert_eq!(err.device().as_str(), "enc-1");
    assert!(
        err.to_string().contains("get eParamID_NoSuchThing"),
        "{err}"
    );
    let err = conn.set_param(names::STREAM_STATE, 2).await.unwrap_err();
    assert!(err.is_rejected(), "{err}");
    let err = conn
        .set_param(names::STREAMING_PROFILE, 42)
        .await
        .unwrap_err();
    assert!(err.is_rejected(), "{err}");
    // An answered error leaves the keep-alive connection usable.
    assert!(!conn.is_closed());
    assert_eq!(conn.stream_state().await.unwrap(), StreamState::Idle);
}

#[tokio::test]
async fn auth_logs_in_on_connect_and_sends_the_cookie() {
    let sim = sim(SimConfig::fast().with_password("pw")).await;
    let conn = connect(&sim, Some("pw")).await;
    assert_eq!(sim.request_counts().login, 1);
    assert_eq!(conn.stream_state().await.unwrap(), StreamState::Idle);
    // A second connection to the same device reuses the session.
    let dev = conn.device().clone();
    let second = HeloConnection::connect(&dev).await.unwrap();
    second.get_param(names::SYS_NAME).await.unwrap();
    assert_eq!(sim.request_counts().login, 1);
}

#[tokio::test]
async fn a_wrong_password_is_its_own_error_and_is_tried_once() {
    let sim = sim(SimConfig::fast().with_password("right")).await;
    let err = HeloConnection::connect(&device_for(&sim, Some("wrong")))
        .await
        .unwrap_err();
    assert!(err.is_wrong_password(), "{err}");
    assert!(err.to_string().contains("did not match"), "{err}");
    assert_eq!(sim.request_counts().login, 1);
}

#[tokio::test]
async fn no_password_on_a_locked_device_says_so() {
    let sim = sim(SimConfig::fast().with_password("pw")).await;
    let conn = connect(&sim, None).await;
    let err = conn.get_param(names::SYS_NAME).await.unwrap_err();
    assert!(
        matches!(
            err,
            HeloError::Auth {
                failure: AuthFailure::PasswordRequired,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn expired_sessions_relogin_once_for_all_connections() {
    let sim = sim(SimConfig::fast().with_password("pw")).await;
    let dev = device_for(&sim, Some("pw"));
    let a = HeloConnection::connect(&dev).await.unwrap();
    let b = HeloConnection::connect(&dev).await.unwrap();
    a.get_param(names::SYS_NAME).await.unwrap();
    sim.expire_sessions_now();
    a.get_param(names::SYS_NAME).await.unwrap();
    b.get_param(names::SYS_NAME).await.unwrap();
    assert_eq!(
        sim.request_counts().login,
        2,
        "one login at connect, one after expiry"
    );
    assert_eq!(a.stats().relogins, 1);
    assert_eq!(b.stats().relogins, 0, "b picked up the session a renewed");
}

#[tokio::test]
async fn events_arrive_quickly_and_expired_ids_fail() {
    let sim = sim(SimConfig {
        event_hold: Duration::from_millis(300),
        event_expiry: Duration::from_millis(500),
        ..SimConfig::fast()
    })
    .await;
    let conn = connect(&sim, None).await;
    let sub = conn.connect_events().await.unwrap();
    // Nothing changes: the device answers [] after its hold time.
    assert!(conn
        .wait_for_events(&sub.connection_id)
        .await
        .unwrap()
        .is_empty());

    let waiter = {
        let conn = conn.clone();
        let id = sub.connection_id.clone();
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            loop {
                let events = conn.wait_for_events(&id).await.unwrap();
                if let Some(e) = events.iter().find(|e| e.param_id == names::STREAM_STATE) {
                    return (e.int_value, started.elapsed());
                }
            }
        })
    };
    // The long poll holds this connection; change the state through another one.
    let other = connect(&sim, None).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    other.start_streaming().await.unwrap();
    let (value, _) = waiter.await.unwrap();
    assert!(matches!(value, Some(2) | Some(4)), "{value:?}");

    // Unused for longer than the expiry: waiting fails, and a new connect works.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let err = conn.wait_for_events(&sub.connection_id).await.unwrap_err();
    assert!(err.is_rejected(), "{err}");
    let again = conn.connect_events().await.unwrap();
    assert_ne!(again.connection_id, sub.connection_id);
}

async fn with_fault(faults: Faults) -> (SimDevice, HeloError) {
    let sim = sim(SimConfig::fast()).await;
    let conn = connect(&sim, None).await;
    sim.set_faults(faults).unwrap();
    let err = conn.get_param(names::SYS_NAME).await.unwrap_err();
    (sim, err)
}

#[tokio::test]
async fn every_fault_maps_to_its_variant() {
    let (_s, e) = with_fault(Faults {
        latency_ms: 1_000,
        ..Faults::default()
    })
    .await;
    assert!(
        matches!(
            e,
            HeloError::Timeout {
                phase: TimeoutPhase::Response,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.class(), ErrorClass::Timeout);

    let (_s, e) = with_fault(Faults {
        hang: true,
        ..Faults::default()
    })
    .await;
    assert!(e.is_timeout(), "{e}");

    let (_s, e) = with_fault(Faults {
        refuse: true,
        ..Faults::default()
    })
    .await;
    assert_eq!(e.class(), ErrorClass::Connection, "{e}");

    let (_s, e) = with_fault(Faults {
        reset: true,
        ..Faults::default()
    })
    .await;
    assert!(e.breaks_connection(), "{e}");

    let (_s, e) = with_fault(Faults {
        error_500: true,
        ..Faults::default()
    })
    .await;
    assert!(matches!(e, HeloError::Status { status: 500, .. }), "{e}");

    let (_s, e) = with_fault(Faults {
        unavailable_503: true,
        retry_after_s: 7,
        ..Faults::default()
    })
    .await;
    assert!(e.is_unavailable(), "{e}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));

    let (_s, e) = with_fault(Faults {
        malformed_json: true,
        ..Faults::default()
    })
    .await;
    assert!(matches!(e, HeloError::Protocol { .. }), "{e}");

    let (_s, e) = with_fault(Faults {
        truncated_json: true,
        ..Faults::default()
    })
    .await;
    assert!(e.is_protocol() || e.is_connect(), "{e}");
    assert!(e.breaks_connection(), "{e}");

    let (_s, e) = with_fault(Faults {
        oversized_body_bytes: 2 * 1024 * 1024,
        ..Faults::default()
    })
    .await;
    assert!(
        matches!(e, HeloError::BodyTooLarge { limit, .. } if limit == 1024 * 1024),
        "{e}"
    );
}

#[tokio::test]
async fn a_connection_whose_answer_never_comes_closes_and_says_why() {
    let sim = sim(SimConfig::fast()).await;
    let conn = connect(&sim, None).await;
    sim.set_faults(Faults {
        hang: true,
        ..Faults::default()
    })
    .unwrap();
    let first = conn.get_param(names::SYS_NAME);
    let queued = async {
        // Sent while the first is on the wire: it waits its turn.
        tokio::time::sleep(Duration::from_millis(50)).await;
        conn.get_param(names::STREAM_STATE).await
    };
    let (first, queued) = tokio::join!(first, queued);
    let first = first.unwrap_err();
    assert!(first.is_timeout(), "{first}");
    assert_eq!(first.request(), "get eParamID_SysName");
    // The late answer was waited for (one more request timeout) in the background;
    // none came, so the connection was closed and the queued request told why.
    let queued = queued.unwrap_err();
    assert!(queued.is_connect(), "{queued}");
    assert_eq!(queued.request(), "get eParamID_ReplicatorStreamState");
    let text = queued.to_string();
    assert!(
        text.contains("enc-1")
            && text.contains("get eParamID_SysName")
            && text.contains("no answer"),
        "{text}"
    );
    assert!(conn.is_closed());
    sim.clear_faults();
    let err = conn.get_param(names::SYS_NAME).await.unwrap_err();
    assert!(err.is_connect(), "{err}");
    // A fresh connection works again.
    connect(&sim, None)
        .await
        .get_param(names::SYS_NAME)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_late_answer_is_read_and_the_requests_behind_it_go_through() {
    let sim = sim(SimConfig::fast()).await;
    let conn = connect(&sim, None).await;
    // Slower than the 400 ms deadline, but within one more deadline.
    sim.set_faults(Faults {
        latency_ms: 600,
        ..Faults::default()
    })
    .unwrap();
    let first = conn.get_param(names::SYS_NAME);
    let queued = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Answered at once once it gets the wire (the sim takes faults per request).
        sim.clear_faults();
        conn.get_param(names::STREAM_STATE).await
    };
    let (first, queued) = tokio::join!(first, queued);
    let first = first.unwrap_err();
    assert!(
        matches!(
            &first,
            HeloError::Timeout {
                phase: TimeoutPhase::Response,
                ..
            }
        ),
        "{first}"
    );
    assert_eq!(
        first.to_string(),
        "enc-1: get eParamID_SysName: timed out during response after 400ms"
    );
    let state = queued.unwrap();
    assert_eq!(state.name, names::STREAM_STATE);
    assert!(!conn.is_closed(), "the late answer was read, not dropped");
    conn.get_param(names::SYS_NAME).await.unwrap();
    assert_eq!(conn.stats().errors, 1);
}

#[tokio::test]
async fn waiting_too_long_for_the_wire_is_its_own_error() {
    let sim = sim(SimConfig::fast()).await;
    let dev = Device::new(
        device_for(&sim, None)
            .config()
            .clone()
            .with_queue_timeout(Duration::from_millis(600))
            .unwrap(),
    );
    let conn = HeloConnection::connect(&dev).await.unwrap();
    sim.set_faults(Faults {
        latency_ms: 250,
        ..Faults::default()
    })
    .unwrap();
    // Turns start at 0, 250, 500 and 750 ms: the fourth waited past 600 ms.
    let params = [
        names::SYS_NAME,
        names::STREAM_STATE,
        names::RECORD_STATE,
        names::TEMPERATURE,
    ];
    let results = futures_util::future::join_all(params.iter().map(|p| conn.get_param(p))).await;
    for r in &results[..3] {
        assert!(r.is_ok(), "{r:?}");
    }
    let err = results[3].as_ref().unwrap_err();
    assert!(err.is_queue_timeout(), "{err}");
    assert_eq!(err.request(), "get eParamID_Temperature");
    assert_eq!(err.device().as_str(), "enc-1");
    assert!(!conn.is_closed(), "it was never sent");
    sim.clear_faults();
    conn.get_param(names::TEMPERATURE).await.unwrap();
}

#[tokio::test]
async fn a_full_queue_is_not_ready_until_a_place_frees() {
    use tower::{Service, ServiceExt};

    let sim = sim(SimConfig::fast()).await;
    let dev = Device::new(
        device_for(&sim, None)
            .config()
            .clone()
            .with_max_queued(2)
            .unwrap(),
    );
    let conn = HeloConnection::connect(&dev).await.unwrap();
    sim.set_faults(Faults {
        latency_ms: 200,
        ..Faults::default()
    })
    .unwrap();
    let mut a = conn.clone();
    let mut b = conn.clone();
    let fa = a
        .ready()
        .await
        .unwrap()
        .call(HeloRequest::get(names::SYS_NAME));
    let fb = b
        .ready()
        .await
        .unwrap()
        .call(HeloRequest::get(names::SYS_NAME));
    let mut c = conn.clone();
    assert!(
        tokio::time::timeout(Duration::from_millis(50), c.ready())
            .await
            .is_err(),
        "two of two places taken: not ready"
    );
    fa.await.unwrap();
    // One place is free again.
    c.ready().await.unwrap();
    let fc = c.call(HeloRequest::get(names::SYS_NAME));
    fb.await.unwrap();
    fc.await.unwrap();
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    let sim = sim(SimConfig::fast()).await;
    let dev = device_for(&sim, None);
    sim.shutdown().await;
    let err = HeloConnection::connect(&dev).await.unwrap_err();
    assert!(err.is_connect(), "{err}");
    assert_eq!(err.class(), ErrorClass::Connection);
    assert!(err.to_string().contains("enc-1"), "{err}");
}

#[tokio::test]
async fn a_rebooting_device_is_unreachable_then_back_with_defaults() {
    let sim = sim(SimConfig::fast()).await;
    let conn = connect(&sim, None).await;
    conn.set_param(names::FILENAME_PREFIX, "custom")
        .await
        .unwrap();
    // The device may drop the connection before answering the reboot command.
    let _ = conn.set_param(names::REBOOT, 1).await;
    let dev = device_for(&sim, None);
    let probe = async || match HeloConnection::connect(&dev).await {
        Ok(c) => c.get_param(names::SYS_NAME).await.map(drop),
        Err(e) => Err(e),
    };
    let mut saw_down = None;
    for _ in 0..50 {
        if let Err(e) = probe().await {
            saw_down = Some(e);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let err = saw_down.expect("the device never went down");
    assert!(
        err.is_connect() || err.is_unavailable() || err.is_timeout(),
        "{err}"
    );
    eventually(async || probe().await.is_ok()).await;
    let fresh = HeloConnection::connect(&dev).await.unwrap();
    assert_eq!(
        fresh.get_param(names::FILENAME_PREFIX).await.unwrap().value,
        "clip"
    );
}

#[tokio::test]
async fn waiting_for_the_connection_does_not_count_against_the_timeout() {
    let sim = sim(SimConfig::fast()).await;
    let conn = connect(&sim, None).await;
    // Each answer takes 250 ms of a 400 ms limit; four at once need a second in all
    // on one HTTP/1.1 connection, and none of them may time out for waiting its turn.
    sim.set_faults(Faults {
        latency_ms: 250,
        ..Faults::default()
    })
    .unwrap();
    let gets = (0..4).map(|_| conn.get_param(names::SYS_NAME));
    for r in futures_util::future::join_all(gets).await {
        r.unwrap();
    }
    assert!(!conn.is_closed());
}
