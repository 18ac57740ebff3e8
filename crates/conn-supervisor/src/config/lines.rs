//! Byte offsets to line numbers: the newlines are found once per file, then each
//! lookup searches outwards from the previous one, so naming the line of every value
//! stays linear in the size of the file.

use std::cell::Cell;

/// The offsets of every `\n` of one text, in order.
#[derive(Debug)]
pub(super) struct LineIndex {
    newlines: Vec<usize>,
    /// Where the last lookup landed. Lookups come in file order, one table after the
    /// other, so the next answer is almost always a few entries on: searched from
    /// here, a lookup touches the same few cache lines instead of a binary search's
    /// path through an index of megabytes.
    last: Cell<usize>,
}

impl LineIndex {
    pub(super) fn new(text: &str) -> Self {
        let newlines = text
            .bytes()
            .enumerate()
            .filter_map(|(i, b)| (b == b'\n').then_some(i))
            .collect();
        Self {
            newlines,
            last: Cell::new(0),
        }
    }

    /// The 1-based line holding byte `offset` (a newline belongs to the line it ends).
    pub(super) fn line(&self, offset: usize) -> usize {
        let n = &self.newlines;
        let at = self.last.get().min(n.len());
        // Gallop from the last answer towards `offset`, then search the bracket found.
        let (mut lo, mut hi) = if at < n.len() && n[at] < offset {
            let mut step = 1;
            let mut lo = at + 1;
            while lo + step <= n.len() && n[lo + step - 1] < offset {
                lo += step;
                step *= 2;
            }
            (lo, (lo + step).min(n.len()))
        } else {
            let mut step = 1;
            let mut hi = at;
            while hi >= step && n[hi - step] >= offset {
                hi -= step;
                step *= 2;
            }
            (hi.saturating_sub(step), hi)
        };
        // Invariant: every entry before `lo` is < offset, every one from `hi` is >=.
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if n[mid] < offset {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        self.last.set(lo);
        lo + 1
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

    #[test]
    fn agrees_in_any_order_of_lookups() {
        let text: String = (0..300)
            .map(|i| {
                if i % 7 == 0 {
                    "\n".to_string()
                } else {
                    format!("x{i}\n")
                }
            })
            .collect();
        let index = LineIndex::new(&text);
        // Forwards, backwards, jumps both ways, and the same offset twice.
        let mut offsets: Vec<usize> = (0..=text.len() + 1).collect();
        offsets.extend((0..=text.len()).rev());
        offsets.extend((0..200).map(|i| (i * 7919) % (text.len() + 1)));
        for offset in offsets {
            assert_eq!(
                index.line(offset),
                by_scanning(&text, offset),
                "at {offset}"
            );
        }
    }
}
