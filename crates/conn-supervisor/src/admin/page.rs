//! The fleet page at `/` and its assets, embedded in the binary: no build step, no
//! CDN, nothing fetched from elsewhere (a control room may have no internet).
//!
//! The page is static; its data comes from `/api/events`. Its Content-Security-Policy
//! allows only this server's own script, style and connections, so text from a device
//! could not run as script even if a bug ever put it into the page as markup.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    sync::LazyLock,
};

use axum::{
    extract::{Path, RawQuery},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};

const INDEX_HTML: &str = include_str!("../../assets/index.html");
const APP_JS: &str = include_str!("../../assets/app.js");
const APP_CSS: &str = include_str!("../../assets/app.css");
const FAVICON: &str = include_str!("../../assets/favicon.svg");

/// What the page may load: its own script and style, its own API, nothing inline.
pub(super) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// A cache-busting version of the assets: a hash of their content, so a browser may
/// keep `?v=VERSION` URLs forever and still sees a new binary's assets at once.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut h = DefaultHasher::new();
    (APP_JS, APP_CSS, FAVICON).hash(&mut h);
    format!("{:016x}", h.finish())
});

static PAGE: LazyLock<String> = LazyLock::new(|| INDEX_HTML.replace("{{v}}", &VERSION));

/// The page for a browser; for anything else (`curl`), the plain-text list of
/// endpoints that `/` has always answered.
pub(super) async fn index(headers: HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    // One URL, two answers: caches must keep them apart.
    if !wants_html {
        return ([(header::VARY, "Accept")], super::INDEX).into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            // Always revalidated: it names the assets' current version.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::VARY, "Accept"),
        ],
        PAGE.as_str(),
    )
        .into_response()
}

/// `GET /assets/{name}`.
pub(super) async fn asset(Path(name): Path<String>, RawQuery(query): RawQuery) -> Response {
    let (body, content_type) = match name.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        "favicon.svg" => (FAVICON, "image/svg+xml"),
        _ => return (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    };
    let versioned = query
        .as_deref()
        .and_then(|q| q.strip_prefix("v="))
        .is_some_and(|v| v == VERSION.as_str());
    // Only a URL naming this very content may be kept; any other is revalidated.
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_versioned_assets_and_runs_no_inline_script() {
        assert!(!PAGE.contains("{{v}}"));
        assert!(PAGE.contains(&format!("/assets/app.js?v={}", *VERSION)));
        assert!(PAGE.contains(&format!("/assets/app.css?v={}", *VERSION)));
        // The CSP forbids inline script and style; the page must not need them.
        assert!(!PAGE.contains("<script>"), "inline script");
        assert!(!PAGE.contains("<style"), "inline style");
        assert!(!PAGE.contains(" style="), "inline style attribute");
        let handler = PAGE.match_indices(" on").any(|(i, _)| {
            let rest = &PAGE[i + 3..];
            let name = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            name > 0 && rest[name..].starts_with('=')
        });
        assert!(!handler, "inline event handler");
    }

    #[test]
    fn the_script_never_writes_html() {
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!APP_JS.contains(sink), "app.js uses {sink}");
        }
    }
}
