//! Device-controlled text, event long-poll abuse, redirect loops and cookie-less logins,
//! observed over real loopback sockets.

// Helpers outside `#[test]` functions panic on broken answers, like the tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{get_request, get_url, post_faults, raw, read_for, spawn_sim, start, End, Http};
use helo_sim::{Faults, SimConfig, SimDevice, SimError};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Control characters, a pipe, CRLF with an injected header, an ANSI escape, NUL.
const NASTY: &str = "bad|text\r\nX-Injected: yes\u{1b}[31mred\u{0}end";

async fn device(faults: Faults) -> SimDevice {
    start(SimConfig {
        faults,
        ..SimConfig::fast()
    })
    .await
}

async fn connect(http: &Http, dev: &SimDevice) -> u64 {
    let reply = http
        .get(&format!("{}/config?action=connect", dev.url()))
        .await;
    reply.json()["connectionid"].as_u64().expect("numeric id")
}

fn wait_url(dev: &SimDevice, id: u64) -> String {
    format!(
        "{}/config?action=wait_for_config_events&connectionid={id}",
        dev.url()
    )
}

// === device-controlled text ===

#[tokio::test]
async fn error_text_bytes_makes_400_500_and_503_errors_that_long() {
    let dev = device(Faults {
        error_text_bytes: 100_000,
        ..Faults::default()
    })
    .await;
    let http = Http::new();
    let reply = http.get(&get_url(&dev, "eParamID_Bogus")).await;
    assert_eq!(reply.status, 400);
    let text = reply.error();
    assert_eq!(text.len(), 100_000);
    assert!(
        text.starts_with("Parameter ID 'eParamID_Bogus' not found"),
        "{}",
        &text[..60]
    );

    dev.update_faults(|f| f.error_500 = true).unwrap();
    let reply = http.get(&get_url(&dev, "eParamID_SysName")).await;
    assert_eq!((reply.status, reply.error().len()), (500, 100_000));
    dev.update_faults(|f| {
        f.error_500 = false;
        f.unavailable_503 = true;
    })
    .unwrap();
    let reply = http.get(&get_url(&dev, "eParamID_SysName")).await;
    assert_eq!((reply.status, reply.error().len()), (503, 100_000));
    // Success answers keep their text.
    dev.update_faults(|f| f.unavailable_503 = false).unwrap();
    assert_eq!(common::value(&http, &dev, "eParamID_SysName").await, "HELO");
}

#[tokio::test]
async fn error_text_is_sent_verbatim_and_can_be_repeated_to_a_length() {
    let dev = start(SimConfig::fast()).await;
    let http = Http::new();
    post_faults(&http, &dev, &json!({ "error_text": NASTY }).to_string()).await;
    let reply = http.get(&get_url(&dev, "eParamID_Bogus")).await;
    assert_eq!((reply.status, reply.error()), (400, NASTY.to_owned()));
    // Verbatim text, but as a JSON string: nothing leaks into the HTTP head.
    assert!(reply.header("x-injected").is_none());

    post_faults(
        &http,
        &dev,
        r#"{"error_text": "|\r\n", "error_text_bytes": 10}"#,
    )
    .await;
    let reply = http
        .get(&format!("{}/config?action=nonsense", dev.url()))
        .await;
    assert_eq!(reply.error(), "|\r\n|\r\n|\r\n|");

    post_faults(
        &http,
        &dev,
        r#"{"error_text": null, "error_text_bytes": 0}"#,
    )
    .await;
    let reply = http.get(&get_url(&dev, "eParamID_Bogus")).await;
    assert_eq!(reply.error(), "Parameter ID 'eParamID_Bogus' not found");
}

#[tokio::test]
async fn hostile_values_replace_value_and_value_name_of_every_get() {
    let big = format!("{NASTY}{}", "|\r\n\u{1b}[0m".repeat(1500));
    assert!(big.len() > 10_000);
    let dev = device(Faults {
        hostile_values: Some(big.clone()),
        ..Faults::default()
    })
    .await;
    let http = Http::new();
    for param in ["eParamID_ReplicatorStreamState", "eParamID_Temperature"] {
        let j = http.get(&get_url(&dev, param)).await.json();
        assert_eq!(j["name"], param);
        assert_eq!(
            (j["value"].as_str(), j["value_name"].as_str()),
            (Some(big.as_str()), Some(big.as_str()))
        );
    }
    // Only `get` answers: a `set` echo tells the truth.
    let set = http
        .get(&common::set_url(&dev, "eParamID_FilenamePrefix", "clip2"))
        .await
        .json();
    assert_eq!(set["value"], "clip2");
}

