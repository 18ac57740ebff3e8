//! Passive health: outcomes and latencies of real requests, in bounded sliding
//! windows per encoder and per connection.

use std::{
    collections::{HashMap, VecDeque},
    error::Error as StdError,
    fmt,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use helo_transport::{ConnectionId, ErrorClass, HeloError};
use tokio::time::Instant;

use crate::{error::HealthError, status::EncoderId};

/// How one request ended, as passive health counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Answered.
    Success,
    /// The device answered that it lacks the parameter: an answer, not an error.
    Unsupported,
    /// Failed, with the error's class.
    Error(ErrorClass),
    /// Refused by the thermal layer before it reached the device: says nothing about
    /// the device, so passive windows do not record it.
    Shed,
}

impl RequestOutcome {
    /// The outcome of a request that failed with `err` (any error of a tower stack).
    pub fn of_error(err: &(dyn StdError + 'static)) -> Self {
        let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
        while let Some(e) = cur {
            if e.downcast_ref::<HeloError>()
                .is_some_and(HeloError::is_unsupported)
            {
                return Self::Unsupported;
            }
            if e.is::<conn_core::Overloaded>() {
                return Self::Shed;
            }
            cur = e.source();
        }
        Self::Error(ErrorClass::of(err))
    }

    /// Whether it counts as an error.
    pub fn is_error(self) -> bool {
        matches!(self, Self::Error(_))
    }
}

/// Bounds of the windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassiveConfig {
    /// Samples kept per window (default 100).
    pub window: usize,
    /// Samples older than this are forgotten (default 5 min).
    pub max_age: Duration,
    /// Connection windows kept per encoder; the least recently used goes first
    /// (default 32).
    pub max_connections_per_encoder: usize,
}

impl Default for PassiveConfig {
    fn default() -> Self {
        Self {
            window: 100,
            max_age: Duration::from_secs(300),
            max_connections_per_encoder: 32,
        }
    }
}

/// What a window holds now.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WindowSummary {
    /// Requests in the window.
    pub requests: u64,
    /// Of those, errors.
    pub errors: u64,
    /// Mean latency, when there were requests.
    pub mean_latency: Option<Duration>,
    /// Largest latency.
    pub max_latency: Option<Duration>,
    /// The class of the newest error.
    pub last_error: Option<ErrorClass>,
}

impl WindowSummary {
    /// Errors over requests, when there were requests.
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 / self.requests as f64)
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    latency: Duration,
    outcome: RequestOutcome,
}

#[derive(Debug, Default)]
struct Window {
    samples: VecDeque<Sample>,
}

impl Window {
    fn push(&mut self, s: Sample, cap: usize) {
        while self.samples.len() >= cap {
            self.samples.pop_front();
        }
        self.samples.push_back(s);
    }

    fn prune(&mut self, now: Instant, max_age: Duration) {
        while self
            .samples
            .front()
            .is_some_and(|s| now.saturating_duration_since(s.at) > max_age)
        {
            self.samples.pop_front();
        }
    }

    fn newest(&self) -> Option<Instant> {
        self.samples.back().map(|s| s.at)
    }

    fn summary(&self) -> WindowSummary {
        let n = self.samples.len() as u64;
        if n == 0 {
            return WindowSummary::default();
        }
        let total: Duration = self.samples.iter().map(|s| s.latency).sum();
        WindowSummary {
            requests: n,
            errors: self.samples.iter().filter(|s| s.outcome.is_error()).count() as u64,
            mean_latency: u32::try_from(n).ok().map(|n| total / n),
            max_latency: self.samples.iter().map(|s| s.latency).max(),
            last_error: self.samples.iter().rev().find_map(|s| match s.outcome {
                RequestOutcome::Error(c) => Some(c),
                _ => None,
            }),
        }
    }
}

#[derive(Debug, Default)]
struct EncoderWindows {
    all: Window,
    connections: HashMap<ConnectionId, Window>,
}

/// Shared per-encoder and per-connection request windows.
///
/// Cloning gives another handle to the same windows: the [`HealthLayer`](crate::HealthLayer)
/// of every connection writes, the checker reads.
#[derive(Clone, Default)]
pub struct PassiveStats {
    inner: Arc<Mutex<HashMap<EncoderId, EncoderWindows>>>,
    config: Arc<PassiveConfig>,
}

impl fmt::Debug for PassiveStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PassiveStats")
            .field("encoders", &self.lock().len())
            .field("config", &self.config)
            .finish()
    }
}

