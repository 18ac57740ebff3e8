use std::{sync::Arc, time::Duration};

use helo_transport::{Device, DeviceConfig};
use tokio::time::{sleep, Instant};

use super::*;
use crate::{
    conn::{MockConnector, PoolConn},
    testing::{Event, FakeConn, FakeConnector, FakeMode, RecordingObserver},
};

const S: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

fn device(name: &str) -> Device {
    Device::new(DeviceConfig::from_url(name, "http://127.0.0.1:9").unwrap())
}

fn config() -> PoolConfig {
    PoolConfig {
        backoff_jitter: 0.0,
        lifetime_jitter: 0.0,
        refill_interval: Duration::from_millis(100),
        ..PoolConfig::default()
    }
}

fn pool(
    mode: FakeMode,
    config: PoolConfig,
) -> (
    WarmupManager<FakeConnector>,
    FakeConnector,
    Arc<RecordingObserver>,
    EncoderId,
) {
    let connector = FakeConnector::new(mode);
    let obs = RecordingObserver::new();
    let pool = WarmupManager::new(connector.clone(), config, obs.clone());
    let dev = device("enc-1");
    let id = dev.name().clone();
    pool.start_warmup(dev);
    (pool, connector, obs, id)
}

fn retired(obs: &RecordingObserver, reason: RetireReason) -> Vec<ConnectionId> {
    obs.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::ConnectionRetired {
                conn, reason: r, ..
            } if r == reason => Some(conn),
            _ => None,
        })
        .collect()
}

