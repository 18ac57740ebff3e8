//! The event mirror, the warm pool and health checks against a hostile or misconfigured
//! helo-sim over real loopback sockets: a device that answers long polls at once, a
//! password the device refuses, an event connection id made to forge a log line.
//! Real time with short durations (the paused clock would auto-advance while tasks
//! wait on sockets), counted with the simulator's own request counters.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    fmt,
    sync::{Arc, Mutex},
    time::Duration,
};

use conn_core::{EncoderPoolState, HeloConnector, NoopObserver, PoolConfig, WarmupManager};
use conn_health::{
    ConnectionHealthChecker, DeviceState, DeviceStateMirror, MirrorConfig, MirrorStatus,
    NoThermalReadings, NoopHealthObserver,
};
use helo_sim::{Faults, RequestKind, SimConfig, SimDevice};
use helo_transport::{Backoff, Device, DeviceConfig, HeloConnection, Password};
use tokio::time::{sleep, sleep_until, timeout, Instant};

const MS: Duration = Duration::from_millis(1);

async fn sim(config: SimConfig) -> SimDevice {
    SimDevice::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

fn device_config(sim: &SimDevice) -> DeviceConfig {
    DeviceConfig::from_url("sim-1", &sim.url())
        .unwrap()
        .with_request_timeout(500 * MS)
        .unwrap()
        .with_connect_timeout(500 * MS)
        .unwrap()
        .with_event_wait_timeout(Duration::from_secs(3))
        .unwrap()
}

fn mirror(device: Device) -> DeviceStateMirror {
    DeviceStateMirror::for_device(
        device,
        MirrorConfig::default(),
        Arc::new(NoopHealthObserver),
    )
    .unwrap()
}

async fn until_live(mirror: &DeviceStateMirror) {
    timeout(
        Duration::from_secs(3),
        mirror.subscribe().wait_for(DeviceState::is_live),
    )
    .await
    .expect("mirror not live in 3 s")
    .unwrap();
}

/// Long polls a live mirror makes against `sim` in `window`.
async fn polls_in(sim: &SimDevice, window: Duration) -> (u64, DeviceStateMirror) {
    let mirror = mirror(Device::new(device_config(sim)));
    until_live(&mirror).await;
    let before = sim.request_count(RequestKind::WaitForConfigEvents);
    sleep(window).await;
    let polls = sim.request_count(RequestKind::WaitForConfigEvents) - before;
    (polls, mirror)
}

#[tokio::test]
async fn a_device_answering_long_polls_at_once_gets_at_most_four_a_second() {
    let instant = sim(SimConfig {
        faults: Faults {
            instant_events: true,
            ..Faults::default()
        },
        ..SimConfig::fast()
    })
    .await;
    let no_hold = sim(SimConfig {
        event_hold: Duration::ZERO,
        ..SimConfig::fast()
    })
    .await;
    let window = Duration::from_secs(3);
    let ((a, m1), (b, m2)) = tokio::join!(polls_in(&instant, window), polls_in(&no_hold, window));
    for (what, polls) in [("instant_events", a), ("event_hold 0", b)] {
        // The floor is 250 ms between poll starts: 12 in 3 s. The goal is at most 5 a
        // second; and the mirror keeps polling (the device is answering, not failing).
        assert!(
            (6..=15).contains(&polls),
            "{what}: {polls} long polls in 3 s"
        );
    }
    assert!(m1.state().is_live() && m2.state().is_live());
}

/// A health check as the `check` command makes one: a new connection through the
/// encoder's `Device` (which logs in), then the checks.
async fn check_once(device: &Device, checker: &ConnectionHealthChecker) -> bool {
    match HeloConnection::connect(device).await {
        Ok(conn) => {
            checker
                .perform_health_check(device.name(), conn.id(), conn.clone())
                .await;
            true
        }
        Err(e) => {
            assert!(e.is_wrong_password(), "{e}");
            false
        }
    }
}

#[tokio::test]
async fn a_wrong_password_stops_every_login_source_until_the_lockout_ends() {
    let sim = sim(SimConfig::fast().with_password("right")).await;
    let lockout = Duration::from_secs(2);
    let device = Device::new(
        device_config(&sim)
            .with_password(Some(Password::new("wrong")))
            .with_login_lockout(lockout),
    );
    let started = Instant::now();

    // The pool, with a retry backoff far below the lockout.
    let pool = WarmupManager::new(
        HeloConnector,
        PoolConfig {
            backoff_base: 50 * MS,
            backoff_max: 200 * MS,
            warmup_timeout: Duration::from_secs(2),
            ..PoolConfig::default()
        },
        Arc::new(NoopObserver),
    );
    pool.start_warmup(device.clone());
    // The mirror, with a backoff of at most 200 ms.
    let mirror = DeviceStateMirror::for_device(
        device.clone(),
        MirrorConfig {
            backoff: Backoff::new(50 * MS, 200 * MS),
            ..MirrorConfig::default()
        },
        Arc::new(NoopHealthObserver),
    )
    .unwrap();
    // Health checks every 100 ms.
    let checks = {
        let device = device.clone();
        tokio::spawn(async move {
            let checker = ConnectionHealthChecker::new(NoThermalReadings);
            let mut refused = 0u32;
            loop {
                if !check_once(&device, &checker).await {
                    refused += 1;
                }
                if started.elapsed() >= Duration::from_millis(2900) {
                    return refused;
                }
                sleep(100 * MS).await;
            }
        })
    };

    sleep_until(started + Duration::from_millis(1500)).await;
    assert_eq!(
        sim.request_count(RequestKind::Login),
        1,
        "one login in the lockout"
    );
    assert_eq!(sim.request_count(RequestKind::LoginRefused), 1);
    assert_eq!(
        pool.encoder_state(device.name()),
        Some(EncoderPoolState::AuthFailed)
    );
    assert_eq!(mirror.state().status, MirrorStatus::Reconnecting);
    assert!(device.login_locked_for().is_some());

    // The lockout ends at about 2 s: one of the three sources tries once more, and
    // that refusal locks every source out again until about 4 s.
    sleep_until(started + Duration::from_millis(3000)).await;
    assert_eq!(sim.request_count(RequestKind::Login), 2);
    let refused = checks.await.unwrap();
    assert!(
        refused >= 20,
        "the checks kept trying ({refused}), without logging in"
    );
    pool.stop_warmup(device.name()).await;
    mirror.stop().await;
    sim.shutdown().await;
}

/// Every tracing event's message and fields, as a text log would print them.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<String>>);

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        use std::fmt::Write;
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push_str(&format!(" {}={}", field.name(), value));
    }
}

