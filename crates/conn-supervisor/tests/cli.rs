//! The real `conn-supervisor` binary: exit codes, the first line, signals, and the
//! one-shot tools, against simulated devices on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{process::Stdio, time::Duration};

use helo_sim::{SimConfig, SimDevice};
use helo_transport::names;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
    process::{Child, Command},
};

const BIN: &str = env!("CARGO_BIN_EXE_conn-supervisor");

async fn sim(config: SimConfig) -> SimDevice {
    SimDevice::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

/// Runs the binary to completion; answers exit code, stdout, stderr.
async fn run(args: &[&str]) -> (i32, String, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        Command::new(BIN)
            .args(args)
            .env("RUST_LOG", "warn")
            .output(),
    )
    .await
    .expect("the command finished in time")
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Starts the binary in the background and reads its first stdout line.
async fn spawn(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("a first line in time")
        .unwrap()
        .unwrap_or_default();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, first)
}

async fn sigterm_and_wait(mut child: Child) -> i32 {
    let pid = child.id().unwrap().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exited in time after SIGTERM")
        .unwrap();
    status.code().unwrap_or(-1)
}

async fn get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, raw)
}

fn admin_addr(first_line: &str) -> String {
    first_line
        .strip_prefix("admin: http://")
        .and_then(|r| r.strip_suffix('/'))
        .unwrap_or_else(|| panic!("unexpected first line {first_line:?}"))
        .to_string()
}

