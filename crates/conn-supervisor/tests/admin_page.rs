//! The admin server's page and live updates over real loopback HTTP, without a
//! browser: the event protocol (snapshot, updates, removals, the end at shutdown), the
//! page's headers, and the refusal of cross-site actions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{net::SocketAddr, time::Duration};

use conn_supervisor::{
    admin,
    config::{EncoderConfig, FleetConfig, Tunables},
    fleet::Fleet,
};
use helo_sim::{SimConfig, SimDevice};
use helo_transport::DeviceConfig;
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::oneshot,
    task::JoinHandle,
};

fn encoder(id: &str, url: &str, tunables: &Tunables) -> EncoderConfig {
    EncoderConfig {
        id: id.to_string(),
        device: DeviceConfig::from_url(id, url)
            .unwrap()
            .with_request_timeout(tunables.request_timeout)
            .unwrap(),
        expect_streaming: false,
        expect_recording: false,
        hold: false,
        tunables: tunables.clone().into(),
    }
}

struct Setup {
    fleet: Fleet,
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
    _sims: Vec<SimDevice>,
}

async fn setup(ids: &[&str]) -> Setup {
    let tunables = Tunables::default();
    let mut sims = Vec::new();
    let mut encoders = Vec::new();
    for id in ids {
        let sim = SimDevice::start("127.0.0.1:0".parse().unwrap(), SimConfig::fast())
            .await
            .unwrap();
        encoders.push(encoder(id, &sim.url(), &tunables));
        sims.push(sim);
    }
    let fleet = Fleet::start(&FleetConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        tunables,
        encoders,
    ))
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(admin::serve(listener, fleet.clone(), async {
        let _ = stopped.await;
    }));
    Setup {
        fleet,
        addr,
        stop,
        server,
        _sims: sims,
    }
}

/// One request; answers the head (lower-cased) and the body. HTTP/1.0, so that the
/// body is the rest of the connection, not chunks.
async fn http(addr: SocketAddr, request: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_ascii_lowercase(), body.to_string())
}

/// An open event stream.
struct Events {
    lines: tokio::io::Lines<BufReader<TcpStream>>,
}

/// One server-sent event: its name, its data as JSON, and its `retry`.
#[derive(Debug)]
struct Sse {
    name: String,
    data: Value,
    retry: Option<u64>,
}

impl Events {
    async fn open(addr: SocketAddr) -> Self {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /api/events HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n")
            .await
            .unwrap();
        let mut lines = BufReader::new(s).lines();
        let status = lines.next_line().await.unwrap().unwrap();
        assert!(status.contains(" 200 "), "{status}");
        let mut content_type = String::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-type: ") {
                content_type = v.to_string();
            }
        }
        assert_eq!(content_type, "text/event-stream");
        Self { lines }
    }

    /// The next event, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Sse> {
        let (mut name, mut data, mut retry) = (String::new(), String::new(), None);
        loop {
            let line = tokio::time::timeout(Duration::from_secs(15), self.lines.next_line())
                .await
                .expect("an event within 15 s")
                .unwrap()?;
            if line.is_empty() {
                if data.is_empty() {
                    continue; // a comment or a keep-alive
                }
                let data = serde_json::from_str(&data).unwrap();
                return Some(Sse { name, data, retry });
            }
            if let Some(v) = line.strip_prefix("event: ") {
                name = v.to_string();
            } else if let Some(v) = line.strip_prefix("data: ") {
                data.push_str(v);
            } else if let Some(v) = line.strip_prefix("retry: ") {
                retry = v.parse().ok();
            }
        }
    }

    /// Reads events until `pick` finds what it wants in one, for at most `limit`.
    async fn until<T>(&mut self, limit: Duration, mut pick: impl FnMut(&Sse) -> Option<T>) -> T {
        tokio::time::timeout(limit, async {
            loop {
                let e = self.next().await.expect("the stream ended");
                if let Some(v) = pick(&e) {
                    return v;
                }
            }
        })
        .await
        .expect("the awaited event")
    }
}

