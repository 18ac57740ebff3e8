//! What one health check found: every check's result and the overall status.

use std::{
    fmt,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use helo_transport::{ConnectionId, DeviceName, ErrorClass, RecordState, StreamState};
use serde::{Serialize, Serializer};

use crate::score::Scoring;

/// The encoder a check is about: the device's name.
pub type EncoderId = DeviceName;

/// The checks of one health check, in the order they are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// A cheap request answers. Its failure makes the whole score 0.
    BasicConnectivity,
    /// Latency of the probe and of recent traffic.
    ResponseTime,
    /// Recent errors over requests, on this connection and encoder.
    ErrorRate,
    /// The connection temperature from the thermal manager.
    ThermalStatus,
    /// Device temperature, free media, system state, link errors.
    ResourceUsage,
    /// The replicator's stream state.
    StreamingState,
    /// The replicator's record state.
    RecordingState,
}

impl CheckKind {
    /// The checks that judge the connection itself (not the device behind it): a low
    /// score over these is a reason to cool the connection; a stopped stream is not.
    pub const CONNECTION: [CheckKind; 4] = [
        CheckKind::BasicConnectivity,
        CheckKind::ResponseTime,
        CheckKind::ErrorRate,
        CheckKind::ThermalStatus,
    ];

    /// Every check, in report order.
    pub const ALL: [CheckKind; 7] = [
        CheckKind::BasicConnectivity,
        CheckKind::ResponseTime,
        CheckKind::ErrorRate,
        CheckKind::ThermalStatus,
        CheckKind::ResourceUsage,
        CheckKind::StreamingState,
        CheckKind::RecordingState,
    ];

    /// The check's name as reported (`basic_connectivity`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BasicConnectivity => "basic_connectivity",
            Self::ResponseTime => "response_time",
            Self::ErrorRate => "error_rate",
            Self::ThermalStatus => "thermal_status",
            Self::ResourceUsage => "resource_usage",
            Self::StreamingState => "streaming_state",
            Self::RecordingState => "recording_state",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for CheckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckOutcome {
    /// All good.
    Ok,
    /// Worth a look; lowers the score.
    Warning,
    /// Broken.
    Failed,
    /// Could not be judged (the device lacks the parameter, no thermal reading …).
    /// Left out of the score, whose weights are renormalised over the other checks.
    Unknown,
}

impl CheckOutcome {
    /// A stable lowercase label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warning => "warning",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
        }
    }
}

/// Where a check's data came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckSource {
    /// Requests made by this health check.
    Device,
    /// The event-fed [`DeviceStateMirror`](crate::DeviceStateMirror), without a request.
    Mirror,
    /// Recent real traffic recorded by the [`HealthLayer`](crate::HealthLayer), plus the
    /// probe.
    Passive,
    /// The thermal manager.
    ThermalManager,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    /// Which check.
    pub name: CheckKind,
    /// How it came out.
    pub outcome: CheckOutcome,
    /// Its own score, 0–100 (ignored when the outcome is unknown).
    pub score: f64,
    /// What it saw, for people.
    pub detail: String,
    /// How long it took.
    #[serde(rename = "took_ms", serialize_with = "ser_millis")]
    pub took: Duration,
    /// Where its data came from.
    pub source: CheckSource,
    /// The class of the error that failed it, if one did.
    #[serde(serialize_with = "ser_class")]
    pub error_class: Option<ErrorClass>,
}

impl CheckResult {
    /// A result with no duration, no error and the device as its source.
    pub fn new(
        name: CheckKind,
        outcome: CheckOutcome,
        score: f64,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            name,
            outcome,
            score: clamp_score(score),
            detail: detail.into(),
            took: Duration::ZERO,
            source: CheckSource::Device,
            error_class: None,
        }
    }
}

/// The overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthLevel {
    /// Score at or above the healthy threshold (80 by default).
    Healthy,
    /// Score at or above the degraded threshold (70 by default).
    Degraded,
    /// Below that.
    Unhealthy,
}

