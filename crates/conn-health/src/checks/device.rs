//! Checks judged from the device's state and the thermal manager.

use helo_transport::{names, RecordState, StreamState};

use crate::{config::Limits, status::CheckOutcome};

use super::{banded, Evaluation, Read};

/// The connection temperature (0–100) against the manager's `high`.
pub(crate) fn thermal(temp: Option<f64>, high: f64, limits: &Limits) -> Evaluation {
    let Some(t) = temp.filter(|t| t.is_finite()) else {
        return Evaluation::unknown("no temperature from the thermal manager");
    };
    let warn = high * limits.thermal_warn_fraction;
    let (outcome, score) = banded(t, warn, high, (100.0 - high).max(1.0));
    Evaluation::new(
        outcome,
        score,
        format!("connection temperature {t:.1} (hot from {high:.0})"),
    )
}

/// What `resource_usage` looks at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResourceInputs {
    pub(crate) device_temp: Read<f64>,
    pub(crate) media_available: Read<f64>,
    pub(crate) system_state: Read<i64>,
    pub(crate) link_errors: Read<i64>,
    /// Link errors at the previous health check.
    pub(crate) previous_link_errors: Option<i64>,
}

/// The worst of device temperature, free media, system state and link-error growth.
/// Parameters the device lacks are left out; all of them missing makes it unknown.
pub(crate) fn resource(input: &ResourceInputs, limits: &Limits) -> Evaluation {
    let mut parts: Vec<(CheckOutcome, f64, String)> = Vec::new();
    let mut missing: Vec<&str> = Vec::new();
    let mut error_class = None;
    let mut failed = |what: &str, detail: &str, class| {
        error_class = Some(class);
        (CheckOutcome::Failed, 0.0, format!("{what}: {detail}"))
    };
    match &input.device_temp {
        Read::Value(t) => {
            let (o, s) = banded(
                *t,
                limits.device_temp_warn_c,
                limits.device_temp_fail_c,
                15.0,
            );
            parts.push((o, s, format!("device temperature {t:.0} °C")));
        }
        Read::Unsupported => missing.push("temperature"),
        Read::Failed { detail, class } => parts.push(failed("temperature", detail, *class)),
    }
    match &input.media_available {
        Read::Value(m) => {
            // Lower is worse: score the negated value.
            let (o, s) = banded(
                -m,
                -limits.media_warn_pct,
                -limits.media_fail_pct,
                limits.media_fail_pct,
            );
            parts.push((o, s, format!("media {m:.0} % free")));
        }
        Read::Unsupported => missing.push("media available"),
        Read::Failed { detail, class } => parts.push(failed("media available", detail, *class)),
    }
    match &input.system_state {
        Read::Value(names::SYSTEM_STATE_FATAL) => parts.push((
            CheckOutcome::Failed,
            0.0,
            format!("system state fatal error ({})", names::SYSTEM_STATE_FATAL),
        )),
        Read::Value(names::SYSTEM_STATE_RUNNING) => {
            parts.push((CheckOutcome::Ok, 100.0, "system running".into()));
        }
        Read::Value(n) => parts.push((
            CheckOutcome::Warning,
            50.0,
            format!("system state {n} (not running)"),
        )),
        Read::Unsupported => missing.push("system state"),
        Read::Failed { detail, class } => parts.push(failed("system state", detail, *class)),
    }
    match (&input.link_errors, input.previous_link_errors) {
        (Read::Value(n), Some(p)) if *n > p => parts.push((
            CheckOutcome::Warning,
            50.0,
            format!("link errors grew from {p} to {n}"),
        )),
        (Read::Value(n), _) => parts.push((CheckOutcome::Ok, 100.0, format!("{n} link errors"))),
        (Read::Unsupported, _) => missing.push("link errors"),
        (Read::Failed { detail, class }, _) => parts.push(failed("link errors", detail, *class)),
    }
    let mut detail = parts
        .iter()
        .map(|p| p.2.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if !missing.is_empty() {
        if !detail.is_empty() {
            detail.push_str("; ");
        }
        detail.push_str("not supported: ");
        detail.push_str(&missing.join(", "));
    }
    let worst = parts.iter().map(|p| p.0).max_by_key(|o| match o {
        CheckOutcome::Failed => 2,
        CheckOutcome::Warning => 1,
        _ => 0,
    });
    match worst {
        None => Evaluation::unknown(detail),
        Some(outcome) => {
            let score = parts.iter().map(|p| p.1).fold(100.0, f64::min);
            Evaluation {
                error_class: if outcome == CheckOutcome::Failed {
                    error_class
                } else {
                    None
                },
                ..Evaluation::new(outcome, score, detail)
            }
        }
    }
}

/// Which replicator state a check reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replicator {
    Stream,
    Record,
}