impl PassiveStats {
    /// Empty windows with these bounds.
    pub fn try_new(config: PassiveConfig) -> Result<Self, HealthError> {
        if config.window == 0 || config.max_connections_per_encoder == 0 {
            return Err(HealthError::config(
                "passive window and max_connections_per_encoder must be at least 1",
            ));
        }
        if config.max_age.is_zero() {
            return Err(HealthError::config(
                "passive max_age must be greater than zero",
            ));
        }
        Ok(Self {
            inner: Arc::default(),
            config: Arc::new(config),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<EncoderId, EncoderWindows>> {
        // A panic elsewhere while holding the lock leaves plain counters behind: still
        // usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records one finished request.
    pub fn record(
        &self,
        encoder: &EncoderId,
        conn: ConnectionId,
        latency: Duration,
        outcome: RequestOutcome,
    ) {
        self.record_at(encoder, conn, Instant::now(), latency, outcome);
    }

    /// [`record`](Self::record) for a request that finished at `now`, so a caller that
    /// already read the clock to time it does not read it again.
    pub(crate) fn record_at(
        &self,
        encoder: &EncoderId,
        conn: ConnectionId,
        now: Instant,
        latency: Duration,
        outcome: RequestOutcome,
    ) {
        if outcome == RequestOutcome::Shed {
            return;
        }
        let sample = Sample {
            at: now,
            latency,
            outcome,
        };
        let cfg = &*self.config;
        let mut map = self.lock();
        let enc = map.entry(encoder.clone()).or_default();
        enc.all.prune(now, cfg.max_age);
        enc.all.push(sample, cfg.window);
        if !enc.connections.contains_key(&conn)
            && enc.connections.len() >= cfg.max_connections_per_encoder
        {
            let oldest = enc
                .connections
                .iter()
                .min_by_key(|(_, w)| w.newest())
                .map(|(id, _)| *id);
            if let Some(id) = oldest {
                enc.connections.remove(&id);
            }
        }
        let w = enc.connections.entry(conn).or_default();
        w.prune(now, cfg.max_age);
        w.push(sample, cfg.window);
    }

    /// The window of one connection.
    pub fn connection(&self, encoder: &EncoderId, conn: ConnectionId) -> WindowSummary {
        let now = Instant::now();
        let mut map = self.lock();
        let Some(w) = map
            .get_mut(encoder)
            .and_then(|e| e.connections.get_mut(&conn))
        else {
            return WindowSummary::default();
        };
        w.prune(now, self.config.max_age);
        w.summary()
    }

    /// The window of all connections of one encoder.
    pub fn encoder(&self, encoder: &EncoderId) -> WindowSummary {
        let now = Instant::now();
        let mut map = self.lock();
        let Some(e) = map.get_mut(encoder) else {
            return WindowSummary::default();
        };
        e.all.prune(now, self.config.max_age);
        e.all.summary()
    }

    /// Forgets a connection (closed or evicted).
    pub fn remove_connection(&self, encoder: &EncoderId, conn: ConnectionId) {
        if let Some(e) = self.lock().get_mut(encoder) {
            e.connections.remove(&conn);
        }
    }

    /// Forgets an encoder.
    pub fn remove_encoder(&self, encoder: &EncoderId) {
        self.lock().remove(encoder);
    }
}

#[cfg(test)]
mod tests {
    use helo_transport::BoxError;

    use super::*;

    fn enc() -> EncoderId {
        EncoderId::from("enc-1")
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn windows_are_bounded_by_count_and_age() {
        let stats = PassiveStats::try_new(PassiveConfig {
            window: 4,
            max_age: Duration::from_secs(10),
            max_connections_per_encoder: 2,
        })
        .unwrap();
        let c1 = ConnectionId::from_raw(1);
        for i in 0..6 {
            let outcome = if i < 2 {
                RequestOutcome::Error(ErrorClass::Timeout)
            } else {
                RequestOutcome::Success
            };
            stats.record(&enc(), c1, ms(10 * (i + 1)), outcome);
        }
        // The two errors fell out of the 4-sample window.
        let s = stats.connection(&enc(), c1);
        assert_eq!((s.requests, s.errors), (4, 0));
        assert_eq!(s.mean_latency, Some(ms(45)));
        assert_eq!(s.max_latency, Some(ms(60)));

        tokio::time::advance(Duration::from_secs(6)).await;
        stats.record(
            &enc(),
            c1,
            ms(100),
            RequestOutcome::Error(ErrorClass::Connection),
        );
        tokio::time::advance(Duration::from_secs(6)).await;
        let s = stats.connection(&enc(), c1);
        assert_eq!((s.requests, s.errors), (1, 1));
        assert_eq!(s.error_rate(), Some(1.0));
        assert_eq!(s.last_error, Some(ErrorClass::Connection));
        assert_eq!(stats.encoder(&enc()).requests, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn connections_are_evicted_least_recent_first_and_removable() {
        let stats = PassiveStats::try_new(PassiveConfig {
            max_connections_per_encoder: 2,
            ..PassiveConfig::default()
        })
        .unwrap();
        let [c1, c2, c3] = [1, 2, 3].map(ConnectionId::from_raw);
        stats.record(&enc(), c1, ms(1), RequestOutcome::Success);
        tokio::time::advance(ms(1)).await;
        stats.record(&enc(), c2, ms(1), RequestOutcome::Success);
        tokio::time::advance(ms(1)).await;
        stats.record(&enc(), c3, ms(1), RequestOutcome::Success);
        assert_eq!(stats.connection(&enc(), c1).requests, 0);
        assert_eq!(stats.connection(&enc(), c2).requests, 1);
        assert_eq!(stats.encoder(&enc()).requests, 3);
        stats.remove_connection(&enc(), c2);
        assert_eq!(stats.connection(&enc(), c2).requests, 0);
        stats.remove_encoder(&enc());
        assert_eq!(stats.encoder(&enc()), WindowSummary::default());
    }

    #[test]
    fn unsupported_answers_are_not_errors() {
        let unsupported: BoxError = Box::new(HeloError::UnsupportedParam {
            device: enc(),
            request: "get eParamID_Temperature".into(),
            param: "eParamID_Temperature".into(),
        });
        assert_eq!(
            RequestOutcome::of_error(unsupported.as_ref()),
            RequestOutcome::Unsupported
        );
        let refused: BoxError = Box::new(HeloError::Connect {
            device: enc(),
            request: "get x".into(),
            source: "refused".into(),
        });
        assert_eq!(
            RequestOutcome::of_error(refused.as_ref()),
            RequestOutcome::Error(ErrorClass::Connection)
        );
        assert!(PassiveStats::try_new(PassiveConfig {
            window: 0,
            ..PassiveConfig::default()
        })
        .unwrap_err()
        .is_invalid_config());
    }
}
