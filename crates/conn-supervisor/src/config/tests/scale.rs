//! Validation is linear in the number of encoders. Asserted only as a ratio of two
//! sizes measured side by side, never as a time (the absolute numbers live in
//! `benches/config.rs`).

use std::fmt::Write;

use super::*;

/// The shape `benches/config.rs` generates: every fourth encoder has overrides and a
/// password from the environment.
fn fleet_text(n: usize) -> String {
    let mut text = String::from("[defaults]\ncheck_interval = \"30s\"\n");
    for i in 0..n {
        let _ = write!(
            text,
            "\n[[encoder]]\nid = \"enc-{i:05}\"\nurl = \"http://10.{}.{}.{}:8080\"\nexpect_streaming = true\n",
            i / 65_536,
            (i / 256) % 256,
            i % 256
        );
        if i % 4 == 0 {
            text.push_str("password_env = \"HELO_PW\"\n[encoder.overrides]\ncheck_interval = \"10s\"\nrecovery_backoff = 5\n");
        }
    }
    text
}

/// How long one validation of `text` (`n` encoders) takes.
fn time_once(n: usize, text: &str) -> Duration {
    let start = tokio::time::Instant::now();
    let cfg = parse(text).unwrap();
    let took = start.elapsed();
    assert_eq!(cfg.encoders.len(), n);
    took
}

#[test]
fn validation_time_grows_linearly_not_quadratically() {
    // A linear validation doubles (plus noise); the quadratic one this replaces
    // quadrupled (10 000 -> 20 000 -> 40 000 encoders: 1.0 s, 3.8 s, 15.2 s). The bound
    // sits between the two so noise on a shared machine cannot decide it.
    const SMALL: usize = 2_000;
    let (small, large) = (fleet_text(SMALL), fleet_text(2 * SMALL));
    // Best of 3 (the run least disturbed by other work on the machine), interleaved
    // so a burst of load elsewhere hits both sizes alike.
    let mut best = (Duration::MAX, Duration::MAX);
    for _ in 0..3 {
        best.0 = best.0.min(time_once(SMALL, &small));
        best.1 = best.1.min(time_once(2 * SMALL, &large));
    }
    let ratio = best.1.as_secs_f64() / best.0.as_secs_f64();
    eprintln!(
        "{SMALL}: {:?}, {}: {:?}, ratio {ratio:.2}",
        best.0,
        2 * SMALL,
        best.1
    );
    assert!(
        ratio < 3.0,
        "validating {} encoders took {ratio:.2}x the time of {SMALL} ({:?} vs {:?})",
        2 * SMALL,
        best.1,
        best.0
    );
}
