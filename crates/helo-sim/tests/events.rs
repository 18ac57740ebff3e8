//! Event connections and long polls.

// Helpers outside `#[test]` functions panic on broken answers, like the tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{eventually, set_url, start, Http};
use helo_sim::{SimConfig, SimDevice, ThermalConfig};
use serde_json::Value;
use tokio::time::Instant;

async fn connect(http: &Http, dev: &SimDevice) -> u64 {
    let reply = http
        .get(&format!("{}/config?action=connect", dev.url()))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json()["connectionid"].as_u64().expect("numeric id")
}

fn wait_url(dev: &SimDevice, id: u64) -> String {
    format!(
        "{}/config?action=wait_for_config_events&connectionid={id}",
        dev.url()
    )
}

async fn wait(http: &Http, dev: &SimDevice, id: u64) -> Vec<Value> {
    let reply = http.get(&wait_url(dev, id)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json().as_array().expect("array").clone()
}

#[tokio::test]
async fn connect_answers_on_both_paths_with_initial_values() {
    let dev = start(SimConfig::fast()).await;
    let http = Http::new();
    let a = http
        .get(&format!("{}/config?action=connect", dev.url()))
        .await
        .json();
    let b = http
        .get(&format!("{}/json?action=connect&configid=0", dev.url()))
        .await
        .json();
    let (a_id, b_id) = (
        a["connectionid"].as_u64().unwrap(),
        b["connectionid"].as_u64().unwrap(),
    );
    assert_ne!(a_id, b_id);
    let initial = a["configevents"].as_array().unwrap();
    let stream = initial
        .iter()
        .find(|e| e["param_id"] == "eParamID_ReplicatorStreamState")
        .expect("stream state in configevents");
    assert_eq!(
        (stream["int_value"].as_i64(), stream["str_value"].as_str()),
        (Some(1), Some("eRRSIdle"))
    );
    assert_eq!(dev.snapshot().event_connections, 2);
}

#[tokio::test]
async fn a_stream_failure_reaches_a_waiting_client_within_milliseconds() {
    let dev = start(SimConfig::fast()).await;
    let http = Http::new();
    let id = connect(&http, &dev).await;
    http.get(&set_url(&dev, "eParamID_ReplicatorCommand", "3"))
        .await;
    assert!(
        eventually(Duration::from_secs(2), async || dev.snapshot().stream_state
            == 2)
        .await
    );
    let queued = wait(&http, &dev, id).await;
    assert!(
        queued
            .iter()
            .any(|e| e["param_id"] == "eParamID_ReplicatorStreamState" && e["int_value"] == 2),
        "{queued:?}"
    );

    let poll = tokio::spawn({
        let (http, url) = (http.clone(), wait_url(&dev, id));
        async move {
            let reply = http.get(&url).await;
            (Instant::now(), reply)
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !poll.is_finished(),
        "the long poll must be held while nothing changes"
    );
    let failed_at = Instant::now();
    assert!(dev.fail_stream_now());
    let (answered_at, reply) = poll.await.unwrap();
    let latency = answered_at - failed_at;
    assert!(latency < Duration::from_millis(50), "took {latency:?}");
    let events = reply.json();
    assert_eq!(
        events[0],
        serde_json::json!({
            "param_id": "eParamID_ReplicatorStreamState",
            "param_type": "enum",
            "int_value": 4,
            "str_value": "eRRSFailingInStream",
            "last_config_update": events[0]["last_config_update"].clone(),
        })
    );
    assert!(events[0]["last_config_update"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
}

#[tokio::test]
async fn changes_between_polls_are_queued_in_order() {
    let dev = start(SimConfig::fast()).await;
    let http = Http::new();
    let id = connect(&http, &dev).await;
    http.get(&set_url(&dev, "eParamID_SysName", "one")).await;
    http.get(&set_url(&dev, "eParamID_SysName", "two")).await;
    dev.set_param("eParamID_SystemState", "10").unwrap();
    let events = wait(&http, &dev, id).await;
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["param_id"].as_str().unwrap(),
                e["str_value"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("eParamID_SysName", "one"),
            ("eParamID_SysName", "two"),
            ("eParamID_SystemState", "FatalError")
        ]
    );
    assert_eq!(events[2]["int_value"], 10);
}

#[tokio::test]
async fn an_idle_wait_answers_an_empty_array_after_the_hold_time() {
    let dev = start(SimConfig {
        event_hold: Duration::from_millis(200),
        ..SimConfig::fast()
    })
    .await;
    let http = Http::new();
    let id = connect(&http, &dev).await;
    let t0 = Instant::now();
    let reply = http
        .get(&format!("{}&configid=0", wait_url(&dev, id)))
        .await;
    let took = t0.elapsed();
    assert_eq!((reply.status, reply.body.as_str()), (200, "[]"));
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(1),
        "{took:?}"
    );
}

#[tokio::test]
async fn unused_ids_expire_and_unknown_ids_are_refused() {
    let dev = start(SimConfig {
        event_expiry: Duration::from_millis(200),
        ..SimConfig::fast()
    })
    .await;
    let http = Http::new();
    let id = connect(&http, &dev).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for url in [
        wait_url(&dev, id),
        wait_url(&dev, 987_654),
        format!("{}/config?action=wait_for_config_events", dev.url()),
    ] {
        let reply = http.get(&url).await;
        assert_eq!(reply.status, 400, "{url}");
        assert_eq!(reply.error(), "Invalid connection id");
    }
    // A fresh id works.
    let id = connect(&http, &dev).await;
    dev.bump_link_errors(2);
    let events = wait(&http, &dev, id).await;
    assert_eq!(events[0]["param_id"], "eParamID_LinkErrors");
    assert_eq!(events[0]["int_value"], 2);
}

#[tokio::test]
async fn temperature_steps_are_pushed_without_anyone_polling_state() {
    let dev = start(SimConfig {
        transition_delay: Duration::ZERO,
        thermal: ThermalConfig {
            heat_per_sec: 20.0,
            ..ThermalConfig::default()
        },
        ..SimConfig::fast()
    })
    .await;
    let http = Http::new();
    let id = connect(&http, &dev).await;
    http.get(&set_url(&dev, "eParamID_ReplicatorCommand", "3"))
        .await;
    let mut temps = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while temps.len() < 2 && Instant::now() < deadline {
        for e in wait(&http, &dev, id).await {
            if e["param_id"] == "eParamID_Temperature" {
                temps.push(e["int_value"].as_i64().unwrap());
            }
        }
    }
    // Each step is pushed as it happens; on a loaded machine a wait may find two steps
    // folded into one event, so the steps rise from 40 °C without being consecutive.
    assert!(temps.len() >= 2, "{temps:?}");
    assert!(
        temps[0] > 40 && temps.windows(2).all(|w| w[1] > w[0]),
        "{temps:?}"
    );
}

#[tokio::test]
async fn without_event_support_connect_fails_so_clients_poll() {
    let dev = start(SimConfig {
        events_supported: false,
        ..SimConfig::fast()
    })
    .await;
    let http = Http::new();
    for path in ["/config?action=connect", "/json?action=connect&configid=0"] {
        let reply = http.get(&format!("{}{path}", dev.url())).await;
        assert_eq!(reply.status, 400, "{path}");
        assert_eq!(reply.error(), "Unsupported action 'connect'");
    }
    assert_eq!(http.get(&wait_url(&dev, 1)).await.status, 400);
}
