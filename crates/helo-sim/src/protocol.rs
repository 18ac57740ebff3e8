//! The HELO REST protocol: routing, authentication check, parameter, login and event
//! handlers, and the faults applied around them (see [`Faults`] for their order).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{COOKIE, HOST, SET_COOKIE};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;

use crate::body::SimBody;
use crate::counts::PathKind;
use crate::device::DeviceInner;
use crate::events::{ConfigEvent, WaitStart};
use crate::params::Param;
use crate::reply::Reply;
use crate::server::ConnCtl;
use crate::state::later;
use crate::{control, hostile, Faults, SimError};

/// Request bodies (login forms) are tiny; anything bigger is refused.
pub(crate) const MAX_REQUEST_BODY: usize = 64 * 1024;

const LOGIN_FAILED: &str = "Login Failed - Passwords did not match";
const INVALID_CONNECTION: &str = "Invalid connection id";

/// Query (and form body) arguments, keys matched case-insensitively.
#[derive(Debug, Default)]
pub(crate) struct Args(Vec<(String, String)>);

impl Args {
    fn parse(query: &str, body: &[u8]) -> Self {
        let mut args: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        // Liberal: a POSTed form counts like the query string.
        if !body.is_empty() && !body.starts_with(b"{") {
            args.extend(form_urlencoded::parse(body).into_owned());
        }
        Args(args)
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    fn action_is(&self, action: &str) -> bool {
        self.get("action")
            .is_some_and(|a| a.trim().eq_ignore_ascii_case(action))
    }
}

pub(crate) async fn read_body(body: Incoming) -> Result<Bytes, Reply> {
    match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(_) => Err(Reply::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body too large or incomplete",
        )),
    }
}

fn classify(path: &str, args: &Args) -> PathKind {
    match path {
        "/config" | "/json" if args.action_is("get") => PathKind::Get,
        "/config" | "/json" if args.action_is("set") => PathKind::Set,
        "/config" | "/json" if args.action_is("connect") => PathKind::Connect,
        "/config" | "/json" if args.action_is("wait_for_config_events") => PathKind::Wait,
        "/descriptors" => PathKind::Descriptors,
        "/authenticator/login" => PathKind::Login,
        _ => PathKind::Other,
    }
}

/// hyper's service for one request.
pub(crate) async fn handle(
    inner: Arc<DeviceInner>,
    ctl: Arc<ConnCtl>,
    req: Request<Incoming>,
) -> Result<Response<SimBody>, Infallible> {
    let path = normalize(req.uri().path());
    if path == "/sim" || path.starts_with("/sim/") {
        return Ok(control::handle(&inner, req, &path).await.into_response());
    }
    // The URL asked, for `redirect_loop`: as the client named the device, if it did.
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| inner.addr.to_string(), str::to_owned);
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| path.clone(), |pq| pq.as_str().to_owned());
    let query = req.uri().query().unwrap_or_default().to_owned();
    let cookies: Vec<String> = req
        .headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect();
    let body = match read_body(req.into_body()).await {
        Ok(b) => b,
        Err(reply) => {
            inner.counters.record(PathKind::Other);
            return Ok(reply.into_response());
        }
    };
    let args = Args::parse(&query, &body);
    let kind = classify(&path, &args);
    inner.counters.record(kind);

    if let Some(secs) = inner.unavailable_503(Instant::now()) {
        return Ok(Reply::unavailable(secs).into_response());
    }
    let faults = {
        let f = inner.faults.borrow();
        f.roll().then(|| f.clone())
    };
    let Some(f) = faults else {
        let request = Req {
            path: &path,
            args: &args,
            cookies: &cookies,
        };
        return Ok(route(&inner, &request, None).await.into_response());
    };
    if f.latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(f.latency_ms)).await;
    }
    if f.hang {
        let mut rx = inner.faults.subscribe();
        // Held until the fault is cleared; shutdown drops this future.
        let _ = rx.wait_for(|f| !f.hang).await;
    }
    if f.refuse {
        ctl.kill(true);
        return std::future::pending().await;
    }
    let reply = if f.unavailable_503 {
        Reply::unavailable(f.retry_after_s)
    } else if f.error_500 {
        Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
    } else if f.redirect_loop {
        Reply::found(format!("http://{host}{target}"))
    } else {
        let request = Req {
            path: &path,
            args: &args,
            cookies: &cookies,
        };
        route(&inner, &request, Some(&f)).await
    };
    let reply = reply.with_error_text(&f);
    if let Some(raw) = hostile::plan(&reply, &f, kind) {
        // The connection task takes the socket back from hyper and writes this; this
        // request's future is dropped with the connection.
        ctl.answer_raw(raw);
        return std::future::pending().await;
    }
    Ok(reply.spoiled(&f, ctl))
}

