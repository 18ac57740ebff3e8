//! Prometheus families of the HELO fleet in one registry, typed handles to record
//! into them, their text exposition, and a tower layer that counts every request.
//!
//! ```
//! use conn_metrics::HeloMetrics;
//! use helo_transport::{ConnectionId, DeviceName};
//!
//! # fn main() -> Result<(), conn_metrics::MetricsError> {
//! let fleet = HeloMetrics::new()?; // its own registry, never the global default
//! let encoder = DeviceName::from("studio-a");
//! let conn = ConnectionId::from_raw(7);
//!
//! // As in the seed: one handle per concern, labels by argument, never by position.
//! let metrics = fleet.health();
//! metrics.health_score(&encoder, &conn).set(95.5);
//! let metrics = fleet.thermal();
//! metrics.cooling_events(&encoder, "high_load").inc();
//!
//! let text = fleet.gather_text();
//! assert!(text.contains(r#"helo_connection_health{encoder_id="studio-a",connection_id="7"} 95.5"#));
//! assert!(text.contains(r#"helo_cooling_events_total{encoder_id="studio-a",reason="high_load"} 1"#));
//!
//! // The pool retires the connection, then the encoder leaves the fleet:
//! // their series go with them.
//! fleet.remove_connection(&encoder, conn);
//! assert!(!fleet.gather_text().contains("helo_connection_health"));
//! fleet.remove_encoder(&encoder);
//! assert!(fleet.gather_text().is_empty());
//! # Ok(()) }
//! ```
//!
//! Label values (encoder names, connection ids, reasons) are taken as they come and
//! never cause a panic; label counts are fixed by the types.

mod budget;
mod cluster;
mod device;
mod error;
mod family;
mod health;
mod metrics_layer;
mod observers;
mod options;
mod registry;
mod requests;
mod series;
mod slots;
mod thermal;
mod warmup;

pub use self::{
    budget::BudgetMetrics,
    cluster::ClusterMetrics,
    device::DeviceMetrics,
    error::MetricsError,
    health::ConnectionHealthMetrics,
    metrics_layer::{Metrics, MetricsLayer, ResponseFuture},
    options::MetricsOptions,
    registry::HeloMetrics,
    requests::RequestMetrics,
    series::{Gauge, IntCounter, IntGauge},
    thermal::ConnectionThermalMetrics,
    warmup::ConnectionWarmupMetrics,
};
