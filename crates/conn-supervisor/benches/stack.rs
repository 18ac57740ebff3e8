//! Layer overhead: one request through the supervisor's tower stack (metrics → health
//! → thermal) over an in-memory no-op connection, against the bare no-op connection,
//! measured side by side. The cumulative stacks (bare, +thermal, +health, +metrics)
//! give each layer's share. The request deadlines are the connection's own (there is
//! no tower `Timeout` layer any more), so the no-op connection has none.
//!
//! `cargo bench -p conn-supervisor --bench stack`; `cargo xtask bench` reads the
//! medians from `target/criterion/stack/*/new/estimates.json`.

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::{
    future::{ready, Ready},
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use conn_core::{
    ConnectionThermalManager, Connector, NoopObserver, PoolConfig, PoolConn, ThermalConfig,
    WarmupManager,
};
use conn_health::ConnectionHealthChecker;
use conn_metrics::{HeloMetrics, MetricsLayer};
use criterion::{criterion_group, criterion_main, Criterion};
use futures_util::future::BoxFuture;
use helo_transport::{
    names, ConnectionId, Device, DeviceConfig, DeviceName, HeloClientExt, HeloError, HeloRequest,
    HeloResponse, ParamValue,
};
use tower::{Service, ServiceBuilder};

/// The supervisor binary's allocator (`src/main.rs`): what it measures is what the
/// supervisor runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A connection that answers every request at once with the same parameter.
#[derive(Clone)]
struct Noop {
    id: ConnectionId,
    answer: Arc<HeloResponse>,
}

impl Noop {
    fn new(device: &DeviceName) -> Self {
        Self {
            id: ConnectionId::next(),
            answer: Arc::new(HeloResponse::Param(ParamValue {
                device: device.clone(),
                name: names::SYS_NAME.to_string(),
                paramid: None,
                value: "bench".to_string(),
                value_name: None,
            })),
        }
    }
}

impl Service<HeloRequest> for Noop {
    type Response = HeloResponse;
    type Error = HeloError;
    type Future = Ready<Result<HeloResponse, HeloError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), HeloError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: HeloRequest) -> Self::Future {
        ready(Ok((*self.answer).clone()))
    }
}

impl PoolConn for Noop {
    fn id(&self) -> ConnectionId {
        self.id
    }
    fn is_closed(&self) -> bool {
        false
    }
    fn ping(&self) -> BoxFuture<'static, Result<(), HeloError>> {
        Box::pin(async { Ok(()) })
    }
    fn close(&self) {}
}

/// Opens [`Noop`] connections, so the thermal model owns the benchmarked connection
/// exactly as it owns a pooled one in the supervisor.
struct NoopConnector;

impl Connector for NoopConnector {
    type Conn = Noop;
    fn connect(&self, device: &Device) -> BoxFuture<'static, Result<Noop, HeloError>> {
        let conn = Noop::new(device.name());
        Box::pin(async move { Ok(conn) })
    }
}

fn layers(c: &mut Criterion) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return eprintln!("stack bench: no runtime: {e}"),
    };
    let setup = rt.block_on(async {
        let config = DeviceConfig::from_url("bench-encoder", "http://127.0.0.1:9")?;
        let device = Device::new(config);
        let encoder = device.name().clone();
        let warmup = WarmupManager::new(
            NoopConnector,
            PoolConfig {
                min_warm: 1,
                max_connections: 1,
                // Nothing of the pool's upkeep may run while measuring.
                keepalive_interval: Duration::from_secs(3600),
                ..PoolConfig::default()
            },
            Arc::new(NoopObserver),
        );
        let thermal = ConnectionThermalManager::new(
            warmup.clone(),
            ThermalConfig::default(),
            Arc::new(NoopObserver),
        );
        let checker = ConnectionHealthChecker::builder(thermal.clone()).build()?;
        let metrics = HeloMetrics::new()?;
        warmup.start_warmup(device);
        while warmup.warm_count(&encoder) < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let pooled = warmup
            .get_warm_connection(&encoder)
            .ok_or("no warm connection")?;
        Ok::<_, Box<dyn std::error::Error>>((encoder, warmup, thermal, checker, metrics, pooled))
    });
    let (encoder, _warmup, thermal, checker, metrics, pooled) = match setup {
        Ok(s) => s,
        Err(e) => return eprintln!("stack bench: setup failed: {e}"),
    };
    let conn = pooled.get_ref().clone();
    let id = conn.id;
    let metrics_layer = MetricsLayer::new(&metrics, &encoder);

    let bare = conn.clone();
    let with_thermal = ServiceBuilder::new()
        .layer(thermal.layer(&encoder, id))
        .service(conn.clone());
    let with_health = ServiceBuilder::new()
        .layer(checker.health_layer(&encoder, id))
        .layer(thermal.layer(&encoder, id))
        .service(conn.clone());
    // The supervisor's stack, as `conn_supervisor::stack::build_stack` composes it.
    let full = ServiceBuilder::new()
        .layer(metrics_layer)
        .layer(checker.health_layer(&encoder, id))
        .layer(thermal.layer(&encoder, id))
        .service(conn);

    // Every variant must really answer (a refusal would be cheaper and fool the bench).
    let checked = rt.block_on(async {
        bare.get_param(names::SYS_NAME).await?;
        with_thermal.get_param(names::SYS_NAME).await?;
        with_health.get_param(names::SYS_NAME).await?;
        full.get_param(names::SYS_NAME).await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    });
    if let Err(e) = checked {
        return eprintln!("stack bench: a variant refused the request: {e}");
    }

    let mut group = c.benchmark_group("stack");
    group.bench_function("bare", |b| {
        b.to_async(&rt).iter(|| bare.get_param(names::SYS_NAME))
    });
    group.bench_function("thermal", |b| {
        b.to_async(&rt)
            .iter(|| with_thermal.get_param(names::SYS_NAME))
    });
    group.bench_function("health", |b| {
        b.to_async(&rt)
            .iter(|| with_health.get_param(names::SYS_NAME))
    });
    group.bench_function("metrics", |b| {
        b.to_async(&rt).iter(|| full.get_param(names::SYS_NAME))
    });
    group.finish();
    drop(pooled);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = layers
}
criterion_main!(benches);