impl HealthLevel {
    /// A stable lowercase label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Unhealthy => "unhealthy",
        }
    }
}

/// The result of one health check of one connection.
///
/// Serializes to JSON with `health_score` at the top level:
/// `{"encoder":"studio-a","connection":3,"health_score":92.5,"status":"healthy",
/// "timestamp":1717000000.25,"error_class":null,"checks":[…]}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthStatus {
    #[serde(serialize_with = "ser_display")]
    encoder: EncoderId,
    #[serde(serialize_with = "ser_conn")]
    connection: ConnectionId,
    health_score: f64,
    status: HealthLevel,
    /// The level over [`CheckKind::CONNECTION`] only.
    connection_status: HealthLevel,
    timestamp: f64,
    #[serde(serialize_with = "ser_class")]
    error_class: Option<ErrorClass>,
    checks: Vec<CheckResult>,
    device: DeviceReadings,
}

/// The device values a health check saw (from the mirror or by polling), so callers
/// can act on them without asking the device again. `None`: not read, not supported,
/// or the read failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct DeviceReadings {
    /// `eParamID_ReplicatorStreamState` as a number.
    pub stream_state: Option<i64>,
    /// `eParamID_ReplicatorRecordState` as a number.
    pub record_state: Option<i64>,
    /// `eParamID_Temperature` (°C).
    pub temperature: Option<f64>,
    /// `eParamID_CurrentMediaAvailable` (percent).
    pub media_available: Option<i64>,
    /// `eParamID_SystemState`.
    pub system_state: Option<i64>,
    /// `eParamID_LinkErrors`.
    pub link_errors: Option<i64>,
}

impl DeviceReadings {
    /// The stream state, keyed on its number.
    pub fn stream(&self) -> Option<StreamState> {
        self.stream_state.map(StreamState::from_value)
    }

    /// The record state, keyed on its number.
    pub fn record(&self) -> Option<RecordState> {
        self.record_state.map(RecordState::from_value)
    }
}

impl HealthStatus {
    /// Scores `checks` with `scoring` and stamps the wall-clock time.
    pub fn new(
        encoder: EncoderId,
        connection: ConnectionId,
        checks: Vec<CheckResult>,
        scoring: &Scoring,
    ) -> Self {
        let health_score = scoring.score(&checks);
        let connection_checks: Vec<CheckResult> = checks
            .iter()
            .filter(|c| CheckKind::CONNECTION.contains(&c.name))
            .cloned()
            .collect();
        let connection_status = scoring.thresholds.level(scoring.score(&connection_checks));
        let error_class = checks
            .iter()
            .find(|c| c.name == CheckKind::BasicConnectivity && c.outcome == CheckOutcome::Failed)
            .map(|c| c.error_class.unwrap_or(ErrorClass::Other));
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Self {
            encoder,
            connection,
            health_score,
            status: scoring.thresholds.level(health_score),
            connection_status,
            timestamp,
            error_class,
            checks,
            device: DeviceReadings::default(),
        }
    }

    /// The same status carrying the device values the checks saw.
    pub fn with_readings(mut self, readings: DeviceReadings) -> Self {
        self.device = readings;
        self
    }

    /// The device values the checks saw.
    pub fn readings(&self) -> &DeviceReadings {
        &self.device
    }

    /// The encoder.
    pub fn encoder(&self) -> &EncoderId {
        &self.encoder
    }

    /// The connection checked.
    pub fn connection(&self) -> ConnectionId {
        self.connection
    }

    /// The score, 0–100.
    pub fn health_score(&self) -> f64 {
        self.health_score
    }

    /// Healthy, degraded or unhealthy.
    pub fn level(&self) -> HealthLevel {
        self.status
    }

    /// The level judged over the connection's own checks ([`CheckKind::CONNECTION`]):
    /// what decides cooling, whatever the device behind it is doing.
    pub fn connection_level(&self) -> HealthLevel {
        self.connection_status
    }

