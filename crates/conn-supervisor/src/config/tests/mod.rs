//! The configuration as a whole; `tables` (every table walked, every mistake
//! reported), `secrets` (passwords and the admin token), `cluster`, `scale` (linear
//! validation) and `pieces` (a large file read one encoder at a time) hold the rest.

mod cluster;
mod pieces;
mod scale;
mod secrets;
mod tables;

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use super::*;

/// A fresh folder under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "helo-cfg-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `name` with `text` and the Unix permission bits `mode`.
    fn file(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        set_mode(&path, mode);
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) {}

/// Parses with `HELO_PW` set in the environment and files under `base`.
fn parse_in(text: &str, base: &Path) -> Result<FleetConfig, ConfigError> {
    parse_both(text, Some(base))
}

fn parse(text: &str) -> Result<FleetConfig, ConfigError> {
    parse_both(text, None)
}

/// `FleetConfig::parse`, checked against the whole document's reading: every test of
/// the configuration is also a test that reading in pieces changes nothing.
fn parse_both(text: &str, base: Option<&Path>) -> Result<FleetConfig, ConfigError> {
    let env = |var: &str| (var == "HELO_PW").then(|| "from-env".to_string());
    crate::fuzzing::parse_both_ways("fleet.toml", text, &env, base)
}

/// Asserts that `text` fails with one issue naming `key` on `line` with `fragment`.
fn check_err(text: &str, key: &str, line: Option<usize>, fragment: &str) {
    let err = match parse(text) {
        Ok(c) => panic!("expected an error for {key}, got {c:?}"),
        Err(e) => e,
    };
    let issue = err
        .issues
        .iter()
        .find(|i| i.key == key)
        .unwrap_or_else(|| panic!("no issue for {key}: {err}"));
    assert_eq!(issue.line, line, "{err}");
    assert!(issue.message.contains(fragment), "{err}");
    assert!(err.to_string().contains(key), "{err}");
}

const GOOD: &str = r#"
admin_listen = "127.0.0.1:9999"

[defaults]
check_interval = "10s"
temperature_high = 85

[[encoder]]
id = "studio-a"
url = "http://10.0.0.21"
password = "inline-secret"
expect_streaming = true

[[encoder]]
id = "studio-b"
url = "10.0.0.22:8080"
password_env = "HELO_PW"
[encoder.overrides]
check_interval = "2s"
recovery_backoff = 30
"#;

#[test]
fn a_good_file_resolves_defaults_and_overrides() {
    let cfg = parse(GOOD).unwrap();
    assert_eq!(cfg.admin_listen.to_string(), "127.0.0.1:9999");
    assert_eq!(cfg.encoders.len(), 2);
    let a = &cfg.encoders[0];
    assert_eq!(a.id, "studio-a");
    assert!(a.expect_streaming && !a.expect_recording);
    assert_eq!(a.tunables.check_interval, Duration::from_secs(10));
    assert_eq!(a.tunables.temperature_high, 85.0);
    assert_eq!(
        a.device.password().map(|p| p.expose()),
        Some("inline-secret")
    );
    let b = &cfg.encoders[1];
    assert_eq!(b.tunables.check_interval, Duration::from_secs(2));
    assert_eq!(b.tunables.recovery_backoff, Duration::from_secs(30));
    assert_eq!(
        b.tunables.temperature_high, 85.0,
        "fleet default still applies"
    );
    assert_eq!(b.device.port(), 8080);
    assert_eq!(b.device.password().map(|p| p.expose()), Some("from-env"));
}

#[test]
fn the_request_budget_and_login_lockout_reach_the_device() {
    let cfg = parse(
        "[defaults]\nrequest_budget = 120\nlogin_lockout = \"30s\"\n\
         [[encoder]]\nid = \"a\"\nurl = \"http://h\"\n\
         [[encoder]]\nid = \"b\"\nurl = \"http://h2\"\n\
         [encoder.overrides]\nrequest_budget_burst = 5\nlogin_lockout = \"1h\"\n",
    )
    .unwrap();
    let a = &cfg.encoders[0].device;
    assert_eq!(a.request_budget().per_minute, 120);
    assert_eq!(
        a.request_budget().burst,
        helo_transport::DEFAULT_REQUEST_BUDGET_BURST
    );
    assert_eq!(a.login_lockout(), Duration::from_secs(30));
    let b = &cfg.encoders[1].device;
    assert_eq!(b.request_budget().per_minute, 120);
    assert_eq!(b.request_budget().burst, 5);
    assert_eq!(b.login_lockout(), Duration::from_secs(3600));
    // The pool waits as long as every other login source.
    let pool = crate::settings::pool(&cfg.encoders[1].tunables);
    assert_eq!(pool.auth_failed_backoff, Duration::from_secs(3600));
    check_err(
        "[defaults]\nrequest_budget = 0\n[[encoder]]\nid = \"a\"\nurl = \"http://h\"\n",
        "defaults.request_budget",
        Some(2),
        "",
    );
}

