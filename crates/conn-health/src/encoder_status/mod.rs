//! One status per encoder, with a level and the reasons for it: what an operator, an
//! alert and a dashboard read. Computed here, in one place, from reachability, the last
//! health check and the desired-state machine.

mod reason;

#[cfg(test)]
mod tests;

use std::time::SystemTime;

use conn_core::EncoderPoolState;
use serde::Serialize;
use tokio::time::Instant;

pub use self::reason::{ReasonCode, StatusReason};
use crate::{
    config::Limits,
    reconcile::{Reconciler, TrackPhase, TrackReport},
    score::{Scoring, Thresholds},
    status::{CheckOutcome, HealthStatus},
    text::bounded,
};

/// The level of an encoder's status, worst first in [`StatusLevel::ALL`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusLevel {
    /// The device does not answer (refused, timed out, login refused).
    Unreachable,
    /// Not in its desired state, or health below the degraded threshold.
    Critical,
    /// Worth a look: health below the healthy threshold, device overheating, media
    /// nearly full, link errors rising.
    Degraded,
    /// Not known yet (no check has reached the device since the start).
    Unknown,
    /// Paused for maintenance: observed, never acted on.
    Held,
    /// In its desired state and healthy.
    Healthy,
}

impl StatusLevel {
    /// Every level, worst first.
    pub const ALL: [StatusLevel; 6] = [
        Self::Unreachable,
        Self::Critical,
        Self::Degraded,
        Self::Unknown,
        Self::Held,
        Self::Healthy,
    ];

    /// A stable lowercase label (`status` label of `helo_encoder_status`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Critical => "critical",
            Self::Unreachable => "unreachable",
            Self::Unknown => "unknown",
            Self::Held => "held",
        }
    }
}

/// Whether the device answered, as the supervisor last found out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Reachability {
    /// Nothing known yet (the pool is still warming, no check has run).
    #[default]
    NotYetChecked,
    /// The last check reached the device.
    Reachable,
    /// The device did not answer: why.
    Unreachable {
        /// The cause, for people (bounded).
        detail: String,
    },
    /// The device refused the password.
    LoginRefused,
}

impl Reachability {
    /// From the pool's state, when there was no connection to check with; `None`
    /// when the pool gives no verdict (warming, or every connection busy).
    pub fn from_pool(state: Option<&EncoderPoolState>) -> Option<Self> {
        match state? {
            EncoderPoolState::AuthFailed => Some(Self::LoginRefused),
            EncoderPoolState::Unreachable {
                consecutive_failures,
                retry_in,
            } => Some(Self::Unreachable {
                detail: format!(
                    "{consecutive_failures} connection attempts failed; next in {:.0} s",
                    retry_in.as_secs_f64()
                ),
            }),
            _ => None,
        }
    }

    /// From a health check: unreachable when its connectivity probe failed.
    pub fn from_check(status: &HealthStatus) -> Self {
        match status.error_class() {
            None => Self::Reachable,
            Some(class) => {
                let detail = status
                    .check(crate::CheckKind::BasicConnectivity)
                    .map(|c| c.detail.clone())
                    .unwrap_or_else(|| class.as_str().to_string());
                Self::Unreachable {
                    detail: bounded(&detail),
                }
            }
        }
    }

    /// Whether the device answered.
    pub fn is_reachable(&self) -> bool {
        matches!(self, Self::Reachable)
    }
}

/// The limits a status is judged by: the checks' limits and the score thresholds, so
/// that the status and the checks never disagree.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusPolicy {
    /// Device temperature, media and latency limits.
    pub limits: Limits,
    /// Score thresholds of healthy and degraded.
    pub thresholds: Thresholds,
    /// The score an encoder out of its desired state may show at most.
    pub critical_cap: f64,
}

impl Default for StatusPolicy {
    fn default() -> Self {
        Self::from_health(&Limits::default(), &Scoring::default())
    }
}

impl StatusPolicy {
    /// The policy of a checker configured with `limits` and `scoring`.
    pub fn from_health(limits: &Limits, scoring: &Scoring) -> Self {
        Self {
            limits: limits.clone(),
            thresholds: scoring.thresholds,
            critical_cap: scoring.critical_cap,
        }
    }
}

/// An encoder's status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EncoderStatus {
    /// The level.
    pub level: StatusLevel,
    /// Why, worst first; empty when healthy.
    pub reasons: Vec<StatusReason>,
    /// The current health score, 0–100; `None` while unreachable or unknown.
    pub health_score: Option<f64>,
    /// The last score a check that reached the device gave, kept while unreachable.
    pub last_score: Option<f64>,
    /// When that score was taken.
    #[serde(skip)]
    pub last_score_at: Option<SystemTime>,
    /// Since when the level has been what it is.
    #[serde(skip)]
    pub since: SystemTime,
    /// Whether the stream and record states are the desired ones (`None`: unknown).
    pub in_desired_state: Option<bool>,
}

