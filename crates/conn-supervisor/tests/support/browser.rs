//! A headless Chromium driven over WebDriver (`chromedriver` + fantoccini), for the
//! fleet page's browser test and the README screenshot (`cargo xtask screenshot`).
//!
//! Every wait is bounded, and the browser never outlives its [`Browser`]: chromedriver
//! runs in a process group of its own with Chromium under it, and dropping the
//! `Browser` (on success, error or panic) kills the whole group and removes the
//! throw-away profile.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// The programs a browser needs; see [`Installed::find`].
#[derive(Debug, Clone)]
pub(crate) struct Installed {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

impl Installed {
    /// Chromium and chromedriver from `PATH` (Debian: packages `chromium` and
    /// `chromium-driver`); `Err` says which is missing.
    pub(crate) fn find() -> Result<Self, String> {
        let chromium = ["chromium", "chromium-browser"]
            .iter()
            .find_map(|name| in_path(name))
            .ok_or("no chromium in PATH (Debian package `chromium`)")?;
        let chromedriver = in_path("chromedriver")
            .ok_or("no chromedriver in PATH (Debian package `chromium-driver`)")?;
        Ok(Self {
            chromium,
            chromedriver,
        })
    }
}

fn in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A running headless Chromium and the WebDriver session on it.
#[derive(Debug)]
pub(crate) struct Browser {
    client: Option<Client>,
    driver: Option<Child>,
    profile: PathBuf,
}

/// How long chromedriver and then Chromium may take to start (a busy 2-core CI
/// machine starts Chromium in a few seconds).
const DRIVER_START: Duration = Duration::from_secs(15);
const SESSION_START: Duration = Duration::from_secs(45);
/// Starts of chromedriver before giving up (see `start`).
const DRIVER_TRIES: u32 = 3;
/// Any one WebDriver command.
const COMMAND: Duration = Duration::from_secs(30);

impl Browser {
    /// Starts chromedriver on a free loopback port and a headless Chromium with a
    /// fresh profile and a `width`×`height` window.
    pub(crate) async fn start(
        installed: &Installed,
        width: u32,
        height: u32,
    ) -> Result<Self, String> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let profile = std::env::temp_dir().join(format!(
            "helo-fleet-browser-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&profile)
            .map_err(|e| format!("cannot create {}: {e}", profile.display()))?;
        let mut browser = Self {
            client: None,
            driver: None,
            profile,
        };
        // With `--port=0` chromedriver takes a free IPv4 port and then binds the same
        // number on IPv6, where another program may hold it; it then exits, and a
        // second try gets another port.
        let mut tries = 0;
        let port = loop {
            tries += 1;
            match browser.start_driver(installed).await {
                Ok(port) => break port,
                Err(e) if tries < DRIVER_TRIES && e.is_exited() => {
                    eprintln!("chromedriver: {e}; trying again");
                }
                Err(e) => return Err(e.0),
            }
        };
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        // Tests accept or dismiss confirm() themselves.
        caps.insert("unhandledPromptBehavior".into(), json!("ignore"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": installed.chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    // Without these Chromium calls home, and this machine's closed
                    // network refuses those connections.
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", browser.profile.display()),
                ],
            }),
        );
        let mut builder =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(caps);
        let driver_url = format!("http://127.0.0.1:{port}");
        let client = tokio::time::timeout(SESSION_START, builder.connect(&driver_url))
            .await
            .map_err(|_| format!("Chromium did not start within {SESSION_START:?}"))?
            .map_err(|e| format!("WebDriver session: {e}"))?;
        browser.client = Some(client);
        Ok(browser)
    }

    /// Starts chromedriver (after killing a previous one); answers its port.
    async fn start_driver(&mut self, installed: &Installed) -> Result<u16, DriverError> {
        if let Some(mut old) = self.driver.take() {
            let _ = old.start_kill();
            let _ = old.wait().await;
        }
        let log = self.profile.join("chromedriver.log");
        let log_file = std::fs::File::create(&log)
            .map_err(|e| DriverError(format!("cannot create {}: {e}", log.display()), false))?;
        let mut driver = Command::new(&installed.chromedriver)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            // Its own group, so that Drop can kill Chromium with it.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                let what = format!("cannot start {}: {e}", installed.chromedriver.display());
                DriverError(what, false)
            })?;
        let stdout = driver.stdout.take();
        self.driver = Some(driver);
        match tokio::time::timeout(DRIVER_START, driver_port(stdout)).await {
            Err(_) => Err(DriverError(
                format!("chromedriver did not start within {DRIVER_START:?}"),
                false,
            )),
            Ok(Ok(port)) => Ok(port),
            Ok(Err(e)) => {
                let said = std::fs::read_to_string(&log).unwrap_or_default();
                Err(DriverError(format!("{e}; it said: {}", said.trim()), true))
            }
        }
    }

    /// The WebDriver session.
    pub(crate) fn client(&self) -> &Client {
        // Set by `start`, taken only by `close(self)`.
        self.client.as_ref().unwrap_or_else(|| unreachable!())
    }

    /// Opens `url`.
    pub(crate) async fn goto(&self, url: &str) -> Result<(), String> {
        bounded(format!("goto {url}"), self.client().goto(url)).await
    }

    /// Runs `script` (a function body: `return …`) in the page.
    pub(crate) async fn eval(&self, script: &str) -> Result<Value, String> {
        bounded(
            format!("script {script:?}"),
            self.client().execute(script, Vec::new()),
        )
        .await
    }

    /// Runs `script` every 100 ms until it returns something other than `null`,
    /// `false` or `undefined`, for at most `limit`.
    pub(crate) async fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        script: &str,
    ) -> Result<Value, String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let v = self.eval(script).await?;
            if !matches!(v, Value::Null | Value::Bool(false)) {
                return Ok(v);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("timed out after {limit:?} waiting for {what}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A PNG of the window, written to `path`.
    pub(crate) async fn screenshot(&self, path: &Path) -> Result<(), String> {
        let png = bounded("screenshot".into(), self.client().screenshot()).await?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(path, png).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Ends the session (Chromium exits), then chromedriver.
    pub(crate) async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = tokio::time::timeout(COMMAND, client.close()).await;
        }
        // Drop does the rest.
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(mut driver) = self.driver.take() {
            if let Some(pid) = driver.id() {
                // The whole group: chromedriver and every Chromium process it started.
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pid}")])
                    .stderr(Stdio::null())
                    .status();
            }
            let _ = driver.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Why chromedriver did not start, and whether it exited (worth another try).
#[derive(Debug)]
struct DriverError(String, bool);

impl DriverError {
    fn is_exited(&self) -> bool {
        self.1
    }
}

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads chromedriver's "started successfully on port N." line, then keeps draining
/// its output so that it never blocks on a full pipe.
async fn driver_port(stdout: Option<tokio::process::ChildStdout>) -> Result<u16, String> {
    let stdout = stdout.ok_or("chromedriver has no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines
        .next_line()
        .await
        .map_err(|e| format!("chromedriver output: {e}"))?
    {
        let port = line
            .split("started successfully on port ")
            .nth(1)
            .and_then(|rest| rest.trim_end_matches('.').trim().parse().ok());
        if let Some(port) = port {
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok(port);
        }
    }
    Err("chromedriver exited before it said its port".into())
}

async fn bounded<T, E: std::fmt::Display>(
    what: String,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(COMMAND, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within {COMMAND:?}")),
    }
}
