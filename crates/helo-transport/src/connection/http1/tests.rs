use std::sync::Arc;

use tokio::{io::AsyncWriteExt, net::TcpListener};

use super::*;

/// A client socket whose peer writes `answer` in `parts` (then closes if `close`).
async fn answered(parts: Vec<Vec<u8>>, close: bool) -> (TcpStream, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        for part in parts {
            sock.write_all(&part).await.unwrap();
            sock.flush().await.unwrap();
            tokio::task::yield_now().await;
        }
        if !close {
            // Keep the connection open until the client is done.
            std::future::pending::<()>().await;
        }
    });
    (TcpStream::connect(addr).await.unwrap(), server)
}

async fn read(parts: &[&[u8]], close: bool) -> Result<Answer, WireError> {
    let (stream, server) = answered(parts.iter().map(|p| p.to_vec()).collect(), close).await;
    let answer = read_answer(&stream, 1024, 64).await;
    server.abort();
    answer
}

#[tokio::test]
async fn a_sized_answer_split_anywhere_is_read_whole_and_keeps_the_connection() {
    let a = read(
        &[
            b"HTTP/1.1 200 OK\r\nContent-Len",
            b"gth: 5\r\nSet-Cookie: session=ab\r\nSet-Cookie: x=1\r\nRetry-After: 3\r\n\r\nhel",
            b"lo",
        ],
        false,
    )
    .await
    .unwrap();
    assert_eq!(a.response.status, 200);
    assert_eq!(&a.response.body[..], b"hello");
    assert_eq!(a.response.set_cookies, ["session=ab", "x=1"]);
    assert_eq!(a.response.retry_after.as_deref(), Some("3"));
    assert!(a.reusable);
}

#[tokio::test]
async fn a_chunked_answer_is_decoded() {
    let a = read(
        &[
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n",
            b"2;x=y\r\nlo\r\n0\r\n\r\n",
        ],
        false,
    )
    .await
    .unwrap();
    assert_eq!(&a.response.body[..], b"hello");
    assert!(a.reusable);
}

#[tokio::test]
async fn an_answer_without_length_ends_with_the_connection() {
    let a = read(&[b"HTTP/1.1 200 OK\r\n\r\nuntil the end"], true)
        .await
        .unwrap();
    assert_eq!(&a.response.body[..], b"until the end");
    assert!(!a.reusable);
}

#[tokio::test]
async fn connection_close_http_1_0_and_surplus_bytes_end_the_connection() {
    for answer in [
        &b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"[..],
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",
    ] {
        let a = read(&[answer], false).await.unwrap();
        assert_eq!(&a.response.body[..], b"ok");
        assert!(!a.reusable, "{:?}", String::from_utf8_lossy(answer));
    }
}

#[tokio::test]
async fn an_interim_answer_is_skipped_and_tolerated_oddities_are_read() {
    let a = read(
        &[b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length : 2\r\nX-Odd: a\r\n  b\r\nBad Header: x\r\n\r\nok"],
        false,
    )
    .await
    .unwrap();
    assert_eq!((a.response.status, &a.response.body[..]), (200, &b"ok"[..]));
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_sized_chunked_or_unsized() {
    let big = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: 65\r\n\r\n{}",
        "x".repeat(65)
    );
    assert!(matches!(
        read(&[big.as_bytes()], false).await,
        Err(WireError::TooLarge)
    ));
    let chunked = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n{}\r\n0\r\n\r\n",
        "x".repeat(65)
    );
    assert!(matches!(
        read(&[chunked.as_bytes()], false).await,
        Err(WireError::TooLarge)
    ));
    let unsized_ = format!("HTTP/1.1 200 OK\r\n\r\n{}", "x".repeat(200));
    assert!(matches!(
        read(&[unsized_.as_bytes()], true).await,
        Err(WireError::TooLarge)
    ));
}

#[tokio::test]
async fn malformed_answers_are_typed_errors() {
    let long_head = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "y".repeat(2000));
    let cases: Vec<(&[u8], &str)> = vec![
        (b"SSH-2.0-OpenSSH\r\n\r\n", "malformed HTTP response"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "bad content-length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nok",
            "conflicting content-length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            "transfer-encoding",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "chunk size",
        ),
        (long_head.as_bytes(), "head larger than 1024 bytes"),
    ];
    for (answer, expected) in cases {
        match read(&[answer], false).await {
            Err(WireError::Malformed(m)) => assert!(m.contains(expected), "{m}"),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(answer)),
        }
    }
}

