//! The bodies of the fuzz targets (`fuzz/fuzz_targets/`), here so that the replay tests
//! (`tests/fuzz_regressions.rs`) run the very same code on stable.
//!
//! Each function takes arbitrary bytes, feeds them to a parser of this crate as the
//! network would, and panics only when a promise is broken: the parser panicked, or an
//! answer it accepted does not read back the same once rendered again, or a value it
//! produced could not be sent on. Nothing here does I/O or waits.

use std::{collections::VecDeque, sync::Mutex, time::Duration};

use bytes::Bytes;
use futures_util::{future::BoxFuture, FutureExt};

use crate::{
    config::{Device, DeviceConfig, DeviceName, Password},
    connection::http1,
    device_text::{device_text, DEVICE_TEXT_MAX},
    error::HeloError,
    exchange::Exchange,
    outcome::Outcome,
    param::{parse_running_duration, ParamValue},
    request::{HeloRequest, HeloResponse},
    session,
    stats::ConnectionStats,
    wire::{self, Parsed, RawRequest, RawResponse},
};

/// The parameter every fuzzed request is about.
const PARAM: &str = "eParamID_ReplicatorStreamState";

fn device_name() -> DeviceName {
    DeviceName::from("fuzz")
}

/// Reads a whole answer to one request: `wire::parse`, the code that turns a status,
/// `Retry-After` and body into a typed answer or a typed error.
///
/// Input: byte 0 picks the request (`g`et, `s`et, `d`escriptor, `l`ogin, `c`onnect,
/// `C` legacy connect, `w`ait for events; any other byte: by its value), byte 1 the
/// status (`2` 200, `4` 400, `N` 404, `5` 503; any other byte `b`: `100 + 2b`), byte 2
/// whether a password is configured (odd: yes). Up to the first `\n` after them: the
/// `Retry-After` header (none when empty). The rest: the body.
pub fn wire_response(data: &[u8]) {
    let Some((&[kind, status, flags], rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let req = request_of(kind);
    let status = match status {
        b'2' => 200,
        b'4' => 400,
        b'N' => 404,
        b'5' => 503,
        b => 100 + 2 * u16::from(b),
    };
    let has_password = flags & 1 == 1;
    let (retry_after, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (&rest[..0], rest),
    };
    let resp = RawResponse {
        status,
        set_cookies: Vec::new(),
        // As the connection reads it: only a header that is valid text arrives.
        retry_after: std::str::from_utf8(retry_after)
            .ok()
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        body: Bytes::copy_from_slice(body),
    };
    let dev = device_name();
    match wire::parse(&dev, &req, &resp, has_password) {
        Ok(Parsed::NeedsLogin) => assert!(
            status == 404 && has_password && req != HeloRequest::Login,
            "NeedsLogin from status {status} for {req} (password: {has_password})"
        ),
        Ok(Parsed::Done(answer)) => {
            assert_eq!(status, 200, "a usable answer from status {status}");
            assert_eq!(answer.kind(), kind_of(&req), "answer to {req}");
            reads_back(&dev, &req, &answer);
        }
        Err(e) => check_error(&dev, &req, status, &e),
    }
}

/// Reads the bytes a device sends on a connection as one HTTP/1.1 answer
/// (`connection/http1.rs`: head, `Content-Length`, chunked or close-delimited body,
/// interim answers, limits), handed over whole, one byte at a time, and in pieces of a
/// size the input picks. Where the network splits an answer must never change what
/// is read: the same answer or the same kind of error, and a connection that a
/// reading seeing more bytes at once keeps is kept by one that sees fewer (surplus
/// bytes after an answer can only be seen when they arrive with it).
///
/// Input: byte 0 the size of the pieces (1 to 256), byte 1 the limits (head 64 B to
/// 8 KiB by its low three bits, body 16 B to 2 KiB by the next three), the rest the
/// bytes on the wire, followed by the end of the stream.
pub fn http1_answer(data: &[u8]) {
    let Some((&[step, limits], wire)) = data.split_first_chunk::<2>() else {
        return;
    };
    let head_limit = 64_usize << (limits & 7);
    let max_body = 16_usize << ((limits >> 3) & 7);
    let read = |step: usize| {
        let source = http1::Pieces { data: wire, step };
        match http1::read_answer(source, head_limit, max_body).now_or_never() {
            Some(answer) => answer,
            None => panic!("the framing waited on bytes that were all there"),
        }
    };
    // From the most bytes per read to the fewest.
    let readings = [
        (usize::MAX, read(usize::MAX)),
        (usize::from(step) + 1, read(usize::from(step) + 1)),
        (1, read(1)),
    ];
    if let Ok(answer) = &readings[0].1 {
        assert!(
            answer.response.body.len() <= max_body,
            "a body of {} bytes over the limit of {max_body}",
            answer.response.body.len()
        );
    }
    for pair in readings.windows(2) {
        let [(more, a), (fewer, b)] = pair else {
            continue;
        };
        match (a, b) {
            (Ok(a), Ok(b)) => {
                assert_eq!(
                    a.response, b.response,
                    "read {more} and {fewer} bytes at a time"
                );
                assert!(
                    !a.reusable || b.reusable,
                    "kept reading {more} bytes at a time, not {fewer}"
                );
            }
            (Err(a), Err(b)) => assert_eq!(
                error_kind(a),
                error_kind(b),
                "read {more} and {fewer} bytes at a time: {a:?} / {b:?}"
            ),
            (a, b) => panic!("read {more} and {fewer} bytes at a time: {a:?} / {b:?}"),
        }
    }
}

/// The kind of a framing error, without its text (which may say how far it got).
fn error_kind(e: &http1::WireError) -> String {
    match e {
        http1::WireError::Io(e) => format!("io {:?}", e.kind()),
        http1::WireError::Malformed(_) => "malformed".into(),
        http1::WireError::TooLarge => "too large".into(),
        http1::WireError::Unsendable(what) => format!("unsendable {what}"),
    }
}

/// Reads one body as the answer to `wait_for_config_events` (the event batch) and as
/// the answer to `connect` (the connection id and initial values); each batch or
/// subscription accepted must read back the same once rendered as a device would send
/// it, and its connection id must make a valid `wait_for_config_events` URL.
pub fn event_batch(data: &[u8]) {
    let dev = device_name();
    let resp = RawResponse {
        status: 200,
        body: Bytes::copy_from_slice(data),
        ..RawResponse::default()
    };
    for req in [
        HeloRequest::WaitForEvents {
            connection_id: "17".into(),
        },
        HeloRequest::Connect { legacy: false },
    ] {
        match wire::parse(&dev, &req, &resp, false) {
            Ok(Parsed::Done(answer)) => {
                assert_eq!(answer.kind(), kind_of(&req), "answer to {req}");
                reads_back(&dev, &req, &answer);
            }
            Ok(Parsed::NeedsLogin) => panic!("NeedsLogin from a 200"),
            Err(e) => check_error(&dev, &req, 200, &e),
        }
    }
}

/// Logs in against a device whose login answer is the input, then sends one request:
/// the `Set-Cookie` parsing (`wire::session_cookie`) and the login flow of
/// `session.rs` around it.
///
/// Input: `Set-Cookie` values one per line, an empty line, then the login answer's
/// body (status 200). The values go through the same filter as on a real connection
/// (valid header text only); the raw lines also go to the cookie parser directly.
pub fn set_cookie(data: &[u8]) {
    let (head, body) = match find(data, b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &data[..0]),
    };
    let lines: Vec<&[u8]> = head.split(|&b| b == b'\n').collect();
    let raw: Vec<String> = lines
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    // Any text at all: no panic, and a token is never empty or padded.
    if let Some(token) = wire::session_cookie(&raw) {
        assert!(!token.is_empty() && token.trim() == &*token, "{token:?}");
        assert!(!token.contains(';'), "{token:?}");
    }
    // What `connection/link.rs` hands over: values that are valid header text.
    let set_cookies: Vec<String> = lines
        .iter()
        .filter_map(|l| http::HeaderValue::from_bytes(l).ok())
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let expected = wire::session_cookie(&set_cookies);

    let Ok(config) = DeviceConfig::from_url("fuzz", "http://127.0.0.1:1") else {
        panic!("the fixed device URL must parse");
    };
    let device = Device::new(config.with_password(Some(Password::new("pw"))));
    let ex = Scripted::new([
        RawResponse {
            status: 200,
            set_cookies,
            retry_after: None,
            body: Bytes::copy_from_slice(body),
        },
        RawResponse {
            status: 200,
            body: Bytes::from_static(br#"{"name":"eParamID_ReplicatorStreamState","value":"1"}"#),
            ..RawResponse::default()
        },
    ]);
    let req = HeloRequest::get(PARAM);
    let Some(result) =
        session::perform(&device, &ex, &req, &ConnectionStats::default()).now_or_never()
    else {
        panic!("the login flow waited on a device that answers at once");
    };
    let sent = ex.sent();
    let (stored, _) = device.session();
    match result {
        Ok(answer) => {
            assert_eq!(answer.kind(), "param");
            let Some(token) = expected else {
                panic!("logged in without a session cookie");
            };
            assert_eq!(stored.as_deref(), Some(&*token), "the stored session");
            assert_eq!(sent.len(), 2, "login, then the request");
            assert_eq!(
                sent[1].cookie.as_deref(),
                Some(&*token),
                "the request after login carries the new cookie"
            );
            // The Cookie header `link.rs` builds from it must be valid, or every
            // request after the login would fail to be sent.
            assert!(
                http::HeaderValue::from_str(&format!("session={token}")).is_ok(),
                "{token:?} cannot travel in a Cookie header"
            );
        }
        Err(e) => {
            check_error(&device_name(), &HeloRequest::Login, 200, &e);
            assert_eq!(stored, None, "a failed login stored a session");
            assert_eq!(sent.len(), 1, "nothing is sent after a failed login");
        }
    }
}

/// A parameter value as text (a device may send anything there), read as every
/// typed accessor reads it, and shown as logs show device text.
pub fn param_value(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let value = ParamValue {
        device: device_name(),
        name: PARAM.into(),
        paramid: None,
        value: text.clone().into_owned(),
        value_name: None,
    };
    if let Ok(n) = value.as_i64() {
        let again = ParamValue {
            value: n.to_string(),
            ..value.clone()
        };
        assert_eq!(again.as_i64().ok(), Some(n), "{text:?}");
    }
    if let Ok(x) = value.as_f64() {
        assert!(x.is_finite(), "{text:?} read as {x}");
    }
    match (value.as_running_duration(), parse_running_duration(&text)) {
        (Ok(d), Some(same)) => {
            assert_eq!(d, same);
            let secs = d.as_secs();
            let rendered = format!(
                "{:02}:{:02}:{:02}:{:02}",
                secs / 86_400,
                secs / 3_600 % 24,
                secs / 60 % 60,
                secs % 60
            );
            // Fields are at most nine digits: a sum of big fields can render days
            // that no device would send back.
            if secs / 86_400 < 1_000_000_000 {
                assert_eq!(
                    parse_running_duration(&rendered),
                    Some(d),
                    "{text:?} rendered as {rendered}"
                );
            }
        }
        (Err(e), None) => assert!(e.is_protocol(), "{e}"),
        (a, b) => panic!("accessor and parser disagree on {text:?}: {a:?} / {b:?}"),
    }
    let shown = device_text(&text);
    assert!(
        shown.len() <= DEVICE_TEXT_MAX + '…'.len_utf8(),
        "{} bytes shown",
        shown.len()
    );
    assert!(!shown.chars().any(char::is_control), "{shown:?}");
}

fn request_of(kind: u8) -> HeloRequest {
    match kind {
        b'g' => HeloRequest::get(PARAM),
        b's' => HeloRequest::set(PARAM, "3"),
        b'd' => HeloRequest::GetDescriptor { name: PARAM.into() },
        b'l' => HeloRequest::Login,
        b'c' => HeloRequest::Connect { legacy: false },
        b'C' => HeloRequest::Connect { legacy: true },
        b'w' => HeloRequest::WaitForEvents {
            connection_id: "17".into(),
        },
        other => request_of(b"gsdlcCw"[usize::from(other) % 7]),
    }
}

/// The [`HeloResponse::kind`] a usable answer to `req` has.
fn kind_of(req: &HeloRequest) -> &'static str {
    match req {
        HeloRequest::GetParam { .. } => "param",
        HeloRequest::SetParam { .. } => "set",
        HeloRequest::GetDescriptor { .. } => "descriptor",
        HeloRequest::Login => "logged_in",
        HeloRequest::Connect { .. } => "connected",
        HeloRequest::WaitForEvents { .. } => "events",
    }
}

/// An error read from an answer: about this device and request, and classified as an
/// answer (never as a connection failure, a timeout or shed work).
fn check_error(dev: &DeviceName, req: &HeloRequest, status: u16, e: &HeloError) {
    assert_eq!(e.device(), dev);
    assert_eq!(e.request(), req.to_string());
    assert!(
        matches!(
            e.outcome(),
            Outcome::Auth
                | Outcome::Rejected
                | Outcome::Unsupported
                | Outcome::Unavailable
                | Outcome::Protocol
        ),
        "an answer classified as {:?}: {e}",
        e.outcome()
    );
    if status == 503 {
        assert!(e.is_unavailable(), "{e}");
        assert!(
            e.retry_after()
                .is_none_or(|d| d <= Duration::from_secs(3_600)),
            "{e}"
        );
    }
    assert!(!e.to_string().is_empty());
}

/// Renders an accepted answer as a device would send it and reads it again: the same
/// answer must come back (nothing lost or invented by the liberal reading).
fn reads_back(dev: &DeviceName, req: &HeloRequest, answer: &HeloResponse) {
    let rendered = match answer {
        HeloResponse::Param(p) | HeloResponse::Set(Some(p)) => serde_json::to_vec(p),
        HeloResponse::Descriptor(d) => serde_json::to_vec(&[d]),
        HeloResponse::Events(events) => serde_json::to_vec(events),
        HeloResponse::Connected(sub) => {
            // Every id a device sends must be usable in the long poll's URL.
            let wait = HeloRequest::WaitForEvents {
                connection_id: sub.connection_id.clone(),
            };
            let url = wire::build(&wait, None, None).path_and_query;
            assert!(
                http::Uri::try_from(url.as_str()).is_ok(),
                "connection id {:?} gives the URL {url:?}",
                sub.connection_id
            );
            serde_json::to_vec(&serde_json::json!({
                "connectionid": sub.connection_id,
                "configevents": sub.initial,
            }))
        }
        HeloResponse::Set(None) | HeloResponse::LoggedIn => return,
    };
    let rendered = match rendered {
        Ok(r) => r,
        Err(e) => panic!("cannot render {answer:?}: {e}"),
    };
    let resp = RawResponse {
        status: 200,
        body: Bytes::from(rendered),
        ..RawResponse::default()
    };
    match wire::parse(dev, req, &resp, false) {
        Ok(Parsed::Done(again)) => assert_eq!(&again, answer, "{req} read back"),
        other => panic!(
            "{req}: {answer:?} rendered as {:?} reads back as {other:?}",
            String::from_utf8_lossy(&resp.body)
        ),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A device whose answers are given in advance, answering at once and noting what it
/// was sent.
#[derive(Debug)]
struct Scripted {
    answers: Mutex<VecDeque<RawResponse>>,
    sent: Mutex<Vec<RawRequest>>,
}

impl Scripted {
    fn new(answers: impl IntoIterator<Item = RawResponse>) -> Self {
        Self {
            answers: Mutex::new(answers.into_iter().collect()),
            sent: Mutex::new(Vec::new()),
        }
    }

    fn sent(&self) -> Vec<RawRequest> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Exchange for Scripted {
    fn exchange(
        &self,
        label: String,
        req: RawRequest,
        _limit: Duration,
    ) -> BoxFuture<'static, Result<RawResponse, HeloError>> {
        if let Ok(mut sent) = self.sent.lock() {
            sent.push(req);
        }
        let next = self.answers.lock().ok().and_then(|mut a| a.pop_front());
        let answer = next.ok_or_else(|| HeloError::Protocol {
            device: device_name(),
            request: label,
            detail: "more requests than scripted answers".into(),
        });
        Box::pin(std::future::ready(answer))
    }
}
