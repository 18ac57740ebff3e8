//! The dashboard and the alert rules against a real Prometheus (`/usr/bin/prometheus`,
//! Debian package `prometheus`) scraping the demo fleet in-process: every panel's query
//! and every alert expression parses and returns data, the rules load, and the alert the
//! demo's overheating encoder should raise is raised.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "support/deploy_files.rs"]
mod deploy_files;

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use common::{http, start_fleet};
use conn_supervisor::demo::Demo;
use deploy_files::*;
use serde_json::Value;
use tokio::net::TcpStream;

/// Metric families the demo may not export: a query that reads only these (and finds
/// none of them in Prometheus) may return no data; every other query must. Empty: the
/// demo exports every family but the cluster's (CLUSTER_METRICS: one supervisor is no
/// cluster).
const PENDING_METRICS: &[&str] = &[];

/// How long the scrapes may take to show every series the queries need.
const DATA_DEADLINE: Duration = Duration::from_secs(90);

/// How long a metric of `PENDING_METRICS` gets to show up before queries of it alone may
/// stay empty: two of the demo's 5 s health-check rounds.
const PENDING_SETTLE: Duration = Duration::from_secs(10);

/// A Prometheus server on a loopback port, with its configuration and storage in a
/// temporary directory; killed, and its directory removed, when dropped.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` every second as job `helo-supervisor`, with
    /// the alert rules of `deploy/` evaluated every second.
    fn start(binary: &Path, target: SocketAddr) -> Self {
        let dir = TempDir::new("prometheus");
        let rules = deploy_path("prometheus/helo-alerts.yml");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules}\n\
             scrape_configs:\n  - job_name: helo-supervisor\n    static_configs:\n      - targets: [\"{target}\"]\n",
            rules = serde_json::to_string(&rules).unwrap(),
        );
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).unwrap();
        // A port that was free a moment ago; Prometheus exits at once if it was taken,
        // which `wait_ready` reports with its log.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        Prometheus { child, addr, dir }
    }

    fn log(&self) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Waits until `/-/ready` answers 200, for at most `limit`.
    async fn wait_ready(&mut self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("prometheus exited ({status}):\n{}", self.log());
            }
            if TcpStream::connect(self.addr).await.is_ok()
                && http(self.addr, "GET", "/-/ready").await.0 == 200
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "prometheus not ready after {limit:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn api(&self, path: &str) -> Value {
        let (status, body) = http(self.addr, "GET", path).await;
        serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {path}: HTTP {status}, not JSON ({e}): {body}"))
    }

    /// An instant query: its result, or Prometheus' error (a parse error, say).
    async fn query(&self, promql: &str) -> Result<Vec<Value>, String> {
        let q: String = form_urlencoded::byte_serialize(promql.as_bytes()).collect();
        let answer = self.api(&format!("/api/v1/query?query={q}")).await;
        if answer["status"] == "success" {
            Ok(answer["data"]["result"]
                .as_array()
                .cloned()
                .unwrap_or_default())
        } else {
            Err(format!("{}: {}", answer["errorType"], answer["error"]))
        }
    }

    /// Whether Prometheus holds any series of the family of `series`.
    async fn has_series(&self, series: &str) -> bool {
        !self
            .query(&format!("group({series})"))
            .await
            .unwrap()
            .is_empty()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A query that reads only metrics the demo cannot export yet (or, for the cluster
/// ones, at all) may come back empty while none of them is in Prometheus.
async fn may_be_empty(prom: &Prometheus, expr: &str) -> bool {
    let names = metric_names(expr);
    let exempt = |n: &String| {
        let fam = family(n);
        PENDING_METRICS.contains(&fam) || CLUSTER_METRICS.contains(&fam)
    };
    if names.is_empty() || !names.iter().all(exempt) {
        return false;
    }
    for name in &names {
        if prom.has_series(name).await {
            return false;
        }
    }
    true
}

fn encoder_ids(result: &[Value]) -> BTreeSet<String> {
    result
        .iter()
        .filter_map(|s| s["metric"]["encoder_id"].as_str().map(str::to_string))
        .collect()
}

/// Seconds in a rule's `for:` ("5m", "1m", "0m", "30s").
fn seconds(duration: &str) -> f64 {
    let (n, unit) = duration.split_at(duration.len() - 1);
    let n: f64 = n.parse().unwrap();
    match unit {
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => panic!("unexpected duration {duration}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_alert_rules_work_on_a_real_prometheus_scraping_the_demo() {
    let Some(binary) = which("prometheus") else {
        eprintln!("skipped: prometheus is not installed (Debian package prometheus)");
        return;
    };
    let started = tokio::time::Instant::now();
    let demo = Demo::start(
        conn_supervisor::demo::ROLES.len(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let (fleet, admin) = start_fleet(&demo.config).await;
    let mut prom = Prometheus::start(&binary, admin);
    prom.wait_ready(Duration::from_secs(20)).await;

    // What some panels show needs an event: a cooling (reason manual) and failed
    // requests (an encoder answering 500 for a while).
    let (status, body) = http(admin, "POST", "/api/encoders/demo-00-streaming/cooldown").await;
    assert_eq!(status, 202, "{body}");
    demo.sims[5].update_faults(|f| f.error_500 = true).unwrap();

    // Every panel's query parses at once, and returns data once a few scrapes are in.
    let dash = dashboard();
    let mut waiting: Vec<(String, String)> = dashboard_queries(&dash)
        .into_iter()
        .map(|q| (q.name(), substitute(&q.expr)))
        .collect();
    for rule in alert_rules() {
        let name = rule.alert.clone().unwrap();
        for series in metric_names(&rule.expr) {
            waiting.push((
                format!("alert {name}: {series}"),
                format!("group({series})"),
            ));
        }
    }
    let ready = tokio::time::Instant::now();
    let mut exempted = Vec::new();
    loop {
        let mut still = Vec::new();
        for (name, expr) in waiting {
            match prom.query(&expr).await {
                Err(e) => panic!("{name}: Prometheus refuses {expr}: {e}"),
                Ok(result) if !result.is_empty() => {}
                Ok(_) => still.push((name, expr)),
            }
        }
        waiting = still;
        if waiting.is_empty() {
            break;
        }
        // After a few checks of every encoder, what is still empty may only be queries
        // of metrics that are not exported yet.
        if ready.elapsed() > PENDING_SETTLE {
            let mut all_exempt = true;
            for (_, expr) in &waiting {
                all_exempt &= may_be_empty(&prom, expr).await;
            }
            if all_exempt {
                exempted = waiting.iter().map(|(n, e)| format!("{n}: {e}")).collect();
                break;
            }
        }
        if ready.elapsed() > DATA_DEADLINE {
            let names: Vec<String> = waiting.iter().map(|(n, e)| format!("{n}: {e}")).collect();
            panic!("no data after {DATA_DEADLINE:?}:\n  {}", names.join("\n  "));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    demo.sims[5].clear_faults();
    if !exempted.is_empty() {
        eprintln!(
            "no data yet (PENDING_METRICS / CLUSTER_METRICS only, none exported):\n  {}",
            exempted.join("\n  ")
        );
    }

    // The encoder variable's label_values(helo_encoder_up, encoder_id).
    let answer = prom
        .api("/api/v1/label/encoder_id/values?match[]=helo_encoder_up")
        .await;
    let listed: BTreeSet<&str> = answer["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let ids: BTreeSet<&str> = demo.config.encoders.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(listed, ids, "the encoder variable lists every encoder");

    // Every alert expression parses as it stands, with the same rules Prometheus loaded.
    let rules = alert_rules();
    for rule in &rules {
        let name = rule.alert.as_deref().unwrap();
        if let Err(e) = prom.query(&rule.expr).await {
            panic!("{name}: {e}");
        }
    }
    let loaded = common::eventually(Duration::from_secs(10), "every rule evaluated", || async {
        let answer = prom.api("/api/v1/rules?type=alert").await;
        let loaded: Vec<Value> = answer["data"]["groups"]
            .as_array()?
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        (!loaded.is_empty() && loaded.iter().all(|r| r["health"] != "unknown")).then_some(loaded)
    })
    .await;
    let names: Vec<&str> = loaded.iter().filter_map(|r| r["name"].as_str()).collect();
    let expected: Vec<&str> = rules.iter().filter_map(|r| r.alert.as_deref()).collect();
    assert_eq!(names, expected, "the rules Prometheus loaded");
    for (got, rule) in loaded.iter().zip(&rules) {
        let name = rule.alert.as_deref().unwrap();
        assert_eq!(got["health"], "ok", "{name}: {}", got["lastError"]);
        assert_eq!(
            got["duration"].as_f64(),
            Some(seconds(rule.for_.as_deref().unwrap())),
            "{name}: for"
        );
        assert_eq!(
            got["labels"]["severity"].as_str(),
            rule.labels.get("severity").map(String::as_str)
        );
    }

    // The demo's faults: encoder 1 runs at 82 °C, so the overheating condition holds for
    // it and only it; its 5 minute `for:` is longer than a test, so the alert is pending.
    let overheating = rules
        .iter()
        .find(|r| r.alert.as_deref() == Some("HeloDeviceOverheating"))
        .unwrap();
    let hot = encoder_ids(&prom.query(&overheating.expr).await.unwrap());
    assert_eq!(hot, BTreeSet::from(["demo-01-overheating".to_string()]));
    let alerts = common::eventually(Duration::from_secs(10), "the overheating alert", || async {
        let answer = prom.api("/api/v1/alerts").await;
        let alerts = answer["data"]["alerts"].as_array()?.clone();
        alerts
            .iter()
            .any(|a| a["labels"]["alertname"] == "HeloDeviceOverheating")
            .then_some(alerts)
    })
    .await;
    let overheat: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["labels"]["alertname"] == "HeloDeviceOverheating")
        .collect();
    assert_eq!(overheat.len(), 1, "{overheat:?}");
    assert_eq!(overheat[0]["labels"]["encoder_id"], "demo-01-overheating");
    assert_eq!(overheat[0]["labels"]["severity"], "warning");
    assert_eq!(overheat[0]["state"], "pending", "{:?}", overheat[0]);
    assert!(
        overheat[0]["annotations"]["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("Encoder demo-01-overheating is overheating (")),
        "{:?}",
        overheat[0]["annotations"]
    );
    // An encoder that stops answering: the unreachable condition holds for it and only
    // it, and its alert is pending (its `for:` is a minute).
    demo.sims[6].go_unreachable(Duration::from_secs(60));
    let unreachable = rule_named(&rules, "HeloEncoderUnreachable");
    // A check every 5 s, a 2 s request timeout and a 1 s scrape: 20 s was enough on an
    // idle machine and missed under a loaded CI one.
    common::eventually(
        Duration::from_secs(45),
        "the unreachable encoder",
        || async {
            let ids = encoder_ids(&prom.query(&unreachable.expr).await.ok()?);
            (ids == BTreeSet::from(["demo-06-no-events".to_string()])).then_some(())
        },
    )
    .await;
    common::eventually(
        Duration::from_secs(10),
        "the unreachable alert pending",
        || async {
            let answer = prom.api("/api/v1/alerts").await;
            answer["data"]["alerts"]
                .as_array()?
                .iter()
                .any(|a| {
                    a["labels"]["alertname"] == "HeloEncoderUnreachable"
                        && a["labels"]["encoder_id"] == "demo-06-no-events"
                        && a["state"] == "pending"
                })
                .then_some(())
        },
    )
    .await;
    // The held encoder is off air on purpose: not in its desired state, yet no alert.
    let held = prom
        .query(r#"helo_encoder_in_desired_state{encoder_id="demo-08-held"} == 0"#)
        .await
        .unwrap();
    assert_eq!(held.len(), 1, "the held encoder is not on air: {held:?}");
    let not_in_state = rule_named(&rules, "HeloEncoderNotInDesiredState");
    let paged = encoder_ids(&prom.query(&not_in_state.expr).await.unwrap());
    assert!(
        !paged.contains("demo-08-held"),
        "a held encoder pages: {paged:?}"
    );

    // The supervisor is up and scraped quickly: its own alerts have nothing to say.
    for quiet in ["HeloSupervisorDown", "HeloSupervisorScrapeSlow"] {
        let rule = rules
            .iter()
            .find(|r| r.alert.as_deref() == Some(quiet))
            .unwrap();
        assert_eq!(
            prom.query(&rule.expr).await.unwrap(),
            Vec::<Value>::new(),
            "{quiet}"
        );
        assert!(
            alerts.iter().all(|a| a["labels"]["alertname"] != quiet),
            "{quiet}"
        );
    }

    drop(prom);
    fleet.shutdown(Duration::from_secs(2)).await;
    demo.stop().await;
    eprintln!("took {:?}", started.elapsed());
}

fn rule_named<'a>(rules: &'a [Rule], name: &str) -> &'a Rule {
    rules
        .iter()
        .find(|r| r.alert.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no alert rule {name}"))
}
