//! HTTP/1.1 as a HELO connection needs it: one request written, one answer read, on a
//! socket shared by reference. Nothing is kept between requests: an idle connection
//! holds its socket and no buffer (hyper's client keeps an 8 KiB write buffer, its read
//! buffer, a driver task and a 32-slot request channel per connection: about 20 KiB
//! for every warm connection of every encoder).

use std::{future::Future, io};

use bytes::Bytes;
use tokio::net::TcpStream;

use crate::wire::{RawRequest, RawResponse};

/// Headers an answer may carry (a HELO answer has about eight).
const MAX_HEADERS: usize = 48;

/// How much is read at a time.
const READ_STEP: usize = 1024;

/// The longest chunk size line (size and extensions) taken.
const CHUNK_LINE_MAX: usize = 1024;

/// The most trailer bytes after a chunked body taken.
const TRAILERS_MAX: usize = 4096;

/// Why a round trip failed; the link turns it into a [`HeloError`](crate::HeloError)
/// naming the device and the request.
#[derive(Debug)]
pub(crate) enum WireError {
    /// The socket failed, or closed before the answer was whole.
    Io(io::Error),
    /// The answer is not HTTP/1.1 as this client reads it.
    Malformed(String),
    /// The body is longer than the limit.
    TooLarge,
    /// The request cannot be written (a value that would break the request line or a
    /// header).
    Unsendable(&'static str),
}

/// A whole answer, and whether the connection can carry another request.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) response: RawResponse,
    pub(crate) reusable: bool,
}

