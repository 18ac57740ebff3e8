use std::time::Duration;

use tokio::time::Instant;

use super::*;

const IDLE: i64 = 1;
const ACTIVE: i64 = 2;
const FAILING_IN_IDLE: i64 = 3;
const FAILING: i64 = 4;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn policy() -> ReconcilePolicy {
    ReconcilePolicy {
        grace: secs(10),
        settle: secs(1),
        start_timeout: secs(5),
        max_attempts: 3,
        backoff: helo_transport::Backoff::new(secs(2), secs(60)).without_jitter(),
        retry_after: secs(300),
    }
}

fn streaming_encoder() -> Reconciler {
    Reconciler::new(
        DesiredState {
            streaming: true,
            recording: false,
        },
        policy(),
    )
}

fn stream(state: i64) -> Observation {
    Observation {
        stream_state: Some(state),
        record_state: Some(IDLE),
        ..Observation::default()
    }
}

fn start(attempt: u32, restart: bool) -> Action {
    Action::Start {
        activity: Activity::Stream,
        attempt,
        restart,
    }
}

fn stop(attempt: u32) -> Action {
    Action::Stop {
        activity: Activity::Stream,
        attempt,
    }
}

/// One observation at `t0 + at` and the actions and recheck it must give.
#[track_caller]
fn step(
    r: &mut Reconciler,
    t0: Instant,
    at: Duration,
    seen: Observation,
    actions: &[Action],
    recheck: Option<Duration>,
) -> Decision {
    let d = r.observe(t0 + at, &seen);
    assert_eq!(d.actions, actions, "actions at {at:?}");
    assert_eq!(d.recheck_at, recheck.map(|r| t0 + r), "recheck at {at:?}");
    d
}

#[tokio::test(start_paused = true)]
async fn idle_after_a_reboot_is_started_after_the_grace_period() {
    let mut r = streaming_encoder();
    let t0 = Instant::now();
    step(&mut r, t0, secs(0), stream(ACTIVE), &[], None);
    // Rebooting: nothing can be read. Nothing to act on, nothing to wait for.
    step(&mut r, t0, secs(5), Observation::default(), &[], None);
    assert_eq!(
        r.in_desired_state(),
        Some(true),
        "the last known state stands"
    );
    // Back, idle: not on air. Wait for the grace period, then start.
    let d = step(&mut r, t0, secs(30), stream(IDLE), &[], Some(secs(40)));
    assert_eq!(
        d.events,
        [ReconcileEvent::Diverged {
            activity: Activity::Stream,
            observed: IDLE
        }]
    );
    assert_eq!(r.in_desired_state(), Some(false));
    step(&mut r, t0, secs(35), stream(IDLE), &[], Some(secs(40)));
    step(
        &mut r,
        t0,
        secs(40),
        stream(IDLE),
        &[start(1, false)],
        Some(secs(45)),
    );
    // The start takes a moment; still idle before the deadline is no failure.
    step(&mut r, t0, secs(41), stream(IDLE), &[], Some(secs(45)));
    let d = step(&mut r, t0, secs(42), stream(ACTIVE), &[], None);
    assert_eq!(
        d.events,
        [ReconcileEvent::Recovered {
            activity: Activity::Stream,
            attempts: 1
        }]
    );
    assert_eq!(r.in_desired_state(), Some(true));
    assert_eq!(r.report(t0 + secs(42))[0].phase, TrackPhase::Settled);
}

#[tokio::test(start_paused = true)]
async fn a_failing_stream_is_restarted_at_once_stop_then_start() {
    let mut r = streaming_encoder();
    let t0 = Instant::now();
    step(&mut r, t0, secs(0), stream(ACTIVE), &[], None);
    step(
        &mut r,
        t0,
        secs(3),
        stream(FAILING),
        &[stop(1)],
        Some(secs(4)),
    );
    // Before the settle time the start is not sent.
    step(
        &mut r,
        t0,
        Duration::from_millis(3500),
        stream(IDLE),
        &[],
        Some(secs(4)),
    );
    step(
        &mut r,
        t0,
        secs(4),
        stream(IDLE),
        &[start(1, true)],
        Some(secs(9)),
    );
    let d = step(&mut r, t0, secs(5), stream(ACTIVE), &[], None);
    assert_eq!(
        d.events,
        [ReconcileEvent::Recovered {
            activity: Activity::Stream,
            attempts: 1
        }]
    );
    assert_eq!(Action::label(&start(1, true)), "restart_stream");
    assert_eq!(Action::label(&start(1, false)), "start_stream");
}

