//! The one retry delay: capped exponential backoff with full jitter, and a device's
//! `Retry-After` as a floor.

use std::time::Duration;

/// How long to wait before retry number `attempt` (0 for the first retry).
///
/// The ceiling doubles per attempt, `min(max, base · 2^attempt)`, and the delay is drawn
/// uniformly below it: with full jitter (the default, AWS's "full jitter") anywhere in
/// `[0, ceiling]`, so that many clients that failed together (a fleet after a switch
/// reboot) do not retry together against a small embedded device. A jitter fraction
/// `j` narrows the draw to `[(1 − j) · ceiling, ceiling]`; `j = 0` is no jitter, for
/// tests on tokio's paused clock.
///
/// Pure: [`delay`](Self::delay) takes the random draw as `unit` (0 to 1), so callers
/// and tests decide where randomness comes from; [`delay_random`](Self::delay_random)
/// draws it with `fastrand`. A device's `Retry-After` (a `503`'s
/// [`HeloError::retry_after`](crate::HeloError::retry_after)) is a floor:
/// [`honour_retry_after`](Self::honour_retry_after).
///
/// ```
/// use std::time::Duration;
/// use helo_transport::Backoff;
///
/// let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
/// assert_eq!(b.ceiling(3), Duration::from_secs(8));
/// assert_eq!(b.delay(3, 0.25), Duration::from_secs(2)); // full jitter: 0.25 × 8 s
/// assert_eq!(b.delay(40, 1.0), Duration::from_secs(60)); // capped
/// let no_jitter = b.without_jitter();
/// assert_eq!(no_jitter.delay(3, 0.25), Duration::from_secs(8));
/// // The device asked for 30 s: wait at least that (up to `max`).
/// let wait = b.honour_retry_after(b.delay(0, 0.5), Some(Duration::from_secs(30)));
/// assert_eq!(wait, Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    jitter: f64,
}

impl Default for Backoff {
    /// 1 s doubling to 60 s, full jitter.
    fn default() -> Self {
        Self::new(Duration::from_secs(1), Duration::from_secs(60))
    }
}

