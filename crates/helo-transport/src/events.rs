//! Event connections: push instead of polling.

use serde::{Deserialize, Serialize};

use crate::param::{parse_int, RawValue};

/// One parameter change pushed by `wait_for_config_events`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigEvent {
    /// The parameter name, `eParamID_…`.
    pub param_id: String,
    /// `enum`, `integer`, `string`, … when sent.
    pub param_type: Option<String>,
    /// The numeric value, when the parameter has one.
    pub int_value: Option<i64>,
    /// The text value (enum text, or the string value).
    pub str_value: Option<String>,
    /// The device's change stamp, when sent.
    pub last_config_update: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct WireEvent {
    #[serde(alias = "paramid", alias = "name")]
    param_id: RawValue,
    #[serde(default)]
    param_type: Option<String>,
    #[serde(default)]
    int_value: Option<RawValue>,
    #[serde(default)]
    str_value: Option<RawValue>,
    #[serde(default)]
    last_config_update: Option<RawValue>,
}

impl From<WireEvent> for ConfigEvent {
    fn from(w: WireEvent) -> Self {
        let str_value = w.str_value.map(|v| v.0);
        // Some devices send only `str_value` for integers; recover the number from it.
        let int_value = w
            .int_value
            .and_then(|v| parse_int(&v.0))
            .or_else(|| str_value.as_deref().and_then(parse_int));
        Self {
            param_id: w.param_id.0,
            param_type: w.param_type,
            int_value,
            str_value,
            last_config_update: w.last_config_update.map(|v| v.0),
        }
    }
}

/// An open event connection: its id and the initial values the device sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventSubscription {
    /// The connection id to wait on, exactly as the device sent it (a number or a
    /// short token: anything else is refused as a protocol error).
    pub connection_id: String,
    /// Initial values, when the device sent `configevents`.
    pub initial: Vec<ConfigEvent>,
}

/// Longest event connection id accepted.
const MAX_CONNECTION_ID: usize = 64;

/// Whether a device's event connection id is a plain number or a short token (ASCII
/// letters, digits, `-`, `_`, `.`, at most 64 bytes), as every device sends: anything
/// else is refused rather than carried into URLs and log lines.
pub(crate) fn is_plain_connection_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CONNECTION_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[derive(Deserialize)]
pub(crate) struct WireSubscription {
    #[serde(alias = "connection_id")]
    pub(crate) connectionid: RawValue,
    #[serde(default)]
    pub(crate) configevents: Vec<WireEvent>,
}

impl From<WireSubscription> for EventSubscription {
    fn from(w: WireSubscription) -> Self {
        Self {
            connection_id: w.connectionid.0,
            initial: w.configevents.into_iter().map(ConfigEvent::from).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse_from_documented_and_loose_shapes() {
        let json = r#"[{"param_id":"eParamID_ReplicatorStreamState","param_type":"enum","int_value":4,"str_value":"eRSSFailingInStream","last_config_update":"12"},
                       {"param_id":"eParamID_Temperature","str_value":"55"}]"#;
        let events: Vec<WireEvent> = serde_json::from_str(json).unwrap();
        let events: Vec<ConfigEvent> = events.into_iter().map(Into::into).collect();
        assert_eq!(events[0].int_value, Some(4));
        assert_eq!(events[0].last_config_update.as_deref(), Some("12"));
        assert_eq!(events[1].int_value, Some(55));
        assert_eq!(events[1].param_type, None);
    }

    #[test]
    fn subscriptions_take_numbers_or_strings() {
        let s: WireSubscription = serde_json::from_str(r#"{"connectionid": 17}"#).unwrap();
        assert_eq!(EventSubscription::from(s).connection_id, "17");
        let s: WireSubscription = serde_json::from_str(
            r#"{"connectionid":"18","configevents":[{"param_id":"eParamID_X","int_value":"1"}]}"#,
        )
        .unwrap();
        let s = EventSubscription::from(s);
        assert_eq!(s.connection_id, "18");
        assert_eq!(s.initial[0].int_value, Some(1));
    }

    #[test]
    fn only_numbers_and_short_tokens_are_connection_ids() {
        for ok in ["17", "-1", "a1b2-c3_d4.e5", &"9".repeat(64)] {
            assert!(is_plain_connection_id(ok), "{ok}");
        }
        for bad in [
            "",
            "-1\r\nX-Injected: yes",
            "1 2",
            "1|2",
            "ä",
            "1\u{1b}[31m",
            &"9".repeat(65),
        ] {
            assert!(!is_plain_connection_id(bad), "{bad:?}");
        }
    }
}
