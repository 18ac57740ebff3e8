//! The parameter table: every `eParamID_*` the simulator knows, with its fixed numeric id,
//! type, limits and descriptor texts.

use serde::Serialize;
use serde_json::{json, Value as Json};

/// Replicator state numbers, shared by the record and the stream state machines.
pub(crate) mod rs {
    pub(crate) const IDLE: i64 = 1;
    pub(crate) const ACTIVE: i64 = 2;
    pub(crate) const FAILING_IN_IDLE: i64 = 3;
    pub(crate) const FAILING_ACTIVE: i64 = 4;
    pub(crate) const SHUTDOWN: i64 = 5;
}

/// The value type of a parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Enum(&'static [(i64, &'static str)]),
    Integer { min: i64, max: i64 },
    Text { max_len: usize },
}

impl Kind {
    pub(crate) fn type_name(self) -> &'static str {
        match self {
            Kind::Enum(_) => "enum",
            Kind::Integer { .. } => "integer",
            Kind::Text { .. } => "string",
        }
    }
}

/// A stored parameter value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Int(i64),
    Text(String),
}

impl Value {
    pub(crate) fn as_int(&self) -> i64 {
        match self {
            Value::Int(n) => *n,
            Value::Text(s) => s.trim().parse().unwrap_or(0),
        }
    }

    pub(crate) fn to_text(&self) -> String {
        match self {
            Value::Int(n) => n.to_string(),
            Value::Text(s) => s.clone(),
        }
    }
}

/// Every parameter the simulator knows; the discriminant indexes [`TABLE`] and the
/// per-device value vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Param {
    ReplicatorCommand,
    ReplicatorRecordState,
    ReplicatorStreamState,
    Temperature,
    CurrentMediaAvailable,
    RecordingDuration,
    StreamingDuration,
    SystemState,
    NetworkConnected,
    LinkState,
    LinkErrors,
    AutoRecoverStreaming,
    RecordingProfileSel,
    StreamingProfileSel,
    FilenamePrefix,
    MediaState,
    RegisterRecall,
    RegisterRecallResult,
    Reboot,
    Authentication,
    SysName,
}

impl Param {
    pub(crate) const ALL: [Param; 21] = [
        Param::ReplicatorCommand,
        Param::ReplicatorRecordState,
        Param::ReplicatorStreamState,
        Param::Temperature,
        Param::CurrentMediaAvailable,
        Param::RecordingDuration,
        Param::StreamingDuration,
        Param::SystemState,
        Param::NetworkConnected,
        Param::LinkState,
        Param::LinkErrors,
        Param::AutoRecoverStreaming,
        Param::RecordingProfileSel,
        Param::StreamingProfileSel,
        Param::FilenamePrefix,
        Param::MediaState,
        Param::RegisterRecall,
        Param::RegisterRecallResult,
        Param::Reboot,
        Param::Authentication,
        Param::SysName,
    ];