/// Runs `check` twice, as text and with `--json`: both exit with `code`, the line
/// starts with the label and keeps its performance data parsable, and the JSON is one
/// object with the same exit code. Answers the line and the JSON.
async fn check_both(args: &[&str], env: &[(&str, &str)], code: i32) -> (String, serde_json::Value) {
    let label = ["OK", "WARNING", "CRITICAL", "UNKNOWN"][code as usize];
    let run_with = |json: bool| {
        let mut cmd = Command::new(BIN);
        cmd.arg("check").args(args).env("RUST_LOG", "warn");
        if json {
            cmd.arg("--json");
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        async move {
            let out = tokio::time::timeout(Duration::from_secs(20), cmd.output())
                .await
                .expect("check finished in time")
                .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).to_string(),
            )
        }
    };
    let (status, line) = run_with(false).await;
    assert_eq!(status, Some(code), "{args:?}: {line}");
    assert_eq!(line.lines().count(), 1, "one line: {line}");
    assert!(line.starts_with(&format!("HELO {label} - ")), "{line}");
    assert!(
        line.matches('|').count() <= 1,
        "only the perfdata separator: {line}"
    );
    if let Some((_, perf)) = line.split_once(" | ") {
        let (name, values) = perf.trim().split_once('=').unwrap();
        assert_eq!(name, "health");
        let fields: Vec<&str> = values.split(';').collect();
        assert_eq!(fields.len(), 5, "{perf}");
        assert!(fields[0].parse::<f64>().is_ok(), "{perf}");
    }
    let (status, out) = run_with(true).await;
    assert_eq!(status, Some(code), "--json {args:?}: {out}");
    let json: serde_json::Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("--json {args:?} printed no JSON ({e}): {out}"));
    assert_eq!(json["exit_code"], code, "{json}");
    (line, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_speaks_the_plugin_convention_in_every_case() {
    // Healthy.
    let ok = sim(SimConfig::fast()).await;
    let (line, json) = check_both(&[&ok.url()], &[], 0).await;
    assert!(line.contains("| health=100.0;80;70;0;100"), "{line}");
    assert_eq!(json["status"], "healthy");

    // Degraded: overheating, but below the critical temperature.
    let warm = sim(SimConfig::fast()).await;
    warm.overheat(75);
    let (line, json) = check_both(&[&warm.url()], &[], 1).await;
    assert!(line.contains("device at 75 °C"), "{line}");
    assert_eq!(json["reasons"][0]["code"], "device_overheated", "{json}");

    // Not streaming when it should: critical, with the reason first.
    let idle = sim(SimConfig::fast()).await;
    let (line, json) = check_both(&[&idle.url(), "--expect-streaming"], &[], 2).await;
    assert!(line.contains("stream idle, should be streaming"), "{line}");
    assert_eq!(json["reasons"][0]["code"], "not_streaming", "{json}");
    assert_eq!(json["in_desired_state"], false, "{json}");
    let failing = sim(SimConfig::fast()).await;
    failing.set_param(names::STREAM_STATE, "4").unwrap();
    check_both(&[&failing.url(), "--expect-streaming"], &[], 2).await;

    // A closed port: critical, the cause in the first line.
    let gone = sim(SimConfig::fast()).await;
    let url = gone.url();
    gone.shutdown().await;
    let (line, json) = check_both(&[&url], &[], 2).await;
    assert!(
        line.to_lowercase().contains("refused") || line.contains("connect"),
        "{line}"
    );
    assert_eq!(json["status"], "unreachable");

    // A login refused (wrong password), or needed and not given: critical.
    let locked = sim(SimConfig::fast().with_password("s3cret")).await;
    let (line, _) = check_both(
        &[&locked.url(), "--password-env", "HELO_TEST_PW"],
        &[("HELO_TEST_PW", "wrong")],
        2,
    )
    .await;
    assert!(
        line.to_lowercase().contains("password") || line.contains("login"),
        "{line}"
    );
    check_both(&[&locked.url()], &[], 2).await;
    let (line, json) = check_both(
        &[&locked.url(), "--password-env", "HELO_TEST_PW"],
        &[("HELO_TEST_PW", "s3cret")],
        0,
    )
    .await;
    assert_eq!(json["health"]["health_score"], 100.0, "{json}");
    assert!(!line.contains("s3cret") && !json.to_string().contains("s3cret"));

    // Bad arguments: unknown.
    check_both(&["http://"], &[], 3).await;
    check_both(
        &[&ok.url(), "--password-env", "HELO_TEST_UNSET_VAR"],
        &[],
        3,
    )
    .await;
    let (code, _, err) = run(&["check", &ok.url(), "--no-such-flag"]).await;
    assert_eq!(code, 3, "a usage error is UNKNOWN for a plugin: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_bounds_and_escapes_what_a_device_says() {
    // A device whose stream state has an unknown number and a name full of
    // control characters and pipes must not break the plugin line.
    let odd = sim(SimConfig::fast()).await;
    odd.set_param(names::STREAM_STATE, "4").unwrap();
    let long = format!("http://{}/{}", odd.addr(), "x|y\r\n".repeat(200));
    let (code, out, _) = run(&["check", &long, "--expect-streaming"]).await;
    assert!(out.lines().count() == 1, "{out}");
    assert!(out.len() < 2_000, "bounded: {} bytes", out.len());
    assert!(out.matches('|').count() <= 1, "{out}");
    assert!(!out.trim_end().chars().any(char::is_control), "{out:?}");
    assert!([2, 3].contains(&code), "{code}: {out}");
}

#[tokio::test]
async fn bad_configs_exit_2_naming_the_key_and_line() {
    let dir = std::env::temp_dir().join(format!("helo-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        (
            "unknown.toml",
            "[[encoder]]\nid = \"a\"\nurl = \"http://h\"\nflavour = 1\n",
            "flavour",
            "line 4",
        ),
        (
            "dup.toml",
            "[[encoder]]\nid = \"a\"\nurl = \"h\"\n[[encoder]]\nid = \"a\"\nurl = \"i\"\n",
            "encoder[1].id",
            "line 5",
        ),
        (
            "url.toml",
            "[[encoder]]\nid = \"a\"\nurl = \"https://h\"\n",
            "encoder[0].url",
            "line 3",
        ),
        (
            "range.toml",
            "[defaults]\ngradual_cooldown = 0\n[[encoder]]\nid = \"a\"\nurl = \"h\"\n",
            "defaults.gradual_cooldown",
            "line 2",
        ),
    ];
    for (file, text, key, line) in cases {
        let path = dir.join(file);
        std::fs::write(&path, text).unwrap();
        let (code, out, err) = run(&["run", "--config", path.to_str().unwrap()]).await;
        assert_eq!(code, 2, "{file}: {err}");
        assert!(err.contains(key) && err.contains(line), "{file}: {err}");
        assert!(!out.contains("admin:"), "{file}: nothing may start: {out}");
    }
    let (code, _, err) = run(&[
        "run",
        "--config",
        dir.join("missing.toml").to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, 2, "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_admin_and_exits_cleanly_on_sigterm() {
    let device = sim(SimConfig::fast().with_password("pw-secret")).await;
    let dir = std::env::temp_dir().join(format!("helo-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("fleet.toml");
    std::fs::write(
        &path,
        format!(
            "admin_listen = \"127.0.0.1:0\"\n[defaults]\ncheck_interval = \"300ms\"\n\n[[encoder]]\nid = \"studio-a\"\nurl = \"{}\"\npassword_env = \"HELO_RUN_PW\"\n",
            device.url()
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--config", path.to_str().unwrap()])
        .env("HELO_RUN_PW", "pw-secret")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    let addr = admin_addr(&first);
    let mut stderr = child.stderr.take().unwrap();
    let logs = tokio::spawn(async move {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s).await;
        s
    });
    assert_eq!(get(&addr, "/healthz").await.0, 200);
    let mut up = false;
    for _ in 0..60 {
        let (_, body) = get(&addr, "/metrics").await;
        if body.contains("helo_encoder_up{encoder_id=\"studio-a\"} 1") {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the encoder came up");
    assert_eq!(sigterm_and_wait(child).await, 0);
    let logs = logs.await.unwrap();
    assert!(logs.contains("encoder_id"), "{logs}");
    assert!(
        !logs.contains("pw-secret"),
        "the password leaked into the logs"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_prints_where_to_look_first_and_stops_on_sigterm() {
    let (child, first) = spawn(&["demo", "--encoders", "3"]).await;
    let addr = admin_addr(&first);
    assert_eq!(get(&addr, "/healthz").await.0, 200);
    assert_eq!(get(&addr, "/readyz").await.0, 200);
    let (status, body) = get(&addr, "/api/encoders").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("demo-00-streaming") && body.contains("demo-02-stream-fails"),
        "{body}"
    );
    assert_eq!(sigterm_and_wait(child).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tools_work_against_a_device() {
    let device = sim(SimConfig::fast()).await;
    let url = device.url();
    let (code, out, err) = run(&["param", "get", &url, names::STREAM_STATE]).await;
    assert_eq!(code, 0, "{err}");
    let p: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(p["value"], "1");
    let (code, out, _) = run(&[
        "param",
        "set",
        &url,
        names::FILENAME_PREFIX,
        "Sunday service",
    ])
    .await;
    assert_eq!(code, 0);
    assert!(out.contains("Sunday service"), "{out}");
    assert_eq!(
        device.param(names::FILENAME_PREFIX).as_deref(),
        Some("Sunday service")
    );
    let (code, _, err) = run(&["param", "get", &url, "eParamID_Nope"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("not supported"), "{err}");
    let (code, _, _) = run(&["stream", "start", &url]).await;
    assert_eq!(code, 0);
    let (code, _, _) = run(&["record", "start", &url]).await;
    assert_eq!(code, 0);

    // `events` prints the initial values, then each change, as JSON lines.
    let (child, first) = spawn(&["events", &url]).await;
    let event: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert!(
        event["param_id"].as_str().unwrap().starts_with("eParamID_"),
        "{event}"
    );
    drop(child);
}

/// A fresh folder for one test's files, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("helo-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn config_check_validates_without_starting_anything() {
    let dir = TempDir::new("config-check");
    let good = dir.file(
        "good.toml",
        "admin_listen = \"127.0.0.1:1\"\n[[encoder]]\nid = \"a\"\nurl = \"http://127.0.0.1:1\"\n[[encoder]]\nid = \"b\"\nurl = \"http://127.0.0.1:2\"\n",
    );
    let (code, out, err) = run(&["config", "check", &good]).await;
    assert_eq!((code, out.as_str()), (0, "ok: 2 encoders\n"), "{err}");

    // Five different mistakes, and a password typed where a variable name belongs.
    let bad = dir.file(
        "bad.toml",
        "admin_listn = \"127.0.0.1:9898\"\n[defaults]\ncheck_interval = \"30 parsecs\"\nmin_warm = 99\n[[encoder]]\nid = \"a\"\nurl = \"http://h\"\ncolour = \"red\"\npassword_env = \"hunter2 and more\"\n[[encoder]]\nid = \"a\"\nurl = \"http://i\"\n",
    );
    let (code, out, err) = run(&["config", "check", &bad]).await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(!out.contains("ok:"), "{out}");
    for (line, key) in [
        (1, "admin_listn"),
        (3, "defaults.check_interval"),
        (4, "defaults.min_warm"),
        (8, "encoder[0].colour"),
        (9, "encoder[0].password_env"),
        (11, "encoder[1].id"),
    ] {
        assert!(
            err.contains(&format!("line {line}: {key}: ")),
            "{key}: {err}"
        );
    }
    assert!(
        !err.contains("hunter2"),
        "a possible password was shown: {err}"
    );
    // `run` refuses the same file with the same report.
    let (run_code, run_out, run_err) = run(&["run", "--config", &bad]).await;
    assert_eq!(run_code, 2, "{run_err}");
    assert!(!run_out.contains("admin:"), "nothing may start: {run_out}");
    assert_eq!(run_err, err);

    let (code, _, err) = run(&["config", "check", &format!("{good}.missing")]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot read"), "{err}");
}

#[cfg(unix)]
#[tokio::test]
async fn config_check_refuses_a_readable_password_file_or_warns_when_allowed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("config-perms");
    let pw = dir.file("pw.txt", "file-secret\n");
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    let encoder = "[[encoder]]\nid = \"a\"\nurl = \"http://h\"\npassword_file = \"pw.txt\"\n";
    let strict = dir.file("strict.toml", encoder);
    let (code, out, err) = run(&["config", "check", &strict]).await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("line 4: encoder[0].password_file:") && err.contains("chmod 600"),
        "{err}"
    );
    let lenient = dir.file(
        "lenient.toml",
        &format!("allow_insecure_password_files = true\n{encoder}"),
    );
    let (code, out, err) = run(&["config", "check", &lenient]).await;
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("ok: 1 encoders"), "{out}");
    let warning = lines.next().unwrap_or_default();
    assert!(
        warning.starts_with("warning: line 5: encoder[0].password_file: ")
            && warning.contains("group or others"),
        "{out}"
    );
    assert!(!format!("{out}{err}").contains("file-secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_a_good_file_and_keeps_running_on_a_bad_one() {
    let device = sim(SimConfig::fast()).await;
    let dir = TempDir::new("sighup");
    let encoder = |id: &str| format!("[[encoder]]\nid = \"{id}\"\nurl = \"{}\"\n", device.url());
    let head = "admin_listen = \"127.0.0.1:0\"\n[defaults]\ncheck_interval = \"300ms\"\n";
    let path = dir.file("fleet.toml", &format!("{head}{}", encoder("first")));
    let (child, first) = spawn(&["run", "--config", &path]).await;
    let addr = admin_addr(&first);
    let hup = || async {
        let pid = child.id().unwrap().to_string();
        let status = Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    };
    let status_of = |id: &'static str| {
        let addr = addr.clone();
        async move { get(&addr, &format!("/api/encoders/{id}")).await.0 }
    };
    assert_eq!(status_of("first").await, 200);
    assert_eq!(status_of("second").await, 404);

    dir.file(
        "fleet.toml",
        &format!("{head}{}{}", encoder("first"), encoder("second")),
    );
    hup().await;
    let mut reloaded = false;
    for _ in 0..100 {
        if status_of("second").await == 200 {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reloaded, "SIGHUP added the second encoder");

    dir.file(
        "fleet.toml",
        &format!("{head}{}colour = \"red\"\n", encoder("first")),
    );
    hup().await;
    // The bad file changes nothing: both encoders stay, the process keeps serving.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(status_of("first").await, 200);
    assert_eq!(status_of("second").await, 200);
    assert_eq!(sigterm_and_wait(child).await, 0);
}

#[tokio::test]
async fn completions_and_the_man_page_come_from_the_clap_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = run(&["completions", shell]).await;
        assert_eq!(code, 0, "{err}");
        for sub in ["check", "stream", "events", "demo", "config"] {
            assert!(out.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    let (code, out, err) = run(&["man"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(".ie") || out.contains(".TH conn-supervisor 1"),
        "{out}"
    );
    assert!(out.contains("check") && out.contains("events"), "{out}");
    assert_eq!(run(&["completions", "cmd.exe"]).await.0, 2);
}

#[tokio::test]
async fn logs_to_a_pipe_are_plain_text_without_colour_codes() {
    // Warnings while retrying a closed port go to stderr, which is a pipe here.
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        Command::new(BIN)
            .args(["events", "http://127.0.0.1:1", "--connect-tries", "2"])
            .env("RUST_LOG", "warn")
            .env_remove("NO_COLOR")
            .output(),
    )
    .await
    .expect("finished in time")
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("WARN"), "{err}");
    assert!(!err.contains('\u{1b}'), "ANSI codes in piped logs: {err:?}");
}
