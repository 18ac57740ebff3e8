//! Parameter values and descriptors as devices send them, parsed liberally.

use std::{fmt, time::Duration};

use serde::{Deserialize, Deserializer, Serialize};

use crate::{config::DeviceName, error::HeloError};

/// A value that arrives as a JSON string on real devices and as a number from some
/// mocks; both are kept as text, exactly as sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RawValue(pub String);

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(Self(s)),
            serde_json::Value::Number(n) => Ok(Self(n.to_string())),
            serde_json::Value::Bool(b) => Ok(Self(if b { "1" } else { "0" }.to_string())),
            serde_json::Value::Null => Ok(Self(String::new())),
            other => Err(serde::de::Error::custom(format!(
                "expected a string or number, got {other}"
            ))),
        }
    }
}

/// One parameter as answered by `action=get` (or echoed by `action=set`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ParamValue {
    /// The device the value came from.
    #[serde(skip)]
    pub device: DeviceName,
    /// The parameter name, `eParamID_…`.
    pub name: String,
    /// The numeric parameter id, when the device sent one.
    pub paramid: Option<String>,
    /// The value, as text.
    pub value: String,
    /// The enum's text, or a copy of the value.
    pub value_name: Option<String>,
}

/// The JSON object of a parameter, before it is tied to a device.
#[derive(Deserialize)]
pub(crate) struct WireParam {
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) paramid: Option<RawValue>,
    pub(crate) value: RawValue,
    #[serde(default)]
    pub(crate) value_name: Option<RawValue>,
}

impl ParamValue {
    pub(crate) fn from_wire(device: DeviceName, requested: &str, w: WireParam) -> Self {
        Self {
            device,
            name: w.name.unwrap_or_else(|| requested.to_string()),
            paramid: w.paramid.map(|v| v.0),
            value: w.value.0,
            value_name: w.value_name.map(|v| v.0),
        }
    }

    /// The value as an integer (`"1"`, `1`, `" 42 "`, `"3.0"` all parse).
    pub fn as_i64(&self) -> Result<i64, HeloError> {
        parse_int(&self.value).ok_or_else(|| self.bad_value("an integer"))
    }

    /// The value as a number.
    pub fn as_f64(&self) -> Result<f64, HeloError> {
        self.value
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| self.bad_value("a number"))
    }

    /// The value as a running time (`DD:HH:MM:SS`).
    pub fn as_running_duration(&self) -> Result<Duration, HeloError> {
        parse_running_duration(&self.value).ok_or_else(|| self.bad_value("a DD:HH:MM:SS duration"))
    }

    fn bad_value(&self, what: &str) -> HeloError {
        HeloError::Protocol {
            device: self.device.clone(),
            request: format!("get {}", self.name),
            detail: format!("value {:?} is not {what}", truncate(&self.value, 64)),
        }
    }
}

pub(crate) fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(v) = s.parse::<i64>() {
        return Some(v);
    }
    // Some firmware sends integral values as "3.0".
    let f = s.parse::<f64>().ok()?;
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

/// Parses a running time of four colon-separated fields, `DD:HH:MM:SS`.
///
/// Each field is a non-negative integer; the hour, minute and second fields are not
/// range-checked because mocks differ, only summed.
pub fn parse_running_duration(s: &str) -> Option<Duration> {
    let mut fields = s.trim().split(':');
    let mut parts = [0u64; 4];
    for p in &mut parts {
        let f = fields.next()?.trim();
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) || f.len() > 9 {
            return None;
        }
        *p = f.parse().ok()?;
    }
    if fields.next().is_some() {
        return None;
    }
    let [d, h, m, sec] = parts;
    Some(Duration::from_secs(d * 86_400 + h * 3_600 + m * 60 + sec))
}

pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One value of an enum parameter.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct EnumValue {
    /// The number.
    #[serde(deserialize_with = "de_int")]
    pub value: i64,
    /// The long text.
    #[serde(default)]
    pub text: String,
    /// The short text.
    #[serde(default)]
    pub short_text: String,
}

/// A named string attribute of a descriptor (e.g. `description`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct StringAttribute {
    /// The attribute's name.
    pub name: String,
    /// Its value.
    #[serde(default)]
    pub value: String,
}

