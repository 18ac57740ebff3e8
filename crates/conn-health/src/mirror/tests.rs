use std::{
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc,
    },
    time::Duration,
};

use helo_transport::{
    names, ErrorClass, HeloError, HeloRequest, HeloResponse, RecordState, StreamState,
};
use tokio::time::Instant;
use tower::Service;

use super::*;
use crate::{observer::MockHealthObserver, testing::FakeDevice, NoopHealthObserver};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn config() -> MirrorConfig {
    MirrorConfig {
        backoff: Backoff::new(ms(100), ms(1000)).without_jitter(),
        reprobe_interval: Duration::from_secs(60),
        legacy_connect: false,
        ..MirrorConfig::default()
    }
}

fn mirror_of(dev: &Arc<FakeDevice>, cfg: MirrorConfig) -> DeviceStateMirror {
    let d = dev.clone();
    DeviceStateMirror::spawn(
        dev.name.clone(),
        move || {
            let svc = d.service();
            async move { Ok::<_, HeloError>(svc) }
        },
        cfg,
        Arc::new(NoopHealthObserver),
    )
    .unwrap()
}

async fn wait_for(
    rx: &mut tokio::sync::watch::Receiver<DeviceState>,
    within: Duration,
    what: impl Fn(&DeviceState) -> bool,
) -> DeviceState {
    tokio::time::timeout(within, rx.wait_for(|s| what(s)))
        .await
        .expect("state not reached in time")
        .expect("mirror dropped")
        .clone()
}

#[tokio::test(start_paused = true)]
async fn goes_live_seeded_and_follows_events_without_polling() {
    let dev = FakeDevice::new();
    let mirror = mirror_of(&dev, config());
    let mut rx = mirror.subscribe();
    let s = wait_for(&mut rx, ms(500), DeviceState::is_live).await;
    assert_eq!(s.stream_state, Reading::Known(StreamState::Idle));
    assert_eq!(s.record_state, Reading::Known(RecordState::Idle));
    assert_eq!(s.temperature, Reading::Known(45.0));
    assert_eq!(s.media_available, Reading::Known(90));
    assert_eq!(s.system_state, Reading::Known(4));
    assert_eq!(s.link_errors, Reading::Known(0));
    assert_eq!(s.auto_recover_streaming, Reading::Known(false));
    assert!(s.is_fresh(Duration::from_secs(1)));
    let gets = dev.gets();
    assert_eq!(gets, 7, "one seeding poll per kept parameter");

    let t0 = Instant::now();
    dev.set(names::STREAM_STATE, 4);
    let s = wait_for(&mut rx, ms(100), |s| {
        s.stream_state == Reading::Known(StreamState::FailingInStream)
    })
    .await;
    assert!(t0.elapsed() < ms(100));
    assert_eq!(s.events, 1);
    assert_eq!(dev.gets(), gets, "the change came by event, not by polling");

    // An empty long poll after the hold keeps the mirror fresh.
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(mirror.state().is_fresh(Duration::from_secs(60)));
    assert_eq!(dev.gets(), gets);
}

#[tokio::test(start_paused = true)]
async fn no_event_api_means_unsupported_and_rare_reprobes() {
    let dev = FakeDevice::new();
    dev.state().events_supported = false;
    let mirror = mirror_of(&dev, config());
    let mut rx = mirror.subscribe();
    let s = wait_for(&mut rx, ms(500), |s| s.status == MirrorStatus::Unsupported).await;
    assert_eq!(s.last_error, None, "not an error, only a missing feature");
    assert!(!s.is_fresh(Duration::from_secs(60)));
    assert_eq!(dev.connects(), 1);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(dev.connects(), 1, "no probe before reprobe_interval");
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert_eq!(dev.connects(), 2);

    // The firmware gained events: the next probe goes live.
    dev.state().events_supported = true;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(mirror.state().is_live());
}