#[test]
fn passwords_never_reach_debug_output() {
    let cfg = parse(GOOD).unwrap();
    let dbg = format!("{cfg:?}");
    assert!(
        !dbg.contains("inline-secret") && !dbg.contains("from-env"),
        "{dbg}"
    );
}

#[test]
fn default_admin_address_is_loopback() {
    let cfg = parse("[[encoder]]\nid = \"a\"\nurl = \"http://h\"\n").unwrap();
    assert_eq!(cfg.admin_listen.to_string(), DEFAULT_ADMIN_LISTEN);
    assert_eq!(*cfg.encoders[0].tunables, Tunables::default());
}

#[test]
fn per_encoder_histograms_are_off_unless_the_metrics_table_asks() {
    let enc = "[[encoder]]\nid = \"a\"\nurl = \"http://h\"\n";
    assert!(!parse(enc).unwrap().metrics.per_encoder_histograms);
    let on = format!("[metrics]\nper_encoder_histograms = true\n{enc}");
    assert!(parse(&on).unwrap().metrics.per_encoder_histograms);
    check_err(
        &format!("[metrics]\nper_encoder_histograms = \"yes\"\n{enc}"),
        "metrics.per_encoder_histograms",
        Some(2),
        "",
    );
    check_err(
        &format!("[metrics]\nper_connection = true\n{enc}"),
        "metrics.per_connection",
        Some(2),
        "unknown key",
    );
}

#[test]
fn mistakes_name_the_key_and_line() {
    check_err(
        "[[encoder]]\nid = \"a\"\nurl = \"http://h\"\ncolour = \"red\"\n",
        "encoder[0].colour",
        Some(4),
        "unknown key \"colour\"",
    );
    check_err(
        "[[encoder]]\nid = \"a\"\nurl = \"http://h\"\n[[encoder]]\nid = \"a\"\nurl = \"http://i\"\n",
        "encoder[1].id",
        Some(5),
        "duplicate encoder id",
    );
    check_err(
        "[[encoder]]\nid = \"a\"\nurl = \"https://h\"\n",
        "encoder[0].url",
        Some(3),
        "plain http",
    );
    check_err(
        "[defaults]\ntemperature_high = 150\n[[encoder]]\nid = \"a\"\nurl = \"http://h\"\n",
        "defaults.temperature_high",
        Some(2),
        "out of range",
    );
    check_err(
        "[defaults]\ncooling_period = \"5 fortnights\"\n[[encoder]]\nid = \"a\"\nurl = \"h\"\n",
        "defaults.cooling_period",
        Some(2),
        "unknown unit",
    );
    check_err(
        "[[encoder]]\nid = \"a\"\nurl = \"h\"\npassword_env = \"NOPE\"\n",
        "encoder[0].password_env",
        Some(4),
        "NOPE is not set",
    );
    check_err(
        "[[encoder]]\nid = \"a\"\nurl = \"h\"\npassword = \"x\"\npassword_env = \"HELO_PW\"\n",
        "encoder[0].password_env",
        Some(5),
        "at most one",
    );
    check_err(
        "[[encoder]]\nid = \"a b\"\nurl = \"h\"\n",
        "encoder[0].id",
        Some(2),
        "letters, digits",
    );
    check_err(
        "admin_listen = \"nowhere\"\n[[encoder]]\nid = \"a\"\nurl = \"h\"\n",
        "admin_listen",
        Some(1),
        "not an address",
    );
    check_err("", "encoder", None, "nothing to supervise");
    check_err(
        "[[encoder]]\nid = \"a\"\nurl = \"h\"\n[encoder.overrides]\ncheck_interval = \"5s\"\nmin_warm = 2\n",
        "encoder[0].overrides.min_warm",
        Some(6),
        "whole fleet",
    );
    check_err(
        "[[encoder]]\nid = \"a\"\n",
        "encoder[0].url",
        Some(1),
        "missing required key \"url\"",
    );
    check_err(
        "[defaults]\nmin_warm = 8\nmax_connections = 4\n[[encoder]]\nid = \"a\"\nurl = \"h\"\n",
        "defaults.max_connections",
        Some(3),
        "below min_warm",
    );
}