/// Reads `wire` from memory, `step` bytes at a time, with a head limit of 256 bytes
/// and a body limit of 64.
fn read_in_pieces(wire: &[u8], step: usize) -> Result<Answer, WireError> {
    use futures_util::FutureExt;
    read_answer(Pieces { data: wire, step }, 256, 64)
        .now_or_never()
        .expect("bytes in memory are always ready")
}

#[test]
fn limits_hold_however_the_answer_is_split() {
    // A head over the limit that arrives in one read is refused as when it trickles
    // in, and one at the limit is read either way.
    let over = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "y".repeat(233));
    assert_eq!(over.len(), 257);
    let at = &over[..over.len() - 5];
    let at = format!("{at}\r\n\r\n");
    assert_eq!(at.len(), 256);
    for step in [1, 7, 1024] {
        match read_in_pieces(over.as_bytes(), step) {
            Err(WireError::Malformed(m)) => assert!(m.contains("head larger"), "{m}"),
            other => panic!("step {step}: {other:?}"),
        }
        let a = read_in_pieces(at.as_bytes(), step).unwrap();
        assert_eq!(a.response.status, 200, "step {step}");
    }
    // A chunk size line of 1 025 bytes (extensions) is refused whole or in pieces.
    let long_ext = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;{}\r\nx\r\n0\r\n\r\n",
        "e".repeat(1021)
    );
    for step in [1, 1024] {
        match read_in_pieces(long_ext.as_bytes(), step) {
            Err(WireError::Malformed(m)) => assert!(m.contains("chunk size line"), "{m}"),
            other => panic!("step {step}: {other:?}"),
        }
    }
}

#[test]
fn endless_trailer_lines_are_refused_not_buffered() {
    // Short lines, each under any per-line limit, that never end: the trailers as a
    // whole are bounded.
    let mut wire =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n".to_vec();
    for _ in 0..10_000 {
        wire.extend_from_slice(b"X-T: 1\r\n");
    }
    wire.extend_from_slice(b"\r\n");
    for step in [1, 1024] {
        match read_in_pieces(&wire, step) {
            Err(WireError::Malformed(m)) => assert!(m.contains("trailers too long"), "{m}"),
            other => panic!("step {step}: {other:?}"),
        }
    }
    // A few trailers are fine.
    let ok = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n";
    let a = read_in_pieces(ok, 3).unwrap();
    assert_eq!((&a.response.body[..], a.reusable), (&b"ok"[..], true));
}

#[tokio::test]
async fn a_connection_closed_before_or_during_the_answer_is_an_io_error() {
    for (answer, expected) in [
        (&b""[..], "before answering"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "in the middle"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",
            "in the middle",
        ),
    ] {
        match read(&[answer], true).await {
            Err(WireError::Io(e)) => assert!(e.to_string().contains(expected), "{e}"),
            other => panic!("{other:?}"),
        }
    }
}

fn request(cookie: Option<&str>, form: Option<&str>) -> RawRequest {
    RawRequest {
        method: if form.is_some() { "POST" } else { "GET" },
        path_and_query: "/config?action=get&paramid=eParamID_SysName".into(),
        cookie: cookie.map(Arc::from),
        form_body: form.map(str::to_string),
    }
}

#[test]
fn requests_are_encoded_as_http_1_1() {
    let get = encode("10.0.0.2:80", &request(Some("t0k"), None)).unwrap();
    assert_eq!(
        String::from_utf8(get).unwrap(),
        "GET /config?action=get&paramid=eParamID_SysName HTTP/1.1\r\nhost: 10.0.0.2:80\r\n\
         cookie: session=t0k\r\n\r\n"
    );
    let post = encode("h", &request(None, Some("password=x"))).unwrap();
    assert!(String::from_utf8(post).unwrap().ends_with(
        "content-type: application/x-www-form-urlencoded\r\ncontent-length: 10\r\n\r\npassword=x"
    ));
}

#[test]
fn nothing_from_a_device_can_break_the_request_apart() {
    for cookie in ["a\r\nX-Injected: 1", "a\nb", "a\0b"] {
        assert!(matches!(
            encode("h", &request(Some(cookie), None)),
            Err(WireError::Unsendable("the session cookie"))
        ));
    }
    let mut bad_path = request(None, None);
    bad_path.path_and_query = "/a b HTTP/1.1\r\n".into();
    assert!(matches!(
        encode("h", &bad_path),
        Err(WireError::Unsendable(_))
    ));
}
