//! How requests look on the wire and how answers are read, as pure functions.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;

use crate::{
    config::{DeviceName, Password},
    device_text::device_text,
    error::{AuthFailure, HeloError},
    events::{is_plain_connection_id, ConfigEvent, EventSubscription, WireEvent, WireSubscription},
    param::{truncate, Descriptor, ParamValue, WireParam},
    request::{HeloRequest, HeloResponse},
};

/// Everything but RFC 3986 unreserved characters is encoded, so spaces, `? & % / \ :`
/// and non-ASCII bytes never reach the device raw.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An HTTP request as the exchange sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRequest {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// Path and query, already encoded.
    pub path_and_query: String,
    /// The session cookie value to send, if any.
    pub cookie: Option<Arc<str>>,
    /// A form body (login only).
    pub form_body: Option<String>,
}

/// An HTTP answer as the exchange returns it, body already capped.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// Values of every `Set-Cookie` header.
    pub set_cookies: Vec<String>,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// The body.
    pub body: Bytes,
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, QUERY_VALUE).to_string()
}

/// Builds the HTTP request for `req`. The login body carries the password; it is
/// never logged.
pub(crate) fn build(
    req: &HeloRequest,
    cookie: Option<Arc<str>>,
    password: Option<&Password>,
) -> RawRequest {
    let get = |path_and_query: String| RawRequest {
        method: "GET",
        path_and_query,
        cookie: cookie.clone(),
        form_body: None,
    };
    match req {
        HeloRequest::GetParam { name } => get(format!("/config?action=get&paramid={}", enc(name))),
        HeloRequest::SetParam { name, value } => get(format!(
            "/config?action=set&paramid={}&value={}",
            enc(name),
            enc(value)
        )),
        HeloRequest::GetDescriptor { name } => get(format!("/descriptors?paramid={}", enc(name))),
        HeloRequest::Connect { legacy: false } => get("/config?action=connect".to_string()),
        HeloRequest::Connect { legacy: true } => get("/json?action=connect&configid=0".to_string()),
        HeloRequest::WaitForEvents { connection_id } => get(format!(
            "/config?action=wait_for_config_events&connectionid={}",
            enc(connection_id)
        )),
        HeloRequest::Login => RawRequest {
            method: "POST",
            path_and_query: "/authenticator/login".to_string(),
            cookie: None,
            form_body: Some(format!(
                "password_provided={}",
                enc(password.map(Password::expose).unwrap_or_default())
            )),
        },
    }
}

/// What an answer means before it becomes a [`HeloResponse`].
#[derive(Debug)]
pub(crate) enum Parsed {
    /// A usable answer.
    Done(HeloResponse),
    /// The device wants a (new) session: HTTP 404 while a password is configured.
    NeedsLogin,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

#[derive(Deserialize)]
struct LoginBody {
    login: String,
}

/// Reads the answer to `req`.
pub(crate) fn parse(
    device: &DeviceName,
    req: &HeloRequest,
    resp: &RawResponse,
    has_password: bool,
) -> Result<Parsed, HeloError> {
    let request = || req.to_string();
    match resp.status {
        200 => parse_ok(device, req, &resp.body).map(Parsed::Done),
        404 if !matches!(req, HeloRequest::Login) => {
            if has_password {
                Ok(Parsed::NeedsLogin)
            } else if looks_like_html(&resp.body) {
                Err(HeloError::Auth {
                    device: device.clone(),
                    request: request(),
                    failure: AuthFailure::PasswordRequired,
                })
            } else {
                Err(HeloError::Status {
                    device: device.clone(),
                    request: request(),
                    status: 404,
                })
            }
        }
        400 => Err(rejected(device, req, &resp.body)),
        503 => Err(HeloError::Unavailable {
            device: device.clone(),
            request: request(),
            retry_after: resp.retry_after.as_deref().and_then(parse_retry_after),
        }),
        status => Err(HeloError::Status {
            device: device.clone(),
            request: request(),
            status,
        }),
    }
}

fn parse_retry_after(s: &str) -> Option<Duration> {
    // Only the delay-seconds form; devices have no reason to send an HTTP date, and a
    // wrong guess at one must not stall a whole fleet.
    let secs = s.trim().parse::<u64>().ok()?;
    Some(Duration::from_secs(secs.min(3_600)))
}

fn looks_like_html(body: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&body[..body.len().min(256)]).to_ascii_lowercase();
    head.contains("<html") || head.contains("not found")
}