#[test]
fn every_mistake_is_reported_at_once() {
    let err = parse(
        "[defaults]\nload_high = -1\n[[encoder]]\nid = \"a\"\nurl = \"ftp://h\"\n[[encoder]]\nid = \"\"\nurl = \"h\"\n",
    )
    .unwrap_err();
    let keys: Vec<&str> = err.issues.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(
        keys,
        ["defaults.load_high", "encoder[0].url", "encoder[1].id"],
        "{err}"
    );
}

#[test]
fn password_files_are_read_relative_to_the_config() {
    let dir = TempDir::new();
    dir.file("pw.txt", "file-secret\n", 0o600);
    let text = "[[encoder]]\nid = \"a\"\nurl = \"h\"\npassword_file = \"pw.txt\"\n";
    let cfg = parse_in(text, dir.path()).unwrap();
    assert_eq!(
        cfg.encoders[0].device.password().map(|p| p.expose()),
        Some("file-secret")
    );
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    let missing = "[[encoder]]\nid = \"a\"\nurl = \"h\"\npassword_file = \"nope.txt\"\n";
    let err = parse_in(missing, dir.path()).unwrap_err();
    assert!(err.to_string().contains("cannot read"), "{err}");
}

#[test]
fn the_example_file_in_the_repository_is_valid() {
    let text = include_str!("../../../../../fleet.example.toml");
    let env = |var: &str| (var == "HELO_COUNCIL_PASSWORD").then(|| "x".to_string());
    let cfg = FleetConfig::parse("fleet.example.toml", text, &env, None).unwrap();
    assert_eq!(cfg.encoders.len(), 2);
    assert_eq!(
        cfg.defaults,
        Tunables::default(),
        "the example documents the defaults"
    );
    assert_eq!(
        (cfg.admin.max_connections, cfg.admin.auth_reads),
        (DEFAULT_ADMIN_MAX_CONNECTIONS, false),
        "the example documents the admin defaults"
    );
    assert_eq!(
        cfg.encoders[1].tunables.check_interval,
        Duration::from_secs(10)
    );
}

#[test]
fn the_commented_out_keys_of_the_example_are_valid_too() {
    let dir = TempDir::new();
    for (name, mode) in [
        ("secrets/admin.token", 0o600),
        ("tls/admin.crt", 0o644),
        ("tls/admin.key", 0o600),
    ] {
        std::fs::create_dir_all(dir.path().join(name).parent().unwrap()).unwrap();
        dir.file(name, "x\n", mode);
    }
    let text = include_str!("../../../../../fleet.example.toml");
    // Uncomment every `# key = value` line and every `# [table]` header, except the
    // alternative spelled next to the one in use (admin_token_env).
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest)
                if !rest.starts_with("admin_token_env")
                    && (rest.starts_with('[')
                        || rest.split_once(" = ").is_some_and(|(k, _)| {
                            k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                        })) =>
            {
                format!("{rest}\n")
            }
            _ => format!("{l}\n"),
        })
        .collect();
    let env = |var: &str| (var == "HELO_COUNCIL_PASSWORD").then(|| "x".to_string());
    let cfg = FleetConfig::parse("example", &uncommented, &env, Some(dir.path()))
        .unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
    assert!(cfg.admin.token.is_some() && cfg.admin.tls.is_some());
    let cluster = cfg.cluster.expect("the cluster table");
    assert_eq!(
        (cluster.name.as_str(), cluster.node.as_str()),
        ("studios", "node-1")
    );
    assert_eq!(
        cluster.lease_ttl, DEFAULT_LEASE_TTL,
        "the example documents the default"
    );
    assert_eq!(cfg.defaults.overheat_profile, Some(2));
    assert!(cfg.encoders[0].hold);
}
