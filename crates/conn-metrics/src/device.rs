//! Device-level families: temperature, media, replicator states, recovery actions,
//! `up`, and the encoder's status as the supervisor judges it.

use std::fmt;

use helo_transport::{RecordState, StreamState};
use prometheus::Registry;

use crate::series::{Gauge, IntCounter, IntGauge};

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
    media: Family<Gauge, 0>,
    status: Family<IntGauge, 1>,
    score: Family<Gauge, 0>,
    desired: Family<IntGauge, 0>,
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
            media: family::gauge(
                registry,
                "helo_device_media_available_percent",
                "Free recording media the encoder reports, in percent.",
                [],
            )?,
            status: family::int_gauge(
                registry,
                "helo_encoder_status",
                "The encoder's status: one series, set to 1, whose status label is healthy, degraded, critical, unreachable, unknown or held.",
                ["status"],
            )?,
            score: family::gauge(
                registry,
                "helo_encoder_health_score",
                "The encoder's health score, 0 to 100; absent while it is unreachable or unknown.",
                [],
            )?,
            desired: family::int_gauge(
                registry,
                "helo_encoder_in_desired_state",
                "Whether the encoder streams and records as configured (1) or not (0); absent while unknown.",
                [],
            )?,
        })
    }

    pub(crate) fn all(&self) -> [&dyn EncoderSeries; 9] {
        [
            &self.temperature,
            &self.stream_state,
            &self.record_state,
            &self.recovery,
            &self.up,
            &self.media,
            &self.status,
            &self.score,
            &self.desired,
        ]
    }
}

/// The device itself: `helo_device_temperature_celsius`,
/// `helo_device_media_available_percent`, `helo_stream_state`, `helo_record_state`,
/// `helo_recovery_actions_total`, `helo_encoder_up`; and the encoder's status:
/// `helo_encoder_status`, `helo_encoder_health_score`, `helo_encoder_in_desired_state`.
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

    /// Records the free media (%); a reading that is not a number is dropped.
    pub fn set_media_available(&self, encoder: impl fmt::Display, percent: f64) {
        if percent.is_finite() {
            self.families()
                .media
                .get(&encoder.to_string(), [])
                .set(percent);
        }
    }

    /// `helo_encoder_status{encoder_id, status}`: sets the one series of `status` to 1
    /// and drops the encoder's other status series, so `== 1` selects exactly the
    /// current status and a dashboard counting by status counts each encoder once.
    pub fn set_encoder_status(&self, encoder: impl fmt::Display, status: &str) {
        let encoder = encoder.to_string();
        let family = &self.families().status;
        family.remove_if(&encoder, |labels| &*labels[0] != status);
        family.get(&encoder, [status]).set(1);
    }

    /// `helo_encoder_health_score{encoder_id}`; `None` drops the series (no current
    /// score while unreachable or unknown).
    pub fn set_encoder_health_score(&self, encoder: impl fmt::Display, score: Option<f64>) {
        let encoder = encoder.to_string();
        let family = &self.families().score;
        match score.filter(|s| s.is_finite()) {
            Some(s) => family.get(&encoder, []).set(s),
            None => {
                family.remove_if(&encoder, |_| true);
            }
        }
    }

    /// `helo_encoder_in_desired_state{encoder_id}`: 1 or 0; `None` drops the series.
    pub fn set_in_desired_state(&self, encoder: impl fmt::Display, in_state: Option<bool>) {
        let encoder = encoder.to_string();
        let family = &self.families().desired;
        match in_state {
            Some(b) => family.get(&encoder, []).set(i64::from(b)),
            None => {
                family.remove_if(&encoder, |_| true);
            }
        }
    }

    fn families(&self) -> &DeviceFamilies {
        &self.metrics.inner().device
    }
}
