//! Names of the parameters that matter for connection management.

/// Replicator command (set): 0 none, 1 record, 2 stop recording, 3 stream, 4 stop
/// streaming, 5 shutdown.
pub const REPLICATOR_COMMAND: &str = "eParamID_ReplicatorCommand";
/// Record state (read-only enum, see [`crate::RecordState`]).
pub const RECORD_STATE: &str = "eParamID_ReplicatorRecordState";
/// Stream state (read-only enum, see [`crate::StreamState`]).
pub const STREAM_STATE: &str = "eParamID_ReplicatorStreamState";
/// The device's internal temperature (unit undocumented; treated as °C).
pub const TEMPERATURE: &str = "eParamID_Temperature";
/// Percent of the recording medium still free.
pub const MEDIA_AVAILABLE: &str = "eParamID_CurrentMediaAvailable";
/// Recording running time, `DD:HH:MM:SS`.
pub const RECORDING_DURATION: &str = "eParamID_RecordingDuration";
/// Streaming running time, `DD:HH:MM:SS`.
pub const STREAMING_DURATION: &str = "eParamID_StreamingDuration";
/// System state: 4 running … 10 fatal error.
pub const SYSTEM_STATE: &str = "eParamID_SystemState";
/// Whether the network is connected.
pub const NETWORK_CONNECTED: &str = "eParamID_NetworkConnected";
/// Network link state.
pub const LINK_STATE: &str = "eParamID_LinkState";
/// Network link error count.
pub const LINK_ERRORS: &str = "eParamID_LinkErrors";
/// The device's own stream auto-recovery setting.
pub const AUTO_RECOVER_STREAMING: &str = "eParamID_AutoRecoverStreaming";
/// Selected recording profile, 0–9.
pub const RECORDING_PROFILE: &str = "eParamID_RecordingProfileSel";
/// Selected streaming profile, 0–9.
pub const STREAMING_PROFILE: &str = "eParamID_StreamingProfileSel";
/// Base name of recorded clips.
pub const FILENAME_PREFIX: &str = "eParamID_FilenamePrefix";
/// 0 record-stream, 1 data-LAN (file transfer: no recording or streaming).
pub const MEDIA_STATE: &str = "eParamID_MediaState";
/// Recall preset 1–20.
pub const REGISTER_RECALL: &str = "eParamID_RegisterRecall";
/// Result of the last recall.
pub const REGISTER_RECALL_RESULT: &str = "eParamID_RegisterRecallResult";
/// Set to 1 to reboot.
pub const REBOOT: &str = "eParamID_Reboot";
/// 0 authentication disabled, 1 login required.
pub const AUTHENTICATION: &str = "eParamID_Authentication";
/// The device's name.
pub const SYS_NAME: &str = "eParamID_SysName";

/// `eParamID_SystemState` value of a running device.
pub const SYSTEM_STATE_RUNNING: i64 = 4;
/// `eParamID_SystemState` value of a fatal error.
pub const SYSTEM_STATE_FATAL: i64 = 10;