    pub(crate) fn spec(self) -> &'static ParamSpec {
        &TABLE[self as usize]
    }

    pub(crate) fn name(self) -> &'static str {
        self.spec().name
    }

    /// Finds a parameter by its `eParamID_*` name or, liberally, by its numeric id.
    pub(crate) fn lookup(key: &str) -> Option<Param> {
        let key = key.trim();
        if let Some(p) = Param::ALL.iter().find(|p| p.name() == key) {
            return Some(*p);
        }
        let id: u32 = key.parse().ok()?;
        Param::ALL.iter().copied().find(|p| p.spec().id == id)
    }

    /// Text shown as `value_name` / `str_value`: the enum text, or the value itself.
    pub(crate) fn value_name(self, value: &Value) -> String {
        match (self.spec().kind, value) {
            (Kind::Enum(items), Value::Int(n)) => items
                .iter()
                .find(|(v, _)| v == n)
                .map_or_else(|| n.to_string(), |(_, t)| (*t).to_owned()),
            _ => value.to_text(),
        }
    }

    /// Parses a client-supplied value. Enums take their number or (liberally) their text.
    pub(crate) fn parse(self, raw: &str) -> Result<Value, String> {
        match self.spec().kind {
            Kind::Enum(items) => {
                let t = raw.trim();
                if let Ok(n) = t.parse::<i64>() {
                    if items.iter().any(|(v, _)| *v == n) {
                        return Ok(Value::Int(n));
                    }
                    return Err("out of range".to_owned());
                }
                items
                    .iter()
                    .find(|(_, text)| text.eq_ignore_ascii_case(t))
                    .map(|(v, _)| Value::Int(*v))
                    .ok_or_else(|| "not a valid choice".to_owned())
            }
            Kind::Integer { min, max } => {
                let n: i64 = raw
                    .trim()
                    .parse()
                    .map_err(|_| "not an integer".to_owned())?;
                if n < min || n > max {
                    return Err(format!("out of range ({min}..{max})"));
                }
                Ok(Value::Int(n))
            }
            Kind::Text { max_len } => {
                if raw.len() > max_len {
                    return Err(format!("longer than {max_len} bytes"));
                }
                if raw.chars().any(char::is_control) {
                    return Err("contains control characters".to_owned());
                }
                Ok(Value::Text(raw.to_owned()))
            }
        }
    }

    /// The answer to `get` and `set`, fields in the documented order.
    pub(crate) fn object(self, value: &Value) -> ParamObject {
        ParamObject {
            paramid: self.spec().id.to_string(),
            name: self.name(),
            value: value.to_text(),
            value_name: self.value_name(value),
        }
    }

    /// The descriptor object served by `GET /descriptors`.
    pub(crate) fn descriptor(self, default: &Value) -> Descriptor {
        let spec = self.spec();
        let mut class_names = Vec::new();
        if spec.readonly {
            class_names.push("readonly");
        }
        if spec.volatile {
            class_names.push("volatile");
        }
        let (enum_values, min_value, max_value) = match spec.kind {
            Kind::Enum(items) => (
                items
                    .iter()
                    .map(|(value, text)| EnumValue {
                        value: *value,
                        text,
                        short_text: text,
                    })
                    .collect(),
                items.first().map_or(0, |i| i.0),
                items.last().map_or(0, |i| i.0),
            ),
            Kind::Integer { min, max } => (Vec::new(), min, max),
            Kind::Text { max_len } => (Vec::new(), 0, i64::try_from(max_len).unwrap_or(0)),
        };
        Descriptor {
            param_type: spec.kind.type_name(),
            param_id: spec.name,
            param_name: spec.label,
            class_names,
            enum_values,
            min_value,
            max_value,
            default_value: match default {
                Value::Int(n) => json!(n),
                Value::Text(s) => json!(s),
            },
            units: spec.units,
            string_attributes: [Attribute {
                name: "description",
                value: spec.description,
            }],
        }
    }
}

/// `{"paramid","name","value","value_name"}`.
#[derive(Debug, Serialize)]
pub(crate) struct ParamObject {
    paramid: String,
    name: &'static str,
    value: String,
    value_name: String,
}

impl ParamObject {
    /// The same object with `value` and `value_name` replaced (the `hostile_values`
    /// fault).
    pub(crate) fn with_text(self, text: &str) -> Self {
        ParamObject {
            value: text.to_owned(),
            value_name: text.to_owned(),
            ..self
        }
    }
}

/// One element of the `/descriptors` array.
#[derive(Debug, Serialize)]
pub(crate) struct Descriptor {
    param_type: &'static str,
    param_id: &'static str,
    param_name: &'static str,
    class_names: Vec<&'static str>,
    enum_values: Vec<EnumValue>,
    min_value: i64,
    max_value: i64,
    default_value: Json,
    units: &'static str,
    string_attributes: [Attribute; 1],
}

