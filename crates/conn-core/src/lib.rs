//! conn-core (filled by a later issue).
