//! Login, session cookies and their expiry.

mod common;

use std::time::Duration;

use common::{get_url, post_faults, start, value, Http, NOT_FOUND_HTML};
use helo_sim::SimConfig;

const STREAM_STATE: &str = "eParamID_ReplicatorStreamState";

#[tokio::test]
async fn without_a_session_everything_is_404_and_login_opens_one() {
    let dev = start(SimConfig::fast().with_password("s3cret pw")).await;
    let base = dev.url();
    let mut http = Http::new();
    for url in [
        get_url(&dev, STREAM_STATE),
        format!("{base}/descriptors?paramid={STREAM_STATE}"),
        format!("{base}/config?action=connect"),
    ] {
        let reply = http.get(&url).await;
        assert_eq!(reply.status, 404, "{url}");
        assert_eq!(reply.body, NOT_FOUND_HTML);
    }

    let reply = http.login(&base, "wrong").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json()["login"],
        "Login Failed - Passwords did not match"
    );
    assert_eq!(reply.header("set-cookie"), None);
    assert_eq!(http.get(&get_url(&dev, STREAM_STATE)).await.status, 404);

    let reply = http.login(&base, "s3cret%20pw").await;
    assert_eq!(reply.json()["login"], "success");
    let set_cookie = reply.header("set-cookie").unwrap();
    assert!(
        set_cookie.starts_with("session=") && set_cookie.ends_with("; path=/"),
        "{set_cookie}"
    );
    assert_eq!(value(&http, &dev, STREAM_STATE).await, "1");
    assert_eq!(value(&http, &dev, "eParamID_Authentication").await, "1");

    // The session cookie among others still works.
    let session = http.cookie.clone().unwrap();
    http.cookie = Some(format!("theme=dark; {session}; lang=en"));
    assert_eq!(value(&http, &dev, STREAM_STATE).await, "1");
    http.cookie = Some("session=forged".to_owned());
    assert_eq!(http.get(&get_url(&dev, STREAM_STATE)).await.status, 404);
}

#[tokio::test]
async fn sessions_expire_after_the_ttl_and_on_demand() {
    let dev = start(SimConfig {
        session_ttl: Duration::from_millis(300),
        ..SimConfig::fast().with_password("pw")
    })
    .await;
    let base = dev.url();
    let mut http = Http::new();
    http.login(&base, "pw").await;
    assert_eq!(http.get(&get_url(&dev, STREAM_STATE)).await.status, 200);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let reply = http.get(&get_url(&dev, STREAM_STATE)).await;
    assert_eq!((reply.status, reply.body.as_str()), (404, NOT_FOUND_HTML));

    // Log in again: works until the library expires every session.
    http.login(&base, "pw").await;
    assert_eq!(http.get(&get_url(&dev, STREAM_STATE)).await.status, 200);
    dev.expire_sessions_now();
    assert_eq!(http.get(&get_url(&dev, STREAM_STATE)).await.status, 404);

    // ... or the control endpoint does (which itself needs no session).
    http.login(&base, "pw").await;
    assert_eq!(http.get(&get_url(&dev, STREAM_STATE)).await.status, 200);
    post_faults(&http, &dev, r#"{"expire_sessions": true}"#).await;
    assert_eq!(http.get(&get_url(&dev, STREAM_STATE)).await.status, 404);
}

#[tokio::test]
async fn without_a_password_no_login_is_needed_but_login_still_succeeds() {
    let dev = start(SimConfig::fast()).await;
    let mut http = Http::new();
    assert_eq!(value(&http, &dev, "eParamID_Authentication").await, "0");
    assert_eq!(value(&http, &dev, STREAM_STATE).await, "1");
    let reply = http.login(&dev.url(), "anything").await;
    assert_eq!(reply.json()["login"], "success");
    assert_eq!(value(&http, &dev, STREAM_STATE).await, "1");
}
