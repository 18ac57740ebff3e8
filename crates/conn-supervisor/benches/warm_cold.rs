//! Warm vs cold: a usable connection from the warm pool plus one parameter read,
//! against a cold connection (TCP connect, login, first read), side by side against
//! the same helo-sim device on loopback. Also checkout alone (no I/O).
//!
//! The device runs on its own runtime thread, as a separate device would; the client
//! side runs on a current-thread runtime.
//!
//! `cargo bench -p conn-supervisor --bench warm_cold`; `cargo xtask bench` reads the
//! medians from `target/criterion/warm_cold/*/new/estimates.json`.

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::{sync::Arc, time::Duration};

use conn_core::{HeloConnector, NoopObserver, PoolConfig, WarmupManager};
use criterion::{criterion_group, criterion_main, Criterion};
use helo_sim::{SimConfig, SimDevice};
use helo_transport::{names, Device, DeviceConfig, HeloClientExt, HeloConnection, Password};

const PASSWORD: &str = "bench-secret";
const MIN_WARM: usize = 3;

/// The simulated device on a runtime of its own; stops when dropped.
struct Sim {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sim {
    fn start() -> Result<Self, String> {
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return drop(url_tx.send(Err(e.to_string()))),
            };
            rt.block_on(async move {
                let config = SimConfig::default().with_password(PASSWORD);
                match SimDevice::start(([127, 0, 0, 1], 0).into(), config).await {
                    Ok(device) => {
                        let _ = url_tx.send(Ok(device.url()));
                        let _ = stop_rx.await;
                        device.shutdown().await;
                    }
                    Err(e) => drop(url_tx.send(Err(e.to_string()))),
                }
            });
        });
        let url = url_rx
            .recv()
            .map_err(|e| format!("simulator thread died: {e}"))??;
        Ok(Self {
            url,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn warm_vs_cold(c: &mut Criterion) {
    if let Err(e) = run(c) {
        eprintln!("warm_cold bench: {e}");
    }
}

fn run(c: &mut Criterion) -> Result<(), Box<dyn std::error::Error>> {
    let sim = Sim::start()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let config = DeviceConfig::from_url("bench-encoder", &sim.url)?
        .with_password(Some(Password::new(PASSWORD)));
    let encoder = config.name().clone();
    let warmup = WarmupManager::new(
        HeloConnector,
        PoolConfig {
            min_warm: MIN_WARM,
            // No room for background refills while a connection is checked out, so
            // the pool's own connects never land inside a measurement.
            max_connections: MIN_WARM,
            keepalive_interval: Duration::from_secs(3600),
            ..PoolConfig::default()
        },
        Arc::new(NoopObserver),
    );
    rt.block_on(async {
        warmup.start_warmup(Device::new(config.clone()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while warmup.warm_count(&encoder) < MIN_WARM {
            if tokio::time::Instant::now() > deadline {
                return Err("the pool did not warm within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    })?;
    // Both paths must really work before they are timed.
    rt.block_on(async {
        let conn = warmup
            .get_warm_connection(&encoder)
            .ok_or("no warm connection")?;
        conn.get_ref().get_param(names::SYS_NAME).await?;
        drop(conn);
        let cold = HeloConnection::connect(&Device::new(config.clone())).await?;
        cold.get_param(names::SYS_NAME).await?;
        cold.close();
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;

    let mut group = c.benchmark_group("warm_cold");
    group.bench_function("checkout", |b| {
        b.iter(|| {
            let conn = warmup.get_warm_connection(&encoder);
            assert!(conn.is_some(), "the warm pool ran dry");
            drop(conn)
        })
    });
    group.bench_function("warm", |b| {
        b.to_async(&rt).iter(|| async {
            let conn = warmup.get_warm_connection(&encoder);
            let Some(conn) = conn else {
                panic!("the warm pool ran dry");
            };
            let value = conn.get_ref().get_param(names::SYS_NAME).await;
            assert!(value.is_ok(), "warm read failed: {value:?}");
        })
    });
    group.bench_function("cold", |b| {
        b.to_async(&rt).iter(|| async {
            // A fresh Device each time: no cached session, so the login is paid.
            let device = Device::new(config.clone());
            let conn = HeloConnection::connect(&device).await;
            let Ok(conn) = conn else {
                panic!("cold connect failed: {conn:?}");
            };
            let value = conn.get_param(names::SYS_NAME).await;
            assert!(value.is_ok(), "cold read failed: {value:?}");
            conn.close();
        })
    });
    group.finish();
    rt.block_on(warmup.stop_warmup(&encoder));
    drop(sim);
    Ok(())
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = warm_vs_cold
}
criterion_main!(benches);
