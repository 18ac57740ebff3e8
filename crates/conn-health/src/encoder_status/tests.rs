use std::time::{Duration, SystemTime};

use conn_core::EncoderPoolState;
use helo_transport::{ConnectionId, ErrorClass};
use tokio::time::Instant;

use super::*;
use crate::{
    status::{CheckKind, CheckResult, DeviceReadings, EncoderId},
    DesiredState, Observation, ReconcilePolicy, Reconciler,
};

fn health(
    score_parts: &[(CheckKind, CheckOutcome, f64)],
    readings: DeviceReadings,
) -> HealthStatus {
    let checks = CheckKind::ALL
        .into_iter()
        .map(|k| {
            let (outcome, score) = score_parts
                .iter()
                .find(|p| p.0 == k)
                .map_or((CheckOutcome::Ok, 100.0), |p| (p.1, p.2));
            CheckResult::new(k, outcome, score, format!("{k} detail"))
        })
        .collect();
    HealthStatus::new(
        EncoderId::from("studio-a"),
        ConnectionId::from_raw(1),
        checks,
        &Scoring::default(),
    )
    .with_readings(readings)
}

fn streaming(stream_state: i64) -> DeviceReadings {
    DeviceReadings {
        stream_state: Some(stream_state),
        record_state: Some(1),
        temperature: Some(45.0),
        media_available: Some(80),
        system_state: Some(4),
        link_errors: Some(0),
    }
}

fn reconciler(expect_streaming: bool) -> Reconciler {
    Reconciler::new(
        DesiredState {
            streaming: expect_streaming,
            recording: false,
        },
        ReconcilePolicy::default(),
    )
}

struct Case {
    tracker: StatusTracker,
    reconciler: Reconciler,
    now: Instant,
}

impl Case {
    fn new(expect_streaming: bool) -> Self {
        Self {
            tracker: StatusTracker::new(StatusPolicy::default()),
            reconciler: reconciler(expect_streaming),
            now: Instant::now(),
        }
    }

    fn checked(&mut self, h: &HealthStatus) -> EncoderStatus {
        let r = h.readings();
        self.reconciler.observe(
            self.now,
            &Observation {
                stream_state: r.stream_state,
                record_state: r.record_state,
                ..Observation::default()
            },
        );
        self.status(&Reachability::from_check(h), Some(h))
    }

    fn status(&mut self, reach: &Reachability, h: Option<&HealthStatus>) -> EncoderStatus {
        self.tracker
            .update(
                &StatusInputs {
                    reachability: reach,
                    health: h,
                    reconciler: &self.reconciler,
                    now: self.now,
                },
                SystemTime::now(),
            )
            .clone()
    }
}

fn codes(s: &EncoderStatus) -> Vec<ReasonCode> {
    s.reasons.iter().map(|r| r.code).collect()
}

#[tokio::test(start_paused = true)]
async fn starts_unknown_and_a_healthy_check_makes_it_healthy() {
    let mut c = Case::new(true);
    let s = c.status(&Reachability::NotYetChecked, None);
    assert_eq!(s.level, StatusLevel::Unknown);
    assert_eq!(codes(&s), [ReasonCode::NotChecked]);
    let s = c.checked(&health(&[], streaming(2)));
    assert_eq!(s.level, StatusLevel::Healthy, "{s:?}");
    assert!(s.reasons.is_empty());
    assert_eq!(s.health_score, Some(100.0));
    assert_eq!(s.in_desired_state, Some(true));
}

