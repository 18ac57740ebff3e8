//! The one error type of this crate.

use std::time::Duration;

use helo_transport::{BoxError, ErrorClass};

use crate::status::{CheckKind, EncoderId};

/// What can go wrong in a health check or in building a checker.
///
/// A health check itself never fails: it answers a [`HealthStatus`](crate::HealthStatus)
/// whose checks carry these errors' text and [`ErrorClass`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HealthError {
    /// A configuration value is out of range.
    #[error("invalid health configuration: {detail}")]
    InvalidConfig {
        /// What was wrong.
        detail: String,
    },
    /// A check did not finish before the health check's deadline.
    #[error("{encoder}: {check}: no answer within the {after:?} health-check deadline")]
    DeadlineExceeded {
        /// The encoder.
        encoder: EncoderId,
        /// The check that ran out of time.
        check: CheckKind,
        /// The deadline.
        after: Duration,
    },
    /// A request a check made failed.
    #[error("{encoder}: {check}: {source}")]
    Request {
        /// The encoder.
        encoder: EncoderId,
        /// The check that made the request.
        check: CheckKind,
        /// The transport's (or the tower stack's) error.
        #[source]
        source: BoxError,
    },
}

impl HealthError {
    /// The caller-facing class: the branch of the seed's `except` chain this error
    /// would have landed in.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::DeadlineExceeded { .. } => ErrorClass::Timeout,
            Self::Request { source, .. } => ErrorClass::of(source.as_ref()),
            Self::InvalidConfig { .. } => ErrorClass::Other,
        }
    }

    /// A configuration value was out of range.
    pub fn is_invalid_config(&self) -> bool {
        matches!(self, Self::InvalidConfig { .. })
    }

    /// The check ran out of time, or the request it made timed out.
    pub fn is_timeout(&self) -> bool {
        self.class() == ErrorClass::Timeout
    }

    /// The device could not be reached or the connection broke.
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Request { .. }) && self.class() == ErrorClass::Connection
    }

    pub(crate) fn config(detail: impl Into<String>) -> Self {
        Self::InvalidConfig {
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use helo_transport::{HeloError, TimeoutPhase};

    use super::*;

    #[test]
    fn classes_follow_the_seed_except_chain() {
        let enc = EncoderId::from("enc-1");
        let refused: BoxError = Box::new(HeloError::Connect {
            device: enc.clone(),
            request: "get eParamID_SystemState".into(),
            source: "refused".into(),
        });
        let slow: BoxError = Box::new(HeloError::Timeout {
            device: enc.clone(),
            request: "get eParamID_SystemState".into(),
            phase: TimeoutPhase::Response,
            after: Duration::from_secs(3),
        });
        let cases = [
            (
                HealthError::Request {
                    encoder: enc.clone(),
                    check: CheckKind::BasicConnectivity,
                    source: refused,
                },
                ErrorClass::Connection,
            ),
            (
                HealthError::Request {
                    encoder: enc.clone(),
                    check: CheckKind::BasicConnectivity,
                    source: slow,
                },
                ErrorClass::Timeout,
            ),
            (
                HealthError::DeadlineExceeded {
                    encoder: enc.clone(),
                    check: CheckKind::StreamingState,
                    after: Duration::from_secs(5),
                },
                ErrorClass::Timeout,
            ),
            (
                HealthError::Request {
                    encoder: enc,
                    check: CheckKind::StreamingState,
                    source: "odd".into(),
                },
                ErrorClass::Other,
            ),
        ];
        for (err, class) in cases {
            assert_eq!(err.class(), class, "{err}");
            assert!(err.to_string().contains("enc-1"), "{err}");
        }
        assert!(HealthError::config("x").is_invalid_config());
    }
}
