//! HTTP/1.1 GET and POST over a fresh connection, bounded in time.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// The status and body of `METHOD path` at `addr` (`host:port`); `None` if the server
/// does not answer within 5 s (refused, stopped, or killed).
pub async fn request(addr: &str, method: &str, path: &str) -> Option<(u16, String)> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await.ok()?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.ok()?;
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let status = raw.split_whitespace().nth(1)?.parse().ok()?;
        let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
        Some((status, body))
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .ok()
        .flatten()
}

/// `GET path`, which must answer.
pub async fn get(addr: &str, path: &str) -> (u16, String) {
    request(addr, "GET", path)
        .await
        .unwrap_or_else(|| panic!("no answer from {addr}{path}"))
}
