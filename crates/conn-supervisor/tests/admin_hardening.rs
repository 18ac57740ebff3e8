//! The admin server under attack and behind a token, over real loopback sockets: a
//! flood of silent and slow connections against the real binary with 1 024 open
//! files, the bearer token on actions (and reads when asked), the body limit, the
//! header-read and TLS handshake timeouts, HTTPS with a certificate made here, and
//! start-up refusals that name the key at fault.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
    time::Duration,
};

use conn_supervisor::{
    admin::{self, AdminLimits, AdminOptions},
    config::{AdminToken, EncoderConfig, FleetConfig, TlsFiles, Tunables},
    fleet::Fleet,
};
use helo_sim::{SimConfig, SimDevice};
use helo_transport::DeviceConfig;
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    process::{Child, Command},
    sync::oneshot,
    task::JoinHandle,
    time::Instant,
};

const BIN: &str = env!("CARGO_BIN_EXE_conn-supervisor");
const TOKEN: &str = "s3cret-admin-token-for-tests";

// === In-process servers ===

struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
    _sims: Vec<SimDevice>,
}

impl Server {
    async fn start(ids: &[&str], options: AdminOptions) -> Self {
        let tunables = Tunables::default();
        let mut sims = Vec::new();
        let mut encoders = Vec::new();
        for id in ids {
            let sim = SimDevice::start("127.0.0.1:0".parse().unwrap(), SimConfig::fast())
                .await
                .unwrap();
            encoders.push(EncoderConfig {
                id: id.to_string(),
                device: DeviceConfig::from_url(*id, &sim.url()).unwrap(),
                expect_streaming: false,
                expect_recording: false,
                hold: false,
                tunables: tunables.clone().into(),
            });
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
        let task = tokio::spawn(admin::serve_with(listener, fleet, options, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop,
            task,
            _sims: sims,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the server stopped in time")
            .unwrap()
            .unwrap();
    }
}

/// One exchange on a fresh connection (`Connection: close`): status, head (lower
/// case), body. `None` when the server closes without an answer or does not answer
/// within 5 s.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<(u16, String, String)> {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        request.push_str("Content-Length: 0\r\n");
    }
    request.push_str("\r\n");
    let talk = async {
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, head.to_ascii_lowercase(), body.to_string()))
    };
    tokio::time::timeout(Duration::from_secs(5), talk)
        .await
        .ok()
        .flatten()
}

async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    let stream = TcpStream::connect(addr).await.unwrap();
    exchange(stream, method, path, headers)
        .await
        .unwrap_or_else(|| panic!("no answer to {method} {path}"))
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

async fn held(addr: SocketAddr, id: &str, auth: &[(&str, &str)]) -> bool {
    let (status, _, body) = call(addr, "GET", &format!("/api/encoders/{id}"), auth).await;
    assert_eq!(status, 200, "{body}");
    json(&body)["held"].as_bool().unwrap()
}

