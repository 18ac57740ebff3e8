//! The 0–100 score from the checks' results: weights, renormalisation, thresholds.
//! Pure: no I/O, no clock.

use crate::{
    error::HealthError,
    status::{clamp_score, CheckKind, CheckOutcome, CheckResult, HealthLevel},
};

/// How much each check counts in the score.
///
/// | check | default weight |
/// | --- | --- |
/// | `basic_connectivity` | 20 |
/// | `response_time` | 15 |
/// | `error_rate` | 15 |
/// | `thermal_status` | 15 |
/// | `resource_usage` | 10 |
/// | `streaming_state` | 15 |
/// | `recording_state` | 10 |
///
/// Only the ratios matter: the score is the weighted mean of the checks' own scores
/// over the checks that are not [`CheckOutcome::Unknown`], so an unknown check's weight
/// is spread over the others (renormalisation).
#[derive(Debug, Clone, PartialEq)]
pub struct Weights([f64; 7]);

impl Default for Weights {
    fn default() -> Self {
        Self([20.0, 15.0, 15.0, 15.0, 10.0, 15.0, 10.0])
    }
}

impl Weights {
    /// Every check with the same weight.
    pub fn equal() -> Self {
        Self([1.0; 7])
    }

    /// The weight of one check.
    pub fn get(&self, kind: CheckKind) -> f64 {
        self.0[kind.index()]
    }

    /// Changes the weight of one check (0 leaves it out of the score).
    pub fn with(mut self, kind: CheckKind, weight: f64) -> Self {
        self.0[kind.index()] = weight;
        self
    }

    fn validate(&self) -> Result<(), HealthError> {
        if let Some(k) = CheckKind::ALL
            .into_iter()
            .find(|k| !(self.get(*k).is_finite() && self.get(*k) >= 0.0))
        {
            return Err(HealthError::config(format!(
                "weight of {k} must be a finite number >= 0"
            )));
        }
        Ok(())
    }
}

/// Score thresholds of the levels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// At or above: healthy (default 80).
    pub healthy: f64,
    /// At or above (and below `healthy`): degraded (default 70). Below: unhealthy.
    pub degraded: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            healthy: 80.0,
            degraded: 70.0,
        }
    }
}

impl Thresholds {
    /// The level of a score.
    pub fn level(&self, score: f64) -> HealthLevel {
        if score >= self.healthy {
            HealthLevel::Healthy
        } else if score >= self.degraded {
            HealthLevel::Degraded
        } else {
            HealthLevel::Unhealthy
        }
    }

    fn validate(&self) -> Result<(), HealthError> {
        let ok = |v: f64| v.is_finite() && (0.0..=100.0).contains(&v);
        if !(ok(self.healthy) && ok(self.degraded) && self.degraded <= self.healthy) {
            return Err(HealthError::config(
                "thresholds must satisfy 0 <= degraded <= healthy <= 100",
            ));
        }
        Ok(())
    }
}

/// Everything that turns check results into a score and a level.
///
/// 1. A failed `basic_connectivity` makes the score 0.
/// 2. Otherwise the score is the weighted mean of the known checks' scores (100 when
///    no known check has weight).
/// 3. A failed *critical* check caps the score at `critical_cap` (default 60, below the
///    degraded threshold): a failing stream makes the connection unhealthy however well
///    the rest looks. The default critical checks are `streaming_state`,
///    `recording_state` and `resource_usage`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scoring {
    /// Weights of the checks.
    pub weights: Weights,
    /// Level thresholds.
    pub thresholds: Thresholds,
    /// Checks whose failure caps the score.
    pub critical: Vec<CheckKind>,
    /// The cap.
    pub critical_cap: f64,
}

impl Default for Scoring {
    fn default() -> Self {
        Self {
            weights: Weights::default(),
            thresholds: Thresholds::default(),
            critical: vec![
                CheckKind::StreamingState,
                CheckKind::RecordingState,
                CheckKind::ResourceUsage,
            ],
            critical_cap: 60.0,
        }
    }
}

impl Scoring {
    /// The score of these results, 0–100, rounded to one decimal.
    pub fn score(&self, checks: &[CheckResult]) -> f64 {
        let failed = |c: &CheckResult| c.outcome == CheckOutcome::Failed;
        if checks
            .iter()
            .any(|c| c.name == CheckKind::BasicConnectivity && failed(c))
        {
            return 0.0;
        }
        let (sum, total) = checks
            .iter()
            .filter(|c| c.outcome != CheckOutcome::Unknown)
            .map(|c| (self.weights.get(c.name), clamp_score(c.score)))
            .fold((0.0, 0.0), |(sum, total), (w, s)| (sum + w * s, total + w));
        let mut score = if total > 0.0 { sum / total } else { 100.0 };
        if checks
            .iter()
            .any(|c| failed(c) && self.critical.contains(&c.name))
        {
            score = score.min(self.critical_cap);
        }
        (clamp_score(score) * 10.0).round() / 10.0
    }

