//! One encoder's supervision loop: wait for the check that falls due (or a device event,
//! or an operator's hold), check, and carry out the plan conn-health makes of it. Every
//! decision is the library's; this file only does what it is told, and reports it.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, SystemTime},
};

use conn_core::EncoderId;
use conn_health::{
    Action, Activity, CheckFindings, DeviceState, EncoderSupervision, Expectations, Plan,
    ReconcileEvent, StatusLevel, SupervisionEvent,
};
use conn_metrics::MetricsLayer;
use helo_transport::{names, Device, HeloClientExt};
use tokio::{
    sync::{watch, Notify},
    time::Instant,
};

use crate::{
    cluster::NotActing,
    config::EncoderConfig,
    fleet::{lock, Shared},
    stack::{build_stack, EncoderStack},
};

/// Everything one loop needs.
pub(crate) struct EncoderTask {
    pub(crate) id: EncoderId,
    pub(crate) config: Arc<EncoderConfig>,
    /// The encoder's shared device state (session, login lockout, request budget).
    pub(crate) device: Device,
    pub(crate) shared: Arc<Shared>,
    /// The library's state of this encoder; the admin API reads it and sets the hold.
    pub(crate) supervision: Arc<Mutex<EncoderSupervision>>,
    /// How the fleet stops the loop or wakes it (an operator's hold or release).
    pub(crate) signal: Arc<Signal>,
    pub(crate) metrics_layer: MetricsLayer,
    /// The event mirror's state, when the encoder has one: a change that matters
    /// triggers a check at once instead of at the next interval.
    pub(crate) mirror: Option<watch::Receiver<DeviceState>>,
    /// Why the last action was refused (`not_owner`, `demoted`), so a refusal is
    /// logged once, not at every try.
    pub(crate) refused: Mutex<Option<&'static str>>,
    /// When the first check falls due.
    pub(crate) first_check: FirstCheck,
}

/// When an encoder's first check falls due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FirstCheck {
    /// Spread over the policy's window: the fleet is starting, and every encoder's
    /// first check at once would be a storm of connects and checks.
    Spread,
    /// As soon as the pool has a warm connection (at the latest at the end of the
    /// window): an encoder this node took over from one that died, or one added by a
    /// reload, whose streams have gone unwatched since.
    WhenWarm,
}

/// How the fleet reaches one encoder's loop: a stop, or a wake to export the status and
/// check at once (an operator's hold or release). One small allocation where a `watch`
/// channel (a few hundred bytes, and a larger future in every waiting loop) and a
/// `Notify` were two.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    stop: AtomicBool,
    wake: Notify,
}

impl Signal {
    /// Asks the loop to stop after its current check.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        // `notify_one` keeps the wake-up for a loop that is busy checking.
        self.wake.notify_one();
    }

    /// Makes the loop export its status and check at once.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Returns once the loop is asked to stop (a wake on the way is taken up here).
    async fn until_stopped(&self) {
        while !self.stopped() {
            self.wake.notified().await;
        }
    }
}

/// Scheduled checks fall due on a grid: a fleet's checks, spread at random over the
/// interval, then wake the worker in batches instead of once each. At 1 000 to 3 000
/// encoders the wake-ups (a context switch and an `epoll_wait` each) were most of a
/// check's CPU: short runs measured 313 / 234 µs per check with no grid, 275 / 165
/// with 10 ms, 153 / 118 with 50 ms, 121 / 104 with 100 ms, and 93 µs at 1 000 with
/// 200 ms (BENCHMARKS.md). The step is the largest of [`GRID_STEPS`] that is at most a
/// twentieth of the wait, so a check moves by at most 5 % of its interval (200 ms at
/// the default 10 s and up): a short configured interval keeps its cadence. Every step
/// divides the largest, so loops with different intervals still share grid points.
/// Checks that device events trigger are not moved.
const GRID_STEPS: [Duration; 5] = [
    Duration::from_millis(200),
    Duration::from_millis(100),
    Duration::from_millis(50),
    Duration::from_millis(20),
    Duration::from_millis(10),
];

