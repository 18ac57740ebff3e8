//! One-shot device commands (`param`, `stream`, `record`, `events`): they work
//! against any device or mock that speaks the protocol.

use std::{io::Write, time::Duration};

use helo_transport::{Device, DeviceConfig, HeloClientExt, HeloConnection, HeloError, Password};

use crate::cli::StartStop;

/// Why a tool command failed, as printed to the operator.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The password variable is not set.
    #[error("environment variable {0} is not set")]
    MissingPasswordEnv(String),
    /// The device said no, or could not be reached.
    #[error(transparent)]
    Device(#[from] HeloError),
    /// Writing to stdout failed (e.g. a closed pipe).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

/// Builds a device from a URL and an optional password variable.
pub fn device(url: &str, password_env: Option<&str>) -> Result<Device, ToolError> {
    let password = match password_env {
        None => None,
        Some(var) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Some(Password::new(v)),
            _ => return Err(ToolError::MissingPasswordEnv(var.to_string())),
        },
    };
    Ok(Device::new(
        DeviceConfig::from_url(url, url)?.with_password(password),
    ))
}

/// `param get`: prints the parameter as one JSON line.
pub async fn param_get(device: &Device, param: &str) -> Result<(), ToolError> {
    let conn = HeloConnection::connect(device).await?;
    let value = conn.get_param(param).await?;
    print_json(&value)
}

/// `param set`: prints the device's echo (or `{"success":true}`).
pub async fn param_set(device: &Device, param: &str, value: &str) -> Result<(), ToolError> {
    let conn = HeloConnection::connect(device).await?;
    match conn.set_param(param, value).await? {
        Some(echo) => print_json(&echo),
        None => print_json(&serde_json::json!({ "success": true })),
    }
}

/// `stream start|stop`.
pub async fn stream(device: &Device, action: StartStop) -> Result<(), ToolError> {
    let conn = HeloConnection::connect(device).await?;
    match action {
        StartStop::Start => conn.start_streaming().await?,
        StartStop::Stop => conn.stop_streaming().await?,
    }
    print_json(&serde_json::json!({ "stream_state": conn.stream_state().await?.to_string() }))
}

/// `record start|stop`.
pub async fn record(device: &Device, action: StartStop) -> Result<(), ToolError> {
    let conn = HeloConnection::connect(device).await?;
    match action {
        StartStop::Start => conn.start_recording().await?,
        StartStop::Stop => conn.stop_recording().await?,
    }
    print_json(&serde_json::json!({ "record_state": conn.record_state().await?.to_string() }))
}

/// `events`: prints every event as a JSON line; reconnects (with backoff) when the
/// event connection expires or the device goes away. Ends only on error writing
/// output or when the caller drops the future (Ctrl-C).
pub async fn events(device: &Device) -> Result<(), ToolError> {
    let mut backoff = Duration::from_millis(500);
    loop {
        match follow(device).await {
            Err(ToolError::Device(e)) if !e.is_wrong_password() => {
                tracing::warn!(error = %e, "event connection lost; reconnecting in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
            other => return other,
        }
    }
}

async fn follow(device: &Device) -> Result<(), ToolError> {
    let conn = HeloConnection::connect(device).await?;
    let sub = conn.connect_events().await?;
    for event in &sub.initial {
        print_json(event)?;
    }
    loop {
        for event in conn.wait_for_events(&sub.connection_id).await? {
            print_json(&event)?;
        }
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), ToolError> {
    let line = serde_json::to_string(value).map_err(std::io::Error::other)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}
