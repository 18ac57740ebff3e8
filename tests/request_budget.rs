//! The per-device request budget against a normal fleet: at default settings no encoder
//! comes near it, neither at start-up (the burst) nor in steady operation (the rate).
//! Real time over loopback: once at the real defaults for the start-up burst, once
//! with every interval and the budget scaled by the same factor, so seconds stand for
//! minutes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use conn_supervisor::config::{EncoderConfig, Tunables};
use helo_sim::{Faults, RequestKind, SimConfig, SimDevice};
use helo_transport::{
    RequestBudget, DEFAULT_REQUEST_BUDGET_BURST, DEFAULT_REQUEST_BUDGET_PER_MINUTE,
};
use tokio::time::{sleep, Instant};

/// A normal fleet: a healthy encoder, one with a password, one without an event API
/// (checks poll every value), and one whose stream keeps failing (checked every
/// `unhealthy_interval` and recovered with stop and start).
async fn fleet_sims(
    event_hold: Duration,
    stream_fails_after: Duration,
) -> Vec<(&'static str, SimDevice)> {
    let fast = |c: SimConfig| SimConfig { event_hold, ..c };
    vec![
        ("healthy", sim(fast(SimConfig::fast())).await),
        (
            "password",
            sim(fast(SimConfig::fast().with_password("pw"))).await,
        ),
        (
            "no-events",
            sim(SimConfig {
                events_supported: false,
                ..fast(SimConfig::fast())
            })
            .await,
        ),
        (
            "failing",
            sim(SimConfig {
                stream_fail_after: Some(stream_fails_after),
                ..fast(SimConfig::fast())
            })
            .await,
        ),
        (
            "critical",
            sim(SimConfig {
                events_supported: false,
                faults: Faults {
                    stream_start_fails: true,
                    ..Faults::default()
                },
                ..fast(SimConfig::fast())
            })
            .await,
        ),
    ]
}

fn encoders(
    sims: &[(&'static str, SimDevice)],
    tunables: &Tunables,
    budget: RequestBudget,
) -> Vec<EncoderConfig> {
    sims.iter()
        .map(|(id, sim)| {
            let password = (*id == "password").then_some("pw");
            let mut enc = encoder(id, &sim.url(), password, tunables);
            enc.device = enc.device.with_request_budget(budget).unwrap();
            enc.expect_streaming = matches!(*id, "failing" | "critical");
            enc
        })
        .collect()
}

async fn refused(admin: std::net::SocketAddr, id: &str) -> Option<f64> {
    let (_, text) = http(admin, "GET", "/metrics").await;
    series_value(
        &text,
        &format!("helo_request_budget_refused_total{{encoder_id=\"{id}\"}}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_up_of_a_fleet_at_default_settings_fits_the_default_burst() {
    let sims = fleet_sims(Duration::from_secs(50), Duration::from_secs(3)).await;
    let tunables = Tunables::default();
    let config = fleet_config(
        encoders(&sims, &tunables, RequestBudget::default()),
        &tunables,
    );
    let started = Instant::now();
    let (fleet, admin) = start_fleet(&config).await;
    // The series exist from the start, at 0.
    for (id, _) in &sims {
        eventually(Duration::from_secs(2), "budget series", || async {
            refused(admin, id).await.filter(|v| *v == 0.0)
        })
        .await;
    }
    eventually(Duration::from_secs(15), "every encoder checked", || async {
        fleet
            .views()
            .iter()
            .all(|v| v.checks.count > 0)
            .then_some(())
    })
    .await;
    sleep(Duration::from_secs(4)).await;
    let took = started.elapsed();
    for (id, sim) in &sims {
        let sent = sim.request_count(RequestKind::Total);
        eprintln!("{id}: {sent} requests in the first {took:?}");
        assert!(
            sent < u64::from(DEFAULT_REQUEST_BUDGET_BURST) / 2,
            "{id}: {sent} requests at start-up, the burst is {DEFAULT_REQUEST_BUDGET_BURST}"
        );
        assert_eq!(refused(admin, id).await, Some(0.0), "{id}");
    }
    fleet.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_in_steady_operation_stays_far_below_the_default_rate() {
    // Every interval 20 times shorter and the budget 20 times larger: 6 s stand for
    // two minutes of a fleet at default settings.
    const SCALE: u32 = 20;
    let d = Tunables::default();
    let tunables = Tunables {
        check_interval: d.check_interval / SCALE,
        unhealthy_interval: d.unhealthy_interval / SCALE,
        keepalive_interval: d.keepalive_interval / SCALE,
        recovery_backoff: d.recovery_backoff / SCALE,
        recovery_retry_after: d.recovery_retry_after / SCALE,
        desired_state_grace: d.desired_state_grace / SCALE,
        start_timeout: d.start_timeout / SCALE,
        cooling_period: d.cooling_period / SCALE,
        request_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_millis(500),
        health_deadline: Duration::from_millis(800),
        ..d
    };
    let budget = RequestBudget {
        per_minute: DEFAULT_REQUEST_BUDGET_PER_MINUTE * SCALE,
        burst: DEFAULT_REQUEST_BUDGET_BURST,
    };
    let sims = fleet_sims(
        Duration::from_secs(50) / SCALE,
        Duration::from_secs(60) / SCALE,
    )
    .await;
    let config = fleet_config(encoders(&sims, &tunables, budget), &tunables);
    let (fleet, admin) = start_fleet(&config).await;
    // Past the start-up burst, count a steady window.
    sleep(Duration::from_secs(1)).await;
    let before: Vec<u64> = sims
        .iter()
        .map(|(_, s)| s.request_count(RequestKind::Total))
        .collect();
    let window = Duration::from_secs(6);
    sleep(window).await;
    let simulated_minutes = (window * SCALE).as_secs_f64() / 60.0;
    for ((id, sim), before) in sims.iter().zip(before) {
        let per_minute =
            (sim.request_count(RequestKind::Total) - before) as f64 / simulated_minutes;
        eprintln!("{id}: {per_minute:.0} requests a minute at default settings");
        assert!(
            per_minute < f64::from(DEFAULT_REQUEST_BUDGET_PER_MINUTE) / 3.0,
            "{id}: {per_minute:.0}/min is too close to the default budget"
        );
        assert_eq!(refused(admin, id).await, Some(0.0), "{id}");
    }
    let failing = fleet
        .views()
        .into_iter()
        .find(|v| v.id == "failing")
        .unwrap();
    assert!(failing.checks.count > 0);
    fleet.shutdown(Duration::from_secs(2)).await;
}