impl Backoff {
    /// A backoff from `base` doubling up to `max`, with full jitter. A `max` below
    /// `base` is raised to `base`; a zero `base` gives zero delays.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max: max.max(base),
            jitter: 1.0,
        }
    }

    /// The same backoff with a jitter fraction `jitter` (0 = none, 1 = full; values
    /// outside are clamped, NaN means full).
    pub fn with_jitter(self, jitter: f64) -> Self {
        let jitter = if jitter.is_nan() {
            1.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        Self { jitter, ..self }
    }

    /// The same backoff without jitter: every delay is its ceiling.
    pub fn without_jitter(self) -> Self {
        self.with_jitter(0.0)
    }

    /// The first ceiling.
    pub fn base(&self) -> Duration {
        self.base
    }

    /// The largest delay.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The jitter fraction, 0 to 1.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// The longest delay before retry `attempt`: `min(max, base · 2^attempt)`,
    /// saturating (any attempt count is fine).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        if self.base.is_zero() {
            return Duration::ZERO;
        }
        let base = self.base.as_nanos();
        let max = self.max.as_nanos();
        let raw = 1u128
            .checked_shl(attempt)
            .and_then(|factor| base.checked_mul(factor))
            .unwrap_or(u128::MAX);
        if raw >= max {
            return self.max;
        }
        // Below `max`, which came from a `Duration`: the seconds fit in a u64.
        let secs = u64::try_from(raw / 1_000_000_000).unwrap_or(u64::MAX);
        let nanos = u32::try_from(raw % 1_000_000_000).unwrap_or(0);
        Duration::new(secs, nanos)
    }

    /// The delay before retry `attempt` for the random draw `unit` (0 to 1; clamped,
    /// NaN counts as 1): `ceiling × ((1 − jitter) + jitter × unit)`. With full jitter,
    /// `unit` 0 is no wait and 1 the ceiling.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let unit = if unit.is_nan() {
            1.0
        } else {
            unit.clamp(0.0, 1.0)
        };
        let factor = ((1.0 - self.jitter) + self.jitter * unit).clamp(0.0, 1.0);
        let ceiling = self.ceiling(attempt);
        if factor >= 1.0 {
            // Not through f64: near `Duration::MAX` the round trip would overflow.
            return ceiling;
        }
        // Below 1, the product stays below the ceiling: no overflow, never negative.
        ceiling.mul_f64(factor)
    }

    /// [`delay`](Self::delay) with a random draw.
    pub fn delay_random(&self, attempt: u32) -> Duration {
        self.delay(attempt, fastrand::f64())
    }

    /// `delay`, but never less than the device's `Retry-After` (itself capped at
    /// [`max`](Self::max): device text does not get to stall us past the configured
    /// bound).
    pub fn honour_retry_after(&self, delay: Duration, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(floor) => delay.max(floor.min(self.max)),
            None => delay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn check(b: Backoff, attempt: u32, unit: f64, want: Duration) {
        assert_eq!(
            b.delay(attempt, unit),
            want,
            "{b:?} attempt {attempt} unit {unit}"
        );
    }

    #[test]
    fn ceilings_double_from_base_and_stop_at_max() {
        let b = Backoff::new(ms(100), ms(1_000));
        let ceilings: Vec<_> = (0..6).map(|a| b.ceiling(a)).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1_000, 1_000].map(ms));
        let none = b.without_jitter();
        for a in 0..6 {
            check(none, a, 0.0, b.ceiling(a));
            check(none, a, 0.7, b.ceiling(a));
        }
    }

    #[test]
    fn full_jitter_spans_zero_to_the_ceiling() {
        let b = Backoff::new(ms(1_000), ms(60_000));
        assert_eq!(b.jitter(), 1.0);
        check(b, 2, 0.0, Duration::ZERO);
        check(b, 2, 0.5, ms(2_000));
        check(b, 2, 1.0, ms(4_000));
        // Out-of-range draws are clamped, never a panic.
        check(b, 2, -3.0, Duration::ZERO);
        check(b, 2, 7.0, ms(4_000));
        check(b, 2, f64::NAN, ms(4_000));
        let mut seen_low = false;
        let mut seen_high = false;
        for _ in 0..1_000 {
            let d = b.delay_random(2);
            assert!(d <= ms(4_000), "{d:?}");
            seen_low |= d < ms(1_000);
            seen_high |= d > ms(3_000);
        }
        assert!(seen_low && seen_high, "draws cover the whole range");
    }

    #[test]
    fn partial_jitter_narrows_the_draw() {
        let b = Backoff::new(ms(1_000), ms(1_000)).with_jitter(0.25);
        check(b, 0, 0.0, ms(750));
        check(b, 0, 1.0, ms(1_000));
        assert_eq!(b.with_jitter(5.0).jitter(), 1.0);
        assert_eq!(b.with_jitter(-1.0).jitter(), 0.0);
        assert_eq!(b.with_jitter(f64::NAN).jitter(), 1.0);
    }

    #[test]
    fn retry_after_is_a_floor_capped_at_max() {
        let b = Backoff::new(ms(1_000), ms(60_000));
        let d = b.delay(0, 0.1);
        assert_eq!(d, ms(100));
        assert_eq!(b.honour_retry_after(d, None), ms(100));
        assert_eq!(b.honour_retry_after(d, Some(ms(5_000))), ms(5_000));
        // A floor below the drawn delay changes nothing.
        assert_eq!(
            b.honour_retry_after(b.delay(5, 1.0), Some(ms(5_000))),
            ms(32_000)
        );
        // A device asking for ten minutes gets `max`.
        assert_eq!(
            b.honour_retry_after(d, Some(Duration::from_secs(600))),
            ms(60_000)
        );
    }

    #[test]
    fn huge_attempts_saturate_at_max() {
        let b = Backoff::new(ms(1_000), ms(60_000));
        for attempt in [6, 31, 32, 63, 64, 127, 128, 1_000, u32::MAX] {
            assert_eq!(b.ceiling(attempt), ms(60_000), "attempt {attempt}");
            check(b, attempt, 1.0, ms(60_000));
        }
        let huge = Backoff::new(Duration::MAX, Duration::MAX);
        assert_eq!(huge.ceiling(u32::MAX), Duration::MAX);
        assert_eq!(huge.delay(3, 1.0), Duration::MAX);
        let tiny = Backoff::new(Duration::from_nanos(1), Duration::MAX);
        assert_eq!(tiny.ceiling(10), Duration::from_nanos(1024));
    }

    #[test]
    fn zero_base_never_waits_and_max_never_below_base() {
        let zero = Backoff::new(Duration::ZERO, ms(60_000));
        for attempt in [0, 1, 10, u32::MAX] {
            assert_eq!(zero.ceiling(attempt), Duration::ZERO);
            check(zero, attempt, 1.0, Duration::ZERO);
        }
        assert_eq!(
            zero.honour_retry_after(Duration::ZERO, Some(ms(500))),
            ms(500)
        );
        let raised = Backoff::new(ms(5_000), ms(1_000));
        assert_eq!(raised.max(), ms(5_000));
        assert_eq!(raised.base(), ms(5_000));
        assert_eq!(Backoff::default().ceiling(0), ms(1_000));
    }
}