/// `at` (a check due after a wait from `now`), moved later onto the grid every loop
/// shares.
fn on_grid(at: Instant, now: Instant) -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    let wait = at.saturating_duration_since(now);
    let Some(step) = GRID_STEPS.into_iter().find(|step| *step * 20 <= wait) else {
        return at;
    };
    let step = step.as_nanos();
    let into = at.saturating_duration_since(origin).as_nanos() % step;
    if into == 0 || at < origin {
        return at;
    }
    // Below `step`, so it fits.
    at + Duration::from_nanos(u64::try_from(step - into).unwrap_or(0))
}

/// How often a taken-over encoder's loop looks whether its pool is warm yet.
const WARM_POLL: Duration = Duration::from_millis(20);

/// Runs until [`Signal::stop`].
pub(crate) async fn run(mut task: EncoderTask) {
    let lateness = task.shared.metrics.check_lateness();
    let mut due = match task.first_check {
        FirstCheck::Spread => {
            let now = Instant::now();
            on_grid(
                lock(&task.supervision).first_check_at(now, fastrand::f64()),
                now,
            )
        }
        FirstCheck::WhenWarm => {
            let latest = lock(&task.supervision).first_check_at(Instant::now(), 1.0);
            tokio::select! {
                biased;
                () = task.signal.until_stopped() => return,
                at = task.warm_by(latest) => at,
            }
        }
    };
    let mut mirror = task.mirror.take();
    let mut seen = mirror.as_ref().map(|m| m.borrow().clone());
    task.publish_status();
    loop {
        let scheduled = tokio::select! {
            biased;
            () = task.signal.wake.notified() => {
                if task.signal.stopped() {
                    break;
                }
                task.publish_status();
                false
            }
            () = tokio::time::sleep_until(due) => true,
            changed = mirror_changed(&mut mirror, &mut seen) => {
                if !changed {
                    continue;
                }
                let at = lock(&task.supervision).event_check_at(Instant::now());
                tokio::time::sleep_until(at).await;
                tracing::debug!(encoder_id = %task.id, reason = "device_event", "state changed; checking now");
                false
            }
        };
        if task.signal.stopped() {
            break;
        }
        if scheduled {
            if let Some(h) = &lateness {
                h.observe(Instant::now().saturating_duration_since(due).as_secs_f64());
            }
        }
        // Boxed: the check's future (about 6 KiB in a debug build, its requests boxed
        // and made only when needed) held inline would make every encoder's idle loop
        // that large too.
        Box::pin(task.check_once()).await;
        let now = Instant::now();
        due = on_grid(
            lock(&task.supervision).next_check_at(now, fastrand::f64()),
            now,
        );
    }
}

impl EncoderTask {
    /// When the pool can serve a check (a warm connection, or a verdict on the device:
    /// unreachable, wrong password), at the latest `latest`.
    async fn warm_by(&self, latest: Instant) -> Instant {
        let pool = &self.shared.warmup;
        loop {
            let now = Instant::now();
            let settled = pool.warm_count(&self.id) > 0
                || pool
                    .encoder_state(&self.id)
                    .is_some_and(|s| s.is_unreachable() || s.is_auth_failed());
            if settled || now >= latest {
                return now;
            }
            // A connect and a login take milliseconds to a few hundred; polling the
            // pool's counters is cheaper than a notification kept for every encoder
            // for the one time it is needed.
            tokio::time::sleep_until(latest.min(now + WARM_POLL)).await;
        }
    }

