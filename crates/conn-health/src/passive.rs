//! Passive health: outcomes and latencies of real requests, in bounded sliding
//! windows per connection; an encoder's window is theirs merged when read.

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use helo_transport::{ConnectionId, ErrorClass, Outcome};
use tokio::time::Instant;

use crate::{error::HealthError, status::EncoderId};

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
    /// Of those, errors ([`Outcome::is_error`]: not answers like "unsupported").
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

    fn of<'a>(samples: impl Iterator<Item = &'a Sample> + Clone) -> Self {
        let n = samples.clone().count() as u64;
        if n == 0 {
            return Self::default();
        }
        let total: Duration = samples.clone().map(Sample::latency).sum();
        Self {
            requests: n,
            errors: samples.clone().filter(|s| s.outcome.is_error()).count() as u64,
            mean_latency: u32::try_from(n).ok().map(|n| total / n),
            max_latency: samples.clone().map(Sample::latency).max(),
            // Samples come oldest first (a window's in the order they were recorded,
            // an encoder's merged by time).
            last_error: samples
                .filter(|s| s.outcome.is_error())
                .last()
                .and_then(|s| s.outcome.error_class()),
        }
    }
}

/// One request, in 16 bytes: an `Instant` and a `Duration` made it 40, and every
/// connection of the fleet keeps up to a window's worth (100 by default, five minutes).
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Milliseconds after the window's base.
    at: u64,
    /// Microseconds (saturating: over an hour is no request's).
    latency_us: u32,
    outcome: Outcome,
}

impl Sample {
    fn latency(&self) -> Duration {
        Duration::from_micros(u64::from(self.latency_us))
    }
}

/// `d` in whole milliseconds, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[derive(Debug, Default)]
struct Window {
    /// The instant sample times count from: the first sample's.
    base: Option<Instant>,
    samples: VecDeque<Sample>,
}

impl Window {
    fn push(&mut self, now: Instant, latency: Duration, outcome: Outcome, cap: usize) {
        while self.samples.len() >= cap {
            self.samples.pop_front();
        }
        let at = self.offset(now);
        self.samples.push_back(Sample {
            at,
            latency_us: u32::try_from(latency.as_micros()).unwrap_or(u32::MAX),
            outcome,
        });
    }

    /// `now` in milliseconds after the base (which the first sample sets).
    fn offset(&mut self, now: Instant) -> u64 {
        let base = *self.base.get_or_insert(now);
        millis(now.saturating_duration_since(base))
    }

    /// When a sample was recorded.
    fn instant(&self, s: &Sample) -> Option<Instant> {
        self.base.map(|b| b + Duration::from_millis(s.at))
    }

    fn prune(&mut self, now: Instant, max_age: Duration) {
        let Some(base) = self.base else {
            return;
        };
        let now_ms = millis(now.saturating_duration_since(base));
        let max_age_ms = millis(max_age);
        while self
            .samples
            .front()
            .is_some_and(|s| now_ms.saturating_sub(s.at) > max_age_ms)
        {
            self.samples.pop_front();
        }
        // A VecDeque keeps its capacity: a window that filled once and then aged out
        // (a retired connection's, an idle one's) would hold a full window's memory
        // for good. The soak measured that as RSS growing with every connection
        // replaced.
        if self.samples.capacity() > 16 && self.samples.len() < self.samples.capacity() / 4 {
            self.samples.shrink_to(self.samples.len() * 2);
        }
    }

    fn newest(&self) -> Option<Instant> {
        self.samples.back().and_then(|s| self.instant(s))
    }
}

/// One connection's window. Its [`HealthLayer`](crate::HealthLayer) resolves it
/// once, when the layer is built, so a request locks this connection's window and
/// nothing shared with other connections.
pub(crate) struct ConnWindow {
    encoder: EncoderId,
    conn: ConnectionId,
    window: Mutex<Window>,
    cap: usize,
    max_age: Duration,
}

impl fmt::Debug for ConnWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnWindow")
            .field("encoder", &self.encoder)
            .field("conn", &self.conn)
            .field("samples", &self.lock().samples.len())
            .finish()
    }
}

