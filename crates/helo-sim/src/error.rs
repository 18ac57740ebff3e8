//! The crate's one error type.

use std::net::SocketAddr;

/// Everything that can go wrong in the simulator.
///
/// The `Display` texts of the parameter errors are exactly what the simulated device
/// sends in its `{"error": "..."}` bodies.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The device could not listen on the address.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is unusable.
    #[error("invalid simulator configuration: {0}")]
    InvalidConfig(String),
    /// The parameter is unknown or unsupported by this simulated model.
    #[error("Parameter ID '{0}' not found")]
    UnknownParam(String),
    /// The parameter cannot be set by clients.
    #[error("Parameter '{0}' is read-only")]
    ReadOnly(String),
    /// A `set` without a value.
    #[error("Missing value for parameter '{0}'")]
    MissingValue(String),
    /// The value does not fit the parameter.
    #[error("Invalid value '{value}' for parameter '{param}': {reason}")]
    InvalidValue {
        /// The parameter name.
        param: String,
        /// The value as received.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// The device refuses the request in its current state (e.g. Data-LAN mode).
    #[error("{param}: {reason}")]
    Rejected {
        /// The parameter name.
        param: String,
        /// Why it was refused.
        reason: String,
    },
    /// A request counter name that [`crate::RequestKind`] does not know.
    #[error("unknown request kind '{0}'")]
    UnknownRequestKind(String),
}

impl SimError {
    /// True when the parameter does not exist on this (simulated) model.
    pub fn is_unknown_param(&self) -> bool {
        matches!(self, SimError::UnknownParam(_))
    }

    /// True when binding the listening socket failed.
    pub fn is_bind(&self) -> bool {
        matches!(self, SimError::Bind { .. })
    }

    /// True when a request counter name is unknown.
    pub fn is_unknown_request_kind(&self) -> bool {
        matches!(self, SimError::UnknownRequestKind(_))
    }

    /// True for a client mistake the device answers with `400` (bad value, read-only, …).
    pub fn is_bad_request(&self) -> bool {
        matches!(
            self,
            SimError::UnknownParam(_)
                | SimError::ReadOnly(_)
                | SimError::MissingValue(_)
                | SimError::InvalidValue { .. }
                | SimError::Rejected { .. }
        )
    }
}