    async fn check_once(&self) {
        let s = &self.shared;
        let id = &self.id;
        let Some(pooled) = s.warmup.get_warm_connection(id) else {
            let pool = s.warmup.encoder_state(id);
            let plan = lock(&self.supervision).no_connection(
                Instant::now(),
                SystemTime::now(),
                pool.as_ref(),
            );
            self.report(&plan.events);
            self.publish_status();
            return;
        };
        let conn_id = pooled.id();
        tracing::debug!(encoder_id = %id, connection_id = %conn_id, reason = "health_check", "checked out");
        let conn = pooled.get_ref().clone();
        let relogins_before = conn.stats().relogins;
        let stack = build_stack(
            id,
            conn.clone(),
            &self.metrics_layer,
            &s.checker,
            &s.thermal,
        );
        let expectations = Expectations {
            expect_streaming: self.config.expect_streaming,
            expect_recording: self.config.expect_recording,
        };
        let health = s
            .checker
            .perform_health_check_with(id, conn_id, stack.clone(), &expectations)
            .await;
        let device_metrics = s.metrics.device();
        for _ in 0..conn.stats().relogins.saturating_sub(relogins_before) {
            tracing::info!(encoder_id = %id, connection_id = %conn_id, reason = "relogin", "session expired; logged in again");
            device_metrics.recovery_action(id, "relogin", "ok");
        }
        let readings = *health.readings();
        let switch_profile = readings
            .temperature
            .and_then(|c| s.thermal.record_device_temperature(id, c).switch_profile());
        let device_auto_recover = self
            .device_auto_recover(&stack, readings.stream_state)
            .await;
        let plan = lock(&self.supervision).checked(
            Instant::now(),
            SystemTime::now(),
            health,
            CheckFindings {
                device_auto_recover,
                switch_profile,
            },
        );
        if plan.replace_connection {
            // The connection is in an unknown state; the pool replaces it (with backoff
            // if the device stays away).
            pooled.mark_broken();
            device_metrics.recovery_action(id, "reconnect", "started");
        } else {
            s.thermal.review(id, conn_id, plan.connection_unhealthy);
        }
        self.report(&plan.events);
        self.carry_out(&plan, &stack).await;
        drop(pooled);
        self.publish_status();
    }

    /// The device's own auto-recovery setting: from the mirror when it knows, else
    /// asked only when the supervision says the answer matters.
    async fn device_auto_recover(
        &self,
        stack: &EncoderStack,
        stream_state: Option<i64>,
    ) -> Option<bool> {
        if let Some(m) = self.shared.checker.mirror_state(&self.id) {
            if let Some(v) = m.auto_recover_streaming.value() {
                return Some(v);
            }
        }
        if !lock(&self.supervision).needs_auto_recover_setting(stream_state) {
            return None;
        }
        Box::pin(stack.get_int(names::AUTO_RECOVER_STREAMING))
            .await
            .ok()
            .map(|v| v != 0)
    }

    /// Does what the plan says, in order, and reports each outcome back. In a
    /// cluster each action first asks the fence: an action this node may not take is
    /// not sent, and the supervision is told so (`action_not_taken`): the try is
    /// taken back uncounted, so a node that may not act for a while neither gives up
    /// nor grows a backoff, and acts at its next check once it may.
    async fn carry_out(&self, plan: &Plan, stack: &EncoderStack) {
        for action in &plan.actions {
            let events = match self.fence(action) {
                Err(not_acting) => lock(&self.supervision).action_not_taken(
                    Instant::now(),
                    SystemTime::now(),
                    action,
                    &not_acting.to_string(),
                ),
                Ok(deadline) => {
                    let error = self.take(stack, action, deadline).await;
                    lock(&self.supervision).action_done(
                        Instant::now(),
                        SystemTime::now(),
                        action,
                        error.as_deref(),
                    )
                }
            };
            self.report(&events);
        }
    }

