//! Connection temperature, load and cooling families.

use std::{fmt, time::Duration};

use prometheus::{Histogram, Registry};

use crate::series::{Gauge, IntCounter};

use crate::{
    error::MetricsError,
    family::{self, percent, EncoderSeries, Family, Scope},
    registry::HeloMetrics,
};

/// Cooling durations: a cool-down runs from seconds to tens of minutes.
pub(crate) const COOLING_BUCKETS: &[f64] = &[
    1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
];

pub(crate) struct ThermalFamilies {
    pub(crate) temperature: Family<Gauge, 1>,
    load: Family<Gauge, 0>,
    cooling_events: Family<IntCounter, 1>,
    cooling_duration: Family<Histogram, 0>,
}

impl ThermalFamilies {
    pub(crate) fn register(registry: &Registry, durations: Scope) -> Result<Self, MetricsError> {
        Ok(Self {
            temperature: family::gauge(
                registry,
                "helo_connection_temperature",
                "Modelled temperature of a connection, 0 (cold) to 100 (overheated).",
                ["connection_id"],
            )?,
            load: family::gauge(
                registry,
                "helo_connection_load",
                "Load on an encoder's connections, in percent.",
                [],
            )?,
            cooling_events: family::counter(
                registry,
                "helo_cooling_events_total",
                "Cool-downs started, by reason.",
                ["reason"],
            )?,
            cooling_duration: family::histogram(
                registry,
                "helo_cooling_duration_seconds",
                "Time a cool-down took.",
                (durations, []),
                COOLING_BUCKETS,
            )?,
        })
    }

    pub(crate) fn all(&self) -> [&dyn EncoderSeries; 4] {
        [
            &self.temperature,
            &self.load,
            &self.cooling_events,
            &self.cooling_duration,
        ]
    }
}

/// Temperature, load and cooling: `helo_connection_temperature`,
/// `helo_connection_load`, `helo_cooling_events_total`, `helo_cooling_duration_seconds`.
///
/// The plain methods map one to one onto `conn_core::ThermalObserver`; what the
/// thermal manager reports about the device itself lands in the device families.
#[derive(Clone, Debug)]
pub struct ConnectionThermalMetrics {
    metrics: HeloMetrics,
}

impl ConnectionThermalMetrics {
    pub(crate) fn new(metrics: HeloMetrics) -> Self {
        Self { metrics }
    }

    /// The metrics this handle belongs to.
    pub fn metrics(&self) -> &HeloMetrics {
        &self.metrics
    }

    /// `helo_connection_temperature{encoder_id, connection_id}` (0–100).
    pub fn connection_temperature(
        &self,
        encoder: impl fmt::Display,
        conn: impl fmt::Display,
    ) -> Gauge {
        let conn = conn.to_string();
        self.families()
            .temperature
            .get(&encoder.to_string(), [&conn])
    }

    /// `helo_connection_load{encoder_id}` (percent).
    pub fn connection_load(&self, encoder: impl fmt::Display) -> Gauge {
        self.families().load.get(&encoder.to_string(), [])
    }

    /// `helo_cooling_events_total{encoder_id, reason}`; `reason` is one of
    /// `high_load`, `preventive`, `high_temperature`, `error_rate`, `manual`.
    pub fn cooling_events(&self, encoder: impl fmt::Display, reason: &str) -> IntCounter {
        self.families()
            .cooling_events
            .get(&encoder.to_string(), [reason])
    }

    /// `helo_cooling_duration_seconds{encoder_id}`.
    pub fn cooling_duration(&self, encoder: impl fmt::Display) -> Histogram {
        self.families()
            .cooling_duration
            .get(&encoder.to_string(), [])
    }

    /// A connection's modelled temperature (clamped to 0–100; not-a-number is dropped).
    pub fn temperature(&self, encoder: impl fmt::Display, conn: impl fmt::Display, value: f64) {
        if let Some(value) = percent(value) {
            self.connection_temperature(encoder, conn).set(value);
        }
    }

    /// The encoder's load in percent (negative becomes 0; not-a-number is dropped).
    pub fn load(&self, encoder: impl fmt::Display, percent: f64) {
        if percent.is_finite() {
            self.connection_load(encoder).set(percent.max(0.0));
        }
    }

    /// A cool-down started on `conn`; counted per encoder and `reason`.
    pub fn cooling_started(
        &self,
        encoder: impl fmt::Display,
        _conn: impl fmt::Display,
        reason: &str,
    ) {
        self.cooling_events(encoder, reason).inc();
    }

    /// A step of a cool-down. Records nothing: no family holds cooling steps (the
    /// dashboards read events and durations).
    pub fn cooling_step(
        &self,
        _encoder: impl fmt::Display,
        _conn: impl fmt::Display,
        _step: u32,
        _allowed_load: f64,
    ) {
    }

    /// A cool-down finished after `took`, whatever its outcome.
    pub fn cooling_finished(
        &self,
        encoder: impl fmt::Display,
        _conn: impl fmt::Display,
        took: Duration,
    ) {
        self.cooling_duration(encoder).observe(took.as_secs_f64());
    }

    /// The device's own temperature, into `helo_device_temperature_celsius`.
    pub fn device_temperature(&self, encoder: impl fmt::Display, celsius: f64) {
        self.metrics
            .device()
            .set_device_temperature(encoder, celsius);
    }

    /// The device overheated; its temperature goes to
    /// `helo_device_temperature_celsius` like any other reading.
    pub fn device_overheated(&self, encoder: impl fmt::Display, celsius: f64) {
        self.device_temperature(encoder, celsius);
    }

    /// The connection left the thermal model: drops its per-connection series.
    pub fn connection_removed(&self, encoder: impl fmt::Display, conn: impl fmt::Display) {
        self.metrics.remove_connection(encoder, conn);
    }

    fn families(&self) -> &ThermalFamilies {
        &self.metrics.inner().thermal
    }
}
