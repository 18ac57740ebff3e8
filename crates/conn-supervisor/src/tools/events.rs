//! `events`: follows a device's event connection and prints every change as a JSON
//! line.
//!
//! The rules, in one place:
//! - **Floor.** A long poll starts at least `min_poll_gap` after the previous one
//!   started. A device that holds its polls (the normal case) is never delayed by it:
//!   the events are printed the moment a poll returns, and the next poll starts at
//!   once because its predecessor started long ago. A device that answers at once
//!   (`[]` immediately, or an error) gets at most one poll per gap.
//! - **First connection.** `connect_tries` attempts (connect, log in, open the event
//!   connection, first wait) with backoff between them; then the command fails.
//! - **Login errors** (wrong password, password required) end the command at once.
//! - **Outages.** Once a wait has succeeded, losing the device (or its event
//!   connection) means reconnecting with backoff until it answers again, for at most
//!   `max_outage` (default 5 minutes: a rebooting device is back within about a
//!   minute). Each failed attempt is logged with the error that ended it.

use std::{convert::Infallible, future::Future, time::Duration};

use helo_transport::{
    Backoff, ConfigEvent, Device, EventSubscription, HeloClientExt, HeloConnection, HeloError,
    HeloRequest, HeloResponse,
};
use tokio::time::Instant;
use tower::Service;

use super::{is_login_error, print_json, shown, ToolError};

/// Backoff after the first failure (the ceiling of the jitter), doubling to 10 s.
fn backoff() -> Backoff {
    Backoff::new(Duration::from_millis(250), Duration::from_secs(10))
}
/// Longest `Retry-After` honoured.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);

/// How `events` treats a device that answers too fast or goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventsOptions {
    /// Attempts at the first connection before giving up (at least 1).
    pub connect_tries: u32,
    /// How long a device that was followed may stay away before giving up.
    pub max_outage: Duration,
    /// Least time from the start of one long poll to the start of the next.
    pub min_poll_gap: Duration,
}

impl Default for EventsOptions {
    fn default() -> Self {
        Self {
            connect_tries: 5,
            max_outage: Duration::from_secs(300),
            min_poll_gap: Duration::from_millis(250),
        }
    }
}

/// `events URL`: prints every event as a JSON line on stdout until an error ends it
/// (see [`follow_events`]); the caller ends it earlier by dropping the future (on
/// SIGINT/SIGTERM, see [`super::Interrupt`]).
pub async fn events(device: &Device, opts: &EventsOptions) -> ToolError {
    follow_events(
        device.name().as_str(),
        || HeloConnection::connect(device),
        opts,
        print_json,
    )
    .await
}

/// Follows the event connection of `device`, handing each event to `sink`. `connect`
/// opens (and logs in) a new connection; it is called again after every failure.
/// Returns only when it gives up, with the reason (see the module docs for the rules).
pub async fn follow_events<C, Fut, S, W>(
    device: &str,
    mut connect: C,
    opts: &EventsOptions,
    mut sink: W,
) -> ToolError
where
    C: FnMut() -> Fut,
    Fut: Future<Output = Result<S, HeloError>>,
    S: Service<HeloRequest, Response = HeloResponse, Error = HeloError> + Clone + Send + 'static,
    S::Future: Send,
    W: FnMut(&ConfigEvent) -> Result<(), ToolError>,
{
    let mut track = Track::default();
    loop {
        let lost = match session(device, &mut connect, opts, &mut sink, &mut track).await {
            Err(Ended::Fatal(e)) => return e,
            Err(Ended::Lost(e)) => e,
            Ok(never) => match never {},
        };
        if is_login_error(&lost) {
            return ToolError::Device(lost);
        }
        let now = Instant::now();
        track.failures = track.failures.saturating_add(1);
        if track.followed {
            let since = *track.outage_since.get_or_insert(now);
            if now - since >= opts.max_outage {
                return ToolError::OutageTooLong {
                    device: device.to_string(),
                    after: now - since,
                    last: lost,
                };
            }
        } else if track.failures >= opts.connect_tries {
            return ToolError::Unreachable {
                device: device.to_string(),
                tries: track.failures,
                last: lost,
            };
        }
        let pause = lost
            .retry_after()
            .map(|d| d.min(RETRY_AFTER_CAP))
            .unwrap_or_default()
            .max(backoff().delay_random(track.failures - 1));
        tracing::warn!(
            encoder_id = %shown(device),
            error = %shown(&lost.to_string()),
            "event connection failed; trying again in {} ms",
            pause.as_millis()
        );
        tokio::time::sleep(pause).await;
    }
}

