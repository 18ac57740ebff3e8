//! helo-transport against a hostile helo-sim over real loopback sockets: device text
//! that would flood or forge log lines, event connection ids that are not ids,
//! answers that break the connection during `connect_events`, and a client that asks
//! more than the device's request budget. Real time with short timeouts (the paused
//! clock would auto-advance while we wait on sockets).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use helo_sim::{Faults, RequestKind, SimConfig, SimDevice};
use helo_transport::{
    names, Device, DeviceConfig, HeloClientExt, HeloConnection, HeloError, Outcome, RequestBudget,
    DEVICE_TEXT_MAX,
};
use tokio::time::Instant;

const TIMEOUT: Duration = Duration::from_millis(500);
const INJECTED: &str = "-1\r\nX-Injected: yes";

async fn sim(faults: Faults) -> SimDevice {
    let sim = SimDevice::start("127.0.0.1:0".parse().unwrap(), SimConfig::fast())
        .await
        .unwrap();
    sim.set_faults(faults).unwrap();
    sim
}

fn config(sim: &SimDevice) -> DeviceConfig {
    DeviceConfig::from_url("enc-1", &sim.url())
        .unwrap()
        .with_request_timeout(TIMEOUT)
        .unwrap()
        .with_connect_timeout(TIMEOUT)
        .unwrap()
}

async fn connect(sim: &SimDevice) -> HeloConnection {
    HeloConnection::connect(&Device::new(config(sim)))
        .await
        .unwrap()
}

/// Safe to print in a log line, an API answer or a Nagios line: bounded, and no raw
/// control character (so no forged line, no terminal escape).
fn assert_printable(err: &HeloError) {
    let text = err.to_string();
    // The device's part is at most DEVICE_TEXT_MAX bytes and an ellipsis; the rest is
    // ours: device name, request, a few words.
    assert!(
        text.len() <= DEVICE_TEXT_MAX + 80,
        "{} bytes: {:.120}…",
        text.len(),
        text
    );
    assert!(!text.chars().any(char::is_control), "{text:?}");
}

#[tokio::test]
async fn a_100_kb_device_error_becomes_a_bounded_error() {
    let sim = sim(Faults {
        error_text_bytes: 100_000,
        ..Faults::default()
    })
    .await;
    let conn = connect(&sim).await;
    // The temperature is read-only: the device answers 400 with its error text.
    let err = conn.set_param(names::TEMPERATURE, "20").await.unwrap_err();
    assert!(err.is_rejected(), "{err:.200}");
    assert_printable(&err);
    let HeloError::Rejected { message, .. } = &err else {
        unreachable!()
    };
    assert!(
        message.len() <= DEVICE_TEXT_MAX + '…'.len_utf8(),
        "{}",
        message.len()
    );
    assert!(message.ends_with('…'), "{message}");
    // The connection is still good: an answer, however long, is an answer.
    conn.get_param(names::SYS_NAME).await.unwrap();
}

#[tokio::test]
async fn control_characters_and_pipes_in_device_errors_are_escaped() {
    let sim = sim(Faults {
        error_text: Some("read only\r\n2026-01-01 ERROR forged | x=1;;;\u{1b}[2J".into()),
        ..Faults::default()
    })
    .await;
    let conn = connect(&sim).await;
    let err = conn.set_param(names::TEMPERATURE, "20").await.unwrap_err();
    assert_printable(&err);
    assert!(
        err.to_string()
            .ends_with(r"read only\r\n2026-01-01 ERROR forged | x=1;;;\u{1b}[2J"),
        "{err}"
    );
}

#[tokio::test]
async fn a_connection_id_that_is_not_an_id_never_reaches_a_message_raw() {
    let sim = sim(Faults {
        event_connection_id: Some(INJECTED.into()),
        ..Faults::default()
    })
    .await;
    let conn = connect(&sim).await;
    let err = conn.connect_events().await.unwrap_err();
    assert!(err.is_protocol(), "{err}");
    assert_printable(&err);
    let text = err.to_string();
    assert!(!text.contains(INJECTED), "{text}");
    assert!(text.contains(r"-1\r\nX-Injected: yes"), "{text}");
    assert_eq!(err.request(), "connect");
}