/// Device text that goes into an error: bounded and escaped once, here, so that every
/// later `Display` of the error (logs, the admin API, a Nagios line, a metric label)
/// is safe.
fn shown(text: &str) -> String {
    device_text(text).into_owned()
}

fn rejected(device: &DeviceName, req: &HeloRequest, body: &[u8]) -> HeloError {
    let message = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => shown(&e.error),
        Err(_) => shown(truncate(&String::from_utf8_lossy(body), 200).trim()),
    };
    if let Some(param) = req.param() {
        // "Parameter ID 'eParamID_X' not found": firmware differs between models, so
        // this is a normal outcome with its own variant.
        let lower = message.to_ascii_lowercase();
        if lower.contains("not found")
            || lower.contains("unknown param")
            || lower.contains("not supported")
        {
            return HeloError::UnsupportedParam {
                device: device.clone(),
                request: req.to_string(),
                param: param.to_string(),
            };
        }
    }
    HeloError::Rejected {
        device: device.clone(),
        request: req.to_string(),
        message,
    }
}

/// A protocol error; its detail may quote the body (serde quotes the value it choked
/// on), so it is device text.
fn protocol(device: &DeviceName, req: &HeloRequest, detail: String) -> HeloError {
    HeloError::Protocol {
        device: device.clone(),
        request: req.to_string(),
        detail: shown(&detail),
    }
}

fn parse_ok(
    device: &DeviceName,
    req: &HeloRequest,
    body: &[u8],
) -> Result<HeloResponse, HeloError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        protocol(
            device,
            req,
            format!(
                "malformed JSON ({e}); body starts {:?}",
                truncate(&String::from_utf8_lossy(body), 80)
            ),
        )
    })?;
    // Some mocks answer 200 with an error object; treat it as the 400 it means.
    if let Some(err) = value.get("error").and_then(|e| e.as_str()) {
        let body = serde_json::json!({ "error": err }).to_string();
        return Err(rejected(device, req, body.as_bytes()));
    }
    let shape = |e: serde_json::Error| protocol(device, req, format!("unexpected JSON shape: {e}"));
    match req {
        HeloRequest::GetParam { name } => {
            let w: WireParam = serde_json::from_value(value).map_err(shape)?;
            Ok(HeloResponse::Param(ParamValue::from_wire(
                device.clone(),
                name,
                w,
            )))
        }
        HeloRequest::SetParam { name, .. } => {
            if value.get("value").is_some() {
                let w: WireParam = serde_json::from_value(value).map_err(shape)?;
                return Ok(HeloResponse::Set(Some(ParamValue::from_wire(
                    device.clone(),
                    name,
                    w,
                ))));
            }
            match value.get("success") {
                Some(serde_json::Value::Bool(true)) => Ok(HeloResponse::Set(None)),
                Some(serde_json::Value::Bool(false)) => Err(HeloError::Rejected {
                    device: device.clone(),
                    request: req.to_string(),
                    message: "device answered success=false".into(),
                }),
                _ => Err(protocol(
                    device,
                    req,
                    "set answer has neither value nor success".into(),
                )),
            }
        }
        HeloRequest::GetDescriptor { .. } => {
            // Documented as an array holding one object; accept a bare object too.
            let d: Descriptor = match value {
                serde_json::Value::Array(mut items) => {
                    if items.is_empty() {
                        return Err(protocol(device, req, "empty descriptor array".into()));
                    }
                    serde_json::from_value(items.swap_remove(0)).map_err(shape)?
                }
                other => serde_json::from_value(other).map_err(shape)?,
            };
            Ok(HeloResponse::Descriptor(Box::new(d)))
        }
        HeloRequest::Login => {
            let l: LoginBody = serde_json::from_value(value).map_err(shape)?;
            if l.login.eq_ignore_ascii_case("success") {
                Ok(HeloResponse::LoggedIn)
            } else {
                Err(HeloError::Auth {
                    device: device.clone(),
                    request: req.to_string(),
                    failure: AuthFailure::WrongPassword {
                        message: shown(&l.login),
                    },
                })
            }
        }
        HeloRequest::Connect { .. } => {
            let s: WireSubscription = serde_json::from_value(value).map_err(shape)?;
            let sub = EventSubscription::from(s);
            // The id goes back into URLs and into every log line about the poll: a
            // device gets to choose a number or a short token, not text.
            if !is_plain_connection_id(&sub.connection_id) {
                return Err(protocol(
                    device,
                    req,
                    format!(
                        "connection id {:?} is not a number or a short token",
                        sub.connection_id
                    ),
                ));
            }
            Ok(HeloResponse::Connected(sub))
        }
        HeloRequest::WaitForEvents { .. } => {
            let events: Vec<WireEvent> = match value {
                serde_json::Value::Null => Vec::new(),
                v => serde_json::from_value(v).map_err(shape)?,
            };
            Ok(HeloResponse::Events(
                events.into_iter().map(ConfigEvent::from).collect(),
            ))
        }
    }
}

