//! Injected faults: how a device misbehaves on its protocol paths (never on `/sim/*`).

mod patch;

use serde::{Deserialize, Serialize};

use crate::SimError;

pub(crate) use self::patch::FaultPatch;

/// The faults a device currently shows. Every field's default means "no fault".
///
/// The same names are the JSON keys of `POST /sim/faults` and (with dashes) the CLI
/// flags; `Option` fields are cleared in a patch with `null`. Every size is capped (the
/// `MAX_*` constants) and [`Faults::validate`] refuses more, so no setting makes the
/// simulator itself allocate without bound.
///
/// Faults apply to protocol requests in this order:
///
/// 1. Before the device answers: `latency_ms`, `hang`, `refuse`, then `unavailable_503`,
///    `error_500` and `redirect_loop`, each of which answers at once in place of the
///    device.
/// 2. The device's own answer, shaped by the text and event faults:
///    `login_without_cookie` (login), `event_connection_id` (connect), `hostile_values`
///    (get), and for `wait_for_config_events` (once the connection id is checked)
///    `event_shape`, else `endless_event_array` or `instant_events` (both skip the
///    hold). Then `error_text` and `error_text_bytes` replace the `"error"` text of
///    every JSON error answer, those of step 1 included.
/// 3. How the answer goes on the wire; the first one set wins:
///    - written to the socket by hand, bypassing the HTTP server, connection closed
///      after: `garbage_response`, `http09`, `huge_content_length`, `absurd_chunks`,
///      `endless_body`, `endless_event_array` (`200` wait answers, not with
///      `event_shape`), `deep_json_depth`;
///    - sent by the HTTP server: `reset`, `truncated_json`, `malformed_json`,
///      `oversized_body_bytes`;
///    - otherwise the answer as it is.
///
///    `informational_flood` and `slowloris_response` add to the hand-written answers,
///    and send an unspoiled answer by hand too; they do not combine with the four sent
///    by the HTTP server, which win.
///
/// `probability` picks which requests see faults at all (every fault but
/// `stream_start_fails`, which is about the device, not a request).
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

    // --- Device-controlled text ---
    /// When non-zero, the `"error"` text of JSON error answers (`400`, `500`, `503`) is
    /// this many bytes: the usual text (or `error_text`) repeated and cut to length (at
    /// most [`Faults::MAX_ERROR_TEXT_BYTES`]).
    pub error_text_bytes: u64,
    /// The `"error"` text of JSON error answers, verbatim (control characters, `\r\n`
    /// and `|` included; at most [`Faults::MAX_TEXT_BYTES`]).
    pub error_text: Option<String>,
    /// Every `get` answer's `value` and `value_name` is this string, verbatim (at most
    /// [`Faults::MAX_TEXT_BYTES`]).
    pub hostile_values: Option<String>,
    /// The `connect` answer's `connectionid` is this JSON string instead of a number
    /// (at most [`Faults::MAX_TEXT_BYTES`]). The device still opens a connection with a
    /// numeric id that it keeps to itself.
    pub event_connection_id: Option<String>,

    // --- Event long-poll abuse ---
    /// `wait_for_config_events` answers `[]` at once, without holding; changes stay
    /// queued until the fault is cleared.
    pub instant_events: bool,
    /// `wait_for_config_events` answers `200` with this JSON at once instead of an
    /// array of events, e.g. `{"unexpected": true}` (at most
    /// [`Faults::MAX_TEXT_BYTES`] encoded).
    pub event_shape: Option<serde_json::Value>,
    /// `wait_for_config_events` answers `200` with a chunked JSON array of events that
    /// never ends, at [`Faults::ENDLESS_BYTES_PER_SEC`], until the client closes.
    pub endless_event_array: bool,

    // --- Transport abuse (written to the socket by hand) ---
    /// Answer with random bytes that are not HTTP, then close.
    pub garbage_response: bool,
    /// Answer HTTP/0.9 style: the bare body, no status line or headers, then close.
    pub http09: bool,
    /// Announce `Content-Length: 99999999999999`, send the short body, then close.
    pub huge_content_length: bool,
    /// `Transfer-Encoding: chunked` with the chunk size `ffffffffffffffff`, the short
    /// body, then close.
    pub absurd_chunks: bool,
    /// Answer `200` with a chunked body that never ends, at
    /// [`Faults::ENDLESS_BYTES_PER_SEC`], until the client closes.
    pub endless_body: bool,
    /// When non-zero, answer `200` with `[[[…]]]` nested this deep (at most
    /// [`Faults::MAX_DEEP_JSON_DEPTH`]; streamed, never held in memory).
    pub deep_json_depth: u32,
    /// Send the answer one byte every `slowloris_interval_ms`.
    pub slowloris_response: bool,
    /// Pause between two bytes of `slowloris_response`, milliseconds (1 to
    /// [`Faults::MAX_SLOWLORIS_INTERVAL_MS`]).
    pub slowloris_interval_ms: u64,
    /// Answer `302` with `Location:` the very URL asked, so a client that follows
    /// redirects loops forever.
    pub redirect_loop: bool,
    /// Send this many `HTTP/1.1 100 Continue` interim answers before the answer (at
    /// most [`Faults::MAX_INFORMATIONAL_FLOOD`]).
    pub informational_flood: u32,
    /// A login with the right password answers `{"login":"success"}` without
    /// `Set-Cookie`.
    pub login_without_cookie: bool,
}

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
            error_text_bytes: 0,
            error_text: None,
            hostile_values: None,
            event_connection_id: None,
            instant_events: false,
            event_shape: None,
            endless_event_array: false,
            garbage_response: false,
            http09: false,
            huge_content_length: false,
            absurd_chunks: false,
            endless_body: false,
            deep_json_depth: 0,
            slowloris_response: false,
            slowloris_interval_ms: 200,
            redirect_loop: false,
            informational_flood: 0,
            login_without_cookie: false,
        }
    }
}

