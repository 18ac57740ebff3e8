//! The `/sim/*` control endpoint on each device's own port: state, faults, parameters,
//! request counters. Neither faults nor authentication apply here.

use std::time::Duration;

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Value as Json};

use crate::device::DeviceInner;
use crate::faults::FaultPatch;
use crate::protocol::read_body;
use crate::reply::Reply;
use crate::RequestKind;

pub(crate) async fn handle(inner: &DeviceInner, req: Request<Incoming>, path: &str) -> Reply {
    inner.counters.record_control();
    let method = req.method().clone();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let body = match read_body(req.into_body()).await {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    let write = method == Method::POST || method == Method::PUT;
    match (path, write) {
        ("/sim/state", false) => Reply::json(StatusCode::OK, &state(inner)),
        ("/sim/faults", false) => Reply::json(StatusCode::OK, &json!(*inner.faults.borrow())),
        ("/sim/faults", true) => apply_json(inner, &body),
        ("/sim/params", true) => {
            match serde_json::from_slice::<serde_json::Map<String, Json>>(&body) {
                Ok(map) => set_params(inner, &map),
                Err(e) => Reply::error(StatusCode::BAD_REQUEST, &format!("bad parameter map: {e}")),
            }
        }
        ("/sim/counts", false) => counts(inner, &query),
        ("/sim/counts/reset", true) => {
            let before = inner.counters.snapshot();
            inner.counters.reset();
            Reply::json(StatusCode::OK, &before)
        }
        ("/sim/reboot", true) => {
            inner.with_state(|s, now| s.reboot(now));
            Reply::json(StatusCode::OK, &json!({"rebooting": true}))
        }
        _ => Reply::error(StatusCode::NOT_FOUND, "unknown control request"),
    }
}

/// Every counter, or with `?kind=NAME` one of them: `{"kind": NAME, "count": N}`.
fn counts(inner: &DeviceInner, query: &str) -> Reply {
    let counts = inner.counters.snapshot();
    let kind = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "kind")
        .map(|(_, v)| v.parse::<RequestKind>());
    match kind {
        None => Reply::json(StatusCode::OK, &counts),
        Some(Ok(kind)) => Reply::json(
            StatusCode::OK,
            &json!({ "kind": kind.as_str(), "count": counts.of(kind) }),
        ),
        Some(Err(e)) => Reply::bad_request(&e),
    }
}

fn state(inner: &DeviceInner) -> Json {
    let snapshot = inner.with_state(|s, now| s.snapshot(now));
    json!({
        "url": format!("http://{}", inner.addr),
        "state": snapshot,
        "faults": *inner.faults.borrow(),
        "requests": inner.counters.snapshot(),
    })
}

/// Applies a JSON fault patch (the body of `POST /sim/faults`).
pub(crate) fn apply_json(inner: &DeviceInner, body: &[u8]) -> Reply {
    match serde_json::from_slice::<FaultPatch>(body) {
        Ok(patch) => apply(inner, &patch),
        Err(e) => Reply::error(StatusCode::BAD_REQUEST, &format!("bad fault patch: {e}")),
    }
}

fn apply(inner: &DeviceInner, patch: &FaultPatch) -> Reply {
    let current = inner.faults.borrow().clone();
    let faults = match patch.apply_to(&current).and_then(|f| {
        inner.set_faults(f.clone())?;
        Ok(f)
    }) {
        Ok(f) => f,
        Err(e) => return Reply::error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    inner.with_state(|s, now| {
        if patch.fail_stream {
            s.fail_stream(now);
        }
        if patch.fail_record {
            s.fail_record(now);
        }
        if patch.expire_sessions {
            s.sessions.expire_all();
        }
        if let Some(t) = patch.overheat_c {
            s.overheat(now, t);
        }
        if patch.cool_down {
            s.cool_down(now);
        }
        if let Some(n) = patch.link_errors {
            s.bump_link_errors(now, n);
        }
        if patch.reboot {
            s.reboot(now);
        }
    });
    if let Some(ms) = patch.unreachable_ms {
        inner.go_unreachable(Duration::from_millis(ms));
    }
    Reply::json(StatusCode::OK, &json!(faults))
}

fn set_params(inner: &DeviceInner, map: &serde_json::Map<String, Json>) -> Reply {
    for (name, value) in map {
        let text = match value {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        if let Err(e) = inner.set_param(name, &text) {
            return Reply::error(StatusCode::BAD_REQUEST, &e.to_string());
        }
    }
    Reply::json(StatusCode::OK, &state(inner))
}
