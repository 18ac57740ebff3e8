//! Request counters by kind: logins (accepted and refused), connects and waits, through
//! the library and `GET /sim/counts`, and their reset.

mod common;

use std::time::Duration;

use common::{post_faults, start, Http};
use helo_sim::{RequestKind, SimConfig};
use serde_json::json;

#[tokio::test]
async fn logins_connects_and_waits_are_counted_by_kind_until_reset() {
    let dev = start(SimConfig {
        event_hold: Duration::ZERO,
        ..SimConfig::fast().with_password("pw")
    })
    .await;
    let base = dev.url();
    let mut http = Http::new();
    http.login(&base, "wrong").await;
    http.login(&base, "nope").await;
    http.login(&base, "pw").await;
    let connected = http
        .get(&format!("{base}/config?action=connect"))
        .await
        .json();
    let id = connected["connectionid"].as_u64().unwrap();
    for _ in 0..3 {
        http.get(&format!(
            "{base}/config?action=wait_for_config_events&connectionid={id}"
        ))
        .await;
    }
    // A login answered by a fault is a login, but neither accepted nor refused.
    post_faults(&http, &dev, r#"{"error_500": true}"#).await;
    http.login(&base, "pw").await;
    dev.clear_faults();

    let c = dev.request_counts();
    assert_eq!(
        (
            c.login,
            c.login_ok,
            c.login_refused,
            c.connect,
            c.wait_for_config_events
        ),
        (4, 1, 2, 1, 3)
    );
    assert_eq!(dev.request_count(RequestKind::LoginRefused), 2);
    assert_eq!(dev.request_count(RequestKind::WaitForConfigEvents), 3);
    assert_eq!(dev.request_count(RequestKind::Total), 8);

    let all = http.get(&format!("{base}/sim/counts")).await.json();
    assert_eq!(all["login_ok"], 1);
    assert_eq!(all["login_refused"], 2);
    assert_eq!(all["connect"], 1);
    assert_eq!(all["wait_for_config_events"], 3);
    let one = http
        .get(&format!("{base}/sim/counts?kind=login_refused"))
        .await
        .json();
    assert_eq!(one, json!({"kind": "login_refused", "count": 2}));
    let bad = http.get(&format!("{base}/sim/counts?kind=logins")).await;
    assert_eq!(bad.status, 400);
    assert!(bad.error().contains("logins"), "{}", bad.error());

    let before = http
        .post(&format!("{base}/sim/counts/reset"), "")
        .await
        .json();
    assert_eq!(before["login"], 4);
    assert_eq!(dev.request_count(RequestKind::Login), 0);
    http.login(&base, "wrong").await;
    let one = http
        .get(&format!("{base}/sim/counts?kind=login_refused"))
        .await
        .json();
    assert_eq!(one["count"], 1, "counted since the reset");
    dev.reset_request_counts();
    assert_eq!(dev.request_counts(), helo_sim::RequestCounts::default());
}

#[tokio::test]
async fn existing_count_keys_stay_and_new_ones_join_them() {
    let dev = start(SimConfig::fast()).await;
    let http = Http::new();
    let state = http.get(&format!("{}/sim/state", dev.url())).await.json();
    let keys: Vec<&str> = state["requests"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "total",
        "get",
        "set",
        "descriptors",
        "login",
        "login_ok",
        "login_refused",
        "connect",
        "wait_for_config_events",
        "other",
        "control",
    ] {
        assert!(keys.contains(&key), "{key} in {keys:?}");
    }
}
