//! Every fault knob, set through the control endpoint and observed over HTTP.

mod common;

use std::time::Duration;

use common::{get_request, get_url, post_faults, raw, start, End, Http};
use helo_sim::{Faults, SimConfig, SimDevice};
use tokio::time::Instant;

const PATH: &str = "/config?action=get&paramid=eParamID_SysName";
const BODY: &str =
    r#"{"paramid":"2097225221","name":"eParamID_SysName","value":"HELO","value_name":"HELO"}"#;

async fn setup(patch: &str) -> (SimDevice, Http) {
    let dev = start(SimConfig::fast()).await;
    let http = Http::new();
    post_faults(&http, &dev, patch).await;
    (dev, http)
}

fn url(dev: &SimDevice) -> String {
    format!("{}{PATH}", dev.url())
}

#[tokio::test]
async fn latency_delays_answers() {
    let (dev, http) = setup(r#"{"latency_ms": 200}"#).await;
    let t0 = Instant::now();
    let reply = http.get(&url(&dev)).await;
    assert_eq!(reply.body, BODY);
    assert!(
        t0.elapsed() >= Duration::from_millis(200),
        "{:?}",
        t0.elapsed()
    );
}

#[tokio::test]
async fn hang_reads_but_never_answers_until_cleared() {
    let (dev, http) = setup(r#"{"hang": true}"#).await;
    let err = http
        .try_get(&url(&dev), Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(err, "timeout");
    let held = tokio::spawn({
        let addr = dev.addr();
        async move { raw(addr, get_request(PATH).as_bytes(), Duration::from_secs(3)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!held.is_finished());
    assert_eq!(dev.request_counts().get, 2, "the hung requests were read");
    post_faults(&http, &dev, r#"{"hang": false}"#).await;
    let r = held.await.unwrap();
    assert!(r.text().starts_with("HTTP/1.1 200"), "{}", r.text());
}

#[tokio::test]
async fn refuse_resets_connections_but_control_still_works() {
    let (dev, http) = setup(r#"{"refuse": true}"#).await;
    let r = raw(
        dev.addr(),
        get_request(PATH).as_bytes(),
        Duration::from_secs(2),
    )
    .await;
    assert!(r.bytes.is_empty(), "{}", r.text());
    assert_eq!(r.end, End::Error(std::io::ErrorKind::ConnectionReset));
    assert!(http
        .try_get(&url(&dev), Duration::from_secs(2))
        .await
        .is_err());
    post_faults(&http, &dev, r#"{"refuse": false}"#).await;
    assert_eq!(http.get(&url(&dev)).await.body, BODY);
}

#[tokio::test]
async fn reset_sends_part_of_the_answer_then_resets() {
    let (dev, _http) = setup(r#"{"reset": true}"#).await;
    let r = raw(
        dev.addr(),
        get_request(PATH).as_bytes(),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(
        r.end,
        End::Error(std::io::ErrorKind::ConnectionReset),
        "{}",
        r.text()
    );
    let (head, body) = r.head_and_body();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(r.content_length(), BODY.len());
    assert_eq!(body, &BODY.as_bytes()[..BODY.len() / 2]);
}

#[tokio::test]
async fn error_500_and_503_with_retry_after() {
    let (dev, http) = setup(r#"{"error_500": true}"#).await;
    let reply = http.get(&url(&dev)).await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.error(), "Internal Server Error");
    post_faults(
        &http,
        &dev,
        r#"{"clear": true, "unavailable_503": true, "retry_after_s": 7}"#,
    )
    .await;
    let reply = http.get(&url(&dev)).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("retry-after"), Some("7"));
}

#[tokio::test]
async fn malformed_json_is_not_json() {
    let (dev, http) = setup(r#"{"malformed_json": true}"#).await;
    let reply = http.get(&url(&dev)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert!(
        serde_json::from_str::<serde_json::Value>(&reply.body).is_err(),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn truncated_json_announces_more_than_it_sends_then_closes() {
    let (dev, http) = setup(r#"{"truncated_json": true}"#).await;
    let r = raw(
        dev.addr(),
        get_request(PATH).as_bytes(),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(r.end, End::Eof);
    let (_, body) = r.head_and_body();
    assert_eq!(body, BODY.as_bytes());
    assert!(r.content_length() > BODY.len());
    assert!(http
        .try_get(&url(&dev), Duration::from_secs(2))
        .await
        .is_err());
}

#[tokio::test]
async fn oversized_body_is_valid_json_of_the_asked_size() {
    let (dev, http) = setup(r#"{"oversized_body_bytes": 2097152}"#).await;
    let reply = http.get(&url(&dev)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len(), 2 * 1024 * 1024);
    assert!(reply.json()["padding"].is_string());
}

#[tokio::test]
async fn faults_spare_the_control_paths_and_probability_zero_spares_all() {
    let (dev, http) = setup(r#"{"error_500": true, "probability": 0.0}"#).await;
    assert_eq!(http.get(&url(&dev)).await.status, 200);
    post_faults(&http, &dev, r#"{"probability": 1.0, "latency_ms": 5000}"#).await;
    let t0 = Instant::now();
    let state = http.get(&format!("{}/sim/state", dev.url())).await.json();
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert_eq!(state["faults"]["error_500"], true);
    assert_eq!(state["state"]["stream_state"], 1);
    assert_eq!(dev.faults().latency_ms, 5000);
    dev.clear_faults();
    assert!(dev.faults().is_clear());
    assert_eq!(http.get(&url(&dev)).await.status, 200);
}

#[tokio::test]
async fn unreachable_refuses_connections_for_a_while() {
    let (dev, http) = setup(r#"{"unreachable_ms": 300}"#).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let err = tokio::net::TcpStream::connect(dev.addr())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(Http::new().get(&url(&dev)).await.body, BODY);
    drop(http);
}

#[tokio::test]
async fn control_endpoint_actions_and_errors() {
    let dev = start(SimConfig::fast()).await;
    let http = Http::new();
    let base = dev.url();
    let reply = http
        .post(
            &format!("{base}/sim/params"),
            r#"{"eParamID_SystemState": "10", "eParamID_LinkErrors": 4}"#,
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["state"]["system_state"], 10);
    assert_eq!(dev.param("eParamID_LinkErrors").as_deref(), Some("4"));

    post_faults(
        &http,
        &dev,
        r#"{"overheat_c": 95, "fail_stream": true, "link_errors": 1}"#,
    )
    .await;
    let snap = dev.snapshot();
    assert_eq!((snap.temperature_c, snap.stream_state), (95, 3));
    assert_eq!(dev.param("eParamID_LinkErrors").as_deref(), Some("5"));

    for (path, body) in [
        ("/sim/faults", r#"{"latncy_ms": 1}"#),
        ("/sim/faults", "not json"),
        ("/sim/faults", r#"{"probability": 2}"#),
        ("/sim/params", r#"{"eParamID_Bogus": "1"}"#),
    ] {
        let reply = http.post(&format!("{base}{path}"), body).await;
        assert_eq!(reply.status, 400, "{path} {body}: {reply:?}");
        assert!(!reply.error().is_empty());
    }
    assert_eq!(
        http.get(&format!("{base}/sim/faults")).await.json(),
        serde_json::json!(Faults::default())
    );
}

#[tokio::test]
async fn request_counts_by_kind() {
    let dev = start(SimConfig::fast()).await;
    let http = Http::new();
    let base = dev.url();
    http.get(&get_url(&dev, "eParamID_SysName")).await;
    http.get(&get_url(&dev, "eParamID_SysName")).await;
    http.get(&format!(
        "{base}/config?action=set&paramid=eParamID_SysName&value=x"
    ))
    .await;
    http.get(&format!("{base}/descriptors?paramid=eParamID_SysName"))
        .await;
    http.post(
        &format!("{base}/authenticator/login"),
        "password_provided=x",
    )
    .await;
    http.get(&format!("{base}/json?action=connect&configid=0"))
        .await;
    http.get(&format!("{base}/nowhere")).await;
    http.get(&format!("{base}/sim/state")).await;
    let c = dev.request_counts();
    assert_eq!(
        (
            c.total,
            c.get,
            c.set,
            c.descriptors,
            c.login,
            c.connect,
            c.wait_for_config_events,
            c.other,
            c.control
        ),
        (7, 2, 1, 1, 1, 1, 0, 1, 1)
    );
    dev.reset_request_counts();
    assert_eq!(dev.request_counts().total, 0);
}