fn normalize(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// What the handlers need of a request.
struct Req<'a> {
    path: &'a str,
    args: &'a Args,
    cookies: &'a [String],
}

/// The device's own answer; `f` is the request's faults when they apply to it.
async fn route(inner: &Arc<DeviceInner>, req: &Req<'_>, f: Option<&Faults>) -> Reply {
    let (path, args) = (req.path, req.args);
    if path == "/authenticator/login" {
        return login(inner, args, f.is_some_and(|f| f.login_without_cookie));
    }
    if !matches!(path, "/config" | "/json" | "/descriptors") {
        return Reply::not_found();
    }
    let admitted = inner.with_state(|s, now| {
        !s.auth_required()
            || s.sessions
                .admits(req.cookies.iter().map(String::as_str), now)
    });
    if !admitted {
        return Reply::not_found();
    }
    if path == "/descriptors" {
        return descriptors(inner, args);
    }
    let action = args.get("action").unwrap_or("").trim().to_ascii_lowercase();
    match action.as_str() {
        "get" => get(inner, args, f.and_then(|f| f.hostile_values.as_deref())),
        "set" => set(inner, args),
        "connect" => connect(inner, f.and_then(|f| f.event_connection_id.as_deref())),
        "wait_for_config_events" => wait(inner, args, f).await,
        "" => Reply::error(StatusCode::BAD_REQUEST, "Missing action"),
        other => Reply::error(
            StatusCode::BAD_REQUEST,
            &format!("Unknown action '{other}'"),
        ),
    }
}

fn paramid(args: &Args) -> Result<&str, Reply> {
    args.get("paramid")
        .ok_or_else(|| Reply::error(StatusCode::BAD_REQUEST, "Missing paramid"))
}

fn get(inner: &DeviceInner, args: &Args, hostile_values: Option<&str>) -> Reply {
    let key = match paramid(args) {
        Ok(k) => k,
        Err(r) => return r,
    };
    inner
        .with_state(|s, now| {
            let p = s.lookup(key)?;
            let object = p.object(&s.value(p, now));
            Ok(match hostile_values {
                Some(text) => object.with_text(text),
                None => object,
            })
        })
        .map_or_else(
            |e| Reply::bad_request(&e),
            |j| Reply::json(StatusCode::OK, &j),
        )
}

fn set(inner: &DeviceInner, args: &Args) -> Reply {
    let key = match paramid(args) {
        Ok(k) => k,
        Err(r) => return r,
    };
    inner
        .with_state(|s, now| {
            let p = s.lookup(key)?;
            let raw = args
                .get("value")
                .ok_or_else(|| SimError::MissingValue(p.name().to_owned()))?;
            s.set(p, raw, now, false)?;
            Ok(p.object(&s.value(p, now)))
        })
        .map_or_else(
            |e| Reply::bad_request(&e),
            |j| Reply::json(StatusCode::OK, &j),
        )
}

fn descriptors(inner: &DeviceInner, args: &Args) -> Reply {
    let result = inner.with_state(|s, _| match args.get("paramid") {
        Some(key) => {
            let p = s.lookup(key)?;
            Ok(vec![p.descriptor(&s.default_of(p))])
        }
        // Liberal: no paramid lists every descriptor.
        None => Ok(Param::ALL
            .iter()
            .filter(|p| s.lookup(p.name()).is_ok())
            .map(|p| p.descriptor(&s.default_of(*p)))
            .collect()),
    });
    result.map_or_else(
        |e| Reply::bad_request(&e),
        |j| Reply::json(StatusCode::OK, &j),
    )
}

