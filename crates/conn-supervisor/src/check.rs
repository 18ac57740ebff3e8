//! `check URL`: one health check in the monitoring-plugin convention (Nagios, Icinga,
//! Checkmk): one status line with performance data, and an exit code.
//!
//! | exit | when |
//! | --- | --- |
//! | 0 OK | healthy |
//! | 1 WARNING | degraded |
//! | 2 CRITICAL | not in the expected state, health critical, or the device refused the connection, timed out or refused the login |
//! | 3 UNKNOWN | bad arguments, or an answer the tool cannot interpret |
//!
//! The status is the one the supervisor computes (`conn_health::EncoderSupervision`);
//! `--json` prints one JSON object whatever the outcome, with the same exit code.

use std::{io::Write, process::ExitCode, time::SystemTime};

use conn_health::{
    CheckFindings, ConnectionHealthChecker, DesiredState, EncoderSupervision, Expectations,
    NoThermalReadings, ReconcilePolicy, StatusLevel, SupervisionPolicy,
};
use helo_transport::{device_text, names, ErrorClass, HeloClientExt, HeloConnection, HeloError};
use serde_json::json;
use tokio::time::Instant;

use crate::tools;

/// Plugin exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plugin {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl Plugin {
    fn label(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Warning => "WARNING",
            Self::Critical => "CRITICAL",
            Self::Unknown => "UNKNOWN",
        }
    }

    fn of(level: StatusLevel) -> Self {
        match level {
            StatusLevel::Healthy | StatusLevel::Held => Self::Ok,
            StatusLevel::Degraded => Self::Warning,
            StatusLevel::Critical | StatusLevel::Unreachable => Self::Critical,
            StatusLevel::Unknown => Self::Unknown,
        }
    }

    /// A device that could not be asked: unreachable, timed out or refused the login is
    /// CRITICAL (as check_http and check_tcp say of a dead service); an answer that
    /// makes no sense is UNKNOWN.
    fn of_error(error: &HeloError) -> Self {
        if error.is_connect() || error.is_timeout() || error.is_auth() || error.is_unavailable() {
            Self::Critical
        } else {
            Self::Unknown
        }
    }
}

/// What `check` was asked.
#[derive(Debug, Clone)]
pub struct CheckArgs<'a> {
    /// The device.
    pub url: &'a str,
    /// The variable holding its password.
    pub password_env: Option<&'a str>,
    /// Print JSON instead of the status line.
    pub json: bool,
    /// It should be streaming.
    pub expect_streaming: bool,
    /// It should be recording.
    pub expect_recording: bool,
}

/// Runs the check and prints its result.
pub async fn check(args: CheckArgs<'_>) -> ExitCode {
    let (code, line, body) = run(&args).await;
    let text = if args.json { body.to_string() } else { line };
    // A closed pipe (`check … | head`) loses the output, never the exit code.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
    ExitCode::from(code as u8)
}

async fn run(args: &CheckArgs<'_>) -> (Plugin, String, serde_json::Value) {
    let url = plugin_text(args.url);
    let failed = |code: Plugin, what: String| {
        let what = plugin_text(&what);
        // The error already names the device.
        let line = format!("HELO {} - {what}", code.label());
        let body = json!({
            "url": args.url,
            "status": if code == Plugin::Critical { "unreachable" } else { "unknown" },
            "exit_code": code as u8,
            "summary": what,
            "reasons": [],
            "health_score": null,
            "health": null,
        });
        (code, line, body)
    };
    let device = match tools::device(args.url, args.password_env) {
        Ok(d) => d,
        Err(e) => return failed(Plugin::Unknown, e.to_string()),
    };
    let conn = match HeloConnection::connect(&device).await {
        Ok(c) => c,
        Err(e) => return failed(Plugin::of_error(&e), e.to_string()),
    };
    // One plain request first, so a refused login or a dead device is reported with
    // the transport's own typed error rather than a score of 0.
    match conn.get_param(names::SYSTEM_STATE).await {
        Err(e) if !e.is_unsupported() => return failed(Plugin::of_error(&e), e.to_string()),
        _ => {}
    }
    let checker = ConnectionHealthChecker::new(NoThermalReadings);
    let expectations = Expectations {
        expect_streaming: args.expect_streaming,
        expect_recording: args.expect_recording,
    };
    let health = checker
        .perform_health_check_with(device.name(), conn.id(), conn.clone(), &expectations)
        .await;
    // The device answered the first request but not the health check's probe.
    if let Some(class) = health.error_class() {
        let detail = health
            .check(conn_health::CheckKind::BasicConnectivity)
            .map(|c| c.detail.clone())
            .unwrap_or_else(|| class.as_str().to_string());
        let code = match class {
            ErrorClass::Connection | ErrorClass::Timeout => Plugin::Critical,
            ErrorClass::Other => Plugin::Unknown,
        };
        let (_, line, mut body) = failed(code, detail);
        body["health"] = health.to_json();
        return (code, line, body);
    }
    // One status computation: the supervisor's, observing only (a check never acts).
    let mut supervision = EncoderSupervision::new(
        DesiredState {
            streaming: args.expect_streaming,
            recording: args.expect_recording,
        },
        false,
        SupervisionPolicy {
            reconcile: ReconcilePolicy {
                max_attempts: 0,
                ..ReconcilePolicy::default()
            },
            ..SupervisionPolicy::default()
        },
    );
    let health_json = health.to_json();
    let score = health.health_score();
    supervision.checked(
        Instant::now(),
        SystemTime::now(),
        health,
        CheckFindings::default(),
    );
    let status = supervision.status();
    let code = Plugin::of(status.level);
    let score = status.health_score.unwrap_or(score);
    let detail = status
        .reasons
        .iter()
        .map(|r| r.message.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let detail = if detail.is_empty() {
        String::new()
    } else {
        format!(": {}", plugin_text(&detail))
    };
    let line = format!(
        "HELO {} - {url} score {score:.0} ({}){detail} | health={score:.1};80;70;0;100",
        code.label(),
        status.level.as_str(),
    );
    let body = json!({
        "url": args.url,
        "status": status.level.as_str(),
        "exit_code": code as u8,
        "summary": status.summary(),
        "reasons": status.reasons,
        "health_score": score,
        "in_desired_state": status.in_desired_state,
        "health": health_json,
    });
    (code, line, body)
}

/// Device or error text made safe for a plugin line: bounded, control characters
/// escaped, and no `|` (which starts the performance data).
fn plugin_text(text: &str) -> String {
    device_text(text).replace('|', "/")
}
