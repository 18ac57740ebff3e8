//! `docs/api.md` documents the encoder JSON of the admin API field by field; this test
//! holds the running demo to it, both ways: every documented field is there with its
//! type, and nothing undocumented is.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::{collections::BTreeMap, time::Duration};

use common::{eventually, http, start_fleet};
use conn_supervisor::demo::{Demo, ROLES};
use serde_json::Value;

/// One documented field.
#[derive(Debug)]
struct Field {
    ty: String,
    nullable: bool,
    /// The backticked words of its meaning (the values an enumeration may take).
    words: Vec<String>,
}

fn documented() -> BTreeMap<String, Field> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md")).unwrap();
    let table = doc
        .split("<!-- api-fields:start -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- api-fields:end -->").next())
        .expect("the field table between its markers");
    let mut fields = BTreeMap::new();
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let path = cells[0].trim_matches('`').to_string();
        let (ty, nullable) = match cells[1].strip_suffix('?') {
            Some(t) => (t.to_string(), true),
            None => (cells[1].to_string(), false),
        };
        let words = cells[2]
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        assert!(
            fields
                .insert(
                    path.clone(),
                    Field {
                        ty,
                        nullable,
                        words
                    }
                )
                .is_none(),
            "{path} twice"
        );
    }
    fields
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every (path, value) of `v`, arrays as `[]`.
fn walk<'a>(prefix: &str, v: &'a Value, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.push((path.clone(), child));
                walk(&path, child, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(&format!("{prefix}[]"), item, out);
            }
        }
        _ => {}
    }
}

const ENUMERATIONS: [&str; 7] = [
    "status",
    "reasons[].code",
    "stream.phase",
    "record.phase",
    "events",
    "pool.state",
    "checks.last.checks[].outcome",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_encoder_json_is_what_docs_api_md_says() {
    let fields = documented();
    let demo = Demo::start_at_speed(ROLES.len(), "127.0.0.1:0".parse().unwrap(), 4.0)
        .await
        .unwrap();
    let (fleet, admin) = start_fleet(&demo.config).await;
    // Let the demo's first minute happen (15 s at 4×), so actions, failures and
    // reboots have filled the optional fields.
    let views: Vec<Value> = eventually(Duration::from_secs(20), "an action on record", || async {
        let (_, body) = http(admin, "GET", "/api/encoders").await;
        let views: Vec<Value> = serde_json::from_str(&body).ok()?;
        views
            .iter()
            .any(|v| !v["last_action"].is_null())
            .then_some(views)
    })
    .await;
    assert_eq!(views.len(), ROLES.len());
    let mut seen: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    for view in &views {
        let mut all = Vec::new();
        walk("", view, &mut all);
        for (path, value) in &all {
            let field = fields
                .get(path)
                .unwrap_or_else(|| panic!("{path} is in the JSON but not in docs/api.md"));
            let ty = type_of(value);
            seen.entry(path.clone()).or_default().push(ty);
            match ty {
                "null" => assert!(
                    field.nullable,
                    "{path} is null but documented as never null"
                ),
                "integer" if field.ty == "number" => {}
                _ => assert_eq!(ty, field.ty, "{path}: {value}"),
            }
            if ENUMERATIONS.contains(&path.as_str()) {
                let s = value.as_str().unwrap();
                assert!(
                    field.words.iter().any(|w| w == s),
                    "{path} = {s:?} is not documented"
                );
            }
        }
        // Documented fields are present wherever their parent is.
        for path in fields.keys().filter(|p| !p.contains("[]")) {
            let parent = path.rsplit_once('.').map(|(p, _)| p);
            let parent_there =
                parent.is_none_or(|p| all.iter().any(|(q, v)| q == p && v.is_object()));
            if parent_there {
                assert!(
                    all.iter().any(|(q, _)| q == path),
                    "{path} documented but missing in {}",
                    view["id"]
                );
            }
        }
    }
    // Every documented field showed up at least once in the demo, non-null where it can be.
    for (path, field) in &fields {
        let types = seen
            .get(path)
            .unwrap_or_else(|| panic!("{path} never appeared"));
        if !field.nullable {
            assert!(!types.contains(&"null"), "{path}");
        }
    }
    let (status, _) = http(admin, "GET", "/api/encoders/no-such-encoder").await;
    assert_eq!(status, 404);
    fleet.shutdown(Duration::from_secs(2)).await;
    demo.stop().await;
}
