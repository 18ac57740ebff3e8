//! The embedded default shows every supervision path in its first minute: run at four
//! times its speed, the first minute takes 15 s.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use common::{eventually, http, series_value, start_fleet};
use conn_supervisor::demo::{Demo, ROLES};
use helo_transport::StreamState;

const SPEED: f64 = 4.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_every_path_in_its_first_minute() {
    let demo = Demo::start_at_speed(ROLES.len(), "127.0.0.1:0".parse().unwrap(), SPEED)
        .await
        .unwrap();
    let (fleet, admin) = start_fleet(&demo.config).await;
    let action = |text: &str, id: &str, action: &str| {
        series_value(
            text,
            &format!(
                r#"helo_recovery_actions_total{{encoder_id="{id}",action="{action}",outcome="ok"}}"#
            ),
        )
        .unwrap_or(0.0)
    };
    let minute = Duration::from_secs_f64(60.0 / SPEED);
    let text = eventually(minute, "every path shown", || async {
        let (_, text) = http(admin, "GET", "/metrics").await;
        let shown = action(&text, "demo-02-stream-fails", "restart_stream") >= 1.0
            && action(&text, "demo-04-reboots", "start_stream") >= 1.0
            && action(&text, "demo-01-overheating", "lighter_profile") >= 1.0;
        shown.then_some(text)
    })
    .await;
    // The held encoder: observed, idle, never acted on.
    let held = &demo.sims[8];
    assert_eq!(held.snapshot().stream_state, StreamState::Idle.value());
    assert!(
        !text.contains(r#"helo_recovery_actions_total{encoder_id="demo-08-held""#),
        "{text}"
    );
    assert_eq!(
        series_value(
            &text,
            r#"helo_encoder_status{encoder_id="demo-08-held",status="held"}"#
        ),
        Some(1.0),
        "{text}"
    );
    // The rebooted and the failed streams are on air again.
    for i in [2, 4] {
        let sim = &demo.sims[i];
        eventually(Duration::from_secs(5), "streaming again", || async {
            (sim.snapshot().stream_state == StreamState::Streaming.value()).then_some(())
        })
        .await;
    }
    fleet.shutdown(Duration::from_secs(2)).await;
    demo.stop().await;
}
