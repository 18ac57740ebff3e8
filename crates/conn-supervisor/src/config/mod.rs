//! The fleet configuration file (TOML): parsed tolerantly, validated completely, and
//! reported with the key and line of every mistake before anything starts.
//!
//! A file that is not TOML at all is one mistake. Otherwise every table is walked
//! (`raw`), every value checked, and all mistakes are reported together, in file
//! order. Work is linear in the size of the file: lines are found by binary search in
//! an index built once (`lines`).

mod admin;
mod cluster;
mod duration;
mod encoder;
mod ids;
mod issues;
mod lines;
mod raw;
mod secrets;
mod split;
mod syntax;
mod tunables;

use std::{fmt, net::SocketAddr, path::Path, sync::Arc};

/// The `[metrics]` settings (conn-metrics' options, re-exported for embedders).
pub use conn_metrics::MetricsOptions;
use helo_transport::DeviceConfig;
use toml_edit::ImDocument;

pub use self::{
    admin::{AdminSettings, TlsFiles, DEFAULT_ADMIN_MAX_CONNECTIONS},
    cluster::{ClusterSettings, CLUSTER_NODE_ENV, DEFAULT_LEASE_TTL},
    duration::parse_duration,
    secrets::AdminToken,
    tunables::Tunables,
};
use self::{
    ids::SeenIds,
    issues::Issues,
    raw::{Encoders, RawFile},
    secrets::SecretFiles,
};

/// The default admin address: loopback only, so metrics and manual cooling are not
/// exposed to the network unless the operator says so.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9898";

/// One mistake in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The key, e.g. `encoder[2].url` or `defaults.cooling_period`.
    pub key: String,
    /// The 1-based line in the file, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// Every mistake found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the configuration came from.
    pub source_name: String,
    /// The mistakes, in file order.
    pub issues: Vec<ConfigIssue>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration {}:", self.source_name)?;
        for issue in &self.issues {
            write!(f, "\n  {issue}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// One encoder of the fleet, fully resolved.
#[derive(Clone)]
pub struct EncoderConfig {
    /// The encoder id (metric label, log field, admin API path).
    pub id: String,
    /// Transport settings: address, password, timeouts.
    pub device: DeviceConfig,
    /// The encoder should be streaming: idle is a warning and a failed stream is recovered.
    pub expect_streaming: bool,
    /// The encoder should be recording.
    pub expect_recording: bool,
    /// Start held (maintenance): observed, never acted on, until released.
    pub hold: bool,
    /// Settings after per-encoder overrides (intervals, timeouts, recovery, events;
    /// pool, thermal and scoring settings are fleet-wide). Shared: every encoder
    /// without overrides holds the fleet's defaults, not a copy of them, so a fleet of
    /// tens of thousands loads without one large block per copy.
    pub tunables: Arc<Tunables>,
}

impl fmt::Debug for EncoderConfig {
    // The device config's Debug already redacts the password; spelled out here so a
    // future field cannot leak it by accident.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncoderConfig")
            .field("id", &self.id)
            .field("url", &self.device.url())
            .field("password", &self.device.password().map(|_| "<redacted>"))
            .field("expect_streaming", &self.expect_streaming)
            .field("expect_recording", &self.expect_recording)
            .field("hold", &self.hold)
            .field("tunables", &self.tunables)
            .finish()
    }
}

/// The whole fleet configuration.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// Where the admin HTTP server listens.
    pub admin_listen: SocketAddr,
    /// Who may use the admin API (token) and over what (TLS).
    pub admin: AdminSettings,
    /// The cluster this node belongs to; `None`: it supervises the fleet alone.
    pub cluster: Option<ClusterSettings>,
    /// Fleet-wide defaults (before per-encoder overrides).
    pub defaults: Tunables,
    /// How much detail `/metrics` keeps per encoder (`[metrics]`).
    pub metrics: MetricsOptions,
    /// The encoders.
    pub encoders: Vec<EncoderConfig>,
    /// Things accepted that the operator should know about (e.g. a password file
    /// readable by others, allowed by `allow_insecure_password_files`), in file order.
    pub warnings: Vec<ConfigIssue>,
}

impl FleetConfig {
    /// A configuration built in code (the demo, tests, embedders): these encoders and
    /// defaults, no admin token or TLS, no cluster, no warnings.
    pub fn new(admin_listen: SocketAddr, defaults: Tunables, encoders: Vec<EncoderConfig>) -> Self {
        Self {
            admin_listen,
            defaults,
            encoders,
            admin: AdminSettings::default(),
            cluster: None,
            metrics: MetricsOptions::default(),
            warnings: Vec::new(),
        }
    }

