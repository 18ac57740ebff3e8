use std::time::{Duration, SystemTime};

use conn_core::EncoderPoolState;
use helo_transport::{ConnectionId, ErrorClass};
use tokio::time::Instant;

use super::*;
use crate::{
    status::{CheckKind, CheckOutcome, CheckResult, DeviceReadings, EncoderId},
    Activity, Scoring,
};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn policy() -> SupervisionPolicy {
    SupervisionPolicy {
        reconcile: ReconcilePolicy {
            grace: secs(10),
            settle: secs(1),
            start_timeout: secs(5),
            backoff: helo_transport::Backoff::new(secs(2), secs(60)).without_jitter(),
            ..ReconcilePolicy::default()
        },
        schedule: CheckSchedule {
            healthy_interval: secs(30),
            unhealthy_interval: secs(5),
            jitter: 0.0,
        },
        ..SupervisionPolicy::default()
    }
}

fn check(stream_state: Option<i64>, reachable: bool) -> HealthStatus {
    let mut checks: Vec<CheckResult> = CheckKind::ALL
        .into_iter()
        .map(|k| CheckResult::new(k, CheckOutcome::Ok, 100.0, "fine"))
        .collect();
    if !reachable {
        checks[0] = CheckResult::new(
            CheckKind::BasicConnectivity,
            CheckOutcome::Failed,
            0.0,
            "connection refused",
        );
        checks[0].error_class = Some(ErrorClass::Connection);
    }
    if matches!(stream_state, Some(s) if s != 2) {
        checks[5] = CheckResult::new(
            CheckKind::StreamingState,
            CheckOutcome::Failed,
            0.0,
            "stream state idle",
        );
    }
    HealthStatus::new(
        EncoderId::from("studio-a"),
        ConnectionId::from_raw(1),
        checks,
        &Scoring::default(),
    )
    .with_readings(DeviceReadings {
        stream_state,
        record_state: Some(1),
        ..DeviceReadings::default()
    })
}

fn streaming() -> EncoderSupervision {
    EncoderSupervision::new(
        DesiredState {
            streaming: true,
            recording: false,
        },
        false,
        policy(),
    )
}

#[tokio::test(start_paused = true)]
async fn the_schedule_follows_the_status_and_the_machines_due_time() {
    let mut s = streaming();
    let t0 = Instant::now();
    let wall = SystemTime::now();
    assert_eq!(s.status().level, StatusLevel::Unknown);
    assert_eq!(s.first_check_at(t0, 0.0), t0 + secs(1));
    assert_eq!(s.first_check_at(t0, 1.0), t0 + secs(2));
    let plan = s.checked(t0, wall, check(Some(2), true), CheckFindings::default());
    assert!(plan.actions.is_empty());
    assert_eq!(s.status().level, StatusLevel::Healthy);
    assert_eq!(s.next_check_at(t0, 0.5), t0 + secs(30));
    // Idle: critical, so the unhealthy interval; the grace period ends sooner still? No:
    // 5 s < 10 s, so the schedule wins; then the machine's due time.
    let t1 = t0 + secs(30);
    s.checked(t1, wall, check(Some(1), true), CheckFindings::default());
    assert_eq!(s.status().level, StatusLevel::Critical);
    assert_eq!(s.next_check_at(t1, 0.5), t1 + secs(5));
    assert_eq!(
        s.next_check_at(t1 + secs(8), 0.5),
        t1 + secs(10),
        "grace ends first"
    );
    let plan = s.checked(
        t1 + secs(10),
        wall,
        check(Some(1), true),
        CheckFindings::default(),
    );
    assert_eq!(
        plan.actions,
        [Action::Start {
            activity: Activity::Stream,
            attempt: 1,
            restart: false
        }]
    );
    let events = s.action_done(t1 + secs(10), wall, &plan.actions[0], None);
    assert!(events.is_empty());
    let report = s.report(t1 + secs(10));
    assert_eq!(
        report.last_action.as_ref().map(|a| (a.action, a.outcome)),
        Some(("start_stream", "ok"))
    );
    assert_eq!(report.checks, 3);
}

#[tokio::test(start_paused = true)]
async fn losing_and_finding_the_device_is_reported_once_each() {
    let mut s = streaming();
    let t0 = Instant::now();
    let wall = SystemTime::now();
    s.checked(t0, wall, check(Some(2), true), CheckFindings::default());
    let plan = s.checked(
        t0 + secs(1),
        wall,
        check(None, false),
        CheckFindings::default(),
    );
    assert!(plan.replace_connection);
    assert!(
        plan.actions.is_empty(),
        "nothing is done to a device that does not answer"
    );
    assert!(plan.events.iter().any(
        |e| matches!(e, SupervisionEvent::Unreachable { detail } if detail == "connection refused")
    ));
    assert!(plan.events.contains(&SupervisionEvent::LevelChanged {
        from: StatusLevel::Healthy,
        to: StatusLevel::Unreachable
    }));
    let pool = EncoderPoolState::Unreachable {
        consecutive_failures: 3,
        retry_in: secs(8),
    };
    let plan = s.no_connection(t0 + secs(6), wall, Some(&pool));
    assert!(
        !plan
            .events
            .iter()
            .any(|e| matches!(e, SupervisionEvent::Unreachable { .. })),
        "said once: {plan:?}"
    );
    assert_eq!(s.status().level, StatusLevel::Unreachable);
    assert_eq!(s.status().last_score, Some(100.0));
    assert_eq!(s.status().health_score, None);
    let plan = s.checked(
        t0 + secs(11),
        wall,
        check(Some(2), true),
        CheckFindings::default(),
    );
    assert!(
        plan.events
            .contains(&SupervisionEvent::Reachable { failed_checks: 2 }),
        "{plan:?}"
    );
    assert_eq!(s.report(t0).consecutive_failures, 0);
}

