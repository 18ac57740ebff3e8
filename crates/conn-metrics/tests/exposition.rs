//! The exposition text after real operations: values, labels, removal, validity.

// Helpers outside `#[test]` functions unwrap too; a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::{
    io::Write,
    process::{Command, Stdio},
    time::Duration,
};

use conn_metrics::{HeloMetrics, MetricsLayer};
use helo_transport::{
    ConnectionId, DeviceName, HeloError, HeloRequest, HeloResponse, Outcome, RecordState,
    StreamState,
};
use prometheus_parse::{LineInfo, Scrape, Value};
use tower::{Layer, ServiceExt};

const FAMILIES: [&str; 22] = [
    "helo_connection_health",
    "helo_health_checks_total",
    "helo_health_check_duration_seconds",
    "helo_connection_temperature",
    "helo_connection_load",
    "helo_cooling_events_total",
    "helo_cooling_duration_seconds",
    "helo_warmup_attempts_total",
    "helo_warmup_success_total",
    "helo_warmup_duration_seconds",
    "helo_warm_connections",
    "helo_requests_total",
    "helo_request_duration_seconds",
    "helo_device_temperature_celsius",
    "helo_stream_state",
    "helo_record_state",
    "helo_recovery_actions_total",
    "helo_encoder_up",
    "helo_device_media_available_percent",
    "helo_encoder_status",
    "helo_encoder_health_score",
    "helo_encoder_in_desired_state",
];

fn scrape(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// The value of the sample `name` with exactly `labels`.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == name
                && s.labels.len() == labels.len()
                && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        })
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.iter().map(|b| b.count).fold(0.0, f64::max),
            Value::Summary(_) => f64::NAN,
        })
}

/// Everything one encoder does in a day, through the plain observer-style methods.
async fn a_day_of(metrics: &HeloMetrics, encoder: &DeviceName, conns: [ConnectionId; 2]) {
    let warmup = metrics.warmup();
    warmup.warmup_attempt(encoder);
    warmup.warmup_success(encoder, conns[0], Duration::from_millis(120));
    warmup.warmup_attempt(encoder);
    warmup.warmup_failure(
        encoder,
        &HeloError::Connect {
            device: encoder.clone(),
            request: "login".into(),
            source: "refused".into(),
        },
    );
    warmup.warmup_attempt(encoder);
    warmup.warmup_success(encoder, conns[1], Duration::from_secs(3));
    warmup.warm_connections(encoder, 2);

    let health = metrics.health();
    health.health_checked(
        encoder,
        conns[0],
        95.5,
        "success",
        Duration::from_millis(40),
    );
    health.health_checked(
        encoder,
        conns[1],
        55.0,
        "degraded",
        Duration::from_millis(900),
    );
    health.health_checked(
        encoder,
        conns[1],
        140.0,
        "success",
        Duration::from_millis(30),
    );
    health.device_state(
        encoder,
        Some(StreamState::Streaming),
        Some(RecordState::Idle),
        Some(48.5),
    );

    let thermal = metrics.thermal();
    thermal.temperature(encoder, conns[0], 41.0);
    thermal.temperature(encoder, conns[1], 77.25);
    thermal.load(encoder, 63.0);
    thermal.cooling_started(encoder, conns[1], "high_load");
    thermal.cooling_step(encoder, conns[1], 1, 50.0);
    thermal.cooling_finished(encoder, conns[1], Duration::from_secs(90));
    thermal.cooling_started(encoder, conns[1], "preventive");

    let device = metrics.device();
    device.set_encoder_up(encoder, true);
    device.set_media_available(encoder, 42.0);
    device.set_encoder_status(encoder, "healthy");
    device.set_encoder_status(encoder, "critical");
    device.set_encoder_health_score(encoder, Some(55.5));
    device.set_in_desired_state(encoder, Some(false));
    device.set_stream_state(encoder, StreamState::FailingInStream);
    device.recovery_action(encoder, "restart_stream", "success");
    device.recovery_action(encoder, "relogin", "failure");

    let ok = |_req: HeloRequest| async { Ok::<_, HeloError>(HeloResponse::LoggedIn) };
    let svc = MetricsLayer::new(metrics, encoder).layer(tower::service_fn(ok));
    svc.clone()
        .oneshot(HeloRequest::get("eParamID_Temperature"))
        .await
        .unwrap();
    svc.oneshot(HeloRequest::get("eParamID_Temperature"))
        .await
        .unwrap();
}

