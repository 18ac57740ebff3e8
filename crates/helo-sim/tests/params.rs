//! Parameter get / set / descriptors, with the exact URLs of the protocol.

mod common;

use common::{get_url, raw, set_url, start, value, Http, NOT_FOUND_HTML};
use helo_sim::SimConfig;
use std::time::Duration;

#[tokio::test]
async fn get_answers_the_documented_object() {
    let dev = start(SimConfig::fast()).await;
    let http = Http::new();
    let reply = http
        .get(&format!(
            "{}/config?action=get&paramid=eParamID_ReplicatorStreamState",
            dev.url()
        ))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.body,
        r#"{"paramid":"2097225203","name":"eParamID_ReplicatorStreamState","value":"1","value_name":"eRRSIdle"}"#
    );
    // The numeric id is accepted too, and integers copy their value as value_name.
    let reply = http.get(&get_url(&dev, "2097225204")).await.json();
    assert_eq!(reply["name"], "eParamID_Temperature");
    assert_eq!(reply["value"], "40");
    assert_eq!(reply["value_name"], "40");
    let reply = http
        .get(&get_url(&dev, "eParamID_FilenamePrefix"))
        .await
        .json();
    assert_eq!(reply["value"], "clip");
}

#[tokio::test]
async fn set_echoes_and_percent_encoded_values_round_trip() {
    let dev = start(SimConfig::fast()).await;
    let http = Http::new();
    let cases = [
        ("Studio%20A+left", "Studio A left"),
        ("a%3Fb%26c%25d%2Fe%5Cf%3Ag", "a?b&c%d/e\\f:g"),
        ("caf%C3%A9%20%E2%9C%93", "café ✓"),
    ];
    for (encoded, decoded) in cases {
        let reply = http.get(&set_url(&dev, "eParamID_SysName", encoded)).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let j = reply.json();
        assert_eq!(j["name"], "eParamID_SysName");
        assert_eq!(j["value"], decoded);
        assert_eq!(j["value_name"], decoded);
        assert_eq!(value(&http, &dev, "eParamID_SysName").await, decoded);
        assert_eq!(dev.param("eParamID_SysName").as_deref(), Some(decoded));
    }
    let j = http
        .get(&set_url(&dev, "eParamID_StreamingProfileSel", "7"))
        .await
        .json();
    assert_eq!(
        (j["value"].as_str(), j["value_name"].as_str()),
        (Some("7"), Some("7"))
    );
    let j = http
        .get(&set_url(&dev, "eParamID_AutoRecoverStreaming", "1"))
        .await
        .json();
    assert_eq!(j["value_name"], "On");
}

#[tokio::test]
async fn bad_sets_answer_400_with_an_error_text() {
    let dev = start(SimConfig::fast()).await;
    let http = Http::new();
    let check = async |url: String, expected: &str| {
        let reply = http.get(&url).await;
        assert_eq!(reply.status, 400, "{url}: {reply:?}");
        assert_eq!(reply.error(), expected, "{url}");
    };
    check(
        set_url(&dev, "eParamID_ReplicatorStreamState", "2"),
        "Parameter 'eParamID_ReplicatorStreamState' is read-only",
    )
    .await;
    check(
        set_url(&dev, "eParamID_StreamingProfileSel", "10"),
        "Invalid value '10' for parameter 'eParamID_StreamingProfileSel': out of range (0..9)",
    )
    .await;
    check(
        set_url(&dev, "eParamID_ReplicatorCommand", "9"),
        "Invalid value '9' for parameter 'eParamID_ReplicatorCommand': out of range",
    )
    .await;
    check(
        format!("{}/config?action=set&paramid=eParamID_SysName", dev.url()),
        "Missing value for parameter 'eParamID_SysName'",
    )
    .await;
    check(
        format!("{}/config?action=frobnicate", dev.url()),
        "Unknown action 'frobnicate'",
    )
    .await;
    // Nothing changed.
    assert_eq!(
        value(&http, &dev, "eParamID_StreamingProfileSel").await,
        "0"
    );
    assert_eq!(dev.snapshot().stream_state, 1);
}

