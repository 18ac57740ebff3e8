//! Why an encoder's status is what it is.

use serde::Serialize;

/// A reason's kind, stable for programs (alerts, the fleet page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReasonCode {
    /// Paused for maintenance.
    Held,
    /// No check has reached the device yet.
    NotChecked,
    /// The device does not answer.
    Unreachable,
    /// The device refused the login.
    LoginRefused,
    /// It should be streaming and is not (idle, uninitialized, shut down).
    NotStreaming,
    /// Its stream is failing.
    StreamFailing,
    /// It should be recording and is not.
    NotRecording,
    /// Its recording is failing.
    RecordFailing,
    /// Every try of a round failed; the next round is scheduled.
    RecoveryGaveUp,
    /// The device reports a temperature above its limit.
    DeviceOverheated,
    /// The recording medium is nearly full.
    MediaLow,
    /// Network link errors grew since the last check.
    LinkErrorsRising,
    /// The health score is below a threshold.
    LowScore,
}

impl ReasonCode {
    /// The code as written in JSON (`not_streaming`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::NotChecked => "not_checked",
            Self::Unreachable => "unreachable",
            Self::LoginRefused => "login_refused",
            Self::NotStreaming => "not_streaming",
            Self::StreamFailing => "stream_failing",
            Self::NotRecording => "not_recording",
            Self::RecordFailing => "record_failing",
            Self::RecoveryGaveUp => "recovery_gave_up",
            Self::DeviceOverheated => "device_overheated",
            Self::MediaLow => "media_low",
            Self::LinkErrorsRising => "link_errors_rising",
            Self::LowScore => "low_score",
        }
    }
}

/// One reason: a code for programs and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusReason {
    /// What kind of reason.
    pub code: ReasonCode,
    /// What it is, for people (device text in it is bounded and escaped).
    pub message: String,
}

impl StatusReason {
    /// A reason.
    pub fn new(code: ReasonCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}
