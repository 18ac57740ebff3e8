//! Connection health for HELO encoders: a 0–100 score from concurrent checks, passive
//! health from live traffic, and an event-fed mirror of each device's state.
//!
//! The seed's monitor loop: check each connection, and hand one scoring below 70 to
//! `handle_degraded_connection`.
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//!
//! use conn_health::{
//!     ConnectionHealthChecker, DeviceStateMirror, HealthStatus, MirrorConfig,
//!     NoThermalReadings, NoopHealthObserver,
//! };
//! use helo_transport::{Device, DeviceConfig, ErrorClass, HeloConnection};
//!
//! async fn handle_degraded_connection(status: &HealthStatus) {
//!     match status.error_class() {
//!         Some(ErrorClass::Connection) => println!("{}: reconnect", status.encoder()),
//!         Some(ErrorClass::Timeout) => println!("{}: device too slow", status.encoder()),
//!         Some(ErrorClass::Other) | None => {
//!             println!("{}: degraded ({})", status.encoder(), status.health_score())
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = helo_sim::SimDevice::start("127.0.0.1:0".parse()?, helo_sim::SimConfig::fast()).await?;
//! let device = Device::new(DeviceConfig::from_url("studio-a", &sim.url())?);
//! let conn = HeloConnection::connect(&device).await?;
//!
//! // In production the thermal manager reads temperatures; here there is none.
//! let checker = ConnectionHealthChecker::new(NoThermalReadings);
//! // Optional: follow the device through events, so checks need one request.
//! let mirror = DeviceStateMirror::for_device(
//!     device.clone(),
//!     MirrorConfig::default(),
//!     Arc::new(NoopHealthObserver),
//! )?;
//! checker.attach_mirror(device.name(), mirror.subscribe());
//!
//! # let mut degraded = 0;
//! for round in 0..3 {
//!     if round == 2 {
//!         sim.fail_stream_now(); // the replicator reports FailingInIdle
//!     }
//!     tokio::time::sleep(Duration::from_millis(50)).await; // the seed waits 30 s
//!     let status = checker
//!         .perform_health_check(device.name(), conn.id(), conn.clone())
//!         .await;
//!     println!("{}", status.to_json());
//!     if status.health_score() < 70.0 {
//!         handle_degraded_connection(&status).await;
//! #       degraded += 1;
//!     }
//! }
//! # assert_eq!(degraded, 1);
//! mirror.stop().await;
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! - [`ConnectionHealthChecker::perform_health_check`] runs the checks of
//!   [`CheckKind::ALL`] concurrently under one deadline and answers a [`HealthStatus`]
//!   that serializes to JSON; the score's weights and thresholds are in [`Scoring`].
//! - [`HealthLayer`] records every real request into the checker's [`PassiveStats`],
//!   classified by [`helo_transport::Outcome`] like every other layer.
//! - [`DeviceStateMirror`] keeps a [`DeviceState`] current from pushed events; an
//!   attached, live mirror spares the checks their polling.
//! - [`HealthObserver`] receives every result (`conn-metrics` turns them into
//!   Prometheus series); [`ThermalReadings`] is how the thermal manager is read.

mod checker;
mod checks;
mod config;
mod encoder_status;
mod error;
mod health_layer;
mod mirror;
mod observer;
mod passive;
mod reconcile;
mod schedule;
mod score;
mod status;
mod supervision;
mod text;
mod thermal;

#[cfg(test)]
mod testing;

pub use self::{
    checker::{ConnectionHealthChecker, HealthCheckerBuilder},
    config::{Expectations, HealthConfig, Limits},
    encoder_status::{
        EncoderStatus, Reachability, ReasonCode, StatusInputs, StatusLevel, StatusPolicy,
        StatusReason, StatusTracker,
    },
    error::HealthError,
    health_layer::{Health, HealthLayer, ResponseFuture},
    mirror::{DeviceState, DeviceStateMirror, MirrorConfig, MirrorStatus, Reading},
    observer::{HealthObserver, NoopHealthObserver},
    passive::{PassiveConfig, PassiveStats, WindowSummary},
    reconcile::{
        Action, Activity, Decision, DesiredState, Observation, ReconcileEvent, ReconcilePolicy,
        Reconciler, TrackPhase, TrackReport,
    },
    schedule::CheckSchedule,
    score::{Scoring, Thresholds, Weights},
    status::{
        CheckKind, CheckOutcome, CheckResult, CheckSource, DeviceReadings, EncoderId, HealthLevel,
        HealthStatus,
    },
    supervision::{
        ActionRecord, CheckFindings, EncoderSupervision, Plan, SupervisionEvent, SupervisionPolicy,
        SupervisionReport,
    },
    thermal::{NoThermalReadings, ThermalReadings},
};

#[cfg(any(test, feature = "test-util"))]
pub use self::{observer::MockHealthObserver, thermal::MockThermalReadings};
