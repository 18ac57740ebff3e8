//! Desired-state supervision end to end, against simulated encoders over loopback: an
//! encoder that should be on air is put back on air, and the status says the truth
//! when it is not.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use common::{
    encoder, eventually, fast_tunables, fleet_config, http, series_value, sim, start_fleet,
};
use conn_supervisor::config::Tunables;
use helo_sim::{SimConfig, SimDevice};
use helo_transport::{names, StreamState};

const GRACE: Duration = Duration::from_millis(1500);

fn tunables() -> Tunables {
    Tunables {
        desired_state_grace: GRACE,
        start_timeout: Duration::from_secs(2),
        ..fast_tunables()
    }
}

fn streaming(sim: &SimDevice) -> bool {
    sim.snapshot().stream_state == StreamState::Streaming.value()
}

async fn start_stream(sim: &SimDevice) {
    sim.set_param(names::REPLICATOR_COMMAND, "3").unwrap();
    eventually(Duration::from_secs(5), "streaming", || async {
        streaming(sim).then_some(())
    })
    .await;
}

async fn view(admin: std::net::SocketAddr, id: &str) -> serde_json::Value {
    let (status, body) = http(admin, "GET", &format!("/api/encoders/{id}")).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebooted_encoder_is_streaming_again_within_grace_and_one_interval() {
    let sim = sim(SimConfig::fast()).await;
    let t = tunables();
    let mut enc = encoder("studio-a", &sim.url(), None, &t);
    enc.expect_streaming = true;
    let (fleet, admin) = start_fleet(&fleet_config(vec![enc], &t)).await;
    start_stream(&sim).await;
    eventually(Duration::from_secs(5), "healthy", || async {
        (view(admin, "studio-a").await["status"] == "healthy").then_some(())
    })
    .await;

    sim.reboot();
    // Down, then back idle: the status says it is not on air.
    tokio::time::sleep(Duration::from_millis(50)).await;
    eventually(
        Duration::from_secs(5),
        "back from the reboot, idle",
        || async {
            let answers = tokio::net::TcpStream::connect(sim.addr()).await.is_ok();
            (answers && sim.snapshot().stream_state == StreamState::Idle.value()).then_some(())
        },
    )
    .await;
    let back = tokio::time::Instant::now();
    let v = eventually(
        Duration::from_secs(3),
        "critical: not streaming",
        || async {
            let v = view(admin, "studio-a").await;
            (v["status"] == "critical").then_some(v)
        },
    )
    .await;
    assert_eq!(v["reasons"][0]["code"], "not_streaming", "{v}");
    assert_eq!(v["in_desired_state"], false, "{v}");
    assert!(v["health_score"].as_f64().unwrap() < 70.0, "{v}");

    // Started again after the grace period, within one more interval (plus the
    // start's own transition).
    eventually(
        GRACE + Duration::from_secs(3),
        "streaming again",
        || async { streaming(&sim).then_some(()) },
    )
    .await;
    let took = back.elapsed();
    assert!(
        took >= GRACE - Duration::from_millis(400),
        "acted within the grace period: {took:?}"
    );
    let text = eventually(Duration::from_secs(3), "healthy and counted", || async {
        let (_, text) = http(admin, "GET", "/metrics").await;
        (series_value(
            &text,
            r#"helo_encoder_status{encoder_id="studio-a",status="healthy"}"#,
        ) == Some(1.0))
        .then_some(text)
    })
    .await;
    assert_eq!(
        series_value(
            &text,
            r#"helo_recovery_actions_total{encoder_id="studio-a",action="start_stream",outcome="ok"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        series_value(
            &text,
            r#"helo_encoder_in_desired_state{encoder_id="studio-a"}"#
        ),
        Some(1.0)
    );
    fleet.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_stopped_by_hand_is_restarted_after_the_grace_period_not_before() {
    let sim = sim(SimConfig::fast()).await;
    let t = tunables();
    let mut enc = encoder("studio-b", &sim.url(), None, &t);
    enc.expect_streaming = true;
    let (fleet, admin) = start_fleet(&fleet_config(vec![enc], &t)).await;
    start_stream(&sim).await;
    eventually(Duration::from_secs(5), "healthy", || async {
        (view(admin, "studio-b").await["status"] == "healthy").then_some(())
    })
    .await;

    // Someone presses stop on the front panel (a direct device request).
    sim.set_param(names::REPLICATOR_COMMAND, "4").unwrap();
    let stopped = tokio::time::Instant::now();
    eventually(Duration::from_secs(2), "idle", || async {
        (sim.snapshot().stream_state == StreamState::Idle.value()).then_some(())
    })
    .await;
    // Within the grace period it is left alone (an operator may be restarting it).
    tokio::time::sleep(GRACE / 2).await;
    assert!(!streaming(&sim), "started before the grace period ended");
    let v = view(admin, "studio-b").await;
    assert_eq!(v["stream"]["phase"], "grace", "{v}");
    eventually(GRACE + Duration::from_secs(3), "restarted", || async {
        streaming(&sim).then_some(())
    })
    .await;
    assert!(stopped.elapsed() >= GRACE, "{:?}", stopped.elapsed());
    fleet.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_encoder_is_left_idle_until_released() {
    let held_sim = sim(SimConfig::fast()).await;
    let api_sim = sim(SimConfig::fast()).await;
    let t = tunables();
    let mut held = encoder("held-by-config", &held_sim.url(), None, &t);
    held.expect_streaming = true;
    held.hold = true;
    let mut by_api = encoder("held-by-api", &api_sim.url(), None, &t);
    by_api.expect_streaming = true;
    let (fleet, admin) = start_fleet(&fleet_config(vec![held, by_api], &t)).await;
    let (status, body) = http(admin, "POST", "/api/encoders/held-by-api/hold").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(http(admin, "POST", "/api/encoders/nope/hold").await.0, 404);

    // Well past grace and several checks: still idle, and said so.
    tokio::time::sleep(GRACE * 2).await;
    for (id, sim) in [("held-by-config", &held_sim), ("held-by-api", &api_sim)] {
        assert!(!streaming(sim), "{id} was started while held");
        let v = view(admin, id).await;
        assert_eq!(v["status"], "held", "{v}");
        assert_eq!(v["held"], true, "{v}");
        assert_eq!(v["reasons"][0]["code"], "held", "{v}");
        assert_eq!(v["reasons"][1]["code"], "not_streaming", "{v}");
        assert!(
            v["checks"]["count"].as_u64().unwrap() >= 2,
            "still observed: {v}"
        );
    }
    let (_, text) = http(admin, "GET", "/metrics").await;
    assert_eq!(
        series_value(
            &text,
            r#"helo_encoder_status{encoder_id="held-by-api",status="held"}"#
        ),
        Some(1.0),
        "{text}"
    );

    // Released: the grace period again, then started.
    let (status, _) = http(admin, "DELETE", "/api/encoders/held-by-api/hold").await;
    assert_eq!(status, 200);
    eventually(
        GRACE + Duration::from_secs(3),
        "started after release",
        || async { streaming(&api_sim).then_some(()) },
    )
    .await;
    assert!(!streaming(&held_sim));
    fleet.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_encoder_is_reported_unreachable_within_one_unhealthy_interval() {
    let device = sim(SimConfig::fast()).await;
    let t = tunables();
    let mut enc = encoder("studio-c", &device.url(), None, &t);
    enc.expect_streaming = true;
    let (fleet, admin) = start_fleet(&fleet_config(vec![enc], &t)).await;
    start_stream(&device).await;
    let before = eventually(Duration::from_secs(5), "healthy", || async {
        let v = view(admin, "studio-c").await;
        (v["status"] == "healthy").then_some(v)
    })
    .await;
    let score = before["health_score"].as_f64().unwrap();

    device.shutdown().await;
    let gone = tokio::time::Instant::now();
    let v = eventually(Duration::from_secs(5), "unreachable", || async {
        let v = view(admin, "studio-c").await;
        (v["status"] == "unreachable").then_some(v)
    })
    .await;
    let took = gone.elapsed();
    // One unhealthy interval (150 ms) after the first failed check; the healthy
    // interval is 300 ms, and a check's deadline 800 ms.
    assert!(took < Duration::from_millis(2000), "took {took:?}");
    assert_eq!(
        v["health_score"],
        serde_json::Value::Null,
        "no current score: {v}"
    );
    assert_eq!(v["last_score"].as_f64(), Some(score), "{v}");
    assert!(v["last_score_at"].as_str().unwrap().ends_with('Z'), "{v}");
    assert_eq!(v["reasons"][0]["code"], "unreachable", "{v}");
    let (_, text) = http(admin, "GET", "/metrics").await;
    assert_eq!(
        series_value(
            &text,
            r#"helo_encoder_status{encoder_id="studio-c",status="unreachable"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        series_value(
            &text,
            r#"helo_encoder_status{encoder_id="studio-c",status="healthy"}"#
        ),
        None
    );
    assert!(
        !text.contains(r#"helo_encoder_health_score{encoder_id="studio-c"}"#),
        "{text}"
    );
    assert_eq!(
        series_value(&text, r#"helo_encoder_up{encoder_id="studio-c"}"#),
        Some(0.0)
    );
    fleet.shutdown(Duration::from_secs(2)).await;
}