fn ids(e: &Sse) -> Vec<&str> {
    e.data["encoders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_sends_a_snapshot_then_changes_and_removals_and_ends_at_shutdown() {
    let s = setup(&["enc-a", "enc-b"]).await;
    let mut events = Events::open(s.addr).await;

    let snapshot = events.next().await.unwrap();
    assert_eq!(snapshot.name, "snapshot");
    assert_eq!(snapshot.retry, Some(2000));
    assert_eq!(ids(&snapshot), ["enc-a", "enc-b"]);
    // The same view as the JSON API, field for field.
    let (_, api) = http(s.addr, "GET /api/encoders/enc-a HTTP/1.0\r\n\r\n").await;
    let api: Value = serde_json::from_str(&api).unwrap();
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&snapshot.data["encoders"][0]), keys(&api));
    assert!(snapshot.data["now"].as_str().unwrap().ends_with('Z'));

    // A hold shows up in an update.
    s.fleet.hold("enc-a", true).unwrap();
    events
        .until(Duration::from_secs(5), |e| {
            let a = e.data["encoders"]
                .as_array()?
                .iter()
                .find(|v| v["id"] == "enc-a")?;
            (e.name == "update" && a["held"] == true && a["status"] == "held").then_some(())
        })
        .await;

    // A removed encoder is announced as removed.
    assert!(s.fleet.remove_encoder("enc-b").await);
    events
        .until(Duration::from_secs(5), |e| {
            (e.name == "update" && e.data["removed"] == serde_json::json!(["enc-b"])).then_some(())
        })
        .await;

    // Shutting the server down ends open streams, so it does not wait on them.
    s.stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), s.server)
        .await
        .expect("shutdown not held up by an open event stream")
        .unwrap()
        .unwrap();
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        while events.next().await.is_some() {}
    })
    .await;
    assert!(rest.is_ok(), "the stream ended");
    s.fleet.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_served_with_a_strict_policy_and_versioned_assets() {
    let s = setup(&["enc-a"]).await;
    let (head, page) = http(s.addr, "GET / HTTP/1.0\r\nAccept: text/html\r\n\r\n").await;
    assert!(head.starts_with("http/1.0 200"), "{head}");
    assert!(
        head.contains("content-type: text/html; charset=utf-8"),
        "{head}"
    );
    assert!(
        head.contains("content-security-policy: default-src 'none'; script-src 'self';"),
        "{head}"
    );
    assert!(head.contains("cache-control: no-cache"), "{head}");
    assert!(head.contains("vary: accept"), "{head}");
    let src = page
        .split("src=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap();
    assert!(src.starts_with("/assets/app.js?v="), "{src}");

    let (head, js) = http(s.addr, &format!("GET {src} HTTP/1.0\r\n\r\n")).await;
    assert!(head.contains("content-type: text/javascript"), "{head}");
    assert!(
        head.contains("cache-control: public, max-age=31536000, immutable"),
        "{head}"
    );
    assert!(js.contains("new EventSource(\"/api/events\")"));
    // Not this content's version: revalidated, never kept.
    let (head, _) = http(s.addr, "GET /assets/app.js?v=old HTTP/1.0\r\n\r\n").await;
    assert!(head.contains("cache-control: no-cache"), "{head}");
    let (head, _) = http(s.addr, "GET /assets/nope.js HTTP/1.0\r\n\r\n").await;
    assert!(head.starts_with("http/1.0 404"), "{head}");

    // Programs still get the plain list of endpoints.
    let (head, text) = http(s.addr, "GET / HTTP/1.0\r\n\r\n").await;
    assert!(text.starts_with("conn-supervisor admin"), "{text}");
    assert!(head.contains("vary: accept"), "{head}");
    assert!(text.contains("GET  /api/events"), "{text}");
    s.fleet.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_are_bounded_in_number() {
    let s = setup(&["enc-a"]).await;
    let mut open = Vec::new();
    for _ in 0..64 {
        let mut e = Events::open(s.addr).await;
        assert_eq!(e.next().await.unwrap().name, "snapshot");
        open.push(e);
    }
    let (head, body) = http(s.addr, "GET /api/events HTTP/1.0\r\n\r\n").await;
    assert!(head.starts_with("http/1.0 503"), "{head}");
    assert!(body.contains("too many event streams"), "{body}");
    // The rest of the API does not care.
    let (head, _) = http(s.addr, "GET /api/encoders HTTP/1.0\r\n\r\n").await;
    assert!(head.starts_with("http/1.0 200"), "{head}");
    drop(open);
    s.fleet.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_from_another_site_are_refused_and_from_the_page_accepted() {
    let s = setup(&["enc-a"]).await;
    let host = s.addr.to_string();
    let post = |origin: &str| {
        format!("POST /api/encoders/enc-a/hold HTTP/1.0\r\nHost: {host}\r\nOrigin: {origin}\r\nContent-Length: 0\r\n\r\n")
    };
    let (head, body) = http(s.addr, &post("https://evil.example")).await;
    assert!(head.starts_with("http/1.0 403"), "{head}");
    assert!(body.contains("cross-origin"), "{body}");
    assert!(!s.fleet.view("enc-a").unwrap().held, "a refused hold held");

    let (head, _) = http(s.addr, &post(&format!("http://{host}"))).await;
    assert!(head.starts_with("http/1.0 200"), "{head}");
    assert!(s.fleet.view("enc-a").unwrap().held);

    // No Origin at all: curl and scripts, as before.
    let (head, _) = http(
        s.addr,
        "DELETE /api/encoders/enc-a/hold HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("http/1.0 200"), "{head}");
    assert!(!s.fleet.view("enc-a").unwrap().held);
    s.fleet.shutdown(Duration::from_secs(2)).await;
}