#[tokio::test]
async fn event_connection_id_is_sent_as_a_json_string() {
    let dev = start(SimConfig::fast()).await;
    let http = Http::new();
    let id = "-1\r\nX-Injected: yes";
    post_faults(
        &http,
        &dev,
        &json!({ "event_connection_id": id }).to_string(),
    )
    .await;
    let r = raw(
        dev.addr(),
        get_request("/config?action=connect").as_bytes(),
        Duration::from_secs(3),
    )
    .await;
    let (head, body) = r.head_and_body();
    assert!(!head.contains("X-Injected"), "{head}");
    let j: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(j["connectionid"], id);
    assert!(j["configevents"].is_array());
    assert_eq!(dev.request_counts().connect, 1);
}

// === event long-poll abuse ===

#[tokio::test]
async fn instant_events_answer_an_empty_array_at_once_and_keep_changes_queued() {
    let dev = start(SimConfig::fast()).await; // 50 s hold
    let http = Http::new();
    let id = connect(&http, &dev).await;
    dev.update_faults(|f| f.instant_events = true).unwrap();
    http.get(&common::set_url(&dev, "eParamID_FilenamePrefix", "next"))
        .await;
    for _ in 0..3 {
        let t0 = Instant::now();
        let reply = http.get(&wait_url(&dev, id)).await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "[]"));
        assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    }
    assert_eq!(http.get(&wait_url(&dev, 999)).await.status, 400);
    assert_eq!(dev.request_counts().wait_for_config_events, 4);

    dev.clear_faults();
    let events = http.get(&wait_url(&dev, id)).await.json();
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["param_id"] == "eParamID_FilenamePrefix" && e["str_value"] == "next"),
        "{events}"
    );
}

#[tokio::test]
async fn a_hold_of_zero_answers_at_once_too() {
    let dev = start(SimConfig {
        event_hold: Duration::ZERO,
        ..SimConfig::fast()
    })
    .await;
    let http = Http::new();
    let id = connect(&http, &dev).await;
    let t0 = Instant::now();
    let reply = http.get(&wait_url(&dev, id)).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "[]"));
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
}