impl Faults {
    /// Largest body `oversized_body_bytes` may ask for (256 MiB, streamed).
    pub const MAX_OVERSIZED_BODY: u64 = 256 * 1024 * 1024;
    /// Largest `error_text_bytes` (16 MiB; the text is built per answer).
    pub const MAX_ERROR_TEXT_BYTES: u64 = 16 * 1024 * 1024;
    /// Largest `error_text`, `hostile_values`, `event_connection_id` and encoded
    /// `event_shape` (1 MiB; through `POST /sim/faults` the 64 KiB request body limit
    /// comes first).
    pub const MAX_TEXT_BYTES: usize = 1024 * 1024;
    /// Deepest `deep_json_depth` (10 million, a 20 MB body).
    pub const MAX_DEEP_JSON_DEPTH: u32 = 10_000_000;
    /// Most interim answers `informational_flood` may send.
    pub const MAX_INFORMATIONAL_FLOOD: u32 = 1_000_000;
    /// Longest `slowloris_interval_ms` (one minute).
    pub const MAX_SLOWLORIS_INTERVAL_MS: u64 = 60_000;
    /// Rate of `endless_body` and `endless_event_array`: a chunk of at most 1 KiB every
    /// 10 ms.
    pub const ENDLESS_BYTES_PER_SEC: u64 = 100 * 1024;

    /// True when no fault is set.
    pub fn is_clear(&self) -> bool {
        *self == Faults::default()
    }