#[tokio::test]
async fn actions_need_the_token_and_reads_do_not() {
    let options = AdminOptions::default().with_token(AdminToken::new(TOKEN), false);
    let server = Server::start(&["a"], options).await;
    let addr = server.addr;

    // No token: 401 with the challenge, nothing done.
    for (method, path) in [
        ("POST", "/api/encoders/a/hold"),
        ("DELETE", "/api/encoders/a/hold"),
        ("POST", "/api/encoders/a/cooldown"),
    ] {
        let (status, head, body) = call(addr, method, path, &[]).await;
        assert_eq!(status, 401, "{method} {path}: {body}");
        assert!(
            head.contains("www-authenticate: bearer"),
            "{method} {path}: {head}"
        );
        assert!(json(&body)["error"]
            .as_str()
            .unwrap()
            .contains("admin token"));
    }
    assert!(!held(addr, "a", &[]).await, "the refused hold did nothing");

    // A wrong token: 401, and the answer does not repeat what was sent.
    let guess = "wrong-guess-4711";
    let (status, head, body) = call(
        addr,
        "POST",
        "/api/encoders/a/hold",
        &[("Authorization", &bearer(guess))],
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(head.contains("error=\"invalid_token\""), "{head}");
    assert!(
        !head.contains(guess) && !body.contains(guess),
        "{head}{body}"
    );
    // Another scheme is no bearer token at all.
    let (status, _, _) = call(
        addr,
        "POST",
        "/api/encoders/a/hold",
        &[("Authorization", &format!("Basic {TOKEN}"))],
    )
    .await;
    assert_eq!(status, 401);
    assert!(!held(addr, "a", &[]).await);

    // The token: done.
    let auth = bearer(TOKEN);
    let (status, _, body) = call(
        addr,
        "POST",
        "/api/encoders/a/hold",
        &[("Authorization", &auth)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["held"], true);
    assert!(held(addr, "a", &[]).await);
    let (status, _, _) = call(
        addr,
        "DELETE",
        "/api/encoders/a/hold",
        &[("Authorization", &auth)],
    )
    .await;
    assert_eq!(status, 200);
    assert!(!held(addr, "a", &[]).await);

    // Reads stay open without admin_auth_reads.
    for path in [
        "/",
        "/healthz",
        "/metrics",
        "/api/encoders",
        "/api/encoders/a",
    ] {
        let (status, _, body) = call(addr, "GET", path, &[]).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    server.stop().await;
}

#[tokio::test]
async fn admin_auth_reads_guards_every_read_but_the_probes() {
    let options = AdminOptions::default().with_token(AdminToken::new(TOKEN), true);
    let server = Server::start(&["a"], options).await;
    let addr = server.addr;
    for path in [
        "/",
        "/assets/app.js",
        "/metrics",
        "/api/encoders",
        "/api/encoders/a",
        "/api/events",
        "/api/cluster",
    ] {
        let (status, head, _) = call(addr, "GET", path, &[]).await;
        assert_eq!(status, 401, "{path}");
        assert!(head.contains("www-authenticate: bearer"), "{path}: {head}");
    }
    let (status, _, body) = call(addr, "GET", "/healthz", &[]).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, _, _) = call(addr, "GET", "/readyz", &[]).await;
    assert_ne!(status, 401, "/readyz is for the orchestrator");
    let auth = bearer(TOKEN);
    let (status, _, body) = call(addr, "GET", "/api/encoders", &[("Authorization", &auth)]).await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)[0]["id"], "a");
    server.stop().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let server = Server::start(&["a"], AdminOptions::default()).await;
    let addr = server.addr;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let size = 1024 * 1024;
    let head = format!(
        "POST /api/encoders/a/hold HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
         Content-Length: {size}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer and close before it has read all of it.
    let _ = stream.write_all(&vec![b'x'; size]).await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(!held(addr, "a", &[]).await, "the hold was not carried out");
    // A body within the limit is accepted (and ignored).
    let (status, _, body) = call(
        addr,
        "POST",
        "/api/encoders/a/cooldown",
        &[("Content-Length", "2")],
    )
    .await;
    // Content-Length 2 with no body sent: the server answers without waiting for it.
    assert_eq!(status, 202, "{body}");
    server.stop().await;
}

/// A connection that sends part of a request head and then nothing.
async fn slowloris(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /api/encoders HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    s
}

/// Whether the server has closed `s` (EOF or reset) within `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(within, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // An error answer (408) may come before the close.
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn silent_connections_give_their_slots_to_newcomers_but_streams_keep_theirs() {
    let limits = AdminLimits {
        max_connections: 4,
        ..AdminLimits::default()
    };
    let server = Server::start(&["a"], AdminOptions::default().with_limits(limits)).await;
    let addr = server.addr;

    // An open event stream: busy, never taken for a newcomer.
    let mut events = TcpStream::connect(addr).await.unwrap();
    events
        .write_all(b"GET /api/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .unwrap();
    let mut events = BufReader::new(events);
    let mut line = String::new();
    while !line.starts_with("event: snapshot") {
        line.clear();
        tokio::time::timeout(Duration::from_secs(5), events.read_line(&mut line))
            .await
            .unwrap()
            .unwrap();
    }

    // Many more silent and slow connections than slots.
    let mut idle = Vec::new();
    for i in 0..40 {
        idle.push(if i % 2 == 0 {
            TcpStream::connect(addr).await.unwrap()
        } else {
            slowloris(addr).await
        });
    }
    // The probe still answers at once: it takes the slot of the longest idle one.
    let started = Instant::now();
    let (status, _, body) = call(addr, "GET", "/healthz", &[]).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Most silent connections were closed by the server: at most 3 slots besides the
    // stream's.
    let mut open = 0;
    for s in &mut idle {
        if !closed_within(s, Duration::from_millis(50)).await {
            open += 1;
        }
    }
    assert!(open <= 3, "{open} silent connections still held");
    // The stream was not cut.
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_millis(300), events.read(&mut buf)).await;
    assert!(
        !matches!(read, Ok(Ok(0) | Err(_))),
        "the event stream was closed: {read:?}"
    );
    drop(events);
    server.stop().await;
}

#[tokio::test]
async fn a_slow_or_silent_client_is_closed_after_the_header_read_timeout() {
    let limits = AdminLimits {
        header_read_timeout: Duration::from_millis(500),
        ..AdminLimits::default()
    };
    let server = Server::start(&["a"], AdminOptions::default().with_limits(limits)).await;
    let addr = server.addr;
    // Trickling a byte every 100 ms does not keep a request head open.
    let mut slow = slowloris(addr).await;
    let started = Instant::now();
    let trickle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if slow.write_all(b"a").await.is_err() {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), trickle).await;
    assert!(closed_within(&mut slow, Duration::from_secs(1)).await);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // A silent connection, and a keep-alive one after its answer, are closed too.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(3)).await);
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    assert!(closed_within(&mut kept, Duration::from_secs(3)).await);
    server.stop().await;
}

