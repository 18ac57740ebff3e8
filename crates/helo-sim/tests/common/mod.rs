//! Plain HTTP helpers for the integration tests (no HELO client code on purpose).

// Each test binary uses a subset of these; test helpers may panic on broken answers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use helo_sim::{SimConfig, SimDevice};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

pub(crate) const NOT_FOUND_HTML: &str = "<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1><p>The document requested was not found on this server.</p></body></html>";

pub(crate) async fn start(cfg: SimConfig) -> SimDevice {
    SimDevice::start("127.0.0.1:0".parse().unwrap(), cfg)
        .await
        .unwrap()
}

#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `"error"` text of a JSON error body.
    pub(crate) fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error text in {:?}", self.body))
            .to_owned()
    }
}

/// A keep-alive HTTP/1.1 client, as real HELO clients use.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    pub(crate) cookie: Option<String>,
}

impl Http {
    pub(crate) fn new() -> Self {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
            cookie: None,
        }
    }

    pub(crate) async fn try_send(
        &self,
        method: &str,
        url: &str,
        body: &str,
        within: Duration,
    ) -> Result<Reply, String> {
        let mut req = http::Request::builder().method(method).uri(url);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        if !body.is_empty() {
            req = req.header("content-type", "application/x-www-form-urlencoded");
        }
        let req = req
            .body(Full::new(Bytes::from(body.to_owned())))
            .map_err(|e| e.to_string())?;
        let fut = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| format!("{e:?}"))?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("body: {e:?}"))?
                .to_bytes();
            Ok(Reply {
                status,
                headers,
                body: String::from_utf8_lossy(&bytes).into_owned(),
            })
        };
        tokio::time::timeout(within, fut)
            .await
            .map_err(|_| "timeout".to_owned())?
    }

    pub(crate) async fn try_get(&self, url: &str, within: Duration) -> Result<Reply, String> {
        self.try_send("GET", url, "", within).await
    }

    pub(crate) async fn get(&self, url: &str) -> Reply {
        self.try_get(url, Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }

    pub(crate) async fn post(&self, url: &str, body: &str) -> Reply {
        self.try_send("POST", url, body, Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"))
    }

    /// Logs in and keeps the session cookie for later requests.
    pub(crate) async fn login(&mut self, base: &str, password: &str) -> Reply {
        let reply = self
            .post(
                &format!("{base}/authenticator/login"),
                &format!("password_provided={password}"),
            )
            .await;
        if let Some(set) = reply.header("set-cookie") {
            self.cookie = Some(set.split(';').next().unwrap_or_default().to_owned());
        }
        reply
    }
}

pub(crate) fn get_url(dev: &SimDevice, param: &str) -> String {
    format!("{}/config?action=get&paramid={param}", dev.url())
}

pub(crate) fn set_url(dev: &SimDevice, param: &str, value: &str) -> String {
    format!(
        "{}/config?action=set&paramid={param}&value={value}",
        dev.url()
    )
}

/// A parameter's value read over HTTP.
pub(crate) async fn value(http: &Http, dev: &SimDevice, param: &str) -> String {
    let reply = http.get(&get_url(dev, param)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json()["value"].as_str().unwrap().to_owned()
}

/// Polls `check` until it is true or `within` passes.
pub(crate) async fn eventually(within: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum End {
    Eof,
    Error(std::io::ErrorKind),
    Timeout,
}

/// What a raw socket received.
#[derive(Debug)]
pub(crate) struct Raw {
    pub(crate) bytes: Vec<u8>,
    pub(crate) end: End,
}

impl Raw {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    pub(crate) fn head_and_body(&self) -> (String, Vec<u8>) {
        let pos = self
            .bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in {:?}", self.text()));
        (
            String::from_utf8_lossy(&self.bytes[..pos]).into_owned(),
            self.bytes[pos + 4..].to_vec(),
        )
    }

    pub(crate) fn content_length(&self) -> usize {
        let (head, _) = self.head_and_body();
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().unwrap())
            })
            .unwrap_or_else(|| panic!("no content-length in {head}"))
    }
}

pub(crate) fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n")
}

/// Sends `request` on a fresh connection and reads until EOF, error or `within`.
pub(crate) async fn raw(addr: SocketAddr, request: &[u8], within: Duration) -> Raw {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut bytes = Vec::new();
    if let Err(e) = s.write_all(request).await {
        return Raw {
            bytes,
            end: End::Error(e.kind()),
        };
    }
    let deadline = Instant::now() + within;
    let mut chunk = vec![0u8; 64 * 1024];
    let end = loop {
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Err(_) => break End::Timeout,
            Ok(Ok(0)) => break End::Eof,
            Ok(Ok(n)) => bytes.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => break End::Error(e.kind()),
        }
    };
    Raw { bytes, end }
}

/// Changes faults through the device's own control endpoint.
pub(crate) async fn post_faults(http: &Http, dev: &SimDevice, patch: &str) -> Reply {
    let reply = http.post(&format!("{}/sim/faults", dev.url()), patch).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply
}

/// The `helo-sim` binary, killed on drop even when an assertion fails first.
pub(crate) struct SimProcess(std::process::Child);

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `helo-sim --listen 127.0.0.1:0 ARGS` and returns it with its one encoder's URL.
pub(crate) fn spawn_sim(args: &[&str]) -> (SimProcess, String) {
    use std::io::BufRead;
    let mut child = SimProcess(
        std::process::Command::new(env!("CARGO_BIN_EXE_helo-sim"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn helo-sim"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let line = std::io::BufReader::new(stdout)
        .lines()
        .next()
        .expect("a line")
        .expect("readable");
    let url = line
        .strip_prefix("encoder-1 ")
        .expect("encoder line")
        .to_owned();
    (child, url)
}

/// Reads what arrives on `s` for `window` (or until EOF or an error).
pub(crate) async fn read_for(s: &mut TcpStream, window: Duration) -> Raw {
    let deadline = Instant::now() + window;
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let end = loop {
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Err(_) => break End::Timeout,
            Ok(Ok(0)) => break End::Eof,
            Ok(Ok(n)) => bytes.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => break End::Error(e.kind()),
        }
    };
    Raw { bytes, end }
}
