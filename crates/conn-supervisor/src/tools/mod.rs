//! One-shot device commands (`param`, `stream`, `record`, `events`): they work
//! against any device or mock that speaks the protocol.
//!
//! Everything they print on stdout is one JSON value per line, with control and
//! bidirectional characters escaped (see `shown.rs`); everything they print on stderr
//! goes through [`ToolError`]'s `Display`, which escapes the same characters and bounds
//! the length of device text.

mod events;
mod replicator;
mod shown;
mod signal;

use std::{io::Write, time::Duration};

use helo_transport::{
    AuthFailure, Device, DeviceConfig, HeloClientExt, HeloConnection, HeloError, Password,
};

use self::shown::shown;
pub use self::{
    events::{events, follow_events, EventsOptions},
    replicator::{change_state, record, stream, Engine, Transition, WaitOptions},
    signal::Interrupt,
};

/// Why a tool command failed, as printed to the operator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// The password variable is not set.
    #[error("environment variable {0} is not set")]
    MissingPasswordEnv(String),
    /// The device said no, or could not be reached.
    #[error("{}", shown(&.0.to_string()))]
    Device(#[from] HeloError),
    /// Writing to stdout failed (e.g. a closed pipe).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// `stream`/`record`: the device did not show the state asked for.
    #[error(
        "{}: {noun} state is {}, not {want}, after {}{}",
        shown(device), shown(seen), secs(*after),
        if *failed { " (the device reports a failure)" } else { "" }
    )]
    NotReached {
        /// The device.
        device: String,
        /// `stream` or `record`.
        noun: &'static str,
        /// The state seen last.
        seen: String,
        /// The state asked for.
        want: &'static str,
        /// How long after the command.
        after: Duration,
        /// Whether the wait ended early because the device reported a new failure.
        failed: bool,
    },
    /// `events`: the first connection failed every time.
    #[error(
        "cannot follow events of {}: gave up after {tries} tries; last error: {}",
        shown(device), shown(&last.to_string())
    )]
    Unreachable {
        /// The device.
        device: String,
        /// How many times it was tried.
        tries: u32,
        /// The last attempt's error.
        last: HeloError,
    },
    /// `events`: a device followed before stayed away too long.
    #[error(
        "lost the events of {} for {}, giving up; last error: {}",
        shown(device), secs(*after), shown(&last.to_string())
    )]
    OutageTooLong {
        /// The device.
        device: String,
        /// How long it has been away.
        after: Duration,
        /// The last attempt's error.
        last: HeloError,
    },
    /// The signal handlers could not be installed.
    #[error("cannot listen for signals: {0}")]
    Signal(std::io::Error),
}

impl ToolError {
    /// The device refused the login (wrong or missing password): retrying cannot help.
    pub fn is_login(&self) -> bool {
        match self {
            Self::Device(e) => is_login_error(e),
            _ => false,
        }
    }

    /// `stream`/`record` did not reach the state asked for.
    pub fn is_not_reached(&self) -> bool {
        matches!(self, Self::NotReached { .. })
    }

    /// `events` could not connect at all, or lost the device for too long.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. } | Self::OutageTooLong { .. })
    }
}

/// A login error that no retry can fix: the password is wrong, or the device wants one
/// and none is configured. (An expired session is retried: a rebooting device may cause
/// it.)
fn is_login_error(e: &HeloError) -> bool {
    matches!(
        e,
        HeloError::Auth {
            failure: AuthFailure::WrongPassword { .. } | AuthFailure::PasswordRequired,
            ..
        }
    )
}

/// `12 s`, `0.8 s`: how the tools say how long something took.
fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{s:.1} s")
    }
}

/// Builds a device from a URL and an optional password variable.
pub fn device(url: &str, password_env: Option<&str>) -> Result<Device, ToolError> {
    let password = match password_env {
        None => None,
        Some(var) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Some(Password::new(v)),
            _ => return Err(ToolError::MissingPasswordEnv(var.to_string())),
        },
    };
    Ok(Device::new(
        DeviceConfig::from_url(url, url)?.with_password(password),
    ))
}

/// `param get`: prints the parameter as one JSON line.
pub async fn param_get(device: &Device, param: &str) -> Result<(), ToolError> {
    let conn = HeloConnection::connect(device).await?;
    let value = conn.get_param(param).await?;
    print_json(&value)
}

/// `param set`: prints the device's echo (or `{"success":true}`).
pub async fn param_set(device: &Device, param: &str, value: &str) -> Result<(), ToolError> {
    let conn = HeloConnection::connect(device).await?;
    match conn.set_param(param, value).await? {
        Some(echo) => print_json(&echo),
        None => print_json(&serde_json::json!({ "success": true })),
    }
}

/// Prints one JSON line on stdout (terminal-safe, see [`shown::json_line`]) and
/// flushes it, so a pipe sees each line at once.
fn print_json<T: serde::Serialize>(value: &T) -> Result<(), ToolError> {
    let line = shown::json_line(value).map_err(std::io::Error::other)?;
    let mut out = std::io::stdout().lock();
    out.write_all(&line)?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_the_brief() {
        assert_eq!(secs(Duration::from_secs(10)), "10 s");
        assert_eq!(secs(Duration::from_millis(812)), "0.8 s");
        assert_eq!(secs(Duration::from_millis(1250)), "1.2 s");
    }

    #[test]
    fn device_text_in_errors_is_escaped() {
        let e = ToolError::Device(HeloError::Rejected {
            device: "enc-1".into(),
            request: "set eParamID_X=1".into(),
            message: "bad\u{1b}[31m red\nline".into(),
        });
        let text = e.to_string();
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert!(text.contains(r"bad\u{1b}[31m red\nline"), "{text}");
    }
}