/// The request's bytes: request line, `Host`, the session cookie, the form body.
pub(super) fn encode(authority: &str, req: &RawRequest) -> Result<Vec<u8>, WireError> {
    // Every value written raw must not end the line it is on (or the request).
    let plain = |s: &str| s.bytes().all(|b| b > b' ' && b != 0x7f);
    if !plain(&req.path_and_query) || !req.path_and_query.starts_with('/') {
        return Err(WireError::Unsendable(
            "the path is not a plain origin-form path",
        ));
    }
    if !plain(authority) {
        return Err(WireError::Unsendable("the device address"));
    }
    let body = req.form_body.as_deref().unwrap_or("");
    let mut out = Vec::with_capacity(96 + req.path_and_query.len() + body.len());
    out.extend_from_slice(req.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.path_and_query.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(authority.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(cookie) = &req.cookie {
        // The value came from the device's Set-Cookie: hostile until shown otherwise.
        // The rule of a header value (`http::HeaderValue`): no control character but
        // tab, so it cannot end the header.
        if !cookie
            .bytes()
            .all(|b| b == b'\t' || (b >= b' ' && b != 0x7f))
        {
            return Err(WireError::Unsendable("the session cookie"));
        }
        out.extend_from_slice(b"cookie: session=");
        out.extend_from_slice(cookie.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if req.form_body.is_some() {
        out.extend_from_slice(b"content-type: application/x-www-form-urlencoded\r\n");
    }
    if req.form_body.is_some() || req.method != "GET" {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
    Ok(out)
}

/// Writes `bytes` whole.
pub(super) async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Where an answer's bytes come from: the connection's socket, or (for the fuzz target
/// and its replay tests) bytes in memory handed out in pieces, so the framing is
/// exercised with every split a network could make.
pub(crate) trait Source {
    /// Reads once more into `buf` (at most `READ_STEP` bytes); `Ok(0)` is the end of
    /// the stream.
    fn read_more<'a>(
        &'a mut self,
        buf: &'a mut Vec<u8>,
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a;
}

impl Source for &TcpStream {
    async fn read_more(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        loop {
            // Room is made once there is something to read: an event long poll waits
            // most of a minute for its answer, and an empty buffer costs nothing while
            // it does.
            self.readable().await?;
            buf.reserve(READ_STEP);
            match self.try_read_buf(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Bytes in memory, read `step` bytes at a time (at least one), then the end of the
/// stream.
#[derive(Debug)]
pub(crate) struct Pieces<'d> {
    pub(crate) data: &'d [u8],
    pub(crate) step: usize,
}

impl Source for Pieces<'_> {
    fn read_more<'a>(
        &'a mut self,
        buf: &'a mut Vec<u8>,
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        let n = self.step.clamp(1, READ_STEP).min(self.data.len());
        let (now, later) = self.data.split_at(n);
        buf.extend_from_slice(now);
        self.data = later;
        std::future::ready(Ok(n))
    }
}

fn head_too_large(limit: usize) -> WireError {
    WireError::Malformed(format!(
        "malformed HTTP response: head larger than {limit} bytes"
    ))
}

fn closed_early(what: &str) -> WireError {
    WireError::Io(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the device closed the connection {what}"),
    ))
}

/// The head of an answer, parsed.
struct Head {
    len: usize,
    status: u16,
    content_length: Option<u64>,
    chunked: bool,
    close: bool,
    set_cookies: Vec<String>,
    retry_after: Option<String>,
}

/// Parses the head at the start of `buf`; `None` while it is incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, WireError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    // Some AJA firmware sends slightly non-compliant headers; be tolerant.
    let parsed = httparse::ParserConfig::default()
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .ignore_invalid_headers_in_responses(true)
        .parse_response(&mut resp, buf)
        .map_err(|e| WireError::Malformed(format!("malformed HTTP response: {e}")))?;
    let httparse::Status::Complete(len) = parsed else {
        return Ok(None);
    };
    let mut head = Head {
        len,
        status: resp.code.unwrap_or(0),
        content_length: None,
        chunked: false,
        close: resp.version == Some(0),
        set_cookies: Vec::new(),
        retry_after: None,
    };
    for h in resp.headers.iter() {
        let value = || String::from_utf8_lossy(h.value).trim().to_string();
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = value().parse::<u64>().map_err(|_| {
                WireError::Malformed("malformed HTTP response: bad content-length".into())
            })?;
            if head.content_length.is_some_and(|m| m != n) {
                return Err(WireError::Malformed(
                    "malformed HTTP response: conflicting content-length".into(),
                ));
            }
            head.content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value()
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            if !head.chunked {
                return Err(WireError::Malformed(
                    "malformed HTTP response: unsupported transfer-encoding".into(),
                ));
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = value();
            if v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")) {
                head.close = true;
            }
        } else if h.name.eq_ignore_ascii_case("set-cookie") {
            if let Ok(v) = std::str::from_utf8(h.value) {
                head.set_cookies.push(v.to_string());
            }
        } else if h.name.eq_ignore_ascii_case("retry-after") && head.retry_after.is_none() {
            if let Ok(v) = std::str::from_utf8(h.value) {
                head.retry_after = Some(v.to_string());
            }
        }
    }
    Ok(Some(head))
}

/// Reads one answer: a head of at most `head_limit` bytes, a body of at most
/// `max_body` bytes (by `Content-Length`, chunked, or to the end of the stream).
pub(crate) async fn read_answer(
    mut stream: impl Source,
    head_limit: usize,
    max_body: usize,
) -> Result<Answer, WireError> {
    let mut buf = Vec::new();
    let head = loop {
        if let Some(head) = parse_head(&buf)? {
            // One read can bring a whole head longer than the limit: refused all the
            // same, so that where the network splits an answer never decides whether
            // it is read.
            if head.len > head_limit {
                return Err(head_too_large(head_limit));
            }
            // An interim answer (100 Continue …) is followed by the real one.
            if (100..200).contains(&head.status) && head.status != 101 {
                buf.drain(..head.len);
                continue;
            }
            break head;
        }
        if buf.len() >= head_limit {
            return Err(head_too_large(head_limit));
        }
        if stream.read_more(&mut buf).await.map_err(WireError::Io)? == 0 {
            return Err(closed_early(if buf.is_empty() {
                "before answering"
            } else {
                "in the middle of an answer"
            }));
        }
    };
    let mut rest = buf.split_off(head.len);
    drop(buf);
    let no_body = head.status == 204 || head.status == 304;
    let (body, reusable) = if no_body {
        (Vec::new(), rest.is_empty() && !head.close)
    } else if head.chunked {
        let body = read_chunked(&mut stream, &mut rest, max_body).await?;
        (body, rest.is_empty() && !head.close)
    } else if let Some(n) = head.content_length {
        if n > max_body as u64 {
            return Err(WireError::TooLarge);
        }
        // Fits in usize: it is at most `max_body`.
        let n = n as usize;
        while rest.len() < n {
            if stream.read_more(&mut rest).await.map_err(WireError::Io)? == 0 {
                return Err(closed_early("in the middle of an answer"));
            }
        }
        let surplus = rest.len() > n;
        rest.truncate(n);
        (rest, !surplus && !head.close)
    } else {
        // No length: the body ends with the connection.
        loop {
            if rest.len() > max_body {
                return Err(WireError::TooLarge);
            }
            if stream.read_more(&mut rest).await.map_err(WireError::Io)? == 0 {
                break;
            }
        }
        (rest, false)
    };
    Ok(Answer {
        response: RawResponse {
            status: head.status,
            set_cookies: head.set_cookies,
            retry_after: head.retry_after,
            body: Bytes::from(body),
        },
        reusable,
    })
}

/// Decodes a chunked body whose first bytes are in `buf`; leaves in `buf` what came
/// after it.
async fn read_chunked(
    stream: &mut impl Source,
    buf: &mut Vec<u8>,
    max_body: usize,
) -> Result<Vec<u8>, WireError> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        // The size line.
        let too_long =
            || WireError::Malformed("malformed HTTP response: chunk size line too long".into());
        let (size, line_len) = loop {
            match httparse::parse_chunk_size(&buf[at..]) {
                Ok(httparse::Status::Complete((len, _))) if len > CHUNK_LINE_MAX => {
                    return Err(too_long())
                }
                Ok(httparse::Status::Complete((len, size))) => break (size, len),
                Ok(httparse::Status::Partial) => {
                    if buf.len() - at >= CHUNK_LINE_MAX {
                        return Err(too_long());
                    }
                    more(stream, buf).await?;
                }
                Err(_) => {
                    return Err(WireError::Malformed(
                        "malformed HTTP response: bad chunk size".into(),
                    ))
                }
            }
        };
        at += line_len;
        if size == 0 {
            break;
        }
        if body.len() as u64 + size > max_body as u64 {
            return Err(WireError::TooLarge);
        }
        // At most `max_body`: fits.
        let size = size as usize;
        while buf.len() < at + size + 2 {
            more(stream, buf).await?;
        }
        body.extend_from_slice(&buf[at..at + size]);
        if &buf[at + size..at + size + 2] != b"\r\n" {
            return Err(WireError::Malformed(
                "malformed HTTP response: chunk without its line end".into(),
            ));
        }
        at += size + 2;
        // Keep the buffer small: drop what has been decoded.
        buf.drain(..at);
        at = 0;
    }
    // Trailers, up to the empty line: at most `TRAILERS_MAX` bytes in all, however
    // many lines (each line is kept until the end, so lines must not add up without
    // bound either).
    let start = at;
    let too_long = || WireError::Malformed("malformed HTTP response: trailers too long".into());
    loop {
        match buf[at..].windows(2).position(|w| w == b"\r\n") {
            Some(end) if at + end + 2 - start > TRAILERS_MAX => return Err(too_long()),
            Some(0) => {
                at += 2;
                break;
            }
            Some(end) => at += end + 2,
            None => {
                if buf.len() - start >= TRAILERS_MAX {
                    return Err(too_long());
                }
                more(stream, buf).await?;
            }
        }
    }
    buf.drain(..at);
    Ok(body)
}

async fn more(stream: &mut impl Source, buf: &mut Vec<u8>) -> Result<(), WireError> {
    match stream.read_more(buf).await {
        Ok(0) => Err(closed_early("in the middle of an answer")),
        Ok(_) => Ok(()),
        Err(e) => Err(WireError::Io(e)),
    }
}

#[cfg(test)]
mod tests;
