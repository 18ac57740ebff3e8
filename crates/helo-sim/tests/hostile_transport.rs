//! Transport abuse: answers written to the socket by hand, read here over real loopback
//! sockets with a raw `TcpStream` where an HTTP client would refuse to parse them.

mod common;

use std::time::Duration;

use common::{get_request, post_faults, raw, read_for, spawn_sim, start, End, Http};
use helo_sim::{Faults, SimConfig, SimDevice};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

const PATH: &str = "/config?action=get&paramid=eParamID_SysName";
const BODY: &str =
    r#"{"paramid":"2097225221","name":"eParamID_SysName","value":"HELO","value_name":"HELO"}"#;

async fn device(faults: Faults) -> SimDevice {
    start(SimConfig {
        faults,
        ..SimConfig::fast()
    })
    .await
}

async fn ask(dev: &SimDevice) -> common::Raw {
    raw(
        dev.addr(),
        get_request(PATH).as_bytes(),
        Duration::from_secs(3),
    )
    .await
}

/// After a hand-written answer the device still serves ordinary requests.
async fn still_serves(dev: &SimDevice) {
    dev.clear_faults();
    let reply = Http::new().get(&format!("{}{PATH}", dev.url())).await;
    assert_eq!(reply.body, BODY);
}

#[tokio::test]
async fn garbage_response_sends_bytes_that_are_not_http_then_closes() {
    let dev = device(Faults {
        garbage_response: true,
        ..Faults::default()
    })
    .await;
    let r = ask(&dev).await;
    assert_eq!(r.end, End::Eof);
    assert_eq!(r.bytes.len(), 512);
    assert!(!r.bytes.starts_with(b"HTTP/"), "{:?}", &r.bytes[..16]);
    assert!(!r.bytes.windows(4).any(|w| w == b"HELO"));
    let err = Http::new()
        .try_get(&format!("{}{PATH}", dev.url()), Duration::from_secs(3))
        .await
        .unwrap_err();
    assert!(err.contains("Parse") || err.contains("parse"), "{err}");
    assert_eq!(dev.request_counts().get, 2);
    still_serves(&dev).await;
}

#[tokio::test]
async fn http09_sends_the_bare_body_without_a_status_line() {
    let dev = start(SimConfig::fast()).await;
    post_faults(&Http::new(), &dev, r#"{"http09": true}"#).await;
    let r = ask(&dev).await;
    assert_eq!(r.end, End::Eof);
    assert_eq!(r.text(), BODY);
    still_serves(&dev).await;
}

#[tokio::test]
async fn huge_content_length_announces_petabytes_sends_a_short_body_and_closes() {
    let dev = device(Faults {
        huge_content_length: true,
        ..Faults::default()
    })
    .await;
    let r = ask(&dev).await;
    assert_eq!(r.end, End::Eof);
    let (head, body) = r.head_and_body();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(r.content_length(), 99_999_999_999_999);
    assert_eq!(body, BODY.as_bytes());
    still_serves(&dev).await;
}

#[tokio::test]
async fn absurd_chunks_announce_a_chunk_of_ffffffffffffffff_bytes() {
    let dev = device(Faults {
        absurd_chunks: true,
        ..Faults::default()
    })
    .await;
    let r = ask(&dev).await;
    assert_eq!(r.end, End::Eof);
    let (head, body) = r.head_and_body();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("\r\ntransfer-encoding: chunked"),
        "{head}"
    );
    assert_eq!(body, format!("ffffffffffffffff\r\n{BODY}").as_bytes());
    still_serves(&dev).await;
}

