//! `GET /api/events`: the fleet's views as server-sent events, for the fleet page.
//!
//! The protocol (each event's `data` is one JSON object; `now` is the supervisor's
//! clock, RFC 3339, so a browser with a wrong clock still shows true ages):
//!
//! - `snapshot` — first, on every (re)connection: `{"now", "encoders": [EncoderView…]}`,
//!   every supervised encoder, ordered by id. It carries `retry: 2000`, so a browser
//!   reconnects 2 s after losing the stream and starts again from a fresh snapshot
//!   (there is no replay: `Last-Event-ID` is not needed).
//! - `update` — at most one per [`EventsConfig::tick`] (1 s): `{"now", "encoders":
//!   [EncoderView…], "removed": [id…]}`, only the encoders whose view differs from the
//!   one this client was last sent, and the ids no longer supervised. Nothing changed,
//!   nothing sent.
//! - `ping` — `{"now"}` after [`EventsConfig::ping`] (10 s) without another event, so
//!   the page can tell a supervisor that stopped answering from a quiet fleet (comments,
//!   which `EventSource` hides from scripts, would not do).
//!
//! What may have changed is learnt cheaply: the supervision loop marks its encoder in
//! [`Changes`](crate::changes::Changes) after every check and hold change, and so do
//! the admin actions; a tick builds views only for the marked encoders, and sends those
//! whose JSON differs (by hash) from what this client was sent. Pools and cooling also
//! change between checks, without a mark, so every [`EventsConfig::refresh`] (5 s) all
//! views are built, and sent if their *gist* changed: the view without the numbers that
//! drift by themselves (connection temperatures and rates, countdowns), which would
//! otherwise make every refresh resend the whole fleet. Those numbers go out with the
//! encoder's next check.
//!
//! Memory is bounded per client by the fleet size: a client holds one hash per encoder,
//! never a queue. The stream is pulled: hyper asks for the next event only when the
//! connection has taken the previous one, so a slow client is simply asked less often,
//! and each event it does get is built from the latest state. Streams end when the
//! admin server shuts down, so a graceful shutdown is not held up by open pages.

mod diff;

use std::{
    collections::HashSet,
    convert::Infallible,
    time::{Duration, SystemTime},
};

use axum::response::sse::{Event, Sse};
use futures_util::Stream;
use tokio::{
    sync::{watch, OwnedSemaphorePermit},
    time::{Instant, MissedTickBehavior},
};

use self::diff::{Rendered, Sent};
use crate::{fleet::Fleet, report::rfc3339};

/// How often a client is sent what changed, and how often everything is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct EventsConfig {
    /// The least time between two `update` events of one client.
    pub(super) tick: Duration,
    /// How often every view is rebuilt and compared, marked or not.
    pub(super) refresh: Duration,
    /// A `ping` after this long without another event.
    pub(super) ping: Duration,
    /// The browser's reconnection delay (`retry:`).
    pub(super) retry: Duration,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(1),
            refresh: Duration::from_secs(5),
            ping: Duration::from_secs(10),
            retry: Duration::from_secs(2),
        }
    }
}

/// The event stream of one client.
pub(super) fn sse(
    fleet: Fleet,
    config: EventsConfig,
    closing: watch::Receiver<bool>,
    permit: OwnedSemaphorePermit,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let client = Client::new(fleet, config, closing, permit);
    Sse::new(futures_util::stream::unfold(client, |mut c| async move {
        c.next_event().await.map(|e| (Ok(e), c))
    }))
}

/// What one client was sent, and when to look again.
struct Client {
    fleet: Fleet,
    config: EventsConfig,
    closing: watch::Receiver<bool>,
    sent: Sent,
    /// The change mark this client has caught up with; `None` before the snapshot.
    seen: Option<u64>,
    tick: tokio::time::Interval,
    refresh_at: Instant,
    last_event_at: Instant,
    /// This stream's place among the open ones, given back when it ends.
    _permit: OwnedSemaphorePermit,
}

