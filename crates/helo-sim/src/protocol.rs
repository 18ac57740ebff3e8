//! The HELO REST protocol: routing, authentication check, parameter, login and event
//! handlers, and the faults applied around them.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{
    HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, RETRY_AFTER, SET_COOKIE,
};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;

use crate::body::SimBody;
use crate::counts::PathKind;
use crate::device::DeviceInner;
use crate::events::WaitStart;
use crate::params::Param;
use crate::server::ConnCtl;
use crate::state::later;
use crate::{control, Faults, SimError};

/// Request bodies (login forms) are tiny; anything bigger is refused.
pub(crate) const MAX_REQUEST_BODY: usize = 64 * 1024;

const NOT_FOUND_HTML: &str = "<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1><p>The document requested was not found on this server.</p></body></html>";
const MALFORMED_JSON: &str =
    "{\"paramid\": \"2097225203\", \"name\": eParamID_ReplicatorStreamState, \"value\": ";
const LOGIN_FAILED: &str = "Login Failed - Passwords did not match";
const INVALID_CONNECTION: &str = "Invalid connection id";

/// An answer before faults are applied to it.
#[derive(Debug)]
pub(crate) struct Reply {
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
    headers: Vec<(HeaderName, String)>,
}

impl Reply {
    /// Structs keep their field order on the wire, which line-oriented scripts like.
    pub(crate) fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Self {
        let body = serde_json::to_vec(value)
            .unwrap_or_else(|_| br#"{"error":"cannot encode the answer"}"#.to_vec());
        Reply {
            status,
            content_type: "application/json",
            body: Bytes::from(body),
            headers: Vec::new(),
        }
    }

    pub(crate) fn error(status: StatusCode, message: &str) -> Self {
        Reply::json(status, &json!({ "error": message }))
    }

    fn bad_request(err: &SimError) -> Self {
        Reply::error(StatusCode::BAD_REQUEST, &err.to_string())
    }

    fn not_found() -> Self {
        Reply {
            status: StatusCode::NOT_FOUND,
            content_type: "text/html",
            body: Bytes::from_static(NOT_FOUND_HTML.as_bytes()),
            headers: Vec::new(),
        }
    }

    fn unavailable(retry_after_s: u64) -> Self {
        Reply::error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
            .with_header(RETRY_AFTER, retry_after_s.to_string())
    }

    fn with_header(mut self, name: HeaderName, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    fn response(self, body: SimBody, content_length: Option<usize>) -> Response<SimBody> {
        let mut resp = Response::new(body);
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        if let Some(len) = content_length {
            h.insert(CONTENT_LENGTH, HeaderValue::from(len));
        }
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::try_from(value) {
                h.append(name, v);
            }
        }
        resp
    }

    pub(crate) fn into_response(self) -> Response<SimBody> {
        let body = SimBody::full(self.body.clone());
        self.response(body, None)
    }

    /// The answer as the body faults spoil it; the first set one wins.
    fn spoiled(self, f: &Faults, ctl: Arc<ConnCtl>) -> Response<SimBody> {
        let len = self.body.len();
        if f.reset {
            let half = self.body.slice(..len / 2);
            let body = cut_off(half, ctl, true);
            self.response(body, Some(len))
        } else if f.truncated_json {
            let body = cut_off(self.body.clone(), ctl, false);
            self.response(body, Some(len + len.max(16)))
        } else if f.malformed_json {
            let body = SimBody::full(Bytes::from_static(MALFORMED_JSON.as_bytes()));
            Reply {
                status: StatusCode::OK,
                content_type: "application/json",
                ..self
            }
            .response(body, None)
        } else if f.oversized_body_bytes > 0 {
            let head = Bytes::from_static(b"{\"padding\":\"");
            let tail = Bytes::from_static(b"\"}");
            let frame = (head.len() + tail.len()) as u64;
            let body = SimBody::Padding {
                remaining: f.oversized_body_bytes.saturating_sub(frame),
                head: Some(head),
                tail: Some(tail),
            };
            Reply {
                status: StatusCode::OK,
                content_type: "application/json",
                ..self
            }
            .response(body, None)
        } else {
            self.into_response()
        }
    }
}

fn cut_off(data: Bytes, ctl: Arc<ConnCtl>, rst: bool) -> SimBody {
    SimBody::CutOff {
        data: (!data.is_empty()).then_some(data),
        ctl,
        rst,
        pause: None,
    }
}

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
    inner.counters.record(classify(&path, &args));

    if let Some(secs) = inner.unavailable_503(Instant::now()) {
        return Ok(Reply::unavailable(secs).into_response());
    }
    let faults = {
        let f = inner.faults.borrow();
        f.roll().then(|| f.clone())
    };
    if let Some(f) = &faults {
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
        if f.unavailable_503 {
            return Ok(Reply::unavailable(f.retry_after_s).into_response());
        }
        if f.error_500 {
            return Ok(
                Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
                    .into_response(),
            );
        }
    }
    let reply = route(&inner, &path, &args, &cookies).await;
    Ok(match &faults {
        Some(f) => reply.spoiled(f, ctl),
        None => reply.into_response(),
    })
}

fn normalize(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    }
}

async fn route(inner: &Arc<DeviceInner>, path: &str, args: &Args, cookies: &[String]) -> Reply {
    if path == "/authenticator/login" {
        return login(inner, args);
    }
    if !matches!(path, "/config" | "/json" | "/descriptors") {
        return Reply::not_found();
    }
    let admitted = inner.with_state(|s, now| {
        !s.auth_required() || s.sessions.admits(cookies.iter().map(String::as_str), now)
    });
    if !admitted {
        return Reply::not_found();
    }
    if path == "/descriptors" {
        return descriptors(inner, args);
    }
    let action = args.get("action").unwrap_or("").trim().to_ascii_lowercase();
    match action.as_str() {
        "get" => get(inner, args),
        "set" => set(inner, args),
        "connect" => connect(inner),
        "wait_for_config_events" => wait(inner, args).await,
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

fn get(inner: &DeviceInner, args: &Args) -> Reply {
    let key = match paramid(args) {
        Ok(k) => k,
        Err(r) => return r,
    };
    inner
        .with_state(|s, now| {
            let p = s.lookup(key)?;
            Ok(p.object(&s.value(p, now)))
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

fn login(inner: &DeviceInner, args: &Args) -> Reply {
    let password = args.get("password_provided").unwrap_or("");
    match inner.with_state(|s, now| s.login(password, now)) {
        Some(token) => Reply::json(StatusCode::OK, &json!({"login": "success"}))
            .with_header(SET_COOKIE, format!("session={token}; path=/")),
        None => Reply::json(StatusCode::OK, &json!({ "login": LOGIN_FAILED })),
    }
}

fn connect(inner: &DeviceInner) -> Reply {
    if !inner.cfg.events_supported {
        return Reply::error(StatusCode::BAD_REQUEST, "Unsupported action 'connect'");
    }
    #[derive(Serialize)]
    struct Connected {
        connectionid: u64,
        configevents: Vec<crate::events::ConfigEvent>,
    }
    let (connectionid, configevents) = inner.with_state(|s, now| s.connect(now));
    Reply::json(
        StatusCode::OK,
        &Connected {
            connectionid,
            configevents,
        },
    )
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

async fn wait(inner: &DeviceInner, args: &Args) -> Reply {
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
