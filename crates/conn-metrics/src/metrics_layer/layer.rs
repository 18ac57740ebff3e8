use std::{fmt, sync::Arc};

use tower::Layer;

use super::{Handles, Metrics};
use crate::registry::HeloMetrics;

/// Counts and times every request to one encoder: `helo_requests_total{encoder_id,
/// operation, outcome}` and `helo_request_duration_seconds{encoder_id, operation}`.
///
/// The operation comes from [`HeloRequest::operation`](helo_transport::HeloRequest::operation);
/// the outcome is [`Outcome::of`](helo_transport::Outcome::of) the error (or `ok`), the
/// same classification the thermal and health layers use: `unsupported` and `rejected`
/// for answers, `shed` for work a load-shedding layer below refused, `queue_timeout`,
/// `timeout`, `connection`, `unavailable`, `auth`, `protocol`, `other`. Placed outside
/// a tower `Timeout` layer, it counts that layer's expiries as `timeout`.
///
/// Build one layer per encoder (clones share its handles); each operation × outcome
/// handle is resolved on its first use and cached, so that recording costs no
/// allocation or hashing per request, and series that never happen are never
/// exported (with 6 operations × 11 outcomes that is most of them). After
/// [`HeloMetrics::remove_encoder`] a layer built before keeps counting into series
/// that are no longer exported: build a new one when the encoder comes back.
///
/// ```
/// use conn_metrics::{HeloMetrics, MetricsLayer};
/// use helo_transport::{HeloError, HeloRequest, HeloResponse};
/// use tower::{service_fn, ServiceBuilder, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tower::BoxError> {
/// let metrics = HeloMetrics::new()?;
/// let device = service_fn(|_req: HeloRequest| async { Ok::<_, HeloError>(HeloResponse::LoggedIn) });
/// let stack = ServiceBuilder::new()
///     .layer(MetricsLayer::new(&metrics, "studio-a"))
///     .service(device);
///
/// stack.oneshot(HeloRequest::Login).await?;
/// assert!(metrics.gather_text().contains(
///     r#"helo_requests_total{encoder_id="studio-a",operation="login",outcome="ok"} 1"#
/// ));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MetricsLayer {
    handles: Arc<Handles>,
}

impl MetricsLayer {
    /// A layer recording into `metrics` under `encoder_id = encoder`.
    pub fn new(metrics: &HeloMetrics, encoder: impl fmt::Display) -> Self {
        Self {
            handles: Arc::new(Handles::new(metrics, encoder)),
        }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = Metrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Metrics::from_handles(inner, Arc::clone(&self.handles))
    }
}

impl fmt::Debug for MetricsLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsLayer")
            .field("encoder", &self.handles.encoder)
            .finish()
    }
}
