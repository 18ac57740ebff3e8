//! Answers no HTTP server would write: the transport faults of [`Faults`] (garbage,
//! HTTP/0.9, absurd framing, endless or deep bodies, slow bytes, interim floods).
//!
//! The request is read and routed by hyper as usual; when [`plan`] says the answer must
//! be written by hand, the connection task takes the socket back from hyper and
//! [`send`]s it, then closes the connection.

mod wire;

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;

pub(crate) use self::wire::send;
use crate::counts::PathKind;
use crate::reply::Reply;
use crate::Faults;

/// Bytes of random garbage `garbage_response` sends.
const GARBAGE_BYTES: usize = 512;
/// What `huge_content_length` announces.
const HUGE_CONTENT_LENGTH: &str = "99999999999999";
/// The chunk size `absurd_chunks` announces.
const ABSURD_CHUNK_SIZE: &str = "ffffffffffffffff";
/// Payload of one chunk of an endless body; one goes out every [`ENDLESS_TICK`].
const ENDLESS_CHUNK: usize = 1024;
/// Pause between two chunks of an endless body (with [`ENDLESS_CHUNK`]:
/// [`Faults::ENDLESS_BYTES_PER_SEC`]).
pub(crate) const ENDLESS_TICK: Duration = Duration::from_millis(10);
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
/// One element of the endless event array (a plausible event, so only the framing is
/// hostile).
const ENDLESS_EVENT: &str = r#"{"param_id":"eParamID_Temperature","param_type":"integer","int_value":40,"str_value":"40","last_config_update":"0"},"#;

/// A piece of a hand-written answer.
#[derive(Debug)]
enum Piece {
    Once(Bytes),
    /// `bytes` `times` times over, written without holding them all.
    Repeat(Bytes, u64),
}

/// An answer to write by hand: `pieces`, then `endless` over and over (when set) until
/// the peer goes away; every byte `pace` apart when set.
#[derive(Debug)]
pub(crate) struct RawAnswer {
    pieces: Vec<Piece>,
    endless: Option<Bytes>,
    pace: Option<Duration>,
}

/// The hand-written answer these faults ask for in place of `reply`, if any (see
/// [`Faults`] for which wins).
pub(crate) fn plan(reply: &Reply, f: &Faults, kind: PathKind) -> Option<RawAnswer> {
    let mut answer = match shape(reply, f, kind) {
        Some(answer) => answer,
        None if Reply::spoils(f) => return None,
        None if f.informational_flood > 0 || f.slowloris_response => plain(reply),
        None => return None,
    };
    if f.informational_flood > 0 {
        let flood = Piece::Repeat(
            Bytes::from_static(CONTINUE),
            u64::from(f.informational_flood),
        );
        answer.pieces.insert(0, flood);
    }
    if f.slowloris_response {
        answer.pace = Some(Duration::from_millis(f.slowloris_interval_ms));
    }
    Some(answer)
}

fn shape(reply: &Reply, f: &Faults, kind: PathKind) -> Option<RawAnswer> {
    let body = || Piece::Once(reply.body.clone());
    let head = |extra: &str| {
        Piece::Once(Bytes::from(format!(
            "{}{extra}\r\n",
            reply.http1_head(None)
        )))
    };
    let answer = if f.garbage_response {
        finite(vec![Piece::Once(garbage())])
    } else if f.http09 {
        finite(vec![body()])
    } else if f.huge_content_length {
        finite(vec![
            head(&format!("Content-Length: {HUGE_CONTENT_LENGTH}\r\n")),
            body(),
        ])
    } else if f.absurd_chunks {
        finite(vec![
            head("Transfer-Encoding: chunked\r\n"),
            Piece::Once(Bytes::from(format!("{ABSURD_CHUNK_SIZE}\r\n"))),
            body(),
        ])
    } else if f.endless_body {
        endless(b"{\"padding\":\"", &[b'x'; ENDLESS_CHUNK])
    } else if f.endless_event_array
        && f.event_shape.is_none()
        && kind == PathKind::Wait
        && reply.status == StatusCode::OK
    {
        let per_chunk = (ENDLESS_CHUNK / ENDLESS_EVENT.len()).max(1);
        endless(b"[", ENDLESS_EVENT.repeat(per_chunk).as_bytes())
    } else if f.deep_json_depth > 0 {
        let depth = u64::from(f.deep_json_depth);
        finite(vec![
            Piece::Once(Bytes::from(format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                2 * depth
            ))),
            Piece::Repeat(Bytes::from_static(b"["), depth),
            Piece::Repeat(Bytes::from_static(b"]"), depth),
        ])
    } else {
        return None;
    };
    Some(answer)
}

fn finite(pieces: Vec<Piece>) -> RawAnswer {
    RawAnswer {
        pieces,
        endless: None,
        pace: None,
    }
}

/// A `200` whose chunked body starts with `first` and then repeats `chunk` forever.
fn endless(first: &[u8], chunk: &[u8]) -> RawAnswer {
    let head =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    RawAnswer {
        pieces: vec![
            Piece::Once(Bytes::from_static(head.as_bytes())),
            Piece::Once(chunk_frame(first)),
        ],
        endless: Some(chunk_frame(chunk)),
        pace: None,
    }
}

fn chunk_frame(data: &[u8]) -> Bytes {
    let mut framed = format!("{:x}\r\n", data.len()).into_bytes();
    framed.extend_from_slice(data);
    framed.extend_from_slice(b"\r\n");
    Bytes::from(framed)
}

/// The answer as hyper would have sent it, closing the connection after.
fn plain(reply: &Reply) -> RawAnswer {
    let head = format!(
        "{}Connection: close\r\n\r\n",
        reply.http1_head(Some(reply.body.len()))
    );
    finite(vec![
        Piece::Once(Bytes::from(head)),
        Piece::Once(reply.body.clone()),
    ])
}

/// Random bytes that cannot be mistaken for a status line.
fn garbage() -> Bytes {
    let mut bytes: Vec<u8> = std::iter::repeat_with(|| fastrand::u8(..))
        .take(GARBAGE_BYTES)
        .collect();
    // "HTTP/" would start a status line; a NUL never does.
    bytes[0] = 0;
    Bytes::from(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Reply {
        Reply::json(StatusCode::OK, &serde_json::json!({"a": 1}))
    }

    #[test]
    fn no_raw_answer_without_a_transport_fault() {
        assert!(plan(&ok(), &Faults::default(), PathKind::Get).is_none());
        let spoiled = Faults {
            reset: true,
            slowloris_response: true,
            ..Faults::default()
        };
        assert!(plan(&ok(), &spoiled, PathKind::Get).is_none());
        let endless_events = Faults {
            endless_event_array: true,
            ..Faults::default()
        };
        assert!(plan(&ok(), &endless_events, PathKind::Get).is_none());
        assert!(plan(&ok(), &endless_events, PathKind::Wait).is_some());
    }

    #[test]
    fn chunks_are_framed_with_their_hex_length() {
        assert_eq!(
            &chunk_frame(b"hello world, hi!")[..],
            b"10\r\nhello world, hi!\r\n"
        );
    }
}
