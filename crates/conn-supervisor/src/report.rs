//! What the admin API shows about each encoder.

use conn_core::{ConnectionThermalSnapshot, EncoderPoolState, PoolStats};
use conn_health::HealthStatus;
use serde::Serialize;

/// The latest known state of one encoder, kept by its supervision loop.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EncoderReport {
    /// The encoder id.
    pub id: String,
    /// Its base URL.
    pub url: String,
    /// Configured to be streaming.
    pub expect_streaming: bool,
    /// Configured to be recording.
    pub expect_recording: bool,
    /// Whether the last check reached the device.
    pub up: bool,
    /// Health checks done.
    pub checks: u64,
    /// Checks in a row that found no warm connection or no answer.
    pub consecutive_failures: u32,
    /// Wall-clock time (seconds since the epoch) of the last check.
    pub last_check_at: Option<f64>,
    /// The last health status.
    pub last_health: Option<HealthStatus>,
    /// The last problem seen, in words.
    pub last_problem: Option<String>,
    /// Stream recovery: tries since the stream was last healthy.
    pub recovery_attempts: u32,
    /// Stream recovery: what was done last (`restart_stream`, `gave_up`, …).
    pub last_recovery: Option<String>,
    /// The device recovers its own stream (`eParamID_AutoRecoverStreaming`).
    pub device_auto_recover: Option<bool>,
    /// The device's temperature (°C), as last read.
    pub device_temperature: Option<f64>,
    /// Over the configured device temperature limit.
    pub device_overheated: bool,
    /// The event mirror: `live`, `unsupported`, `reconnecting`, … or `off`.
    pub mirror: String,
}

/// One connection as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionView {
    /// The connection id.
    pub connection_id: u64,
    /// Temperature 0–100.
    pub temperature: f64,
    /// Load, % of capacity.
    pub load: f64,
    /// Load % it may carry now.
    pub allowed_load: f64,
    /// Requests in flight.
    pub in_flight: usize,
    /// Why it is cooling, if it is.
    pub cooling: Option<&'static str>,
    /// Requests per second over the last cooling period.
    pub request_rate: f64,
    /// Errors per request, %.
    pub error_rate: f64,
}

impl From<&ConnectionThermalSnapshot> for ConnectionView {
    fn from(s: &ConnectionThermalSnapshot) -> Self {
        Self {
            connection_id: s.conn.get(),
            temperature: s.temperature,
            load: s.load,
            allowed_load: s.allowed_load,
            in_flight: s.in_flight,
            cooling: s.cooling.map(|r| r.as_str()),
            request_rate: s.request_rate,
            error_rate: s.error_rate,
        }
    }
}

/// The pool of one encoder as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PoolView {
    /// `warming`, `ready`, `unreachable` or `auth_failed`.
    pub state: &'static str,
    /// Warm connections ready to hand out.
    pub warm: usize,
    /// Connections handed out.
    pub checked_out: usize,
    /// Connections cooling.
    pub cooling: usize,
    /// Seconds until the next connect attempt, while unreachable.
    pub retry_in_secs: Option<f64>,
}

impl PoolView {
    /// From the pool's own state and counts.
    pub fn new(state: Option<EncoderPoolState>, stats: Option<PoolStats>) -> Self {
        let stats = stats.unwrap_or_default();
        Self {
            state: state.as_ref().map_or("stopped", EncoderPoolState::as_str),
            warm: stats.warm,
            checked_out: stats.checked_out,
            cooling: stats.cooling,
            retry_in_secs: match state {
                Some(EncoderPoolState::Unreachable { retry_in, .. }) => {
                    Some(retry_in.as_secs_f64())
                }
                _ => None,
            },
        }
    }
}

/// Everything the admin API says about one encoder.
#[derive(Debug, Clone, Serialize)]
pub struct EncoderView {
    /// The supervision loop's report.
    #[serde(flatten)]
    pub report: EncoderReport,
    /// The pool.
    pub pool: PoolView,
    /// Its connections' thermal state.
    pub connections: Vec<ConnectionView>,
    /// The encoder's load, % of its in-flight cap.
    pub load: f64,
}