    /// Sends one action, bounded by `deadline` in a cluster (a request still queued
    /// then is dropped before it reaches the device); logs and counts it. Answers the
    /// error, if any.
    async fn take(
        &self,
        stack: &EncoderStack,
        action: &Action,
        deadline: Option<Duration>,
    ) -> Option<String> {
        let id = &self.id;
        // Boxed, like every request a check may or may not make: actions are rare,
        // and inline their futures would be part of every check's.
        let act = Box::pin(act(stack, action));
        let result = match deadline {
            None => act.await,
            Some(deadline) => tokio::time::timeout(deadline, act)
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "no answer within {deadline:?}, the most an action may take once the \
                         cluster allowed it"
                    )
                    .into())
                }),
        };
        let error = result.err().map(|e| e.to_string());
        let label = action.label();
        match &error {
            None => tracing::info!(encoder_id = %id, reason = label, ?action, "done"),
            Some(error) => {
                tracing::warn!(encoder_id = %id, reason = label, ?action, %error, "failed")
            }
        }
        self.shared.metrics.device().recovery_action(
            id,
            label,
            if error.is_some() { "error" } else { "ok" },
        );
        error
    }

    /// Whether this loop may take `action` now, and within what time it must end;
    /// `Ok(None)`: no cluster, no limit. A refusal is logged once (and acting again).
    fn fence(&self, action: &Action) -> Result<Option<Duration>, NotActing> {
        let Some(cluster) = self.shared.cluster.get() else {
            return Ok(None);
        };
        let verdict = cluster.permit(self.id.as_str());
        let reason = verdict.as_ref().err().map(NotActing::reason);
        let before = std::mem::replace(&mut *lock(&self.refused), reason);
        match (&verdict, before) {
            (Err(why), before) if before != reason => tracing::warn!(
                encoder_id = %self.id,
                reason = why.reason(),
                owner = why.owner(),
                ?action,
                "{why}; action not taken"
            ),
            (Ok(()), Some(_)) => {
                tracing::info!(encoder_id = %self.id, reason = "acting", "this node acts on the encoder again")
            }
            _ => {}
        }
        verdict.map(|()| Some(cluster.action_deadline()))
    }

    /// Logs what happened and counts it.
    fn report(&self, events: &[SupervisionEvent]) {
        let id = &self.id;
        let metrics = self.shared.metrics.device();
        for event in events {
            match event {
                SupervisionEvent::Reconcile(e) => match *e {
                    ReconcileEvent::Diverged { activity, observed } => tracing::warn!(
                        encoder_id = %id,
                        reason = "not_in_desired_state",
                        state = observed,
                        "{} not {}",
                        activity.as_str(),
                        activity.active_name()
                    ),
                    ReconcileEvent::Recovered { activity, attempts } => {
                        tracing::info!(encoder_id = %id, reason = "recovered", attempts, "{} {} again", activity.as_str(), activity.active_name());
                        metrics.recovery_action(id, restart_label(activity), "recovered");
                    }
                    ReconcileEvent::AttemptFailed { activity, attempt } => {
                        tracing::warn!(encoder_id = %id, reason = "attempt_failed", attempt, "{} not {} after the try", activity.as_str(), activity.active_name())
                    }
                    ReconcileEvent::GaveUp { activity, attempts } => {
                        tracing::error!(encoder_id = %id, reason = "gave_up", attempts, "{} still not {}; giving up for now", activity.as_str(), activity.active_name());
                        metrics.recovery_action(id, restart_label(activity), "gave_up");
                    }
                    ReconcileEvent::DeferredToDevice { activity } => tracing::info!(
                        encoder_id = %id,
                        reason = "device_auto_recover",
                        "{} failing; the device recovers it itself",
                        activity.as_str()
                    ),
                },
                SupervisionEvent::Reachable { failed_checks } => {
                    tracing::info!(encoder_id = %id, reason = "reconnected", failed_checks, "encoder reachable again");
                    metrics.recovery_action(id, "reconnect", "ok");
                }
                SupervisionEvent::Unreachable { detail } => {
                    tracing::warn!(encoder_id = %id, reason = "unreachable", %detail, "encoder does not answer")
                }
                SupervisionEvent::LevelChanged { from, to } => {
                    let summary = lock(&self.supervision).status().summary();
                    if *to == StatusLevel::Healthy {
                        tracing::info!(encoder_id = %id, reason = "status", from = from.as_str(), "{summary}");
                    } else {
                        tracing::warn!(encoder_id = %id, reason = "status", from = from.as_str(), "{summary}");
                    }
                }
            }
        }
    }

    /// Exports the status to the metric families.
    fn publish_status(&self) {
        let (status, health, reachable) = {
            let sup = lock(&self.supervision);
            let report = sup.report(Instant::now());
            (report.status, report.last_health, report.reachable)
        };
        let id = &self.id;
        // The first call (the loop's start) creates the series at 0.
        let budget = self.shared.metrics.budget();
        let refused = self.device.budget_refused();
        let before = budget.refused(id).get();
        budget.record_refused_total(id, refused);
        if refused > before {
            tracing::warn!(encoder_id = %id, reason = "request_budget", refused = refused - before,
                budget = ?self.device.config().request_budget(), "request budget used up; requests not sent");
        }
        let m = self.shared.metrics.device();
        m.set_encoder_status(id, status.level.as_str());
        m.set_encoder_health_score(id, status.health_score);
        m.set_in_desired_state(id, status.in_desired_state);
        if let Some(up) = reachable {
            m.set_encoder_up(id, up);
        }
        self.shared.changes.touch(id.as_str());
        if let Some(r) = health.as_ref().map(|h| *h.readings()) {
            if let Some(state) = r.stream() {
                m.set_stream_state(id, state);
            }
            if let Some(state) = r.record() {
                m.set_record_state(id, state);
            }
            if let Some(media) = r.media_available {
                m.set_media_available(id, media as f64);
            }
        }
    }
}

