//! The device state a mirror keeps, and how events change it.

use std::time::Duration;

use helo_transport::{names, ConfigEvent, ErrorClass, RecordState, StreamState};
use serde::{Serialize, Serializer};
use tokio::time::Instant;

/// One mirrored value.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reading<T> {
    /// Not heard yet.
    #[default]
    Unknown,
    /// The device answered that it lacks the parameter.
    Unsupported,
    /// The current value.
    Known(T),
}

impl<T: Copy> Reading<T> {
    /// The value, when known.
    pub fn value(&self) -> Option<T> {
        match self {
            Self::Known(v) => Some(*v),
            _ => None,
        }
    }

    /// Whether a check must ask the device (the mirror has neither a value nor a
    /// "not supported").
    pub fn is_unknown(&self) -> bool {
        matches!(self, Self::Unknown)
    }
}

/// Where the mirror's event connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MirrorStatus {
    /// Connecting for the first time.
    Starting,
    /// Events flow; the values are current.
    Live,
    /// The device answered `connect` with an error: it has no event API. Checks poll;
    /// this is never counted as unhealthy. Probed again now and then.
    Unsupported,
    /// The event connection broke or could not be opened; retrying with backoff.
    Reconnecting,
    /// Stopped by its owner.
    Stopped,
}

impl MirrorStatus {
    /// A stable lowercase label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Live => "live",
            Self::Unsupported => "unsupported",
            Self::Reconnecting => "reconnecting",
            Self::Stopped => "stopped",
        }
    }
}

/// The device state as the mirror knows it, published through a
/// `tokio::sync::watch` channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceState {
    /// Where the event connection stands.
    pub status: MirrorStatus,
    /// `eParamID_ReplicatorStreamState`.
    pub stream_state: Reading<StreamState>,
    /// `eParamID_ReplicatorRecordState`.
    pub record_state: Reading<RecordState>,
    /// `eParamID_Temperature` (°C).
    pub temperature: Reading<f64>,
    /// `eParamID_CurrentMediaAvailable` (%).
    pub media_available: Reading<i64>,
    /// `eParamID_SystemState`.
    pub system_state: Reading<i64>,
    /// `eParamID_LinkErrors`.
    pub link_errors: Reading<i64>,
    /// `eParamID_AutoRecoverStreaming`.
    pub auto_recover_streaming: Reading<bool>,
    /// When a value last changed.
    #[serde(skip)]
    pub last_update: Option<Instant>,
    /// When the device last answered on the event connection (a connect, or a long
    /// poll ending with or without events).
    #[serde(skip)]
    pub last_contact: Option<Instant>,
    /// Events applied since the mirror started.
    pub events: u64,
    /// The class of the error that last broke the event connection.
    #[serde(serialize_with = "ser_class")]
    pub last_error: Option<ErrorClass>,
}

impl Default for DeviceState {
    fn default() -> Self {
        Self {
            status: MirrorStatus::Starting,
            stream_state: Reading::Unknown,
            record_state: Reading::Unknown,
            temperature: Reading::Unknown,
            media_available: Reading::Unknown,
            system_state: Reading::Unknown,
            link_errors: Reading::Unknown,
            auto_recover_streaming: Reading::Unknown,
            last_update: None,
            last_contact: None,
            events: 0,
            last_error: None,
        }
    }
}

impl DeviceState {
    /// Whether events flow.
    pub fn is_live(&self) -> bool {
        self.status == MirrorStatus::Live
    }

    /// Whether checks may use it instead of polling: live, and the device was heard
    /// from within `stale_after`.
    pub fn is_fresh(&self, stale_after: Duration) -> bool {
        self.is_live()
            && self
                .last_contact
                .is_some_and(|t| t.elapsed() <= stale_after)
    }

    /// Applies one event (or one polled value as an event); answers whether anything
    /// changed. Parameters the mirror does not keep are ignored.
    pub fn apply(&mut self, event: &ConfigEvent) -> bool {
        let int = event.int_value;
        let changed = match event.param_id.as_str() {
            names::STREAM_STATE => set(&mut self.stream_state, int.map(StreamState::from_value)),
            names::RECORD_STATE => set(&mut self.record_state, int.map(RecordState::from_value)),
            names::TEMPERATURE => {
                let t = event
                    .str_value
                    .as_deref()
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .filter(|t| t.is_finite())
                    .or(int.map(|i| i as f64));
                set(&mut self.temperature, t)
            }
            names::MEDIA_AVAILABLE => set(&mut self.media_available, int),
            names::SYSTEM_STATE => set(&mut self.system_state, int),
            names::LINK_ERRORS => set(&mut self.link_errors, int),
            names::AUTO_RECOVER_STREAMING => {
                set(&mut self.auto_recover_streaming, int.map(|v| v != 0))
            }
            _ => false,
        };
        if changed {
            self.last_update = Some(Instant::now());
        }
        changed
    }

