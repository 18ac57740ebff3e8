//! Reading what `deploy/` ships (the Grafana dashboard, the alert rules) for the tests
//! in `deploy.rs` and `prometheus.rs`: the queries, the metric names and selectors they
//! use, and the metric catalog they may use.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use serde::Deserialize;
use serde_json::Value;

/// The workspace root (the root package is the workspace's top-level manifest).
pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn deploy_path(rel: &str) -> PathBuf {
    root().join("deploy").join(rel)
}

/// Where `name` is on `PATH`, if it is installed.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Metric families the supervisor exports today (histograms by their base name).
pub(crate) const EXPORTED_METRICS: &[&str] = &[
    "helo_encoder_up",
    "helo_stream_state",
    "helo_record_state",
    "helo_device_temperature_celsius",
    "helo_recovery_actions_total",
    "helo_connection_health",
    "helo_connection_temperature",
    "helo_connection_load",
    "helo_cooling_events_total",
    "helo_cooling_duration_seconds",
    "helo_requests_total",
    "helo_request_duration_seconds",
    "helo_health_checks_total",
    "helo_health_check_duration_seconds",
    "helo_health_check_lateness_seconds",
    "helo_warm_connections",
    "helo_warmup_attempts_total",
    "helo_warmup_success_total",
    "helo_warmup_duration_seconds",
];

/// Metric families of issue 13 being added to the supervisor concurrently.
pub(crate) const NEW_METRICS: &[&str] = &[
    "helo_encoder_status",
    "helo_encoder_health_score",
    "helo_encoder_in_desired_state",
    "helo_device_media_available_percent",
    "helo_request_budget_refused_total",
];

/// Exported only when several supervisors form a cluster.
pub(crate) const CLUSTER_METRICS: &[&str] = &[
    "helo_cluster_members",
    "helo_cluster_owned_encoders",
    "helo_cluster_ownership_changes_total",
    "helo_cluster_store_up",
    "helo_cluster_acting",
];

/// Series Prometheus itself writes for every scrape target.
pub(crate) const SCRAPE_METRICS: &[&str] =
    &["up", "scrape_duration_seconds", "scrape_samples_scraped"];

/// Families without an `encoder_id` label: the supervisor as a whole, the cluster, and
/// Prometheus' own series about the scrape.
pub(crate) fn is_fleet_wide(family: &str) -> bool {
    family == "helo_health_check_lateness_seconds"
        || CLUSTER_METRICS.contains(&family)
        || SCRAPE_METRICS.contains(&family)
}

/// Duration histograms: kept once for the fleet (no `encoder_id`) by default, per
/// encoder with `[metrics] per_encoder_histograms = true`. Dashboard queries select
/// them with `encoder_id=~"$encoder|"`, which reads both (the empty value is the
/// fleet's series).
pub(crate) const FLEET_DURATIONS: &[&str] = &[
    "helo_request_duration_seconds",
    "helo_health_check_duration_seconds",
    "helo_warmup_duration_seconds",
    "helo_cooling_duration_seconds",
];

/// The family a series name belongs to: `_bucket`, `_sum` and `_count` of a histogram
/// name its base.
pub(crate) fn family(series: &str) -> &str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = series.strip_suffix(suffix) {
            if EXPORTED_METRICS.contains(&base) {
                return base;
            }
        }
    }
    series
}

pub(crate) fn is_known_family(family: &str) -> bool {
    EXPORTED_METRICS.contains(&family)
        || NEW_METRICS.contains(&family)
        || CLUSTER_METRICS.contains(&family)
        || SCRAPE_METRICS.contains(&family)
}

// === The dashboard ===

