//! Collects every mistake (and warning) found while one file is read and validated,
//! each with its key and line.

use std::ops::Range;

use super::{lines::LineIndex, ConfigIssue};

/// Mistakes and warnings of one file, and the line index to place them.
#[derive(Debug)]
pub(super) struct Issues {
    lines: LineIndex,
    errors: Vec<ConfigIssue>,
    warnings: Vec<ConfigIssue>,
}

impl Issues {
    pub(super) fn new(text: &str) -> Self {
        Self {
            lines: LineIndex::new(text),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The line where `span` starts.
    pub(super) fn line(&self, span: Option<Range<usize>>) -> Option<usize> {
        self.lines.line_of_span(span)
    }

    /// Notes a mistake: the configuration will be refused.
    pub(super) fn error(
        &mut self,
        key: impl Into<String>,
        line: Option<usize>,
        message: impl Into<String>,
    ) {
        self.errors.push(ConfigIssue {
            key: key.into(),
            line,
            message: message.into(),
        });
    }

    /// Notes something accepted that the operator should know about.
    pub(super) fn warn(
        &mut self,
        key: impl Into<String>,
        line: Option<usize>,
        message: impl Into<String>,
    ) {
        self.warnings.push(ConfigIssue {
            key: key.into(),
            line,
            message: message.into(),
        });
    }

    /// How many mistakes so far; compare before and after a step to know whether it
    /// found any.
    pub(super) fn error_count(&self) -> usize {
        self.errors.len()
    }

    /// The mistakes and the warnings, each in file order (entries without a line last).
    pub(super) fn finish(self) -> (Vec<ConfigIssue>, Vec<ConfigIssue>) {
        let (mut errors, mut warnings) = (self.errors, self.warnings);
        // Stable: mistakes on one line keep the order they were found in.
        errors.sort_by_key(|i| i.line.unwrap_or(usize::MAX));
        warnings.sort_by_key(|i| i.line.unwrap_or(usize::MAX));
        (errors, warnings)
    }
}

/// Text from the file as it may be shown back in a message: at most 64 characters,
/// escaped. Never used for values that may be secrets.
pub(super) fn quoted(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}
