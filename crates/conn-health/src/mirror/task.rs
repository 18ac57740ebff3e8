//! The mirror's task: connect, subscribe, seed, long-poll; reconnect with backoff.
//!
//! Every loop here is one a device drives (by answering at once, failing, or refusing
//! the password), so each has a floor: long polls start `min_poll_gap` apart, event
//! connections that brought nothing are retried after the backoff, which starts again
//! from the bottom only once the device held a poll or sent events, and a refused
//! password pauses everything for the login lockout.

use std::{error::Error as StdError, future::Future, sync::Arc, time::Duration};

use helo_transport::{
    AuthFailure, Backoff, BoxError, ConfigEvent, Device, ErrorClass, EventSubscription,
    HeloClientExt, HeloError, HeloRequest, HeloResponse, Outcome,
};
use tokio::{sync::watch, time::Instant};
use tower::Service;

use super::{
    state::{DeviceState, MirrorStatus, MIRRORED},
    MirrorConfig,
};
use crate::{observer::HealthObserver, status::EncoderId};

/// The watch sender and the observer, shared by the task and its handle.
pub(super) struct Publisher {
    pub(super) encoder: EncoderId,
    pub(super) tx: watch::Sender<DeviceState>,
    pub(super) observer: Arc<dyn HealthObserver>,
}

impl Publisher {
    /// Changes the state; `f` answers whether receivers should hear of it.
    fn update(&self, f: impl FnOnce(&mut DeviceState) -> bool) {
        if self.tx.send_if_modified(f) {
            self.observer.device_state(&self.encoder, &self.tx.borrow());
        }
    }

    fn status(&self, status: MirrorStatus, error: Option<ErrorClass>) {
        self.update(|s| {
            let changed = s.status != status || s.last_error != error;
            s.status = status;
            s.last_error = error;
            changed
        });
    }

    pub(super) fn stopped(&self) {
        self.status(MirrorStatus::Stopped, None);
    }
}

/// The pace of the mirror's requests: failures in a row and the delay before the
/// next attempt, and the floor between long polls.
struct Pacing {
    backoff: Backoff,
    attempt: u32,
    min_poll_gap: Duration,
    last_poll: Option<Instant>,
}

impl Pacing {
    fn new(cfg: &MirrorConfig) -> Self {
        Self {
            backoff: cfg.backoff,
            attempt: 0,
            min_poll_gap: cfg.min_poll_gap,
            last_poll: None,
        }
    }

    /// Waits until the next long poll may start (`min_poll_gap` after the previous
    /// one started, whichever connection it was on), and notes its start.
    async fn poll_slot(&mut self) -> Instant {
        if let Some(previous) = self.last_poll {
            tokio::time::sleep_until(previous + self.min_poll_gap).await;
        }
        let now = Instant::now();
        self.last_poll = Some(now);
        now
    }

    /// Whether a poll that started at `started` and brought `events` events shows the
    /// device working as it should: it held the poll, or had something to say.
    fn made_progress(&self, started: Instant, events: usize) -> bool {
        events > 0 || started.elapsed() >= self.min_poll_gap
    }