impl tracing::Subscriber for Captured {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = event.metadata().level().to_string();
        event.record(&mut Fields(&mut line));
        line.push('\n');
        self.0.lock().unwrap().push_str(&line);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn a_forged_event_connection_id_never_reaches_a_log_line_raw() {
    let log = Captured::default();
    // The test runtime runs every task on this thread, so they all log here.
    let _guard = tracing::subscriber::set_default(log.clone());
    let sim = sim(SimConfig {
        faults: Faults {
            event_connection_id: Some("-1\r\nX-Injected: yes".into()),
            ..Faults::default()
        },
        ..SimConfig::fast()
    })
    .await;
    let mirror = mirror(Device::new(device_config(&sim)));
    // An id that is not an id is a broken event API: the mirror leaves it to polling.
    timeout(
        Duration::from_secs(2),
        mirror
            .subscribe()
            .wait_for(|s| s.status == MirrorStatus::Unsupported),
    )
    .await
    .expect("mirror did not give up on the event API")
    .unwrap();
    sleep(300 * MS).await;
    let text = log.0.lock().unwrap().clone();
    assert!(
        text.contains(r"-1\r\nX-Injected: yes"),
        "the id is logged, escaped: {text}"
    );
    for line in text.lines() {
        assert!(
            !line.starts_with("X-Injected"),
            "forged line in the log:\n{text}"
        );
    }
    assert_eq!(sim.request_count(RequestKind::WaitForConfigEvents), 0);
    mirror.stop().await;
}