fn warm_reports(obs: &RecordingObserver) -> Vec<usize> {
    obs.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::WarmConnections { count, .. } => Some(count),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn pool_refills_to_min_warm_with_paced_connects() {
    let (pool, connector, obs, enc) = pool(FakeMode::Up, config());
    assert_eq!(pool.encoder_state(&enc), Some(EncoderPoolState::Warming));
    sleep(S).await;
    assert_eq!(pool.warm_count(&enc), 3);
    assert_eq!(connector.attempts(), 3, "no more than min_warm");
    assert_eq!(pool.encoder_state(&enc), Some(EncoderPoolState::Ready));
    // Paced: one connect per refill_interval, never a storm.
    let times = connector.attempt_times();
    for pair in times.windows(2) {
        assert_eq!(pair[1] - pair[0], Duration::from_millis(100));
    }
    assert_eq!(obs.count(|e| matches!(e, Event::WarmupAttempt { .. })), 3);
    assert_eq!(obs.count(|e| matches!(e, Event::WarmupSuccess { .. })), 3);
    assert_eq!(warm_reports(&obs), vec![0, 1, 2, 3]);
    // Every connection was validated by one ping before being called warm.
    assert!(connector.made().iter().all(|c| c.pings() == 1));
    assert_eq!(pool.encoders(), vec![enc.clone()]);
}

#[tokio::test(start_paused = true)]
async fn checkout_never_touches_the_connector() {
    let mut connector = MockConnector::new();
    connector.expect_connect().times(3).returning(|d| {
        let c = FakeConn::new(d.name().clone());
        Box::pin(async move { Ok(c) })
    });
    let cfg = PoolConfig {
        max_connections: 3,
        ..config()
    };
    let pool = WarmupManager::new(connector, cfg, Arc::new(crate::NoopObserver));
    let dev = device("enc-1");
    let enc = dev.name().clone();
    pool.start_warmup(dev);
    sleep(S).await;
    // Three synchronous checkouts: no await between them, so no I/O can happen.
    let a = pool.get_warm_connection(&enc).expect("first");
    let b = pool.get_warm_connection(&enc).expect("second");
    let c = pool.get_warm_connection(&enc).expect("third");
    assert!(
        pool.get_warm_connection(&enc).is_none(),
        "none warm: None at once"
    );
    let pings_before = a.pings() + b.pings() + c.pings();
    assert_eq!(pings_before, 3, "only the warmup pings");
    assert_eq!(pool.warm_count(&enc), 0);
    drop((a, b, c));
    assert_eq!(pool.warm_count(&enc), 3, "back on drop");
    sleep(S).await;
    // The mock checks `times(3)` when the pool drops it.
    pool.stop_warmup(&enc).await;
}

#[tokio::test(start_paused = true)]
async fn checkout_returns_none_while_warmup_hangs() {
    let (pool, connector, _obs, enc) = pool(FakeMode::Hang, config());
    sleep(S).await;
    let before = Instant::now();
    assert!(pool.get_warm_connection(&enc).is_none());
    assert_eq!(Instant::now(), before);
    assert_eq!(connector.attempts(), 1, "one warmup at a time");
    assert!(pool
        .get_warm_connection(&EncoderId::from("nobody"))
        .is_none());
}

#[tokio::test(start_paused = true)]
async fn use_warms_nothing_but_a_missed_checkout_does_and_surplus_retires() {
    let cfg = PoolConfig {
        idle_timeout: 10 * S,
        ..config()
    };
    let (pool, connector, obs, enc) = pool(FakeMode::Up, cfg);
    sleep(S).await;
    // Handed-out connections still count towards min_warm: no refill for use.
    let mut out: Vec<_> = (0..3)
        .filter_map(|_| pool.get_warm_connection(&enc))
        .collect();
    assert_eq!(out.len(), 3);
    assert_eq!(pool.warm_count(&enc), 0);
    sleep(S).await;
    assert_eq!(connector.attempts(), 3, "no refill while they are out");
    // A fourth caller finds none: demand, so one more is warmed.
    assert!(pool.get_warm_connection(&enc).is_none());
    sleep(S).await;
    assert_eq!(connector.attempts(), 4);
    out.extend(pool.get_warm_connection(&enc));
    assert_eq!(out.len(), 4);
    assert_eq!(
        pool.pool_stats(&enc),
        Some(PoolStats {
            warm: 0,
            checked_out: 4,
            cooling: 0,
            connecting: false
        })
    );
    drop(out);
    assert_eq!(pool.warm_count(&enc), 4);
    sleep(11 * S).await;
    assert_eq!(
        pool.warm_count(&enc),
        3,
        "surplus closed after idle_timeout"
    );
    assert_eq!(retired(&obs, RetireReason::Idle).len(), 1);
    sleep(100 * S).await;
    assert_eq!(
        pool.warm_count(&enc),
        3,
        "never below min_warm for idleness"
    );
    assert_eq!(connector.attempts(), 4);
}

#[tokio::test(start_paused = true)]
async fn the_last_returned_serves_again_and_needs_no_ping() {
    let cfg = PoolConfig {
        min_warm: 2,
        keepalive_interval: 20 * S,
        ..config()
    };
    let (pool, connector, _obs, enc) = pool(FakeMode::Up, cfg);
    sleep(S).await;
    let first = pool.get_warm_connection(&enc).expect("warm").id();
    // A check every 10 s for two minutes, on whichever connection is handed out.
    for _ in 0..12 {
        let c = pool.get_warm_connection(&enc).expect("warm");
        assert_eq!(c.id(), first, "the most recently returned is handed out");
        drop(c);
        sleep(10 * S).await;
    }
    let busy = connector.find(first).expect("made");
    assert_eq!(
        busy.pings(),
        1,
        "only its warmup ping: use keeps it checked"
    );
    let spare = connector
        .made()
        .into_iter()
        .find(|c| c.id() != first)
        .expect("a spare");
    assert!(spare.pings() >= 6, "the idle spare is kept alive by pings");
    assert_eq!(connector.attempts(), 2);
}

#[tokio::test(start_paused = true)]
async fn backoff_grows_caps_and_resets() {
    let cfg = PoolConfig {
        backoff_base: S,
        backoff_max: 8 * S,
        ..config()
    };
    let (pool, connector, obs, enc) = pool(FakeMode::Refuse, cfg);
    sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        pool.encoder_state(&enc),
        Some(EncoderPoolState::Unreachable {
            consecutive_failures: 2,
            retry_in: Duration::from_millis(1_500),
        })
    );
    sleep(30 * S).await;
    let times = connector.attempt_times();
    let gaps: Vec<u64> = times.windows(2).map(|p| (p[1] - p[0]).as_secs()).collect();
    assert_eq!(gaps[..5], [1, 2, 4, 8, 8], "{gaps:?}");
    assert_eq!(
        obs.count(|e| matches!(e, Event::WarmupFailure { .. })),
        times.len()
    );

    // The device comes back: the next attempt succeeds and the backoff resets.
    connector.set_mode(FakeMode::Up);
    sleep(10 * S).await;
    assert_eq!(pool.encoder_state(&enc), Some(EncoderPoolState::Ready));
    assert_eq!(pool.warm_count(&enc), 3);

    // It goes away again: the first delay is the base again, not the cap.
    connector.set_mode(FakeMode::Refuse);
    let victim = pool.get_warm_connection(&enc).expect("warm");
    victim.mark_broken();
    drop(victim);
    sleep(Duration::from_millis(500)).await;
    assert_eq!(
        pool.encoder_state(&enc),
        Some(EncoderPoolState::Unreachable {
            consecutive_failures: 1,
            retry_in: Duration::from_millis(500),
        })
    );
}

