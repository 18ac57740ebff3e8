//! The one error type of this crate.

use std::{error::Error as StdError, fmt, time::Duration};

use crate::{
    config::DeviceName,
    outcome::{ErrorClass, Outcome},
};

/// A boxed error, as tower middleware passes it around.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Which phase of a request ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutPhase {
    /// Opening the TCP connection.
    Connect,
    /// The HTTP/1.1 handshake after the TCP connect.
    Handshake,
    /// Logging in.
    Login,
    /// Waiting for, or reading, the answer to a request.
    Response,
}

impl fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect",
            Self::Handshake => "handshake",
            Self::Login => "login",
            Self::Response => "response",
        })
    }
}

/// Why authentication failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthFailure {
    /// The device refused the configured password; retrying cannot help.
    WrongPassword {
        /// The device's own `login` text.
        message: String,
    },
    /// The session expired, and logging in again did not give a usable session.
    SessionExpired,
    /// The device wants a login (it answers 404 HTML) but no password is configured.
    PasswordRequired,
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongPassword { message } => write!(f, "wrong password ({message})"),
            Self::SessionExpired => f.write_str("session expired and re-login failed"),
            Self::PasswordRequired => {
                f.write_str("device requires a login but no password is configured")
            }
        }
    }
}

/// Everything that can go wrong talking to a HELO device.
///
/// Every variant names the device and the request, so a message read in a log on its
/// own says where to look.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HeloError {
    /// The TCP connection could not be opened (refused, unreachable, reset during the
    /// handshake), or an open connection broke.
    #[error("{device}: {request}: connection failed: {source}")]
    Connect {
        /// The device.
        device: DeviceName,
        /// The request that needed the connection.
        request: String,
        /// What the operating system or HTTP layer said.
        #[source]
        source: BoxError,
    },
    /// The device did not answer in time.
    #[error("{device}: {request}: timed out during {phase} after {after:?}")]
    Timeout {
        /// The device.
        device: DeviceName,
        /// The request.
        request: String,
        /// Which phase ran out of time.
        phase: TimeoutPhase,
        /// The limit that was reached.
        after: Duration,
    },
    /// The request waited longer than the connection's queue deadline for its turn on
    /// the wire (HTTP/1.1 carries one request at a time), and was never sent. Says
    /// the connection is busier than the device can turn over, not that the device
    /// failed to answer; the connection stays usable.
    #[error(
        "{device}: {request}: waited {waited:?} for its turn on the connection and was not sent"
    )]
    QueueTimeout {
        /// The device.
        device: DeviceName,
        /// The request.
        request: String,
        /// The queue deadline that was reached.
        waited: Duration,
    },
    /// Logging in failed.
    #[error("{device}: {request}: authentication failed: {failure}")]
    Auth {
        /// The device.
        device: DeviceName,
        /// The request.
        request: String,
        /// Why.
        failure: AuthFailure,
    },
    /// The device answered `400` with an `error` text: missing value, out of range,
    /// read-only parameter, expired event connection …
    #[error("{device}: {request}: rejected by the device: {message}")]
    Rejected {
        /// The device.
        device: DeviceName,
        /// The request.
        request: String,
        /// The device's `error` text.
        message: String,
    },
    /// The device does not know the parameter (firmware differs between models).
    #[error("{device}: {request}: parameter {param} is not supported by this device")]
    UnsupportedParam {
        /// The device.
        device: DeviceName,
        /// The request.
        request: String,
        /// The parameter name.
        param: String,
    },
    /// The device answered `503` (rebooting or busy).
    #[error("{device}: {request}: device unavailable (HTTP 503{})", retry_after_text(*.retry_after))]
    Unavailable {
        /// The device.
        device: DeviceName,
        /// The request.
        request: String,
        /// The device's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// Any other unexpected HTTP status.
    #[error("{device}: {request}: unexpected HTTP status {status}")]
    Status {
        /// The device.
        device: DeviceName,
        /// The request.
        request: String,
        /// The status code.
        status: u16,
    },
    /// The answer was not what the protocol says: malformed JSON, wrong shape,
    /// unparsable value.
    #[error("{device}: {request}: protocol error: {detail}")]
    Protocol {
        /// The device.
        device: DeviceName,
        /// The request.
        request: String,
        /// What was wrong.
        detail: String,
    },
    /// The answer's body was larger than the configured cap.
    #[error("{device}: {request}: response body larger than {limit} bytes")]
    BodyTooLarge {
        /// The device.
        device: DeviceName,
        /// The request.
        request: String,
        /// The cap.
        limit: usize,
    },
    /// The device's request budget
    /// ([`DeviceConfig::request_budget`](crate::DeviceConfig::request_budget)) is used
    /// up: the request was not sent. Says something on this side sends more than the
    /// device should be asked, not that the device failed.
    #[error("{device}: {request}: request budget of {per_minute}/min used up; not sent (next in {retry_in:?})")]
    BudgetExhausted {
        /// The device.
        device: DeviceName,
        /// The request.
        request: String,
        /// The configured budget, requests per minute.
        per_minute: u32,
        /// Time until the budget allows one more request.
        retry_in: Duration,
    },
    /// A configuration value is invalid (bad URL, zero timeout …).
    #[error("{device}: invalid configuration: {detail}")]
    InvalidConfig {
        /// The device.
        device: DeviceName,
        /// What was wrong.
        detail: String,
    },
}

