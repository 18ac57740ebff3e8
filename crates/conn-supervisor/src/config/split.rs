//! A large fleet file read one `[[encoder]]` table at a time.
//!
//! `toml_edit`'s document of a whole file is many times the size of its text, so for
//! tens of thousands of encoders it outgrows the caches and every step of the walk
//! costs more the larger the fleet: validation grew faster than the file. Read in
//! pieces, the working set is one encoder's document, whatever the fleet's size.
//!
//! The file is cut at every line that starts an `[[encoder]]` table; an encoder's piece
//! runs to the next header that is not `[encoder.…]` or `[[encoder…]]`. Everything else
//! (the settings at the top, `[defaults]`, `[cluster]`, … wherever they are) is read as
//! one document in which the encoders' pieces are blanked out with spaces, so every
//! byte keeps its offset and every line its number.
//!
//! A cut is only right when the line really is a header, not text inside a multi-line
//! string or array. When it is not, the piece before it does not end where its value
//! does, and that piece fails to parse on its own. Any piece that fails, or a top
//! document that still has an `encoder` key, sends the whole file back to the
//! ordinary reading, which also gives syntax errors their exact place.

use std::ops::Range;

/// The header that starts an encoder's piece, spaces removed.
const START: &str = "[[encoder]]";

/// The file cut into the top document and the encoders' pieces.
#[derive(Debug)]
pub(super) struct Split {
    /// The file with every encoder's piece blanked out, same length.
    pub(super) top: String,
    /// Each encoder's piece: a byte range of the file, starting at its header.
    pub(super) encoders: Vec<Range<usize>>,
}

/// What a line starting with `[` is, for the cut.
#[derive(Debug, PartialEq, Eq)]
enum Header {
    /// `[[encoder]]`: a new encoder's piece.
    Encoder,
    /// `[encoder.…]` or `[[encoder.…]]`: part of the current encoder's table.
    WithinEncoder,
    /// Anything else.
    Other,
}

fn header(line: &str) -> Option<Header> {
    let line = line.trim_start();
    if !line.starts_with('[') {
        return None;
    }
    Some(if squeezed_starts_with(line, START) {
        Header::Encoder
    } else if squeezed_starts_with(line, "[encoder.") || squeezed_starts_with(line, "[[encoder.") {
        Header::WithinEncoder
    } else {
        Header::Other
    })
}

/// Whether `line`, its whitespace left out, starts with `prefix`.
fn squeezed_starts_with(line: &str, prefix: &str) -> bool {
    let mut chars = line.chars().filter(|c| !c.is_whitespace());
    prefix.chars().all(|p| chars.next() == Some(p))
}

/// The file cut into pieces; `None` when it has no `[[encoder]]` line (nothing to
/// gain).
pub(super) fn split(text: &str) -> Option<Split> {
    let mut encoders: Vec<Range<usize>> = Vec::new();
    let mut current: Option<usize> = None;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        match header(line) {
            Some(Header::Encoder) => {
                if let Some(start) = current.replace(at) {
                    encoders.push(start..at);
                }
            }
            Some(Header::Other) => {
                if let Some(start) = current.take() {
                    encoders.push(start..at);
                }
            }
            Some(Header::WithinEncoder) | None => {}
        }
        at += line.len();
    }
    if let Some(start) = current {
        encoders.push(start..text.len());
    }
    if encoders.is_empty() {
        return None;
    }
    let mut top = text.as_bytes().to_vec();
    for piece in &encoders {
        // One run of spaces, ending with the piece's own newline: the top document
        // keeps a line break where the next header follows, and has no empty lines
        // to walk through.
        let keep_newline = text.as_bytes()[..piece.end].ends_with(b"\n");
        let end = piece.end - usize::from(keep_newline);
        top[piece.start..end].fill(b' ');
    }
    // Whole characters were replaced, so this cannot fail; if it did, the file is
    // read whole.
    let top = String::from_utf8(top).ok()?;
    Some(Split { top, encoders })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_told_apart_with_or_without_spaces_and_comments() {
        assert_eq!(header("[[encoder]]\n"), Some(Header::Encoder));
        assert_eq!(header("  [[ encoder ]] # cam\r\n"), Some(Header::Encoder));
        assert_eq!(header("[encoder.overrides]\n"), Some(Header::WithinEncoder));
        assert_eq!(header("[[encoder.x]]\n"), Some(Header::WithinEncoder));
        assert_eq!(header("[encoders]\n"), Some(Header::Other));
        assert_eq!(header("[encoder]\n"), Some(Header::Other));
        assert_eq!(header("[\"encoder\".overrides]\n"), Some(Header::Other));
        assert_eq!(header("[defaults]"), Some(Header::Other));
        assert_eq!(header("id = \"[[encoder]]\"\n"), None);
    }

    #[test]
    fn pieces_run_from_each_encoder_header_to_the_next_other_header() {
        let text = "a = 1\n[[encoder]]\nid = \"x\"\n[encoder.overrides]\nk = 2\n\
                    [[encoder]]\nid = \"y\"\n[defaults]\nk = 3\n[[encoder]]\nid = \"z\"";
        let split = split(text).unwrap();
        let pieces: Vec<&str> = split.encoders.iter().map(|r| &text[r.clone()]).collect();
        assert_eq!(
            pieces,
            [
                "[[encoder]]\nid = \"x\"\n[encoder.overrides]\nk = 2\n",
                "[[encoder]]\nid = \"y\"\n",
                "[[encoder]]\nid = \"z\"",
            ]
        );
        assert_eq!(split.top.len(), text.len());
        assert_eq!(split.top.lines().count(), 6, "{:?}", split.top);
        assert!(split.top.starts_with("a = 1\n"));
        assert!(split.top.contains("\n[defaults]\nk = 3\n"));
        assert!(!split.top.contains("id"));
    }

    #[test]
    fn a_file_without_encoder_headers_is_not_split() {
        assert!(split("a = 1\n[defaults]\n").is_none());
        assert!(split("").is_none());
    }
}