#[tokio::test(start_paused = true)]
async fn a_start_that_never_reaches_streaming_is_retried_with_backoff_then_given_up_then_retried_later(
) {
    let mut r = streaming_encoder();
    let t0 = Instant::now();
    step(&mut r, t0, secs(0), stream(IDLE), &[], Some(secs(10)));
    step(
        &mut r,
        t0,
        secs(10),
        stream(IDLE),
        &[start(1, false)],
        Some(secs(15)),
    );
    // Stuck: still idle at the start deadline. Try 1 failed; 2 s backoff.
    let d = step(&mut r, t0, secs(15), stream(IDLE), &[], Some(secs(17)));
    assert_eq!(
        d.events,
        [ReconcileEvent::AttemptFailed {
            activity: Activity::Stream,
            attempt: 1
        }]
    );
    // Try 2 restarts (stop, then start) since a plain start did not help.
    step(
        &mut r,
        t0,
        secs(17),
        stream(IDLE),
        &[stop(2)],
        Some(secs(18)),
    );
    step(
        &mut r,
        t0,
        secs(18),
        stream(IDLE),
        &[start(2, true)],
        Some(secs(23)),
    );
    // A start that ends in a failing state fails its try at once; backoff 4 s.
    step(&mut r, t0, secs(19), stream(FAILING), &[], Some(secs(23)));
    step(
        &mut r,
        t0,
        secs(23),
        stream(FAILING),
        &[stop(3)],
        Some(secs(24)),
    );
    step(
        &mut r,
        t0,
        secs(24),
        stream(FAILING),
        &[start(3, true)],
        Some(secs(29)),
    );
    let d = step(&mut r, t0, secs(29), stream(IDLE), &[], Some(secs(329)));
    assert_eq!(
        d.events,
        [ReconcileEvent::GaveUp {
            activity: Activity::Stream,
            attempts: 3
        }]
    );
    let report = r.report(t0 + secs(29))[0];
    assert_eq!(report.attempts, 3);
    assert_eq!(report.due_in, Some(secs(300)));
    assert!(matches!(
        report.phase,
        TrackPhase::GaveUp { attempts: 3, .. }
    ));
    // Given up: nothing for retry_after, then a new round.
    step(&mut r, t0, secs(200), stream(IDLE), &[], Some(secs(329)));
    step(
        &mut r,
        t0,
        secs(329),
        stream(IDLE),
        &[start(1, false)],
        Some(secs(334)),
    );
}

#[tokio::test(start_paused = true)]
async fn an_operators_stop_and_start_within_the_grace_period_is_left_alone() {
    let mut r = streaming_encoder();
    let t0 = Instant::now();
    step(&mut r, t0, secs(0), stream(ACTIVE), &[], None);
    step(&mut r, t0, secs(1), stream(IDLE), &[], Some(secs(11)));
    step(&mut r, t0, secs(6), stream(IDLE), &[], Some(secs(11)));
    let d = step(&mut r, t0, secs(8), stream(ACTIVE), &[], None);
    assert!(d.events.is_empty(), "no recovery happened: {:?}", d.events);
    // A later stop starts a fresh grace period.
    step(&mut r, t0, secs(20), stream(IDLE), &[], Some(secs(30)));
}

#[tokio::test(start_paused = true)]
async fn a_held_encoder_is_left_alone_and_gets_the_grace_period_on_release() {
    let mut r = streaming_encoder();
    let t0 = Instant::now();
    r.set_held(true);
    step(&mut r, t0, secs(0), stream(IDLE), &[], None);
    step(&mut r, t0, secs(100), stream(FAILING), &[], None);
    let heat = Observation {
        switch_profile: Some(1),
        ..stream(IDLE)
    };
    step(&mut r, t0, secs(101), heat, &[], None);
    assert_eq!(r.report(t0 + secs(101))[0].phase, TrackPhase::Held);
    assert_eq!(
        r.in_desired_state(),
        Some(false),
        "held is still not on air"
    );
    r.set_held(false);
    step(&mut r, t0, secs(200), stream(IDLE), &[], Some(secs(210)));
    step(
        &mut r,
        t0,
        secs(210),
        stream(IDLE),
        &[start(1, false)],
        Some(secs(215)),
    );
}

