//! A simulated AJA HELO encoder speaking the HELO REST protocol over real HTTP/1.1, with
//! fault injection, for tests, demos and benchmarks.
//!
//! ```
//! use helo_sim::{SimConfig, SimDevice};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), helo_sim::SimError> {
//! let device = SimDevice::start("127.0.0.1:0".parse().unwrap(), SimConfig::fast()).await?;
//! // Point any HELO client at it, e.g.
//! // curl "$URL/config?action=get&paramid=eParamID_ReplicatorStreamState"
//! assert!(device.url().starts_with("http://127.0.0.1:"));
//! assert_eq!(device.snapshot().stream_state, 1); // eRRSIdle
//! device.fail_stream_now();
//! assert_eq!(device.snapshot().stream_state, 3); // eRRSFailingInIdle
//! device.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # What it serves
//!
//! The paths of the protocol (`/config?action=get|set|connect|wait_for_config_events`,
//! `/json?action=connect`, `/descriptors`, `/authenticator/login`); unknown paths get
//! the device's 404 HTML page, as do protocol requests without a session cookie when a
//! password is configured. Device behaviour worth knowing:
//!
//! - Replicator commands take [`SimConfig::transition_delay`] to show. A start is
//!   accepted from Idle or FailingInIdle (or replaces a pending stop); while
//!   FailingInStream/FailingInRecord it is ignored, so recovery is Stop then Start.
//! - With `eParamID_MediaState` = 1 (Data-LAN) Record and Stream commands answer `400`;
//!   entering Data-LAN while recording or streaming answers `400` too.
//! - `eParamID_Reboot` = 1 resets every parameter, session and event connection, then
//!   the device refuses connections (or answers `503`, see
//!   [`SimConfig::reboot_answers_503`]) for [`SimConfig::reboot_downtime`]. Faults stay.
//! - Temperature, media and durations are computed from the clock when read. Event
//!   connections receive every parameter change, including whole-degree temperature
//!   steps, but not the running durations.
//!
//! A device can also be made hostile, for tests of what a client does with device
//! text, abusive long polls and broken HTTP (huge or control-character error texts and
//! values, odd event answers, garbage, HTTP/0.9, absurd framing, endless or deep
//! bodies, slow bytes, redirect loops, interim floods): see [`Faults`].
//!
//! # Control endpoint (`/sim/*` on each device's port)
//!
//! - `GET /sim/state`: `{"url", "state": DeviceSnapshot, "faults": Faults, "requests": RequestCounts}`.
//! - `GET /sim/faults`: the [`Faults`].
//! - `POST /sim/faults`: a JSON object with any [`Faults`] field to change (others keep
//!   their value), `"clear": true` to clear all first, and one-off actions
//!   `"fail_stream"`, `"fail_record"`, `"expire_sessions"`, `"cool_down"`, `"reboot"`
//!   (booleans), `"overheat_c"` (°C), `"link_errors"` (count to add), `"unreachable_ms"`.
//!   Example: `{"latency_ms": 300, "unavailable_503": true, "retry_after_s": 2}`;
//!   a hostile device: `{"hostile_values": "a|b\r\n\u001b[31m", "http09": true}`.
//!   `null` clears an optional fault (`{"error_text": null}`).
//! - `GET /sim/counts`: the [`RequestCounts`] since the start or the last reset;
//!   `GET /sim/counts?kind=login_ok` one of them (a [`RequestKind`] name):
//!   `{"kind": "login_ok", "count": 2}`. `POST /sim/counts/reset` answers the counts
//!   and sets them to zero.
//! - `POST /sim/params`: `{"eParamID_SystemState": "10", ...}` sets parameters,
//!   read-only ones included.
//! - `POST /sim/reboot`.
//!
//! # Fleet control endpoint ([`SimFleet::serve_control`], `helo-sim --control ADDR`)
//!
//! - `GET /sim/fleet`: `{"devices": N, "requests": RequestCounts}`, the request
//!   counters summed over every device (what a benchmark divides by its health checks).
//! - `POST /sim/fleet/devices/{k}/faults`: the body of `POST /sim/faults` for device
//!   `k` (1-based, as the binary prints `encoder-k`), even while it is unreachable.

mod auth;
mod body;
mod config;
mod control;
mod counts;
mod device;
mod error;
mod events;
mod faults;
mod fleet;
mod fleet_control;
mod hostile;
mod params;
mod physics;
mod protocol;
mod reply;
mod server;
mod state;

pub use self::{
    config::{SimConfig, ThermalConfig},
    counts::{RequestCounts, RequestKind},
    device::SimDevice,
    error::SimError,
    faults::Faults,
    fleet::SimFleet,
    state::DeviceSnapshot,
};
