//! How often to check an encoder: as Envoy's health checker does, more often while it
//! is unhealthy or recovering, with jitter so a fleet never checks in lockstep.

use std::time::Duration;

/// Check intervals of one encoder.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CheckSchedule {
    /// Interval while healthy.
    pub healthy_interval: Duration,
    /// Interval while unhealthy, degraded or recovering.
    pub unhealthy_interval: Duration,
    /// Random spread as a fraction of the interval (0.1 = ±10 %).
    pub jitter: f64,
}

impl Default for CheckSchedule {
    fn default() -> Self {
        Self {
            healthy_interval: Duration::from_secs(30),
            unhealthy_interval: Duration::from_secs(5),
            jitter: 0.1,
        }
    }
}

impl CheckSchedule {
    /// The wait before the next check; `unit` is a random number in `[0, 1)`.
    pub fn next_delay(&self, unhealthy: bool, unit: f64) -> Duration {
        let base = if unhealthy {
            self.unhealthy_interval.min(self.healthy_interval)
        } else {
            self.healthy_interval
        };
        let jitter = self.jitter.clamp(0.0, 0.5);
        let factor = 1.0 + jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        base.mul_f64(factor)
    }

    /// [`CheckSchedule::next_delay`] with a fresh random number.
    pub fn next_delay_random(&self, unhealthy: bool) -> Duration {
        self.next_delay(unhealthy, fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unhealthy_encoders_are_checked_more_often_with_bounded_jitter() {
        let s = CheckSchedule::default();
        assert_eq!(s.next_delay(false, 0.5), Duration::from_secs(30));
        assert_eq!(s.next_delay(true, 0.5), Duration::from_secs(5));
        assert_eq!(s.next_delay(false, 0.0), Duration::from_secs(27));
        assert_eq!(s.next_delay(false, 1.0), Duration::from_secs(33));
        for _ in 0..100 {
            let d = s.next_delay_random(true);
            assert!(
                d >= Duration::from_millis(4500) && d <= Duration::from_millis(5500),
                "{d:?}"
            );
        }
    }

    #[test]
    fn an_unhealthy_interval_longer_than_the_healthy_one_is_not_used() {
        let s = CheckSchedule {
            healthy_interval: Duration::from_secs(2),
            unhealthy_interval: Duration::from_secs(5),
            jitter: 0.0,
        };
        assert_eq!(s.next_delay(true, 0.3), Duration::from_secs(2));
    }
}