#[tokio::test]
async fn event_shape_answers_an_object_instead_of_an_array() {
    let dev = start(SimConfig::fast()).await;
    let http = Http::new();
    let id = connect(&http, &dev).await;
    post_faults(&http, &dev, r#"{"event_shape": {"unexpected": true}}"#).await;
    let t0 = Instant::now();
    let reply = http.get(&wait_url(&dev, id)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), json!({"unexpected": true}));
    assert!(t0.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn endless_event_array_streams_events_without_end() {
    let dev = start(SimConfig::fast()).await;
    let http = Http::new();
    let id = connect(&http, &dev).await;
    post_faults(&http, &dev, r#"{"endless_event_array": true}"#).await;
    let mut s = TcpStream::connect(dev.addr()).await.unwrap();
    let path = format!("/config?action=wait_for_config_events&connectionid={id}");
    s.write_all(get_request(&path).as_bytes()).await.unwrap();
    let first = read_for(&mut s, Duration::from_millis(300)).await;
    assert_eq!(first.end, End::Timeout, "{}", first.text());
    let (head, body) = first.head_and_body();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked"));
    let text = String::from_utf8_lossy(&body).into_owned();
    assert!(text.starts_with("1\r\n[\r\n"), "{}", &text[..40]);
    assert!(text
        .contains(r#"{"param_id":"eParamID_Temperature","param_type":"integer","int_value":40,"#));
    let second = read_for(&mut s, Duration::from_millis(300)).await;
    assert_eq!(second.end, End::Timeout);
    assert!(!second.bytes.is_empty(), "the array goes on");
    assert!(second.bytes.len() <= 40 * 1031, "{}", second.bytes.len());
    // Only wait answers: other requests are answered as usual.
    assert_eq!(common::value(&http, &dev, "eParamID_SysName").await, "HELO");
}

// === redirects and logins ===

#[tokio::test]
async fn redirect_loop_sends_302_to_the_very_url_asked() {
    let dev = start(SimConfig::fast()).await;
    let http = Http::new();
    post_faults(&http, &dev, r#"{"redirect_loop": true}"#).await;
    let mut url = get_url(&dev, "eParamID_SysName");
    for _ in 0..5 {
        let reply = http.get(&url).await;
        assert_eq!(reply.status, 302);
        let location = reply.header("location").unwrap().to_owned();
        assert_eq!(location, url);
        url = location;
    }
    // The URL as the client named the device.
    let path = "/config?action=get&paramid=eParamID_SysName";
    let r = raw(
        dev.addr(),
        get_request(path).as_bytes(),
        Duration::from_secs(3),
    )
    .await;
    let (head, _) = r.head_and_body();
    assert!(head.starts_with("HTTP/1.1 302 Found\r\n"), "{head}");
    assert!(
        head.contains(&format!("\r\nlocation: http://sim{path}")),
        "{head}"
    );
    assert_eq!(dev.request_counts().get, 6);
}

#[tokio::test]
async fn login_without_cookie_succeeds_but_sets_no_cookie() {
    let dev = start(SimConfig {
        faults: Faults {
            login_without_cookie: true,
            ..Faults::default()
        },
        ..SimConfig::fast().with_password("pw")
    })
    .await;
    let mut http = Http::new();
    let reply = http.login(&dev.url(), "pw").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, r#"{"login":"success"}"#);
    assert_eq!(reply.header("set-cookie"), None);
    assert_eq!(
        http.get(&get_url(&dev, "eParamID_SysName")).await.status,
        404
    );
    let c = dev.request_counts();
    assert_eq!((c.login, c.login_ok, c.login_refused), (1, 1, 0));
}

// === bounds and the binary ===

#[tokio::test]
async fn out_of_bound_values_are_refused_by_the_library_the_endpoint_and_start() {
    let dev = start(SimConfig::fast()).await;
    let http = Http::new();
    let over = [
        ("deep_json_depth", json!(Faults::MAX_DEEP_JSON_DEPTH + 1)),
        ("error_text_bytes", json!(Faults::MAX_ERROR_TEXT_BYTES + 1)),
        (
            "informational_flood",
            json!(Faults::MAX_INFORMATIONAL_FLOOD + 1),
        ),
        ("slowloris_interval_ms", json!(0)),
        (
            "slowloris_interval_ms",
            json!(Faults::MAX_SLOWLORIS_INTERVAL_MS + 1),
        ),
    ];
    for (key, value) in over {
        let reply = http
            .post(
                &format!("{}/sim/faults", dev.url()),
                &json!({ key: value }).to_string(),
            )
            .await;
        assert_eq!(reply.status, 400, "{key}");
        assert!(reply.error().contains(key), "{}", reply.error());
    }
    assert!(dev.faults().is_clear(), "a refused patch changes nothing");

    let err = dev
        .update_faults(|f| f.deep_json_depth = Faults::MAX_DEEP_JSON_DEPTH + 1)
        .unwrap_err();
    assert!(matches!(err, SimError::InvalidConfig(_)), "{err}");
    let too_long = "x".repeat(Faults::MAX_TEXT_BYTES + 1);
    let err = dev
        .update_faults(|f| f.hostile_values = Some(too_long))
        .unwrap_err();
    assert!(err.to_string().contains("hostile_values"), "{err}");
    let err = SimDevice::start(
        "127.0.0.1:0".parse().unwrap(),
        SimConfig {
            faults: Faults {
                error_text_bytes: Faults::MAX_ERROR_TEXT_BYTES + 1,
                ..Faults::default()
            },
            ..SimConfig::fast()
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("error_text_bytes"), "{err}");
}

#[tokio::test]
async fn the_binary_takes_the_text_and_event_flags() {
    let (_sim, url) = spawn_sim(&[
        "--event-hold-ms",
        "0",
        "--hostile-values",
        "a|b",
        "--event-connection-id",
        "-1",
    ]);
    let http = Http::new();
    let j = http
        .get(&format!("{url}/config?action=get&paramid=eParamID_SysName"))
        .await
        .json();
    assert_eq!(
        (j["value"].as_str(), j["value_name"].as_str()),
        (Some("a|b"), Some("a|b"))
    );
    let j = http
        .get(&format!("{url}/config?action=connect"))
        .await
        .json();
    assert_eq!(j["connectionid"], "-1");
    // The real id is 1; with a hold of 0 the wait answers at once.
    let t0 = Instant::now();
    let reply = http
        .get(&format!(
            "{url}/config?action=wait_for_config_events&connectionid=1"
        ))
        .await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "[]"));
    assert!(t0.elapsed() < Duration::from_secs(1));
}
