//! The admin token: with one configured, every action (anything but GET and HEAD)
//! needs `Authorization: Bearer <token>`, and with `admin_auth_reads` every read too,
//! except the orchestrator's probes `/healthz` and `/readyz`. Without a token the API
//! is open, which the configuration allows only on loopback.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};

use crate::config::AdminToken;

/// What a request must show.
#[derive(Debug, Clone)]
pub(super) struct TokenRule {
    pub(super) token: AdminToken,
    /// Reads need the token too (`admin_auth_reads`).
    pub(super) reads: bool,
}

/// Paths open to anyone, whatever the rule: the orchestrator probes them without
/// credentials.
const PROBES: &[&str] = &["/healthz", "/readyz"];

impl TokenRule {
    fn applies(&self, method: &Method, path: &str) -> bool {
        let read = matches!(*method, Method::GET | Method::HEAD);
        !read || (self.reads && !PROBES.contains(&path))
    }
}

/// Middleware: a request the rule covers without the right token gets 401.
pub(super) async fn require_token(
    State(rule): State<Arc<TokenRule>>,
    request: Request,
    next: Next,
) -> Response {
    if rule.applies(request.method(), request.uri().path()) {
        match bearer(request.headers()) {
            None => {
                return unauthorized(
                    None,
                    "this request needs the admin token (Authorization: Bearer <token>)",
                )
            }
            Some(given) if !rule.token.verify(given) => {
                return unauthorized(Some("invalid_token"), "the admin token is wrong")
            }
            Some(_) => {}
        }
    }
    next.run(request).await
}

/// The credentials of `Authorization: Bearer <credentials>` (the scheme in any case).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credentials) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim())
}

/// 401 with the challenge (RFC 6750); never says what was sent.
fn unauthorized(error: Option<&str>, message: &str) -> Response {
    let challenge = match error {
        Some(code) => format!("Bearer realm=\"conn-supervisor\", error=\"{code}\""),
        None => "Bearer realm=\"conn-supervisor\"".to_string(),
    };
    let mut response = (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({ "error": message })),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(reads: bool) -> TokenRule {
        TokenRule {
            token: AdminToken::new("t0ken"),
            reads,
        }
    }

    #[test]
    fn actions_always_reads_only_when_asked_probes_never() {
        let actions = rule(false);
        assert!(actions.applies(&Method::POST, "/api/encoders/a/hold"));
        assert!(actions.applies(&Method::DELETE, "/api/encoders/a/hold"));
        assert!(actions.applies(&Method::OPTIONS, "/api/encoders"));
        assert!(!actions.applies(&Method::GET, "/api/encoders"));
        assert!(!actions.applies(&Method::HEAD, "/metrics"));
        let reads = rule(true);
        assert!(reads.applies(&Method::GET, "/api/encoders"));
        assert!(reads.applies(&Method::GET, "/metrics"));
        assert!(reads.applies(&Method::GET, "/"));
        assert!(!reads.applies(&Method::GET, "/healthz"));
        assert!(!reads.applies(&Method::HEAD, "/readyz"));
        assert!(
            reads.applies(&Method::POST, "/healthz"),
            "only reads of a probe are open"
        );
    }

    #[test]
    fn the_bearer_scheme_in_any_case() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        for (sent, got) in [
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("BEARER  abc ", Some("abc")),
            ("Basic YWJj", None),
            ("Bearerabc", None),
        ] {
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(sent));
            assert_eq!(bearer(&h), got, "{sent}");
        }
    }
}
