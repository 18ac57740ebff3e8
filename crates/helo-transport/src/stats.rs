//! Per-connection counters, cheap to update from any task.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters of one connection.
#[derive(Debug, Default)]
pub(crate) struct ConnectionStats {
    requests: AtomicU64,
    errors: AtomicU64,
    relogins: AtomicU64,
    in_flight: AtomicU64,
}

/// A copy of a connection's counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    /// Requests started.
    pub requests: u64,
    /// Requests that ended in an error.
    pub errors: u64,
    /// Times this connection logged in again after a session expired.
    pub relogins: u64,
    /// Requests under way now (queued on the connection or on the wire).
    pub in_flight: u64,
}

impl ConnectionStats {
    pub(crate) fn started(&self) {
        self.requests.fetch_add(1, Relaxed);
        self.in_flight.fetch_add(1, Relaxed);
    }

    pub(crate) fn finished(&self, ok: bool) {
        if !ok {
            self.errors.fetch_add(1, Relaxed);
        }
        self.in_flight.fetch_sub(1, Relaxed);
    }

    pub(crate) fn relogged(&self) {
        self.relogins.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            requests: self.requests.load(Relaxed),
            errors: self.errors.load(Relaxed),
            relogins: self.relogins.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
        }
    }
}
