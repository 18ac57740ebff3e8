//! Helpers shared by the workspace tests: a tiny HTTP client, fleets of simulators,
//! and polling with a deadline.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{future::Future, net::SocketAddr, time::Duration};

use conn_supervisor::{
    admin,
    config::{EncoderConfig, FleetConfig, Tunables},
    fleet::Fleet,
};
use helo_sim::{SimConfig, SimDevice};
use helo_transport::{DeviceConfig, Password};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// Short intervals so a test sees several checks per second.
pub(crate) fn fast_tunables() -> Tunables {
    Tunables {
        check_interval: Duration::from_millis(300),
        unhealthy_interval: Duration::from_millis(150),
        request_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_millis(500),
        health_deadline: Duration::from_millis(800),
        cooling_period: Duration::from_secs(1),
        recovery_backoff: Duration::from_millis(200),
        keepalive_interval: Duration::from_secs(2),
        ..Tunables::default()
    }
}

pub(crate) async fn sim(config: SimConfig) -> SimDevice {
    SimDevice::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

pub(crate) fn encoder(
    id: &str,
    url: &str,
    password: Option<&str>,
    tunables: &Tunables,
) -> EncoderConfig {
    EncoderConfig {
        id: id.to_string(),
        device: DeviceConfig::from_url(id, url)
            .unwrap()
            .with_request_timeout(tunables.request_timeout)
            .unwrap()
            .with_connect_timeout(tunables.connect_timeout)
            .unwrap()
            .with_password(password.map(Password::new)),
        expect_streaming: false,
        expect_recording: false,
        hold: false,
        tunables: tunables.clone().into(),
    }
}

pub(crate) fn fleet_config(encoders: Vec<EncoderConfig>, tunables: &Tunables) -> FleetConfig {
    FleetConfig::new("127.0.0.1:0".parse().unwrap(), tunables.clone(), encoders)
}

/// Starts a fleet and its admin API on an ephemeral port.
pub(crate) async fn start_fleet(config: &FleetConfig) -> (Fleet, SocketAddr) {
    let fleet = Fleet::start(config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(admin::serve(
        listener,
        fleet.clone(),
        std::future::pending(),
    ));
    (fleet, addr)
}

/// One HTTP/1.1 request with `Connection: close`; answers status and body.
pub(crate) async fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Polls `f` every 50 ms until it answers `Some`, for at most `limit`.
pub(crate) async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of one series in exposition text, by its full name and labels.
pub(crate) fn series_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
}