impl ConnWindow {
    fn new(encoder: &EncoderId, conn: ConnectionId, config: &PassiveConfig) -> Self {
        Self {
            encoder: encoder.clone(),
            conn,
            window: Mutex::new(Window::default()),
            cap: config.window,
            max_age: config.max_age,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Window> {
        // A panic elsewhere while holding the lock leaves plain samples behind: still
        // usable.
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records one request that finished at `now`; shed work is not the device's.
    pub(crate) fn record(&self, now: Instant, latency: Duration, outcome: Outcome) {
        if outcome.is_shed() {
            return;
        }
        let mut w = self.lock();
        w.prune(now, self.max_age);
        w.push(now, latency, outcome, self.cap);
    }

    fn pruned(&self, now: Instant) -> MutexGuard<'_, Window> {
        let mut w = self.lock();
        w.prune(now, self.max_age);
        w
    }
}

type Connections = HashMap<ConnectionId, Arc<ConnWindow>>;

struct Shared {
    config: PassiveConfig,
    encoders: Mutex<HashMap<EncoderId, Connections>>,
}

/// Request windows of every connection, per encoder.
///
/// Cloning gives another handle to the same windows: the [`HealthLayer`](crate::HealthLayer)
/// of every connection writes (each into its own connection's window, resolved when
/// the layer is built), the checker reads. An encoder's window is its connections'
/// windows merged when read (the newest `window` samples of them all), so no lock is
/// shared between connections on the request path. A connection's window outlives
/// the connection until its samples age out or newer connections evict it, so an
/// encoder's recent errors are not forgotten when a broken connection is replaced.
#[derive(Clone)]
pub struct PassiveStats {
    shared: Arc<Shared>,
}

impl Default for PassiveStats {
    fn default() -> Self {
        Self::with_config(PassiveConfig::default())
    }
}

impl fmt::Debug for PassiveStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PassiveStats")
            .field("encoders", &self.lock().len())
            .field("config", &self.shared.config)
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
        Ok(Self::with_config(config))
    }