impl Replicator {
    fn name(self, n: i64) -> String {
        match self {
            Self::Stream => format!("stream state {}", StreamState::from_value(n)),
            Self::Record => format!("record state {}", RecordState::from_value(n)),
        }
    }

    fn what(self) -> &'static str {
        match self {
            Self::Stream => "streaming",
            Self::Record => "recording",
        }
    }
}

/// Active is fine; idle is fine unless the encoder should be active, then it fails (an
/// encoder that should be on air and is not is the failure this tool exists for);
/// `FailingIn…` and shutdown fail. Keyed on the numbers, never the names.
pub(crate) fn replicator(which: Replicator, state: &Read<i64>, expected: bool) -> Evaluation {
    let n = match state {
        Read::Value(n) => *n,
        Read::Unsupported => {
            return Evaluation::unknown(format!("{} state not supported", which.what()))
        }
        Read::Failed { detail, class } => return Evaluation::failed(detail.clone(), *class),
    };
    let name = which.name(n);
    match n {
        2 => Evaluation::new(CheckOutcome::Ok, 100.0, name),
        0 | 1 if expected => Evaluation::new(
            CheckOutcome::Failed,
            0.0,
            format!("{name}, but the encoder should be {}", which.what()),
        ),
        0 | 1 => Evaluation::new(CheckOutcome::Ok, 100.0, name),
        3..=5 => Evaluation::new(CheckOutcome::Failed, 0.0, name),
        _ => Evaluation::new(CheckOutcome::Warning, 50.0, format!("unknown {name}")),
    }
}

#[cfg(test)]
mod tests {
    use helo_transport::ErrorClass;

    use super::*;

    #[test]
    fn thermal_bands_around_the_managers_high_mark() {
        let limits = Limits::default();
        let check = |t: Option<f64>, outcome: CheckOutcome, score: f64| {
            let e = thermal(t, 80.0, &limits);
            assert_eq!(e.outcome, outcome, "{t:?}: {}", e.detail);
            assert!((e.score - score).abs() < 1e-6, "{t:?}: {}", e.score);
        };
        check(None, CheckOutcome::Unknown, 0.0);
        check(Some(f64::NAN), CheckOutcome::Unknown, 0.0);
        check(Some(30.0), CheckOutcome::Ok, 100.0);
        check(Some(60.0), CheckOutcome::Ok, 100.0);
        check(Some(70.0), CheckOutcome::Warning, 75.0);
        check(Some(95.0), CheckOutcome::Failed, 12.5);
        check(Some(100.0), CheckOutcome::Failed, 0.0);
    }

    fn inputs() -> ResourceInputs {
        ResourceInputs {
            device_temp: Read::Value(45.0),
            media_available: Read::Value(80.0),
            system_state: Read::Value(4),
            link_errors: Read::Value(0),
            previous_link_errors: None,
        }
    }

