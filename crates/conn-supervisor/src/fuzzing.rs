//! The body of the `config` fuzz target (`fuzz/fuzz_targets/config.rs`), here so that
//! the replay test (`tests/fuzz_regressions.rs`) runs the very same code on stable.

use std::collections::HashSet;

use toml_edit::{ImDocument, Item, TableLike, Value};

use crate::config::{ConfigError, FleetConfig, Reading, CLUSTER_NODE_ENV};

/// What every environment variable holds (but `HELO_CLUSTER_NODE` and names ending
/// in `_UNSET`): a secret that must never be shown. The snowman keeps the fuzzer from
/// assembling it out of key names.
const ENV_SECRET: &str = "env-s3cret-\u{2603}";

/// Keys whose value names a file the parser would open.
const FILE_KEYS: &[&str] = &[
    "admin_token_file",
    "admin_tls_cert",
    "admin_tls_key",
    "password_file",
];

/// Parses `data` as a fleet configuration file, without I/O, and checks what the
/// parser promises: a configuration it accepts has encoders with unique, valid ids;
/// one it refuses says why, with lines inside the file, in file order, one line per
/// mistake; neither shows a password or a secret from the environment. And the file
/// read one encoder's table at a time gives exactly what the whole document gives.
///
/// Inputs that are not UTF-8 are skipped (reading the file refuses them first), and
/// so are inputs that name a secret or TLS file: `FleetConfig::parse` would open it.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if names_a_file(text) {
        return;
    }
    let env = |var: &str| match var {
        CLUSTER_NODE_ENV => None,
        v if v.ends_with("_UNSET") => None,
        _ => Some(ENV_SECRET.to_string()),
    };
    let result = parse_both_ways("fuzz.toml", text, &env, None);
    let last_line = text.bytes().filter(|&b| b == b'\n').count() + 1;
    let mut secrets = vec![ENV_SECRET.to_string()];
    secrets.extend(file_passwords(text));
    let (shown, issues) = match &result {
        Ok(config) => {
            accepted(config);
            (format!("{config:?}"), &config.warnings)
        }
        Err(e) => {
            assert!(!e.issues.is_empty(), "refused without a reason");
            (refused(e), &e.issues)
        }
    };
    for issue in issues {
        if let Some(line) = issue.line {
            assert!(
                (1..=last_line).contains(&line),
                "line {line} of {last_line}: {issue}"
            );
        }
        let one_line = issue.to_string();
        assert!(
            !one_line.contains(['\n', '\r']),
            "an issue spans lines: {one_line:?}"
        );
    }
    let in_order = issues
        .windows(2)
        .all(|w| w[0].line.unwrap_or(usize::MAX) <= w[1].line.unwrap_or(usize::MAX));
    assert!(in_order, "issues out of file order: {issues:?}");
    for secret in secrets {
        // Only a secret the file does not also hold elsewhere can be traced.
        if text.matches(secret.as_str()).count() <= 1 {
            assert!(!shown.contains(&secret), "{secret:?} shown: {shown}");
        }
    }
}

/// `FleetConfig::parse`, after checking that it answers exactly what the whole
/// document's reading answers (the configuration tests use it too).
pub(crate) fn parse_both_ways(
    source_name: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    base: Option<&std::path::Path>,
) -> Result<FleetConfig, ConfigError> {
    let pieces = FleetConfig::parse(source_name, text, env, base);
    let whole = FleetConfig::parse_as(Reading::Whole, source_name, text, env, base);
    match (&pieces, &whole) {
        (Ok(p), Ok(w)) => assert_eq!(format!("{p:?}"), format!("{w:?}")),
        (Err(p), Err(w)) => assert_eq!(p, w),
        _ => panic!("read in pieces: {pieces:?}\nread whole: {whole:?}"),
    }
    pieces
}

fn accepted(config: &FleetConfig) {
    assert!(!config.encoders.is_empty(), "accepted without encoders");
    let mut ids = HashSet::new();
    for enc in &config.encoders {
        assert!(ids.insert(enc.id.as_str()), "duplicate id {:?}", enc.id);
        assert!(
            (1..=64).contains(&enc.id.len())
                && enc
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
            "invalid id {:?}",
            enc.id
        );
        assert_eq!(enc.device.name().as_str(), enc.id);
    }
}

fn refused(e: &ConfigError) -> String {
    let shown = e.to_string();
    let lines = shown.lines().count();
    assert_eq!(lines, 1 + e.issues.len(), "{shown}");
    shown
}

/// Whether any table of the document (at any depth) has a key that names a file.
fn names_a_file(text: &str) -> bool {
    let Ok(doc) = ImDocument::parse(text) else {
        return false;
    };
    let mut tables: Vec<&dyn TableLike> = vec![doc.as_table()];
    let mut values: Vec<&Value> = Vec::new();
    loop {
        if let Some(table) = tables.pop() {
            for (key, item) in table.iter() {
                if FILE_KEYS.contains(&key) {
                    return true;
                }
                match item {
                    Item::Table(t) => tables.push(t),
                    Item::ArrayOfTables(a) => tables.extend(a.iter().map(|t| t as &dyn TableLike)),
                    Item::Value(v) => values.push(v),
                    Item::None => {}
                }
            }
        } else if let Some(value) = values.pop() {
            match value {
                Value::InlineTable(t) => tables.push(t),
                Value::Array(a) => values.extend(a.iter()),
                _ => {}
            }
        } else {
            return false;
        }
    }
}

/// The passwords written as `password = "…"` (a plain basic string), read from the
/// text itself so that a file that is not TOML is covered too. Only those that can be
/// traced: with a character no message of the parser writes by itself (non-ASCII, but
/// `…` and `–`), so that a password equal to, say, a key name the parser lists is not
/// taken for a leak.
fn file_passwords(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let rest = l.trim_start().strip_prefix("password")?.trim_start();
            let rest = rest.strip_prefix('=')?.trim_start().strip_prefix('"')?;
            let value = &rest[..rest.find('"')?];
            let traceable = value.len() >= 8
                && !value.contains('\\')
                && value.chars().any(|c| !c.is_ascii() && c != '…' && c != '–');
            traceable.then(|| value.to_string())
        })
        .collect()
}
