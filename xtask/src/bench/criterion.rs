//! Runs the criterion benchmarks and reads their medians back.

use std::path::{Path, PathBuf};

use crate::run::cargo;

/// Criterion timing, seconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) warm_up_s: f64,
    pub(crate) measure_s: f64,
}

/// `cargo bench -p conn-supervisor --bench BENCH`; stale results of `group` are removed
/// first so a bench that failed cannot report an old number.
pub(crate) fn run(root: &Path, bench: &str, group: &str, t: Timing) -> Result<(), String> {
    let dir = group_dir(root, group);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let (w, m) = (t.warm_up_s.to_string(), t.measure_s.to_string());
    cargo(&[
        "bench",
        "-p",
        "conn-supervisor",
        "--bench",
        bench,
        "--",
        "--warm-up-time",
        &w,
        "--measurement-time",
        &m,
        "--noplot",
    ])
}

/// The median of `group/id`, nanoseconds.
pub(crate) fn median_ns(root: &Path, group: &str, id: &str) -> Result<f64, String> {
    let path = group_dir(root, group)
        .join(id)
        .join("new")
        .join("estimates.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: {e} (did the bench fail?)", path.display()))?;
    median_of(&text).ok_or_else(|| format!("no median in {}", path.display()))
}

fn group_dir(root: &Path, group: &str) -> PathBuf {
    root.join("target").join("criterion").join(group)
}

fn median_of(estimates: &str) -> Option<f64> {
    let rest = &estimates[estimates.find("\"median\"")?..];
    let key = "\"point_estimate\":";
    let rest = &rest[rest.find(key)? + key.len()..];
    let end = rest.find([',', '}'])?;
    rest[..end].trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_median_point_estimate() {
        let text = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":3.0},"point_estimate":2.0,"standard_error":0.1},"median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":160.5,"upper_bound":170.1},"point_estimate":165.25,"standard_error":1.2}}"#;
        assert_eq!(median_of(text), Some(165.25));
        assert_eq!(median_of("{}"), None);
    }
}
