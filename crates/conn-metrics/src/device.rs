//! Device-level families: temperature, replicator states, recovery actions, `up`.

use std::fmt;

use helo_transport::{RecordState, StreamState};
use prometheus::{Gauge, IntCounter, IntGauge, Registry};

use crate::{
    error::MetricsError,
    family::{self, EncoderSeries, Family},
    registry::HeloMetrics,
};

pub(crate) struct DeviceFamilies {
    temperature: Family<Gauge, 0>,
    stream_state: Family<IntGauge, 0>,
    record_state: Family<IntGauge, 0>,
    recovery: Family<IntCounter, 2>,
    up: Family<IntGauge, 0>,
}

impl DeviceFamilies {
    pub(crate) fn register(registry: &Registry) -> Result<Self, MetricsError> {
        Ok(Self {
            temperature: family::gauge(
                registry,
                "helo_device_temperature_celsius",
                "Temperature the encoder reports for itself.",
                [],
            )?,
            stream_state: family::int_gauge(
                registry,
                "helo_stream_state",
                "Stream replicator state (0 uninitialized, 1 idle, 2 streaming, 3 failing in idle, 4 failing in stream, 5 shutdown).",
                [],
            )?,
            record_state: family::int_gauge(
                registry,
                "helo_record_state",
                "Record replicator state (0 uninitialized, 1 idle, 2 recording, 3 failing in idle, 4 failing in record, 5 shutdown).",
                [],
            )?,
            recovery: family::counter(
                registry,
                "helo_recovery_actions_total",
                "Recovery actions taken on an encoder, by action and outcome.",
                ["action", "outcome"],
            )?,
            up: family::int_gauge(
                registry,
                "helo_encoder_up",
                "Whether the encoder answers (1) or not (0).",
                [],
            )?,
        })
    }

    pub(crate) fn all(&self) -> [&dyn EncoderSeries; 5] {
        [
            &self.temperature,
            &self.stream_state,
            &self.record_state,
            &self.recovery,
            &self.up,
        ]
    }
}

/// The device itself: `helo_device_temperature_celsius`, `helo_stream_state`,
/// `helo_record_state`, `helo_recovery_actions_total`, `helo_encoder_up`.
#[derive(Clone, Debug)]
pub struct DeviceMetrics {
    metrics: HeloMetrics,
}

impl DeviceMetrics {
    pub(crate) fn new(metrics: HeloMetrics) -> Self {
        Self { metrics }
    }

    /// The metrics this handle belongs to.
    pub fn metrics(&self) -> &HeloMetrics {
        &self.metrics
    }

    /// `helo_device_temperature_celsius{encoder_id}`.
    pub fn device_temperature(&self, encoder: impl fmt::Display) -> Gauge {
        self.families().temperature.get(&encoder.to_string(), [])
    }

    /// `helo_stream_state{encoder_id}`: the device's state number.
    pub fn stream_state(&self, encoder: impl fmt::Display) -> IntGauge {
        self.families().stream_state.get(&encoder.to_string(), [])
    }

    /// `helo_record_state{encoder_id}`: the device's state number.
    pub fn record_state(&self, encoder: impl fmt::Display) -> IntGauge {
        self.families().record_state.get(&encoder.to_string(), [])
    }

    /// `helo_recovery_actions_total{encoder_id, action, outcome}`; `action` such as
    /// `restart_stream`, `relogin`, `reconnect`.
    pub fn recovery_actions(
        &self,
        encoder: impl fmt::Display,
        action: &str,
        outcome: &str,
    ) -> IntCounter {
        self.families()
            .recovery
            .get(&encoder.to_string(), [action, outcome])
    }

    /// `helo_encoder_up{encoder_id}`: 1 or 0.
    pub fn encoder_up(&self, encoder: impl fmt::Display) -> IntGauge {
        self.families().up.get(&encoder.to_string(), [])
    }

    /// Records a temperature reading; a reading that is not a number is dropped.
    pub fn set_device_temperature(&self, encoder: impl fmt::Display, celsius: f64) {
        if celsius.is_finite() {
            self.device_temperature(encoder).set(celsius);
        }
    }

    /// Records the stream replicator's state.
    pub fn set_stream_state(&self, encoder: impl fmt::Display, state: StreamState) {
        self.stream_state(encoder).set(state.value());
    }

    /// Records the record replicator's state.
    pub fn set_record_state(&self, encoder: impl fmt::Display, state: RecordState) {
        self.record_state(encoder).set(state.value());
    }

    /// Records whether the encoder answers.
    pub fn set_encoder_up(&self, encoder: impl fmt::Display, up: bool) {
        self.encoder_up(encoder).set(i64::from(up));
    }

    /// Counts one recovery action and how it ended.
    pub fn recovery_action(&self, encoder: impl fmt::Display, action: &str, outcome: &str) {
        self.recovery_actions(encoder, action, outcome).inc();
    }

    fn families(&self) -> &DeviceFamilies {
        &self.metrics.inner().device
    }
}