fn enc(name: &str) -> DeviceName {
    DeviceName::from(name)
}

fn conns(a: u64, b: u64) -> [ConnectionId; 2] {
    [ConnectionId::from_raw(a), ConnectionId::from_raw(b)]
}

#[tokio::test(start_paused = true)]
async fn values_and_labels_after_real_operations() {
    let metrics = HeloMetrics::new().unwrap();
    a_day_of(&metrics, &enc("studio-a"), conns(1, 2)).await;
    let s = scrape(&metrics.gather_text());
    let e = ("encoder_id", "studio-a");
    // Durations are fleet-wide (no `encoder_id`) at the default options.

    let health = |c| value(&s, "helo_connection_health", &[e, ("connection_id", c)]);
    assert_eq!(health("1"), Some(95.5));
    assert_eq!(health("2"), Some(100.0), "scores clamp to 0–100");
    let checks = |r| value(&s, "helo_health_checks_total", &[e, ("result", r)]);
    assert_eq!(checks("success"), Some(2.0));
    assert_eq!(checks("degraded"), Some(1.0));
    assert_eq!(checks("failure"), None);
    assert_eq!(
        value(&s, "helo_health_check_duration_seconds_count", &[]),
        Some(3.0)
    );
    let sum = value(&s, "helo_health_check_duration_seconds_sum", &[]).unwrap();
    assert!((sum - 0.97).abs() < 1e-9, "{sum}");

    let temp = |c| {
        value(
            &s,
            "helo_connection_temperature",
            &[e, ("connection_id", c)],
        )
    };
    assert_eq!(temp("1"), Some(41.0));
    assert_eq!(temp("2"), Some(77.25));
    assert_eq!(value(&s, "helo_connection_load", &[e]), Some(63.0));
    let cooling = |r| value(&s, "helo_cooling_events_total", &[e, ("reason", r)]);
    assert_eq!(cooling("high_load"), Some(1.0));
    assert_eq!(cooling("preventive"), Some(1.0));
    assert_eq!(
        value(&s, "helo_cooling_duration_seconds_sum", &[]),
        Some(90.0)
    );
    assert_eq!(
        value(&s, "helo_cooling_duration_seconds_bucket", &[("le", "120")]),
        None,
        "buckets are folded into the histogram sample"
    );
    assert_eq!(value(&s, "helo_cooling_duration_seconds", &[]), Some(1.0));

    assert_eq!(value(&s, "helo_warmup_attempts_total", &[e]), Some(3.0));
    assert_eq!(value(&s, "helo_warmup_success_total", &[e]), Some(2.0));
    assert_eq!(
        value(&s, "helo_warmup_duration_seconds_count", &[]),
        Some(2.0)
    );
    assert_eq!(
        value(&s, "helo_warmup_duration_seconds_sum", &[]),
        Some(3.12)
    );
    assert_eq!(value(&s, "helo_warm_connections", &[e]), Some(2.0));

    assert_eq!(
        value(&s, "helo_device_temperature_celsius", &[e]),
        Some(48.5)
    );
    assert_eq!(value(&s, "helo_stream_state", &[e]), Some(4.0));
    assert_eq!(value(&s, "helo_record_state", &[e]), Some(1.0));
    assert_eq!(value(&s, "helo_encoder_up", &[e]), Some(1.0));
    assert_eq!(
        value(&s, "helo_device_media_available_percent", &[e]),
        Some(42.0)
    );
    // Only the current status has a series.
    assert_eq!(
        value(&s, "helo_encoder_status", &[e, ("status", "critical")]),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "helo_encoder_status", &[e, ("status", "healthy")]),
        None
    );
    assert_eq!(value(&s, "helo_encoder_health_score", &[e]), Some(55.5));
    assert_eq!(value(&s, "helo_encoder_in_desired_state", &[e]), Some(0.0));
    let recovery = |a, o| {
        value(
            &s,
            "helo_recovery_actions_total",
            &[e, ("action", a), ("outcome", o)],
        )
    };
    assert_eq!(recovery("restart_stream", "success"), Some(1.0));
    assert_eq!(recovery("relogin", "failure"), Some(1.0));

    let requests = |o| {
        value(
            &s,
            "helo_requests_total",
            &[e, ("operation", "get_param"), ("outcome", o)],
        )
    };
    assert_eq!(requests("ok"), Some(2.0));
    assert_eq!(
        requests("timeout"),
        None,
        "outcomes that never happened are not exported"
    );
    assert_eq!(
        value(
            &s,
            "helo_request_duration_seconds_count",
            &[("operation", "get_param")]
        ),
        Some(2.0)
    );
}