#[tokio::test(start_paused = true)]
async fn the_devices_own_auto_recovery_is_respected_for_a_failing_stream() {
    let mut r = streaming_encoder();
    let t0 = Instant::now();
    let auto = |state| Observation {
        device_auto_recover: Some(true),
        ..stream(state)
    };
    let d = step(&mut r, t0, secs(0), auto(FAILING), &[], None);
    assert!(d.events.contains(&ReconcileEvent::DeferredToDevice {
        activity: Activity::Stream
    }));
    step(&mut r, t0, secs(60), auto(FAILING), &[], None);
    assert_eq!(
        r.report(t0 + secs(60))[0].phase,
        TrackPhase::DeferredToDevice
    );
    // The device brings it back by itself.
    step(&mut r, t0, secs(61), auto(ACTIVE), &[], None);
    // A stream that is idle (not failing) is ours to start, auto-recovery or not.
    step(&mut r, t0, secs(70), auto(IDLE), &[], Some(secs(80)));
    step(
        &mut r,
        t0,
        secs(80),
        auto(IDLE),
        &[start(1, false)],
        Some(secs(85)),
    );
}

#[tokio::test(start_paused = true)]
async fn failing_in_idle_is_restarted_even_with_auto_recovery() {
    let mut r = streaming_encoder();
    let t0 = Instant::now();
    let seen = Observation {
        device_auto_recover: Some(true),
        ..stream(FAILING_IN_IDLE)
    };
    step(&mut r, t0, secs(0), seen, &[stop(1)], Some(secs(1)));
}

#[tokio::test(start_paused = true)]
async fn a_refused_command_fails_its_try() {
    let mut r = streaming_encoder();
    let t0 = Instant::now();
    step(
        &mut r,
        t0,
        secs(0),
        stream(FAILING),
        &[stop(1)],
        Some(secs(1)),
    );
    let d = r.action_failed(t0 + secs(0), &stop(1));
    assert_eq!(d.recheck_at, Some(t0 + secs(2)));
    assert_eq!(
        d.events,
        [ReconcileEvent::AttemptFailed {
            activity: Activity::Stream,
            attempt: 1
        }]
    );
    step(&mut r, t0, secs(1), stream(FAILING), &[], Some(secs(2)));
    step(
        &mut r,
        t0,
        secs(2),
        stream(FAILING),
        &[stop(2)],
        Some(secs(3)),
    );
    // A profile switch has no try to fail.
    let none = r.action_failed(t0 + secs(2), &Action::SwitchProfile { profile: 1 });
    assert_eq!(none, Decision::default());
}

#[tokio::test(start_paused = true)]
async fn recording_is_reconciled_like_streaming() {
    let mut r = Reconciler::new(
        DesiredState {
            streaming: false,
            recording: true,
        },
        policy(),
    );
    let t0 = Instant::now();
    let rec = |state| Observation {
        stream_state: Some(IDLE),
        record_state: Some(state),
        ..Observation::default()
    };
    let record_start = |attempt, restart| Action::Start {
        activity: Activity::Record,
        attempt,
        restart,
    };
    step(&mut r, t0, secs(0), rec(IDLE), &[], Some(secs(10)));
    step(
        &mut r,
        t0,
        secs(10),
        rec(IDLE),
        &[record_start(1, false)],
        Some(secs(15)),
    );
    step(&mut r, t0, secs(11), rec(ACTIVE), &[], None);
    step(
        &mut r,
        t0,
        secs(20),
        rec(FAILING),
        &[Action::Stop {
            activity: Activity::Record,
            attempt: 1,
        }],
        Some(secs(21)),
    );
    assert_eq!(record_start(1, true).label(), "restart_recording");
}

#[tokio::test(start_paused = true)]
async fn nothing_is_done_where_nothing_is_desired_or_recovery_is_off() {
    let mut r = Reconciler::new(DesiredState::default(), policy());
    let t0 = Instant::now();
    for (i, state) in [IDLE, FAILING, 0, 5, 99].into_iter().enumerate() {
        step(&mut r, t0, secs(i as u64 * 100), stream(state), &[], None);
    }
    assert_eq!(r.in_desired_state(), Some(true));

    let mut off = Reconciler::new(
        DesiredState {
            streaming: true,
            recording: false,
        },
        ReconcilePolicy {
            max_attempts: 0,
            ..policy()
        },
    );
    step(&mut off, t0, secs(0), stream(FAILING), &[], None);
    step(&mut off, t0, secs(100), stream(IDLE), &[], None);
    assert_eq!(
        off.in_desired_state(),
        Some(false),
        "reported, never acted on"
    );
}

