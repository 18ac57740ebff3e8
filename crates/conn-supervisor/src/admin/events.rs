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

use std::{
    collections::{HashMap, HashSet},
    convert::Infallible,
    hash::{DefaultHasher, Hash, Hasher},
    time::{Duration, SystemTime},
};

use axum::response::sse::{Event, Sse};
use futures_util::Stream;
use tokio::{
    sync::{watch, OwnedSemaphorePermit},
    time::{Instant, MissedTickBehavior},
};

use crate::{
    fleet::Fleet,
    report::{rfc3339, EncoderView},
};

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

/// One view, serialized once, with what it is compared by.
#[derive(Debug)]
struct Rendered {
    id: String,
    json: String,
    /// A hash of all of it.
    exact: u64,
    /// A hash of it without the numbers that move between checks by themselves
    /// (connection temperatures and rates, countdowns), so that the periodic refresh
    /// sends what changed in substance, not every view every time.
    gist: u64,
}

impl Rendered {
    fn of(view: &EncoderView) -> Self {
        let mut value = serde_json::to_value(view).unwrap_or_else(|e| {
            // Serializing plain data does not fail; if it ever did, the page says why.
            serde_json::json!({ "id": view.id, "status": "unknown", "reasons": [
                { "code": "view_error", "message": e.to_string() }
            ]})
        });
        let json = value.to_string();
        let exact = hash(&json);
        strip_drift(&mut value);
        Self {
            id: view.id.clone(),
            exact,
            gist: hash(&value.to_string()),
            json,
        }
    }
}

/// Removes from a view's JSON what drifts between checks without a change in
/// substance; connection ids and cooling reasons stay.
fn strip_drift(v: &mut serde_json::Value) {
    if let Some(o) = v.as_object_mut() {
        o.remove("load");
    }
    for track in ["stream", "record"] {
        if let Some(o) = v.get_mut(track).and_then(|t| t.as_object_mut()) {
            o.remove("next_step_in_s");
            o.remove("out_of_state_for_s");
        }
    }
    if let Some(o) = v.get_mut("pool").and_then(|p| p.as_object_mut()) {
        o.remove("retry_in_s");
    }
    if let Some(conns) = v.get_mut("connections").and_then(|c| c.as_array_mut()) {
        for c in conns {
            if let Some(o) = c.as_object_mut() {
                o.retain(|k, _| k == "connection_id" || k == "cooling");
            }
        }
    }
}

fn now_field() -> String {
    serde_json::json!({ "now": rfc3339(SystemTime::now()) }).to_string()
}

/// What one client was last sent, by encoder id: the view's exact hash and gist.
#[derive(Debug, Default)]
struct Sent {
    hashes: HashMap<String, (u64, u64)>,
}

impl Sent {
    /// Everything, as the `snapshot` data; remembers it all.
    fn snapshot(&mut self, views: impl Iterator<Item = Rendered>) -> String {
        self.hashes.clear();
        let mut encoders = Vec::new();
        for r in views {
            self.hashes.insert(r.id, (r.exact, r.gist));
            encoders.push(r.json);
        }
        payload(&encoders, None)
    }

    /// The `update` data for the views that differ from what was sent (by gist when
    /// `by_gist`, else at all) and the ids sent before that are no longer `present`;
    /// `None` when there is neither.
    fn update(
        &mut self,
        views: impl Iterator<Item = Rendered>,
        present: &HashSet<String>,
        by_gist: bool,
    ) -> Option<String> {
        let mut encoders = Vec::new();
        for r in views {
            if !present.contains(&r.id) {
                continue;
            }
            let changed = match self.hashes.get(&r.id) {
                None => true,
                Some(&(_, gist)) if by_gist => gist != r.gist,
                Some(&(exact, _)) => exact != r.exact,
            };
            if changed {
                self.hashes.insert(r.id, (r.exact, r.gist));
                encoders.push(r.json);
            }
        }
        let mut removed: Vec<String> = self
            .hashes
            .keys()
            .filter(|id| !present.contains(*id))
            .cloned()
            .collect();
        removed.sort();
        for id in &removed {
            self.hashes.remove(id);
        }
        if encoders.is_empty() && removed.is_empty() {
            return None;
        }
        Some(payload(&encoders, Some(&removed)))
    }
}

