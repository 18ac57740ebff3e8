//! What the admin API shows about each encoder: for people and programs alike, so state
//! names stand beside numbers, times are RFC 3339 and numbers are rounded to what they
//! mean. The JSON shape is documented in README.md and tested.

use std::time::{Duration, SystemTime};

use conn_core::{ConnectionThermalSnapshot, EncoderPoolState, PoolStats};
use conn_health::{
    ActionRecord, Activity, CheckResult, HealthStatus, StatusReason, SupervisionReport, TrackPhase,
    TrackReport,
};
use helo_transport::{RecordState, StreamState};
use serde::Serialize;

/// Everything the admin API says about one encoder.
#[derive(Debug, Clone, Serialize)]
pub struct EncoderView {
    /// The encoder id.
    pub id: String,
    /// Its base URL.
    pub url: String,
    /// `healthy`, `degraded`, `critical`, `unreachable`, `unknown` or `held`.
    pub status: &'static str,
    /// Why, worst first.
    pub reasons: Vec<StatusReason>,
    /// Since when the status has been what it is.
    pub status_since: String,
    /// The current health score (0–100, one decimal); `null` while unreachable.
    pub health_score: Option<f64>,
    /// The last score of a check that reached the device.
    pub last_score: Option<f64>,
    /// When that score was taken.
    pub last_score_at: Option<String>,
    /// Reconciliation is paused (maintenance).
    pub held: bool,
    /// Whether streaming and recording are as desired (`null`: unknown).
    pub in_desired_state: Option<bool>,
    /// The stream replicator.
    pub stream: ReplicatorView,
    /// The record replicator.
    pub record: ReplicatorView,
    /// What the device last reported of itself.
    pub device: DeviceView,
    /// The last device action the supervisor took.
    pub last_action: Option<ActionView>,
    /// Health checks.
    pub checks: ChecksView,
    /// The event connection: `live`, `unsupported`, `reconnecting`, `starting` or `off`.
    pub events: String,
    /// The warm pool.
    pub pool: PoolView,
    /// Each connection's thermal state.
    pub connections: Vec<ConnectionView>,
    /// The encoder's load, % of its in-flight cap.
    pub load: f64,
    /// In a cluster, the node that owns the encoder (absent for a supervisor alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// One replicator: desired and seen state, and what reconciliation is doing.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicatorView {
    /// `streaming`/`recording` when it should be active, else `observe`.
    pub desired: &'static str,
    /// The state last seen by name (`streaming`, `idle`, `failing_in_stream`, …).
    pub state: Option<&'static str>,
    /// The state's protocol number.
    pub state_value: Option<i64>,
    /// `settled`, `grace`, `stopping`, `starting`, `backoff`, `gave_up`,
    /// `deferred_to_device`, `held` or `not_acting` (in a cluster: this node may not act on it now).
    pub phase: &'static str,
    /// Tries made in the current round.
    pub attempts: u32,
    /// Tries per round.
    pub max_attempts: u32,
    /// Seconds until the supervisor acts or looks again.
    pub next_step_in_s: Option<f64>,
    /// Seconds it has been out of its desired state.
    pub out_of_state_for_s: Option<f64>,
}

/// What the device last reported of itself.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceView {
    /// `eParamID_Temperature`, °C.
    pub temperature_c: Option<f64>,
    /// `eParamID_CurrentMediaAvailable`, %.
    pub media_available_pct: Option<i64>,
    /// `eParamID_SystemState` (4 running, 10 fatal error).
    pub system_state: Option<i64>,
    /// `eParamID_LinkErrors`.
    pub link_errors: Option<i64>,
    /// `eParamID_AutoRecoverStreaming`.
    pub auto_recover_streaming: Option<bool>,
}

/// One action the supervisor took.
#[derive(Debug, Clone, Serialize)]
pub struct ActionView {
    /// `start_stream`, `restart_stream`, `stop_stream`, `lighter_profile`, …
    pub action: &'static str,
    /// `ok`, `error` or `not_taken` (in a cluster: this node may not act on it).
    pub outcome: &'static str,
    /// The device's error (bounded, escaped).
    pub error: Option<String>,
    /// When.
    pub at: String,
}