#[tokio::test(start_paused = true)]
async fn an_overheating_device_is_switched_to_the_lighter_profile() {
    let mut r = streaming_encoder();
    let t0 = Instant::now();
    let hot = Observation {
        switch_profile: Some(2),
        ..stream(ACTIVE)
    };
    step(
        &mut r,
        t0,
        secs(0),
        hot,
        &[Action::SwitchProfile { profile: 2 }],
        None,
    );
    assert_eq!(
        Action::SwitchProfile { profile: 2 }.label(),
        "lighter_profile"
    );
}

#[tokio::test(start_paused = true)]
async fn unknown_states_keep_the_plan() {
    let mut r = streaming_encoder();
    let t0 = Instant::now();
    step(&mut r, t0, secs(0), stream(IDLE), &[], Some(secs(10)));
    // The device stops answering during the grace period: nothing is sent, and the
    // machine still wants to look at the end of the grace period.
    step(
        &mut r,
        t0,
        secs(5),
        Observation::default(),
        &[],
        Some(secs(10)),
    );
    step(&mut r, t0, secs(6), stream(77), &[], Some(secs(10)));
    step(
        &mut r,
        t0,
        secs(10),
        stream(IDLE),
        &[start(1, false)],
        Some(secs(15)),
    );
}

#[test]
fn policy_delays_double_and_cap_and_bad_values_are_refused() {
    let p = policy();
    assert_eq!(p.delay_after(1), secs(2));
    assert_eq!(p.delay_after(2), secs(4));
    assert_eq!(p.delay_after(6), secs(60));
    assert_eq!(p.delay_after(u32::MAX), secs(60));
    assert!(ReconcilePolicy::default().validate().is_ok());
    let bad = ReconcilePolicy {
        start_timeout: Duration::ZERO,
        ..policy()
    };
    assert!(bad
        .validate()
        .unwrap_err()
        .to_string()
        .contains("start_timeout"));
    let jittered = ReconcilePolicy {
        backoff: helo_transport::Backoff::new(secs(2), secs(60)),
        ..policy()
    };
    for _ in 0..100 {
        assert!(
            jittered.delay_after(2) <= secs(4),
            "full jitter stays below the ceiling"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_try_this_supervisor_may_not_make_is_not_counted_and_made_at_the_next_check() {
    let mut r = streaming_encoder();
    let t0 = Instant::now();
    step(&mut r, t0, secs(0), stream(ACTIVE), &[], None);
    // Failing: a restart is due at once; this node may not act (cluster).
    step(
        &mut r,
        t0,
        secs(1),
        stream(FAILING),
        &[stop(1)],
        Some(secs(2)),
    );
    r.action_not_taken(&stop(1));
    let report = r.report(t0 + secs(1))[0];
    assert_eq!(report.phase, TrackPhase::NotActing { attempts: 0 });
    assert_eq!(report.due_in, None, "no recheck of its own: the schedule's");
    // However long it lasts, nothing counts towards giving up.
    for at in 2..30 {
        step(
            &mut r,
            t0,
            secs(at),
            stream(FAILING),
            &[stop(1)],
            Some(secs(at + 1)),
        );
        r.action_not_taken(&stop(1));
    }
    // May act again: the round goes on where it stood.
    step(
        &mut r,
        t0,
        secs(40),
        stream(FAILING),
        &[stop(1)],
        Some(secs(41)),
    );
    step(
        &mut r,
        t0,
        secs(41),
        stream(IDLE),
        &[start(1, true)],
        Some(secs(46)),
    );
    // A try that failed before stays counted when the next one is not made.
    step(&mut r, t0, secs(46), stream(IDLE), &[], Some(secs(48)));
    step(
        &mut r,
        t0,
        secs(48),
        stream(IDLE),
        &[stop(2)],
        Some(secs(49)),
    );
    step(
        &mut r,
        t0,
        secs(49),
        stream(IDLE),
        &[start(2, true)],
        Some(secs(54)),
    );
    r.action_not_taken(&start(2, true));
    assert_eq!(
        r.report(t0 + secs(49))[0].phase,
        TrackPhase::NotActing { attempts: 1 }
    );
    step(
        &mut r,
        t0,
        secs(60),
        stream(IDLE),
        &[stop(2)],
        Some(secs(61)),
    );
    // Back on air by another node's hand: settled, and no recovery of ours to report.
    r.action_not_taken(&stop(2));
    let d = step(&mut r, t0, secs(70), stream(ACTIVE), &[], None);
    assert!(d.events.is_empty(), "{:?}", d.events);
    assert_eq!(r.report(t0 + secs(70))[0].phase, TrackPhase::Settled);
}
