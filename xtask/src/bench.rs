//! `cargo xtask bench`: criterion benchmarks and the fleet-scale sweep.

use crate::run::cargo;

pub(crate) fn run(_extra: &[String]) -> Result<(), String> {
    cargo(&["bench", "--workspace"])
}