fn retry_after_text(d: Option<Duration>) -> String {
    d.map(|d| format!(", retry after {}s", d.as_secs()))
        .unwrap_or_default()
}

impl HeloError {
    /// The device this error is about.
    pub fn device(&self) -> &DeviceName {
        match self {
            Self::Connect { device, .. }
            | Self::Timeout { device, .. }
            | Self::QueueTimeout { device, .. }
            | Self::Auth { device, .. }
            | Self::Rejected { device, .. }
            | Self::UnsupportedParam { device, .. }
            | Self::Unavailable { device, .. }
            | Self::Status { device, .. }
            | Self::Protocol { device, .. }
            | Self::BodyTooLarge { device, .. }
            | Self::BudgetExhausted { device, .. }
            | Self::InvalidConfig { device, .. } => device,
        }
    }

    /// The request this error is about (empty for configuration errors).
    pub fn request(&self) -> &str {
        match self {
            Self::Connect { request, .. }
            | Self::Timeout { request, .. }
            | Self::QueueTimeout { request, .. }
            | Self::Auth { request, .. }
            | Self::Rejected { request, .. }
            | Self::UnsupportedParam { request, .. }
            | Self::Unavailable { request, .. }
            | Self::Status { request, .. }
            | Self::Protocol { request, .. }
            | Self::BodyTooLarge { request, .. }
            | Self::BudgetExhausted { request, .. } => request,
            Self::InvalidConfig { .. } => "",
        }
    }