/// What a device says about one parameter (`GET /descriptors?paramid=…`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct Descriptor {
    /// `enum`, `integer`, `string`, …
    #[serde(default)]
    pub param_type: String,
    /// The numeric id.
    #[serde(default)]
    pub param_id: Option<RawValue>,
    /// The name, `eParamID_…`.
    #[serde(default)]
    pub param_name: String,
    /// Classes such as `readonly`, `volatile`.
    #[serde(default)]
    pub class_names: Vec<String>,
    /// The values of an enum parameter.
    #[serde(default)]
    pub enum_values: Vec<EnumValue>,
    /// The smallest allowed value.
    #[serde(default)]
    pub min_value: Option<RawValue>,
    /// The largest allowed value.
    #[serde(default)]
    pub max_value: Option<RawValue>,
    /// The default value.
    #[serde(default)]
    pub default_value: Option<RawValue>,
    /// The unit, when documented.
    #[serde(default)]
    pub units: Option<String>,
    /// Named strings such as `description`.
    #[serde(default)]
    pub string_attributes: Vec<StringAttribute>,
}

impl Descriptor {
    /// Whether the device marks the parameter read-only.
    pub fn is_readonly(&self) -> bool {
        self.class_names.iter().any(|c| c == "readonly")
    }

    /// The text of the enum value `n`, if the descriptor lists it.
    pub fn enum_text(&self, n: i64) -> Option<&str> {
        self.enum_values
            .iter()
            .find(|e| e.value == n)
            .map(|e| e.text.as_str())
    }
}

fn de_int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let raw = RawValue::deserialize(d)?;
    parse_int(&raw.0)
        .ok_or_else(|| serde::de::Error::custom(format!("{:?} is not an integer", raw.0)))
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value_name {
            Some(n) if n != &self.value => write!(f, "{}={} ({n})", self.name, self.value),
            _ => write!(f, "{}={}", self.name, self.value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(json: &str) -> ParamValue {
        let w: WireParam = serde_json::from_str(json).unwrap();
        ParamValue::from_wire(DeviceName::from("enc"), "eParamID_X", w)
    }

    #[test]
    fn values_arrive_as_strings_or_numbers() {
        let real = wire(
            r#"{"paramid":"2097225226","name":"eParamID_X","value":"1","value_name":"eRRSIdle"}"#,
        );
        assert_eq!(real.as_i64().unwrap(), 1);
        assert_eq!(real.value_name.as_deref(), Some("eRRSIdle"));
        assert_eq!(real.paramid.as_deref(), Some("2097225226"));
        let mock = wire(r#"{"name":"eParamID_X","value":1}"#);
        assert_eq!(mock.as_i64().unwrap(), 1);
        let float = wire(r#"{"value":"3.0"}"#);
        assert_eq!(float.as_i64().unwrap(), 3);
        assert_eq!(float.name, "eParamID_X");
        let text = wire(r#"{"value":"clip"}"#);
        let err = text.as_i64().unwrap_err();
        assert!(err.is_protocol());
        assert!(
            err.to_string().contains("\"clip\" is not an integer"),
            "{err}"
        );
    }

    #[test]
    fn running_durations() {
        let check = |s: &str, want: Option<u64>| {
            assert_eq!(parse_running_duration(s).map(|d| d.as_secs()), want, "{s}");
        };
        check("00:00:00:00", Some(0));
        check("01:02:03:04", Some(86_400 + 2 * 3_600 + 3 * 60 + 4));
        check(" 00:00:01:30 ", Some(90));
        check("00:00:00", None);
        check("00:00:00:00:00", None);
        check("a:b:c:d", None);
        check("-1:00:00:00", None);
        check("", None);
    }

    #[test]
    fn descriptors_parse_liberally() {
        let json = r#"[{"param_type":"enum","param_id":"123","param_name":"eParamID_ReplicatorStreamState",
            "class_names":["readonly","volatile"],
            "enum_values":[{"value":0,"text":"Uninitialized","short_text":"Uninit"},{"value":"2","text":"Streaming","short_text":"Str"}],
            "min_value":0,"max_value":"5","default_value":"0","units":"",
            "string_attributes":[{"name":"description","value":"Stream state"}]}]"#;
        let d: Vec<Descriptor> = serde_json::from_str(json).unwrap();
        assert!(d[0].is_readonly());
        assert_eq!(d[0].enum_text(2), Some("Streaming"));
        assert_eq!(d[0].max_value, Some(RawValue("5".into())));
    }
}
