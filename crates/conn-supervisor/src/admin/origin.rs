//! The actions (`POST`, `DELETE`) are refused to other web sites: a page elsewhere that
//! the operator happens to open could otherwise post to a loopback admin server.
//! Browsers name the page's origin in `Origin` on every such request; programs such as
//! `curl` send none and are let through, as before.

use axum::{
    extract::Request,
    http::{header, HeaderMap, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};

/// Middleware: an action whose `Origin` is not this server gets 403.
pub(super) async fn same_origin_actions(request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe && !same_origin(request.headers()) {
        return (
            StatusCode::FORBIDDEN,
            Json(serde_json::json!({ "error": "cross-origin request refused" })),
        )
            .into_response();
    }
    next.run(request).await
}

/// No `Origin` (not a browser), or one whose host and port are this request's `Host`.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin = origin.to_str().ok().and_then(|o| {
        o.strip_prefix("http://")
            .or_else(|| o.strip_prefix("https://"))
    });
    match (origin, host) {
        (Some(origin), Some(host)) => origin.eq_ignore_ascii_case(host),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(origin: Option<&str>, host: Option<&str>) -> bool {
        let mut h = HeaderMap::new();
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap_or_else(|e| panic!("{e}")));
        }
        if let Some(v) = host {
            h.insert(header::HOST, v.parse().unwrap_or_else(|e| panic!("{e}")));
        }
        same_origin(&h)
    }

    #[test]
    fn only_this_server_or_no_browser_may_act() {
        assert!(check(None, Some("127.0.0.1:9898")), "curl");
        assert!(check(Some("http://127.0.0.1:9898"), Some("127.0.0.1:9898")));
        assert!(check(Some("http://LOCALHOST:9898"), Some("localhost:9898")));
        assert!(!check(Some("https://evil.example"), Some("127.0.0.1:9898")));
        assert!(!check(
            Some("http://127.0.0.1:9899"),
            Some("127.0.0.1:9898")
        ));
        assert!(
            !check(Some("null"), Some("127.0.0.1:9898")),
            "sandboxed page"
        );
        assert!(!check(Some("http://127.0.0.1:9898"), None));
    }
}