impl Default for EncoderStatus {
    fn default() -> Self {
        Self {
            level: StatusLevel::Unknown,
            reasons: vec![StatusReason::new(ReasonCode::NotChecked, "not checked yet")],
            health_score: None,
            last_score: None,
            last_score_at: None,
            since: SystemTime::now(),
            in_desired_state: None,
        }
    }
}

impl EncoderStatus {
    /// The first reason's message, or the level's name.
    pub fn summary(&self) -> String {
        match self.reasons.first() {
            Some(r) => format!("{}: {}", self.level.as_str(), r.message),
            None => self.level.as_str().to_string(),
        }
    }
}

/// What a status is computed from.
#[derive(Debug)]
pub struct StatusInputs<'a> {
    /// Whether the device answered.
    pub reachability: &'a Reachability,
    /// The last check that reached the device.
    pub health: Option<&'a HealthStatus>,
    /// The desired-state machine.
    pub reconciler: &'a Reconciler,
    /// Now, on the supervisor's clock.
    pub now: Instant,
}

/// Keeps one encoder's status: the memory a status needs (last score, link errors,
/// since when the level holds).
#[derive(Debug, Clone)]
pub struct StatusTracker {
    policy: StatusPolicy,
    previous_link_errors: Option<i64>,
    status: EncoderStatus,
}

impl StatusTracker {
    /// A tracker judging by `policy`; the status starts as unknown.
    pub fn new(policy: StatusPolicy) -> Self {
        Self {
            policy,
            previous_link_errors: None,
            status: EncoderStatus::default(),
        }
    }

    /// The current status.
    pub fn status(&self) -> &EncoderStatus {
        &self.status
    }

    /// The policy it judges by.
    pub fn policy(&self) -> &StatusPolicy {
        &self.policy
    }

    /// Recomputes the status; `wall` stamps scores and level changes.
    pub fn update(&mut self, inputs: &StatusInputs<'_>, wall: SystemTime) -> &EncoderStatus {
        let tracks = inputs.reconciler.report(inputs.now);
        let mut reasons = Vec::new();
        let mut level = StatusLevel::Healthy;
        let mut health_score = None;
        let raise = |level_now: &mut StatusLevel, to: StatusLevel| {
            if to < *level_now {
                *level_now = to;
            }
        };
        match inputs.reachability {
            Reachability::NotYetChecked => {
                raise(&mut level, StatusLevel::Unknown);
                reasons.push(StatusReason::new(ReasonCode::NotChecked, "not checked yet"));
            }
            Reachability::LoginRefused => {
                raise(&mut level, StatusLevel::Unreachable);
                reasons.push(StatusReason::new(
                    ReasonCode::LoginRefused,
                    "the device refused the login (wrong password?)",
                ));
            }
            Reachability::Unreachable { detail } => {
                raise(&mut level, StatusLevel::Unreachable);
                reasons.push(StatusReason::new(
                    ReasonCode::Unreachable,
                    format!("no answer: {detail}"),
                ));
            }
            Reachability::Reachable => match inputs.health {
                None => {
                    raise(&mut level, StatusLevel::Unknown);
                    reasons.push(StatusReason::new(ReasonCode::NotChecked, "not checked yet"));
                }
                Some(health) => {
                    let score = self.judge_health(health, &tracks, &mut level, &mut reasons);
                    self.status.last_score = Some(score);
                    self.status.last_score_at = Some(wall);
                    health_score = Some(score);
                }
            },
        }
        // Out of its desired state is said whatever else is known: the last state seen
        // stands until a check says otherwise.
        if !inputs.reachability.is_reachable() {
            for t in &tracks {
                if t.in_desired_state == Some(false) {
                    reasons.push(track_reason(t));
                }
            }
        }
        if inputs.reconciler.is_held() {
            reasons.insert(
                0,
                StatusReason::new(
                    ReasonCode::Held,
                    "held for maintenance: observed, never acted on",
                ),
            );
            level = StatusLevel::Held;
        }
        if level != self.status.level {
            self.status.since = wall;
        }
        self.status.level = level;
        self.status.reasons = reasons;
        self.status.health_score = health_score;
        self.status.in_desired_state = inputs.reconciler.in_desired_state();
        &self.status
    }