#[tokio::test]
async fn unknown_and_unsupported_parameters_are_not_found_everywhere() {
    let mut cfg = SimConfig::fast();
    cfg.unsupported_params
        .insert("eParamID_Temperature".to_owned());
    let dev = start(cfg).await;
    let http = Http::new();
    for name in ["eParamID_Bogus", "eParamID_Temperature"] {
        let expected = format!("Parameter ID '{name}' not found");
        for url in [
            get_url(&dev, name),
            set_url(&dev, name, "1"),
            format!("{}/descriptors?paramid={name}", dev.url()),
        ] {
            let reply = http.get(&url).await;
            assert_eq!(reply.status, 400, "{url}");
            assert_eq!(reply.error(), expected, "{url}");
        }
    }
    assert_eq!(dev.param("eParamID_Temperature"), None);
    // The device keeps answering other parameters.
    assert_eq!(
        value(&http, &dev, "eParamID_ReplicatorStreamState").await,
        "1"
    );
}

#[tokio::test]
async fn descriptors_are_an_array_of_one_full_descriptor() {
    let dev = start(SimConfig::fast()).await;
    let http = Http::new();
    let url = format!(
        "{}/descriptors?paramid=eParamID_ReplicatorStreamState",
        dev.url()
    );
    let reply = http.get(&url).await;
    assert_eq!(reply.status, 200);
    let j = reply.json();
    let list = j.as_array().expect("array");
    assert_eq!(list.len(), 1);
    let d = &list[0];
    assert_eq!(d["param_type"], "enum");
    assert_eq!(d["param_id"], "eParamID_ReplicatorStreamState");
    assert!(d["param_name"].is_string());
    assert_eq!(
        d["class_names"],
        serde_json::json!(["readonly", "volatile"])
    );
    assert_eq!(d["enum_values"][4]["value"], 4);
    assert_eq!(d["enum_values"][4]["text"], "eRRSFailingInStream");
    assert_eq!(d["enum_values"][2]["short_text"], "eRRSStreaming");
    assert_eq!(
        (d["min_value"].as_i64(), d["max_value"].as_i64()),
        (Some(0), Some(5))
    );
    assert_eq!(d["default_value"], 1);
    assert!(d["units"].is_string());
    assert_eq!(d["string_attributes"][0]["name"], "description");

    let d = &http
        .get(&format!(
            "{}/descriptors?paramid=eParamID_RegisterRecall",
            dev.url()
        ))
        .await
        .json()[0];
    assert_eq!(d["param_type"], "integer");
    assert_eq!(
        (d["min_value"].as_i64(), d["max_value"].as_i64()),
        (Some(1), Some(20))
    );
    assert_eq!(d["class_names"], serde_json::json!([]));
    let d = &http
        .get(&format!(
            "{}/descriptors?paramid=eParamID_FilenamePrefix",
            dev.url()
        ))
        .await
        .json()[0];
    assert_eq!(
        (d["param_type"].as_str(), d["default_value"].as_str()),
        (Some("string"), Some("clip"))
    );

    // Every parameter the device knows has a descriptor.
    let all = http.get(&format!("{}/descriptors", dev.url())).await.json();
    assert_eq!(all.as_array().unwrap().len(), dev.snapshot().params.len());
}

#[tokio::test]
async fn unknown_paths_get_the_404_page_and_odd_input_never_breaks_the_device() {
    let dev = start(SimConfig::fast()).await;
    let http = Http::new();
    let reply = http.get(&format!("{}/no/such/page", dev.url())).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.body, NOT_FOUND_HTML);

    let too_big = format!(
        "POST /config?action=get&paramid=eParamID_SysName HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        100_000,
        "a".repeat(100_000)
    );
    let r = raw(dev.addr(), too_big.as_bytes(), Duration::from_secs(2)).await;
    assert!(r.text().starts_with("HTTP/1.1 413"), "{}", r.text());

    for junk in [
        &b"GARBAGE\r\n\r\n"[..],
        b"\x00\xff\xfe\r\n\r\n",
        b"GET /config?action=get&paramid=%ZZ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ] {
        let _ = raw(dev.addr(), junk, Duration::from_millis(500)).await;
    }
    assert_eq!(value(&http, &dev, "eParamID_SysName").await, "HELO");
}
