//! The one error type of this crate, and the caller-facing classes it maps onto.

use std::{error::Error as StdError, fmt, io, time::Duration};

use crate::config::DeviceName;

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

/// The class of an error, as callers handle them: the same three branches as the
/// original Python monitor's `except ConnectionError / TimeoutError / Exception` chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The device could not be reached or the connection broke.
    Connection,
    /// The device did not answer in time.
    Timeout,
    /// Anything else: the device answered, but not with what was asked for.
    Other,
}

impl ErrorClass {
    /// Classifies any error that may come out of a tower stack around a connection.
    ///
    /// Walks the `source()` chain: a [`HeloError`] gives its own class, tower's
    /// `Elapsed` (the timeout middleware) counts as [`ErrorClass::Timeout`], anything
    /// else is [`ErrorClass::Other`].
    pub fn of(err: &(dyn StdError + 'static)) -> Self {
        let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
        while let Some(e) = cur {
            if let Some(h) = e.downcast_ref::<HeloError>() {
                return h.class();
            }
            if e.is::<tower::timeout::error::Elapsed>() {
                return Self::Timeout;
            }
            if let Some(io) = e.downcast_ref::<io::Error>() {
                return if io.kind() == io::ErrorKind::TimedOut {
                    Self::Timeout
                } else {
                    Self::Connection
                };
            }
            cur = e.source();
        }
        Self::Other
    }

    /// A short lowercase label (`connection`, `timeout`, `other`), for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connection => "connection",
            Self::Timeout => "timeout",
            Self::Other => "other",
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
            | Self::Auth { device, .. }
            | Self::Rejected { device, .. }
            | Self::UnsupportedParam { device, .. }
            | Self::Unavailable { device, .. }
            | Self::Status { device, .. }
            | Self::Protocol { device, .. }
            | Self::BodyTooLarge { device, .. }
            | Self::InvalidConfig { device, .. } => device,
        }
    }

    /// The request this error is about (empty for configuration errors).
    pub fn request(&self) -> &str {
        match self {
            Self::Connect { request, .. }
            | Self::Timeout { request, .. }
            | Self::Auth { request, .. }
            | Self::Rejected { request, .. }
            | Self::UnsupportedParam { request, .. }
            | Self::Unavailable { request, .. }
            | Self::Status { request, .. }
            | Self::Protocol { request, .. }
            | Self::BodyTooLarge { request, .. } => request,
            Self::InvalidConfig { .. } => "",
        }
    }

    /// The caller-facing class of this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Connect { .. } | Self::Unavailable { .. } => ErrorClass::Connection,
            Self::Timeout { .. } => ErrorClass::Timeout,
            _ => ErrorClass::Other,
        }
    }

    /// The connection could not be opened or broke.
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect { .. })
    }

    /// The device did not answer in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
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

    /// How long the device asked us to wait, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the connection this error came from can still be used.
    ///
    /// A device that answered (even with an error) leaves the keep-alive connection
    /// usable; a broken, timed-out or confused connection must be replaced.
    pub fn breaks_connection(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. }
                | Self::Timeout { .. }
                | Self::Protocol { .. }
                | Self::BodyTooLarge { .. }
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
    fn classes_follow_the_seed_except_chain() {
        let cases: Vec<(HeloError, ErrorClass)> = vec![
            (
                HeloError::Connect {
                    device: dev(),
                    request: "get eParamID_X".into(),
                    source: "refused".into(),
                },
                ErrorClass::Connection,
            ),
            (
                HeloError::Timeout {
                    device: dev(),
                    request: "get eParamID_X".into(),
                    phase: TimeoutPhase::Response,
                    after: Duration::from_secs(2),
                },
                ErrorClass::Timeout,
            ),
            (
                HeloError::Rejected {
                    device: dev(),
                    request: "set eParamID_X".into(),
                    message: "read only".into(),
                },
                ErrorClass::Other,
            ),
            (
                HeloError::Unavailable {
                    device: dev(),
                    request: "get eParamID_X".into(),
                    retry_after: Some(Duration::from_secs(5)),
                },
                ErrorClass::Connection,
            ),
        ];
        for (err, class) in cases {
            assert_eq!(err.class(), class, "{err}");
            let boxed: BoxError = Box::new(err);
            assert_eq!(ErrorClass::of(boxed.as_ref()), class);
        }
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
    }

    #[test]
    fn tower_elapsed_is_a_timeout() {
        let boxed: BoxError = Box::new(tower::timeout::error::Elapsed::new());
        assert_eq!(ErrorClass::of(boxed.as_ref()), ErrorClass::Timeout);
        let other: BoxError = "something".into();
        assert_eq!(ErrorClass::of(other.as_ref()), ErrorClass::Other);
    }
}
