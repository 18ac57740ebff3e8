//! Configuration validation at fleet scale: the same generated file shape with 10 000,
//! 20 000 and 40 000 encoders. Validation must grow linearly: 40 000 encoders in under
//! twice the time of 20 000 (the ratio is what counts; this machine is shared and noisy).
//!
//! `cargo bench -p conn-supervisor --bench config`; medians in
//! `target/criterion/config/{10000,20000,40000}/new/estimates.json`.

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::{fmt::Write, time::Duration};

use conn_supervisor::config::FleetConfig;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

/// The supervisor binary's allocator (`src/main.rs`): what it measures is what the
/// supervisor runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A fleet file with `n` encoders, every fourth one with overrides and a password
/// from the environment, so overrides and secret lookups are part of the work.
fn fleet_text(n: usize) -> String {
    let mut text =
        String::from("admin_listen = \"127.0.0.1:9898\"\n\n[defaults]\ncheck_interval = \"30s\"\n");
    for i in 0..n {
        let _ = write!(
            text,
            "\n[[encoder]]\nid = \"enc-{i:05}\"\nurl = \"http://10.{}.{}.{}:8080\"\nexpect_streaming = true\n",
            i / 65_536,
            (i / 256) % 256,
            i % 256
        );
        if i % 4 == 0 {
            let _ = write!(
                text,
                "password_env = \"HELO_PW\"\n[encoder.overrides]\ncheck_interval = \"10s\"\nrecovery_backoff = 5\n"
            );
        }
    }
    text
}

fn validation(c: &mut Criterion) {
    let env = |var: &str| (var == "HELO_PW").then(|| "bench-secret".to_string());
    let mut group = c.benchmark_group("config");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    for n in [10_000, 20_000, 40_000] {
        let text = fleet_text(n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &text, |b, text| {
            b.iter(
                || match FleetConfig::parse("fleet.toml", text, &env, None) {
                    Ok(cfg) => assert_eq!(cfg.encoders.len(), n),
                    Err(e) => panic!("generated config is invalid: {e}"),
                },
            )
        });
    }
    group.finish();
}

criterion_group!(benches, validation);
criterion_main!(benches);
