//! An answer before it goes on the wire, and the faults that spoil it on its way there
//! through the HTTP server.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use http::{Response, StatusCode};
use serde::Serialize;
use serde_json::json;

use crate::body::SimBody;
use crate::server::ConnCtl;
use crate::{Faults, SimError};

const NOT_FOUND_HTML: &str = "<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1><p>The document requested was not found on this server.</p></body></html>";
const MALFORMED_JSON: &str =
    "{\"paramid\": \"2097225203\", \"name\": eParamID_ReplicatorStreamState, \"value\": ";
const FOUND_HTML: &str = "<html><body>Found</body></html>";

/// An answer before faults are applied to it.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    content_type: &'static str,
    pub(crate) body: Bytes,
    headers: Vec<(HeaderName, String)>,
    /// The `"error"` text of a JSON error answer, which `error_text` faults replace.
    error: Option<String>,
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
            error: None,
        }
    }

    pub(crate) fn error(status: StatusCode, message: &str) -> Self {
        Reply {
            error: Some(message.to_owned()),
            ..Reply::json(status, &json!({ "error": message }))
        }
    }

    pub(crate) fn bad_request(err: &SimError) -> Self {
        Reply::error(StatusCode::BAD_REQUEST, &err.to_string())
    }

    pub(crate) fn not_found() -> Self {
        Reply {
            status: StatusCode::NOT_FOUND,
            content_type: "text/html",
            body: Bytes::from_static(NOT_FOUND_HTML.as_bytes()),
            headers: Vec::new(),
            error: None,
        }
    }

    pub(crate) fn unavailable(retry_after_s: u64) -> Self {
        Reply::error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
            .with_header(RETRY_AFTER, retry_after_s.to_string())
    }

    /// `302` to `location`.
    pub(crate) fn found(location: String) -> Self {
        Reply {
            status: StatusCode::FOUND,
            content_type: "text/html",
            body: Bytes::from_static(FOUND_HTML.as_bytes()),
            headers: vec![(LOCATION, location)],
            error: None,
        }
    }

    pub(crate) fn with_header(mut self, name: HeaderName, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The error text as `error_text` and `error_text_bytes` make it; other answers
    /// are left alone.
    pub(crate) fn with_error_text(self, f: &Faults) -> Self {
        let Some(usual) = &self.error else {
            return self;
        };
        if f.error_text.is_none() && f.error_text_bytes == 0 {
            return self;
        }
        let base = f.error_text.as_deref().unwrap_or(usual);
        let text = match usize::try_from(f.error_text_bytes) {
            Ok(0) | Err(_) => base.to_owned(),
            Ok(n) => repeat_to(base, n),
        };
        Reply::error(self.status, &text).with_headers(self.headers)
    }

    fn with_headers(mut self, headers: Vec<(HeaderName, String)>) -> Self {
        self.headers = headers;
        self
    }

    /// Status line and headers as the raw answers write them by hand.
    pub(crate) fn http1_head(&self, content_length: Option<usize>) -> String {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\n",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or("Unknown"),
            self.content_type
        );
        if let Some(len) = content_length {
            head.push_str(&format!("Content-Length: {len}\r\n"));
        }
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head
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

    /// True when one of the faults [`Reply::spoiled`] applies is set.
    pub(crate) fn spoils(f: &Faults) -> bool {
        f.reset || f.truncated_json || f.malformed_json || f.oversized_body_bytes > 0
    }

    /// The answer as the body faults spoil it; the first set one wins.
    pub(crate) fn spoiled(self, f: &Faults, ctl: Arc<ConnCtl>) -> Response<SimBody> {
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

/// `text` repeated to `len` bytes, cut at a character boundary (so up to 3 bytes
/// shorter when the text is not ASCII); an empty text gives `E`s.
fn repeat_to(text: &str, len: usize) -> String {
    let text = if text.is_empty() { "E" } else { text };
    let mut out = String::with_capacity(len);
    for c in text.chars().cycle() {
        if out.len() + c.len_utf8() > len {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_is_repeated_to_the_asked_length() {
        assert_eq!(repeat_to("ab|", 7), "ab|ab|a");
        assert_eq!(repeat_to("", 3), "EEE");
        assert_eq!(repeat_to("é", 5), "éé");
        let f = Faults {
            error_text: Some("x\r\n".to_owned()),
            error_text_bytes: 8,
            ..Faults::default()
        };
        let reply = Reply::error(StatusCode::BAD_REQUEST, "usual").with_error_text(&f);
        assert_eq!(
            reply.body,
            Bytes::from_static(br#"{"error":"x\r\nx\r\nx\r"}"#)
        );
        let page = Reply::not_found().with_error_text(&f);
        assert_eq!(page.body, NOT_FOUND_HTML.as_bytes());
    }
}
