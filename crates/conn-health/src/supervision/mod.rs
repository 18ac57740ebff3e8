//! One encoder's supervision as the library decides it: after every check (or when no
//! connection was there to check with) it reconciles the desired state, computes the
//! status, and says what to do and when to look again. The supervisor's loop only
//! carries this out.

use std::time::{Duration, SystemTime};

use conn_core::EncoderPoolState;
use serde::Serialize;
use tokio::time::Instant;

use crate::{
    encoder_status::{
        EncoderStatus, Reachability, StatusInputs, StatusLevel, StatusPolicy, StatusTracker,
    },
    mirror::{DeviceState, MirrorStatus},
    reconcile::{
        Action, DesiredState, Observation, ReconcileEvent, ReconcilePolicy, Reconciler, TrackReport,
    },
    schedule::CheckSchedule,
    status::{HealthLevel, HealthStatus},
    text::bounded,
};

/// Everything that shapes one encoder's supervision.
#[derive(Debug, Clone, PartialEq)]
pub struct SupervisionPolicy {
    /// Desired-state reconciliation.
    pub reconcile: ReconcilePolicy,
    /// How the status is judged.
    pub status: StatusPolicy,
    /// Check intervals.
    pub schedule: CheckSchedule,
    /// The least time between two checks that device events trigger, so a flapping
    /// device cannot turn its events into a request storm (default 100 ms).
    pub min_event_gap: Duration,
    /// The first check falls within this (spread over the fleet, and giving the pool
    /// a moment to warm; default 2 s).
    pub first_check_within: Duration,
}

impl Default for SupervisionPolicy {
    fn default() -> Self {
        Self {
            reconcile: ReconcilePolicy::default(),
            status: StatusPolicy::default(),
            schedule: CheckSchedule::default(),
            min_event_gap: Duration::from_millis(100),
            first_check_within: Duration::from_secs(2),
        }
    }
}

/// What a check found out beyond its [`HealthStatus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CheckFindings {
    /// The device's own `eParamID_AutoRecoverStreaming`, when known.
    pub device_auto_recover: Option<bool>,
    /// The thermal model asks for this lighter streaming profile.
    pub switch_profile: Option<u8>,
}

/// What to do after a check.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// Device actions, in order; report each with [`EncoderSupervision::action_done`].
    pub actions: Vec<Action>,
    /// What happened, for logs and metrics.
    pub events: Vec<SupervisionEvent>,
    /// The connection checked with did not answer: replace it.
    pub replace_connection: bool,
    /// The connection itself (not the device) judged unhealthy: a reason to cool it.
    pub connection_unhealthy: bool,
}

/// Something worth a log line and a metric.
#[derive(Debug, Clone, PartialEq)]
pub enum SupervisionEvent {
    /// From the desired-state machine.
    Reconcile(ReconcileEvent),
    /// The device answers again after `failed_checks` checks that could not reach it.
    Reachable {
        /// Checks in a row that failed before.
        failed_checks: u32,
    },
    /// The device stopped answering.
    Unreachable {
        /// Why (bounded text).
        detail: String,
    },
    /// The status level changed.
    LevelChanged {
        /// The level before.
        from: StatusLevel,
        /// The level now.
        to: StatusLevel,
    },
}

/// One action carried out, for the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionRecord {
    /// The action's label (`restart_stream`, …).
    pub action: &'static str,
    /// `ok`, `error`, or `not_taken` (this supervisor may not act on the encoder).
    pub outcome: &'static str,
    /// The device's error, if any (bounded, escaped).
    pub error: Option<String>,
    /// When it was done.
    #[serde(skip)]
    pub at: SystemTime,
}

/// Everything the admin API shows about one encoder's supervision.
#[derive(Debug, Clone)]
pub struct SupervisionReport {
    /// The status.
    pub status: EncoderStatus,
    /// The stream and record replicators' reconciliation.
    pub tracks: [TrackReport; 2],
    /// What the encoder should be doing.
    pub desired: DesiredState,
    /// Paused for maintenance.
    pub held: bool,
    /// Checks done.
    pub checks: u64,
    /// Checks in a row that did not reach the device.
    pub consecutive_failures: u32,
    /// When the last check ran.
    pub last_check_at: Option<SystemTime>,
    /// The last check that reached the device.
    pub last_health: Option<HealthStatus>,
    /// The last device action.
    pub last_action: Option<ActionRecord>,
    /// The device's auto-recovery setting, when known.
    pub device_auto_recover: Option<bool>,
    /// Whether the device answered the last check (`None`: not checked yet).
    pub reachable: Option<bool>,
}

/// One encoder's supervision state.
#[derive(Debug, Clone)]
pub struct EncoderSupervision {
    // The policy's reconciliation and status parts live in the reconciler and the
    // tracker; a whole copy here as well was a fifth of an encoder's supervision state.
    schedule: CheckSchedule,
    min_event_gap: Duration,
    first_check_within: Duration,
    reconciler: Reconciler,
    tracker: StatusTracker,
    reachability: Reachability,
    last_health: Option<HealthStatus>,
    checks: u64,
    consecutive_failures: u32,
    last_check_at: Option<SystemTime>,
    last_check: Option<Instant>,
    last_action: Option<ActionRecord>,
    device_auto_recover: Option<bool>,
}

