//! The file as written, before validation: every value keeps its span so errors can
//! name the line.

use serde::Deserialize;
use toml::Spanned;

pub(super) use super::tunables::RawTunables;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub(super) admin_listen: Option<Spanned<String>>,
    pub(super) defaults: Option<RawTunables>,
    #[serde(default)]
    pub(super) encoder: Vec<RawEncoder>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEncoder {
    pub(super) id: Spanned<String>,
    pub(super) url: Spanned<String>,
    pub(super) password: Option<Spanned<String>>,
    pub(super) password_file: Option<Spanned<String>>,
    pub(super) password_env: Option<Spanned<String>>,
    pub(super) expect_streaming: Option<bool>,
    pub(super) expect_recording: Option<bool>,
    pub(super) hold: Option<bool>,
    pub(super) overrides: Option<RawTunables>,
}

/// A duration as text (`"30s"`) or a number of seconds.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
pub(super) enum RawDuration {
    Text(String),
    Secs(f64),
}

/// Pulls the offending key out of a toml/serde message such as
/// "unknown field `foo`, expected one of …" so the error leads with it.
pub(super) fn key_of_toml_error(message: &str) -> String {
    for marker in ["unknown field `", "missing field `", "duplicate key `"] {
        if let Some(rest) = message.split(marker).nth(1) {
            if let Some(key) = rest.split('`').next() {
                return key.to_string();
            }
        }
    }
    "(syntax)".to_string()
}