fn login(inner: &DeviceInner, args: &Args, without_cookie: bool) -> Reply {
    let password = args.get("password_provided").unwrap_or("");
    let token = inner.with_state(|s, now| s.login(password, now));
    inner.counters.record_login(token.is_some());
    match token {
        Some(_) if without_cookie => Reply::json(StatusCode::OK, &json!({"login": "success"})),
        Some(token) => Reply::json(StatusCode::OK, &json!({"login": "success"}))
            .with_header(SET_COOKIE, format!("session={token}; path=/")),
        None => Reply::json(StatusCode::OK, &json!({ "login": LOGIN_FAILED })),
    }
}

fn connect(inner: &DeviceInner, hostile_id: Option<&str>) -> Reply {
    if !inner.cfg.events_supported {
        return Reply::error(StatusCode::BAD_REQUEST, "Unsupported action 'connect'");
    }
    #[derive(Serialize)]
    struct Connected<Id> {
        connectionid: Id,
        configevents: Vec<ConfigEvent>,
    }
    let (connectionid, configevents) = inner.with_state(|s, now| s.connect(now));
    match hostile_id {
        Some(id) => Reply::json(
            StatusCode::OK,
            &Connected {
                connectionid: id,
                configevents,
            },
        ),
        None => Reply::json(
            StatusCode::OK,
            &Connected {
                connectionid,
                configevents,
            },
        ),
    }
}

/// Ends the long poll's bookkeeping however the request ends (answered or dropped).
struct WaitGuard<'a> {
    inner: &'a DeviceInner,
    id: u64,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        let id = self.id;
        self.inner.with_state(|s, now| s.events.end_wait(id, now));
    }
}

async fn wait(inner: &DeviceInner, args: &Args, f: Option<&Faults>) -> Reply {
    if !inner.cfg.events_supported {
        return Reply::error(
            StatusCode::BAD_REQUEST,
            "Unsupported action 'wait_for_config_events'",
        );
    }
    let Some(id) = args
        .get("connectionid")
        .and_then(|v| v.trim().parse::<u64>().ok())
    else {
        return Reply::error(StatusCode::BAD_REQUEST, INVALID_CONNECTION);
    };
    if let Some(f) = f {
        if let Some(shape) = &f.event_shape {
            return checked_at_once(inner, id, Reply::json(StatusCode::OK, shape));
        }
        if f.endless_event_array || f.instant_events {
            // The endless array is written by hand from this `200`: see `hostile`.
            let none: [ConfigEvent; 0] = [];
            return checked_at_once(inner, id, Reply::json(StatusCode::OK, &none));
        }
    }
    let notify = match inner.with_state(|s, now| s.events.begin_wait(id, now)) {
        None => return Reply::error(StatusCode::BAD_REQUEST, INVALID_CONNECTION),
        Some(WaitStart::Ready(events)) => return Reply::json(StatusCode::OK, &events),
        Some(WaitStart::Wait(notify)) => notify,
    };
    let _guard = WaitGuard { inner, id };
    let deadline = later(Instant::now(), inner.cfg.event_hold);
    let events = loop {
        tokio::select! {
            _ = notify.notified() => {}
            _ = tokio::time::sleep_until(deadline) => break Vec::new(),
        }
        let (events, alive) = inner.with_state(|s, _| (s.events.take(id), s.events.contains(id)));
        // A wake with nothing queued is a stale permit, unless a reboot dropped the id.
        if !events.is_empty() || !alive {
            break events;
        }
    };
    Reply::json(StatusCode::OK, &events)
}

/// `reply` at once if the connection id is live (the id counts as used), else the
/// usual invalid-id error; queued changes stay queued.
fn checked_at_once(inner: &DeviceInner, id: u64, reply: Reply) -> Reply {
    if inner.with_state(|s, now| s.events.touch(id, now)) {
        reply
    } else {
        Reply::error(StatusCode::BAD_REQUEST, INVALID_CONNECTION)
    }
}
