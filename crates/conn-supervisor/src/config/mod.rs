//! The fleet configuration file (TOML): parsed strictly, validated completely, and
//! reported with the key and line of every mistake before anything starts.

mod duration;
mod raw;
mod tunables;

use std::{collections::HashMap, fmt, net::SocketAddr, path::Path};

use helo_transport::{DeviceConfig, Password};

use self::raw::{RawEncoder, RawFile};
pub use self::{duration::parse_duration, tunables::Tunables};

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
    /// pool, thermal and scoring settings are fleet-wide).
    pub tunables: Tunables,
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
    /// Fleet-wide defaults (before per-encoder overrides).
    pub defaults: Tunables,
    /// The encoders.
    pub encoders: Vec<EncoderConfig>,
}

impl FleetConfig {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
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
    /// (for `password_env`); `base` resolves relative `password_file` paths.
    pub fn parse(
        source_name: &str,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        base: Option<&Path>,
    ) -> Result<Self, ConfigError> {
        let fail = |issues: Vec<ConfigIssue>| ConfigError {
            source_name: source_name.to_string(),
            issues,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            fail(vec![ConfigIssue {
                key: raw::key_of_toml_error(e.message()),
                line,
                message: e.message().trim().to_string(),
            }])
        })?;
        let mut issues = Vec::new();
        let admin_listen = match &raw.admin_listen {
            None => DEFAULT_ADMIN_LISTEN.parse().ok(),
            Some(s) => match s.get_ref().parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    issues.push(ConfigIssue {
                        key: "admin_listen".into(),
                        line: Some(line_of(text, s.span().start)),
                        message: format!("{:?} is not an address like 127.0.0.1:9898", s.get_ref()),
                    });
                    None
                }
            },
        };
        let defaults =
            Tunables::default().overridden(raw.defaults.as_ref(), "defaults", text, &mut issues);
        if raw.encoder.is_empty() {
            issues.push(ConfigIssue {
                key: "encoder".into(),
                line: None,
                message: "no [[encoder]] entries: nothing to supervise".into(),
            });
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut encoders = Vec::new();
        for (i, enc) in raw.encoder.iter().enumerate() {
            let key = format!("encoder[{i}]");
            if let Some(e) = resolve_encoder(enc, &key, &defaults, text, env, base, &mut issues) {
                let line = line_of(text, enc.id.span().start);
                if let Some(first) = seen.insert(e.id.clone(), line) {
                    issues.push(ConfigIssue {
                        key: format!("{key}.id"),
                        line: Some(line),
                        message: format!("duplicate encoder id {:?} (first on line {first})", e.id),
                    });
                    continue;
                }
                encoders.push(e);
            }
        }
        issues.sort_by_key(|i| i.line.unwrap_or(usize::MAX));
        match admin_listen {
            Some(admin_listen) if issues.is_empty() => Ok(Self {
                admin_listen,
                defaults,
                encoders,
            }),
            _ => Err(fail(issues)),
        }
    }
}

fn resolve_encoder(
    enc: &RawEncoder,
    key: &str,
    defaults: &Tunables,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    base: Option<&Path>,
    issues: &mut Vec<ConfigIssue>,
) -> Option<EncoderConfig> {
    let before = issues.len();
    let mut issue = |field: &str, span: std::ops::Range<usize>, message: String| {
        issues.push(ConfigIssue {
            key: format!("{key}.{field}"),
            line: Some(line_of(text, span.start)),
            message,
        })
    };
    let id = enc.id.get_ref().trim().to_string();
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        issue(
            "id",
            enc.id.span(),
            format!("{id:?} must be 1–64 characters of letters, digits, '.', '_' or '-'"),
        );
    }
    let sources = [
        enc.password.as_ref().map(|s| ("password", s.span())),
        enc.password_file
            .as_ref()
            .map(|s| ("password_file", s.span())),
        enc.password_env
            .as_ref()
            .map(|s| ("password_env", s.span())),
    ];
    let given: Vec<_> = sources.iter().flatten().collect();
    let mut password = None;
    if given.len() > 1 {
        issue(
            given[1].0,
            given[1].1.clone(),
            "give at most one of password, password_file, password_env".into(),
        );
    } else if let Some(p) = &enc.password {
        password = Some(Password::new(p.get_ref().clone()));
    } else if let Some(var) = &enc.password_env {
        match env(var.get_ref()) {
            Some(v) if !v.is_empty() => password = Some(Password::new(v)),
            _ => issue(
                "password_env",
                var.span(),
                format!("environment variable {} is not set", var.get_ref()),
            ),
        }
    } else if let Some(file) = &enc.password_file {
        let path = Path::new(file.get_ref());
        let path = match base {
            Some(b) if path.is_relative() => b.join(path),
            _ => path.to_path_buf(),
        };
        match std::fs::read_to_string(&path) {
            Ok(s) if !s.trim_end_matches(['\r', '\n']).is_empty() => {
                password = Some(Password::new(s.trim_end_matches(['\r', '\n']).to_string()))
            }
            Ok(_) => issue(
                "password_file",
                file.span(),
                format!("{} is empty", path.display()),
            ),
            Err(e) => issue(
                "password_file",
                file.span(),
                format!("cannot read {}: {e}", path.display()),
            ),
        }
    }
    let tunables = defaults.overridden(
        enc.overrides.as_ref(),
        &format!("{key}.overrides"),
        text,
        issues,
    );
    for (name, offset) in enc
        .overrides
        .as_ref()
        .map(|o| o.fleet_only())
        .unwrap_or_default()
    {
        issues.push(ConfigIssue {
            key: format!("{key}.overrides.{name}"),
            line: Some(line_of(text, offset)),
            message: "applies to the whole fleet; set it in [defaults]".into(),
        });
    }
    let device = DeviceConfig::from_url(id.as_str(), enc.url.get_ref())
        .and_then(|d| d.with_request_timeout(tunables.request_timeout))
        .and_then(|d| d.with_connect_timeout(tunables.connect_timeout));
    let device = match device {
        Ok(d) => d.with_password(password),
        Err(e) => {
            let message = match &e {
                helo_transport::HeloError::InvalidConfig { detail, .. } => detail.clone(),
                other => other.to_string(),
            };
            issues.push(ConfigIssue {
                key: format!("{key}.url"),
                line: Some(line_of(text, enc.url.span().start)),
                message,
            });
            return None;
        }
    };
    (issues.len() == before).then(|| EncoderConfig {
        id,
        device,
        expect_streaming: enc.expect_streaming.unwrap_or(false),
        expect_recording: enc.expect_recording.unwrap_or(false),
        hold: enc.hold.unwrap_or(false),
        tunables,
    })
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset.min(text.len()))
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests;