impl EncoderSupervision {
    /// An encoder that should be in `desired`, held (maintenance) or not.
    pub fn new(desired: DesiredState, held: bool, policy: SupervisionPolicy) -> Self {
        let SupervisionPolicy {
            reconcile,
            status,
            schedule,
            min_event_gap,
            first_check_within,
        } = policy;
        let mut reconciler = Reconciler::new(desired, reconcile);
        reconciler.set_held(held);
        let tracker = StatusTracker::new(status);
        let mut s = Self {
            schedule,
            min_event_gap,
            first_check_within,
            reconciler,
            tracker,
            reachability: Reachability::NotYetChecked,
            last_health: None,
            checks: 0,
            consecutive_failures: 0,
            last_check_at: None,
            last_check: None,
            last_action: None,
            device_auto_recover: None,
        };
        s.recompute(Instant::now(), SystemTime::now());
        s
    }

    /// The policy.
    pub fn policy(&self) -> SupervisionPolicy {
        SupervisionPolicy {
            reconcile: *self.reconciler.policy(),
            status: self.tracker.policy().clone(),
            schedule: self.schedule,
            min_event_gap: self.min_event_gap,
            first_check_within: self.first_check_within,
        }
    }

    /// The status.
    pub fn status(&self) -> &EncoderStatus {
        self.tracker.status()
    }

    /// Whether the check that is about to run should ask the device for its
    /// auto-recovery setting: only when it decides between acting and deferring.
    pub fn needs_auto_recover_setting(&self, stream_state: Option<i64>) -> bool {
        self.reconciler.needs_auto_recover_setting(stream_state)
    }

    /// When the first check falls due; `unit` is a random number in `[0, 1)` that
    /// spreads a fleet's first checks.
    pub fn first_check_at(&self, now: Instant, unit: f64) -> Instant {
        now + self
            .first_check_within
            .min(self.schedule.unhealthy_interval)
            .mul_f64(0.5 + unit.clamp(0.0, 1.0) * 0.5)
    }

    /// When the next check falls due after the last one; `unit` is a random number in
    /// `[0, 1)` for the schedule's jitter. Sooner while the encoder is not healthy, and
    /// never later than the desired-state machine wants to look.
    pub fn next_check_at(&self, now: Instant, unit: f64) -> Instant {
        let level = self.status().level;
        let unhealthy = !matches!(level, StatusLevel::Healthy | StatusLevel::Held);
        let scheduled = now + self.schedule.next_delay(unhealthy, unit);
        match self.reconciler.due_at() {
            Some(due) => scheduled.min(due.max(now)),
            None => scheduled,
        }
    }

    /// The earliest a check triggered by a device event may run.
    pub fn event_check_at(&self, now: Instant) -> Instant {
        self.last_check
            .map_or(now, |t| (t + self.min_event_gap).max(now))
    }

    /// Whether a change the event mirror published calls for a check now: the stream
    /// or record state moved, or the event connection was lost (the device may be).
    pub fn event_calls_for_check(before: &DeviceState, after: &DeviceState) -> bool {
        let states = |s: &DeviceState| {
            (
                s.stream_state.value().map(|v| v.value()),
                s.record_state.value().map(|v| v.value()),
            )
        };
        let lost =
            before.status == MirrorStatus::Live && after.status == MirrorStatus::Reconnecting;
        states(before) != states(after) || lost
    }

    /// A check finished at `now` (`wall` is the wall clock, for the API).
    pub fn checked(
        &mut self,
        now: Instant,
        wall: SystemTime,
        health: HealthStatus,
        found: CheckFindings,
    ) -> Plan {
        let mut plan = Plan::default();
        self.note_check(now, wall);
        let reach = Reachability::from_check(&health);
        self.note_reachability(reach, &mut plan);
        if !self.reachability.is_reachable() {
            plan.replace_connection = true;
        } else {
            if found.device_auto_recover.is_some() {
                self.device_auto_recover = found.device_auto_recover;
            }
            let readings = health.readings();
            let decision = self.reconciler.observe(
                now,
                &Observation {
                    stream_state: readings.stream_state,
                    record_state: readings.record_state,
                    device_auto_recover: self.device_auto_recover,
                    switch_profile: found.switch_profile,
                },
            );
            plan.actions = decision.actions;
            plan.events
                .extend(decision.events.into_iter().map(SupervisionEvent::Reconcile));
            plan.connection_unhealthy = health.connection_level() != HealthLevel::Healthy;
            self.last_health = Some(health);
        }
        self.recompute_into(now, wall, &mut plan);
        plan
    }

