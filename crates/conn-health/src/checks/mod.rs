//! The checks' judgements: plain values in, outcome, score and detail out. No I/O.

mod device;
mod traffic;

use helo_transport::ErrorClass;

use crate::status::CheckOutcome;

pub(crate) use self::{
    device::{replicator, resource, thermal, Replicator, ResourceInputs},
    traffic::{connectivity, error_rate, response_time},
};

/// One check's judgement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Evaluation {
    pub(crate) outcome: CheckOutcome,
    pub(crate) score: f64,
    pub(crate) detail: String,
    pub(crate) error_class: Option<ErrorClass>,
}

impl Evaluation {
    pub(crate) fn new(outcome: CheckOutcome, score: f64, detail: impl Into<String>) -> Self {
        Self {
            outcome,
            score,
            detail: detail.into(),
            error_class: None,
        }
    }

    pub(crate) fn unknown(detail: impl Into<String>) -> Self {
        Self::new(CheckOutcome::Unknown, 0.0, detail)
    }

    pub(crate) fn failed(detail: impl Into<String>, class: ErrorClass) -> Self {
        Self {
            error_class: Some(class),
            ..Self::new(CheckOutcome::Failed, 0.0, detail)
        }
    }
}

/// One value as a check got it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Read<T> {
    Value(T),
    /// The device lacks the parameter.
    Unsupported,
    /// The request failed.
    Failed {
        detail: String,
        class: ErrorClass,
    },
}

/// Scores a value where higher is worse: 100 up to `warn` (ok), down to 50 at `fail`
/// (warning), down to 0 at `fail + span` (failed).
pub(crate) fn banded(value: f64, warn: f64, fail: f64, span: f64) -> (CheckOutcome, f64) {
    if value <= warn {
        (CheckOutcome::Ok, 100.0)
    } else if value < fail {
        let t = (value - warn) / (fail - warn);
        (CheckOutcome::Warning, 100.0 - 50.0 * t)
    } else {
        let t = if span > 0.0 {
            (value - fail) / span
        } else {
            1.0
        };
        (CheckOutcome::Failed, (50.0 * (1.0 - t)).clamp(0.0, 50.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands() {
        let check = |v: f64, expected: (CheckOutcome, f64)| {
            let got = banded(v, 60.0, 80.0, 20.0);
            assert_eq!(got.0, expected.0, "{v}");
            assert!((got.1 - expected.1).abs() < 1e-9, "{v}: {got:?}");
        };
        check(0.0, (CheckOutcome::Ok, 100.0));
        check(60.0, (CheckOutcome::Ok, 100.0));
        check(70.0, (CheckOutcome::Warning, 75.0));
        check(80.0, (CheckOutcome::Failed, 50.0));
        check(95.0, (CheckOutcome::Failed, 12.5));
        check(150.0, (CheckOutcome::Failed, 0.0));
        assert_eq!(banded(5.0, 1.0, 2.0, 0.0), (CheckOutcome::Failed, 0.0));
    }
}
