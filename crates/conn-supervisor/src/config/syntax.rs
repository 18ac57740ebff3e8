//! A file that is not TOML at all: one mistake (the parser cannot go on), reported
//! with the line and, as far as the text shows it, the key.

use toml_edit::TomlError;

use super::{lines::LineIndex, ConfigIssue};

/// The issue for a syntax error in `text`.
pub(super) fn issue(text: &str, err: &TomlError) -> ConfigIssue {
    let offset = err.span().map(|s| s.start);
    let line = offset.map(|o| LineIndex::new(text).line(o));
    // The parser's message names what it expected, never the value it choked on, so
    // it is safe to show even when the line holds a password.
    let message = err
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    ConfigIssue {
        key: line.map_or_else(|| "(syntax)".to_string(), |l| key_at(text, l)),
        line,
        message: format!("not valid TOML: {message}"),
    }
}

/// The key written on `line` (1-based), with the table it is in, e.g.
/// `encoder[1].url`; `(syntax)` when the line shows none.
fn key_at(text: &str, line: usize) -> String {
    let mut table = String::new();
    // How many `[[name]]` tables so far, to name them `name[i]`.
    let mut arrays: Vec<(String, usize)> = Vec::new();
    let mut here = "";
    for (n, l) in text.lines().enumerate().take(line) {
        let l = l.trim();
        if n + 1 == line {
            here = l;
            break;
        }
        if let Some(name) = l.strip_prefix("[[").and_then(|r| r.split_once("]]")) {
            let name = name.0.trim().to_string();
            let count = match arrays.iter_mut().find(|(a, _)| *a == name) {
                Some((_, c)) => {
                    *c += 1;
                    *c
                }
                None => {
                    arrays.push((name.clone(), 1));
                    1
                }
            };
            table = format!("{name}[{}]", count - 1);
        } else if let Some(name) = l.strip_prefix('[').and_then(|r| r.split_once(']')) {
            let name = name.0.trim();
            // `[encoder.overrides]` belongs to the latest `[[encoder]]`.
            table = match name.split_once('.').and_then(|(head, rest)| {
                arrays
                    .iter()
                    .find(|(a, _)| a == head)
                    .map(|(a, c)| format!("{a}[{}].{rest}", c - 1))
            }) {
                Some(t) => t,
                None => name.to_string(),
            };
        }
    }
    let key = here.split_once('=').map(|(k, _)| k.trim()).filter(|k| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    });
    match (key, table.is_empty()) {
        (Some(k), true) => k.to_string(),
        (Some(k), false) => format!("{table}.{k}"),
        (None, false) if here.starts_with('[') => "(syntax)".to_string(),
        (None, false) => table,
        (None, true) => "(syntax)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::key_at;

    #[test]
    fn keys_of_lines() {
        let text = "a = 1\n[defaults]\nx = 2\n[[encoder]]\nid = 3\n[[encoder]]\nurl = 4\n[encoder.overrides]\ny = 5\n[[encoder]]\n???\n";
        assert_eq!(key_at(text, 1), "a");
        assert_eq!(key_at(text, 3), "defaults.x");
        assert_eq!(key_at(text, 5), "encoder[0].id");
        assert_eq!(key_at(text, 7), "encoder[1].url");
        assert_eq!(key_at(text, 9), "encoder[1].overrides.y");
        assert_eq!(key_at(text, 11), "encoder[2]");
        assert_eq!(key_at(text, 10), "(syntax)");
    }
}
