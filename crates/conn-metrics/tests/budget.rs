//! `helo_request_budget_refused_total`: created at 0 with the encoder, brought up to
//! the device's own count, removed with the encoder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use conn_metrics::HeloMetrics;

fn sample(text: &str, encoder: &str) -> Option<f64> {
    let prefix = format!("helo_request_budget_refused_total{{encoder_id=\"{encoder}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.parse().unwrap())
}

#[test]
fn the_counter_follows_the_devices_total_from_zero() {
    let metrics = HeloMetrics::new().unwrap();
    let budget = metrics.budget();
    assert_eq!(sample(&metrics.gather_text(), "studio-a"), None);

    // The encoder is added: its series exists at 0 before any refusal.
    budget.record_refused_total("studio-a", 0);
    let text = metrics.gather_text();
    assert_eq!(sample(&text, "studio-a"), Some(0.0));
    assert!(text.contains("# TYPE helo_request_budget_refused_total counter"));
    assert!(text.contains("# HELP helo_request_budget_refused_total Requests not sent"));

    budget.record_refused_total("studio-a", 3);
    budget.record_refused_total("studio-a", 3);
    budget.record_refused_total("studio-a", 7);
    assert_eq!(sample(&metrics.gather_text(), "studio-a"), Some(7.0));
    // A counter never goes down (a total from a device built anew adds nothing).
    budget.record_refused_total("studio-a", 2);
    assert_eq!(budget.refused("studio-a").get(), 7);

    budget.record_refused_total("studio-b", 1);
    assert_eq!(metrics.remove_encoder("studio-a"), 1);
    let text = metrics.gather_text();
    assert_eq!(sample(&text, "studio-a"), None);
    assert_eq!(sample(&text, "studio-b"), Some(1.0));
}