// === HTTPS ===

struct Dir(PathBuf);

impl Dir {
    fn new() -> Self {
        let path = support::scratch_dir("admin-tls");
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate for `localhost` and 127.0.0.1: (cert PEM, key PEM, DER).
fn self_signed() -> (String, String, Vec<u8>) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    (
        cert.cert.pem(),
        cert.key_pair.serialize_pem(),
        cert.cert.der().to_vec(),
    )
}

fn tls_files(dir: &Dir) -> (TlsFiles, Vec<u8>) {
    let (cert, key, der) = self_signed();
    let files = TlsFiles {
        cert: dir.file("admin.crt", &cert),
        key: dir.file("admin.key", &key),
    };
    (files, der)
}

fn connector(der: Vec<u8>) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der.into()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn https_get(addr: SocketAddr, der: &[u8], path: &str) -> (u16, String) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio::time::timeout(
        Duration::from_secs(5),
        connector(der.to_vec()).connect(name, tcp),
    )
    .await
    .expect("handshake in time")
    .expect("handshake");
    let (status, _, body) = exchange(tls, "GET", path, &[])
        .await
        .unwrap_or_else(|| panic!("no HTTPS answer to {path}"));
    (status, body)
}

#[tokio::test]
async fn https_answers_and_plain_http_to_it_fails_cleanly() {
    let dir = Dir::new();
    let (files, der) = tls_files(&dir);
    let options = AdminOptions::default().with_tls(&files).unwrap();
    assert!(options.is_tls());
    let server = Server::start(&["a"], options).await;
    let addr = server.addr;
    assert_eq!(
        https_get(addr, &der, "/healthz").await,
        (200, "ok\n".into())
    );

    // Plain HTTP gets no HTTP answer, and the connection ends.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut raw)).await;
    assert!(ended.is_ok(), "the server closed the connection");
    assert!(!raw.starts_with(b"HTTP/"), "{raw:?}");

    // HTTPS still works afterwards.
    let (status, body) = https_get(addr, &der, "/api/encoders").await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)[0]["id"], "a");
    server.stop().await;
}

