//! Injected faults: how a device misbehaves on its protocol paths (never on `/sim/*`).

use serde::{Deserialize, Serialize};

use crate::SimError;

/// The faults a device currently shows. Every field's default means "no fault".
///
/// The same names are the JSON keys of `POST /sim/faults` and (with dashes) the CLI flags.
/// Faults apply to protocol requests in this order: `latency_ms`, `hang`, `refuse`,
/// `unavailable_503`, `error_500`, then the answer is corrupted by `reset`,
/// `truncated_json`, `malformed_json` or `oversized_body_bytes` (first that is set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Extra delay before every answer, milliseconds.
    pub latency_ms: u64,
    /// Read the request, never answer (until the fault is cleared).
    pub hang: bool,
    /// Reset (RST) the connection as soon as a request arrives.
    pub refuse: bool,
    /// Send part of the answer, then reset the connection.
    pub reset: bool,
    /// Answer `500` with a JSON error.
    pub error_500: bool,
    /// Answer `503` with `Retry-After: retry_after_s`.
    pub unavailable_503: bool,
    /// Seconds sent in `Retry-After` by `unavailable_503`.
    pub retry_after_s: u64,
    /// Answer `200` with a body that is not valid JSON.
    pub malformed_json: bool,
    /// Announce a longer `Content-Length` than is sent, then close the connection.
    pub truncated_json: bool,
    /// When non-zero, answer `200` with a valid JSON body of this many bytes.
    pub oversized_body_bytes: u64,
    /// Every stream start ends in `eRRSFailingInStream` (the destination refuses it).
    pub stream_start_fails: bool,
    /// Fraction (0–1) of protocol requests the request faults apply to.
    pub probability: f64,
}

/// Largest body `oversized_body_bytes` may ask for.
pub(crate) const MAX_OVERSIZED_BODY: u64 = 256 * 1024 * 1024;

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency_ms: 0,
            hang: false,
            refuse: false,
            reset: false,
            error_500: false,
            unavailable_503: false,
            retry_after_s: 1,
            malformed_json: false,
            truncated_json: false,
            oversized_body_bytes: 0,
            stream_start_fails: false,
            probability: 1.0,
        }
    }
}

impl Faults {
    /// True when no fault is set.
    pub fn is_clear(&self) -> bool {
        *self == Faults::default()
    }

    /// Checks the numbers.
    pub fn validate(&self) -> Result<(), SimError> {
        if !(0.0..=1.0).contains(&self.probability) {
            return Err(SimError::InvalidConfig(
                "fault probability must be within 0..=1".to_owned(),
            ));
        }
        if self.oversized_body_bytes > MAX_OVERSIZED_BODY {
            return Err(SimError::InvalidConfig(format!(
                "oversized_body_bytes must be at most {MAX_OVERSIZED_BODY}"
            )));
        }
        Ok(())
    }

    /// True when this request should see the request faults (see `probability`).
    pub(crate) fn roll(&self) -> bool {
        self.probability >= 1.0 || fastrand::f64() < self.probability
    }
}

/// Body of `POST /sim/faults`: fields present change, absent ones stay; the actions at
/// the end trigger one-off events.
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

impl FaultPatch {
    /// The faults after this patch, validated.
    pub(crate) fn apply_to(&self, current: &Faults) -> Result<Faults, SimError> {
        let mut f = if self.clear {
            Faults::default()
        } else {
            current.clone()
        };
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { f.$field = v; } )* };
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
            probability
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
}