#[tokio::test(start_paused = true)]
async fn idle_when_it_should_stream_is_critical_below_70_even_with_a_high_score() {
    let mut c = Case::new(true);
    // Even if every check scored well, not on air is critical.
    let s = c.checked(&health(&[], streaming(1)));
    assert_eq!(s.level, StatusLevel::Critical);
    assert_eq!(codes(&s), [ReasonCode::NotStreaming]);
    assert!(s.health_score.unwrap() < 70.0, "{:?}", s.health_score);
    assert!(
        s.reasons[0]
            .message
            .starts_with("stream idle, should be streaming; grace period, acting in 10 s"),
        "{}",
        s.reasons[0].message
    );
    assert_eq!(s.in_desired_state, Some(false));
    // An encoder that only observes is fine idle.
    let mut c = Case::new(false);
    assert_eq!(
        c.checked(&health(&[], streaming(1))).level,
        StatusLevel::Healthy
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_stream_reports_the_restart_in_progress() {
    let mut c = Case::new(true);
    let s = c.checked(&health(
        &[(CheckKind::StreamingState, CheckOutcome::Failed, 0.0)],
        streaming(4),
    ));
    assert_eq!(s.level, StatusLevel::Critical);
    assert_eq!(codes(&s), [ReasonCode::StreamFailing]);
    assert!(
        s.reasons[0].message.contains("restarting (try 1 of 3)"),
        "{}",
        s.reasons[0].message
    );
}

#[tokio::test(start_paused = true)]
async fn unreachable_keeps_the_last_score_only_as_last_score() {
    let mut c = Case::new(true);
    let s = c.checked(&health(&[], streaming(2)));
    let first_since = s.since;
    assert_eq!(s.health_score, Some(100.0));
    let when = s.last_score_at;
    tokio::time::advance(Duration::from_secs(5)).await;
    c.now = Instant::now();
    let reach = Reachability::from_pool(Some(&EncoderPoolState::Unreachable {
        consecutive_failures: 2,
        retry_in: Duration::from_secs(4),
    }))
    .unwrap();
    let s = c.status(&reach, None);
    assert_eq!(s.level, StatusLevel::Unreachable);
    assert_eq!(s.health_score, None, "no current score while unreachable");
    assert_eq!(s.last_score, Some(100.0));
    assert_eq!(s.last_score_at, when);
    assert_eq!(codes(&s), [ReasonCode::Unreachable]);
    assert!(
        s.reasons[0]
            .message
            .contains("2 connection attempts failed"),
        "{}",
        s.reasons[0].message
    );
    assert!(s.since >= first_since);
    // A failed probe is unreachable too, with its cause.
    let mut dead = CheckResult::new(
        CheckKind::BasicConnectivity,
        CheckOutcome::Failed,
        0.0,
        "connection refused\r\nX: y",
    );
    dead.error_class = Some(ErrorClass::Connection);
    let failed = HealthStatus::new(
        EncoderId::from("studio-a"),
        ConnectionId::from_raw(1),
        vec![dead],
        &Scoring::default(),
    );
    let s = c.status(&Reachability::from_check(&failed), Some(&failed));
    assert_eq!(s.level, StatusLevel::Unreachable);
    assert_eq!(
        s.reasons[0].message,
        "no answer: connection refused\\r\\nX: y"
    );
    // A wrong password.
    let reach = Reachability::from_pool(Some(&EncoderPoolState::AuthFailed)).unwrap();
    assert_eq!(codes(&c.status(&reach, None)), [ReasonCode::LoginRefused]);
    assert_eq!(
        Reachability::from_pool(Some(&EncoderPoolState::Warming)),
        None
    );
}

#[tokio::test(start_paused = true)]
async fn unreachable_still_says_the_stream_was_not_on_air() {
    let mut c = Case::new(true);
    c.checked(&health(&[], streaming(1)));
    let s = c.status(
        &Reachability::Unreachable {
            detail: "timed out".into(),
        },
        None,
    );
    assert_eq!(s.level, StatusLevel::Unreachable);
    assert_eq!(
        codes(&s),
        [ReasonCode::Unreachable, ReasonCode::NotStreaming]
    );
}

#[tokio::test(start_paused = true)]
async fn overheating_media_and_link_errors_are_at_least_degraded() {
    let mut c = Case::new(true);
    let hot = DeviceReadings {
        temperature: Some(82.0),
        ..streaming(2)
    };
    let s = c.checked(&health(
        &[(CheckKind::ResourceUsage, CheckOutcome::Warning, 80.0)],
        hot,
    ));
    assert_eq!(s.level, StatusLevel::Degraded, "{s:?}");
    assert_eq!(codes(&s), [ReasonCode::DeviceOverheated]);
    assert_eq!(s.reasons[0].message, "device at 82 °C (limit 70 °C)");
    let very_hot = DeviceReadings {
        temperature: Some(90.0),
        ..streaming(2)
    };
    assert_eq!(
        c.checked(&health(&[], very_hot)).level,
        StatusLevel::Critical
    );
    let full = DeviceReadings {
        media_available: Some(5),
        ..streaming(2)
    };
    let s = c.checked(&health(&[], full));
    assert_eq!(
        (s.level, codes(&s)),
        (StatusLevel::Degraded, vec![ReasonCode::MediaLow])
    );
    let full = DeviceReadings {
        media_available: Some(1),
        ..streaming(2)
    };
    assert_eq!(c.checked(&health(&[], full)).level, StatusLevel::Critical);
    let links = DeviceReadings {
        link_errors: Some(7),
        ..streaming(2)
    };
    let s = c.checked(&health(&[], links));
    assert_eq!(
        (s.level, codes(&s)),
        (StatusLevel::Degraded, vec![ReasonCode::LinkErrorsRising])
    );
    assert_eq!(s.reasons[0].message, "link errors grew from 0 to 7");
    // Not rising any more.
    assert_eq!(c.checked(&health(&[], links)).level, StatusLevel::Healthy);
}

#[tokio::test(start_paused = true)]
async fn low_scores_map_to_the_thresholds() {
    let mut c = Case::new(false);
    let slow = [
        (CheckKind::ResponseTime, CheckOutcome::Failed, 0.0),
        (CheckKind::ErrorRate, CheckOutcome::Warning, 50.0),
    ];
    let h = health(&slow, streaming(2));
    assert!(
        h.health_score() < 80.0 && h.health_score() >= 70.0,
        "{}",
        h.health_score()
    );
    let s = c.checked(&h);
    assert_eq!(
        (s.level, codes(&s)),
        (StatusLevel::Degraded, vec![ReasonCode::LowScore])
    );
    assert!(
        s.reasons[0]
            .message
            .contains("response_time: response_time detail"),
        "{}",
        s.reasons[0].message
    );
    let worse = [
        (CheckKind::ResponseTime, CheckOutcome::Failed, 0.0),
        (CheckKind::ErrorRate, CheckOutcome::Failed, 0.0),
        (CheckKind::ThermalStatus, CheckOutcome::Failed, 0.0),
    ];
    assert_eq!(
        c.checked(&health(&worse, streaming(2))).level,
        StatusLevel::Critical
    );
}

#[tokio::test(start_paused = true)]
async fn held_wins_and_keeps_the_reasons_underneath() {
    let mut c = Case::new(true);
    c.reconciler.set_held(true);
    let s = c.checked(&health(&[], streaming(1)));
    assert_eq!(s.level, StatusLevel::Held);
    assert_eq!(codes(&s), [ReasonCode::Held, ReasonCode::NotStreaming]);
    assert!(
        s.reasons[1].message.ends_with("; held"),
        "{}",
        s.reasons[1].message
    );
    c.reconciler.set_held(false);
    assert_eq!(
        c.checked(&health(&[], streaming(1))).level,
        StatusLevel::Critical
    );
}

#[tokio::test(start_paused = true)]
async fn the_level_since_moves_only_when_the_level_changes() {
    let mut c = Case::new(false);
    let a = c.checked(&health(&[], streaming(2))).since;
    tokio::time::advance(Duration::from_secs(1)).await;
    // `since` is wall-clock; the paused tokio clock does not move it, so compare equality.
    let b = c.checked(&health(&[], streaming(2))).since;
    assert_eq!(a, b);
    let hot = DeviceReadings {
        temperature: Some(82.0),
        ..streaming(2)
    };
    let s = c.checked(&health(&[], hot));
    assert_eq!(s.level, StatusLevel::Degraded);
    assert!(s.since >= a);
    assert_eq!(
        StatusLevel::ALL.map(StatusLevel::as_str),
        [
            "unreachable",
            "critical",
            "degraded",
            "unknown",
            "held",
            "healthy"
        ]
    );
}