#[tokio::test(start_paused = true)]
async fn a_devices_retry_after_is_a_floor_under_the_backoff() {
    let cfg = PoolConfig {
        backoff_base: S,
        backoff_max: 60 * S,
        ..config()
    };
    // Rebooting, back in 5 s: never asked sooner, though the backoff says 1, 2, 4 s;
    // from then on the backoff is longer and wins.
    let (_pool, connector, _obs, _enc) = pool(FakeMode::Unavailable(5), cfg);
    sleep(40 * S).await;
    let times = connector.attempt_times();
    let gaps: Vec<u64> = times.windows(2).map(|p| (p[1] - p[0]).as_secs()).collect();
    assert_eq!(gaps[..4], [5, 5, 5, 8], "{gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn a_dead_encoder_costs_one_attempt_per_backoff_period() {
    let cfg = PoolConfig {
        backoff_base: S,
        backoff_max: 60 * S,
        ..config()
    };
    let (pool, connector, _obs, enc) = pool(FakeMode::Refuse, cfg);
    // 1+2+4+8+16+32 = 63 s, then one attempt a minute.
    for _ in 0..600 {
        pool.schedule_warmup(&enc); // spamming wake-ups must not bypass the backoff
        sleep(S).await;
    }
    let n = connector.attempts();
    assert!((14..=16).contains(&n), "{n} attempts in 10 minutes");
}

#[tokio::test(start_paused = true)]
async fn wrong_password_fails_fast_with_a_long_backoff() {
    let cfg = PoolConfig {
        auth_failed_backoff: 600 * S,
        ..config()
    };
    let (pool, connector, obs, enc) = pool(FakeMode::WrongPassword, cfg);
    sleep(S).await;
    assert_eq!(pool.encoder_state(&enc), Some(EncoderPoolState::AuthFailed));
    assert!(pool.encoder_state(&enc).is_some_and(|s| s.is_auth_failed()));
    assert_eq!(
        obs.count(|e| matches!(
            e,
            Event::WarmupFailure {
                wrong_password: true,
                ..
            }
        )),
        1
    );
    sleep(300 * S).await;
    assert_eq!(connector.attempts(), 1, "no hammering of the login page");
    // After a configuration fix, an operator retries at once.
    connector.set_mode(FakeMode::Up);
    pool.retry_now(&enc);
    sleep(S).await;
    assert_eq!(pool.encoder_state(&enc), Some(EncoderPoolState::Ready));
}

#[tokio::test(start_paused = true)]
async fn keepalive_replaces_a_dead_warm_connection_before_checkout() {
    let cfg = PoolConfig {
        keepalive_interval: 30 * S,
        ..config()
    };
    let (pool, connector, obs, enc) = pool(FakeMode::Up, cfg);
    sleep(S).await;
    let dead = connector.made()[1].clone();
    dead.set_ping_ok(false);
    sleep(31 * S).await;
    assert_eq!(retired(&obs, RetireReason::Broken), vec![dead.id()]);
    assert!(dead.is_closed());
    assert_eq!(pool.warm_count(&enc), 3);
    assert_eq!(connector.attempts(), 4);
    // Living connections were pinged once more, not more.
    assert_eq!(connector.made()[0].pings(), 2);
    let mut out = Vec::new();
    while let Some(c) = pool.get_warm_connection(&enc) {
        assert_ne!(c.id(), dead.id());
        out.push(c);
    }
}

#[tokio::test(start_paused = true)]
async fn a_keepalive_refused_by_the_request_budget_keeps_the_connection() {
    let cfg = PoolConfig {
        keepalive_interval: 30 * S,
        ..config()
    };
    let (pool, connector, obs, enc) = pool(FakeMode::Up, cfg);
    sleep(S).await;
    let spared = connector.made()[1].clone();
    spared.set_ping_shed_by_budget(true);
    sleep(31 * S).await;
    assert!(spared.pings() >= 2, "the keepalive was tried");
    assert!(retired(&obs, RetireReason::Broken).is_empty());
    assert!(!spared.is_closed());
    assert_eq!(pool.warm_count(&enc), 3);
    assert_eq!(connector.attempts(), 3, "no replacement opened");
    // A ping that really fails still retires it.
    spared.set_ping_shed_by_budget(false);
    spared.set_ping_ok(false);
    sleep(31 * S).await;
    assert_eq!(retired(&obs, RetireReason::Broken), vec![spared.id()]);
}

#[tokio::test(start_paused = true)]
async fn a_closed_warm_connection_is_never_handed_out() {
    let (pool, connector, obs, enc) = pool(FakeMode::Up, config());
    sleep(S).await;
    for c in connector.made() {
        c.break_now();
    }
    assert!(pool.get_warm_connection(&enc).is_none());
    assert_eq!(retired(&obs, RetireReason::Broken).len(), 3);
    sleep(S).await;
    assert_eq!(pool.warm_count(&enc), 3);
}

#[tokio::test(start_paused = true)]
async fn lifetime_expiry_starts_the_replacement_first() {
    let cfg = PoolConfig {
        max_lifetime: 100 * S,
        keepalive_interval: 1_000 * S,
        ..config()
    };
    let (_pool, connector, obs, _enc) = pool(FakeMode::Up, cfg);
    sleep(S).await;
    obs.clear();
    sleep(101 * S).await;
    assert_eq!(retired(&obs, RetireReason::Expired).len(), 3);
    assert_eq!(connector.attempts(), 6);
    assert!(
        warm_reports(&obs).iter().all(|n| *n >= 3),
        "never below min_warm: {:?}",
        warm_reports(&obs)
    );
    // Each replacement was warm before its predecessor left.
    let events = obs.events();
    let first_success = events
        .iter()
        .position(|e| matches!(e, Event::WarmupSuccess { .. }));
    let first_expiry = events.iter().position(|e| {
        matches!(
            e,
            Event::ConnectionRetired {
                reason: RetireReason::Expired,
                ..
            }
        )
    });
    assert!(first_success < first_expiry, "{events:?}");
}

#[tokio::test(start_paused = true)]
async fn lifetimes_carry_jitter() {
    let cfg = PoolConfig {
        max_lifetime: 100 * S,
        lifetime_jitter: 0.5,
        keepalive_interval: 1_000 * S,
        refill_interval: Duration::ZERO,
        min_warm: 6,
        ..config()
    };
    let (_pool, _connector, obs, _enc) = pool(FakeMode::Up, cfg);
    let mut expired_at = Vec::new();
    for _ in 0..101 {
        sleep(S).await;
        let n = retired(&obs, RetireReason::Expired).len();
        expired_at.resize(n, Instant::now());
    }
    assert!(expired_at.len() >= 6, "all expire within max_lifetime");
    expired_at.dedup();
    assert!(expired_at.len() > 1, "not all at once");
}

#[tokio::test(start_paused = true)]
async fn returned_connections_that_are_broken_or_expired_are_replaced() {
    let cfg = PoolConfig {
        max_lifetime: 100 * S,
        keepalive_interval: 1_000 * S,
        ..config()
    };
    let (pool, connector, obs, enc) = pool(FakeMode::Up, cfg);
    sleep(S).await;
    let a = pool.get_warm_connection(&enc).expect("warm");
    let a_id = a.id();
    a.mark_broken();
    assert!(a.is_broken());
    drop(a);
    assert_eq!(retired(&obs, RetireReason::Broken), vec![a_id]);
    sleep(S).await;
    let b = pool.get_warm_connection(&enc).expect("warm");
    let b_id = b.id();
    sleep(100 * S).await;
    drop(b);
    assert!(retired(&obs, RetireReason::Expired).contains(&b_id));
    assert!(connector.find(b_id).is_some_and(|c| c.is_closed()));
}

#[tokio::test(start_paused = true)]
async fn force_reset_closes_and_replaces() {
    let (pool, connector, obs, enc) = pool(FakeMode::Up, config());
    sleep(S).await;
    let out = pool.get_warm_connection(&enc).expect("warm");
    let id = out.id();
    pool.force_reset_connection(&enc, id);
    assert!(out.is_closed());
    assert_eq!(retired(&obs, RetireReason::Reset), vec![id]);
    drop(out);
    sleep(S).await;
    assert_eq!(pool.warm_count(&enc), 3);
    // One refill for the reset connection, none for the checkout.
    assert_eq!(connector.attempts(), 4);
    assert_eq!(retired(&obs, RetireReason::Reset).len(), 1, "reported once");
}

#[tokio::test(start_paused = true)]
async fn stop_warmup_closes_everything_it_owns() {
    let (pool, connector, obs, enc) = pool(FakeMode::Up, config());
    sleep(S).await;
    let held = pool.get_warm_connection(&enc).expect("warm");
    sleep(S).await;
    pool.stop_warmup(&enc).await;
    assert!(connector.made().iter().all(|c| c.is_closed()));
    // Three warm, one of them held: no refill for a checkout.
    assert_eq!(retired(&obs, RetireReason::Stopped).len(), 3);
    assert_eq!(
        obs.events().last(),
        Some(&Event::EncoderRemoved {
            encoder: enc.clone()
        })
    );
    assert_eq!(pool.encoder_state(&enc), None);
    assert!(pool.encoders().is_empty());
    drop(held);
    let attempts = connector.attempts();
    sleep(100 * S).await;
    assert_eq!(connector.attempts(), attempts, "the upkeep task is gone");
    // A later start begins afresh.
    pool.start_warmup(device("enc-1"));
    sleep(S).await;
    assert_eq!(pool.warm_count(&enc), 3);
}

#[tokio::test(start_paused = true)]
async fn start_warmup_is_idempotent() {
    let (pool, connector, _obs, enc) = pool(FakeMode::Up, config());
    pool.start_warmup(device("enc-1"));
    pool.start_warmup(device("enc-1"));
    sleep(S).await;
    assert_eq!(connector.attempts(), 3);
    assert_eq!(pool.warm_count(&enc), 3);
}

#[tokio::test(start_paused = true)]
async fn a_hung_warmup_times_out_and_a_failed_validation_is_closed() {
    let cfg = PoolConfig {
        warmup_timeout: 2 * S,
        ..config()
    };
    let (pool, connector, obs, enc) = pool(FakeMode::Hang, cfg);
    sleep(3 * S).await;
    assert!(pool.encoder_state(&enc).is_some_and(|s| s.is_unreachable()));
    let failures = obs.matching(|e| matches!(e, Event::WarmupFailure { .. }));
    assert!(
        matches!(&failures[0], Event::WarmupFailure { error, .. } if error.contains("timed out")),
        "{failures:?}"
    );
    connector.set_mode(FakeMode::PingFails);
    pool.retry_now(&enc);
    sleep(10 * MS).await;
    assert_eq!(pool.warm_count(&enc), 0);
    assert!(connector.made().iter().all(|c| c.is_closed()));
}

#[tokio::test(start_paused = true)]
async fn encoders_are_independent() {
    let connector = FakeConnector::new(FakeMode::Up);
    let pool = WarmupManager::new(connector.clone(), config(), Arc::new(crate::NoopObserver));
    pool.start_warmup(device("b"));
    pool.start_warmup(device("a"));
    sleep(S).await;
    assert_eq!(
        pool.encoders(),
        vec![EncoderId::from("a"), EncoderId::from("b")]
    );
    assert_eq!(connector.attempts(), 6);
    let a = pool
        .get_warm_connection(&EncoderId::from("a"))
        .expect("warm");
    assert_eq!(a.encoder(), &EncoderId::from("a"));
    assert_eq!(pool.warm_count(&EncoderId::from("b")), 3);
    assert!(format!("{pool:?}").contains("encoders"));
}

#[test]
fn try_new_rejects_a_bad_config() {
    let err = WarmupManager::try_new(
        FakeConnector::default(),
        PoolConfig {
            min_warm: 9,
            ..PoolConfig::default()
        },
        Arc::new(crate::NoopObserver),
    )
    .unwrap_err();
    assert_eq!(err.config_key(), Some("min_warm"));
}