pub(crate) fn dashboard() -> Value {
    let path = deploy_path("grafana/helo-fleet.json");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

/// Every panel, rows' nested panels included (a collapsed row holds its own).
pub(crate) fn all_panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for p in panels.as_array().into_iter().flatten() {
            out.push(p);
            if let Some(nested) = p.get("panels") {
                walk(nested, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// One target of one panel.
#[derive(Debug, Clone)]
pub(crate) struct DashboardQuery {
    pub(crate) panel: String,
    pub(crate) ref_id: String,
    pub(crate) expr: String,
}

impl DashboardQuery {
    pub(crate) fn name(&self) -> String {
        format!("panel {:?} target {}", self.panel, self.ref_id)
    }
}

pub(crate) fn dashboard_queries(dashboard: &Value) -> Vec<DashboardQuery> {
    all_panels(dashboard)
        .into_iter()
        .filter(|p| p["type"] != "row")
        .flat_map(|p| {
            let panel = p["title"].as_str().unwrap_or("?").to_string();
            p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |t| DashboardQuery {
                    panel: panel.clone(),
                    ref_id: t["refId"].as_str().unwrap_or("?").to_string(),
                    expr: t["expr"].as_str().unwrap_or("").to_string(),
                })
        })
        .collect()
}

/// Replaces Grafana's variables the way Grafana would for "All" encoders and a short
/// time range, so the expression is plain PromQL.
pub(crate) fn substitute(expr: &str) -> String {
    expr.replace("${encoder}", ".*")
        .replace("$encoder", ".*")
        .replace("$__rate_interval", "30s")
        .replace("$__interval", "5s")
        .replace("$__range", "5m")
}

// === The alert rules ===

#[derive(Debug, Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

/// One group of a rule file.
#[derive(Debug, Deserialize)]
pub(crate) struct RuleGroup {
    pub(crate) name: String,
    pub(crate) rules: Vec<Rule>,
}

/// One alerting rule, as written.
#[derive(Debug, Deserialize)]
pub(crate) struct Rule {
    pub(crate) alert: Option<String>,
    pub(crate) record: Option<String>,
    pub(crate) expr: String,
    #[serde(rename = "for")]
    pub(crate) for_: Option<String>,
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) annotations: BTreeMap<String, String>,
}

pub(crate) fn rule_groups(path: &Path) -> Vec<RuleGroup> {
    let text = std::fs::read_to_string(path).unwrap();
    let file: RuleFile = serde_yaml::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not a rule file: {e}", path.display()));
    file.groups
}

/// The alerting rules of `deploy/prometheus/helo-alerts.yml`.
pub(crate) fn alert_rules() -> Vec<Rule> {
    rule_groups(&deploy_path("prometheus/helo-alerts.yml"))
        .into_iter()
        .flat_map(|g| g.rules)
        .filter(|r| r.alert.is_some())
        .collect()
}

// === PromQL, just enough of it ===

/// A vector selector: the series name and the text between its braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selector {
    pub(crate) name: String,
    pub(crate) matchers: String,
}

const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];

/// Label lists follow these: `by (le, operation)` names labels, not series.
const LABEL_LIST_KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The vector selectors of a PromQL expression, in order: every identifier that is not
/// a function, an aggregation, a keyword, a label list, a number or a duration.
pub(crate) fn selectors(expr: &str) -> Vec<Selector> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_ws = |mut j: usize| {
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        j
    };
    // The index just past the closing `close` of the group opening at `i`, skipping
    // strings inside it.
    let group_end = |mut j: usize, open: char, close: char| {
        let mut depth = 0;
        while j < chars.len() {
            match chars[j] {
                '"' | '\'' | '`' => j = string_end(&chars, j),
                c if c == open => depth += 1,
                c if c == close => {
                    depth -= 1;
                    if depth == 0 {
                        return j + 1;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        j
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = string_end(&chars, i) + 1;
        } else if c == '[' {
            i = group_end(i, '[', ']');
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = skip_ws(i);
            if LABEL_LIST_KEYWORDS.contains(&word.as_str()) {
                if chars.get(next) == Some(&'(') {
                    i = group_end(next, '(', ')');
                }
            } else if KEYWORDS.contains(&word.as_str()) || chars.get(next) == Some(&'(') {
                // A keyword, or a function/aggregation call.
            } else if chars.get(next) == Some(&'{') {
                let end = group_end(next, '{', '}');
                out.push(Selector {
                    name: word,
                    matchers: chars[next + 1..end.saturating_sub(1)].iter().collect(),
                });
                i = end;
            } else {
                out.push(Selector {
                    name: word,
                    matchers: String::new(),
                });
            }
        } else if c == '{' {
            // A selector without a name (`{__name__=~"..."}`); the dashboard uses none.
            let end = group_end(i, '{', '}');
            out.push(Selector {
                name: String::new(),
                matchers: chars[i + 1..end.saturating_sub(1)].iter().collect(),
            });
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

fn string_end(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut j = start + 1;
    while j < chars.len() && chars[j] != quote {
        if chars[j] == '\\' && quote != '`' {
            j += 1;
        }
        j += 1;
    }
    j
}

/// The series names an expression reads.
pub(crate) fn metric_names(expr: &str) -> BTreeSet<String> {
    selectors(expr).into_iter().map(|s| s.name).collect()
}

/// A directory under the system temp dir, removed when dropped.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(what: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "helo-{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a tool to the end; answers whether it succeeded and what it printed.
pub(crate) fn run_tool(program: &Path, args: &[&std::ffi::OsStr]) -> (bool, String, String) {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
