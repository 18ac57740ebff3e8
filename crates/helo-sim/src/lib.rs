//! helo-sim (filled by a later issue).