/// One action, as the device requests it takes.
async fn act(stack: &EncoderStack, action: &Action) -> Result<(), tower::BoxError> {
    match *action {
        Action::Start {
            activity: Activity::Stream,
            ..
        } => stack.start_streaming().await,
        Action::Start {
            activity: Activity::Record,
            ..
        } => stack.start_recording().await,
        Action::Stop {
            activity: Activity::Stream,
            ..
        } => stack.stop_streaming().await,
        Action::Stop {
            activity: Activity::Record,
            ..
        } => stack.stop_recording().await,
        Action::SwitchProfile { profile } => stack
            .set_param(names::STREAMING_PROFILE, profile)
            .await
            .map(|_| ()),
    }
}

fn restart_label(activity: Activity) -> &'static str {
    match activity {
        Activity::Stream => "restart_stream",
        Activity::Record => "restart_recording",
    }
}

/// Waits for the mirror to publish; answers whether the change calls for a check.
/// Without a mirror (or once it is gone) it never completes.
async fn mirror_changed(
    mirror: &mut Option<watch::Receiver<DeviceState>>,
    seen: &mut Option<DeviceState>,
) -> bool {
    let Some(rx) = mirror.as_mut() else {
        return std::future::pending().await;
    };
    if rx.changed().await.is_err() {
        *mirror = None;
        return false;
    }
    let now = rx.borrow_and_update().clone();
    let calls = seen
        .as_ref()
        .is_some_and(|before| EncoderSupervision::event_calls_for_check(before, &now));
    *seen = Some(now);
    calls
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Signal;

    #[tokio::test(start_paused = true)]
    async fn checks_fall_due_on_one_grid_never_earlier() {
        use super::on_grid;
        let ms = Duration::from_millis;
        let now = tokio::time::Instant::now();
        // A point of the 200 ms grid (wherever the process's grid started), 10 s on.
        let g = on_grid(now + ms(10_000), now);
        assert_eq!(on_grid(g, now), g, "on the grid already: unchanged");
        // Two loops whose checks fall in one step of the grid wake together, at its
        // end: never earlier than asked, less than a step later.
        let a = on_grid(g + ms(1), now);
        let b = on_grid(g + ms(199), now);
        assert_eq!(a, b);
        assert_eq!(a, g + ms(200));
        assert_eq!(on_grid(g + ms(201), now), g + ms(400));
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_wait_gets_a_finer_grid_and_a_tiny_one_none() {
        use super::on_grid;
        let ms = Duration::from_millis;
        let now = tokio::time::Instant::now();
        let g = on_grid(now + ms(10_000), now);
        // A check 1 s away moves by at most 50 ms (a twentieth), onto the same grid.
        let due = g + ms(1);
        assert_eq!(on_grid(due, due - ms(1_000)), g + ms(50));
        // Under 200 ms away (the shortest interval is 100 ms): not moved at all.
        assert_eq!(on_grid(now + ms(150), now), now + ms(150));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_sent_while_the_loop_is_busy_is_not_lost() {
        let signal = Signal::default();
        // The loop is checking (not waiting) when the stop comes: its next wait
        // returns at once instead of sleeping until the next check.
        signal.stop();
        tokio::time::timeout(Duration::from_secs(1), signal.wake.notified())
            .await
            .expect("the wake-up was kept for the next wait");
        tokio::time::timeout(Duration::from_secs(1), signal.until_stopped())
            .await
            .expect("the stop was kept for the next wait");
    }

    #[tokio::test(start_paused = true)]
    async fn a_wake_is_not_a_stop() {
        let signal = Signal::default();
        signal.wake();
        assert!(!signal.stopped());
        let waited = tokio::time::timeout(Duration::from_secs(1), signal.until_stopped()).await;
        assert!(waited.is_err(), "a hold's wake-up must not end the loop");
        signal.stop();
        assert!(signal.stopped());
    }
}