#[tokio::test(start_paused = true)]
async fn the_text_is_valid_exposition_with_help_and_type_for_every_family() {
    let metrics = HeloMetrics::new().unwrap();
    a_day_of(&metrics, &enc("studio-a"), conns(1, 2)).await;
    a_day_of(&metrics, &enc("studio-b"), conns(3, 4)).await;
    let text = metrics.gather_text();

    // prometheus-parse skips what it cannot read: make sure it read every line.
    for line in text.lines() {
        if line.starts_with('#') {
            assert!(
                line.starts_with("# HELP ") || line.starts_with("# TYPE "),
                "{line}"
            );
            continue;
        }
        assert!(
            matches!(LineInfo::parse(line), LineInfo::Sample { .. }),
            "not a sample: {line}"
        );
    }
    let s = scrape(&text);
    for family in FAMILIES {
        let help = s.docs.get(family).map(String::as_str).unwrap_or("");
        assert!(!help.is_empty(), "{family} has no help text");
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} has no type"
        );
        if family.ends_with("_total") {
            assert!(
                text.contains(&format!("# TYPE {family} counter")),
                "{family}"
            );
        }
        if family.ends_with("_seconds") {
            assert!(
                text.contains(&format!("# TYPE {family} histogram")),
                "{family}"
            );
        }
    }
    assert_eq!(
        text.lines().filter(|l| l.starts_with("# HELP ")).count(),
        FAMILIES.len(),
        "no family more, none less"
    );
    assert_eq!(
        value(
            &s,
            "helo_connection_health",
            &[("encoder_id", "studio-b"), ("connection_id", "3")]
        ),
        Some(95.5)
    );
}

