//! One encoder's supervision loop: check on a schedule that follows its health, and
//! carry out what the library crates decide (cooling, stream recovery, profile switch).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use conn_core::{CoolingReason, EncoderId, EncoderPoolState};
use conn_health::{DeviceState, Expectations, RecoveryDecision, StreamObservation, StreamRecovery};
use conn_metrics::MetricsLayer;
use helo_transport::{names, HeloClientExt, StreamState};
use tokio::{sync::watch, time::Instant};

use crate::{
    config::EncoderConfig,
    fleet::{lock, Shared},
    report::EncoderReport,
    settings,
    stack::{build_stack, EncoderStack},
};

/// Everything one loop needs.
pub(crate) struct EncoderTask {
    pub(crate) id: EncoderId,
    pub(crate) config: EncoderConfig,
    pub(crate) shared: Arc<Shared>,
    pub(crate) report: Arc<Mutex<EncoderReport>>,
    pub(crate) metrics_layer: MetricsLayer,
    /// The event mirror's state, when the encoder has one: a change of stream or
    /// record state triggers a check at once instead of at the next interval.
    pub(crate) mirror: Option<watch::Receiver<DeviceState>>,
}

/// The least time between two checks that events trigger, so a flapping device
/// cannot turn its events into a request storm.
const MIN_EVENT_GAP: Duration = Duration::from_millis(100);

/// What one check concluded about the schedule.
struct Verdict {
    /// Check again at the short interval.
    unhealthy: bool,
    /// Check again no later than this (a recovery try falls due).
    recheck_at: Option<Instant>,
}

/// Runs until `stop` says so (or its sender is dropped).
pub(crate) async fn run(mut task: EncoderTask, mut stop: watch::Receiver<bool>) {
    let tunables = &task.config.tunables;
    let schedule = settings::schedule(tunables);
    let mut recovery = StreamRecovery::new(settings::recovery(tunables));
    let lateness = task.shared.metrics.check_lateness();
    // Spread the fleet's first checks, and give the pool a moment to warm.
    let first = schedule.unhealthy_interval.min(Duration::from_secs(2));
    let mut due = Instant::now() + first.mul_f64(0.5 + fastrand::f64() * 0.5);
    let mut mirror = task.mirror.take();
    let mut seen = mirror.as_ref().map(|m| replicator_states(&m.borrow()));
    let mut last_check = Instant::now();
    loop {
        let scheduled = tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = tokio::time::sleep_until(due) => true,
            changed = mirror_changed(&mut mirror, &mut seen) => {
                if !changed {
                    continue;
                }
                tokio::time::sleep_until(last_check + MIN_EVENT_GAP).await;
                false
            }
        };
        if *stop.borrow() {
            break;
        }
        if scheduled {
            if let Some(h) = &lateness {
                h.observe(Instant::now().saturating_duration_since(due).as_secs_f64());
            }
        } else {
            tracing::debug!(encoder_id = %task.id, reason = "device_event", "state changed; checking now");
        }
        last_check = Instant::now();
        // Boxed: the check's future is large (about 32 KiB), and held inline it would
        // make every encoder's idle loop that large too.
        let verdict = Box::pin(task.check_once(&mut recovery)).await;
        let mut next = Instant::now() + schedule.next_delay_random(verdict.unhealthy);
        if let Some(at) = verdict.recheck_at {
            next = next.min(at.max(Instant::now()));
        }
        due = next;
    }
}

