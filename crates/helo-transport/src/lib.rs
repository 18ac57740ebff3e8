//! The AJA HELO encoder protocol: HTTP client, login sessions, event connections,
//! typed parameters and one error type.
//!
//! ```no_run
//! use helo_transport::{Device, DeviceConfig, HeloClientExt, HeloConnection, Password, StreamState};
//!
//! # async fn run() -> Result<(), helo_transport::HeloError> {
//! let config = DeviceConfig::from_url("studio-a", "http://10.0.0.21")?
//!     .with_password(Some(Password::new("secret")));
//! let conn = HeloConnection::connect(&Device::new(config)).await?;
//! if conn.stream_state().await? == StreamState::FailingInStream {
//!     conn.stop_streaming().await?;
//!     conn.start_streaming().await?;
//! }
//! println!("{} °C", conn.temperature().await?);
//! # Ok(()) }
//! ```

mod backoff;
mod budget;
mod client_ext;
mod config;
mod connection;
mod device_text;
mod error;
mod events;
mod exchange;
#[doc(hidden)]
pub mod fuzzing;
pub mod names;
mod outcome;
mod overload;
mod param;
mod replicator;
mod request;
mod session;
mod stats;
mod wire;

pub use self::{
    backoff::Backoff,
    budget::{RequestBudget, DEFAULT_REQUEST_BUDGET_BURST, DEFAULT_REQUEST_BUDGET_PER_MINUTE},
    client_ext::{HeloClientExt, HeloServiceError},
    config::{
        Device, DeviceConfig, DeviceName, Password, DEFAULT_CONNECT_TIMEOUT,
        DEFAULT_EVENT_WAIT_TIMEOUT, DEFAULT_LOGIN_LOCKOUT, DEFAULT_MAX_BODY_BYTES,
        DEFAULT_MAX_QUEUED, DEFAULT_QUEUE_TIMEOUT, DEFAULT_REQUEST_TIMEOUT,
    },
    connection::{ConnectionId, HeloConnection, RequestClock},
    device_text::{bounded_text, device_text, DEVICE_TEXT_MAX},
    error::{AuthFailure, BoxError, HeloError, TimeoutPhase},
    events::{ConfigEvent, EventSubscription},
    exchange::Exchange,
    outcome::{ErrorClass, Outcome},
    overload::Overloaded,
    param::{parse_running_duration, Descriptor, EnumValue, ParamValue, RawValue, StringAttribute},
    replicator::{RecordState, ReplicatorCommand, StreamState},
    request::{HeloRequest, HeloResponse},
    stats::StatsSnapshot,
    wire::{RawRequest, RawResponse},
};

#[cfg(any(test, feature = "test-util"))]
pub use self::exchange::MockExchange;