    fn with_config(config: PassiveConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                config,
                encoders: Mutex::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<EncoderId, Connections>> {
        self.shared
            .encoders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The window of connection `conn` of `encoder`, made if new (evicting the least
    /// recently used window of the encoder when it has too many). Resolved once per
    /// layer, not per request.
    pub(crate) fn handle(&self, encoder: &EncoderId, conn: ConnectionId) -> Arc<ConnWindow> {
        let cfg = &self.shared.config;
        let mut map = self.lock();
        let conns = map.entry(encoder.clone()).or_default();
        if let Some(w) = conns.get(&conn) {
            return w.clone();
        }
        if conns.len() >= cfg.max_connections_per_encoder {
            let oldest = conns
                .iter()
                .min_by_key(|(_, w)| w.lock().newest())
                .map(|(id, _)| *id);
            if let Some(id) = oldest {
                conns.remove(&id);
            }
        }
        conns
            .entry(conn)
            .or_insert_with(|| Arc::new(ConnWindow::new(encoder, conn, cfg)))
            .clone()
    }

    fn existing(&self, encoder: &EncoderId, conn: ConnectionId) -> Option<Arc<ConnWindow>> {
        self.lock().get(encoder)?.get(&conn).cloned()
    }

    /// Records one finished request made outside a [`HealthLayer`](crate::HealthLayer)
    /// (which records by itself). Shed work ([`Outcome::is_shed`]) is not recorded.
    pub fn record(
        &self,
        encoder: &EncoderId,
        conn: ConnectionId,
        latency: Duration,
        outcome: Outcome,
    ) {
        self.handle(encoder, conn)
            .record(Instant::now(), latency, outcome);
    }

    /// The window of one connection.
    pub fn connection(&self, encoder: &EncoderId, conn: ConnectionId) -> WindowSummary {
        let Some(w) = self.existing(encoder, conn) else {
            return WindowSummary::default();
        };
        let w = w.pruned(Instant::now());
        WindowSummary::of(w.samples.iter())
    }

    /// The window of all connections of one encoder: the newest `window` samples of
    /// its connections' windows.
    pub fn encoder(&self, encoder: &EncoderId) -> WindowSummary {
        let now = Instant::now();
        let windows: Vec<Arc<ConnWindow>> = {
            let mut map = self.lock();
            let Some(conns) = map.get_mut(encoder) else {
                return WindowSummary::default();
            };
            // A window no layer holds any more (its connection is gone) is kept while
            // it has samples, so a broken connection's errors still count, and dropped
            // once they have aged out: the windows of an encoder are then those of its
            // live connections and of the ones retired within `max_age`.
            conns.retain(|_, w| Arc::strong_count(w) > 1 || !w.pruned(now).samples.is_empty());
            conns.values().cloned().collect()
        };
        // Each window counts from its own base: merged by the instants they stand for.
        let mut samples: Vec<(Option<Instant>, Sample)> = windows
            .iter()
            .flat_map(|w| {
                let w = w.pruned(now);
                w.samples
                    .iter()
                    .map(|s| (w.instant(s), *s))
                    .collect::<Vec<_>>()
            })
            .collect();
        samples.sort_by_key(|(at, _)| *at);
        let keep = samples.len().saturating_sub(self.shared.config.window);
        WindowSummary::of(samples[keep..].iter().map(|(_, s)| s))
    }

    /// Forgets an encoder.
    pub fn remove_encoder(&self, encoder: &EncoderId) {
        self.lock().remove(encoder);
    }
}

#[cfg(test)]
mod tests {
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
                Outcome::Timeout
            } else {
                Outcome::Success
            };
            stats.record(&enc(), c1, ms(10 * (i + 1)), outcome);
        }
        // The two errors fell out of the 4-sample window.
        let s = stats.connection(&enc(), c1);
        assert_eq!((s.requests, s.errors), (4, 0));
        assert_eq!(s.mean_latency, Some(ms(45)));
        assert_eq!(s.max_latency, Some(ms(60)));

        tokio::time::advance(Duration::from_secs(6)).await;
        stats.record(&enc(), c1, ms(100), Outcome::Connection);
        tokio::time::advance(Duration::from_secs(6)).await;
        let s = stats.connection(&enc(), c1);
        assert_eq!((s.requests, s.errors), (1, 1));
        assert_eq!(s.error_rate(), Some(1.0));
        assert_eq!(s.last_error, Some(ErrorClass::Connection));
        assert_eq!(stats.encoder(&enc()).requests, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn connections_are_evicted_least_recent_first() {
        let stats = PassiveStats::try_new(PassiveConfig {
            max_connections_per_encoder: 2,
            ..PassiveConfig::default()
        })
        .unwrap();
        let [c1, c2, c3] = [1, 2, 3].map(ConnectionId::from_raw);
        stats.record(&enc(), c1, ms(1), Outcome::Success);
        tokio::time::advance(ms(1)).await;
        stats.record(&enc(), c2, ms(1), Outcome::Success);
        tokio::time::advance(ms(1)).await;
        stats.record(&enc(), c3, ms(1), Outcome::Success);
        assert_eq!(stats.connection(&enc(), c1).requests, 0);
        assert_eq!(stats.connection(&enc(), c2).requests, 1);
        assert_eq!(stats.encoder(&enc()).requests, 2, "c1's window was evicted");
        stats.remove_encoder(&enc());
        assert_eq!(stats.encoder(&enc()), WindowSummary::default());
    }

    #[tokio::test(start_paused = true)]
    async fn an_encoders_window_merges_its_connections_newest_first() {
        let stats = PassiveStats::try_new(PassiveConfig {
            window: 3,
            ..PassiveConfig::default()
        })
        .unwrap();
        let [c1, c2] = [1, 2].map(ConnectionId::from_raw);
        // Handles are resolved once, as a layer does; each writes its own window.
        let (h1, h2) = (stats.handle(&enc(), c1), stats.handle(&enc(), c2));
        h1.record(Instant::now(), ms(10), Outcome::Timeout);
        tokio::time::advance(ms(1)).await;
        h2.record(Instant::now(), ms(20), Outcome::Success);
        tokio::time::advance(ms(1)).await;
        h1.record(Instant::now(), ms(30), Outcome::Connection);
        tokio::time::advance(ms(1)).await;
        h2.record(Instant::now(), ms(40), Outcome::Rejected);
        tokio::time::advance(ms(1)).await;
        h2.record(Instant::now(), ms(50), Outcome::Shed);
        // The newest three of both: 20 ms ok, 30 ms connection error, 40 ms rejected
        // (an answer); the shed request is not the device's.
        let s = stats.encoder(&enc());
        assert_eq!((s.requests, s.errors), (3, 1));
        assert_eq!(s.mean_latency, Some(ms(30)));
        assert_eq!(s.max_latency, Some(ms(40)));
        assert_eq!(s.last_error, Some(ErrorClass::Connection));
        let s1 = stats.connection(&enc(), c1);
        assert_eq!((s1.requests, s1.errors), (2, 2));
        assert!(
            Arc::ptr_eq(&h1, &stats.handle(&enc(), c1)),
            "one window per connection"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_retired_connections_window_goes_once_its_samples_age_out() {
        let stats = PassiveStats::try_new(PassiveConfig {
            window: 100,
            max_age: Duration::from_secs(10),
            max_connections_per_encoder: 32,
        })
        .unwrap();
        let windows = |stats: &PassiveStats| stats.lock().get(&enc()).map_or(0, |c| c.len());
        let live = stats.handle(&enc(), ConnectionId::from_raw(1));
        // Twenty connections, each filling its window, then retired (its layer
        // dropped), as max_lifetime does all day.
        for raw in 2..22 {
            let gone = stats.handle(&enc(), ConnectionId::from_raw(raw));
            for _ in 0..100 {
                gone.record(Instant::now(), ms(5), Outcome::Timeout);
            }
        }
        // Later than theirs: samples of the same instant come out of the merge in
        // the windows' (hash map) order, so a tie would make the count below vary.
        tokio::time::advance(ms(1)).await;
        live.record(Instant::now(), ms(5), Outcome::Success);
        // Within max_age the retired connections' errors still count: the newest 100
        // samples are the live success and 99 of theirs.
        assert_eq!(stats.encoder(&enc()).errors, 99, "the newest 100 samples");
        assert_eq!(windows(&stats), 21);

        tokio::time::advance(Duration::from_secs(11)).await;
        let s = stats.encoder(&enc());
        assert_eq!((s.requests, s.errors), (0, 0));
        assert_eq!(
            windows(&stats),
            1,
            "only the live connection's window is left"
        );
        // The live one keeps its window though it is empty, and its capacity went.
        assert!(Arc::ptr_eq(
            &live,
            &stats.handle(&enc(), ConnectionId::from_raw(1))
        ));
        live.record(Instant::now(), ms(5), Outcome::Connection);
        assert_eq!(stats.encoder(&enc()).errors, 1);
    }

    #[test]
    fn a_sample_is_sixteen_bytes() {
        // Up to 100 a connection, for every connection of the fleet.
        assert_eq!(size_of::<Sample>(), 16);
    }

    #[tokio::test(start_paused = true)]
    async fn latencies_and_ages_survive_the_compact_samples() {
        let mut w = Window::default();
        let t0 = Instant::now();
        w.push(t0, Duration::from_micros(1_500), Outcome::Success, 100);
        w.push(t0 + ms(2_500), ms(40), Outcome::Timeout, 100);
        w.push(
            t0 + ms(4_000),
            Duration::from_secs(7_200),
            Outcome::Success,
            100,
        );
        let summary = WindowSummary::of(w.samples.iter());
        assert_eq!(summary.requests, 3);
        assert_eq!(summary.errors, 1);
        assert_eq!(summary.last_error, Outcome::Timeout.error_class());
        // Over an hour saturates at u32::MAX microseconds (71 minutes).
        assert_eq!(
            summary.max_latency,
            Some(Duration::from_micros(u64::from(u32::MAX)))
        );
        assert_eq!(w.newest(), Some(t0 + ms(4_000)));
        // Aged out by the instant, to the millisecond.
        w.prune(t0 + ms(12_501), Duration::from_secs(10));
        assert_eq!(w.samples.len(), 1);
        w.prune(t0 + ms(14_001), Duration::from_secs(10));
        assert!(w.samples.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_window_that_aged_out_gives_its_memory_back() {
        let mut w = Window::default();
        let t0 = Instant::now();
        for _ in 0..100 {
            w.push(t0, ms(1), Outcome::Success, 100);
        }
        assert!(w.samples.capacity() >= 100);
        w.prune(t0 + Duration::from_secs(11), Duration::from_secs(10));
        assert!(w.samples.is_empty());
        assert!(w.samples.capacity() <= 16, "{}", w.samples.capacity());
    }

    #[tokio::test(start_paused = true)]
    async fn answers_are_not_errors_and_bad_config_is_refused() {
        let stats = PassiveStats::default();
        let c = ConnectionId::from_raw(4);
        stats.record(&enc(), c, ms(1), Outcome::Unsupported);
        stats.record(&enc(), c, ms(1), Outcome::Rejected);
        stats.record(&enc(), c, ms(1), Outcome::QueueTimeout);
        let s = stats.connection(&enc(), c);
        assert_eq!((s.requests, s.errors), (3, 1));
        assert_eq!(s.last_error, Some(ErrorClass::Timeout));
        assert!(PassiveStats::try_new(PassiveConfig {
            window: 0,
            ..PassiveConfig::default()
        })
        .unwrap_err()
        .is_invalid_config());
    }
}
