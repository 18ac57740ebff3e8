//! Byte offsets to line numbers: the newlines are found once per file, then each
//! lookup is a binary search, so naming the line of every mistake stays linear in the
//! size of the file.

/// The offsets of every `\n` of one text, in order.
#[derive(Debug)]
pub(super) struct LineIndex {
    newlines: Vec<usize>,
}

impl LineIndex {
    pub(super) fn new(text: &str) -> Self {
        let newlines = text
            .bytes()
            .enumerate()
            .filter_map(|(i, b)| (b == b'\n').then_some(i))
            .collect();
        Self { newlines }
    }

    /// The 1-based line holding byte `offset` (a newline belongs to the line it ends).
    pub(super) fn line(&self, offset: usize) -> usize {
        self.newlines.partition_point(|&nl| nl < offset) + 1
    }

    /// The line of where a span starts, when there is a span.
    pub(super) fn line_of_span(&self, span: Option<std::ops::Range<usize>>) -> Option<usize> {
        span.map(|s| self.line(s.start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition the index replaces: count the newlines before `offset`.
    fn by_scanning(text: &str, offset: usize) -> usize {
        text.as_bytes()[..offset.min(text.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    #[test]
    fn agrees_with_counting_newlines_at_every_offset() {
        for text in ["", "a", "\n", "a\nb", "a\n\nb\n", "\n\nabc\r\ndef\n\n"] {
            let index = LineIndex::new(text);
            for offset in 0..=text.len() + 2 {
                assert_eq!(
                    index.line(offset),
                    by_scanning(text, offset),
                    "{text:?} at {offset}"
                );
            }
        }
    }
}