fn hash(text: &str) -> u64 {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// `{"now":…,"encoders":[…],"removed":[…]}` from views already serialized.
fn payload(encoders: &[String], removed: Option<&[String]>) -> String {
    let size = encoders.iter().map(|e| e.len() + 1).sum::<usize>() + 64;
    let mut out = String::with_capacity(size);
    out.push_str("{\"now\":");
    out.push_str(&serde_json::Value::from(rfc3339(SystemTime::now())).to_string());
    out.push_str(",\"encoders\":[");
    out.push_str(&encoders.join(","));
    out.push(']');
    if let Some(removed) = removed {
        out.push_str(",\"removed\":");
        out.push_str(&serde_json::Value::from(removed.to_vec()).to_string());
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A view `{"id", "v", "drift"}` whose gist is `v` alone.
    fn r(id: &str, v: u32, drift: u32) -> Rendered {
        let json = format!("{{\"id\":\"{id}\",\"v\":{v},\"drift\":{drift}}}");
        Rendered {
            id: id.to_string(),
            exact: hash(&json),
            gist: hash(&v.to_string()),
            json,
        }
    }

    fn present(ids: &[&str]) -> HashSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    fn parse(data: Option<String>) -> serde_json::Value {
        let data = data.unwrap_or_else(|| panic!("nothing to send"));
        serde_json::from_str(&data).unwrap_or_else(|e| panic!("{e}: {data}"))
    }

    fn ids(v: &serde_json::Value) -> Vec<&str> {
        v["encoders"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["id"].as_str()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn an_update_carries_only_what_differs_from_what_this_client_was_sent() {
        let mut sent = Sent::default();
        let snap = parse(Some(
            sent.snapshot([r("a", 1, 0), r("b", 1, 0), r("c", 1, 0)].into_iter()),
        ));
        assert_eq!(ids(&snap), ["a", "b", "c"]);
        assert!(snap["now"].as_str().is_some_and(|n| n.ends_with('Z')));
        assert!(snap.get("removed").is_none());

        // Marked but unchanged: nothing to send.
        let all = present(&["a", "b", "c"]);
        assert_eq!(
            sent.update([r("a", 1, 0), r("b", 1, 0)].into_iter(), &all, false),
            None
        );

        let up = parse(sent.update([r("a", 1, 0), r("b", 2, 0)].into_iter(), &all, false));
        assert_eq!(ids(&up), ["b"]);
        assert_eq!(up["encoders"][0]["v"], 2);
        assert_eq!(up["removed"], serde_json::json!([]));
        // Sent once: the same view again is not news.
        assert_eq!(sent.update([r("b", 2, 0)].into_iter(), &all, false), None);
    }

    #[test]
    fn a_refresh_sends_changes_in_substance_and_a_check_sends_any_change() {
        let mut sent = Sent::default();
        sent.snapshot([r("a", 1, 0), r("b", 1, 0)].into_iter());
        let all = present(&["a", "b"]);
        // Only drift: the refresh stays quiet…
        assert_eq!(
            sent.update([r("a", 1, 5), r("b", 1, 5)].into_iter(), &all, true),
            None
        );
        // …a change in substance goes out…
        let up = parse(sent.update([r("a", 1, 6), r("b", 2, 6)].into_iter(), &all, true));
        assert_eq!(ids(&up), ["b"]);
        // …and a check's mark sends the drifted view too.
        let up = parse(sent.update([r("a", 1, 7)].into_iter(), &all, false));
        assert_eq!(ids(&up), ["a"]);
    }

    #[test]
    fn removed_and_added_encoders_are_announced_once() {
        let mut sent = Sent::default();
        sent.snapshot([r("a", 1, 0), r("b", 1, 0)].into_iter());
        let now = present(&["a", "c"]);
        let up = parse(sent.update([r("a", 1, 0), r("c", 1, 0)].into_iter(), &now, true));
        assert_eq!(ids(&up), ["c"]);
        assert_eq!(up["removed"], serde_json::json!(["b"]));
        assert_eq!(
            sent.update([r("a", 1, 0), r("c", 1, 0)].into_iter(), &now, true),
            None
        );
    }

    #[test]
    fn a_view_built_for_an_encoder_removed_meanwhile_is_not_sent() {
        let mut sent = Sent::default();
        sent.snapshot([r("a", 1, 0)].into_iter());
        let up = parse(sent.update([r("a", 2, 0)].into_iter(), &present(&[]), false));
        assert_eq!(ids(&up), Vec::<&str>::new());
        assert_eq!(up["removed"], serde_json::json!(["a"]));
    }

    #[test]
    fn drift_is_what_moves_by_itself_and_nothing_else() {
        let mut v = serde_json::json!({
            "id": "a", "status": "healthy", "load": 12.5,
            "stream": { "state": "streaming", "next_step_in_s": 1.5, "out_of_state_for_s": 3.0 },
            "record": { "state": "idle", "next_step_in_s": null },
            "pool": { "warm": 2, "cooling": 1, "retry_in_s": 4.2 },
            "connections": [{ "connection_id": 7, "temperature": 41.2, "load": 3.0,
                              "request_rate": 0.5, "cooling": "manual" }],
        });
        strip_drift(&mut v);
        assert_eq!(
            v,
            serde_json::json!({
                "id": "a", "status": "healthy",
                "stream": { "state": "streaming" },
                "record": { "state": "idle" },
                "pool": { "warm": 2, "cooling": 1 },
                "connections": [{ "connection_id": 7, "cooling": "manual" }],
            })
        );
    }

    #[test]
    fn device_text_stays_inside_its_json_string() {
        let mut sent = Sent::default();
        let hostile = r#"</script><b>"x"\n"#;
        let json = serde_json::json!({ "id": "a", "detail": hostile }).to_string();
        let item = Rendered {
            id: "a".into(),
            exact: hash(&json),
            gist: 0,
            json,
        };
        let data = sent.snapshot(std::iter::once(item));
        assert!(!data.contains('\n'), "one data line: {data}");
        assert_eq!(parse(Some(data))["encoders"][0]["detail"], hostile);
    }
}