    /// Reads and validates a configuration file, and logs its warnings.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let config = Self::read(path)?;
        for w in &config.warnings {
            tracing::warn!(key = %w.key, line = w.line, "configuration: {}", w.message);
        }
        Ok(config)
    }

    /// Reads and validates a configuration file; the warnings are left to the caller.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source_name: name.clone(),
            issues: vec![ConfigIssue {
                key: "(file)".into(),
                line: None,
                message: format!("cannot read: {e}"),
            }],
        })?;
        Self::parse(&name, &text, &|var| std::env::var(var).ok(), path.parent())
    }

    /// Parses and validates configuration text. `env` looks up environment variables
    /// (`password_env`, `admin_token_env`, `HELO_CLUSTER_NODE`); `base` resolves
    /// relative file paths (`password_file`, `admin_token_file`, `admin_tls_*`).
    pub fn parse(
        source_name: &str,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        base: Option<&Path>,
    ) -> Result<Self, ConfigError> {
        Self::parse_as(Reading::Pieces, source_name, text, env, base)
    }

    /// [`parse`](Self::parse), reading the document in pieces where it can or
    /// always whole (the fuzz target checks that both agree).
    pub(crate) fn parse_as(
        reading: Reading,
        source_name: &str,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        base: Option<&Path>,
    ) -> Result<Self, ConfigError> {
        if reading == Reading::Pieces {
            if let Some(done) = Self::parse_in_pieces(source_name, text, env, base) {
                return done;
            }
        }
        let fail = |issues: Vec<ConfigIssue>| ConfigError {
            source_name: source_name.to_string(),
            issues,
        };
        let doc = ImDocument::parse(text).map_err(|e| fail(vec![syntax::issue(text, &e)]))?;
        let mut issues = Issues::new(text);
        let top = raw::top(doc.as_table(), &mut issues);
        let file = RawFile::read(&top, &mut issues);
        let tables = Encoders::whole(&top, &mut issues);
        match Self::resolve(source_name, file, &tables, issues, env, base) {
            Some(done) => done,
            // The whole document's tables are always read to the end.
            None => Err(fail(Vec::new())),
        }
    }

    /// [`parse`](Self::parse) one encoder table at a time ([`split`]); `None` when the
    /// file cannot be read so and must be read whole.
    fn parse_in_pieces(
        source_name: &str,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        base: Option<&Path>,
    ) -> Option<Result<Self, ConfigError>> {
        let split = split::split(text)?;
        let doc = ImDocument::parse(split.top.as_str()).ok()?;
        if doc.contains_key("encoder") {
            return None;
        }
        let mut issues = Issues::new(text);
        let top = raw::top(doc.as_table(), &mut issues);
        let file = RawFile::read(&top, &mut issues);
        let pieces = Encoders::Pieces {
            text,
            split: &split,
        };
        Self::resolve(source_name, file, &pieces, issues, env, base)
    }

    /// Validates what was read, resolving the encoders one at a time; `None` when a
    /// piece of the file did not stand on its own (read it whole instead).
    fn resolve(
        source_name: &str,
        raw: RawFile,
        tables: &Encoders<'_>,
        mut issues: Issues,
        env: &dyn Fn(&str) -> Option<String>,
        base: Option<&Path>,
    ) -> Option<Result<Self, ConfigError>> {
        let admin_listen = match &raw.admin_listen {
            None => DEFAULT_ADMIN_LISTEN.parse().ok(),
            Some(at) => match at.value.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    issues.error(
                        "admin_listen",
                        at.line,
                        format!(
                            "{} is not an address like 127.0.0.1:9898",
                            issues::quoted(&at.value)
                        ),
                    );
                    None
                }
            },
        };
        let files = SecretFiles {
            base,
            allow_insecure: raw
                .allow_insecure_password_files
                .as_ref()
                .is_some_and(|at| at.value),
        };
        let admin = admin::resolve(&raw, admin_listen, env, &files, &mut issues);
        let cluster = raw
            .cluster
            .as_ref()
            .and_then(|c| cluster::resolve(c, env, &mut issues));
        let metrics = MetricsOptions::default().per_encoder_histograms(
            raw.metrics
                .as_ref()
                .and_then(|m| m.per_encoder_histograms.as_ref())
                .is_some_and(|at| at.value),
        );
        let defaults =
            Tunables::default().overridden(raw.defaults.as_ref(), "defaults", &mut issues);
        if tables.len() == 0 {
            issues.error(
                "encoder",
                None,
                "no [[encoder]] entries: nothing to supervise",
            );
        }
        let shared = Arc::new(defaults.clone());
        // Each raw encoder is dropped as soon as it is resolved: a large fleet's
        // working set is the resolved list, not that and every raw table besides.
        let mut seen = SeenIds::with_capacity(tables.len());
        let mut encoders = Vec::with_capacity(tables.len());
        let read = tables.each(&mut issues, |enc, issues| {
            if let Some(id) = &enc.id {
                let trimmed = id.value.trim();
                if let Some(first) = seen.duplicate(trimmed, id.line) {
                    let first = first.map_or(String::new(), |l| format!(" (first on line {l})"));
                    issues.error(
                        format!("{}.id", enc.key),
                        id.line,
                        format!("duplicate encoder id {}{first}", issues::quoted(trimmed)),
                    );
                }
            }
            if let Some(e) = encoder::resolve(&enc, &shared, env, &files, issues) {
                encoders.push(e);
            }
        });
        if !read {
            return None;
        }
        drop(seen);
        if let (Some(raw), Some(settings)) = (&raw.cluster, &cluster) {
            cluster::check_request_timeouts(raw, settings, &encoders, &mut issues);
        }
        let (errors, warnings) = issues.finish();
        Some(match admin_listen {
            Some(admin_listen) if errors.is_empty() => Ok(Self {
                admin_listen,
                admin,
                cluster,
                defaults,
                metrics,
                encoders,
                warnings,
            }),
            _ => Err(ConfigError {
                source_name: source_name.to_string(),
                issues: errors,
            }),
        })
    }
}

/// How [`FleetConfig::parse_as`] reads the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reading {
    /// One encoder's table at a time where the file allows it ([`split`]).
    Pieces,
    /// The whole document at once.
    Whole,
}

/// Letters, digits, `.`, `_` and `-`, 1 to 64 of them: encoder ids, cluster and node
/// names (they become metric labels, URL paths and etcd keys).
fn is_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

#[cfg(test)]
mod tests;
