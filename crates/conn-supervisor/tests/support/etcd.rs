//! One etcd member (Debian's `etcd-server`) on loopback ports of its own.

use std::{
    fs::{self, File},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use tokio::time::{sleep, Instant};

use super::{free_port, http, scratch_dir};

const ETCD: &str = "/usr/bin/etcd";

/// An etcd process; killed (and its data removed) when dropped.
pub struct Etcd {
    child: Option<Child>,
    client_port: u16,
    peer_port: u16,
    dir: PathBuf,
}

impl Etcd {
    /// Whether etcd is installed; says why the test skips when it is not.
    pub fn installed() -> bool {
        let installed = Path::new(ETCD).is_file();
        if !installed {
            println!("skipped: {ETCD} is not installed (Debian package etcd-server)");
        }
        installed
    }

    /// Starts a one-member etcd and waits (bounded) until it has a leader.
    pub async fn start() -> Self {
        let dir = scratch_dir("etcd");
        fs::create_dir_all(&dir).expect("scratch dir");
        let mut etcd = Self {
            child: None,
            client_port: free_port(),
            peer_port: free_port(),
            dir,
        };
        etcd.spawn();
        etcd.wait_ready().await;
        etcd
    }

    fn spawn(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.join("etcd.log"))
            .expect("log file");
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new(ETCD)
            .args(["--name", "e0"])
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("e0={peer}")])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start etcd");
        self.child = Some(child);
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// `127.0.0.1:PORT`, for the proxy.
    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.client_port))
    }

    /// SIGKILL, and wait for the process to end. Its data stays for [`restart`].
    ///
    /// [`restart`]: Self::restart
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same ports and data (leases included).
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn();
        self.wait_ready().await;
    }

    /// Until `/health` says it has a leader; bounded.
    async fn wait_ready(&self) {
        let addr = format!("127.0.0.1:{}", self.client_port);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some((200, body)) = http::request(&addr, "GET", "/health").await {
                if body.contains("true") {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "etcd at {addr} not ready within 20 s; log: {}",
                fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default()
            );
            sleep(Duration::from_millis(50)).await;
        }
    }

    /// Its own Prometheus metrics.
    pub async fn metrics(&self) -> String {
        let addr = format!("127.0.0.1:{}", self.client_port);
        http::get(&addr, "/metrics").await.1
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}
