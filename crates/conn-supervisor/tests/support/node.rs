//! Supervisor processes (the real binary) sharing one fleet file, and what they say.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    fs::{self, File},
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use super::{http, scratch_dir};

const BIN: &str = env!("CARGO_BIN_EXE_conn-supervisor");

/// The cluster's name in every test.
pub const CLUSTER: &str = "fleet";

/// What differs between the tests' fleet files.
#[derive(Debug, Clone)]
pub struct FleetFile {
    pub lease_ttl: &'static str,
    pub check_interval: &'static str,
    pub unhealthy_interval: &'static str,
    pub expect_streaming: bool,
    pub events: bool,
}

impl Default for FleetFile {
    fn default() -> Self {
        Self {
            lease_ttl: "3s",
            check_interval: "3s",
            unhealthy_interval: "1s",
            expect_streaming: false,
            events: false,
        }
    }
}

/// The id of the `i`-th encoder (0-based).
pub fn encoder_id(i: usize) -> String {
    format!("enc-{i:03}")
}

impl FleetFile {
    /// The file's text for these devices (ids `enc-000`, …) and this etcd endpoint.
    pub fn text(&self, etcd: &str, urls: &[String]) -> String {
        let encoders: Vec<(String, String)> = urls
            .iter()
            .enumerate()
            .map(|(i, url)| (encoder_id(i), url.clone()))
            .collect();
        self.text_with(etcd, &encoders)
    }

    /// The file's text for these `(id, url)` encoders and this etcd endpoint.
    pub fn text_with(&self, etcd: &str, encoders: &[(String, String)]) -> String {
        let mut text = format!(
            "admin_listen = \"127.0.0.1:0\"\n\
             [cluster]\n\
             etcd = [\"{etcd}\"]\n\
             name = \"{CLUSTER}\"\n\
             lease_ttl = \"{}\"\n\
             [defaults]\n\
             check_interval = \"{}\"\n\
             unhealthy_interval = \"{}\"\n\
             request_timeout = \"800ms\"\n\
             connect_timeout = \"800ms\"\n\
             health_deadline = \"2s\"\n\
             min_warm = 1\n\
             max_connections = 2\n\
             events = {}\n\
             desired_state_grace = \"1s\"\n\
             recovery_backoff = \"500ms\"\n",
            self.lease_ttl, self.check_interval, self.unhealthy_interval, self.events
        );
        for (id, url) in encoders {
            let _ = write!(
                text,
                "[[encoder]]\nid = \"{id}\"\nurl = \"{url}\"\nexpect_streaming = {}\n",
                self.expect_streaming
            );
        }
        text
    }
}

/// A scratch directory for fleet files and logs; removed when dropped.
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    pub fn new() -> Self {
        let dir = scratch_dir("cluster");
        fs::create_dir_all(&dir).expect("scratch dir");
        Self { dir }
    }

    /// Writes `name` with `text`; answers its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        fs::write(&path, text).expect("write");
        path
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // The nodes' logs, for a failed run: `KEEP_CLUSTER_LOGS=1 cargo test ...`.
        if std::env::var_os("KEEP_CLUSTER_LOGS").is_some() {
            eprintln!("kept {}", self.dir.display());
            return;
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `conn-supervisor run --config FILE` as node `name` (`HELO_CLUSTER_NODE`); killed
/// when dropped.
pub struct Node {
    pub name: String,
    child: Child,
    admin: String,
    log: PathBuf,
}

impl Node {
    /// Starts it and waits (bounded) for its first line, the admin address.
    pub async fn start(config: &Path, name: &str, log: PathBuf) -> Self {
        let mut child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(config)
            .env("HELO_CLUSTER_NODE", name)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(File::create(&log).expect("log file"))
            .kill_on_drop(true)
            .spawn()
            .expect("start conn-supervisor");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .ok()
            .and_then(Result::ok)
            .flatten()
            .unwrap_or_default();
        let Some(admin) = first
            .strip_prefix("admin: http://")
            .and_then(|r| r.strip_suffix('/'))
        else {
            panic!(
                "{name}: unexpected first line {first:?}; log:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
        };
        let admin = admin.to_string();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            name: name.to_string(),
            child,
            admin,
            log,
        }
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        http::get(&self.admin, path).await
    }

    pub async fn post(&self, path: &str) -> (u16, String) {
        http::request(&self.admin, "POST", path)
            .await
            .unwrap_or_else(|| panic!("{}: no answer to POST {path}", self.name))
    }

    pub async fn delete(&self, path: &str) -> (u16, String) {
        http::request(&self.admin, "DELETE", path)
            .await
            .unwrap_or_else(|| panic!("{}: no answer to DELETE {path}", self.name))
    }

    pub async fn json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "{}: GET {path}: {body}", self.name);
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }

    /// `GET /api/cluster`.
    pub async fn cluster(&self) -> ClusterState {
        let v = self.json("/api/cluster").await;
        let owners = v["owners"]
            .as_object()
            .expect("owners")
            .iter()
            .map(|(e, o)| (e.clone(), o.as_str().map(str::to_string)))
            .collect();
        ClusterState {
            members: v["members"]
                .as_array()
                .expect("members")
                .iter()
                .map(|m| m.as_str().expect("a name").to_string())
                .collect(),
            owned: v["owned"].as_u64().expect("owned") as usize,
            store_up: v["store_up"].as_bool().expect("store_up"),
            acting: v["acting"].as_bool().expect("acting"),
            owners,
        }
    }

    /// `GET /api/encoders`, by id.
    pub async fn encoders(&self) -> BTreeMap<String, serde_json::Value> {
        let v = self.json("/api/encoders").await;
        v.as_array()
            .expect("an array")
            .iter()
            .map(|e| (e["id"].as_str().expect("id").to_string(), e.clone()))
            .collect()
    }

    pub async fn metrics(&self) -> String {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200, "{}: {body}", self.name);
        body
    }

    /// The value of the one series `name{node="<this node>"}`.
    pub async fn cluster_metric(&self, name: &str) -> Option<f64> {
        let prefix = format!("{name}{{node=\"{}\"}} ", self.name);
        self.metrics()
            .await
            .lines()
            .find_map(|l| l.strip_prefix(&prefix).and_then(|v| v.parse().ok()))
    }

    /// SIGHUP: read the fleet file again.
    pub async fn hangup(&self) {
        let pid = self.child.id().expect("running").to_string();
        let status = Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .await
            .expect("kill");
        assert!(status.success());
    }

    /// SIGKILL: no lease revoked, no key deleted.
    pub fn kill(&mut self) {
        let _ = self.child.start_kill();
    }

    /// SIGTERM; answers the exit code.
    pub async fn terminate(mut self) -> Option<i32> {
        let pid = self.child.id()?.to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status().await;
        let status = tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .ok()?
            .ok()?;
        status.code()
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// What `GET /api/cluster` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterState {
    pub members: Vec<String>,
    pub owned: usize,
    pub store_up: bool,
    pub acting: bool,
    pub owners: BTreeMap<String, Option<String>>,
}

/// The encoder ids that have any series in a `/metrics` text.
pub fn encoders_in_metrics(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (_, rest) = l.split_once("encoder_id=\"")?;
            let (id, _) = rest.split_once('"')?;
            Some(id.to_string())
        })
        .collect()
}

/// Runs the binary to completion with `args` and `HELO_CLUSTER_NODE`; answers the exit
/// code and stderr. Bounded.
pub async fn run_to_end(args: &[&str], node: &str) -> (Option<i32>, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new(BIN)
            .args(args)
            .env("HELO_CLUSTER_NODE", node)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("finished in time")
    .expect("ran");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