#[tokio::test(start_paused = true)]
async fn histogram_buckets_fit_what_they_measure() {
    let metrics = HeloMetrics::new().unwrap();
    a_day_of(&metrics, &enc("e"), conns(1, 2)).await;
    let text = metrics.gather_text();
    let bounds = |family: &str| -> Vec<f64> {
        let prefix = format!("{family}_bucket{{");
        text.lines()
            .filter(|l| l.starts_with(&prefix))
            .filter(|l| l.contains(r#"operation="get_param""#) || !l.contains("operation="))
            .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next()?.parse().ok())
            .collect()
    };
    let request = bounds("helo_request_duration_seconds");
    let health = bounds("helo_health_check_duration_seconds");
    let cooling = bounds("helo_cooling_duration_seconds");
    let warmup = bounds("helo_warmup_duration_seconds");
    assert!(
        request.first() <= Some(&0.001) && request.contains(&60.0),
        "{request:?}"
    );
    assert!(
        health.first() <= Some(&0.005) && health.contains(&10.0),
        "{health:?}"
    );
    assert!(
        cooling.contains(&60.0) && cooling.contains(&1800.0),
        "{cooling:?}"
    );
    assert!(
        warmup.first() <= Some(&0.01) && warmup.contains(&300.0),
        "{warmup:?}"
    );
    assert!(text.contains(r#"helo_cooling_duration_seconds_bucket{le="60"} 0"#));
    assert!(text.contains(r#"helo_cooling_duration_seconds_bucket{le="120"} 1"#));
}

#[tokio::test(start_paused = true)]
async fn a_retired_connection_takes_only_its_own_series() {
    let metrics = HeloMetrics::new().unwrap();
    a_day_of(&metrics, &enc("enc-1"), conns(23, 24)).await;
    a_day_of(&metrics, &enc("enc-12"), conns(3, 4)).await;

    // Retired through the pool's observer method, as conn-core will do.
    metrics
        .warmup()
        .connection_retired(enc("enc-12"), ConnectionId::from_raw(3));
    let s = scrape(&metrics.gather_text());
    let health = |e, c| {
        value(
            &s,
            "helo_connection_health",
            &[("encoder_id", e), ("connection_id", c)],
        )
    };
    let temp = |e, c| {
        value(
            &s,
            "helo_connection_temperature",
            &[("encoder_id", e), ("connection_id", c)],
        )
    };
    assert_eq!(health("enc-12", "3"), None);
    assert_eq!(temp("enc-12", "3"), None);
    assert_eq!(health("enc-12", "4"), Some(100.0));
    assert_eq!(temp("enc-12", "4"), Some(77.25));
    // "enc-1" + "23" reads like "enc-12" + "3"; it must survive.
    assert_eq!(health("enc-1", "23"), Some(95.5));
    assert_eq!(temp("enc-1", "23"), Some(41.0));
    // Encoder-level series are untouched.
    assert_eq!(
        value(&s, "helo_warm_connections", &[("encoder_id", "enc-12")]),
        Some(2.0)
    );

    // Through the thermal observer method too; a second removal finds nothing.
    metrics
        .thermal()
        .connection_removed(enc("enc-12"), ConnectionId::from_raw(4));
    assert_eq!(metrics.remove_connection("enc-12", 4), 0);
    let text = metrics.gather_text();
    assert!(
        !text.contains(r#"helo_connection_health{encoder_id="enc-12""#),
        "{text}"
    );
    assert!(
        !text.contains(r#"helo_connection_temperature{encoder_id="enc-12""#),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_departed_encoder_takes_every_series_it_ever_had() {
    let metrics = HeloMetrics::new().unwrap();
    a_day_of(&metrics, &enc("enc-1"), conns(1, 2)).await;
    a_day_of(&metrics, &enc("enc-2"), conns(3, 4)).await;
    let before = metrics.gather_text();

    let removed = metrics.remove_encoder(enc("enc-2"));
    // 2 + 2 (health, temperature) + 2 checks + 1 load + 2 cooling events + 3 warm-up
    // (attempts, successes, warm) + 1 request counter (the only operation and outcome
    // used) + 1 device temperature + 2 states + 2 recovery + 1 up + 1 media + 1 status
    // (only the current one) + 1 score + 1 desired state. The duration histograms
    // are the fleet's, and stay.
    assert_eq!(
        removed,
        2 + 2 + 2 + 1 + 2 + 3 + 1 + 1 + 2 + 2 + 1 + 1 + 1 + 1 + 1
    );
    let after = metrics.gather_text();
    assert!(!after.contains(r#"encoder_id="enc-2""#), "{after}");
    let kept = |text: &str| {
        text.lines()
            .filter(|l| l.contains(r#"encoder_id="enc-1""#))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(kept(&after), kept(&before));

    // Through the health observer method, the last encoder leaves: nothing of any
    // encoder is left, only the fleet's duration histograms.
    metrics.health().encoder_removed("enc-1");
    let left = metrics.gather_text();
    assert!(!left.contains("encoder_id="), "{left}");
    let families: Vec<_> = left
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .collect();
    assert_eq!(
        families,
        [
            "helo_cooling_duration_seconds histogram",
            "helo_health_check_duration_seconds histogram",
            "helo_request_duration_seconds histogram",
            "helo_warmup_duration_seconds histogram",
        ]
    );
    assert_eq!(metrics.remove_encoder("enc-1"), 0);
}

#[test]
fn a_handle_taken_before_removal_is_no_longer_exported() {
    let metrics = HeloMetrics::new().unwrap();
    let gauge = metrics.device().encoder_up("enc");
    gauge.set(1);
    metrics.warmup().encoder_removed("enc");
    gauge.set(0);
    assert!(metrics.gather_text().is_empty());
    // A fresh handle starts a fresh series.
    metrics.device().set_encoder_up("enc", true);
    assert!(metrics
        .gather_text()
        .contains(r#"helo_encoder_up{encoder_id="enc"} 1"#));
}

#[test]
fn odd_label_values_are_escaped_never_refused() {
    let metrics = HeloMetrics::new().unwrap();
    let odd = "studio \"A\"\\north\nwing — Ä";
    metrics.health().health_score(odd, "").set(10.0);
    metrics.thermal().cooling_events(odd, "").inc();
    metrics.device().recovery_action("", "re}start{", "=,");
    let text = metrics.gather_text();
    assert!(
        text.contains(r#"helo_connection_health{encoder_id="studio \"A\"\\north\nwing — Ä",connection_id=""} 10"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"helo_recovery_actions_total{encoder_id="",action="re}start{",outcome="=,"} 1"#
        ),
        "{text}"
    );
    assert_eq!(metrics.remove_encoder(odd), 2);
    assert_eq!(metrics.remove_encoder(""), 1);
    assert!(metrics.gather_text().is_empty());
}

#[test]
fn not_a_number_is_dropped_and_gauges_stay_in_range() {
    let metrics = HeloMetrics::new().unwrap();
    metrics.thermal().temperature("e", 1, f64::NAN);
    metrics.thermal().load("e", f64::INFINITY);
    metrics
        .health()
        .health_checked("e", 1, f64::NAN, "error", Duration::from_millis(5));
    metrics.device().set_device_temperature("e", f64::NAN);
    let s = scrape(&metrics.gather_text());
    assert_eq!(
        value(
            &s,
            "helo_connection_temperature",
            &[("encoder_id", "e"), ("connection_id", "1")]
        ),
        None
    );
    assert_eq!(
        value(&s, "helo_connection_load", &[("encoder_id", "e")]),
        None
    );
    assert_eq!(
        value(
            &s,
            "helo_connection_health",
            &[("encoder_id", "e"), ("connection_id", "1")]
        ),
        None
    );
    assert_eq!(
        value(
            &s,
            "helo_device_temperature_celsius",
            &[("encoder_id", "e")]
        ),
        None
    );
    // The check itself still counts.
    assert_eq!(
        value(
            &s,
            "helo_health_checks_total",
            &[("encoder_id", "e"), ("result", "error")]
        ),
        Some(1.0)
    );

    metrics.thermal().temperature("e", 1, -5.0);
    metrics.thermal().load("e", -1.0);
    assert_eq!(metrics.thermal().connection_temperature("e", 1).get(), 0.0);
    assert_eq!(metrics.thermal().connection_load("e").get(), 0.0);
}

#[test]
fn a_shared_registry_keeps_its_other_collectors_and_refuses_a_second_copy() {
    let registry = prometheus::Registry::new();
    let other = prometheus::IntGauge::new("other_things", "Other things.").unwrap();
    registry.register(Box::new(other.clone())).unwrap();
    other.set(3);

    let metrics = HeloMetrics::with_registry(registry.clone()).unwrap();
    metrics.device().set_encoder_up("enc", true);
    let text = metrics.gather_text();
    assert!(text.contains("other_things 3"), "{text}");
    assert!(
        text.contains(r#"helo_encoder_up{encoder_id="enc"} 1"#),
        "{text}"
    );

    let err = HeloMetrics::with_registry(registry).unwrap_err();
    assert!(err.is_register());
    assert_eq!(err.family(), "helo_connection_health");
    assert!(err.to_string().contains("helo_connection_health"), "{err}");
}

#[test]
fn new_does_not_fail_and_never_touches_the_default_registry() {
    for _ in 0..3 {
        let metrics = HeloMetrics::new().unwrap();
        metrics.device().set_encoder_up("enc", true);
        assert!(!metrics.gather_text().is_empty());
    }
    let global = prometheus::gather();
    assert!(
        global.iter().all(|f| !f.name().starts_with("helo_")),
        "{global:?}"
    );
}

#[test]
fn handles_fit_the_observer_traits_bounds() {
    fn observer<T: Clone + Send + Sync + std::fmt::Debug + 'static>(_: &T) {}
    let metrics = HeloMetrics::new().unwrap();
    observer(&metrics);
    observer(&metrics.health());
    observer(&metrics.thermal());
    observer(&metrics.warmup());
    observer(&metrics.requests());
    observer(&metrics.device());
    observer(&MetricsLayer::new(&metrics, "e"));
    assert!(format!("{metrics:?}").contains("helo_encoder_up"));
}

#[test]
fn request_metrics_can_be_recorded_by_hand() {
    let metrics = HeloMetrics::new().unwrap();
    let requests = metrics.requests();
    requests.record(
        "e",
        "get_param",
        Outcome::Unsupported,
        Duration::from_millis(7),
    );
    assert_eq!(
        requests
            .requests_total("e", "get_param", Outcome::Unsupported)
            .get(),
        1
    );
    assert!(metrics.gather_text().contains(
        r#"helo_requests_total{encoder_id="e",operation="get_param",outcome="unsupported"} 1"#
    ));
}

#[tokio::test(start_paused = true)]
async fn promtool_accepts_the_text_without_warnings() {
    let found = Command::new("sh")
        .args(["-c", "command -v promtool"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        eprintln!("note: promtool is not on PATH; skipping `promtool check metrics`");
        return;
    }
    let metrics = HeloMetrics::new().unwrap();
    a_day_of(&metrics, &enc("studio-a"), conns(1, 2)).await;
    let text = metrics.gather_text();

    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool failed: {said}");
    assert!(said.trim().is_empty(), "promtool warned: {said}");
}

#[test]
fn an_unknown_score_and_desired_state_have_no_series() {
    let metrics = HeloMetrics::new().unwrap();
    let device = metrics.device();
    device.set_encoder_health_score("enc", Some(90.0));
    device.set_in_desired_state("enc", Some(true));
    device.set_encoder_status("enc", "healthy");
    device.set_encoder_health_score("enc", None);
    device.set_in_desired_state("enc", None);
    device.set_encoder_status("enc", "unreachable");
    let text = metrics.gather_text();
    assert!(!text.contains("helo_encoder_health_score{"), "{text}");
    assert!(!text.contains("helo_encoder_in_desired_state{"), "{text}");
    let statuses: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("helo_encoder_status{"))
        .collect();
    assert_eq!(
        statuses,
        [r#"helo_encoder_status{encoder_id="enc",status="unreachable"} 1"#]
    );
}

#[test]
fn check_lateness_appears_once_used() {
    let metrics = HeloMetrics::new().unwrap();
    assert!(!metrics
        .gather_text()
        .contains("helo_health_check_lateness_seconds"));
    let h = metrics.check_lateness().unwrap();
    h.observe(0.02);
    metrics.check_lateness().unwrap().observe(0.2);
    let text = metrics.gather_text();
    assert!(
        text.contains("helo_health_check_lateness_seconds_count 2"),
        "{text}"
    );
    assert!(
        text.contains(r#"helo_health_check_lateness_seconds_bucket{le="0.025"} 1"#),
        "{text}"
    );
}