/// Health checks of one encoder.
#[derive(Debug, Clone, Serialize)]
pub struct ChecksView {
    /// Checks done.
    pub count: u64,
    /// When the last one ran.
    pub last_at: Option<String>,
    /// Checks in a row that did not reach the device.
    pub consecutive_failures: u32,
    /// The last check that reached the device.
    pub last: Option<LastCheckView>,
}

/// The last check that reached the device.
#[derive(Debug, Clone, Serialize)]
pub struct LastCheckView {
    /// Its score.
    pub score: f64,
    /// `healthy`, `degraded` or `unhealthy` by score alone.
    pub level: &'static str,
    /// When.
    pub at: String,
    /// The connection it used.
    pub connection_id: u64,
    /// Each check.
    pub checks: Vec<CheckView>,
}

/// One check of a health check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckView {
    /// `basic_connectivity`, `response_time`, …
    pub name: &'static str,
    /// `ok`, `warning`, `failed` or `unknown`.
    pub outcome: &'static str,
    /// Its own score.
    pub score: f64,
    /// What it saw.
    pub detail: String,
    /// How long it took, ms.
    pub took_ms: f64,
    /// `device`, `mirror`, `passive` or `thermal_manager`.
    pub source: serde_json::Value,
}

/// One connection as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionView {
    /// The connection id.
    pub connection_id: u64,
    /// Temperature 0–100.
    pub temperature: f64,
    /// Load, % of capacity.
    pub load: f64,
    /// Load % it may carry now.
    pub allowed_load: f64,
    /// Requests in flight.
    pub in_flight: usize,
    /// Why it is cooling, if it is.
    pub cooling: Option<&'static str>,
    /// Requests per second over the last cooling period.
    pub request_rate: f64,
    /// Errors per request, %.
    pub error_rate: f64,
}

impl From<&ConnectionThermalSnapshot> for ConnectionView {
    fn from(s: &ConnectionThermalSnapshot) -> Self {
        Self {
            connection_id: s.conn.get(),
            temperature: round1(s.temperature),
            load: round1(s.load),
            allowed_load: round1(s.allowed_load),
            in_flight: s.in_flight,
            cooling: s.cooling.map(|r| r.as_str()),
            request_rate: round2(s.request_rate),
            error_rate: round1(s.error_rate),
        }
    }
}

/// The pool of one encoder as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PoolView {
    /// `warming`, `ready`, `unreachable`, `auth_failed` or `stopped`.
    pub state: &'static str,
    /// Warm connections ready to hand out.
    pub warm: usize,
    /// Connections handed out.
    pub checked_out: usize,
    /// Connections cooling.
    pub cooling: usize,
    /// The most connections the pool opens.
    pub max: usize,
    /// Seconds until the next connect attempt, while unreachable.
    pub retry_in_s: Option<f64>,
}

impl PoolView {
    /// From the pool's own state and counts.
    pub fn new(state: Option<EncoderPoolState>, stats: Option<PoolStats>, max: usize) -> Self {
        let stats = stats.unwrap_or_default();
        Self {
            state: state.as_ref().map_or("stopped", EncoderPoolState::as_str),
            warm: stats.warm,
            checked_out: stats.checked_out,
            cooling: stats.cooling,
            max,
            retry_in_s: match state {
                Some(EncoderPoolState::Unreachable { retry_in, .. }) => {
                    Some(round1(retry_in.as_secs_f64()))
                }
                _ => None,
            },
        }
    }
}

/// What [`EncoderView::new`] is made of.
#[derive(Debug)]
pub struct ViewParts {
    /// The encoder id.
    pub id: String,
    /// Its URL.
    pub url: String,
    /// The library's report.
    pub supervision: SupervisionReport,
    /// The event mirror's status, or `off`.
    pub events: String,
    /// The pool.
    pub pool: PoolView,
    /// The connections' thermal state.
    pub connections: Vec<ConnectionView>,
    /// The encoder's load.
    pub load: f64,
}