/// The session token from `Set-Cookie: session=<token>; path=/` headers.
pub(crate) fn session_cookie(set_cookies: &[String]) -> Option<Arc<str>> {
    set_cookies.iter().find_map(|h| {
        let first = h.split(';').next()?.trim();
        let (name, value) = first.split_once('=')?;
        (name.trim() == "session" && !value.trim().is_empty()).then(|| Arc::from(value.trim()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> DeviceName {
        DeviceName::from("enc-1")
    }

    fn resp(status: u16, body: &str) -> RawResponse {
        RawResponse {
            status,
            body: Bytes::from(body.to_string()),
            ..Default::default()
        }
    }

    #[test]
    fn urls_follow_the_protocol_and_encode_values() {
        let check = |req: HeloRequest, want: &str| {
            assert_eq!(build(&req, None, None).path_and_query, want);
        };
        check(
            HeloRequest::get("eParamID_ReplicatorStreamState"),
            "/config?action=get&paramid=eParamID_ReplicatorStreamState",
        );
        check(
            HeloRequest::set("eParamID_FilenamePrefix", "Sunday service/ä?&%:\\"),
            "/config?action=set&paramid=eParamID_FilenamePrefix&value=Sunday%20service%2F%C3%A4%3F%26%25%3A%5C",
        );
        check(
            HeloRequest::GetDescriptor {
                name: "eParamID_X".into(),
            },
            "/descriptors?paramid=eParamID_X",
        );
        check(
            HeloRequest::Connect { legacy: false },
            "/config?action=connect",
        );
        check(
            HeloRequest::Connect { legacy: true },
            "/json?action=connect&configid=0",
        );
        check(
            HeloRequest::WaitForEvents {
                connection_id: "17".into(),
            },
            "/config?action=wait_for_config_events&connectionid=17",
        );
    }

    #[test]
    fn login_is_a_form_post_without_cookie() {
        let pw = Password::new("a b&c");
        let r = build(&HeloRequest::Login, Some(Arc::from("old")), Some(&pw));
        assert_eq!(r.method, "POST");
        assert_eq!(r.path_and_query, "/authenticator/login");
        assert_eq!(r.cookie, None);
        assert_eq!(r.form_body.as_deref(), Some("password_provided=a%20b%26c"));
    }

    #[test]
    fn statuses_map_to_variants() {
        let get = HeloRequest::get("eParamID_Temperature");
        let err = |status, body: &str, pw| match parse(&dev(), &get, &resp(status, body), pw) {
            Err(e) => e,
            Ok(o) => panic!("expected error, got {o:?}"),
        };
        assert!(err(
            400,
            r#"{"error":"Parameter ID 'eParamID_Temperature' not found"}"#,
            false
        )
        .is_unsupported());
        let e = err(400, r#"{"error":"Value out of range"}"#, false);
        assert!(
            e.is_rejected() && e.to_string().contains("Value out of range"),
            "{e}"
        );
        assert!(err(400, "garbage", false).is_rejected());
        assert!(err(503, "", false).is_unavailable());
        assert!(matches!(
            err(500, "", false),
            HeloError::Status { status: 500, .. }
        ));
        assert!(matches!(
            err(
                404,
                "<html><head><title>404 Not Found</title></head></html>",
                false
            ),
            HeloError::Auth {
                failure: AuthFailure::PasswordRequired,
                ..
            }
        ));
        assert!(matches!(
            parse(&dev(), &get, &resp(404, "<html>"), true),
            Ok(Parsed::NeedsLogin)
        ));
        assert!(err(200, "{not json", false).is_protocol());
        assert!(err(200, "[1,2]", false).is_protocol());
        let e = err(200, r#"{"error":"Parameter ID 'x' not found"}"#, false);
        assert!(e.is_unsupported(), "{e}");
    }

    #[test]
    fn retry_after_is_read() {
        let mut r = resp(503, "");
        r.retry_after = Some("7".into());
        match parse(&dev(), &HeloRequest::get("x"), &r, false) {
            Err(e) => assert_eq!(e.retry_after(), Some(Duration::from_secs(7))),
            Ok(o) => panic!("{o:?}"),
        }
    }

    #[test]
    fn set_answers_echo_or_success() {
        let set = HeloRequest::set("eParamID_X", "1");
        let ok = |body: &str| match parse(&dev(), &set, &resp(200, body), false) {
            Ok(Parsed::Done(HeloResponse::Set(v))) => v,
            other => panic!("{other:?}"),
        };
        assert_eq!(ok(r#"{"success":true}"#), None);
        assert_eq!(ok(r#"{"name":"eParamID_X","value":1}"#).unwrap().value, "1");
        assert!(parse(&dev(), &set, &resp(200, r#"{"success":false}"#), false).is_err());
    }

    #[test]
    fn login_answers() {
        let ok = parse(
            &dev(),
            &HeloRequest::Login,
            &resp(200, r#"{"login":"success"}"#),
            true,
        );
        assert!(matches!(ok, Ok(Parsed::Done(HeloResponse::LoggedIn))));
        let bad = parse(
            &dev(),
            &HeloRequest::Login,
            &resp(200, r#"{"login":"Login Failed - Passwords did not match"}"#),
            true,
        );
        match bad {
            Err(e) => assert!(
                e.is_wrong_password() && e.to_string().contains("did not match"),
                "{e}"
            ),
            Ok(o) => panic!("{o:?}"),
        }
    }

    /// Whether a message is safe to print: bounded, and no raw control character.
    fn assert_safe(e: &HeloError) {
        let text = e.to_string();
        assert!(text.len() <= 400, "{} bytes: {text:.80}", text.len());
        assert!(!text.chars().any(char::is_control), "{text:?}");
    }

    #[test]
    fn device_text_in_errors_is_bounded_and_escaped_when_the_error_is_built() {
        let get = HeloRequest::get("eParamID_X");
        let huge = "x".repeat(100_000);
        let forged = "bad\r\nX-Injected: yes\u{1b}[31m | fake=1";
        for text in [huge.as_str(), forged] {
            let body = serde_json::json!({ "error": text }).to_string();
            for status in [400, 200] {
                let Err(e) = parse(&dev(), &get, &resp(status, &body), false) else {
                    panic!("{status}: expected an error");
                };
                assert!(e.is_rejected(), "{e}");
                assert_safe(&e);
                let HeloError::Rejected { message, .. } = &e else {
                    unreachable!()
                };
                assert!(!message.chars().any(char::is_control) && message.len() <= 260);
            }
        }
        let not_json = format!("{}\r\n{huge}", "<b>");
        let Err(e) = parse(&dev(), &get, &resp(400, &not_json), false) else {
            panic!("expected an error");
        };
        assert_safe(&e);

        let login = serde_json::json!({ "login": format!("{forged}{huge}") }).to_string();
        let Err(e) = parse(&dev(), &HeloRequest::Login, &resp(200, &login), true) else {
            panic!("expected an error");
        };
        assert!(e.is_wrong_password(), "{e}");
        assert_safe(&e);
        assert!(e.to_string().contains("bad\\r\\nX-Injected"), "{e}");

        // A value of the wrong type is quoted by serde: the detail is device text too.
        let shape = serde_json::json!({ "name": "eParamID_X", "value": [huge] }).to_string();
        let Err(e) = parse(&dev(), &get, &resp(200, &shape), false) else {
            panic!("expected an error");
        };
        assert!(e.is_protocol(), "{e}");
        assert_safe(&e);
        let Err(e) = parse(&dev(), &get, &resp(200, &format!("{{{forged}")), false) else {
            panic!("expected an error");
        };
        assert_safe(&e);
    }

    #[test]
    fn an_event_connection_id_that_is_not_a_token_is_a_protocol_error() {
        let connect = HeloRequest::Connect { legacy: false };
        let ok = parse(
            &dev(),
            &connect,
            &resp(200, r#"{"connectionid":"ab-12"}"#),
            false,
        );
        assert!(matches!(
            ok,
            Ok(Parsed::Done(HeloResponse::Connected(ref s))) if s.connection_id == "ab-12"
        ));
        for id in [
            "-1\r\nX-Injected: yes".to_string(),
            "x".repeat(100_000),
            "1|2".into(),
        ] {
            let body = serde_json::json!({ "connectionid": id }).to_string();
            let Err(e) = parse(&dev(), &connect, &resp(200, &body), false) else {
                panic!("{id:.20}: expected an error");
            };
            assert!(e.is_protocol(), "{e}");
            assert_safe(&e);
            assert!(!e.to_string().contains("\r\nX-Injected"), "{e}");
        }
        // A request built by hand with such an id still prints safely.
        let wait = HeloRequest::WaitForEvents {
            connection_id: "-1\r\nX-Injected: yes".into(),
        };
        assert_eq!(
            wait.to_string(),
            "wait_for_config_events -1\\r\\nX-Injected: yes"
        );
    }

    #[test]
    fn cookies_are_found_among_others() {
        let h = vec![
            "theme=dark; path=/".to_string(),
            "session=abc123; path=/".to_string(),
        ];
        assert_eq!(session_cookie(&h).as_deref(), Some("abc123"));
        assert_eq!(session_cookie(&["session=; path=/".to_string()]), None);
        assert_eq!(session_cookie(&[]), None);
    }

    #[test]
    fn descriptors_accept_array_or_object() {
        let req = HeloRequest::GetDescriptor {
            name: "eParamID_X".into(),
        };
        for body in [
            r#"[{"param_name":"eParamID_X","param_type":"integer"}]"#,
            r#"{"param_name":"eParamID_X"}"#,
        ] {
            assert!(matches!(
                parse(&dev(), &req, &resp(200, body), false),
                Ok(Parsed::Done(HeloResponse::Descriptor(_)))
            ));
        }
        assert!(parse(&dev(), &req, &resp(200, "[]"), false).is_err());
    }
}