#[tokio::test(start_paused = true)]
async fn an_expired_event_connection_is_opened_again() {
    let dev = FakeDevice::new();
    let mirror = mirror_of(&dev, config());
    let mut rx = mirror.subscribe();
    wait_for(&mut rx, ms(500), DeviceState::is_live).await;
    assert_eq!(dev.connects(), 1);
    dev.expire();
    tokio::time::sleep(ms(200)).await;
    assert_eq!(dev.connects(), 2);
    assert!(mirror.state().is_live());
    dev.set(names::RECORD_STATE, 2);
    wait_for(&mut rx, ms(100), |s| {
        s.record_state == Reading::Known(RecordState::Recording)
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn failed_connects_back_off_exponentially_up_to_the_cap() {
    let dev = FakeDevice::new();
    let attempts = Arc::new(AtomicU32::new(0));
    let times = Arc::new(std::sync::Mutex::new(Vec::new()));
    let start = Instant::now();
    let mirror = {
        let (dev, attempts, times) = (dev.clone(), attempts.clone(), times.clone());
        DeviceStateMirror::spawn(
            dev.name.clone(),
            move || {
                let n = attempts.fetch_add(1, Ordering::SeqCst);
                times.lock().unwrap().push(start.elapsed());
                let dev = dev.clone();
                async move {
                    if n < 6 {
                        Err(HeloError::Connect {
                            device: dev.name.clone(),
                            request: "connect".into(),
                            source: "refused".into(),
                        })
                    } else {
                        Ok(dev.service())
                    }
                }
            },
            config(),
            Arc::new(NoopHealthObserver),
        )
        .unwrap()
    };
    let mut rx = mirror.subscribe();
    let s = wait_for(&mut rx, ms(50), |s| s.status == MirrorStatus::Reconnecting).await;
    assert_eq!(s.last_error, Some(ErrorClass::Connection));
    wait_for(&mut rx, Duration::from_secs(5), DeviceState::is_live).await;
    let times = times.lock().unwrap().clone();
    let gaps: Vec<u64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis() as u64)
        .collect();
    assert_eq!(gaps, [100, 200, 400, 800, 1000, 1000]);
    assert_eq!(mirror.state().last_error, None);
}

#[tokio::test(start_paused = true)]
async fn a_rebooting_device_is_not_asked_before_its_retry_after() {
    let dev = FakeDevice::new();
    let times = Arc::new(std::sync::Mutex::new(Vec::new()));
    let start = Instant::now();
    let mirror = {
        let (dev, times) = (dev.clone(), times.clone());
        DeviceStateMirror::spawn(
            dev.name.clone(),
            move || {
                let n = {
                    let mut t = times.lock().unwrap();
                    t.push(start.elapsed());
                    t.len()
                };
                let dev = dev.clone();
                async move {
                    if n <= 2 {
                        // Rebooting: 503, come back in 700 ms (the backoff says less).
                        Err(HeloError::Unavailable {
                            device: dev.name.clone(),
                            request: "connect".into(),
                            retry_after: Some(ms(700)),
                        })
                    } else {
                        Ok(dev.service())
                    }
                }
            },
            config(),
            Arc::new(NoopHealthObserver),
        )
        .unwrap()
    };
    let mut rx = mirror.subscribe();
    let s = wait_for(&mut rx, ms(50), |s| s.status == MirrorStatus::Reconnecting).await;
    assert_eq!(s.last_error, Some(ErrorClass::Connection));
    wait_for(&mut rx, Duration::from_secs(5), DeviceState::is_live).await;
    let times = times.lock().unwrap().clone();
    let gaps: Vec<u64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis() as u64)
        .collect();
    // The backoff alone says 100 then 200 ms; the device's Retry-After wins.
    assert_eq!(gaps, [700, 700]);
}

#[tokio::test(start_paused = true)]
async fn stop_ends_the_task_and_says_stopped() {
    let dev = FakeDevice::new();
    let mut observer = MockHealthObserver::new();
    observer.expect_device_state().returning(|_, _| ());
    let mirror = {
        let d = dev.clone();
        DeviceStateMirror::spawn(
            dev.name.clone(),
            move || {
                let svc = d.service();
                async move { Ok::<_, HeloError>(svc) }
            },
            config(),
            Arc::new(observer),
        )
        .unwrap()
    };
    let mut rx = mirror.subscribe();
    wait_for(&mut rx, ms(500), DeviceState::is_live).await;
    mirror.stop().await;
    assert_eq!(rx.borrow().status, MirrorStatus::Stopped);
    let waits = dev.state().waits;
    dev.expire();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(dev.connects(), 1, "a stopped mirror does not reconnect");
    assert_eq!(dev.state().waits, waits);
}

#[tokio::test(start_paused = true)]
async fn observer_hears_every_published_state() {
    let dev = FakeDevice::new();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut observer = MockHealthObserver::new();
    {
        let seen = seen.clone();
        observer
            .expect_device_state()
            .returning(move |enc, s| seen.lock().unwrap().push((enc.clone(), s.clone())));
    }
    let d = dev.clone();
    let mirror = DeviceStateMirror::spawn(
        dev.name.clone(),
        move || {
            let svc = d.service();
            async move { Ok::<_, HeloError>(svc) }
        },
        config(),
        Arc::new(observer),
    )
    .unwrap();
    let mut rx = mirror.subscribe();
    wait_for(&mut rx, ms(500), DeviceState::is_live).await;
    dev.set(names::TEMPERATURE, 61);
    wait_for(&mut rx, ms(100), |s| s.temperature == Reading::Known(61.0)).await;
    let seen = seen.lock().unwrap();
    assert!(seen.iter().all(|(e, _)| e == &dev.name));
    assert!(seen.iter().any(|(_, s)| s.is_live()));
    assert_eq!(
        seen.last().map(|(_, s)| s.temperature),
        Some(Reading::Known(61.0))
    );
}

#[test]
fn invalid_config_is_refused() {
    let cfg = MirrorConfig {
        reprobe_interval: Duration::ZERO,
        ..MirrorConfig::default()
    };
    assert!(cfg.validate().unwrap_err().is_invalid_config());
    for cfg in [
        MirrorConfig {
            min_poll_gap: Duration::ZERO,
            ..MirrorConfig::default()
        },
        MirrorConfig {
            min_poll_gap: Duration::from_secs(11),
            ..MirrorConfig::default()
        },
        MirrorConfig {
            auth_failed_pause: Duration::ZERO,
            ..MirrorConfig::default()
        },
    ] {
        assert!(cfg.validate().unwrap_err().is_invalid_config(), "{cfg:?}");
    }
    let d = MirrorConfig::default();
    assert_eq!(
        (d.min_poll_gap, d.auth_failed_pause),
        (ms(250), helo_transport::DEFAULT_LOGIN_LOCKOUT)
    );
}

#[tokio::test(start_paused = true)]
async fn an_instant_answering_device_gets_one_long_poll_per_gap() {
    let dev = FakeDevice::new();
    dev.state().hold = Duration::ZERO;
    let mirror = mirror_of(&dev, config());
    let mut rx = mirror.subscribe();
    wait_for(&mut rx, ms(500), DeviceState::is_live).await;
    let waits = dev.state().waits;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let polled = dev.state().waits - waits;
    // 250 ms apart: 40 in 10 s (and one more at most for where the window falls).
    assert!((39..=41).contains(&polled), "{polled} long polls in 10 s");
    assert!(
        mirror.state().is_live(),
        "answering at once is not an error"
    );
    assert_eq!(dev.connects(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_held_poll_is_not_delayed_by_the_floor() {
    let dev = FakeDevice::new();
    dev.state().hold = ms(300);
    let mirror = mirror_of(&dev, config());
    let mut rx = mirror.subscribe();
    wait_for(&mut rx, ms(500), DeviceState::is_live).await;
    let waits = dev.state().waits;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Held 300 ms (+5 ms latency) each, back to back: the floor of 250 ms adds nothing.
    let polled = dev.state().waits - waits;
    assert!((9..=10).contains(&polled), "{polled}");
    // A change reaches the mirror at once, even right after a poll ended.
    dev.set(names::STREAM_STATE, 4);
    let t0 = Instant::now();
    wait_for(&mut rx, ms(300), |s| {
        s.stream_state == Reading::Known(StreamState::FailingInStream)
    })
    .await;
    assert!(t0.elapsed() <= ms(255), "{:?}", t0.elapsed());
}

/// `dev`'s service, but every long poll answers at once: `[]` on the first poll of
/// each event connection, "expired" after that.
fn empty_then_expired(
    dev: &Arc<FakeDevice>,
) -> impl Service<HeloRequest, Response = HeloResponse, Error = HeloError, Future = impl Send>
       + Clone
       + Send
       + 'static {
    let inner = dev.service();
    let polls = Arc::new(AtomicU32::new(0));
    let waits = dev.clone();
    tower::service_fn(move |req: HeloRequest| {
        let inner = inner.clone();
        let polls = polls.clone();
        let dev = waits.clone();
        async move {
            match &req {
                HeloRequest::Connect { .. } => polls.store(0, Ordering::SeqCst),
                HeloRequest::WaitForEvents { .. } => {
                    dev.state().waits += 1;
                    if polls.fetch_add(1, Ordering::SeqCst) == 0 {
                        return Ok(HeloResponse::Events(vec![]));
                    }
                    return Err(HeloError::Rejected {
                        device: dev.name.clone(),
                        request: req.to_string(),
                        message: "connection id expired".into(),
                    });
                }
                _ => {}
            }
            forward(inner, req).await
        }
    })
}

async fn forward<S>(mut svc: S, req: HeloRequest) -> Result<HeloResponse, HeloError>
where
    S: Service<HeloRequest, Response = HeloResponse, Error = HeloError>,
{
    tower::ServiceExt::ready(&mut svc).await?;
    svc.call(req).await
}

#[tokio::test(start_paused = true)]
async fn a_device_that_answers_at_once_then_fails_stays_backed_off() {
    let dev = FakeDevice::new();
    let d = dev.clone();
    let mirror = DeviceStateMirror::spawn(
        dev.name.clone(),
        move || {
            let svc = empty_then_expired(&d);
            async move { Ok::<_, HeloError>(svc) }
        },
        config(),
        Arc::new(NoopHealthObserver),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    // Each round is a connect, seven seeding reads and two polls; the backoff between
    // rounds grows 100, 200, 400, 800 ms, then 1 s (the cap), and a poll that answered
    // `[]` at once does not start it again from the bottom.
    let connects = dev.connects();
    assert!(
        (10..=14).contains(&connects),
        "{connects} event connects in 10 s"
    );
    assert!(dev.gets() <= 7 * connects, "{} reads", dev.gets());
    drop(mirror);
}

#[tokio::test(start_paused = true)]
async fn a_refused_password_pauses_the_mirror_for_the_lockout() {
    let dev = FakeDevice::new();
    let attempts = Arc::new(AtomicU32::new(0));
    let mirror = {
        let (dev, attempts) = (dev.clone(), attempts.clone());
        DeviceStateMirror::spawn(
            dev.name.clone(),
            move || {
                attempts.fetch_add(1, Ordering::SeqCst);
                let name = dev.name.clone();
                async move {
                    Err::<tower::util::BoxCloneService<HeloRequest, HeloResponse, HeloError>, _>(
                        HeloError::Auth {
                            device: name,
                            request: "login".into(),
                            failure: helo_transport::AuthFailure::WrongPassword {
                                message: "Login Failed - Passwords did not match".into(),
                            },
                        },
                    )
                }
            },
            MirrorConfig {
                auth_failed_pause: Duration::from_secs(600),
                ..config()
            },
            Arc::new(NoopHealthObserver),
        )
        .unwrap()
    };
    let mut rx = mirror.subscribe();
    let s = wait_for(&mut rx, ms(50), |s| s.status == MirrorStatus::Reconnecting).await;
    assert_eq!(s.last_error, Some(ErrorClass::Other));
    tokio::time::sleep(Duration::from_secs(599)).await;
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        1,
        "no retry within the pause"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
}
