//! Retry delays for an unreachable encoder: exponential, capped, jittered.

use std::time::Duration;

/// The delay before the next warmup after `failures` consecutive failures (1 or
/// more): `base × 2^(failures-1)`, capped at `max`, then shortened by up to `jitter`
/// of itself using `rand` (0 ≤ rand < 1), so encoders that failed together do not
/// retry together. A device's own `Retry-After` is honoured as a lower bound.
pub(crate) fn delay(
    failures: u32,
    base: Duration,
    max: Duration,
    jitter: f64,
    rand: f64,
    retry_after: Option<Duration>,
) -> Duration {
    let exp = failures.saturating_sub(1).min(32);
    let raw = base.saturating_mul(1u32 << exp.min(31)).min(max);
    let cut = (jitter * rand).clamp(0.0, 1.0);
    let jittered = raw.mul_f64(1.0 - cut);
    match retry_after {
        Some(ra) => jittered.max(ra.min(max)),
        None => jittered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(failures: u32, jitter: f64, rand: f64, retry_after: Option<u64>, expected_ms: u64) {
        let got = delay(
            failures,
            Duration::from_secs(1),
            Duration::from_secs(60),
            jitter,
            rand,
            retry_after.map(Duration::from_secs),
        );
        assert_eq!(
            got,
            Duration::from_millis(expected_ms),
            "failures={failures} jitter={jitter} rand={rand}"
        );
    }

    #[test]
    fn doubles_then_caps() {
        check(1, 0.0, 0.0, None, 1_000);
        check(2, 0.0, 0.0, None, 2_000);
        check(3, 0.0, 0.0, None, 4_000);
        check(6, 0.0, 0.0, None, 32_000);
        check(7, 0.0, 0.0, None, 60_000);
        check(40, 0.0, 0.0, None, 60_000);
        check(u32::MAX, 0.0, 0.0, None, 60_000);
    }

    #[test]
    fn jitter_only_shortens() {
        check(3, 0.5, 0.0, None, 4_000);
        check(3, 0.5, 0.5, None, 3_000);
        check(3, 1.0, 0.5, None, 2_000);
    }

    #[test]
    fn retry_after_is_a_floor_below_the_cap() {
        check(1, 0.0, 0.0, Some(5), 5_000);
        check(4, 0.0, 0.0, Some(5), 8_000);
        check(1, 0.0, 0.0, Some(600), 60_000);
    }
}