    /// Checks the numbers.
    pub fn validate(&self) -> Result<(), HealthError> {
        self.weights.validate()?;
        self.thresholds.validate()?;
        if !(self.critical_cap.is_finite() && (0.0..=100.0).contains(&self.critical_cap)) {
            return Err(HealthError::config("critical_cap must be within 0..=100"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckKind::*;
    use CheckOutcome::*;

    /// Every check ok at 100, except the listed ones.
    fn results(overrides: &[(CheckKind, CheckOutcome, f64)]) -> Vec<CheckResult> {
        CheckKind::ALL
            .into_iter()
            .map(|k| match overrides.iter().find(|o| o.0 == k) {
                Some(&(k, o, s)) => CheckResult::new(k, o, s, ""),
                None => CheckResult::new(k, Ok, 100.0, ""),
            })
            .collect()
    }

    fn check(scoring: &Scoring, overrides: &[(CheckKind, CheckOutcome, f64)], expected: f64) {
        let got = scoring.score(&results(overrides));
        assert!(
            (got - expected).abs() < 0.051,
            "{overrides:?}: got {got}, expected {expected}"
        );
    }

    #[test]
    fn weighted_mean_renormalised_over_known_checks() {
        let s = Scoring::default();
        check(&s, &[], 100.0);
        // Thermal (15 of 100) at 0: 85.
        check(&s, &[(ThermalStatus, Warning, 0.0)], 85.0);
        // Thermal unknown: its weight goes away, the rest is all 100.
        check(&s, &[(ThermalStatus, Unknown, 0.0)], 100.0);
        // Thermal unknown and response time at 50: 15*50 / 85.
        check(
            &s,
            &[(ThermalStatus, Unknown, 0.0), (ResponseTime, Warning, 50.0)],
            100.0 - 15.0 * 50.0 / 85.0,
        );
        // Two unknowns, one warning at 40 with weight 10 of 70.
        check(
            &s,
            &[
                (ThermalStatus, Unknown, 0.0),
                (ErrorRate, Unknown, 0.0),
                (RecordingState, Warning, 40.0),
            ],
            100.0 - 10.0 * 60.0 / 70.0,
        );
        // Unknown checks do not count even with a low score attached.
        check(&s, &[(ResourceUsage, Unknown, 0.0)], 100.0);
    }

    #[test]
    fn connectivity_failure_is_zero_and_critical_failures_cap() {
        let s = Scoring::default();
        check(&s, &[(BasicConnectivity, Failed, 0.0)], 0.0);
        check(&s, &[(StreamingState, Failed, 0.0)], 60.0);
        check(&s, &[(RecordingState, Failed, 0.0)], 60.0);
        // A non-critical failure only weighs.
        check(&s, &[(ThermalStatus, Failed, 0.0)], 85.0);
        // The cap never raises a lower score.
        check(
            &s,
            &[
                (StreamingState, Failed, 0.0),
                (ResponseTime, Failed, 0.0),
                (ErrorRate, Failed, 0.0),
                (ThermalStatus, Failed, 0.0),
            ],
            40.0,
        );
        let no_cap = Scoring {
            critical: vec![],
            ..Scoring::default()
        };
        check(&no_cap, &[(StreamingState, Failed, 0.0)], 85.0);
    }

    #[test]
    fn custom_weights_and_all_unknown() {
        let s = Scoring {
            weights: Weights::equal(),
            ..Scoring::default()
        };
        check(&s, &[(ResponseTime, Warning, 30.0)], 90.0);
        let only_thermal = Scoring {
            weights: Weights([0.0; 7]).with(ThermalStatus, 1.0),
            ..Scoring::default()
        };
        check(&only_thermal, &[(ThermalStatus, Warning, 42.0)], 42.0);
        // Nothing known with weight: connectivity answered, so 100.
        check(&only_thermal, &[(ThermalStatus, Unknown, 0.0)], 100.0);
    }

    #[test]
    fn levels_follow_thresholds() {
        let t = Thresholds::default();
        for (score, level) in [
            (100.0, HealthLevel::Healthy),
            (80.0, HealthLevel::Healthy),
            (79.9, HealthLevel::Degraded),
            (70.0, HealthLevel::Degraded),
            (69.9, HealthLevel::Unhealthy),
            (0.0, HealthLevel::Unhealthy),
        ] {
            assert_eq!(t.level(score), level, "{score}");
        }
        let strict = Thresholds {
            healthy: 95.0,
            degraded: 90.0,
        };
        assert_eq!(strict.level(92.0), HealthLevel::Degraded);
    }

    #[test]
    fn validation_rejects_bad_numbers() {
        assert!(Scoring::default().validate().is_ok());
        let bad = |s: Scoring| s.validate().unwrap_err().is_invalid_config();
        assert!(bad(Scoring {
            weights: Weights::default().with(ErrorRate, -1.0),
            ..Scoring::default()
        }));
        assert!(bad(Scoring {
            weights: Weights::default().with(ErrorRate, f64::NAN),
            ..Scoring::default()
        }));
        assert!(bad(Scoring {
            thresholds: Thresholds {
                healthy: 60.0,
                degraded: 70.0
            },
            ..Scoring::default()
        }));
        assert!(bad(Scoring {
            critical_cap: 101.0,
            ..Scoring::default()
        }));
    }
}
