use std::time::Duration;

use super::*;

fn parse(text: &str) -> Result<FleetConfig, ConfigError> {
    let env = |var: &str| (var == "HELO_PW").then(|| "from-env".to_string());
    FleetConfig::parse("fleet.toml", text, &env, None)
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
    assert_eq!(cfg.encoders[0].tunables, Tunables::default());
}

#[test]
fn mistakes_name_the_key_and_line() {
    check_err(
        "[[encoder]]\nid = \"a\"\nurl = \"http://h\"\ncolour = \"red\"\n",
        "colour",
        Some(4),
        "unknown field",
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
    check_err("[[encoder]]\nid = \"a\"\n", "url", Some(1), "missing field");
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
    let dir = std::env::temp_dir().join(format!("helo-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pw.txt"), "file-secret\n").unwrap();
    let text = "[[encoder]]\nid = \"a\"\nurl = \"h\"\npassword_file = \"pw.txt\"\n";
    let cfg = FleetConfig::parse("fleet.toml", text, &|_| None, Some(&dir)).unwrap();
    assert_eq!(
        cfg.encoders[0].device.password().map(|p| p.expose()),
        Some("file-secret")
    );
    let missing = "[[encoder]]\nid = \"a\"\nurl = \"h\"\npassword_file = \"nope.txt\"\n";
    let err = FleetConfig::parse("fleet.toml", missing, &|_| None, Some(&dir)).unwrap_err();
    assert!(err.to_string().contains("cannot read"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_example_file_in_the_repository_is_valid() {
    let text = include_str!("../../../../fleet.example.toml");
    let env = |var: &str| (var == "HELO_COUNCIL_PASSWORD").then(|| "x".to_string());
    let cfg = FleetConfig::parse("fleet.example.toml", text, &env, None).unwrap();
    assert_eq!(cfg.encoders.len(), 2);
    assert_eq!(
        cfg.defaults,
        Tunables::default(),
        "the example documents the defaults"
    );
    assert_eq!(
        cfg.encoders[1].tunables.check_interval,
        Duration::from_secs(10)
    );
}