    /// Checks the numbers and sizes against their caps.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |what: String| Err(SimError::InvalidConfig(what));
        if !(0.0..=1.0).contains(&self.probability) {
            return bad("fault probability must be within 0..=1".to_owned());
        }
        if self.oversized_body_bytes > Self::MAX_OVERSIZED_BODY {
            return bad(format!(
                "oversized_body_bytes must be at most {}",
                Self::MAX_OVERSIZED_BODY
            ));
        }
        if self.error_text_bytes > Self::MAX_ERROR_TEXT_BYTES {
            return bad(format!(
                "error_text_bytes must be at most {}",
                Self::MAX_ERROR_TEXT_BYTES
            ));
        }
        for (name, text) in [
            ("error_text", &self.error_text),
            ("hostile_values", &self.hostile_values),
            ("event_connection_id", &self.event_connection_id),
        ] {
            if text
                .as_ref()
                .is_some_and(|t| t.len() > Self::MAX_TEXT_BYTES)
            {
                return bad(format!(
                    "{name} must be at most {} bytes",
                    Self::MAX_TEXT_BYTES
                ));
            }
        }
        if let Some(shape) = &self.event_shape {
            let encoded = serde_json::to_vec(shape).map_or(usize::MAX, |v| v.len());
            if encoded > Self::MAX_TEXT_BYTES {
                return bad(format!(
                    "event_shape must encode to at most {} bytes",
                    Self::MAX_TEXT_BYTES
                ));
            }
        }
        if self.deep_json_depth > Self::MAX_DEEP_JSON_DEPTH {
            return bad(format!(
                "deep_json_depth must be at most {}",
                Self::MAX_DEEP_JSON_DEPTH
            ));
        }
        if self.informational_flood > Self::MAX_INFORMATIONAL_FLOOD {
            return bad(format!(
                "informational_flood must be at most {}",
                Self::MAX_INFORMATIONAL_FLOOD
            ));
        }
        if !(1..=Self::MAX_SLOWLORIS_INTERVAL_MS).contains(&self.slowloris_interval_ms) {
            return bad(format!(
                "slowloris_interval_ms must be within 1..={}",
                Self::MAX_SLOWLORIS_INTERVAL_MS
            ));
        }
        Ok(())
    }

    /// True when this request should see the request faults (see `probability`).
    pub(crate) fn roll(&self) -> bool {
        self.probability >= 1.0 || fastrand::f64() < self.probability
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_caps_every_size() {
        assert!(Faults::default().validate().is_ok());
        let at_caps = Faults {
            error_text_bytes: Faults::MAX_ERROR_TEXT_BYTES,
            error_text: Some("e".repeat(Faults::MAX_TEXT_BYTES)),
            deep_json_depth: Faults::MAX_DEEP_JSON_DEPTH,
            informational_flood: Faults::MAX_INFORMATIONAL_FLOOD,
            slowloris_interval_ms: Faults::MAX_SLOWLORIS_INTERVAL_MS,
            ..Faults::default()
        };
        assert!(at_caps.validate().is_ok());
        let too_long = "x".repeat(Faults::MAX_TEXT_BYTES + 1);
        let over: [(&str, Faults); 9] = [
            (
                "probability",
                Faults {
                    probability: -0.1,
                    ..Faults::default()
                },
            ),
            (
                "error_text_bytes",
                Faults {
                    error_text_bytes: Faults::MAX_ERROR_TEXT_BYTES + 1,
                    ..Faults::default()
                },
            ),
            (
                "error_text",
                Faults {
                    error_text: Some(too_long.clone()),
                    ..Faults::default()
                },
            ),
            (
                "hostile_values",
                Faults {
                    hostile_values: Some(too_long.clone()),
                    ..Faults::default()
                },
            ),
            (
                "event_connection_id",
                Faults {
                    event_connection_id: Some(too_long.clone()),
                    ..Faults::default()
                },
            ),
            (
                "event_shape",
                Faults {
                    event_shape: Some(serde_json::Value::String(too_long)),
                    ..Faults::default()
                },
            ),
            (
                "deep_json_depth",
                Faults {
                    deep_json_depth: Faults::MAX_DEEP_JSON_DEPTH + 1,
                    ..Faults::default()
                },
            ),
            (
                "informational_flood",
                Faults {
                    informational_flood: Faults::MAX_INFORMATIONAL_FLOOD + 1,
                    ..Faults::default()
                },
            ),
            (
                "slowloris_interval_ms",
                Faults {
                    slowloris_interval_ms: 0,
                    ..Faults::default()
                },
            ),
        ];
        for (name, f) in over {
            let err = f.validate().expect_err(name);
            assert!(err.to_string().contains(name), "{name}: {err}");
        }
    }
}
