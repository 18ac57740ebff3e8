//! Every table is walked and every mistake reported, with its key and line.

use super::*;

/// The keys and lines of every issue, in the order reported.
fn keys_and_lines(err: &ConfigError) -> Vec<(&str, Option<usize>)> {
    err.issues
        .iter()
        .map(|i| (i.key.as_str(), i.line))
        .collect()
}

#[test]
fn five_different_mistakes_are_all_reported() {
    let text = r#"admin_listn = "127.0.0.1:9898"

[defaults]
check_interval = "30 parsecs"
min_warm = 99

[[encoder]]
id = "studio-a"
url = "http://10.0.0.21"
expect_stremaing = true

[[encoder]]
id = "studio-a"
url = "http://10.0.0.22"
"#;
    let err = parse(text).unwrap_err();
    assert_eq!(
        keys_and_lines(&err),
        [
            ("admin_listn", Some(1)),
            ("defaults.check_interval", Some(4)),
            ("defaults.min_warm", Some(5)),
            ("encoder[0].expect_stremaing", Some(10)),
            ("encoder[1].id", Some(13)),
        ],
        "{err}"
    );
    let messages: Vec<&str> = err.issues.iter().map(|i| i.message.as_str()).collect();
    assert!(
        messages[0].contains("did you mean \"admin_listen\""),
        "{err}"
    );
    assert!(messages[1].contains("unknown unit"), "{err}");
    assert!(messages[2].contains("out of range"), "{err}");
    assert!(
        messages[3].contains("did you mean \"expect_streaming\""),
        "{err}"
    );
    assert!(
        messages[4].contains("duplicate encoder id \"studio-a\" (first on line 8)"),
        "{err}"
    );
    let shown = err.to_string();
    assert_eq!(
        shown.lines().count(),
        6,
        "a heading and one line per mistake: {shown}"
    );
    assert!(
        shown.contains("line 10: encoder[0].expect_stremaing: unknown key"),
        "{shown}"
    );
}

#[test]
fn unknown_keys_are_found_in_every_table() {
    let text = r#"colour = "red"
[defaults]
flavour = 1
[cluster]
etcd = ["http://e:2379"]
name = "c"
node = "n"
shape = "round"
[[encoder]]
id = "a"
url = "h"
size = 3
[encoder.overrides]
check_intervall = "5s"
[[encoder]]
id = "b"
url = "h"
overrides = { weight = 2 }
"#;
    let err = parse(text).unwrap_err();
    assert_eq!(
        keys_and_lines(&err),
        [
            ("colour", Some(1)),
            ("defaults.flavour", Some(3)),
            ("cluster.shape", Some(8)),
            ("encoder[0].size", Some(12)),
            ("encoder[0].overrides.check_intervall", Some(14)),
            ("encoder[1].overrides.weight", Some(18)),
        ],
        "{err}"
    );
    assert!(
        err.issues
            .iter()
            .all(|i| i.message.starts_with("unknown key")),
        "{err}"
    );
}

#[test]
fn wrong_types_and_missing_keys_are_named() {
    let text = r#"allow_insecure_password_files = "yes"
[defaults]
min_warm = "3"
check_interval = true
load_high = "high"
[[encoder]]
url = 5
expect_streaming = 1
[[encoder]]
id = "b"
"#;
    let err = parse(text).unwrap_err();
    assert_eq!(
        keys_and_lines(&err),
        [
            ("allow_insecure_password_files", Some(1)),
            ("defaults.min_warm", Some(3)),
            ("defaults.check_interval", Some(4)),
            ("defaults.load_high", Some(5)),
            ("encoder[0].id", Some(6)),
            ("encoder[0].url", Some(7)),
            ("encoder[0].expect_streaming", Some(8)),
            ("encoder[1].url", Some(9)),
        ],
        "{err}"
    );
    let m = |key: &str| {
        err.issues
            .iter()
            .find(|i| i.key == key)
            .map(|i| i.message.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        m("defaults.min_warm"),
        "expected a whole number, found a string"
    );
    assert!(
        m("defaults.check_interval").starts_with("expected a duration"),
        "{err}"
    );
    assert_eq!(m("encoder[0].id"), "missing required key \"id\"");
    assert_eq!(
        m("encoder[0].expect_streaming"),
        "expected true or false, found an integer"
    );
}

#[test]
fn tables_may_be_inline_or_dotted() {
    let text = r#"defaults.check_interval = "7s"
encoder = [
  { id = "a", url = "http://h", overrides = { check_interval = "3s" } },
  { id = "b", url = "http://i" },
]
"#;
    let cfg = parse(text).unwrap();
    assert_eq!(cfg.defaults.check_interval, Duration::from_secs(7));
    assert_eq!(
        cfg.encoders[0].tunables.check_interval,
        Duration::from_secs(3)
    );
    assert_eq!(
        cfg.encoders[1].tunables.check_interval,
        Duration::from_secs(7)
    );
    check_err(
        "defaults = 3\n[[encoder]]\nid = \"a\"\nurl = \"h\"\n",
        "defaults",
        Some(1),
        "expected a table",
    );
    check_err(
        "encoder = \"a\"\n",
        "encoder",
        Some(1),
        "expected [[encoder]] tables",
    );
}

#[test]
fn a_syntax_error_is_one_issue_with_its_key_and_line() {
    check_err(
        "[defaults]\ncheck_interval = \"5s\"\n[[encoder]]\nid = \"a\"\nurl = http://h\n",
        "encoder[0].url",
        Some(5),
        "not valid TOML",
    );
    check_err(
        "[[encoder]]\nid = \"a\"\nid = \"b\"\n",
        "encoder[0].id",
        Some(3),
        "duplicate key",
    );
    let err = parse("[[encoder]\nid = \"a\"\n").unwrap_err();
    assert_eq!(err.issues.len(), 1, "{err}");
    assert_eq!(err.issues[0].line, Some(1), "{err}");
}

#[test]
fn a_mistake_in_defaults_is_reported_once_not_per_encoder() {
    let mut text = String::from("[defaults]\nhealthy_threshold = 50\n");
    for i in 0..3 {
        text.push_str(&format!(
            "[[encoder]]\nid = \"e{i}\"\nurl = \"h\"\n[encoder.overrides]\ncheck_interval = \"5s\"\n"
        ));
    }
    let err = parse(&text).unwrap_err();
    assert_eq!(
        keys_and_lines(&err),
        [("defaults.degraded_threshold", Some(2))],
        "{err}"
    );
}

#[test]
fn each_duplicate_id_points_at_the_first() {
    let enc = |id: &str| format!("[[encoder]]\nid = \"{id}\"\nurl = \"h\"\n");
    let text = [enc("a"), enc("b"), enc("a"), enc("a")].concat();
    let err = parse(&text).unwrap_err();
    assert_eq!(
        keys_and_lines(&err),
        [("encoder[2].id", Some(8)), ("encoder[3].id", Some(11))],
        "{err}"
    );
    assert!(
        err.issues
            .iter()
            .all(|i| i.message.ends_with("(first on line 2)")),
        "{err}"
    );
}
