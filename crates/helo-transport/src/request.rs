//! The requests a connection serves and the answers it gives.

use std::fmt;

use crate::{
    events::{ConfigEvent, EventSubscription},
    param::{Descriptor, ParamValue},
};

/// One request to a device.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeloRequest {
    /// `GET /config?action=get&paramid=NAME`.
    GetParam {
        /// The parameter name.
        name: String,
    },
    /// `GET /config?action=set&paramid=NAME&value=VALUE` (value percent-encoded).
    SetParam {
        /// The parameter name.
        name: String,
        /// The value, as text.
        value: String,
    },
    /// `GET /descriptors?paramid=NAME`.
    GetDescriptor {
        /// The parameter name.
        name: String,
    },
    /// `POST /authenticator/login`. Connections log in by themselves; this is for
    /// tools that want to test a password.
    Login,
    /// Opens an event connection (`/config?action=connect`, or with `legacy`
    /// `/json?action=connect&configid=0` as older clients do).
    Connect {
        /// Use the older `/json` path.
        legacy: bool,
    },
    /// Long-polls an event connection.
    WaitForEvents {
        /// The id from [`HeloRequest::Connect`].
        connection_id: String,
    },
}

impl HeloRequest {
    /// Reads a parameter.
    pub fn get(name: impl Into<String>) -> Self {
        Self::GetParam { name: name.into() }
    }

    /// Sets a parameter.
    pub fn set(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self::SetParam {
            name: name.into(),
            value: value.into(),
        }
    }

    /// A short, fixed label for metrics (`get_param`, `set_param`, `get_descriptor`,
    /// `login`, `connect_events`, `wait_events`).
    pub fn operation(&self) -> &'static str {
        match self {
            Self::GetParam { .. } => "get_param",
            Self::SetParam { .. } => "set_param",
            Self::GetDescriptor { .. } => "get_descriptor",
            Self::Login => "login",
            Self::Connect { .. } => "connect_events",
            Self::WaitForEvents { .. } => "wait_events",
        }
    }

    /// The parameter this request is about, if any.
    pub fn param(&self) -> Option<&str> {
        match self {
            Self::GetParam { name }
            | Self::SetParam { name, .. }
            | Self::GetDescriptor { name } => Some(name),
            _ => None,
        }
    }

    /// Whether this is a long poll, which gets the longer event timeout.
    pub fn is_long_poll(&self) -> bool {
        matches!(self, Self::WaitForEvents { .. })
    }
}

impl fmt::Display for HeloRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::GetParam { name } => write!(f, "get {name}"),
            Self::SetParam { name, value } => write!(f, "set {name}={value}"),
            Self::GetDescriptor { name } => write!(f, "descriptor {name}"),
            Self::Login => f.write_str("login"),
            Self::Connect { legacy: false } => f.write_str("connect"),
            Self::Connect { legacy: true } => f.write_str("connect (legacy /json)"),
            // The id came from the device: shown bounded and escaped, whoever built
            // the request.
            Self::WaitForEvents { connection_id } => write!(
                f,
                "wait_for_config_events {}",
                crate::device_text::device_text(connection_id)
            ),
        }
    }
}

/// A device's answer, one variant per request kind.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum HeloResponse {
    /// The parameter read.
    Param(ParamValue),
    /// A set was accepted; a real device echoes the parameter, some mocks only say
    /// `{"success":true}` (then `None`).
    Set(Option<ParamValue>),
    /// The parameter's descriptor.
    Descriptor(Box<Descriptor>),
    /// Logged in.
    LoggedIn,
    /// An event connection was opened.
    Connected(EventSubscription),
    /// Events from a long poll (empty after the device's hold time).
    Events(Vec<ConfigEvent>),
}

impl HeloResponse {
    /// The variant's name, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Param(_) => "param",
            Self::Set(_) => "set",
            Self::Descriptor(_) => "descriptor",
            Self::LoggedIn => "logged_in",
            Self::Connected(_) => "connected",
            Self::Events(_) => "events",
        }
    }
}