    /// Marks a parameter the device lacks.
    pub(crate) fn mark_unsupported(&mut self, param: &str) {
        match param {
            names::STREAM_STATE => self.stream_state = Reading::Unsupported,
            names::RECORD_STATE => self.record_state = Reading::Unsupported,
            names::TEMPERATURE => self.temperature = Reading::Unsupported,
            names::MEDIA_AVAILABLE => self.media_available = Reading::Unsupported,
            names::SYSTEM_STATE => self.system_state = Reading::Unsupported,
            names::LINK_ERRORS => self.link_errors = Reading::Unsupported,
            names::AUTO_RECOVER_STREAMING => self.auto_recover_streaming = Reading::Unsupported,
            _ => {}
        }
    }
}

/// The parameters a mirror keeps, polled once after each event connect because
/// devices need not send `configevents`.
pub(crate) const MIRRORED: [&str; 7] = [
    names::STREAM_STATE,
    names::RECORD_STATE,
    names::TEMPERATURE,
    names::MEDIA_AVAILABLE,
    names::SYSTEM_STATE,
    names::LINK_ERRORS,
    names::AUTO_RECOVER_STREAMING,
];

fn set<T: PartialEq>(slot: &mut Reading<T>, value: Option<T>) -> bool {
    let Some(v) = value else {
        return false;
    };
    let new = Reading::Known(v);
    if *slot == new {
        return false;
    }
    *slot = new;
    true
}

fn ser_class<S: Serializer>(c: &Option<ErrorClass>, s: S) -> Result<S::Ok, S::Error> {
    match c {
        Some(c) => s.serialize_some(c.as_str()),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(param: &str, int: Option<i64>, text: Option<&str>) -> ConfigEvent {
        ConfigEvent {
            param_id: param.into(),
            param_type: None,
            int_value: int,
            str_value: text.map(str::to_string),
            last_config_update: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn events_update_the_kept_values_only() {
        let mut s = DeviceState::default();
        let check = |s: &mut DeviceState, e: ConfigEvent, changed: bool| {
            assert_eq!(s.apply(&e), changed, "{e:?}");
        };
        check(
            &mut s,
            event(names::STREAM_STATE, Some(4), Some("eRSSFailingInStream")),
            true,
        );
        check(&mut s, event(names::STREAM_STATE, Some(4), None), false);
        check(&mut s, event(names::RECORD_STATE, Some(2), None), true);
        check(
            &mut s,
            event(names::TEMPERATURE, Some(55), Some("55.5")),
            true,
        );
        check(&mut s, event(names::MEDIA_AVAILABLE, Some(90), None), true);
        check(&mut s, event(names::SYSTEM_STATE, Some(10), None), true);
        check(&mut s, event(names::LINK_ERRORS, Some(3), None), true);
        check(
            &mut s,
            event(names::AUTO_RECOVER_STREAMING, Some(1), None),
            true,
        );
        check(&mut s, event("eParamID_SysName", None, Some("x")), false);
        check(
            &mut s,
            event(names::MEDIA_AVAILABLE, None, Some("n/a")),
            false,
        );
        assert_eq!(s.stream_state, Reading::Known(StreamState::FailingInStream));
        assert_eq!(s.record_state.value(), Some(RecordState::Recording));
        assert_eq!(s.temperature, Reading::Known(55.5));
        assert_eq!(s.media_available.value(), Some(90));
        assert_eq!(s.system_state.value(), Some(10));
        assert_eq!(s.link_errors.value(), Some(3));
        assert_eq!(s.auto_recover_streaming.value(), Some(true));
        assert!(s.last_update.is_some());
        s.mark_unsupported(names::TEMPERATURE);
        assert_eq!(s.temperature, Reading::Unsupported);
        assert!(!s.temperature.is_unknown());
    }

    #[tokio::test(start_paused = true)]
    async fn freshness_needs_live_and_recent_contact() {
        let stale = Duration::from_secs(10);
        let mut s = DeviceState::default();
        assert!(!s.is_fresh(stale));
        s.status = MirrorStatus::Live;
        assert!(!s.is_fresh(stale), "never heard from");
        s.last_contact = Some(Instant::now());
        assert!(s.is_fresh(stale));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(!s.is_fresh(stale));
        s.last_contact = Some(Instant::now());
        s.status = MirrorStatus::Unsupported;
        assert!(!s.is_fresh(stale));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["status"], "unsupported");
        assert_eq!(json["stream_state"], "unknown");
    }
}