impl Client {
    fn new(
        fleet: Fleet,
        config: EventsConfig,
        closing: watch::Receiver<bool>,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        let now = Instant::now();
        let mut tick = tokio::time::interval_at(now + config.tick, config.tick);
        // A client that was not ready for a while gets one update of the latest state,
        // not a burst of catch-up ticks.
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            fleet,
            config,
            closing,
            sent: Sent::default(),
            seen: None,
            tick,
            refresh_at: now + config.refresh,
            last_event_at: now,
            _permit: permit,
        }
    }

    async fn next_event(&mut self) -> Option<Event> {
        if *self.closing.borrow() {
            return None;
        }
        let Some(mut seen) = self.seen else {
            // The mark first: a change made while the views are built is sent again
            // rather than missed.
            self.seen = Some(self.fleet.changes().current());
            let data = self.diff(Pick::Snapshot).await?;
            self.last_event_at = Instant::now();
            return Some(
                Event::default()
                    .event("snapshot")
                    .retry(self.config.retry)
                    .data(data),
            );
        };
        loop {
            tokio::select! {
                biased;
                () = closed(&mut self.closing) => return None,
                _ = self.tick.tick() => {}
            }
            let now = Instant::now();
            let (marked, seen_now) = self.fleet.changes().changed_since(seen);
            let refresh = now >= self.refresh_at;
            if refresh {
                self.refresh_at = now + self.config.refresh;
            }
            // A mark without a view (an encoder removed) moves `seen_now` too.
            if refresh || seen_now != seen {
                seen = seen_now;
                self.seen = Some(seen);
                let pick = if refresh {
                    Pick::Refresh
                } else {
                    Pick::Marked(marked)
                };
                let data = self.diff(pick).await?;
                if !data.is_empty() {
                    self.last_event_at = now;
                    return Some(Event::default().event("update").data(data));
                }
            }
            if now.saturating_duration_since(self.last_event_at) >= self.config.ping {
                self.last_event_at = now;
                return Some(Event::default().event("ping").data(now_field()));
            }
        }
    }

    /// Builds the views picked and the event data of what this client has not seen
    /// (empty: nothing to send). Off the async workers: at a thousand encoders that is
    /// megabytes of JSON. `None` if that work failed: the stream ends, and the browser
    /// reconnects to a fresh snapshot.
    async fn diff(&mut self, pick: Pick) -> Option<String> {
        let fleet = self.fleet.clone();
        let mut sent = std::mem::take(&mut self.sent);
        let (sent, data) = tokio::task::spawn_blocking(move || {
            let data = match pick {
                Pick::Snapshot => sent.snapshot(fleet.views().iter().map(Rendered::of)),
                Pick::Refresh | Pick::Marked(_) => {
                    let refresh = matches!(pick, Pick::Refresh);
                    let views = match pick {
                        Pick::Marked(ids) => ids.iter().filter_map(|id| fleet.view(id)).collect(),
                        _ => fleet.views(),
                    };
                    let present: HashSet<String> = fleet.encoder_ids().into_iter().collect();
                    sent.update(views.iter().map(Rendered::of), &present, refresh)
                        .unwrap_or_default()
                }
            };
            (sent, data)
        })
        .await
        .ok()?;
        self.sent = sent;
        Some(data)
    }
}

/// Which views a tick builds.
#[derive(Debug)]
enum Pick {
    /// All, all sent.
    Snapshot,
    /// All, sent if their gist changed.
    Refresh,
    /// These, sent if they changed at all.
    Marked(Vec<String>),
}

/// Completes when the server shuts down; never if it cannot (its sender is gone).
async fn closed(closing: &mut watch::Receiver<bool>) {
    if closing.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn now_field() -> String {
    serde_json::json!({ "now": rfc3339(SystemTime::now()) }).to_string()
}
