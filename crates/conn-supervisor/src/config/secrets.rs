//! Secrets named by the configuration (device passwords, the admin token): read from
//! the environment or from files, and never echoed in a message.

use std::{
    fmt,
    io::Read,
    path::{Path, PathBuf},
    sync::Arc,
};

use super::{issues::Issues, raw::At};

/// The admin API's bearer token. `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct AdminToken(Arc<str>);

impl AdminToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(Arc::from(token.into()))
    }

    /// The token itself; only the code that checks a request should call this.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this token. Takes the same time wherever the first
    /// difference is, so the token cannot be guessed byte by byte from response times.
    pub fn verify(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        let differ = a
            .iter()
            .zip(b)
            .fold(u8::from(a.len() != b.len()), |acc, (x, y)| acc | (x ^ y));
        differ == 0
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

impl fmt::Display for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where secret files are read, and whether loose permissions are accepted.
pub(super) struct SecretFiles<'a> {
    /// Relative paths are resolved against this (the configuration file's folder).
    pub(super) base: Option<&'a Path>,
    /// `allow_insecure_password_files = true`: a file readable by group or others is
    /// accepted with a warning instead of refused.
    pub(super) allow_insecure: bool,
}

impl SecretFiles<'_> {
    /// `path` as written, resolved against the configuration file's folder.
    pub(super) fn resolve(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        match self.base {
            Some(b) if path.is_relative() => b.join(path),
            _ => path.to_path_buf(),
        }
    }

    /// The secret held in the file named at `file` (without its final line break);
    /// mistakes go to `issues` under `key`, never with the file's content.
    pub(super) fn read(&self, key: &str, file: &At<String>, issues: &mut Issues) -> Option<String> {
        let path = self.resolve(&file.value);
        let shown = path.display();
        let mut f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                issues.error(key, file.line, format!("cannot read {shown}: {e}"));
                return None;
            }
        };
        // Checked on the opened file, so the file read is the file checked.
        match f.metadata() {
            Ok(m) if !m.is_file() => {
                issues.error(key, file.line, format!("{shown} is not a regular file"));
                return None;
            }
            Ok(m) => {
                if let Some(mode) = loose_mode(&m) {
                    if self.allow_insecure {
                        issues.warn(
                            key,
                            file.line,
                            format!(
                                "{shown} can be read by group or others (mode {mode:04o}); \
                                 accepted because allow_insecure_password_files = true"
                            ),
                        );
                    } else {
                        issues.error(
                            key,
                            file.line,
                            format!(
                                "{shown} can be read by group or others (mode {mode:04o}); \
                                 run `chmod 600 {shown}` (or set \
                                 allow_insecure_password_files = true to accept it)"
                            ),
                        );
                        return None;
                    }
                }
            }
            Err(e) => {
                issues.error(key, file.line, format!("cannot read {shown}: {e}"));
                return None;
            }
        }
        let mut text = String::new();
        if let Err(e) = f.read_to_string(&mut text) {
            issues.error(key, file.line, format!("cannot read {shown}: {e}"));
            return None;
        }
        let secret = text.trim_end_matches(['\r', '\n']);
        if secret.is_empty() {
            issues.error(key, file.line, format!("{shown} is empty"));
            return None;
        }
        Some(secret.to_string())
    }
}

/// The permission bits that let group or others read or change the file, if any.
#[cfg(unix)]
fn loose_mode(meta: &std::fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn loose_mode(_meta: &std::fs::Metadata) -> Option<u32> {
    None
}

/// The value of the environment variable named at `var`; mistakes go to `issues`
/// under `key`.
///
/// The name is shown back only when it looks like a conventional variable name
/// (upper case, digits, `_`): a password typed into the wrong key must not end up
/// in a log. A name that is not a variable name at all is refused without showing it.
pub(super) fn from_env(
    key: &str,
    var: &At<String>,
    env: &dyn Fn(&str) -> Option<String>,
    issues: &mut Issues,
) -> Option<String> {
    let name = var.value.as_str();
    let field = key.rsplit('.').next().unwrap_or(key);
    if !is_env_name(name) {
        issues.error(
            key,
            var.line,
            format!(
                "{field} must name an environment variable (letters, digits and '_', \
                 not starting with a digit); the value is not shown in case it is a secret"
            ),
        );
        return None;
    }
    match env(name) {
        Some(value) if !value.is_empty() => Some(value),
        _ if is_conventional_env_name(name) => {
            issues.error(
                key,
                var.line,
                format!("environment variable {name} is not set"),
            );
            None
        }
        _ => {
            issues.error(
                key,
                var.line,
                "the environment variable it names is not set (the name is not shown: \
                 it is not an UPPER_CASE name, so it may be a secret)",
            );
            None
        }
    }
}

/// `^[A-Za-z_][A-Za-z0-9_]*$`, at most 128 characters.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 128
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// An environment variable name as POSIX utilities use them: upper case, digits, `_`.
fn is_conventional_env_name(name: &str) -> bool {
    is_env_name(name)
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names() {
        for ok in ["HELO_PW", "_x", "a1", "Pw_2"] {
            assert!(is_env_name(ok), "{ok}");
        }
        for bad in [
            "",
            "1A",
            "HELO-PW",
            "hunter 2",
            "pw=x",
            "é",
            &"A".repeat(129),
        ] {
            assert!(!is_env_name(bad), "{bad}");
        }
        assert!(is_conventional_env_name("HELO_PW_2"));
        assert!(!is_conventional_env_name("hunter2"));
    }

    #[test]
    fn tokens_compare_whole_and_never_show() {
        let t = AdminToken::new("s3cret-token");
        assert!(t.verify("s3cret-token"));
        assert!(!t.verify("s3cret-tokem"));
        assert!(!t.verify("s3cret-toke"));
        assert!(!t.verify("s3cret-token!"));
        assert!(!t.verify(""));
        assert_eq!(format!("{t:?} {t}"), "AdminToken(<redacted>) <redacted>");
    }
}