impl EncoderView {
    /// Assembles the view.
    pub fn new(parts: ViewParts) -> Self {
        let r = parts.supervision;
        let readings = r
            .last_health
            .as_ref()
            .map(|h| *h.readings())
            .unwrap_or_default();
        Self {
            id: parts.id,
            url: parts.url,
            status: r.status.level.as_str(),
            reasons: r.status.reasons.clone(),
            status_since: rfc3339(r.status.since),
            health_score: r.status.health_score.map(round1),
            last_score: r.status.last_score.map(round1),
            last_score_at: r.status.last_score_at.map(rfc3339),
            held: r.held,
            in_desired_state: r.status.in_desired_state,
            stream: ReplicatorView::new(&r.tracks[0]),
            record: ReplicatorView::new(&r.tracks[1]),
            device: DeviceView {
                temperature_c: readings.temperature.map(round1),
                media_available_pct: readings.media_available,
                system_state: readings.system_state,
                link_errors: readings.link_errors,
                auto_recover_streaming: r.device_auto_recover,
            },
            last_action: r.last_action.as_ref().map(ActionView::from),
            checks: ChecksView {
                count: r.checks,
                last_at: r.last_check_at.map(rfc3339),
                consecutive_failures: r.consecutive_failures,
                last: r.last_health.as_ref().map(LastCheckView::from),
            },
            events: parts.events,
            pool: parts.pool,
            connections: parts.connections,
            load: round1(parts.load),
            owner: None,
        }
    }
}

impl ReplicatorView {
    fn new(t: &TrackReport) -> Self {
        let state = t.last_seen.map(|n| match t.activity {
            Activity::Stream => StreamState::from_value(n).as_str(),
            Activity::Record => RecordState::from_value(n).as_str(),
        });
        Self {
            desired: if t.desired_active {
                t.activity.active_name()
            } else {
                "observe"
            },
            state,
            state_value: t.last_seen,
            phase: phase_name(&t.phase),
            attempts: t.attempts,
            max_attempts: t.max_attempts,
            next_step_in_s: t.due_in.map(secs),
            out_of_state_for_s: t.diverged_for.map(secs),
        }
    }
}

fn phase_name(p: &TrackPhase) -> &'static str {
    match p {
        TrackPhase::Settled => "settled",
        TrackPhase::Diverged { .. } => "grace",
        TrackPhase::Stopping { .. } => "stopping",
        TrackPhase::Starting { .. } => "starting",
        TrackPhase::Backoff { .. } => "backoff",
        TrackPhase::GaveUp { .. } => "gave_up",
        TrackPhase::DeferredToDevice => "deferred_to_device",
        TrackPhase::Held => "held",
        TrackPhase::NotActing { .. } => "not_acting",
    }
}

impl From<&ActionRecord> for ActionView {
    fn from(a: &ActionRecord) -> Self {
        Self {
            action: a.action,
            outcome: a.outcome,
            error: a.error.clone(),
            at: rfc3339(a.at),
        }
    }
}

impl From<&HealthStatus> for LastCheckView {
    fn from(h: &HealthStatus) -> Self {
        Self {
            score: round1(h.health_score()),
            level: h.level().as_str(),
            at: rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(h.timestamp().max(0.0))),
            connection_id: h.connection().get(),
            checks: h.checks().iter().map(CheckView::from).collect(),
        }
    }
}

impl From<&CheckResult> for CheckView {
    fn from(c: &CheckResult) -> Self {
        Self {
            name: c.name.as_str(),
            outcome: c.outcome.as_str(),
            score: round1(c.score),
            detail: helo_transport::device_text(&c.detail).into_owned(),
            took_ms: round1(c.took.as_secs_f64() * 1000.0),
            source: serde_json::to_value(c.source).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// RFC 3339 in UTC with milliseconds: `2026-12-02T12:06:13.250Z`.
pub fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn secs(d: Duration) -> f64 {
    round1(d.as_secs_f64())
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_and_numbers_rounded() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_213_532_420);
        assert_eq!(rfc3339(t), "2026-12-02T12:12:12.420Z");
        assert_eq!(round1(1.2000000000000002), 1.2);
        assert_eq!(round2(0.06666666666666667), 0.07);
    }
}