    /// The delay before the next connect after `err` (its `Retry-After`, if the
    /// device sent one, is a floor).
    fn next_delay(&mut self, err: Option<&(dyn StdError + 'static)>) -> Duration {
        let delay = self.backoff.delay_random(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        let retry_after = err
            .and_then(HeloError::find)
            .and_then(HeloError::retry_after);
        self.backoff.honour_retry_after(delay, retry_after)
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// How one connection's session ended.
enum Ended {
    /// The device answered `connect` with an error: no event API.
    Unsupported(BoxError),
    /// The connection broke or timed out.
    Broken(BoxError),
}

/// The device refused the password, or wants one that is not configured: nothing
/// changes that but the configuration (a new mirror) or the device's lockout ending.
fn login_refused(err: &(dyn StdError + 'static)) -> bool {
    matches!(
        HeloError::find(err),
        Some(HeloError::Auth {
            failure: AuthFailure::WrongPassword { .. } | AuthFailure::PasswordRequired,
            ..
        })
    )
}

pub(super) async fn run<C, Fut, S>(
    connect: C,
    cfg: MirrorConfig,
    out: Arc<Publisher>,
    device: Option<Device>,
) where
    C: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<S, HeloError>> + Send + 'static,
    S: Service<HeloRequest, Response = HeloResponse> + Clone + Send + 'static,
    S::Error: From<HeloError> + Into<BoxError> + Send,
    S::Future: Send,
{
    let mut backoff = Pacing::new(&cfg);
    loop {
        // Connecting and seeding are boxed: they are rare and their futures are the
        // largest (a TCP connect and a login), and held inline they would size the
        // task for the whole of its life, most of it spent in a long poll.
        let ended = match Box::pin(connect()).await {
            Ok(svc) => session(svc, &cfg, &out, &mut backoff).await,
            Err(e) => Ended::Broken(Box::new(e)),
        };
        // The connection (if any) is dropped here: nothing holds a socket while waiting.
        match ended {
            Ended::Unsupported(e) => {
                tracing::info!(encoder_id = %out.encoder, error = %e,
                    "device has no event API; health checks will poll");
                out.status(MirrorStatus::Unsupported, None);
                backoff.reset();
                tokio::time::sleep(cfg.reprobe_interval).await;
            }
            Ended::Broken(e) if login_refused(e.as_ref()) => {
                // The device's own lockout says when a login may be tried again; every
                // source of logins waits for the same moment.
                let pause = device
                    .as_ref()
                    .and_then(Device::login_locked_for)
                    .unwrap_or(cfg.auth_failed_pause);
                tracing::warn!(encoder_id = %out.encoder, error = %e, ?pause,
                    "login refused; event connection paused");
                out.status(MirrorStatus::Reconnecting, Some(ErrorClass::of(e.as_ref())));
                tokio::time::sleep(pause).await;
            }
            Ended::Broken(e) => {
                let delay = backoff.next_delay(Some(e.as_ref()));
                tracing::debug!(encoder_id = %out.encoder, error = %e, ?delay,
                    "event connection lost; reconnecting");
                out.status(MirrorStatus::Reconnecting, Some(ErrorClass::of(e.as_ref())));
                tokio::time::sleep(delay).await;
            }
        }
    }
}

// Services are taken by value: a `&S` held across an await would need `S: Sync`,
// which tower stacks (e.g. `BoxCloneService`) are not.

/// Event connections on one connection, until it breaks. An expired event connection
/// is opened again on the same connection.
async fn session<S>(svc: S, cfg: &MirrorConfig, out: &Publisher, backoff: &mut Pacing) -> Ended
where
    S: Service<HeloRequest, Response = HeloResponse> + Clone + Send + 'static,
    S::Error: From<HeloError> + Into<BoxError> + Send,
    S::Future: Send,
{
    loop {
        let sub = match svc
            .send(HeloRequest::Connect {
                legacy: cfg.legacy_connect,
            })
            .await
            .map_err(Into::into)
        {
            Ok(HeloResponse::Connected(sub)) => sub,
            Ok(other) => {
                return Ended::Unsupported(
                    format!("connect answered with a {} response", other.kind()).into(),
                )
            }
            Err(e) if answered_with_error(e.as_ref()) => return Ended::Unsupported(e),
            Err(e) => return Ended::Broken(e),
        };
        let connected_at = Instant::now();
        // Only the id is kept for the long polls: the initial values (a whole
        // parameter set on some firmware) are applied here and dropped.
        let EventSubscription {
            connection_id,
            initial,
        } = sub;
        out.update(|s| {
            let mut changed = false;
            for e in &initial {
                changed |= s.apply(e);
            }
            s.events += initial.len() as u64;
            s.last_contact = Some(connected_at);
            changed
        });
        drop(initial);
        if let Err(e) = Box::pin(seed(svc.clone(), out)).await {
            return Ended::Broken(e);
        }
        out.status(MirrorStatus::Live, None);
        out.update(|s| {
            s.last_contact = Some(Instant::now());
            false
        });
        let mut progressed = false;
        loop {
            let started = backoff.poll_slot().await;
            match svc
                .wait_for_events(&connection_id)
                .await
                .map_err(Into::into)
            {
                Ok(events) => {
                    // An empty answer at once is no sign of health: the backoff keeps
                    // its place until the device holds a poll or sends events.
                    if backoff.made_progress(started, events.len()) {
                        progressed = true;
                        backoff.reset();
                    }
                    let now = Instant::now();
                    out.update(|s| {
                        let mut changed = false;
                        for e in &events {
                            changed |= s.apply(e);
                        }
                        s.events += events.len() as u64;
                        s.last_contact = Some(now);
                        changed
                    });
                }
                // The id expired (or the device forgot it): subscribe again.
                Err(e) if answered_with_error(e.as_ref()) => {
                    tracing::debug!(encoder_id = %out.encoder, error = %e,
                        "event connection expired; connecting again");
                    break;
                }
                Err(e) => return Ended::Broken(e),
            }
        }
        if !progressed {
            // A device that takes the connect but refuses (or answers at once) every
            // wait must not get a connect and a seeding round in a tight loop.
            tokio::time::sleep(backoff.next_delay(None)).await;
        }
    }
}

/// Polls the kept parameters once; a missing parameter is marked unsupported, a
/// broken connection ends the session.
async fn seed<S>(svc: S, out: &Publisher) -> Result<(), BoxError>
where
    S: Service<HeloRequest, Response = HeloResponse> + Clone + Send + 'static,
    S::Error: From<HeloError> + Into<BoxError> + Send,
    S::Future: Send,
{
    for name in MIRRORED {
        match svc.get_param(name).await.map_err(Into::into) {
            Ok(p) => {
                let event = ConfigEvent {
                    param_id: name.to_string(),
                    param_type: None,
                    int_value: p.as_i64().ok(),
                    str_value: Some(p.value.clone()),
                    last_config_update: None,
                };
                out.update(|s| s.apply(&event));
            }
            Err(e) if is_unsupported(e.as_ref()) => out.update(|s| {
                let before = s.clone();
                s.mark_unsupported(name);
                *s != before
            }),
            Err(e) if answered_with_error(e.as_ref()) => {
                tracing::debug!(encoder_id = %out.encoder, param = name, error = %e,
                    "cannot seed mirrored parameter");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn is_unsupported(err: &(dyn StdError + 'static)) -> bool {
    Outcome::of(err) == Outcome::Unsupported
}

/// The device answered, with an error: the request is not possible on this device
/// (as opposed to the device not answering, or refusing our credentials).
fn answered_with_error(err: &(dyn StdError + 'static)) -> bool {
    matches!(
        Outcome::of(err),
        Outcome::Rejected | Outcome::Unsupported | Outcome::Protocol
    )
}