#[tokio::test]
async fn a_tls_handshake_that_never_comes_is_cut() {
    let dir = Dir::new();
    let (files, _) = tls_files(&dir);
    let limits = AdminLimits {
        tls_handshake_timeout: Duration::from_millis(300),
        ..AdminLimits::default()
    };
    let options = AdminOptions::default()
        .with_limits(limits)
        .with_tls(&files)
        .unwrap();
    let server = Server::start(&["a"], options).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    assert!(closed_within(&mut silent, Duration::from_secs(3)).await);
    assert!(started.elapsed() >= Duration::from_millis(250));
    server.stop().await;
}

#[test]
fn unusable_tls_files_are_an_error_naming_the_key_and_file() {
    let dir = Dir::new();
    let (cert, key, _) = self_signed();
    let (_, other_key, _) = self_signed();
    let cert_path = dir.file("admin.crt", &cert);
    let key_path = dir.file("admin.key", &key);
    let garbage = dir.file(
        "garbage.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n",
    );
    let empty = dir.file("empty.pem", "just text\n");
    let other = dir.file("other.key", &other_key);
    let missing = dir.0.join("missing.key");
    for (cert, key, named, path) in [
        (&cert_path, &missing, "admin_tls_key", &missing),
        (&missing, &key_path, "admin_tls_cert", &missing),
        (&garbage, &key_path, "admin_tls_cert", &garbage),
        (&empty, &key_path, "admin_tls_cert", &empty),
        (&cert_path, &empty, "admin_tls_key", &empty),
        (&cert_path, &cert_path, "admin_tls_key", &cert_path),
        (&cert_path, &other, "admin_tls_key", &other),
    ] {
        let files = TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        };
        let err = AdminOptions::default().with_tls(&files).unwrap_err();
        let message = err.to_string();
        assert!(err.is_admin_tls(), "{message}");
        assert!(
            message.starts_with(&format!("{named} = {}", path.display())),
            "{message}"
        );
        assert!(!message.contains("PRIVATE KEY-----"), "{message}");
    }
}

// === The real binary ===

/// A supervisor process, killed when dropped.
struct Supervisor {
    child: Child,
    admin: String,
}

impl Supervisor {
    /// Runs `conn-supervisor run --config <config>` with soft and hard `RLIMIT_NOFILE`
    /// set to `nofile`.
    async fn start(config: &Path, nofile: u32) -> Self {
        Self::start_logging(config, nofile, "warn").await
    }

