//! conn-metrics (filled by a later issue).
