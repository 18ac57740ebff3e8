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
//! the admin actions; a tick builds views only for the marked encoders. Pools and
//! connection temperatures also move between checks, without a mark, so every
//! [`EventsConfig::refresh`] (5 s) all views are built and compared. A view is compared
//! by a hash of its JSON, so a mark that changed nothing sends nothing.
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
    sync::watch,
    time::{Instant, MissedTickBehavior},
};

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
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let client = Client::new(fleet, config, closing);
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
}

impl Client {
    fn new(fleet: Fleet, config: EventsConfig, closing: watch::Receiver<bool>) -> Self {
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
        }
    }

    async fn next_event(&mut self) -> Option<Event> {
        if *self.closing.borrow() {
            return None;
        }
        let Some(mut seen) = self.seen else {
            return Some(self.snapshot());
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
                let views = if refresh {
                    self.fleet.views()
                } else {
                    marked.iter().filter_map(|id| self.fleet.view(id)).collect()
                };
                let present: HashSet<String> = self.fleet.encoder_ids().into_iter().collect();
                if let Some(data) = self.sent.update(views.iter().map(json), &present) {
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

    fn snapshot(&mut self) -> Event {
        // The mark first: a change made while the views are built is sent again
        // rather than missed.
        self.seen = Some(self.fleet.changes().current());
        let views = self.fleet.views();
        let data = self.sent.snapshot(views.iter().map(json));
        self.last_event_at = Instant::now();
        Event::default()
            .event("snapshot")
            .retry(self.config.retry)
            .data(data)
    }
}

/// Completes when the server shuts down; never if it cannot (its sender is gone).
async fn closed(closing: &mut watch::Receiver<bool>) {
    if closing.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn json(view: &crate::report::EncoderView) -> (String, String) {
    let text = serde_json::to_string(view).unwrap_or_else(|e| {
        // Serializing plain data does not fail; if it ever did, the page shows why.
        serde_json::json!({ "id": view.id, "status": "unknown", "reasons": [
            { "code": "view_error", "message": e.to_string() }
        ]})
        .to_string()
    });
    (view.id.clone(), text)
}

fn now_field() -> String {
    serde_json::json!({ "now": rfc3339(SystemTime::now()) }).to_string()
}

/// What one client was last sent: a hash of each encoder's view JSON.
#[derive(Debug, Default)]
struct Sent {
    hashes: HashMap<String, u64>,
}

impl Sent {
    /// Everything, as the `snapshot` data; remembers it all.
    fn snapshot(&mut self, views: impl Iterator<Item = (String, String)>) -> String {
        self.hashes.clear();
        let mut encoders = Vec::new();
        for (id, text) in views {
            self.hashes.insert(id, hash(&text));
            encoders.push(text);
        }
        payload(&encoders, None)
    }

    /// The `update` data for the views that differ from what was sent and the ids sent
    /// before that are no longer `present`; `None` when there is neither.
    fn update(
        &mut self,
        views: impl Iterator<Item = (String, String)>,
        present: &HashSet<String>,
    ) -> Option<String> {
        let mut encoders = Vec::new();
        for (id, text) in views {
            if !present.contains(&id) {
                continue;
            }
            let h = hash(&text);
            if self.hashes.get(&id) != Some(&h) {
                self.hashes.insert(id, h);
                encoders.push(text);
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

    fn views(list: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        list.iter()
            .map(|(id, v)| (id.to_string(), format!("{{\"id\":\"{id}\",\"v\":{v}}}")))
            .collect::<Vec<_>>()
            .into_iter()
    }

    fn present(ids: &[&str]) -> HashSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    fn parse(data: &str) -> serde_json::Value {
        serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"))
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
        let snap = parse(&sent.snapshot(views(&[("a", "1"), ("b", "1"), ("c", "1")])));
        assert_eq!(ids(&snap), ["a", "b", "c"]);
        assert!(snap["now"].as_str().is_some_and(|n| n.ends_with('Z')));
        assert!(snap.get("removed").is_none());

        // Marked but unchanged: nothing to send.
        let all = present(&["a", "b", "c"]);
        assert_eq!(sent.update(views(&[("a", "1"), ("b", "1")]), &all), None);

        let up = parse(
            &sent
                .update(views(&[("a", "1"), ("b", "2")]), &all)
                .unwrap_or_default(),
        );
        assert_eq!(ids(&up), ["b"]);
        assert_eq!(up["encoders"][0]["v"], 2);
        assert_eq!(up["removed"], serde_json::json!([]));
        // Sent once: the same view again is not news.
        assert_eq!(sent.update(views(&[("b", "2")]), &all), None);
    }

    #[test]
    fn removed_and_added_encoders_are_announced_once() {
        let mut sent = Sent::default();
        sent.snapshot(views(&[("a", "1"), ("b", "1")]));
        let now = present(&["a", "c"]);
        let up = parse(
            &sent
                .update(views(&[("a", "1"), ("c", "1")]), &now)
                .unwrap_or_default(),
        );
        assert_eq!(ids(&up), ["c"]);
        assert_eq!(up["removed"], serde_json::json!(["b"]));
        assert_eq!(sent.update(views(&[("a", "1"), ("c", "1")]), &now), None);
    }

    #[test]
    fn a_view_built_for_an_encoder_removed_meanwhile_is_not_sent() {
        let mut sent = Sent::default();
        sent.snapshot(views(&[("a", "1")]));
        let up = parse(
            &sent
                .update(views(&[("a", "2")]), &present(&[]))
                .unwrap_or_default(),
        );
        assert_eq!(ids(&up), Vec::<&str>::new());
        assert_eq!(up["removed"], serde_json::json!(["a"]));
    }

    #[test]
    fn device_text_stays_inside_its_json_string() {
        let mut sent = Sent::default();
        let hostile = r#"</script><b>"x"\n"#;
        let view = serde_json::json!({ "id": "a", "detail": hostile }).to_string();
        let data = sent.snapshot(std::iter::once(("a".to_string(), view)));
        assert!(!data.contains('\n'), "one data line: {data}");
        assert_eq!(parse(&data)["encoders"][0]["detail"], hostile);
    }
}