#[tokio::test]
async fn connect_events_reports_the_broken_answer_not_a_closed_connection() {
    // Answered without any HTTP framing: the connection is unusable after it.
    let sim_http09 = sim(Faults {
        http09: true,
        ..Faults::default()
    })
    .await;
    let conn = connect(&sim_http09).await;
    let err = conn.connect_events().await.unwrap_err();
    assert!(err.is_protocol(), "{err}");
    assert!(!err.to_string().contains("connection is closed"), "{err}");
    assert_eq!(err.request(), "connect");

    // A body that is not JSON: the device answered, with the wrong shape; asking the
    // legacy path too would only hide it.
    let sim_json = sim(Faults {
        malformed_json: true,
        ..Faults::default()
    })
    .await;
    let conn = connect(&sim_json).await;
    let err = conn.connect_events().await.unwrap_err();
    assert!(err.is_protocol(), "{err}");
    assert_eq!(err.request(), "connect", "{err}");
    assert_eq!(sim_json.request_count(RequestKind::Connect), 1);
}

#[tokio::test]
async fn a_device_refusing_both_connect_paths_gets_the_first_refusal() {
    let sim = SimDevice::start(
        "127.0.0.1:0".parse().unwrap(),
        SimConfig {
            events_supported: false,
            ..SimConfig::fast()
        },
    )
    .await
    .unwrap();
    let conn = connect(&sim).await;
    // Both paths refused: the first refusal is the answer, and the connection is fine.
    let err = conn.connect_events().await.unwrap_err();
    assert!(err.is_rejected(), "{err}");
    assert_eq!(err.request(), "connect");
    assert_eq!(sim.request_count(RequestKind::Connect), 2);
    conn.get_param(names::SYS_NAME).await.unwrap();
}

#[tokio::test]
async fn requests_beyond_the_budget_fail_fast_unsent_and_counted() {
    let sim = sim(Faults::default()).await;
    let device = Device::new(
        config(&sim)
            .with_request_budget(RequestBudget {
                per_minute: 60,
                burst: 5,
            })
            .unwrap(),
    );
    // Two connections (as the pool and the mirror have): one budget.
    let a = HeloConnection::connect(&device).await.unwrap();
    let b = HeloConnection::connect(&device).await.unwrap();
    for conn in [&a, &b, &a, &b, &a] {
        conn.get_param(names::SYS_NAME).await.unwrap();
    }
    let started = Instant::now();
    let err = b.get_param(names::SYS_NAME).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(50), "fails fast");
    assert!(err.is_budget_exhausted(), "{err}");
    assert_eq!(Outcome::of(&err), Outcome::Shed);
    assert!(!b.is_closed(), "a refusal on our side breaks nothing");
    assert_eq!(device.budget_refused(), 1);
    assert_eq!(
        sim.request_count(RequestKind::Get),
        5,
        "the refused one was not sent"
    );
    let wait = err.retry_after().unwrap();
    assert!(wait <= Duration::from_secs(1), "{wait:?}");
    tokio::time::sleep(wait).await;
    a.get_param(names::SYS_NAME).await.unwrap();
    assert_eq!(sim.request_count(RequestKind::Get), 6);
}

/// A device that closes an idle keep-alive connection (as HELO firmware does after its
/// keep-alive timeout): the connection says it is closed before any request finds
/// out, so a pool replaces it instead of handing it to a check; and a request sent
/// anyway fails with a typed error that says why.
#[tokio::test]
async fn an_idle_connection_the_device_closed_reports_closed_before_use() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let device = Device::new(
        DeviceConfig::from_url("enc-1", &url)
            .unwrap()
            .with_request_timeout(TIMEOUT)
            .unwrap()
            .with_connect_timeout(TIMEOUT)
            .unwrap(),
    );
    let (conn, accepted) = tokio::join!(HeloConnection::connect(&device), listener.accept());
    let conn = conn.unwrap();
    assert!(!conn.is_closed());
    drop(accepted.unwrap());

    let deadline = Instant::now() + Duration::from_secs(2);
    while !conn.is_closed() {
        assert!(Instant::now() < deadline, "the close was never noticed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let err = conn.get_param(names::SYS_NAME).await.unwrap_err();
    assert_eq!(err.outcome(), Outcome::Connection, "{err}");
    assert!(
        err.to_string().contains("the device closed the connection"),
        "{err}"
    );
}
