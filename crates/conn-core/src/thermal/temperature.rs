//! The temperature formula, as pure functions.

/// Requests in the last cooling period against `burst_limit`, as a 0–100 factor.
pub(crate) fn rate_factor(requests_per_period: u64, burst_limit: u32) -> f64 {
    (requests_per_period as f64 * 100.0 / f64::from(burst_limit.max(1))).min(100.0)
}

/// Errors against requests, in percent (0 without requests).
pub(crate) fn error_rate(requests: u64, errors: u64) -> f64 {
    if requests == 0 {
        0.0
    } else {
        (errors as f64 * 100.0 / requests as f64).min(100.0)
    }
}

/// Requests in flight against the connection's capacity, in percent.
pub(crate) fn load(in_flight: usize, capacity: u32) -> f64 {
    (in_flight as f64 * 100.0 / f64::from(capacity.max(1))).min(100.0)
}

/// 0.4 × request-rate factor + 0.3 × error rate + 0.3 × load, within 0–100.
pub(crate) fn temperature(rate_factor: f64, error_rate: f64, load: f64) -> f64 {
    (0.4 * rate_factor + 0.3 * error_rate + 0.3 * load).clamp(0.0, 100.0)
}

/// How many requests fit at once under `allowed` percent of `capacity`.
pub(crate) fn slots(allowed: f64, capacity: u32) -> usize {
    if !(allowed.is_finite() && allowed > 0.0) {
        return 0;
    }
    // The epsilon keeps 75 % of capacity 4 from giving two slots on a rounding error.
    let n = ((allowed + 1e-9) * f64::from(capacity.max(1)) / 100.0).floor();
    // At most `capacity` (allowed is at most 100 %), so the cast cannot truncate.
    n.min(f64::from(capacity.max(1))) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (requests in period, errors, in flight) with burst 100 and capacity 4.
    fn check(input: (u64, u64, usize), expected: f64) {
        let (requests, errors, in_flight) = input;
        let t = temperature(
            rate_factor(requests, 100),
            error_rate(requests, errors),
            load(in_flight, 4),
        );
        assert!(
            (t - expected).abs() < 1e-9,
            "{input:?}: got {t}, want {expected}"
        );
    }

    #[test]
    fn formula() {
        check((0, 0, 0), 0.0);
        // Rate alone: 50 of 100 → factor 50 → 20.
        check((50, 0, 0), 20.0);
        // Rate saturates at the burst limit.
        check((100, 0, 0), 40.0);
        check((1_000, 0, 0), 40.0);
        // 10 % errors on 10 requests: 0.4×10 + 0.3×10 = 7.
        check((10, 1, 0), 7.0);
        // Load alone: 3 of 4 → 75 % → 22.5.
        check((0, 0, 3), 22.5);
        // Everything at its maximum.
        check((100, 100, 4), 100.0);
        // Overload counts as 100 % load at most.
        check((100, 100, 9), 100.0);
        check((100, 50, 4), 85.0);
    }

    #[test]
    fn slots_in_percent_of_capacity() {
        let cases = [
            (100.0, 4),
            (75.0, 3),
            (60.0, 2),
            (50.0, 2),
            (25.0, 1),
            (20.0, 0),
            (0.0, 0),
            (-5.0, 0),
            (f64::NAN, 0),
            (250.0, 4),
        ];
        for (allowed, want) in cases {
            assert_eq!(slots(allowed, 4), want, "{allowed}%");
        }
        assert_eq!(slots(50.0, 16), 8);
        assert_eq!(slots(100.0, 0), 1, "capacity is at least 1");
    }
}
