//! The one tower stack every request to an encoder goes through.

use conn_core::{ConnectionThermalManager, Thermal};
use conn_health::{ConnectionHealthChecker, Health};
use conn_metrics::{Metrics, MetricsLayer};
use helo_transport::{DeviceName, HeloConnection};
use tower::ServiceBuilder;

/// A connection wrapped in the supervisor's layers.
pub type EncoderStack = Metrics<Health<Thermal<HeloConnection>>>;

/// Wraps `conn` in the layers. A request meets them in this order (outermost first):
///
/// ```text
/// metrics     -> counts and times every request, including ones refused below
///   health      -> passive health: outcome and latency of real traffic
///     thermal     -> admits up to the connection's allowed load, sheds the rest at once
///       connection  -> waits its turn in the connection's bounded FIFO queue (queue
///                      deadline), then has the wire for the device's turn (request
///                      deadline); HTTP/1.1 keep-alive to the device
/// ```
///
/// There is no tower `Timeout` layer: started at `call`, it would count the wait
/// for the wire against the device, and dropping a request half-way through its
/// answer broke the connection under every request queued behind it. The deadlines
/// are the connection's own (`DeviceConfig::request_timeout` and `queue_timeout`).
///
/// The bounded queue sits in the connection, below thermal, because only the
/// connection knows when the wire is free, and because every handle of a connection
/// (the clones of this stack a health check sends its six requests through, the
/// pool's pings, one-shot commands) shares that one queue: each request gets its
/// turn, in order, and no path can queue without bound. Thermal, above it, decides
/// how many of them one connection may hold at all; a full queue makes the
/// connection not ready, which thermal sheds like a full allowed load.
pub fn build_stack(
    encoder: &DeviceName,
    conn: HeloConnection,
    metrics: &MetricsLayer,
    checker: &ConnectionHealthChecker,
    thermal: &ConnectionThermalManager,
) -> EncoderStack {
    let id = conn.id();
    ServiceBuilder::new()
        .layer(metrics.clone())
        .layer(checker.health_layer(encoder, id))
        .layer(thermal.layer(encoder, id))
        .service(conn)
}
