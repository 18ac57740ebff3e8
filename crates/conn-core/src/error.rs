//! The one error type of this crate.

use helo_transport::ConnectionId;

use crate::EncoderId;

/// Everything that can go wrong in the pool and the thermal model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// A configuration value is out of range; `key` names it as in the config file.
    #[error("invalid configuration: {key}: {detail}")]
    InvalidConfig {
        /// The offending key, e.g. `min_warm`.
        key: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The pool does not know this encoder (never started, or stopped).
    #[error("{encoder}: unknown encoder (warmup not started or stopped)")]
    UnknownEncoder {
        /// The encoder.
        encoder: EncoderId,
    },
    /// The pool does not own this connection (retired, reset, or never pooled).
    #[error("{encoder}: connection {conn} is not owned by the pool")]
    UnknownConnection {
        /// The encoder.
        encoder: EncoderId,
        /// The connection.
        conn: ConnectionId,
    },
    /// A cooling reason that is none of `high_load`, `preventive`,
    /// `high_temperature`, `error_rate`, `manual`.
    #[error("unknown cooling reason {given:?} (expected high_load, preventive, high_temperature, error_rate or manual)")]
    UnknownCoolingReason {
        /// The text given.
        given: String,
    },
}

impl CoreError {
    /// A configuration value is out of range.
    pub fn is_invalid_config(&self) -> bool {
        matches!(self, Self::InvalidConfig { .. })
    }

    /// The encoder is not (or no longer) pooled.
    pub fn is_unknown_encoder(&self) -> bool {
        matches!(self, Self::UnknownEncoder { .. })
    }

    /// The connection is not (or no longer) owned by the pool.
    pub fn is_unknown_connection(&self) -> bool {
        matches!(self, Self::UnknownConnection { .. })
    }

    /// A cooling reason did not parse.
    pub fn is_unknown_cooling_reason(&self) -> bool {
        matches!(self, Self::UnknownCoolingReason { .. })
    }

    /// The configuration key this error is about, if it is a configuration error.
    pub fn config_key(&self) -> Option<&'static str> {
        match self {
            Self::InvalidConfig { key, .. } => Some(key),
            _ => None,
        }
    }

    pub(crate) fn invalid(key: &'static str, detail: impl Into<String>) -> Self {
        Self::InvalidConfig {
            key,
            detail: detail.into(),
        }
    }
}