#[tokio::test]
async fn endless_body_keeps_sending_chunks_at_a_bounded_rate_until_the_client_closes() {
    let dev = start(SimConfig::fast()).await;
    post_faults(&Http::new(), &dev, r#"{"endless_body": true}"#).await;
    let mut s = TcpStream::connect(dev.addr()).await.unwrap();
    s.write_all(get_request(PATH).as_bytes()).await.unwrap();
    let first = read_for(&mut s, Duration::from_millis(300)).await;
    assert_eq!(first.end, End::Timeout, "still sending");
    let (head, body) = first.head_and_body();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked"));
    assert!(
        body.starts_with(b"c\r\n{\"padding\":\"\r\n400\r\nxxxx"),
        "{:?}",
        &body[..20]
    );
    let second = read_for(&mut s, Duration::from_millis(300)).await;
    assert_eq!(second.end, End::Timeout);
    assert!(!second.bytes.is_empty(), "chunks keep coming");
    // 1 KiB per 10 ms at most: 300 ms bring about 30 chunks, not megabytes.
    assert!(second.bytes.len() <= 40 * 1031, "{}", second.bytes.len());
    drop(s);
    still_serves(&dev).await;
}

#[tokio::test]
async fn deep_json_nests_arrays_as_deep_as_asked() {
    let dev = start(SimConfig::fast()).await;
    let http = Http::new();
    post_faults(&http, &dev, r#"{"deep_json_depth": 100000}"#).await;
    let reply = http.get(&format!("{}{PATH}", dev.url())).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.body.len(), 200_000);
    assert!(reply.body[..100_000].bytes().all(|b| b == b'['));
    assert!(reply.body[100_000..].bytes().all(|b| b == b']'));
    let err = serde_json::from_str::<serde_json::Value>(&reply.body).unwrap_err();
    assert!(err.to_string().contains("recursion limit"), "{err}");
}

#[tokio::test]
async fn slowloris_sends_one_byte_per_interval() {
    let dev = device(Faults {
        slowloris_response: true,
        slowloris_interval_ms: 20,
        ..Faults::default()
    })
    .await;
    let mut s = TcpStream::connect(dev.addr()).await.unwrap();
    s.write_all(get_request(PATH).as_bytes()).await.unwrap();
    let t0 = Instant::now();
    let early = read_for(&mut s, Duration::from_millis(200)).await;
    assert_eq!(early.end, End::Timeout);
    // A byte, then one per 20 ms: at most 11 in 200 ms (sleeps are never shorter).
    let n = early.bytes.len();
    assert!((1..=11).contains(&n), "{n} bytes in {:?}", t0.elapsed());
    assert!(
        b"HTTP/1.1 200 OK".starts_with(&early.bytes),
        "{}",
        early.text()
    );
    drop(s);

    dev.update_faults(|f| f.slowloris_interval_ms = 1).unwrap();
    let t0 = Instant::now();
    let r = ask(&dev).await;
    assert_eq!(r.end, End::Eof, "{}", r.text());
    let (head, body) = r.head_and_body();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(body, BODY.as_bytes());
    assert_eq!(r.content_length(), BODY.len());
    let least = Duration::from_millis(r.bytes.len() as u64 - 1);
    assert!(t0.elapsed() >= least, "{:?} < {least:?}", t0.elapsed());
}

#[tokio::test]
async fn informational_flood_sends_interim_answers_before_the_answer() {
    let dev = device(Faults {
        informational_flood: 1000,
        ..Faults::default()
    })
    .await;
    let r = ask(&dev).await;
    assert_eq!(r.end, End::Eof);
    let interim = "HTTP/1.1 100 Continue\r\n\r\n";
    let text = r.text();
    let rest = text
        .strip_prefix(&interim.repeat(1000))
        .unwrap_or_else(|| panic!("{}", &text[..200]));
    assert!(rest.starts_with("HTTP/1.1 200 OK\r\n"), "{rest}");
    assert!(rest.ends_with(&format!("\r\n\r\n{BODY}")), "{rest}");
    still_serves(&dev).await;
}

#[tokio::test]
async fn the_raw_answers_take_over_keep_alive_connections_too() {
    let dev = start(SimConfig::fast()).await;
    let mut s = TcpStream::connect(dev.addr()).await.unwrap();
    let keep_alive = format!("GET {PATH} HTTP/1.1\r\nHost: sim\r\n\r\n");
    s.write_all(keep_alive.as_bytes()).await.unwrap();
    let first = read_for(&mut s, Duration::from_millis(300)).await;
    assert!(first.text().ends_with(BODY), "{}", first.text());
    dev.update_faults(|f| f.http09 = true).unwrap();
    s.write_all(keep_alive.as_bytes()).await.unwrap();
    let second = read_for(&mut s, Duration::from_secs(3)).await;
    assert_eq!((second.text().as_str(), second.end), (BODY, End::Eof));
}

#[tokio::test]
async fn control_paths_are_never_answered_by_hand() {
    let dev = device(Faults {
        garbage_response: true,
        slowloris_response: true,
        ..Faults::default()
    })
    .await;
    let state = Http::new()
        .get(&format!("{}/sim/state", dev.url()))
        .await
        .json();
    assert_eq!(state["faults"]["garbage_response"], true);
}

#[tokio::test]
async fn the_binary_takes_the_transport_flags() {
    let (_sim, url) = spawn_sim(&["--http09", "--informational-flood", "2"]);
    let addr = url.strip_prefix("http://").unwrap().parse().unwrap();
    let r = raw(addr, get_request(PATH).as_bytes(), Duration::from_secs(3)).await;
    let interim = "HTTP/1.1 100 Continue\r\n\r\n";
    assert_eq!(r.text(), format!("{interim}{interim}{BODY}"));
}
