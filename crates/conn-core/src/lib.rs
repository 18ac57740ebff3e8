//! Warm connection pools to HELO encoders, and the thermal model that keeps each
//! connection (and each device) from running hot, with gradual cooling.
//!
//! [`WarmupManager`] keeps `min_warm` validated connections per encoder and hands
//! them out without I/O; [`ConnectionThermalManager`] scores each connection's heat,
//! cools hot ones step by step while new work moves to cooler ones, and limits load
//! through the [`ThermalLayer`] in front of each connection. Both report through
//! observer traits ([`PoolObserver`], [`ThermalObserver`]).
//!
//! ```
//! # use std::{sync::Arc, time::Duration};
//! # use conn_core::{Connector, PoolConn};
//! # use futures_util::future::BoxFuture;
//! # use helo_transport::{ConnectionId, Device, DeviceConfig, HeloError};
//! use conn_core::{
//!     ConnectionThermalManager, CoolingReason, NoopObserver, PoolConfig, ThermalConfig,
//!     WarmupManager,
//! };
//! # // An in-memory stand-in for `HeloConnector`, so the example runs anywhere.
//! # #[derive(Clone)] struct Conn(ConnectionId);
//! # impl PoolConn for Conn {
//! #     fn id(&self) -> ConnectionId { self.0 }
//! #     fn is_closed(&self) -> bool { false }
//! #     fn ping(&self) -> BoxFuture<'static, Result<(), HeloError>> { Box::pin(async { Ok(()) }) }
//! #     fn close(&self) {}
//! # }
//! # struct InMemory;
//! # impl Connector for InMemory {
//! #     type Conn = Conn;
//! #     fn connect(&self, _: &Device) -> BoxFuture<'static, Result<Conn, HeloError>> {
//! #         Box::pin(async { Ok(Conn(ConnectionId::next())) })
//! #     }
//! # }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let connector = InMemory; // in production: conn_core::HeloConnector
//! let warmup = WarmupManager::new(connector, PoolConfig::default(), Arc::new(NoopObserver));
//! let thermal = ConnectionThermalManager::new(
//!     warmup.clone(),
//!     ThermalConfig::default(),
//!     Arc::new(NoopObserver),
//! );
//!
//! let device = Device::new(DeviceConfig::from_url("studio-a", "http://10.0.0.21")?);
//! let encoder = device.name().clone();
//! warmup.start_warmup(device);
//! # while warmup.warm_count(&encoder) < 3 { tokio::time::sleep(Duration::from_millis(50)).await; }
//!
//! // Checkout is synchronous and never touches the network.
//! if let Some(conn) = warmup.get_warm_connection(&encoder) {
//!     // Requests go through `thermal.layer(&encoder, conn.id())` in front of the
//!     // connection; then, as the seed does:
//!     if thermal.check_temperature(&encoder, conn.id()) {
//!         thermal.start_cooling(&encoder, conn.id(), "high_load".parse()?);
//!     }
//!     // An operator can cool any connection; a second call is a no-op.
//!     assert!(thermal.start_cooling(&encoder, conn.id(), CoolingReason::Manual));
//!     assert!(!thermal.start_cooling(&encoder, conn.id(), CoolingReason::Manual));
//!     assert_eq!(thermal.allowed_load(&encoder, conn.id()), 50.0); // still on slow start
//! } // dropped: a cooling connection stays out of the warm set until it is retired
//!
//! tokio::time::sleep(Duration::from_secs(61)).await; // the cooling runs its 5 steps
//! assert_eq!(warmup.warm_count(&encoder), 3); // and a fresh connection took its place
//! warmup.stop_warmup(&encoder).await;
//! # Ok(()) }
//! ```

mod config;
mod conn;
mod error;
mod observer;
mod pool;
mod reasons;
mod thermal;
mod thermal_layer;

#[cfg(any(test, feature = "test-util"))]
pub mod testing;

pub use helo_transport::DeviceName as EncoderId;

pub use self::{
    config::{PoolConfig, ThermalConfig},
    conn::{Connector, HeloConnector, PoolConn},
    error::CoreError,
    observer::{NoopObserver, PoolObserver, ThermalObserver},
    pool::{EncoderPoolState, PoolControl, PoolStats, PooledConnection, WarmupManager},
    reasons::{CoolingOutcome, CoolingReason, RetireReason},
    thermal::{ConnectionThermalManager, ConnectionThermalSnapshot, DeviceHeat},
    thermal_layer::{Overloaded, ResponseFuture as ThermalResponseFuture, Thermal, ThermalLayer},
};

#[cfg(any(test, feature = "test-util"))]
pub use self::{conn::MockConnector, pool::MockPoolControl};
