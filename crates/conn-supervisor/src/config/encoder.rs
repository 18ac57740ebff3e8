//! One `[[encoder]]` table, resolved: id, device address, password, expectations and
//! its settings after overrides.

use std::sync::Arc;

use helo_transport::{DeviceConfig, Password};

use super::{
    is_name,
    issues::{quoted, Issues},
    raw::RawEncoder,
    secrets::{self, SecretFiles},
    EncoderConfig, Tunables,
};

/// The encoder, or `None` when it has a mistake (each one reported in `issues`).
pub(super) fn resolve(
    enc: &RawEncoder,
    defaults: &Arc<Tunables>,
    env: &dyn Fn(&str) -> Option<String>,
    files: &SecretFiles<'_>,
    issues: &mut Issues,
) -> Option<EncoderConfig> {
    let before = issues.error_count();
    let key = |field: &str| format!("{}.{field}", enc.key);
    let id = enc.id.as_ref().map(|at| at.value.trim().to_string());
    if let (Some(id), Some(at)) = (&id, &enc.id) {
        if !is_name(id) {
            issues.error(
                key("id"),
                at.line,
                format!(
                    "{} must be 1–64 characters of letters, digits, '.', '_' or '-'",
                    quoted(id)
                ),
            );
        }
    }
    let password = password(enc, env, files, issues);
    let tunables = match enc.overrides.as_deref() {
        None => Arc::clone(defaults),
        Some(raw) => Arc::new(defaults.overridden(Some(raw), &key("overrides"), issues)),
    };
    for (name, line) in enc
        .overrides
        .as_ref()
        .map(|o| o.fleet_only())
        .unwrap_or_default()
    {
        issues.error(
            key(&format!("overrides.{name}")),
            line,
            "applies to the whole fleet; set it in [defaults]",
        );
    }
    let url = enc.url.as_ref()?;
    // DeviceConfig's own message repeats the URL, which would show the password.
    if url.value.contains('@') {
        issues.error(
            key("url"),
            url.line,
            "credentials in the URL are not supported; use password_file or password_env",
        );
        return None;
    }
    let name = id.clone().unwrap_or_else(|| enc.key.clone());
    let device = DeviceConfig::from_url(name, &url.value)
        .and_then(|d| d.with_request_timeout(tunables.request_timeout))
        .and_then(|d| d.with_connect_timeout(tunables.connect_timeout))
        .and_then(|d| {
            d.with_request_budget(helo_transport::RequestBudget {
                per_minute: tunables.request_budget,
                burst: tunables.request_budget_burst,
            })
        })
        .map(|d| d.with_login_lockout(tunables.login_lockout));
    let device = match device {
        Ok(d) => d.with_password(password),
        Err(e) => {
            let message = match &e {
                helo_transport::HeloError::InvalidConfig { detail, .. } => detail.clone(),
                other => other.to_string(),
            };
            issues.error(key("url"), url.line, message);
            return None;
        }
    };
    let flag = |f: &Option<super::raw::At<bool>>| f.as_ref().is_some_and(|at| at.value);
    match id {
        Some(id) if issues.error_count() == before => Some(EncoderConfig {
            id,
            device,
            expect_streaming: flag(&enc.expect_streaming),
            expect_recording: flag(&enc.expect_recording),
            hold: flag(&enc.hold),
            tunables,
        }),
        _ => None,
    }
}

/// The password from whichever one of `password`, `password_file`, `password_env` is
/// given; none: the device has authentication off.
fn password(
    enc: &RawEncoder,
    env: &dyn Fn(&str) -> Option<String>,
    files: &SecretFiles<'_>,
    issues: &mut Issues,
) -> Option<Password> {
    let key = |field: &str| format!("{}.{field}", enc.key);
    let given = [
        enc.password.as_ref().map(|at| ("password", at.line)),
        enc.password_file
            .as_ref()
            .map(|at| ("password_file", at.line)),
        enc.password_env
            .as_ref()
            .map(|at| ("password_env", at.line)),
    ];
    let mut given = given.iter().flatten();
    if let (Some(_), Some((second, line))) = (given.next(), given.next()) {
        issues.error(
            key(second),
            *line,
            "give at most one of password, password_file, password_env",
        );
        return None;
    }
    if let Some(p) = &enc.password {
        return Some(p.value.clone());
    }
    if let Some(var) = &enc.password_env {
        return secrets::from_env(&key("password_env"), var, env, issues).map(Password::new);
    }
    if let Some(file) = &enc.password_file {
        return files
            .read(&key("password_file"), file, issues)
            .map(Password::new);
    }
    None
}
