//! Text that came from a device, made safe to show: bounded in length and with every
//! control character escaped, so a hostile or broken device can neither flood a log
//! line nor forge one (`\r\n`), nor break a terminal (ANSI escapes).
//!
//! This is the one place that does it; errors, logs, the admin API, metric labels and
//! monitoring-plugin output all take device text through [`device_text`].

use std::borrow::Cow;

/// The longest device text shown, in bytes, before the ellipsis.
pub const DEVICE_TEXT_MAX: usize = 256;

/// `text` bounded to [`DEVICE_TEXT_MAX`] bytes (cut at a character boundary, with `…`)
/// and with control characters escaped (`\n`, `\r`, `\t`, `\u{1b}` …).
pub fn device_text(text: &str) -> Cow<'_, str> {
    bounded_text(text, DEVICE_TEXT_MAX)
}

/// [`device_text`] with a bound of `max` bytes (escapes count towards it).
pub fn bounded_text(text: &str, max: usize) -> Cow<'_, str> {
    let clean = text.len() <= max && !text.chars().any(char::is_control);
    if clean {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(max) + 4);
    for c in text.chars() {
        let start = out.len();
        if c.is_control() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            }
        } else {
            out.push(c);
        }
        if out.len() > max {
            out.truncate(start);
            out.push('…');
            break;
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_clean_text_is_borrowed() {
        assert!(matches!(
            device_text("Parameter not found"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn control_characters_are_escaped_so_no_line_can_be_forged() {
        let t = device_text("-1\r\nX-Injected: yes\u{1b}[31m\u{7}");
        assert_eq!(t, "-1\\r\\nX-Injected: yes\\u{1b}[31m\\u{7}");
        assert!(!t.chars().any(char::is_control));
    }

    #[test]
    fn long_text_is_bounded_at_a_character_boundary() {
        let long = "é".repeat(100_000);
        let t = device_text(&long);
        assert!(t.len() <= DEVICE_TEXT_MAX + '…'.len_utf8(), "{}", t.len());
        assert!(t.ends_with('…'));
        let newlines = "\n".repeat(50);
        assert_eq!(bounded_text(&newlines, 9), "\\n\\n\\n\\n…");
    }
}
