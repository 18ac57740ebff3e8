//! Request counters, so benchmarks can measure device requests per health check.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

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
            &self.connect,
            &self.wait,
            &self.other,
            &self.control,
        ] {
            c.store(0, Relaxed);
        }
    }
}

/// Requests a device received, by kind. Every protocol request counts once on arrival,
/// whatever faults or authentication then do with it.
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
    /// `action=connect` on `/config` or `/json`.
    pub connect: u64,
    /// `action=wait_for_config_events`.
    pub wait_for_config_events: u64,
    /// Anything else (unknown paths or actions).
    pub other: u64,
    /// `/sim/*` control requests (not part of `total`).
    pub control: u64,
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
            connect: a.connect + b.connect,
            wait_for_config_events: a.wait_for_config_events + b.wait_for_config_events,
            other: a.other + b.other,
            control: a.control + b.control,
        })
    }
}