    /// Judges a check that reached the device; answers the encoder's score.
    fn judge_health(
        &mut self,
        health: &HealthStatus,
        tracks: &[TrackReport; 2],
        level: &mut StatusLevel,
        reasons: &mut Vec<StatusReason>,
    ) -> f64 {
        let p = &self.policy;
        let mut raise = |to: StatusLevel| {
            if to < *level {
                *level = to;
            }
        };
        let mut score = health.health_score();
        let out_of_desired: Vec<&TrackReport> = tracks
            .iter()
            .filter(|t| t.in_desired_state == Some(false))
            .collect();
        for t in &out_of_desired {
            raise(StatusLevel::Critical);
            reasons.push(track_reason(t));
        }
        if !out_of_desired.is_empty() {
            score = score.min(p.critical_cap);
        }
        let readings = health.readings();
        if let Some(celsius) = readings.temperature {
            if celsius >= p.limits.device_temp_fail_c {
                raise(StatusLevel::Critical);
                reasons.push(StatusReason::new(
                    ReasonCode::DeviceOverheated,
                    format!(
                        "device at {celsius:.0} °C (critical from {:.0} °C)",
                        p.limits.device_temp_fail_c
                    ),
                ));
            } else if celsius > p.limits.device_temp_warn_c {
                raise(StatusLevel::Degraded);
                reasons.push(StatusReason::new(
                    ReasonCode::DeviceOverheated,
                    format!(
                        "device at {celsius:.0} °C (limit {:.0} °C)",
                        p.limits.device_temp_warn_c
                    ),
                ));
            }
        }
        if let Some(media) = readings.media_available {
            let media = media as f64;
            if media <= p.limits.media_fail_pct {
                raise(StatusLevel::Critical);
                reasons.push(StatusReason::new(
                    ReasonCode::MediaLow,
                    format!(
                        "media {media:.0} % free (critical at {:.0} %)",
                        p.limits.media_fail_pct
                    ),
                ));
            } else if media < p.limits.media_warn_pct {
                raise(StatusLevel::Degraded);
                reasons.push(StatusReason::new(
                    ReasonCode::MediaLow,
                    format!(
                        "media {media:.0} % free (warns below {:.0} %)",
                        p.limits.media_warn_pct
                    ),
                ));
            }
        }
        if let Some(now) = readings.link_errors {
            if let Some(before) = self.previous_link_errors.filter(|b| now > *b) {
                raise(StatusLevel::Degraded);
                reasons.push(StatusReason::new(
                    ReasonCode::LinkErrorsRising,
                    format!("link errors grew from {before} to {now}"),
                ));
            }
            self.previous_link_errors = Some(now);
        }
        let failing: Vec<String> = health
            .checks()
            .iter()
            .filter(|c| matches!(c.outcome, CheckOutcome::Failed | CheckOutcome::Warning))
            .map(|c| format!("{}: {}", c.name.as_str(), c.detail))
            .collect();
        let low = if score < p.thresholds.degraded {
            Some(StatusLevel::Critical)
        } else if score < p.thresholds.healthy {
            Some(StatusLevel::Degraded)
        } else {
            None
        };
        if let Some(to) = low {
            raise(to);
            // A score held down by the state already explained adds nothing new.
            if out_of_desired.is_empty() || to == StatusLevel::Degraded {
                reasons.push(StatusReason::new(
                    ReasonCode::LowScore,
                    bounded(&format!("health score {score:.0}: {}", failing.join("; "))),
                ));
            }
        }
        score
    }
}

/// Why one replicator is not in its desired state, and what is being done about it.
fn track_reason(t: &TrackReport) -> StatusReason {
    let what = t.activity.active_name();
    let seen = t
        .last_seen
        .map(|n| state_name(t.activity, n))
        .unwrap_or("unknown");
    let failing = matches!(t.last_seen, Some(3 | 4));
    let code = match (t.activity, failing) {
        (crate::Activity::Stream, false) => ReasonCode::NotStreaming,
        (crate::Activity::Stream, true) => ReasonCode::StreamFailing,
        (crate::Activity::Record, false) => ReasonCode::NotRecording,
        (crate::Activity::Record, true) => ReasonCode::RecordFailing,
    };
    let since = t
        .diverged_for
        .filter(|d| d.as_secs() > 0)
        .map(|d| format!(" for {}", crate::text::human_duration(d)))
        .unwrap_or_default();
    let due = t
        .due_in
        .map(crate::text::human_duration)
        .unwrap_or_default();
    let doing = match t.phase {
        TrackPhase::Settled => String::new(),
        TrackPhase::Diverged { .. } => format!("; grace period, acting in {due}"),
        TrackPhase::Stopping { attempt, .. } => {
            format!("; restarting (try {attempt} of {})", t.max_attempts)
        }
        TrackPhase::Starting { attempt, .. } => {
            format!("; starting (try {attempt} of {}), waiting up to {due}", t.max_attempts)
        }
        TrackPhase::Backoff { attempt, .. } => {
            format!("; try {attempt} of {} failed, next in {due}", t.max_attempts)
        }
        TrackPhase::GaveUp { attempts, .. } => {
            return StatusReason::new(
                ReasonCode::RecoveryGaveUp,
                format!(
                    "{} {seen}{since}, should be {what}; gave up after {attempts} tries, next round in {due}",
                    t.activity.as_str()
                ),
            )
        }
        TrackPhase::DeferredToDevice => {
            "; the device's own auto-recovery is on, left to the device".to_string()
        }
        TrackPhase::Held => "; held".to_string(),
        TrackPhase::NotActing { .. } => "; this supervisor may not act on it now".to_string(),
    };
    StatusReason::new(
        code,
        format!(
            "{} {seen}{since}, should be {what}{doing}",
            t.activity.as_str()
        ),
    )
}

fn state_name(activity: crate::Activity, n: i64) -> &'static str {
    match activity {
        crate::Activity::Stream => helo_transport::StreamState::from_value(n).as_str(),
        crate::Activity::Record => helo_transport::RecordState::from_value(n).as_str(),
    }
}