/// What the loop remembers across connections.
#[derive(Debug, Default)]
struct Track {
    /// Failed attempts since the last successful wait.
    failures: u32,
    /// A wait has succeeded at least once.
    followed: bool,
    /// When the current outage began.
    outage_since: Option<Instant>,
    /// When the last long poll started (the floor is measured from it).
    last_poll: Option<Instant>,
}

/// Why one connection's session ended.
enum Ended {
    /// The device or its event connection went away: try again.
    Lost(HeloError),
    /// Nothing to try again: output failed.
    Fatal(ToolError),
}

async fn session<C, Fut, S, W>(
    device: &str,
    connect: &mut C,
    opts: &EventsOptions,
    sink: &mut W,
    track: &mut Track,
) -> Result<Infallible, Ended>
where
    C: FnMut() -> Fut,
    Fut: Future<Output = Result<S, HeloError>>,
    S: Service<HeloRequest, Response = HeloResponse, Error = HeloError> + Clone + Send + 'static,
    S::Future: Send,
    W: FnMut(&ConfigEvent) -> Result<(), ToolError>,
{
    let conn = connect().await.map_err(Ended::Lost)?;
    let sub = subscribe(device, &conn).await.map_err(Ended::Lost)?;
    tracing::debug!(encoder_id = %shown(device), connection_id = %shown(&sub.connection_id), "event connection open");
    for event in &sub.initial {
        sink(event).map_err(Ended::Fatal)?;
    }
    loop {
        if let Some(previous) = track.last_poll {
            tokio::time::sleep_until(previous + opts.min_poll_gap).await;
        }
        track.last_poll = Some(Instant::now());
        // The first error ends this connection: it is dropped, never asked again, so
        // the error shown is the device's, not a follow-up "connection is closed".
        let events = conn
            .wait_for_events(&sub.connection_id)
            .await
            .map_err(Ended::Lost)?;
        if track.failures > 0 && track.followed {
            tracing::info!(encoder_id = %shown(device), "following events again");
        }
        track.failures = 0;
        track.followed = true;
        track.outage_since = None;
        for event in &events {
            sink(event).map_err(Ended::Fatal)?;
        }
    }
}

/// Opens an event connection: `/config?action=connect`, then the older
/// `/json?action=connect&configid=0` only when the device *refused* the first (a 400
/// or another status). `HeloClientExt::connect_events` falls back on any error, but
/// after a timeout or a malformed answer the connection is already marked broken, so
/// its fallback fails at once with "connection is closed" and the real error is lost.
/// When both paths are refused, the first refusal is the answer.
async fn subscribe<S>(device: &str, svc: &S) -> Result<EventSubscription, HeloError>
where
    S: Service<HeloRequest, Response = HeloResponse, Error = HeloError> + Clone + Send + 'static,
    S::Future: Send,
{
    let first = match svc.send(HeloRequest::Connect { legacy: false }).await {
        Ok(resp) => return connected(device, resp),
        Err(e) => e,
    };
    let refused =
        first.is_rejected() || first.is_unsupported() || matches!(first, HeloError::Status { .. });
    if !refused {
        return Err(first);
    }
    match svc.send(HeloRequest::Connect { legacy: true }).await {
        Ok(resp) => connected(device, resp),
        Err(legacy) => {
            tracing::debug!(encoder_id = %shown(device), error = %shown(&legacy.to_string()), "legacy event connect failed too");
            Err(first)
        }
    }
}

fn connected(device: &str, resp: HeloResponse) -> Result<EventSubscription, HeloError> {
    match resp {
        HeloResponse::Connected(sub) => Ok(sub),
        other => Err(HeloError::Protocol {
            device: device.into(),
            request: "connect".into(),
            detail: format!("a middleware answered with a {} response", other.kind()),
        }),
    }
}
