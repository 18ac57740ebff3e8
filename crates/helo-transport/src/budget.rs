//! The per-device request budget: a token bucket shared by every connection of one
//! [`Device`](crate::Device), so that pool upkeep, health checks, the event mirror and
//! operator actions together never send a small embedded device more than it is
//! configured to take, whatever loop goes wrong.
//!
//! The bucket is kept as a GCRA ("generic cell rate algorithm"): one atomic holding the
//! theoretical arrival time of the next request. Taking a token is a clock read and
//! one compare-and-swap, so the request path takes no lock shared between connections.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use tokio::time::Instant;

/// Default sustained budget: requests per minute to one device, all sources together.
///
/// Measured against helo-sim over two minutes at the supervisor's default settings: a
/// healthy encoder makes about 14 a minute (a health check every 30 s answered from
/// the event mirror, three warm connections pinged every 20 s, one long poll held for
/// 50 s); one without an event API about 23; one whose stream fails and is recovered
/// about 34; the busiest, a critical encoder without an event API (every value polled
/// every 5 s, recovery in rounds), about 97. The budget is six times that, so it only
/// ever refuses a loop gone wrong (`tests/request_budget.rs` keeps these in check).
pub const DEFAULT_REQUEST_BUDGET_PER_MINUTE: u32 = 600;
/// Default burst: requests one device may get at once before the sustained rate
/// applies. Start-up (warm-ups, the mirror's connect and seeding reads, the first
/// health check) takes about 20 in its first seconds.
pub const DEFAULT_REQUEST_BUDGET_BURST: u32 = 100;

/// How many requests one device may be sent: `per_minute` sustained, with up to
/// `burst` at once. Set with
/// [`DeviceConfig::with_request_budget`](crate::DeviceConfig::with_request_budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestBudget {
    /// Sustained requests per minute (at least 1).
    pub per_minute: u32,
    /// Requests that may be sent at once, before the sustained rate applies (at
    /// least 1).
    pub burst: u32,
}

impl Default for RequestBudget {
    /// [`DEFAULT_REQUEST_BUDGET_PER_MINUTE`] with a burst of
    /// [`DEFAULT_REQUEST_BUDGET_BURST`].
    fn default() -> Self {
        Self {
            per_minute: DEFAULT_REQUEST_BUDGET_PER_MINUTE,
            burst: DEFAULT_REQUEST_BUDGET_BURST,
        }
    }
}

impl RequestBudget {
    /// Time one request's token takes to come back.
    fn interval_nanos(&self) -> u64 {
        60_000_000_000 / u64::from(self.per_minute.max(1))
    }
}

/// The bucket's state for one device.
#[derive(Debug)]
pub(crate) struct BudgetState {
    budget: RequestBudget,
    /// Origin of the clock below (the device's creation).
    origin: Instant,
    /// Theoretical arrival time of the next request, in nanoseconds after `origin`.
    tat: AtomicU64,
    /// Requests refused so far.
    refused: AtomicU64,
}

impl BudgetState {
    pub(crate) fn new(budget: RequestBudget) -> Self {
        Self {
            budget,
            origin: Instant::now(),
            tat: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Takes one token, or answers how long until one is free (and counts the refusal).
    pub(crate) fn take(&self) -> Result<(), Duration> {
        let now = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let interval = self.budget.interval_nanos();
        let tolerance = interval.saturating_mul(u64::from(self.budget.burst.max(1) - 1));
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now);
            let ahead = start - now;
            if ahead > tolerance {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return Err(Duration::from_nanos(ahead - tolerance));
            }
            match self.tat.compare_exchange_weak(
                tat,
                start.saturating_add(interval),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(current) => tat = current,
            }
        }
    }

    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(per_minute: u32, burst: u32) -> BudgetState {
        BudgetState::new(RequestBudget { per_minute, burst })
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_the_sustained_rate() {
        let b = bucket(60, 5);
        for _ in 0..5 {
            assert_eq!(b.take(), Ok(()));
        }
        assert_eq!(b.take(), Err(Duration::from_secs(1)));
        assert_eq!(b.refused(), 1);
        tokio::time::advance(Duration::from_millis(999)).await;
        assert_eq!(b.take(), Err(Duration::from_millis(1)));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(b.take(), Ok(()));
        assert_eq!(b.take(), Err(Duration::from_secs(1)));
        assert_eq!(b.refused(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_bucket_refills_to_its_burst_and_no_further() {
        let b = bucket(600, 3);
        tokio::time::advance(Duration::from_secs(3600)).await;
        for _ in 0..3 {
            assert_eq!(b.take(), Ok(()));
        }
        assert!(b.take().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn the_sustained_rate_over_a_simulated_minute() {
        let b = bucket(600, 10);
        let mut sent = 0;
        // Someone asking 50 times a second for a minute gets the burst plus 10/s.
        for _ in 0..3000 {
            if b.take().is_ok() {
                sent += 1;
            }
            tokio::time::advance(Duration::from_millis(20)).await;
        }
        assert!((600..=611).contains(&sent), "{sent}");
        assert_eq!(b.refused(), 3000 - sent);
    }
}
