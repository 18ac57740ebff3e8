//! conn-supervisor library entry (filled by a later issue).