    /// Whether the level is [`HealthLevel::Healthy`].
    pub fn is_healthy(&self) -> bool {
        self.status == HealthLevel::Healthy
    }

    /// Seconds since the UNIX epoch when the check finished.
    pub fn timestamp(&self) -> f64 {
        self.timestamp
    }

    /// Every check's result, in [`CheckKind::ALL`] order.
    pub fn checks(&self) -> &[CheckResult] {
        &self.checks
    }

    /// One check's result.
    pub fn check(&self, kind: CheckKind) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == kind)
    }

    /// The class of the error when basic connectivity failed: match on it as the seed
    /// did on `except ConnectionError / TimeoutError / Exception`.
    pub fn error_class(&self) -> Option<ErrorClass> {
        self.error_class
    }

    /// The `result` label of `helo_health_checks_total`: `error` when basic
    /// connectivity failed, else `success`, `degraded` or `failure` by level.
    pub fn result_label(&self) -> &'static str {
        if self.error_class.is_some() {
            return "error";
        }
        match self.status {
            HealthLevel::Healthy => "success",
            HealthLevel::Degraded => "degraded",
            HealthLevel::Unhealthy => "failure",
        }
    }

    /// The status as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

pub(crate) fn clamp_score(s: f64) -> f64 {
    if s.is_nan() {
        0.0
    } else {
        s.clamp(0.0, 100.0)
    }
}

fn ser_millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    // Tenths of a millisecond: what a latency means, not float noise.
    s.serialize_f64((d.as_secs_f64() * 10_000.0).round() / 10.0)
}

fn ser_class<S: Serializer>(c: &Option<ErrorClass>, s: S) -> Result<S::Ok, S::Error> {
    match c {
        Some(c) => s.serialize_some(c.as_str()),
        None => s.serialize_none(),
    }
}

fn ser_display<S: Serializer, T: fmt::Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn ser_conn<S: Serializer>(c: &ConnectionId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(c.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(kind: CheckKind) -> CheckResult {
        CheckResult::new(kind, CheckOutcome::Ok, 100.0, "fine")
    }

    #[test]
    fn serializes_with_score_at_top_level() {
        let mut checks: Vec<_> = CheckKind::ALL.into_iter().map(ok).collect();
        checks[1].took = Duration::from_millis(12);
        let status = HealthStatus::new(
            EncoderId::from("studio-a"),
            ConnectionId::from_raw(7),
            checks,
            &Scoring::default(),
        );
        let json = status.to_json();
        assert_eq!(json["health_score"], 100.0);
        assert_eq!(json["status"], "healthy");
        assert_eq!(json["encoder"], "studio-a");
        assert_eq!(json["connection"], 7);
        assert_eq!(json["error_class"], serde_json::Value::Null);
        assert_eq!(json["checks"][0]["name"], "basic_connectivity");
        assert_eq!(json["checks"][1]["took_ms"], 12.0);
        assert_eq!(json["checks"][1]["outcome"], "ok");
        assert!(json["timestamp"].as_f64().unwrap() > 1.6e9);
        assert_eq!(status.result_label(), "success");
    }

    #[test]
    fn failed_connectivity_gives_the_error_class_and_label() {
        let mut failed = CheckResult::new(
            CheckKind::BasicConnectivity,
            CheckOutcome::Failed,
            0.0,
            "timed out",
        );
        failed.error_class = Some(ErrorClass::Timeout);
        let status = HealthStatus::new(
            EncoderId::from("studio-a"),
            ConnectionId::from_raw(1),
            vec![failed],
            &Scoring::default(),
        );
        assert_eq!(status.health_score(), 0.0);
        assert_eq!(status.error_class(), Some(ErrorClass::Timeout));
        assert_eq!(status.result_label(), "error");
        assert_eq!(status.level(), HealthLevel::Unhealthy);
        assert_eq!(status.to_json()["error_class"], "timeout");
    }
}
