//! Checks judged from requests: the probe and recent traffic.

use std::time::Duration;

use crate::{config::Limits, passive::WindowSummary, status::CheckOutcome};

use super::{banded, Evaluation, Read};

/// The probe answered (an "unsupported parameter" answer counts), or why not.
pub(crate) fn connectivity(probe: &Read<()>, latency: Duration) -> Evaluation {
    match probe {
        Read::Value(()) => Evaluation::new(
            CheckOutcome::Ok,
            100.0,
            format!("device answered in {}", fmt_ms(latency)),
        ),
        Read::Unsupported => Evaluation::new(
            CheckOutcome::Ok,
            100.0,
            format!(
                "device answered in {} (probe parameter not supported)",
                fmt_ms(latency)
            ),
        ),
        Read::Failed { detail, class } => {
            Evaluation::failed(format!("{} error: {detail}", class.as_str()), *class)
        }
    }
}

/// The probe's latency and the connection's recent mean, whichever is worse.
pub(crate) fn response_time(
    probe: Duration,
    recent: &WindowSummary,
    limits: &Limits,
) -> Evaluation {
    let worst = recent.mean_latency.map_or(probe, |m| m.max(probe));
    let fail = limits.latency_fail.as_secs_f64();
    let (outcome, score) = banded(
        worst.as_secs_f64(),
        limits.latency_warn.as_secs_f64(),
        fail,
        fail,
    );
    let detail = match recent.mean_latency {
        Some(mean) => format!(
            "probe {}, recent mean {} over {} requests",
            fmt_ms(probe),
            fmt_ms(mean),
            recent.requests
        ),
        None => format!("probe {}, no recent traffic", fmt_ms(probe)),
    };
    Evaluation::new(outcome, score, detail)
}

/// Recent errors over requests on the connection and the encoder, the worse of the
/// two; the probe counts as one more request.
pub(crate) fn error_rate(
    conn: &WindowSummary,
    encoder: &WindowSummary,
    probe_failed: bool,
    limits: &Limits,
) -> Evaluation {
    let with_probe = |w: &WindowSummary| {
        let errors = w.errors + u64::from(probe_failed);
        let requests = w.requests + 1;
        (errors, requests, errors as f64 / requests as f64)
    };
    let (ce, cr, c_rate) = with_probe(conn);
    let (ee, er, e_rate) = with_probe(encoder);
    let rate = c_rate.max(e_rate);
    let (outcome, score) = banded(
        rate,
        limits.error_rate_warn,
        limits.error_rate_fail,
        1.0 - limits.error_rate_fail,
    );
    let detail = format!(
        "{ce} errors in {cr} requests on this connection ({:.1} %), {ee} in {er} on the encoder ({:.1} %)",
        c_rate * 100.0,
        e_rate * 100.0
    );
    Evaluation::new(outcome, score, detail)
}

pub(crate) fn fmt_ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use helo_transport::ErrorClass;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn window(requests: u64, errors: u64, mean_ms: Option<u64>) -> WindowSummary {
        WindowSummary {
            requests,
            errors,
            mean_latency: mean_ms.map(ms),
            ..WindowSummary::default()
        }
    }

    #[test]
    fn connectivity_counts_any_answer() {
        let ok = connectivity(&Read::Value(()), ms(12));
        assert_eq!((ok.outcome, ok.score), (CheckOutcome::Ok, 100.0));
        assert!(ok.detail.contains("12 ms"), "{}", ok.detail);
        let unsupported = connectivity(&Read::Unsupported, ms(3));
        assert_eq!(unsupported.outcome, CheckOutcome::Ok);
        let failed = connectivity(
            &Read::Failed {
                detail: "enc: get x: timed out".into(),
                class: ErrorClass::Timeout,
            },
            ms(5000),
        );
        assert_eq!(failed.outcome, CheckOutcome::Failed);
        assert_eq!(failed.error_class, Some(ErrorClass::Timeout));
        assert!(
            failed.detail.starts_with("timeout error: enc: get x"),
            "{}",
            failed.detail
        );
    }

    #[test]
    fn response_time_takes_the_worse_of_probe_and_recent_mean() {
        let limits = Limits::default(); // warn 500 ms, fail 2.5 s
        let check = |probe: u64, recent: WindowSummary, outcome: CheckOutcome, score: f64| {
            let e = response_time(ms(probe), &recent, &limits);
            assert_eq!(e.outcome, outcome, "{probe} {recent:?}: {}", e.detail);
            assert!((e.score - score).abs() < 1e-6, "{probe}: {}", e.score);
        };
        check(20, window(0, 0, None), CheckOutcome::Ok, 100.0);
        check(20, window(10, 0, Some(1500)), CheckOutcome::Warning, 75.0);
        check(1500, window(10, 0, Some(20)), CheckOutcome::Warning, 75.0);
        check(2500, window(0, 0, None), CheckOutcome::Failed, 50.0);
        check(5000, window(0, 0, None), CheckOutcome::Failed, 0.0);
    }

    #[test]
    fn error_rate_is_the_worse_of_connection_and_encoder_with_the_probe() {
        let limits = Limits::default(); // warn 5 %, fail 25 %
        let check = |conn: WindowSummary, enc: WindowSummary, outcome: CheckOutcome| {
            let e = error_rate(&conn, &enc, false, &limits);
            assert_eq!(e.outcome, outcome, "{}", e.detail);
            e
        };
        // No traffic: the successful probe alone.
        let e = check(window(0, 0, None), window(0, 0, None), CheckOutcome::Ok);
        assert_eq!(e.score, 100.0);
        assert!(e.detail.contains("0 errors in 1 requests"), "{}", e.detail);
        // 1 of 20 (+ probe) on the connection: 4.8 %.
        check(window(19, 1, None), window(19, 1, None), CheckOutcome::Ok);
        // The encoder's other connections are failing.
        check(
            window(9, 0, None),
            window(39, 8, None),
            CheckOutcome::Warning,
        );
        let e = check(window(3, 3, None), window(3, 3, None), CheckOutcome::Failed);
        assert!(e.score < 50.0);
        let probe_failed = error_rate(&window(0, 0, None), &window(0, 0, None), true, &limits);
        assert_eq!(
            (probe_failed.outcome, probe_failed.score),
            (CheckOutcome::Failed, 0.0)
        );
    }
}
