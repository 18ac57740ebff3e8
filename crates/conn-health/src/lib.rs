//! conn-health (filled by a later issue).
