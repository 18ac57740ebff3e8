//! What one client is sent: each view serialized once and compared, by hash, with
//! what this client was sent before.

use std::{
    collections::{HashMap, HashSet},
    hash::{DefaultHasher, Hash, Hasher},
    time::SystemTime,
};

use crate::report::{rfc3339, EncoderView};

/// One view, serialized once, with what it is compared by.
#[derive(Debug)]
pub(super) struct Rendered {
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
    pub(super) fn of(view: &EncoderView) -> Self {
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

/// What one client was last sent, by encoder id: the view's exact hash and gist.
#[derive(Debug, Default)]
pub(super) struct Sent {
    hashes: HashMap<String, (u64, u64)>,
}

impl Sent {
    /// Everything, as the `snapshot` data; remembers it all.
    pub(super) fn snapshot(&mut self, views: impl Iterator<Item = Rendered>) -> String {
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
    pub(super) fn update(
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
