//! Request counters, so benchmarks can measure device requests per health check and
//! tests can prove a client stopped doing something.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

use crate::SimError;

/// What a protocol request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathKind {
    Get,
    Set,
    Descriptors,
    Login,
    Connect,
    Wait,
    Other,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    total: AtomicU64,
    get: AtomicU64,
    set: AtomicU64,
    descriptors: AtomicU64,
    login: AtomicU64,
    login_ok: AtomicU64,
    login_refused: AtomicU64,
    connect: AtomicU64,
    wait: AtomicU64,
    other: AtomicU64,
    control: AtomicU64,
}

impl Counters {
    pub(crate) fn record(&self, kind: PathKind) {
        self.total.fetch_add(1, Relaxed);
        let c = match kind {
            PathKind::Get => &self.get,
            PathKind::Set => &self.set,
            PathKind::Descriptors => &self.descriptors,
            PathKind::Login => &self.login,
            PathKind::Connect => &self.connect,
            PathKind::Wait => &self.wait,
            PathKind::Other => &self.other,
        };
        c.fetch_add(1, Relaxed);
    }

    /// How a login the device answered itself went (on top of [`Counters::record`]).
    pub(crate) fn record_login(&self, accepted: bool) {
        let c = if accepted {
            &self.login_ok
        } else {
            &self.login_refused
        };
        c.fetch_add(1, Relaxed);
    }

    pub(crate) fn record_control(&self) {
        self.control.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> RequestCounts {
        RequestCounts {
            total: self.total.load(Relaxed),
            get: self.get.load(Relaxed),
            set: self.set.load(Relaxed),
            descriptors: self.descriptors.load(Relaxed),
            login: self.login.load(Relaxed),
            login_ok: self.login_ok.load(Relaxed),
            login_refused: self.login_refused.load(Relaxed),
            connect: self.connect.load(Relaxed),
            wait_for_config_events: self.wait.load(Relaxed),
            other: self.other.load(Relaxed),
            control: self.control.load(Relaxed),
        }
    }

    pub(crate) fn reset(&self) {
        for c in [
            &self.total,
            &self.get,
            &self.set,
            &self.descriptors,
            &self.login,
            &self.login_ok,
            &self.login_refused,
            &self.connect,
            &self.wait,
            &self.other,
            &self.control,
        ] {
            c.store(0, Relaxed);
        }
    }
}

/// Requests a device received since it started or since the counters were last reset,
/// by kind. Every protocol request counts once on arrival, whatever faults or
/// authentication then do with it; `login_ok` and `login_refused` count the logins the
/// device answered itself, so they add up to at most `login`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RequestCounts {
    /// All protocol requests (everything but `/sim/*`).
    pub total: u64,
    /// `action=get`.
    pub get: u64,
    /// `action=set`.
    pub set: u64,
    /// `GET /descriptors`.
    pub descriptors: u64,
    /// `POST /authenticator/login`.
    pub login: u64,
    /// Logins answered `{"login":"success"}` (with or without a cookie).
    pub login_ok: u64,
    /// Logins refused for a wrong password.
    pub login_refused: u64,
    /// `action=connect` on `/config` or `/json`.
    pub connect: u64,
    /// `action=wait_for_config_events`.
    pub wait_for_config_events: u64,
    /// Anything else (unknown paths or actions).
    pub other: u64,
    /// `/sim/*` control requests (not part of `total`).
    pub control: u64,
}

impl RequestCounts {
    /// The counter of one kind.
    pub fn of(&self, kind: RequestKind) -> u64 {
        match kind {
            RequestKind::Total => self.total,
            RequestKind::Get => self.get,
            RequestKind::Set => self.set,
            RequestKind::Descriptors => self.descriptors,
            RequestKind::Login => self.login,
            RequestKind::LoginOk => self.login_ok,
            RequestKind::LoginRefused => self.login_refused,
            RequestKind::Connect => self.connect,
            RequestKind::WaitForConfigEvents => self.wait_for_config_events,
            RequestKind::Other => self.other,
            RequestKind::Control => self.control,
        }
    }
}

/// Totals over several devices (the fleet endpoint of `helo-sim --control`).
impl std::iter::Sum for RequestCounts {
    fn sum<I: Iterator<Item = RequestCounts>>(iter: I) -> Self {
        iter.fold(RequestCounts::default(), |a, b| RequestCounts {
            total: a.total + b.total,
            get: a.get + b.get,
            set: a.set + b.set,
            descriptors: a.descriptors + b.descriptors,
            login: a.login + b.login,
            login_ok: a.login_ok + b.login_ok,
            login_refused: a.login_refused + b.login_refused,
            connect: a.connect + b.connect,
            wait_for_config_events: a.wait_for_config_events + b.wait_for_config_events,
            other: a.other + b.other,
            control: a.control + b.control,
        })
    }
}

/// One counter of [`RequestCounts`]; its name is the JSON key (`login_ok`, …), as
/// `GET /sim/counts?kind=NAME` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestKind {
    /// All protocol requests.
    Total,
    /// `action=get`.
    Get,
    /// `action=set`.
    Set,
    /// `GET /descriptors`.
    Descriptors,
    /// Every login request.
    Login,
    /// Logins that succeeded.
    LoginOk,
    /// Logins refused for a wrong password.
    LoginRefused,
    /// `action=connect`.
    Connect,
    /// `action=wait_for_config_events`.
    WaitForConfigEvents,
    /// Unknown paths or actions.
    Other,
    /// `/sim/*` control requests.
    Control,
}

impl RequestKind {
    /// Every kind, in the order of the JSON keys.
    pub const ALL: [RequestKind; 11] = [
        RequestKind::Total,
        RequestKind::Get,
        RequestKind::Set,
        RequestKind::Descriptors,
        RequestKind::Login,
        RequestKind::LoginOk,
        RequestKind::LoginRefused,
        RequestKind::Connect,
        RequestKind::WaitForConfigEvents,
        RequestKind::Other,
        RequestKind::Control,
    ];

    /// The JSON key of this counter.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Total => "total",
            RequestKind::Get => "get",
            RequestKind::Set => "set",
            RequestKind::Descriptors => "descriptors",
            RequestKind::Login => "login",
            RequestKind::LoginOk => "login_ok",
            RequestKind::LoginRefused => "login_refused",
            RequestKind::Connect => "connect",
            RequestKind::WaitForConfigEvents => "wait_for_config_events",
            RequestKind::Other => "other",
            RequestKind::Control => "control",
        }
    }
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RequestKind {
    type Err = SimError;

    fn from_str(s: &str) -> Result<Self, SimError> {
        RequestKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| SimError::UnknownRequestKind(s.chars().take(64).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_name_the_json_keys_of_the_counts() {
        let counts = RequestCounts {
            total: 1,
            get: 2,
            set: 3,
            descriptors: 4,
            login: 5,
            login_ok: 6,
            login_refused: 7,
            connect: 8,
            wait_for_config_events: 9,
            other: 10,
            control: 11,
        };
        let json = serde_json::to_value(counts).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), RequestKind::ALL.len());
        for kind in RequestKind::ALL {
            assert_eq!(json[kind.as_str()], counts.of(kind), "{kind}");
            assert_eq!(kind.as_str().parse::<RequestKind>().unwrap(), kind);
        }
        assert!("logins"
            .parse::<RequestKind>()
            .unwrap_err()
            .is_unknown_request_kind());
    }
}
