//! `cargo xtask test`: what CI runs.

use crate::run::cargo;

pub(crate) fn run(extra: &[String]) -> Result<(), String> {
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ])?;
    // Docs are part of the public surface; broken intra-doc links fail the build.
    let mut test = vec!["test", "--workspace", "--all-features"];
    test.extend(extra.iter().map(String::as_str));
    cargo(&test)
}
