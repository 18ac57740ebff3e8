//! A sliding window of two counters in fixed-size buckets: bounded memory, O(1)
//! updates, and old counts fall out bucket by bucket.

use std::time::Duration;

use tokio::time::Instant;

const BUCKETS: usize = 12;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    epoch: u64,
    a: u64,
    b: u64,
}

/// Counts over the last `span` (to within one bucket, `span / 12`).
#[derive(Debug, Clone)]
pub(crate) struct Window {
    origin: Instant,
    bucket_nanos: u64,
    buckets: [Bucket; BUCKETS],
}

impl Window {
    pub(crate) fn new(origin: Instant, span: Duration) -> Self {
        let nanos = u64::try_from(span.as_nanos() / BUCKETS as u128).unwrap_or(u64::MAX);
        Self {
            origin,
            bucket_nanos: nanos.max(1_000_000),
            buckets: [Bucket::default(); BUCKETS],
        }
    }

    fn epoch(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(since / u128::from(self.bucket_nanos)).unwrap_or(u64::MAX)
    }

    /// Adds to both counters at `now`.
    pub(crate) fn add(&mut self, now: Instant, a: u64, b: u64) {
        let epoch = self.epoch(now);
        let slot = &mut self.buckets[(epoch % BUCKETS as u64) as usize];
        if slot.epoch != epoch {
            *slot = Bucket {
                epoch,
                ..Bucket::default()
            };
        }
        slot.a = slot.a.saturating_add(a);
        slot.b = slot.b.saturating_add(b);
    }

    /// Both counters summed over the window ending at `now`.
    pub(crate) fn totals(&self, now: Instant) -> (u64, u64) {
        let epoch = self.epoch(now);
        self.buckets
            .iter()
            .filter(|s| s.epoch <= epoch && epoch - s.epoch < BUCKETS as u64)
            .fold((0, 0), |(a, b), s| (a + s.a, b + s.b))
    }

    /// Forgets everything.
    pub(crate) fn reset(&mut self) {
        self.buckets = [Bucket::default(); BUCKETS];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_slide_out_bucket_by_bucket() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut w = Window::new(t0, s(60));
        w.add(t0, 1, 0);
        w.add(t0 + s(1), 1, 1);
        w.add(t0 + s(30), 2, 1);
        let check = |w: &Window, at: u64, expected: (u64, u64)| {
            assert_eq!(w.totals(t0 + s(at)), expected, "at {at}s");
        };
        check(&w, 30, (4, 2));
        check(&w, 59, (4, 2));
        // The first bucket (0–5 s) leaves the window at 60 s.
        check(&w, 60, (2, 1));
        check(&w, 89, (2, 1));
        check(&w, 90, (0, 0));
        w.add(t0 + s(95), 1, 0);
        check(&w, 95, (1, 0));
        w.reset();
        check(&w, 95, (0, 0));
    }

    #[test]
    fn a_reused_slot_starts_from_zero() {
        let t0 = Instant::now();
        let mut w = Window::new(t0, Duration::from_secs(12));
        w.add(t0, 5, 5);
        // Same slot (epoch 12 ≡ 0 mod 12), a new epoch.
        w.add(t0 + Duration::from_secs(12), 1, 0);
        assert_eq!(w.totals(t0 + Duration::from_secs(12)), (1, 0));
    }
}