#[tokio::test(start_paused = true)]
async fn a_refused_action_fails_its_try_and_is_recorded() {
    let mut s = streaming();
    let t0 = Instant::now();
    let wall = SystemTime::now();
    let plan = s.checked(t0, wall, check(Some(4), true), CheckFindings::default());
    assert_eq!(
        plan.actions,
        [Action::Stop {
            activity: Activity::Stream,
            attempt: 1
        }]
    );
    let events = s.action_done(t0, wall, &plan.actions[0], Some("refused\n"));
    assert_eq!(
        events,
        [SupervisionEvent::Reconcile(ReconcileEvent::AttemptFailed {
            activity: Activity::Stream,
            attempt: 1
        })]
    );
    let last = s.report(t0).last_action.unwrap();
    assert_eq!(
        (last.outcome, last.error.as_deref()),
        ("error", Some("refused\\n"))
    );
}

#[tokio::test(start_paused = true)]
async fn an_action_not_taken_is_recorded_uncounted_and_looked_at_on_schedule() {
    let mut s = streaming();
    let t0 = Instant::now();
    let wall = SystemTime::now();
    let plan = s.checked(t0, wall, check(Some(4), true), CheckFindings::default());
    let events = s.action_not_taken(t0, wall, &plan.actions[0], "not acting: demoted");
    assert!(events.is_empty(), "{events:?}");
    let report = s.report(t0);
    let last = report.last_action.unwrap();
    assert_eq!(
        (last.outcome, last.error.as_deref()),
        ("not_taken", Some("not acting: demoted"))
    );
    assert_eq!(report.tracks[0].attempts, 0);
    assert_eq!(
        report.status.level,
        StatusLevel::Critical,
        "still not on air"
    );
    assert!(
        report.status.summary().contains("may not act"),
        "{}",
        report.status.summary()
    );
    // Looked at again at the unhealthy interval, not at once: refused again would be
    // all a sooner check could do.
    assert_eq!(s.next_check_at(t0, 0.5), t0 + secs(5));
    // Once it may act, the next check makes the same try.
    let plan = s.checked(
        t0 + secs(5),
        wall,
        check(Some(4), true),
        CheckFindings::default(),
    );
    assert_eq!(
        plan.actions,
        [Action::Stop {
            activity: Activity::Stream,
            attempt: 1
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn held_encoders_are_checked_at_the_healthy_interval_and_never_acted_on() {
    let mut s = EncoderSupervision::new(
        DesiredState {
            streaming: true,
            recording: false,
        },
        true,
        policy(),
    );
    let t0 = Instant::now();
    let wall = SystemTime::now();
    let plan = s.checked(
        t0,
        wall,
        check(Some(1), true),
        CheckFindings {
            switch_profile: Some(1),
            ..CheckFindings::default()
        },
    );
    assert!(plan.actions.is_empty());
    assert_eq!(s.status().level, StatusLevel::Held);
    assert_eq!(s.next_check_at(t0, 0.5), t0 + secs(30));
    s.set_held(false, t0 + secs(1), wall);
    assert_eq!(s.status().level, StatusLevel::Critical);
    assert!(!s.is_held());
}

#[tokio::test(start_paused = true)]
async fn connection_health_is_judged_apart_from_the_device() {
    let mut s = streaming();
    let t0 = Instant::now();
    let plan = s.checked(
        t0,
        SystemTime::now(),
        check(Some(1), true),
        CheckFindings::default(),
    );
    assert!(
        !plan.connection_unhealthy,
        "an idle stream is no reason to cool a connection"
    );
}

#[test]
fn events_that_call_for_a_check() {
    use helo_transport::StreamState;

    use crate::mirror::Reading;
    let live = DeviceState {
        status: MirrorStatus::Live,
        stream_state: Reading::Known(StreamState::Streaming),
        ..DeviceState::default()
    };
    let failing = DeviceState {
        stream_state: Reading::Known(StreamState::FailingInStream),
        ..live.clone()
    };
    let lost = DeviceState {
        status: MirrorStatus::Reconnecting,
        ..live.clone()
    };
    let warmer = DeviceState {
        temperature: Reading::Known(50.0),
        ..live.clone()
    };
    assert!(EncoderSupervision::event_calls_for_check(&live, &failing));
    assert!(EncoderSupervision::event_calls_for_check(&live, &lost));
    assert!(!EncoderSupervision::event_calls_for_check(&live, &warmer));
}

#[test]
fn the_policy_read_back_is_the_one_given() {
    let mut p = policy();
    p.min_event_gap = Duration::from_millis(250);
    p.first_check_within = secs(3);
    p.status.critical_cap = 40.0;
    let s = EncoderSupervision::new(
        DesiredState {
            streaming: true,
            recording: false,
        },
        false,
        p.clone(),
    );
    assert_eq!(s.policy(), p);
}
