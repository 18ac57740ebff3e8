//! The body of `POST /sim/faults`: a partial [`Faults`] plus one-off actions.

use serde::{Deserialize, Deserializer};

use super::Faults;
use crate::SimError;

/// Fields present change, absent ones stay (`null` clears an `Option` fault); the
/// actions at the end trigger one-off events.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultPatch {
    #[serde(default)]
    pub(crate) clear: bool,
    pub(crate) latency_ms: Option<u64>,
    pub(crate) hang: Option<bool>,
    pub(crate) refuse: Option<bool>,
    pub(crate) reset: Option<bool>,
    pub(crate) error_500: Option<bool>,
    pub(crate) unavailable_503: Option<bool>,
    pub(crate) retry_after_s: Option<u64>,
    pub(crate) malformed_json: Option<bool>,
    pub(crate) truncated_json: Option<bool>,
    pub(crate) oversized_body_bytes: Option<u64>,
    pub(crate) stream_start_fails: Option<bool>,
    pub(crate) probability: Option<f64>,
    pub(crate) error_text_bytes: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) error_text: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) hostile_values: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) event_connection_id: Option<Option<String>>,
    pub(crate) instant_events: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) event_shape: Option<Option<serde_json::Value>>,
    pub(crate) endless_event_array: Option<bool>,
    pub(crate) garbage_response: Option<bool>,
    pub(crate) http09: Option<bool>,
    pub(crate) huge_content_length: Option<bool>,
    pub(crate) absurd_chunks: Option<bool>,
    pub(crate) endless_body: Option<bool>,
    pub(crate) deep_json_depth: Option<u32>,
    pub(crate) slowloris_response: Option<bool>,
    pub(crate) slowloris_interval_ms: Option<u64>,
    pub(crate) redirect_loop: Option<bool>,
    pub(crate) informational_flood: Option<u32>,
    pub(crate) login_without_cookie: Option<bool>,
    // One-off actions.
    #[serde(default)]
    pub(crate) fail_stream: bool,
    #[serde(default)]
    pub(crate) fail_record: bool,
    #[serde(default)]
    pub(crate) expire_sessions: bool,
    pub(crate) overheat_c: Option<i64>,
    #[serde(default)]
    pub(crate) cool_down: bool,
    pub(crate) link_errors: Option<u64>,
    pub(crate) unreachable_ms: Option<u64>,
    #[serde(default)]
    pub(crate) reboot: bool,
}

/// A key that is present, `null` included: absent stays `None` through `default`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

impl FaultPatch {
    /// The faults after this patch, validated.
    pub(crate) fn apply_to(&self, current: &Faults) -> Result<Faults, SimError> {
        let mut f = if self.clear {
            Faults::default()
        } else {
            current.clone()
        };
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = &self.$field { f.$field = v.clone(); } )* };
        }
        set!(
            latency_ms,
            hang,
            refuse,
            reset,
            error_500,
            unavailable_503,
            retry_after_s,
            malformed_json,
            truncated_json,
            oversized_body_bytes,
            stream_start_fails,
            probability,
            error_text_bytes,
            error_text,
            hostile_values,
            event_connection_id,
            instant_events,
            event_shape,
            endless_event_array,
            garbage_response,
            http09,
            huge_content_length,
            absurd_chunks,
            endless_body,
            deep_json_depth,
            slowloris_response,
            slowloris_interval_ms,
            redirect_loop,
            informational_flood,
            login_without_cookie
        );
        f.validate()?;
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_changes_only_present_fields_and_clear_resets() {
        let start = Faults {
            hang: true,
            latency_ms: 5,
            ..Faults::default()
        };
        let patch: FaultPatch = serde_json::from_str(r#"{"latency_ms": 200}"#).unwrap();
        let f = patch.apply_to(&start).unwrap();
        assert!(f.hang);
        assert_eq!(f.latency_ms, 200);

        let patch: FaultPatch = serde_json::from_str(r#"{"clear": true, "reset": true}"#).unwrap();
        let f = patch.apply_to(&start).unwrap();
        assert!(!f.hang && f.reset && f.latency_ms == 0);

        assert!(serde_json::from_str::<FaultPatch>(r#"{"latncy_ms": 1}"#).is_err());
        let patch: FaultPatch = serde_json::from_str(r#"{"probability": 2.0}"#).unwrap();
        assert!(patch.apply_to(&start).is_err());
    }

    #[test]
    fn optional_text_is_set_kept_and_cleared_with_null() {
        let patch: FaultPatch = serde_json::from_str(
            r#"{"error_text": "a\r\nb|c", "event_shape": {"unexpected": true}}"#,
        )
        .unwrap();
        let f = patch.apply_to(&Faults::default()).unwrap();
        assert_eq!(f.error_text.as_deref(), Some("a\r\nb|c"));
        assert_eq!(f.event_shape, Some(serde_json::json!({"unexpected": true})));

        let patch: FaultPatch = serde_json::from_str(r#"{"http09": true}"#).unwrap();
        let kept = patch.apply_to(&f).unwrap();
        assert_eq!(kept.error_text, f.error_text);
        assert!(kept.http09);

        let patch: FaultPatch =
            serde_json::from_str(r#"{"error_text": null, "event_shape": null}"#).unwrap();
        let cleared = patch.apply_to(&kept).unwrap();
        assert_eq!((cleared.error_text, cleared.event_shape), (None, None));
    }
}