    /// [`Supervisor::start`] with `RUST_LOG` set to `log`.
    async fn start_logging(config: &Path, nofile: u32, log: &str) -> Self {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("ulimit -Sn \"$1\" && ulimit -Hn \"$1\" && shift && exec \"$@\"")
            .arg("sh")
            .arg(nofile.to_string())
            .arg(BIN)
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", log)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("a first line in time")
            .unwrap()
            .unwrap_or_default();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let admin = first
            .strip_prefix("admin: http://")
            .and_then(|rest| rest.strip_suffix('/'))
            .unwrap_or_else(|| panic!("first line: {first:?}"))
            .to_string();
        Self { child, admin }
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    async fn encoders(&self) -> Vec<Value> {
        let (status, body) = support::http::get(&self.admin, "/api/encoders").await;
        assert_eq!(status, 200, "{body}");
        json(&body).as_array().unwrap().clone()
    }
}

/// How many checks each encoder has had, once all are healthy (within 10 s).
async fn healthy_checks(sup: &Supervisor, n: usize) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let views = sup.encoders().await;
        if views.len() == n && views.iter().all(|v| v["status"] == "healthy") {
            return views
                .iter()
                .map(|v| v["checks"]["count"].as_u64().unwrap())
                .collect();
        }
        assert!(Instant::now() < deadline, "not all healthy: {views:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_silent_connections_starves_neither_the_probes_nor_the_devices() {
    const ENCODERS: usize = 3;
    const MAX_CONNECTIONS: usize = 100;
    let mut sims = Vec::new();
    let mut text = format!(
        "admin_listen = \"127.0.0.1:0\"\nadmin_max_connections = {MAX_CONNECTIONS}\n\
         [defaults]\ncheck_interval = \"300ms\"\n"
    );
    for i in 0..ENCODERS {
        let sim = SimDevice::start("127.0.0.1:0".parse().unwrap(), SimConfig::fast())
            .await
            .unwrap();
        text.push_str(&format!(
            "[[encoder]]\nid = \"e{i}\"\nurl = \"{}\"\n",
            sim.url()
        ));
        sims.push(sim);
    }
    let dir = Dir::new();
    let config = dir.file("fleet.toml", &text);
    let sup = Supervisor::start(&config, 1024).await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", sup.pid())).unwrap();
    let nofile = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .skip(3)
        .take(2)
        .collect::<Vec<_>>();
    assert_eq!(
        nofile,
        ["1024", "1024"],
        "the child runs with 1 024 open files"
    );
    healthy_checks(&sup, ENCODERS).await;

    // 1 000 silent connections and 50 that send half a request head, all kept open.
    let addr: SocketAddr = sup.admin.parse().unwrap();
    let mut attackers = Vec::new();
    for _ in 0..1000 {
        attackers.push(TcpStream::connect(addr).await.unwrap());
    }
    for _ in 0..50 {
        attackers.push(slowloris(addr).await);
    }

    // The probe answers at once; the devices keep being checked, all healthy.
    let started = Instant::now();
    let (status, body) = support::http::get(&sup.admin, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let before = healthy_checks(&sup, ENCODERS).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = healthy_checks(&sup, ENCODERS).await;
    assert!(
        before.iter().zip(&after).all(|(b, a)| a > b),
        "device checks went on: {before:?} -> {after:?}"
    );
    // The process holds at most its slots, the devices' connections and a few more.
    let open = sup.open_files();
    assert!(open < MAX_CONNECTIONS + 60, "{open} open files");

    // The attackers leave: everything is as before.
    drop(attackers);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = support::http::get(&sup.admin, "/readyz").await;
    assert_eq!(status, 200);
    healthy_checks(&sup, ENCODERS).await;

    let (status, stderr) = stop_supervisor(sup).await;
    assert!(status.success(), "{status:?}");
    assert!(!stderr.contains("Too many open files"), "{stderr}");
}

/// SIGTERM, then the exit status (within 10 s) and everything on stderr.
async fn stop_supervisor(sup: Supervisor) -> (std::process::ExitStatus, String) {
    let mut child = sup.child;
    let pid = child.id().unwrap().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exited in time after SIGTERM")
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    (status, stderr)
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accept_loop_outlives_running_out_of_open_files() {
    // A cap above what 256 open files allow: the process runs out of descriptors.
    // (300 connections: more would overflow the listen backlog and block connect.)
    let sim = SimDevice::start("127.0.0.1:0".parse().unwrap(), SimConfig::fast())
        .await
        .unwrap();
    let text = format!(
        "admin_listen = \"127.0.0.1:0\"\nadmin_max_connections = 2000\n\
         [defaults]\ncheck_interval = \"300ms\"\n[[encoder]]\nid = \"e0\"\nurl = \"{}\"\n",
        sim.url()
    );
    let dir = Dir::new();
    let config = dir.file("fleet.toml", &text);
    let sup = Supervisor::start(&config, 256).await;
    healthy_checks(&sup, 1).await;
    let addr: SocketAddr = sup.admin.parse().unwrap();
    let mut attackers = Vec::new();
    let mut most = 0;
    for i in 0..300 {
        attackers.push(TcpStream::connect(addr).await.unwrap());
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            most = most.max(sup.open_files());
        }
    }
    assert_eq!(most, 256, "the process ran out of open files");
    // Retried every 100 ms meanwhile.
    tokio::time::sleep(Duration::from_millis(500)).await;

    drop(attackers);
    // Its connections see the attackers leave, their files are freed, and the loop,
    // retrying every 100 ms, accepts again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some((200, body)) = support::http::request(&sup.admin, "GET", "/healthz").await {
            assert_eq!(body, "ok\n");
            break;
        }
        assert!(Instant::now() < deadline, "/healthz never answered again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    healthy_checks(&sup, 1).await;
    let (status, stderr) = stop_supervisor(sup).await;
    assert!(status.success(), "{status:?}");
    assert!(
        stderr.contains("accept failed; retrying") && stderr.contains("Too many open files"),
        "the accept errors were logged: {stderr}"
    );
}

#[tokio::test]
async fn the_token_never_reaches_the_log_at_the_most_verbose_level() {
    let sim = SimDevice::start("127.0.0.1:0".parse().unwrap(), SimConfig::fast())
        .await
        .unwrap();
    let dir = Dir::new();
    dir.file("admin.token", &format!("{TOKEN}\n"));
    let config = dir.file(
        "fleet.toml",
        &format!(
            "admin_listen = \"127.0.0.1:0\"\nadmin_token_file = \"admin.token\"\n\
             [[encoder]]\nid = \"e0\"\nurl = \"{}\"\n",
            sim.url()
        ),
    );
    let sup = Supervisor::start_logging(&config, 4096, "trace").await;
    let addr: SocketAddr = sup.admin.parse().unwrap();
    let wrong = "a-wrong-token-also-secret";
    let (status, _, _) = call(
        addr,
        "POST",
        "/api/encoders/e0/hold",
        &[("Authorization", &bearer(wrong))],
    )
    .await;
    assert_eq!(status, 401);
    let (status, _, _) = call(
        addr,
        "POST",
        "/api/encoders/e0/hold",
        &[("Authorization", &bearer(TOKEN))],
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = call(addr, "GET", "/metrics", &[]).await;
    assert_eq!(status, 200);
    let (exit, stderr) = stop_supervisor(sup).await;
    assert!(exit.success(), "{exit:?}");
    assert!(stderr.contains("DEBUG"), "the log was verbose: {stderr}");
    assert!(
        !stderr.contains(TOKEN) && !stderr.contains(wrong),
        "{stderr}"
    );
}

/// Runs the binary to completion: exit code and stderr.
async fn run_to_end(config: &Path) -> (i32, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        Command::new(BIN)
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn")
            .output(),
    )
    .await
    .expect("finished in time")
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const ONE_ENCODER: &str = "[[encoder]]\nid = \"a\"\nurl = \"http://127.0.0.1:9\"\n";

#[tokio::test]
async fn run_refuses_a_network_address_without_a_token_naming_the_key() {
    let dir = Dir::new();
    let config = dir.file(
        "fleet.toml",
        &format!("admin_listen = \"0.0.0.0:0\"\n{ONE_ENCODER}"),
    );
    let (code, stderr) = run_to_end(&config).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("admin_token_file"), "{stderr}");
    assert!(
        stderr.contains("non-loopback address (0.0.0.0:0)"),
        "{stderr}"
    );
}

#[tokio::test]
async fn run_refuses_an_unusable_tls_key_naming_it_and_serves_https_with_a_good_one() {
    let dir = Dir::new();
    let (cert, key, der) = self_signed();
    dir.file("admin.crt", &cert);
    dir.file("admin.key", &key);
    dir.file(
        "bad.key",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    let bad = dir.file(
        "bad.toml",
        &format!(
            "admin_listen = \"127.0.0.1:0\"\nadmin_tls_cert = \"admin.crt\"\n\
             admin_tls_key = \"bad.key\"\n{ONE_ENCODER}"
        ),
    );
    let (code, stderr) = run_to_end(&bad).await;
    assert_eq!(code, 2, "{stderr}");
    let named = format!("admin_tls_key = {}", dir.0.join("bad.key").display());
    assert!(stderr.contains(&named), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let good = dir.file(
        "good.toml",
        &format!(
            "admin_listen = \"127.0.0.1:0\"\nadmin_tls_cert = \"admin.crt\"\n\
             admin_tls_key = \"admin.key\"\n{ONE_ENCODER}"
        ),
    );
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&good)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap_or_default();
    let addr: SocketAddr = first
        .strip_prefix("admin: https://")
        .and_then(|r| r.strip_suffix('/'))
        .unwrap_or_else(|| panic!("{first:?}"))
        .parse()
        .unwrap();
    assert_eq!(
        https_get(addr, &der, "/healthz").await,
        (200, "ok\n".into())
    );
    let _ = child.kill().await;
}