    /// No connection was there to check with; the pool's state says why.
    pub fn no_connection(
        &mut self,
        now: Instant,
        wall: SystemTime,
        pool: Option<&EncoderPoolState>,
    ) -> Plan {
        let mut plan = Plan::default();
        self.note_check(now, wall);
        match Reachability::from_pool(pool) {
            Some(reach) => self.note_reachability(reach, &mut plan),
            // Warming, or every connection busy: no verdict on the device.
            None => self.consecutive_failures += 1,
        }
        // The machine still keeps its schedule (a try falling due waits for a check
        // that reaches the device).
        let decision = self.reconciler.observe(now, &Observation::default());
        plan.events
            .extend(decision.events.into_iter().map(SupervisionEvent::Reconcile));
        self.recompute_into(now, wall, &mut plan);
        plan
    }

    /// An action from a [`Plan`] was carried out; `error` is the device's refusal or
    /// the transport's failure, if any.
    pub fn action_done(
        &mut self,
        now: Instant,
        wall: SystemTime,
        action: &Action,
        error: Option<&str>,
    ) -> Vec<SupervisionEvent> {
        self.last_action = Some(ActionRecord {
            action: action.label(),
            outcome: if error.is_some() { "error" } else { "ok" },
            error: error.map(bounded),
            at: wall,
        });
        let mut events = Vec::new();
        if error.is_some() {
            let decision = self.reconciler.action_failed(now, action);
            events.extend(decision.events.into_iter().map(SupervisionEvent::Reconcile));
        }
        self.recompute(now, wall);
        events
    }

    /// An action from a [`Plan`] was not carried out because this supervisor may not
    /// act on the encoder now (in a cluster: another node owns it, or this node cannot
    /// renew its lease); `why` says so. Nothing reached the device, so no try is
    /// counted and no backoff grows: the next regular check makes the try again,
    /// and a node that may act again picks up where the round stood.
    pub fn action_not_taken(
        &mut self,
        now: Instant,
        wall: SystemTime,
        action: &Action,
        why: &str,
    ) -> Vec<SupervisionEvent> {
        self.last_action = Some(ActionRecord {
            action: action.label(),
            outcome: "not_taken",
            error: Some(bounded(why)),
            at: wall,
        });
        self.reconciler.action_not_taken(action);
        self.recompute(now, wall);
        Vec::new()
    }

    /// Pauses (`true`) or resumes reconciliation; the status follows at once.
    pub fn set_held(&mut self, held: bool, now: Instant, wall: SystemTime) {
        self.reconciler.set_held(held);
        self.recompute(now, wall);
    }

    /// Whether reconciliation is paused.
    pub fn is_held(&self) -> bool {
        self.reconciler.is_held()
    }

    /// Everything the admin API shows.
    pub fn report(&self, now: Instant) -> SupervisionReport {
        SupervisionReport {
            status: self.status().clone(),
            tracks: self.reconciler.report(now),
            desired: self.reconciler.desired(),
            held: self.reconciler.is_held(),
            checks: self.checks,
            consecutive_failures: self.consecutive_failures,
            last_check_at: self.last_check_at,
            last_health: self.last_health.clone(),
            last_action: self.last_action.clone(),
            device_auto_recover: self.device_auto_recover,
            reachable: match self.reachability {
                Reachability::NotYetChecked => None,
                ref r => Some(r.is_reachable()),
            },
        }
    }

    fn note_check(&mut self, now: Instant, wall: SystemTime) {
        self.checks += 1;
        self.last_check = Some(now);
        self.last_check_at = Some(wall);
    }

    fn note_reachability(&mut self, reach: Reachability, plan: &mut Plan) {
        let was = self.reachability.is_reachable();
        if reach.is_reachable() {
            if self.consecutive_failures > 0
                && !matches!(self.reachability, Reachability::NotYetChecked)
            {
                plan.events.push(SupervisionEvent::Reachable {
                    failed_checks: self.consecutive_failures,
                });
            }
            self.consecutive_failures = 0;
        } else {
            self.consecutive_failures += 1;
            if was || self.consecutive_failures == 1 {
                let detail = match &reach {
                    Reachability::Unreachable { detail } => detail.clone(),
                    Reachability::LoginRefused => "login refused".to_string(),
                    _ => String::new(),
                };
                plan.events.push(SupervisionEvent::Unreachable { detail });
            }
        }
        self.reachability = reach;
    }

    fn recompute_into(&mut self, now: Instant, wall: SystemTime, plan: &mut Plan) {
        let from = self.status().level;
        self.recompute(now, wall);
        let to = self.status().level;
        if from != to {
            plan.events
                .push(SupervisionEvent::LevelChanged { from, to });
        }
    }

    fn recompute(&mut self, now: Instant, wall: SystemTime) {
        self.tracker.update(
            &StatusInputs {
                reachability: &self.reachability,
                health: self.last_health.as_ref(),
                reconciler: &self.reconciler,
                now,
            },
            wall,
        );
    }
}

#[cfg(test)]
mod tests;