#[derive(Debug, Serialize)]
struct EnumValue {
    value: i64,
    text: &'static str,
    short_text: &'static str,
}

#[derive(Debug, Serialize)]
struct Attribute {
    name: &'static str,
    value: &'static str,
}

/// Static facts about one parameter.
#[derive(Debug)]
pub(crate) struct ParamSpec {
    pub(crate) name: &'static str,
    /// The numeric `paramid`; fixed so clients may cache it.
    pub(crate) id: u32,
    pub(crate) label: &'static str,
    pub(crate) kind: Kind,
    pub(crate) readonly: bool,
    pub(crate) volatile: bool,
    pub(crate) default: Initial,
    pub(crate) units: &'static str,
    pub(crate) description: &'static str,
}

/// A compile-time default; device-specific defaults (name, authentication) are filled in
/// by the device state.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Initial {
    Int(i64),
    Text(&'static str),
}

const REPLICATOR_COMMANDS: &[(i64, &str)] = &[
    (0, "No Command"),
    (1, "Record"),
    (2, "Stop Recording"),
    (3, "Stream"),
    (4, "Stop Streaming"),
    (5, "Shutdown"),
];
const RECORD_STATES: &[(i64, &str)] = &[
    (0, "eRRSUninitialized"),
    (1, "eRRSIdle"),
    (2, "eRRSRecording"),
    (3, "eRRSFailingInIdle"),
    (4, "eRRSFailingInRecord"),
    (5, "eRRSShutdown"),
];
const STREAM_STATES: &[(i64, &str)] = &[
    (0, "eRRSUninitialized"),
    (1, "eRRSIdle"),
    (2, "eRRSStreaming"),
    (3, "eRRSFailingInIdle"),
    (4, "eRRSFailingInStream"),
    (5, "eRRSShutdown"),
];
// Only 4 (Running) and 10 (FatalError) are documented; the texts between are ours.
const SYSTEM_STATES: &[(i64, &str)] = &[
    (0, "Unknown"),
    (1, "Booting"),
    (2, "Initializing"),
    (3, "Starting"),
    (4, "Running"),
    (5, "Updating Firmware"),
    (6, "Shutting Down"),
    (7, "Rebooting"),
    (8, "Warning"),
    (9, "Error"),
    (10, "FatalError"),
];
const NETWORK: &[(i64, &str)] = &[(0, "Disconnected"), (1, "Connected")];
const LINK: &[(i64, &str)] = &[(0, "Link Down"), (1, "Link Up")];
const OFF_ON: &[(i64, &str)] = &[(0, "Off"), (1, "On")];
const MEDIA_STATES: &[(i64, &str)] = &[(0, "Record-Stream"), (1, "Data-LAN")];
const RECALL_RESULTS: &[(i64, &str)] = &[
    (0, "none"),
    (1, "Recalling..."),
    (2, "Complete"),
    (3, "Recall Failed"),
    (4, "Preset Empty"),
];
const REBOOT: &[(i64, &str)] = &[(0, "Idle"), (1, "Reboot")];
const AUTHENTICATION: &[(i64, &str)] = &[(0, "Disabled"), (1, "Login")];

