//! Device text made safe for a terminal or a log line.
//!
//! A stand-in until a shared helper exists: the lead swaps this for it.

use std::io;

use serde::Serialize;

/// Longest text shown, in characters; the rest is cut with an ellipsis.
const MAX_CHARS: usize = 1_000;

/// Escapes control characters (ESC, CR, LF, DEL, C1 …) and the bidirectional overrides
/// that can reorder what a terminal shows, and bounds the length.
pub(crate) fn shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_CHARS + 8));
    for (i, c) in text.chars().enumerate() {
        if i == MAX_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() || is_bidi_control(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Serializes `value` as one line of JSON that is also safe on a terminal: besides
/// what JSON escapes anyway (`"`, `\\`, U+0000–U+001F), DEL, the C1 controls
/// (U+0080–U+009F, e.g. the 8-bit CSI) and the bidirectional overrides are written as
/// `\uXXXX`. Still plain JSON: it parses back to the same text.
pub(crate) fn json_line<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    value.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out,
        TerminalSafe,
    ))?;
    out.push(b'\n');
    Ok(out)
}

struct TerminalSafe;

impl serde_json::ser::Formatter for TerminalSafe {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if c.is_control() || is_bidi_control(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                // Every such character is in the BMP, so one `\uXXXX` is enough.
                write!(writer, "\\u{:04x}", u32::from(c))?;
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_bounds() {
        assert_eq!(shown("plain text °C"), "plain text °C");
        assert_eq!(shown("a\u{1b}[2Jb\r\n\u{7f}"), r"a\u{1b}[2Jb\r\n\u{7f}");
        assert_eq!(shown("x\u{202e}y"), r"x\u{202e}y");
        let long = "z".repeat(5_000);
        let s = shown(&long);
        assert_eq!(s.chars().count(), MAX_CHARS + 1);
        assert!(s.ends_with('…'));
    }

    #[test]
    fn json_lines_escape_what_a_terminal_would_act_on_and_still_parse() {
        let text = "a\u{9b}2J b\u{202e}c\u{7f} \u{1b}[31m °C \"q\"";
        let line = json_line(&serde_json::json!({ "str_value": text })).unwrap();
        let line = String::from_utf8(line).unwrap();
        assert_eq!(
            line,
            "{\"str_value\":\"a\\u009b2J b\\u202ec\\u007f \\u001b[31m °C \\\"q\\\"\"}\n"
        );
        assert!(!line
            .trim_end()
            .chars()
            .any(|c| c.is_control() || is_bidi_control(c)));
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["str_value"], text);
    }
}
