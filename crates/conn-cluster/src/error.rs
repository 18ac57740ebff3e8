//! The one error type of this crate.

use std::time::Duration;

use crate::store::LeaseId;

/// Everything that can go wrong in cluster coordination.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// A `[cluster]` value (or an encoder id) is unusable; `key` names it as in the
    /// config file.
    #[error("invalid [cluster] configuration: {key}: {detail}")]
    InvalidConfig {
        /// The offending key, e.g. `lease_ttl`.
        key: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The coordination store did not answer when the node started.
    #[error("etcd unreachable at {}: {detail}", endpoints.join(", "))]
    StoreUnreachable {
        /// The endpoints that were tried, as configured.
        endpoints: Vec<String>,
        /// Why: the last error, bounded.
        detail: String,
    },
    /// The store answered with an error (or the connection failed).
    #[error("etcd {op} failed: {detail}")]
    Store {
        /// The operation, e.g. `keep-alive`.
        op: &'static str,
        /// The store's message, bounded and escaped.
        detail: String,
    },
    /// The store did not answer in time.
    #[error("etcd {op}: no answer within {timeout:?}")]
    Timeout {
        /// The operation.
        op: &'static str,
        /// How long it waited.
        timeout: Duration,
    },
    /// The lease expired or was revoked on the store's side; every key bound to it
    /// is gone.
    #[error("lease {lease} lost (expired or revoked in etcd)")]
    LeaseLost {
        /// The lost lease.
        lease: LeaseId,
    },
    /// The node was shut down; it holds nothing and acts on nothing.
    #[error("cluster node {node} is shut down")]
    Shutdown {
        /// This node's name.
        node: String,
    },
}

impl ClusterError {
    /// A configuration value (or an encoder id) is unusable.
    pub fn is_invalid_config(&self) -> bool {
        matches!(self, Self::InvalidConfig { .. })
    }

    /// The store could not be reached when the node started.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::StoreUnreachable { .. })
    }

    /// The store answered with an error.
    pub fn is_store(&self) -> bool {
        matches!(self, Self::Store { .. })
    }

    /// The store did not answer in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// The lease is gone on the store's side.
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, Self::LeaseLost { .. })
    }

    /// The node was shut down.
    pub fn is_shutdown(&self) -> bool {
        matches!(self, Self::Shutdown { .. })
    }

    /// The configuration key this error is about, if it is a configuration error.
    pub fn config_key(&self) -> Option<&'static str> {
        match self {
            Self::InvalidConfig { key, .. } => Some(key),
            _ => None,
        }
    }

    pub(crate) fn config(key: &'static str, detail: impl Into<String>) -> Self {
        Self::InvalidConfig {
            key,
            detail: detail.into(),
        }
    }

    /// A store error whose text came from the network: bounded and escaped here, once.
    pub(crate) fn store(op: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Store {
            op,
            detail: bounded(&detail.to_string()),
        }
    }
}

/// The longest text from the store kept in an error.
const MAX_DETAIL: usize = 256;

/// Text from outside (etcd's messages, keys) is cut to a bound and control characters
/// escaped, so it can go into a log line or an API answer as it is.
pub(crate) fn bounded(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_DETAIL + 3));
    for (count, c) in text.chars().enumerate() {
        if count == MAX_DETAIL {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_text_is_bounded_and_escaped() {
        let err = ClusterError::store("get", format!("bad\nline{}", "x".repeat(1000)));
        let text = err.to_string();
        assert!(text.contains("bad\\nline"), "{text}");
        assert!(text.ends_with("..."), "{text}");
        assert!(text.len() < 300, "{}", text.len());
        assert!(err.is_store());
    }

    #[test]
    fn unreachable_names_the_endpoints() {
        let err = ClusterError::StoreUnreachable {
            endpoints: vec!["http://a:2379".into(), "http://b:2379".into()],
            detail: "connection refused".into(),
        };
        assert_eq!(
            err.to_string(),
            "etcd unreachable at http://a:2379, http://b:2379: connection refused"
        );
        assert!(err.is_unreachable());
        assert!(!err.is_timeout());
    }
}
