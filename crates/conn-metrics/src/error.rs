//! The one error type of this crate.

/// What can go wrong building the metric families.
///
/// Recording never fails: once a [`HeloMetrics`](crate::HeloMetrics) exists, every
/// handle and every label value works. Only registration can fail, and only when the
/// registry handed to [`HeloMetrics::with_registry`](crate::HeloMetrics::with_registry)
/// already holds a family of the same name.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// A family could not be created or registered.
    #[error("cannot register metric family {family}: {source}")]
    Register {
        /// The family's name, e.g. `helo_requests_total`.
        family: &'static str,
        /// What the Prometheus library said.
        #[source]
        source: prometheus::Error,
    },
}

impl MetricsError {
    /// A family could not be created or registered.
    pub fn is_register(&self) -> bool {
        matches!(self, Self::Register { .. })
    }

    /// The family this error is about.
    pub fn family(&self) -> &'static str {
        match self {
            Self::Register { family, .. } => family,
        }
    }
}
