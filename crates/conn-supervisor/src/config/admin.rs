//! The admin API's access settings: bearer token and TLS files, and the rule that an
//! admin API reachable from the network needs a token.

use std::{net::SocketAddr, path::PathBuf};

use super::{
    issues::Issues,
    raw::{At, RawFile},
    secrets::{self, AdminToken, SecretFiles},
};

/// Admin connections served at once unless `admin_max_connections` says otherwise.
pub const DEFAULT_ADMIN_MAX_CONNECTIONS: usize = 256;

/// The most `admin_max_connections` may be: each connection is a file descriptor.
const MAX_ADMIN_MAX_CONNECTIONS: i64 = 65_536;

/// Who may use the admin API, and over what. Where it listens is
/// [`FleetConfig::admin_listen`](super::FleetConfig::admin_listen).
#[derive(Debug, Clone)]
pub struct AdminSettings {
    /// The bearer token requests must carry (`admin_token_file` or `admin_token_env`);
    /// `None`: no token, allowed only on a loopback address.
    pub token: Option<AdminToken>,
    /// `admin_auth_reads = true`: reads need the token too, except `/healthz` and
    /// `/readyz`; `false` (default): only actions (POST, DELETE) need it.
    pub auth_reads: bool,
    /// Connections served at once (`admin_max_connections`); more wait in the
    /// listen backlog.
    pub max_connections: usize,
    /// Serve HTTPS with these files (`admin_tls_cert`, `admin_tls_key`); `None`: HTTP.
    pub tls: Option<TlsFiles>,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            token: None,
            auth_reads: false,
            max_connections: DEFAULT_ADMIN_MAX_CONNECTIONS,
            tls: None,
        }
    }
}

/// A PEM certificate (chain) and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate file, resolved against the configuration file's folder.
    pub cert: PathBuf,
    /// The private key file, resolved the same way.
    pub key: PathBuf,
}

/// The admin settings of `raw`; mistakes go to `issues`. `listen` is the parsed
/// `admin_listen` (`None` when it was itself a mistake).
pub(super) fn resolve(
    raw: &RawFile,
    listen: Option<SocketAddr>,
    env: &dyn Fn(&str) -> Option<String>,
    files: &SecretFiles<'_>,
    issues: &mut Issues,
) -> AdminSettings {
    let token = match (&raw.admin_token_file, &raw.admin_token_env) {
        (Some(_), Some(var)) => {
            issues.error(
                "admin_token_env",
                var.line,
                "give at most one of admin_token_file, admin_token_env",
            );
            None
        }
        (Some(file), None) => token(
            "admin_token_file",
            file.line,
            files.read("admin_token_file", file, issues),
            issues,
        ),
        (None, Some(var)) => token(
            "admin_token_env",
            var.line,
            secrets::from_env("admin_token_env", var, env, issues),
            issues,
        ),
        (None, None) => None,
    };
    let token_given = raw.admin_token_file.is_some() || raw.admin_token_env.is_some();
    if let Some(addr) = listen {
        if !addr.ip().to_canonical().is_loopback() && !token_given {
            issues.error(
                "admin_token_file",
                raw.admin_listen.as_ref().and_then(|at| at.line),
                format!(
                    "binding the admin API to a non-loopback address ({addr}) needs an admin \
                     token: set admin_token_file or admin_token_env"
                ),
            );
        }
    }
    let tls = match (&raw.admin_tls_cert, &raw.admin_tls_key) {
        (Some(cert), Some(key)) => {
            let cert = readable("admin_tls_cert", cert, files, issues);
            let key = readable("admin_tls_key", key, files, issues);
            cert.zip(key).map(|(cert, key)| TlsFiles { cert, key })
        }
        (Some(cert), None) => {
            issues.error(
                "admin_tls_cert",
                cert.line,
                "admin_tls_cert and admin_tls_key go together: set admin_tls_key too",
            );
            None
        }
        (None, Some(key)) => {
            issues.error(
                "admin_tls_key",
                key.line,
                "admin_tls_cert and admin_tls_key go together: set admin_tls_cert too",
            );
            None
        }
        (None, None) => None,
    };
    let auth_reads = raw.admin_auth_reads.as_ref().is_some_and(|at| at.value);
    if auth_reads && !token_given {
        issues.error(
            "admin_auth_reads",
            raw.admin_auth_reads.as_ref().and_then(|at| at.line),
            "admin_auth_reads = true needs an admin token: set admin_token_file or \
             admin_token_env",
        );
    }
    let max_connections = match &raw.admin_max_connections {
        None => DEFAULT_ADMIN_MAX_CONNECTIONS,
        Some(at) => match usize::try_from(at.value) {
            Ok(n) if (1..=MAX_ADMIN_MAX_CONNECTIONS).contains(&at.value) => n,
            _ => {
                issues.error(
                    "admin_max_connections",
                    at.line,
                    format!(
                        "{} is out of range: give 1 to {MAX_ADMIN_MAX_CONNECTIONS}",
                        at.value
                    ),
                );
                DEFAULT_ADMIN_MAX_CONNECTIONS
            }
        },
    };
    AdminSettings {
        token,
        auth_reads,
        max_connections,
        tls,
    }
}

/// A token read from its source, if it can travel in an `Authorization` header.
fn token(
    key: &str,
    line: Option<usize>,
    value: Option<String>,
    issues: &mut Issues,
) -> Option<AdminToken> {
    let value = value?;
    if value.bytes().all(|b| b.is_ascii_graphic()) {
        Some(AdminToken::new(value))
    } else {
        issues.error(
            key,
            line,
            "the admin token may hold only visible ASCII characters, no spaces \
             (it travels in an HTTP header)",
        );
        None
    }
}

/// The resolved path of a file that exists and can be opened for reading.
fn readable(
    key: &str,
    path: &At<String>,
    files: &SecretFiles<'_>,
    issues: &mut Issues,
) -> Option<PathBuf> {
    let resolved = files.resolve(&path.value);
    let shown = resolved.display();
    match std::fs::File::open(&resolved).and_then(|f| f.metadata()) {
        Ok(m) if m.is_file() => Some(resolved),
        Ok(_) => {
            issues.error(key, path.line, format!("{shown} is not a regular file"));
            None
        }
        Err(e) => {
            issues.error(key, path.line, format!("cannot read {shown}: {e}"));
            None
        }
    }
}
