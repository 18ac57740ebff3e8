//! A per-encoder retry budget: retries are allowed in proportion to requests made.

use std::{
    fmt,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::time::Instant;

use super::stats::Window;

/// Allows, over a sliding window, `min_per_sec × window` retries plus `ratio` retries
/// per request made. Retries age out with the window, so a device that was hammered
/// gets its full budget back exactly one window after the storm.
///
/// Cloning shares the budget.
#[derive(Clone)]
pub struct RetryBudget {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    /// `a` counts requests (deposits), `b` retries (withdrawals).
    window: Window,
    ratio: f64,
    reserve: f64,
}

impl RetryBudget {
    /// A budget of `ratio` retries per request plus `min_per_sec` retries per second,
    /// counted over `window`.
    pub fn new(ratio: f64, min_per_sec: u32, window: Duration) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                window: Window::new(Instant::now(), window),
                ratio: if ratio.is_finite() {
                    ratio.max(0.0)
                } else {
                    0.0
                },
                reserve: f64::from(min_per_sec) * window.as_secs_f64(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one request (the thermal layer does this for every admitted request).
    pub fn deposit(&self) {
        self.lock().window.add(Instant::now(), 1, 0);
    }

    /// Takes one retry from the budget; `false` when it is spent (do not retry).
    pub fn try_withdraw(&self) -> bool {
        let now = Instant::now();
        let mut inner = self.lock();
        let (requests, retries) = inner.window.totals(now);
        let allowed = inner.reserve + inner.ratio * requests as f64;
        if (retries as f64) < allowed {
            inner.window.add(now, 0, 1);
            true
        } else {
            false
        }
    }

    /// Retries left now.
    pub fn remaining(&self) -> f64 {
        let inner = self.lock();
        let (requests, retries) = inner.window.totals(Instant::now());
        (inner.reserve + inner.ratio * requests as f64 - retries as f64).max(0.0)
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("remaining", &self.remaining())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spends_then_recovers_after_one_window() {
        // 1 retry/s over 2 s = 2 in reserve, plus one per five requests.
        let b = RetryBudget::new(0.2, 1, Duration::from_secs(2));
        assert!(b.try_withdraw());
        assert!(b.try_withdraw());
        assert!(!b.try_withdraw(), "reserve spent");
        for _ in 0..5 {
            b.deposit();
        }
        assert!(b.try_withdraw(), "five requests earn one retry");
        assert!(!b.try_withdraw());
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!((b.remaining() - 2.0).abs() < 1e-9, "{}", b.remaining());
    }
}