    /// How a request that failed with this error ended: the one classification
    /// every layer uses (see [`Outcome`]).
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Connect { .. } => Outcome::Connection,
            Self::Timeout { .. } => Outcome::Timeout,
            Self::QueueTimeout { .. } => Outcome::QueueTimeout,
            Self::Auth { .. } => Outcome::Auth,
            Self::Rejected { .. } => Outcome::Rejected,
            Self::UnsupportedParam { .. } => Outcome::Unsupported,
            Self::Unavailable { .. } => Outcome::Unavailable,
            Self::Status { .. } | Self::Protocol { .. } | Self::BodyTooLarge { .. } => {
                Outcome::Protocol
            }
            // Refused before it reached the device, like load shedding: never held
            // against the device.
            Self::BudgetExhausted { .. } => Outcome::Shed,
            Self::InvalidConfig { .. } => Outcome::Other,
        }
    }

    /// The caller-facing class of this error, derived from its [`outcome`](Self::outcome).
    pub fn class(&self) -> ErrorClass {
        self.outcome().error_class().unwrap_or(ErrorClass::Other)
    }

    /// The first [`HeloError`] in `err`'s `source()` chain (`err` itself included),
    /// for code that holds a boxed error from a tower stack.
    pub fn find<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a HeloError> {
        let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
        while let Some(e) = cur {
            if let Some(h) = e.downcast_ref::<HeloError>() {
                return Some(h);
            }
            cur = e.source();
        }
        None
    }

    /// The connection could not be opened or broke.
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect { .. })
    }

    /// The device did not answer in time (its turn on the wire ran out).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// The request waited too long for its turn on the connection and was never sent.
    pub fn is_queue_timeout(&self) -> bool {
        matches!(self, Self::QueueTimeout { .. })
    }

    /// Authentication failed in any way.
    pub fn is_auth(&self) -> bool {
        matches!(self, Self::Auth { .. })
    }

    /// The configured password is wrong: do not retry until the configuration changes.
    pub fn is_wrong_password(&self) -> bool {
        matches!(
            self,
            Self::Auth {
                failure: AuthFailure::WrongPassword { .. },
                ..
            }
        )
    }

    /// The device does not support the parameter: a normal outcome, not a failure.
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Self::UnsupportedParam { .. })
    }

    /// The device answered `400` with an error text.
    pub fn is_rejected(&self) -> bool {
        matches!(self, Self::Rejected { .. })
    }

    /// The device is rebooting or busy (`503`).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// The device's answer broke the protocol (malformed, wrong shape, too large).
    pub fn is_protocol(&self) -> bool {
        matches!(self, Self::Protocol { .. } | Self::BodyTooLarge { .. })
    }

    /// The device's request budget was used up; the request was not sent.
    pub fn is_budget_exhausted(&self) -> bool {
        matches!(self, Self::BudgetExhausted { .. })
    }

    /// How long to wait before asking again, when known: the device's `Retry-After`,
    /// or the time until the request budget allows one more request.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Unavailable { retry_after, .. } => *retry_after,
            Self::BudgetExhausted { retry_in, .. } => Some(*retry_in),
            _ => None,
        }
    }

    /// Whether the connection this error came from can no longer be used.
    ///
    /// A device that answered (even with an error) leaves the keep-alive connection
    /// usable; a broken or confused connection must be replaced. A timeout does not
    /// break it by itself: the connection reads the late answer in the background
    /// and is closed only when none comes (see
    /// [`HeloConnection`](crate::HeloConnection)); a queue timeout never reached the
    /// wire.
    pub fn breaks_connection(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. } | Self::Protocol { .. } | Self::BodyTooLarge { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> DeviceName {
        DeviceName::from("enc-1")
    }

    #[test]
    fn messages_name_device_and_request() {
        let err = HeloError::Unavailable {
            device: dev(),
            request: "get eParamID_Temperature".into(),
            retry_after: Some(Duration::from_secs(5)),
        };
        let text = err.to_string();
        assert!(text.contains("enc-1"), "{text}");
        assert!(text.contains("get eParamID_Temperature"), "{text}");
        assert!(text.contains("retry after 5s"), "{text}");
        assert_eq!(err.retry_after(), Some(Duration::from_secs(5)));

        let queued = HeloError::QueueTimeout {
            device: dev(),
            request: "get eParamID_SysName".into(),
            waited: Duration::from_millis(600),
        };
        assert_eq!(
            queued.to_string(),
            "enc-1: get eParamID_SysName: waited 600ms for its turn on the connection and was not sent"
        );
        assert!(queued.is_queue_timeout() && !queued.is_timeout());
        assert!(!queued.breaks_connection(), "it never reached the wire");
    }

    #[derive(Debug)]
    struct Wrapped(HeloError);

    impl fmt::Display for Wrapped {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("wrapped")
        }
    }

    impl StdError for Wrapped {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn find_walks_the_source_chain() {
        let inner = HeloError::Rejected {
            device: dev(),
            request: "set eParamID_X".into(),
            message: "read only".into(),
        };
        let wrapped = Wrapped(inner);
        assert!(HeloError::find(&wrapped).is_some_and(HeloError::is_rejected));
        let other: BoxError = "no helo error here".into();
        assert!(HeloError::find(other.as_ref()).is_none());
    }
}
