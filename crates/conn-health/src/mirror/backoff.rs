//! Jittered, capped exponential backoff between reconnects.

use std::time::Duration;

use crate::error::HealthError;

/// How long the mirror waits between failed connects.
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffConfig {
    /// The first delay (default 250 ms).
    pub initial: Duration,
    /// The cap (default 30 s).
    pub max: Duration,
    /// Fraction (0–1) of each delay taken off at random, so that many mirrors
    /// reconnecting to one device after a reboot spread out (default 0.5; 0 in tests).
    pub jitter: f64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(30),
            jitter: 0.5,
        }
    }
}

impl BackoffConfig {
    pub(crate) fn validate(&self) -> Result<(), HealthError> {
        if self.initial.is_zero() || self.max < self.initial {
            return Err(HealthError::config(
                "backoff must satisfy 0 < initial <= max",
            ));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(HealthError::config("backoff jitter must be within 0..=1"));
        }
        Ok(())
    }
}

#[derive(Debug)]
pub(crate) struct Backoff {
    cfg: BackoffConfig,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(cfg: BackoffConfig) -> Self {
        Self { cfg, attempt: 0 }
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let exp = self
            .cfg
            .initial
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.cfg.max);
        self.attempt = self.attempt.saturating_add(1);
        exp.mul_f64(1.0 - self.cfg.jitter * fastrand::f64())
    }

    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(BackoffConfig {
            initial: ms(100),
            max: ms(1000),
            jitter: 0.0,
        });
        let delays: Vec<_> = (0..6).map(|_| b.next_delay()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000].map(ms));
        b.reset();
        assert_eq!(b.next_delay(), ms(100));
    }

    #[test]
    fn jitter_only_shortens_within_its_fraction() {
        let mut b = Backoff::new(BackoffConfig {
            initial: ms(1000),
            max: ms(1000),
            jitter: 0.5,
        });
        for _ in 0..100 {
            let d = b.next_delay();
            assert!(d >= ms(500) && d <= ms(1000), "{d:?}");
        }
        let bad = BackoffConfig {
            jitter: 1.5,
            ..BackoffConfig::default()
        };
        assert!(bad.validate().is_err());
        let bad = BackoffConfig {
            initial: Duration::ZERO,
            ..BackoffConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