/// In [`Param`] order.
static TABLE: [ParamSpec; 21] = [
    ParamSpec {
        name: "eParamID_ReplicatorCommand",
        id: 2097225201,
        label: "Replicator Command",
        kind: Kind::Enum(REPLICATOR_COMMANDS),
        readonly: false,
        volatile: false,
        default: Initial::Int(0),
        units: "",
        description: "Starts or stops recording and streaming",
    },
    ParamSpec {
        name: "eParamID_ReplicatorRecordState",
        id: 2097225202,
        label: "Record State",
        kind: Kind::Enum(RECORD_STATES),
        readonly: true,
        volatile: true,
        default: Initial::Int(rs::IDLE),
        units: "",
        description: "State of the recorder",
    },
    ParamSpec {
        name: "eParamID_ReplicatorStreamState",
        id: 2097225203,
        label: "Stream State",
        kind: Kind::Enum(STREAM_STATES),
        readonly: true,
        volatile: true,
        default: Initial::Int(rs::IDLE),
        units: "",
        description: "State of the streamer",
    },
    ParamSpec {
        name: "eParamID_Temperature",
        id: 2097225204,
        label: "Temperature",
        kind: Kind::Integer { min: -40, max: 200 },
        readonly: true,
        volatile: true,
        default: Initial::Int(40),
        units: "C",
        description: "Internal temperature",
    },
    ParamSpec {
        name: "eParamID_CurrentMediaAvailable",
        id: 2097225205,
        label: "Media Available",
        kind: Kind::Integer { min: 0, max: 100 },
        readonly: true,
        volatile: true,
        default: Initial::Int(100),
        units: "%",
        description: "Free space left on the recording medium",
    },
    ParamSpec {
        name: "eParamID_RecordingDuration",
        id: 2097225206,
        label: "Recording Duration",
        kind: Kind::Text { max_len: 16 },
        readonly: true,
        volatile: true,
        default: Initial::Text("00:00:00:00"),
        units: "",
        description: "Running time of the current recording (DD:HH:MM:SS)",
    },
    ParamSpec {
        name: "eParamID_StreamingDuration",
        id: 2097225207,
        label: "Streaming Duration",
        kind: Kind::Text { max_len: 16 },
        readonly: true,
        volatile: true,
        default: Initial::Text("00:00:00:00"),
        units: "",
        description: "Running time of the current stream (DD:HH:MM:SS)",
    },
    ParamSpec {
        name: "eParamID_SystemState",
        id: 2097225208,
        label: "System State",
        kind: Kind::Enum(SYSTEM_STATES),
        readonly: true,
        volatile: true,
        default: Initial::Int(4),
        units: "",
        description: "Overall system state",
    },
    ParamSpec {
        name: "eParamID_NetworkConnected",
        id: 2097225209,
        label: "Network Connected",
        kind: Kind::Enum(NETWORK),
        readonly: true,
        volatile: true,
        default: Initial::Int(1),
        units: "",
        description: "Whether the network is connected",
    },
    ParamSpec {
        name: "eParamID_LinkState",
        id: 2097225210,
        label: "Link State",
        kind: Kind::Enum(LINK),
        readonly: true,
        volatile: true,
        default: Initial::Int(1),
        units: "",
        description: "Ethernet link state",
    },
    ParamSpec {
        name: "eParamID_LinkErrors",
        id: 2097225211,
        label: "Link Errors",
        kind: Kind::Integer {
            min: 0,
            max: i32::MAX as i64,
        },
        readonly: true,
        volatile: true,
        default: Initial::Int(0),
        units: "",
        description: "Count of network link errors",
    },
    ParamSpec {
        name: "eParamID_AutoRecoverStreaming",
        id: 2097225212,
        label: "Auto Recover Streaming",
        kind: Kind::Enum(OFF_ON),
        readonly: false,
        volatile: false,
        default: Initial::Int(0),
        units: "",
        description: "Restart a failed stream automatically",
    },
    ParamSpec {
        name: "eParamID_RecordingProfileSel",
        id: 2097225213,
        label: "Recording Profile",
        kind: Kind::Integer { min: 0, max: 9 },
        readonly: false,
        volatile: false,
        default: Initial::Int(0),
        units: "",
        description: "Selected recording profile",
    },
    ParamSpec {
        name: "eParamID_StreamingProfileSel",
        id: 2097225214,
        label: "Streaming Profile",
        kind: Kind::Integer { min: 0, max: 9 },
        readonly: false,
        volatile: false,
        default: Initial::Int(0),
        units: "",
        description: "Selected streaming profile",
    },
    ParamSpec {
        name: "eParamID_FilenamePrefix",
        id: 2097225215,
        label: "Filename Prefix",
        kind: Kind::Text { max_len: 64 },
        readonly: false,
        volatile: false,
        default: Initial::Text("clip"),
        units: "",
        description: "Base name of recorded clips",
    },
    ParamSpec {
        name: "eParamID_MediaState",
        id: 2097225216,
        label: "Media State",
        kind: Kind::Enum(MEDIA_STATES),
        readonly: false,
        volatile: false,
        default: Initial::Int(0),
        units: "",
        description: "Record-Stream, or Data-LAN file transfer mode",
    },
    ParamSpec {
        name: "eParamID_RegisterRecall",
        id: 2097225217,
        label: "Recall Preset",
        kind: Kind::Integer { min: 1, max: 20 },
        readonly: false,
        volatile: false,
        default: Initial::Int(1),
        units: "",
        description: "Recalls a stored preset",
    },
    ParamSpec {
        name: "eParamID_RegisterRecallResult",
        id: 2097225218,
        label: "Recall Result",
        kind: Kind::Enum(RECALL_RESULTS),
        readonly: true,
        volatile: true,
        default: Initial::Int(0),
        units: "",
        description: "Outcome of the last preset recall",
    },
    ParamSpec {
        name: "eParamID_Reboot",
        id: 2097225219,
        label: "Reboot",
        kind: Kind::Enum(REBOOT),
        readonly: false,
        volatile: true,
        default: Initial::Int(0),
        units: "",
        description: "Set to 1 to reboot the device",
    },
    ParamSpec {
        name: "eParamID_Authentication",
        id: 2097225220,
        label: "Authentication",
        kind: Kind::Enum(AUTHENTICATION),
        readonly: true,
        volatile: false,
        default: Initial::Int(0),
        units: "",
        description: "Whether a login is required",
    },
    ParamSpec {
        name: "eParamID_SysName",
        id: 2097225221,
        label: "System Name",
        kind: Kind::Text { max_len: 64 },
        readonly: false,
        volatile: false,
        default: Initial::Text("HELO"),
        units: "",
        description: "The device's name",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_param_order_with_unique_ids() {
        for (i, p) in Param::ALL.iter().enumerate() {
            assert_eq!(*p as usize, i);
            assert_eq!(Param::lookup(p.name()), Some(*p));
            assert_eq!(Param::lookup(&p.spec().id.to_string()), Some(*p));
        }
        let mut ids: Vec<u32> = TABLE.iter().map(|s| s.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), TABLE.len());
    }

    #[test]
    fn parse_checks_kind_and_range() {
        let check = |p: Param, raw: &str, ok: Option<Value>| match ok {
            Some(v) => assert_eq!(p.parse(raw), Ok(v), "{raw}"),
            None => assert!(p.parse(raw).is_err(), "{raw} should fail"),
        };
        check(Param::ReplicatorCommand, "3", Some(Value::Int(3)));
        check(Param::ReplicatorCommand, " stream ", Some(Value::Int(3)));
        check(Param::ReplicatorCommand, "6", None);
        check(Param::StreamingProfileSel, "9", Some(Value::Int(9)));
        check(Param::StreamingProfileSel, "10", None);
        check(Param::StreamingProfileSel, "x", None);
        check(Param::RegisterRecall, "0", None);
        check(
            Param::SysName,
            "a b/c?",
            Some(Value::Text("a b/c?".to_owned())),
        );
        check(Param::SysName, "bad\nname", None);
        check(Param::SysName, &"x".repeat(65), None);
    }

    #[test]
    fn value_name_is_enum_text_or_copy() {
        let p = Param::ReplicatorStreamState;
        assert_eq!(p.value_name(&Value::Int(4)), "eRRSFailingInStream");
        assert_eq!(p.value_name(&Value::Int(42)), "42");
        assert_eq!(Param::Temperature.value_name(&Value::Int(41)), "41");
    }
}