impl EncoderTask {
    async fn check_once(&self, recovery: &mut StreamRecovery) -> Verdict {
        let s = &self.shared;
        let id = &self.id;
        let device_metrics = s.metrics.device();
        let Some(pooled) = s.warmup.get_warm_connection(id) else {
            return self.no_connection();
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
        let status = s
            .checker
            .perform_health_check_with(id, conn_id, stack.clone(), &expectations)
            .await;
        let relogins = conn.stats().relogins.saturating_sub(relogins_before);
        for _ in 0..relogins {
            tracing::info!(encoder_id = %id, connection_id = %conn_id, reason = "relogin", "session expired; logged in again");
            device_metrics.recovery_action(id, "relogin", "ok");
        }

        let reachable = status.error_class().is_none();
        device_metrics.set_encoder_up(id, reachable);
        if !reachable {
            // The probe failed: the connection is in an unknown state. The pool
            // replaces it (with backoff if the device stays away).
            pooled.mark_broken();
            device_metrics.recovery_action(id, "reconnect", "started");
            tracing::warn!(
                encoder_id = %id,
                connection_id = %conn_id,
                reason = status.error_class().map_or("other", |c| c.as_str()),
                score = status.health_score(),
                "device did not answer; replacing the connection"
            );
        } else if status.health_score() < self.config.tunables.healthy_threshold
            && s.warmup.warm_count(id) > 0
        {
            // Preventive only while another warm connection can take the work: cooling
            // takes this one out of rotation, and an encoder with no spare (say
            // max_connections = 1) would otherwise go dark for a whole cooling period.
            s.thermal
                .start_cooling(id, conn_id, CoolingReason::Preventive);
        } else if s.thermal.check_temperature(id, conn_id) {
            let reason = s
                .thermal
                .cooling_reason(id, conn_id)
                .unwrap_or(CoolingReason::HighTemperature);
            s.thermal.start_cooling(id, conn_id, reason);
        }

        let readings = *status.readings();
        if let Some(state) = readings.stream() {
            device_metrics.set_stream_state(id, state);
        }
        if let Some(state) = readings.record() {
            device_metrics.set_record_state(id, state);
        }
        let mut overheated = false;
        if let Some(celsius) = readings.temperature {
            let heat = s.thermal.record_device_temperature(id, celsius);
            overheated = heat.is_overheated();
            if let Some(profile) = heat.switch_profile() {
                match heat.apply(&stack).await {
                    Ok(_) => {
                        tracing::warn!(encoder_id = %id, reason = "device_overheated", profile, "switched to a lighter streaming profile");
                        device_metrics.recovery_action(id, "lighter_profile", "ok");
                    }
                    Err(error) => {
                        tracing::warn!(encoder_id = %id, reason = "device_overheated", %error, "could not switch the streaming profile");
                        device_metrics.recovery_action(id, "lighter_profile", "error");
                    }
                }
            }
        }

        let auto_recover = self.device_auto_recover(&stack, readings.stream()).await;
        let decision = recovery.observe(
            Instant::now(),
            StreamObservation {
                state: readings.stream(),
                expect_streaming: self.config.expect_streaming,
                device_auto_recover: auto_recover,
            },
        );
        let (recheck_at, last_recovery) = self.act(&decision, &stack).await;
        drop(pooled);

        let mut report = lock(&self.report);
        if reachable && report.consecutive_failures > 0 {
            tracing::info!(
                encoder_id = %id,
                connection_id = %conn_id,
                reason = "reconnected",
                failed_checks = report.consecutive_failures,
                "encoder reachable again"
            );
            device_metrics.recovery_action(id, "reconnect", "ok");
        }
        report.up = reachable;
        report.checks += 1;
        report.consecutive_failures = if reachable {
            0
        } else {
            report.consecutive_failures + 1
        };
        report.last_check_at = Some(wall_clock());
        report.last_problem = (!status.is_healthy()).then(|| summary(&status));
        report.recovery_attempts = recovery.attempts();
        if last_recovery.is_some() {
            report.last_recovery = last_recovery;
        }
        report.device_auto_recover = auto_recover;
        report.device_temperature = readings.temperature;
        report.device_overheated = overheated;
        report.last_health = Some(status.clone());
        Verdict {
            unhealthy: !status.is_healthy() || decision.is_recovering(),
            recheck_at,
        }
    }

    /// The device's own auto-recovery setting: from the mirror when it knows, else
    /// asked only when it matters (a failing stream that we would restart).
    async fn device_auto_recover(
        &self,
        stack: &EncoderStack,
        state: Option<StreamState>,
    ) -> Option<bool> {
        if let Some(m) = self.shared.checker.mirror_state(&self.id) {
            if let Some(v) = m.auto_recover_streaming.value() {
                return Some(v);
            }
        }
        if !(self.config.expect_streaming && state == Some(StreamState::FailingInStream)) {
            return None;
        }
        stack
            .get_int(names::AUTO_RECOVER_STREAMING)
            .await
            .ok()
            .map(|v| v != 0)
    }

    /// Carries out a recovery decision; answers when to look again and what was done.
    async fn act(
        &self,
        decision: &RecoveryDecision,
        stack: &EncoderStack,
    ) -> (Option<Instant>, Option<String>) {
        let id = &self.id;
        let metrics = self.shared.metrics.device();
        match *decision {
            RecoveryDecision::Restart { attempt } => {
                tracing::warn!(encoder_id = %id, reason = "restart_stream", attempt, "stream failing; restarting it");
                let result = async {
                    stack.stop_streaming().await?;
                    // Give the replicator a moment to leave the failed state, as an
                    // operator would, before asking it to stream again.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    stack.start_streaming().await
                }
                .await;
                let outcome = match &result {
                    Ok(()) => "ok",
                    Err(error) => {
                        tracing::warn!(encoder_id = %id, reason = "restart_stream", attempt, %error, "restart failed");
                        "error"
                    }
                };
                metrics.recovery_action(id, "restart_stream", outcome);
                // Look again soon: the stream state settles within about a second.
                (
                    Some(Instant::now() + Duration::from_millis(1500)),
                    Some(format!("restart_stream attempt {attempt}: {outcome}")),
                )
            }
            RecoveryDecision::Wait { until } => (Some(until), None),
            RecoveryDecision::GiveUp { attempts } => {
                tracing::error!(encoder_id = %id, reason = "gave_up", attempts, "stream still failing; giving up until it is healthy again");
                metrics.recovery_action(id, "restart_stream", "gave_up");
                (None, Some(format!("gave up after {attempts} attempts")))
            }
            RecoveryDecision::Recovered { attempts } => {
                tracing::info!(encoder_id = %id, reason = "recovered", attempts, "stream recovered");
                metrics.recovery_action(id, "restart_stream", "recovered");
                (None, Some(format!("recovered after {attempts} attempts")))
            }
            RecoveryDecision::DeferToDevice => {
                tracing::info!(encoder_id = %id, reason = "device_auto_recover", "stream failing; the device recovers it itself");
                (None, Some("left to the device's auto-recovery".to_string()))
            }
            RecoveryDecision::Nothing => (None, None),
        }
    }

    fn no_connection(&self) -> Verdict {
        let s = &self.shared;
        let state = s.warmup.encoder_state(&self.id);
        let (down, problem) = match &state {
            Some(EncoderPoolState::Unreachable {
                consecutive_failures,
                retry_in,
            }) => (
                true,
                format!(
                    "unreachable: {consecutive_failures} connects failed; next try in {retry_in:?}"
                ),
            ),
            Some(EncoderPoolState::AuthFailed) => (true, "wrong password".to_string()),
            _ => (false, "no warm connection yet".to_string()),
        };
        if down {
            s.metrics.device().set_encoder_up(&self.id, false);
        }
        let mut report = lock(&self.report);
        report.consecutive_failures += 1;
        if down {
            report.up = false;
        }
        report.last_check_at = Some(wall_clock());
        if report.consecutive_failures == 1 {
            tracing::warn!(encoder_id = %self.id, reason = state.as_ref().map_or("stopped", |s| s.as_str()), "{problem}");
        }
        report.last_problem = Some(problem);
        Verdict {
            unhealthy: true,
            recheck_at: None,
        }
    }
}

/// Waits for the mirror to publish; answers whether the stream or record state moved.
/// Without a mirror (or once it is gone) it never completes.
async fn mirror_changed(
    mirror: &mut Option<watch::Receiver<DeviceState>>,
    seen: &mut Option<(Option<i64>, Option<i64>)>,
) -> bool {
    let Some(rx) = mirror.as_mut() else {
        return std::future::pending().await;
    };
    if rx.changed().await.is_err() {
        *mirror = None;
        return false;
    }
    let now = replicator_states(&rx.borrow_and_update());
    let moved = seen.is_some_and(|before| before != now);
    *seen = Some(now);
    moved
}

fn replicator_states(state: &DeviceState) -> (Option<i64>, Option<i64>) {
    (
        state.stream_state.value().map(|s| s.value()),
        state.record_state.value().map(|s| s.value()),
    )
}

fn summary(status: &conn_health::HealthStatus) -> String {
    let failing: Vec<String> = status
        .checks()
        .iter()
        .filter(|c| {
            c.outcome != conn_health::CheckOutcome::Ok
                && c.outcome != conn_health::CheckOutcome::Unknown
        })
        .map(|c| format!("{}: {}", c.name.as_str(), c.detail))
        .collect();
    format!(
        "score {:.0} ({}): {}",
        status.health_score(),
        status.level().as_str(),
        failing.join("; ")
    )
}

fn wall_clock() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
