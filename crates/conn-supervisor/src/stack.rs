//! The one tower stack every request to an encoder goes through.

use std::time::Duration;

use conn_core::{ConnectionThermalManager, Thermal};
use conn_health::{ConnectionHealthChecker, Health};
use conn_metrics::{Metrics, MetricsLayer};
use helo_transport::{DeviceName, HeloConnection};
use tower::{timeout::Timeout, ServiceBuilder};

/// A connection wrapped in the supervisor's layers.
pub type EncoderStack = Metrics<Health<Thermal<Timeout<HeloConnection>>>>;

/// Wraps `conn` in the layers. A request meets them in this order (outermost first):
///
/// ```text
/// metrics  -> counts and times every request, including ones refused below
///   health   -> passive health: outcome and latency of real traffic
///     thermal  -> refuses at once what exceeds the connection's allowed load
///       timeout  -> the request deadline
///         connection (HTTP/1.1 keep-alive to the device)
/// ```
pub fn build_stack(
    encoder: &DeviceName,
    conn: HeloConnection,
    metrics: &MetricsLayer,
    checker: &ConnectionHealthChecker,
    thermal: &ConnectionThermalManager,
    timeout: Duration,
) -> EncoderStack {
    let id = conn.id();
    ServiceBuilder::new()
        .layer(metrics.clone())
        .layer(checker.health_layer(encoder, id))
        .layer(thermal.layer(encoder, id))
        .timeout(timeout)
        .service(conn)
}