    #[test]
    fn resource_usage_is_the_worst_part() {
        let limits = Limits::default();
        let check = |input: ResourceInputs, outcome: CheckOutcome, score: f64, needle: &str| {
            let e = resource(&input, &limits);
            assert_eq!(e.outcome, outcome, "{}", e.detail);
            assert!((e.score - score).abs() < 1e-6, "{}: {}", e.detail, e.score);
            assert!(e.detail.contains(needle), "{} lacks {needle}", e.detail);
        };
        check(
            inputs(),
            CheckOutcome::Ok,
            100.0,
            "device temperature 45 °C",
        );
        check(
            ResourceInputs {
                device_temp: Read::Value(77.5),
                ..inputs()
            },
            CheckOutcome::Warning,
            75.0,
            "78 °C",
        );
        check(
            ResourceInputs {
                media_available: Read::Value(6.0),
                ..inputs()
            },
            CheckOutcome::Warning,
            75.0,
            "media 6 % free",
        );
        check(
            ResourceInputs {
                media_available: Read::Value(0.0),
                ..inputs()
            },
            CheckOutcome::Failed,
            0.0,
            "media 0 %",
        );
        check(
            ResourceInputs {
                system_state: Read::Value(10),
                ..inputs()
            },
            CheckOutcome::Failed,
            0.0,
            "fatal error (10)",
        );
        check(
            ResourceInputs {
                link_errors: Read::Value(7),
                previous_link_errors: Some(3),
                ..inputs()
            },
            CheckOutcome::Warning,
            50.0,
            "grew from 3 to 7",
        );
        check(
            ResourceInputs {
                link_errors: Read::Value(3),
                previous_link_errors: Some(3),
                ..inputs()
            },
            CheckOutcome::Ok,
            100.0,
            "3 link errors",
        );
        // A model without temperature: judged on the rest, never failed for it.
        check(
            ResourceInputs {
                device_temp: Read::Unsupported,
                ..inputs()
            },
            CheckOutcome::Ok,
            100.0,
            "not supported: temperature",
        );
        let e = resource(
            &ResourceInputs {
                device_temp: Read::Failed {
                    detail: "timed out".into(),
                    class: ErrorClass::Timeout,
                },
                ..inputs()
            },
            &limits,
        );
        assert_eq!(
            (e.outcome, e.error_class),
            (CheckOutcome::Failed, Some(ErrorClass::Timeout))
        );
    }

    #[test]
    fn resource_usage_without_any_parameter_is_unknown() {
        let e = resource(
            &ResourceInputs {
                device_temp: Read::Unsupported,
                media_available: Read::Unsupported,
                system_state: Read::Unsupported,
                link_errors: Read::Unsupported,
                previous_link_errors: None,
            },
            &Limits::default(),
        );
        assert_eq!(e.outcome, CheckOutcome::Unknown);
        assert!(
            e.detail.contains("temperature, media available"),
            "{}",
            e.detail
        );
    }

    #[test]
    fn replicator_states_by_number() {
        let check = |which: Replicator, n: i64, expected: bool, outcome: CheckOutcome| {
            let e = replicator(which, &Read::Value(n), expected);
            assert_eq!(
                e.outcome, outcome,
                "{which:?} {n} expected={expected}: {}",
                e.detail
            );
        };
        use CheckOutcome::*;
        use Replicator::*;
        for which in [Stream, Record] {
            check(which, 2, false, Ok);
            check(which, 2, true, Ok);
            check(which, 1, false, Ok);
            check(which, 1, true, Failed);
            check(which, 0, true, Failed);
            check(which, 3, false, Failed);
            check(which, 4, true, Failed);
            check(which, 5, false, Failed);
            check(which, 42, false, Warning);
        }
        let e = replicator(Stream, &Read::Value(4), true);
        assert_eq!(e.detail, "stream state failing_in_stream");
        assert_eq!(
            replicator(Record, &Read::Unsupported, true).outcome,
            Unknown
        );
        let e = replicator(
            Stream,
            &Read::Failed {
                detail: "refused".into(),
                class: ErrorClass::Connection,
            },
            false,
        );
        assert_eq!(
            (e.outcome, e.error_class),
            (Failed, Some(ErrorClass::Connection))
        );
    }
}
