//! What operators install from `deploy/`: the Grafana dashboard, the Prometheus alert
//! rules with their promtool unit tests and example scrape config, and the systemd unit.
//! Checked by the real tools (`promtool`, `systemd-analyze`) where they are installed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/deploy_files.rs"]
mod deploy_files;

use std::{collections::BTreeMap, ffi::OsStr, path::Path};

use deploy_files::*;
use serde::Deserialize;

// === The dashboard ===

#[test]
fn the_dashboard_is_importable_and_every_panel_queries_through_the_datasource_variable() {
    let dash = dashboard();
    assert!(
        dash["uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty() && u.len() <= 40),
        "a uid Grafana accepts"
    );
    assert!(dash["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(
        dash["id"].is_null(),
        "an exported dashboard carries no database id"
    );
    assert!(
        dash["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "a schemaVersion of a current Grafana"
    );

    // Import asks for a Prometheus data source; everything else goes through the variable.
    let inputs = dash["__inputs"].as_array().expect("__inputs");
    assert!(
        inputs
            .iter()
            .any(|i| i["type"] == "datasource" && i["pluginId"] == "prometheus"),
        "{inputs:?}"
    );
    let requires = dash["__requires"].as_array().expect("__requires");
    for (kind, id) in [("grafana", "grafana"), ("datasource", "prometheus")] {
        assert!(
            requires.iter().any(|r| r["type"] == kind && r["id"] == id),
            "__requires {kind} {id}"
        );
    }

    let vars = dash["templating"]["list"].as_array().expect("variables");
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("variable {name}"))
    };
    let ds = var("datasource");
    assert_eq!(
        (&ds["type"], &ds["query"]),
        (&"datasource".into(), &"prometheus".into())
    );
    let enc = var("encoder");
    assert_eq!(enc["type"], "query");
    let query = enc["query"]
        .as_str()
        .or_else(|| enc["query"]["query"].as_str())
        .unwrap_or("");
    assert_eq!(query, "label_values(helo_encoder_up, encoder_id)");
    assert_eq!(
        (&enc["multi"], &enc["includeAll"]),
        (&true.into(), &true.into())
    );
    assert_eq!(enc["datasource"]["uid"], "${datasource}");

    let panels = all_panels(&dash);
    let mut ids = std::collections::BTreeSet::new();
    let mut with_targets = 0;
    for p in &panels {
        let title = p["title"].as_str().unwrap_or("?");
        assert!(
            ids.insert(p["id"].as_u64().expect("panel id")),
            "duplicate id: {title}"
        );
        for key in ["h", "w", "x", "y"] {
            assert!(p["gridPos"][key].is_u64(), "{title}: gridPos.{key}");
        }
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(
            p["datasource"]["uid"], "${datasource}",
            "{title}: panel datasource"
        );
        let targets = p["targets"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        assert!(!targets.is_empty(), "{title}: no targets");
        for t in targets {
            assert_eq!(
                t["datasource"]["uid"], "${datasource}",
                "{title}: target datasource"
            );
            assert!(
                t["expr"].as_str().is_some_and(|e| !e.trim().is_empty()),
                "{title}: target without expr"
            );
            assert!(t["refId"].is_string(), "{title}: target without refId");
        }
        with_targets += 1;
    }
    assert!(with_targets >= 20, "only {with_targets} panels");
    // No data source is named anywhere but through the variable (or the import input).
    let text = std::fs::read_to_string(deploy_path("grafana/helo-fleet.json")).unwrap();
    for line in text.lines().filter(|l| l.contains("\"uid\"")) {
        assert!(
            line.contains("${datasource}")
                || line.contains("-- Grafana --")
                || line.contains("\"uid\": \"helo-fleet\""),
            "a hard-coded data source: {line}"
        );
    }
}

#[test]
fn the_dashboard_has_the_panels_an_operator_looks_for() {
    let queries = dashboard_queries(&dashboard());
    let has = |needle: &str| queries.iter().any(|q| q.expr.contains(needle));
    for needle in [
        r#"count by (status) (helo_encoder_status{encoder_id=~"$encoder"} == 1)"#,
        r#"count(helo_stream_state{encoder_id=~"$encoder"} == 2)"#,
        "helo_encoder_in_desired_state{",
        r#"status="unreachable""#,
        "helo_encoder_health_score{",
        "helo_device_temperature_celsius{",
        "helo_cooling_events_total{",
        "helo_recovery_actions_total{",
        "histogram_quantile(0.5, sum by (le, operation) (rate(helo_request_duration_seconds_bucket",
        "histogram_quantile(0.95, sum by (le, operation) (rate(helo_request_duration_seconds_bucket",
        r#"outcome!~"ok|unsupported|rejected""#,
        "helo_warm_connections{",
        r#"scrape_duration_seconds{job="helo-supervisor"}"#,
        "helo_health_check_lateness_seconds_bucket",
    ] {
        assert!(has(needle), "no panel queries {needle}");
    }
}

#[test]
fn every_dashboard_query_reads_known_metrics_and_filters_per_encoder_series_by_the_variable() {
    for q in dashboard_queries(&dashboard()) {
        let sels = selectors(&q.expr);
        assert!(
            !sels.is_empty(),
            "{}: reads no series: {}",
            q.name(),
            q.expr
        );
        for s in sels {
            let fam = family(&s.name);
            assert!(
                is_known_family(fam),
                "{}: unknown metric {}",
                q.name(),
                s.name
            );
            if FLEET_DURATIONS.contains(&fam) {
                assert!(
                    s.matchers.contains(r#"encoder_id=~"$encoder|""#),
                    "{}: {} is fleet-wide by default and per encoder on request: \
                     select it with encoder_id=~\"$encoder|\": {}",
                    q.name(),
                    s.name,
                    q.expr
                );
            } else if !is_fleet_wide(fam) {
                assert!(
                    s.matchers.contains(r#"encoder_id=~"$encoder""#),
                    "{}: {} is not filtered by $encoder: {}",
                    q.name(),
                    s.name,
                    q.expr
                );
            }
            if SCRAPE_METRICS.contains(&fam) {
                assert!(
                    s.matchers.contains(r#"job="helo-supervisor""#),
                    "{}: {} of every job",
                    q.name(),
                    s.name
                );
            }
        }
    }
}

#[test]
fn every_dashboard_query_parses_with_promtool() {
    let Some(promtool) = which("promtool") else {
        eprintln!("skipped: promtool is not installed (Debian package prometheus)");
        return;
    };
    // promtool parses the expression of every recording rule: one rule per target.
    let queries = dashboard_queries(&dashboard());
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, q) in queries.iter().enumerate() {
        let expr = serde_json::to_string(&substitute(&q.expr)).unwrap();
        rules.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {expr}\n"
        ));
    }
    let dir = TempDir::new("dashboard-rules");
    let file = dir.path().join("dashboard.yml");
    std::fs::write(&file, &rules).unwrap();
    let (ok, out, err) = run_tool(
        &promtool,
        &[OsStr::new("check"), OsStr::new("rules"), file.as_os_str()],
    );
    assert!(ok, "promtool check rules failed:\n{out}{err}\n{rules}");
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", queries.len())),
        "{out}"
    );
}

#[test]
fn selectors_finds_series_but_not_functions_keywords_or_label_lists() {
    let check = |expr: &str, expected: &[(&str, &str)]| {
        let got: Vec<(String, String)> = selectors(expr)
            .into_iter()
            .map(|s| (s.name, s.matchers))
            .collect();
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(n, m)| (n.to_string(), m.to_string()))
            .collect();
        assert_eq!(got, expected, "{expr}");
    };
    check(
        r#"histogram_quantile(0.95, sum by (le, operation) (rate(helo_request_duration_seconds_bucket{encoder_id=~"$encoder"}[$__rate_interval])))"#,
        &[(
            "helo_request_duration_seconds_bucket",
            r#"encoder_id=~"$encoder""#,
        )],
    );
    check(
        r#"count(helo_stream_state{encoder_id=~"$encoder"} == 2) or vector(0)"#,
        &[("helo_stream_state", r#"encoder_id=~"$encoder""#)],
    );
    check(
        "increase(x{outcome=\"gave_up\"}[15m]) > 0 or (x unless x offset 15m)",
        &[("x", "outcome=\"gave_up\""), ("x", ""), ("x", "")],
    );
    check(
        r#"max by (encoder_id) (y{a="}{",b!~"c|d"}) / on (encoder_id) group_left (z) up"#,
        &[("y", r#"a="}{",b!~"c|d""#), ("up", "")],
    );
    check(
        "1e3 * .5 - sum without (instance) (count_values(\"v\", m))",
        &[("m", "")],
    );
    assert_eq!(
        family("helo_request_duration_seconds_bucket"),
        "helo_request_duration_seconds"
    );
    assert_eq!(family("helo_requests_total"), "helo_requests_total");
}

// === The alert rules ===

/// The alerts issues 13 (fleet) and 14 (cluster) ask for: name, `for:`, severity.
const ALERTS: [(&str, &str, &str); 10] = [
    ("HeloEncoderUnreachable", "1m", "critical"),
    ("HeloEncoderNotInDesiredState", "2m", "critical"),
    ("HeloEncoderHealthCritical", "5m", "critical"),
    ("HeloDeviceOverheating", "5m", "warning"),
    ("HeloMediaNearlyFull", "10m", "warning"),
    ("HeloRecoveryGaveUp", "0m", "critical"),
    ("HeloSupervisorDown", "1m", "critical"),
    ("HeloSupervisorScrapeSlow", "10m", "warning"),
    ("HeloClusterNodeNotActing", "2m", "warning"),
    ("HeloClusterNoNodeActing", "1m", "critical"),
];

#[test]
fn the_alert_rules_pass_promtool_check_and_their_unit_tests() {
    let Some(promtool) = which("promtool") else {
        eprintln!("skipped: promtool is not installed (Debian package prometheus)");
        return;
    };
    let rules = deploy_path("prometheus/helo-alerts.yml");
    let (ok, out, err) = run_tool(
        &promtool,
        &[OsStr::new("check"), OsStr::new("rules"), rules.as_os_str()],
    );
    assert!(ok, "promtool check rules:\n{out}{err}");
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", ALERTS.len())),
        "{out}"
    );

    let tests = deploy_path("prometheus/helo-alerts.test.yml");
    let (ok, out, err) = run_tool(
        &promtool,
        &[OsStr::new("test"), OsStr::new("rules"), tests.as_os_str()],
    );
    assert!(ok, "promtool test rules:\n{out}{err}");
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn every_alert_has_for_severity_summary_description_and_a_one_line_runbook() {
    let rules = alert_rules();
    let names: Vec<&str> = rules.iter().filter_map(|r| r.alert.as_deref()).collect();
    assert_eq!(names, ALERTS.map(|(n, _, _)| n), "the alerts, in order");
    for (rule, (name, for_, severity)) in rules.iter().zip(ALERTS) {
        assert_eq!(rule.for_.as_deref(), Some(for_), "{name}: for");
        assert_eq!(
            rule.labels.get("severity").map(String::as_str),
            Some(severity),
            "{name}"
        );
        let keys: Vec<&str> = rule.annotations.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["description", "runbook", "summary"],
            "{name}: annotations"
        );
        for (key, text) in &rule.annotations {
            assert!(text.len() > 20, "{name}: {key} says too little: {text:?}");
            assert!(!text.contains('\n'), "{name}: {key} is more than one line");
        }
        for s in selectors(&rule.expr) {
            assert!(
                is_known_family(family(&s.name)),
                "{name}: unknown metric {}",
                s.name
            );
        }
    }
    let overheat = &rules[3];
    assert!(overheat.expr.contains("> 70"), "{}", overheat.expr);
    assert!(
        overheat.annotations["description"].contains("device_temperature_limit"),
        "the overheating description names the setting its 70 °C mirrors"
    );
}

#[derive(Debug, Deserialize)]
struct RuleTestFile {
    rule_files: Vec<String>,
    tests: Vec<RuleTestGroup>,
}

#[derive(Debug, Deserialize)]
struct RuleTestGroup {
    #[serde(default)]
    alert_rule_test: Vec<AlertCase>,
}

#[derive(Debug, Deserialize)]
struct AlertCase {
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpectedAlert>,
}

#[derive(Debug, Deserialize)]
struct ExpectedAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[test]
fn every_alert_is_unit_tested_firing_with_exact_labels_and_not_firing() {
    let path = deploy_path("prometheus/helo-alerts.test.yml");
    let file: RuleTestFile =
        serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(file.rule_files, ["helo-alerts.yml"]);
    let cases: Vec<&AlertCase> = file.tests.iter().flat_map(|t| &t.alert_rule_test).collect();
    let rules = alert_rules();
    for case in &cases {
        // promtool passes a case for an alert that does not exist when it expects none.
        assert!(
            rules
                .iter()
                .any(|r| r.alert.as_deref() == Some(case.alertname.as_str())),
            "a test of no alert: {}",
            case.alertname
        );
    }
    for rule in &rules {
        let name = rule.alert.as_deref().unwrap();
        let mine: Vec<&&AlertCase> = cases.iter().filter(|c| c.alertname == name).collect();
        assert!(
            mine.iter().any(|c| c.exp_alerts.is_empty()),
            "{name}: no case where it must not fire"
        );
        let firing: Vec<&ExpectedAlert> = mine.iter().flat_map(|c| &c.exp_alerts).collect();
        assert!(!firing.is_empty(), "{name}: no case where it fires");
        for alert in firing {
            assert_eq!(
                alert.exp_labels.get("severity"),
                rule.labels.get("severity"),
                "{name}"
            );
            let keys: Vec<&String> = alert.exp_annotations.keys().collect();
            let want: Vec<&String> = rule.annotations.keys().collect();
            assert_eq!(keys, want, "{name}: every annotation checked exactly");
        }
    }
}

#[test]
fn the_example_prometheus_config_scrapes_the_supervisor_and_passes_promtool() {
    let path = deploy_path("prometheus/prometheus.example.yml");
    let config: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(config["rule_files"][0].as_str(), Some("helo-alerts.yml"));
    let jobs: Vec<&str> = config["scrape_configs"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|j| j["job_name"].as_str())
        .collect();
    assert_eq!(jobs, ["helo-supervisor"]);

    let Some(promtool) = which("promtool") else {
        eprintln!("skipped: promtool is not installed (Debian package prometheus)");
        return;
    };
    // Checks the rule file it names too (relative to the config file).
    let (ok, out, err) = run_tool(
        &promtool,
        &[OsStr::new("check"), OsStr::new("config"), path.as_os_str()],
    );
    assert!(ok, "promtool check config:\n{out}{err}");
    assert!(out.contains("SUCCESS: 1 rule files found"), "{out}");
}

// === systemd ===

/// Every `Key=value` of a unit file, in order (a key may repeat).
fn unit_entries(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn the_systemd_unit_runs_the_supervisor_hardened() {
    let text = std::fs::read_to_string(deploy_path("systemd/conn-supervisor.service")).unwrap();
    let entries = unit_entries(&text);
    let has = |key: &str, value: &str| entries.iter().any(|(k, v)| k == key && v == value);
    for (key, value) in [
        (
            "ExecStart",
            "/usr/local/bin/conn-supervisor run --config /etc/helo-fleet/fleet.toml",
        ),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("EnvironmentFile", "-/etc/helo-fleet/conn-supervisor.env"),
        ("User", "helo-supervisor"),
        ("Group", "helo-supervisor"),
        ("ConfigurationDirectory", "helo-fleet"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("CapabilityBoundingSet", ""),
        ("SystemCallFilter", "@system-service"),
        ("LimitNOFILE", "65536"),
        ("Restart", "on-failure"),
        // A bad configuration exits 2; restarting would only repeat it.
        ("RestartPreventExitStatus", "2"),
        ("WantedBy", "multi-user.target"),
    ] {
        assert!(has(key, value), "missing {key}={value}");
    }
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify_without_a_warning() {
    let Some(analyze) = which("systemd-analyze") else {
        eprintln!("skipped: systemd-analyze is not installed (Debian package systemd)");
        return;
    };
    // verify insists that ExecStart's binary exists: check a copy that runs one that
    // does (this test's own executable), everything else unchanged.
    let text = std::fs::read_to_string(deploy_path("systemd/conn-supervisor.service")).unwrap();
    let exe = std::env::current_exe().unwrap();
    let copy = text.replace(
        "ExecStart=/usr/local/bin/conn-supervisor ",
        &format!("ExecStart={} ", exe.display()),
    );
    assert_ne!(copy, text, "ExecStart was replaced");
    let dir = TempDir::new("systemd");
    let unit = dir.path().join("conn-supervisor.service");
    std::fs::write(&unit, copy).unwrap();

    let (ok, out, err) = run_tool(&analyze, &[OsStr::new("verify"), unit.as_os_str()]);
    assert!(ok, "systemd-analyze verify:\n{out}{err}");
    assert_eq!(
        format!("{out}{err}").trim(),
        "",
        "systemd-analyze verify warns"
    );

    // The exposure score systemd computes from the sandboxing (0 best, 10 worst).
    let (_, help, _) = run_tool(&analyze, &[OsStr::new("security"), OsStr::new("--help")]);
    if !help.contains("--offline") {
        eprintln!("skipped the exposure check: this systemd-analyze has no security --offline");
        return;
    }
    let (ok, out, err) = run_tool(
        &analyze,
        &[
            OsStr::new("security"),
            OsStr::new("--offline=true"),
            unit.as_os_str(),
        ],
    );
    let exposure = out
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for conn-supervisor.service:"))
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse::<f64>().ok());
    assert!(
        ok && exposure.is_some_and(|e| e <= 2.0),
        "exposure {exposure:?} above 2.0 (OK):\n{out}{err}"
    );
}

#[test]
fn the_env_example_holds_every_password_env_of_the_example_fleet_and_rust_log() {
    let env = std::fs::read_to_string(deploy_path("systemd/conn-supervisor.env.example")).unwrap();
    let fleet = std::fs::read_to_string(root().join("fleet.example.toml")).unwrap();
    let vars: Vec<&str> = fleet
        .lines()
        .filter_map(|l| l.trim().strip_prefix("password_env"))
        .filter_map(|rest| rest.split('"').nth(1))
        .collect();
    assert!(!vars.is_empty(), "fleet.example.toml uses password_env");
    let defined: Vec<&str> = env
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
        .collect();
    for var in vars.iter().chain(&["RUST_LOG"]) {
        assert!(defined.contains(var), "{var} not in the env example");
    }
    assert!(
        env.contains("chmod 600") || env.contains("-m 0600"),
        "says to keep it 0600"
    );
}

#[test]
fn deploy_files_are_where_the_readme_says() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        readme.contains("## Deploying"),
        "README has a Deploying section"
    );
    for file in [
        "deploy/grafana/helo-fleet.json",
        "deploy/prometheus/helo-alerts.yml",
        "deploy/prometheus/prometheus.example.yml",
        "deploy/systemd/conn-supervisor.service",
        "deploy/systemd/conn-supervisor.env.example",
    ] {
        assert!(readme.contains(file), "README does not mention {file}");
        assert!(Path::new(&root().join(file)).is_file(), "{file} missing");
    }
}
