//! Login, session cookies, and the one retry after an expired session.

use std::sync::Arc;

use crate::{
    config::Device,
    error::{AuthFailure, HeloError, TimeoutPhase},
    exchange::Exchange,
    request::{HeloRequest, HeloResponse},
    stats::ConnectionStats,
    wire::{self, Parsed},
};

/// Performs `req` over `ex` for `device`: logs in when needed, and on a 404 that
/// means "session gone" logs in again (once for all connections of the device) and
/// retries exactly once, with the new cookie.
pub(crate) async fn perform<E: Exchange + ?Sized>(
    device: &Device,
    ex: &E,
    req: &HeloRequest,
    stats: &ConnectionStats,
) -> Result<HeloResponse, HeloError> {
    if matches!(req, HeloRequest::Login) {
        let _guard = device.login_lock().lock().await;
        let cookie = login(device, ex).await?;
        device.store_session(cookie);
        return Ok(HeloResponse::LoggedIn);
    }
    let has_password = device.config().password().is_some();
    let (mut cookie, mut generation) = device.session();
    if has_password && cookie.is_none() {
        (cookie, generation) = relogin(device, ex, generation).await?;
    }
    match attempt(device, ex, req, cookie).await? {
        Parsed::Done(resp) => Ok(resp),
        Parsed::NeedsLogin => {
            let (cookie, _) = relogin(device, ex, generation).await?;
            stats.relogged();
            match attempt(device, ex, req, cookie).await? {
                Parsed::Done(resp) => Ok(resp),
                Parsed::NeedsLogin => Err(HeloError::Auth {
                    device: device.name().clone(),
                    request: req.to_string(),
                    failure: AuthFailure::SessionExpired,
                }),
            }
        }
    }
}

async fn attempt<E: Exchange + ?Sized>(
    device: &Device,
    ex: &E,
    req: &HeloRequest,
    cookie: Option<Arc<str>>,
) -> Result<Parsed, HeloError> {
    let cfg = device.config();
    let raw = wire::build(req, cookie, None);
    let limit = if req.is_long_poll() {
        cfg.event_wait_timeout()
    } else {
        cfg.request_timeout()
    };
    let resp = ex.exchange(req.to_string(), raw, limit).await?;
    wire::parse(device.name(), req, &resp, cfg.password().is_some())
}

/// Logs in unless another connection already did since `seen_generation`.
async fn relogin<E: Exchange + ?Sized>(
    device: &Device,
    ex: &E,
    seen_generation: u64,
) -> Result<(Option<Arc<str>>, u64), HeloError> {
    let _guard = device.login_lock().lock().await;
    let (cookie, generation) = device.session();
    if generation != seen_generation && cookie.is_some() {
        return Ok((cookie, generation));
    }
    let cookie = login(device, ex).await?;
    let generation = device.store_session(cookie.clone());
    Ok((Some(cookie), generation))
}

async fn login<E: Exchange + ?Sized>(device: &Device, ex: &E) -> Result<Arc<str>, HeloError> {
    let cfg = device.config();
    let req = HeloRequest::Login;
    let Some(password) = cfg.password() else {
        return Err(HeloError::Auth {
            device: device.name().clone(),
            request: req.to_string(),
            failure: AuthFailure::PasswordRequired,
        });
    };
    let raw = wire::build(&req, None, Some(password));
    let limit = cfg.request_timeout();
    let resp = ex
        .exchange(req.to_string(), raw, limit)
        .await
        .map_err(|e| match e {
            HeloError::Timeout {
                device,
                request,
                after,
                ..
            } => HeloError::Timeout {
                device,
                request,
                phase: TimeoutPhase::Login,
                after,
            },
            other => other,
        })?;
    wire::parse(device.name(), &req, &resp, true)?;
    let cookie = wire::session_cookie(&resp.set_cookies).ok_or_else(|| HeloError::Protocol {
        device: device.name().clone(),
        request: req.to_string(),
        detail: "login succeeded but the device set no session cookie".into(),
    })?;
    tracing::debug!(encoder_id = %device.name(), "logged in");
    Ok(cookie)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use bytes::Bytes;
    use futures_util::FutureExt;

    use super::*;
    use crate::{
        config::{DeviceConfig, Password},
        exchange::MockExchange,
        wire::{RawRequest, RawResponse},
    };

    fn device(password: Option<&str>) -> Device {
        Device::new(
            DeviceConfig::from_url("enc-1", "http://127.0.0.1:1")
                .unwrap()
                .with_password(password.map(Password::new)),
        )
    }

    fn ok(body: &str) -> RawResponse {
        RawResponse {
            status: 200,
            body: Bytes::from(body.to_string()),
            ..Default::default()
        }
    }

    fn login_ok(token: &str) -> RawResponse {
        RawResponse {
            set_cookies: vec![format!("session={token}; path=/")],
            ..ok(r#"{"login":"success"}"#)
        }
    }

    fn not_found() -> RawResponse {
        RawResponse {
            status: 404,
            body: Bytes::from_static(b"<html><title>404 Not Found</title></html>"),
            ..Default::default()
        }
    }

    /// A mock device whose answers are scripted in order, recording what it was sent.
    fn scripted(answers: Vec<RawResponse>) -> (MockExchange, Arc<Mutex<Vec<RawRequest>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(answers.into_iter()));
        let mut ex = MockExchange::new();
        let log = seen.clone();
        ex.expect_exchange().returning(move |_, req, _| {
            log.lock().unwrap().push(req);
            let next = answers
                .lock()
                .unwrap()
                .next()
                .expect("more requests than scripted");
            async move { Ok(next) }.boxed()
        });
        (ex, seen)
    }

    const GET_OK: &str = r#"{"name":"eParamID_X","value":"1"}"#;

    #[tokio::test]
    async fn logs_in_first_then_sends_the_cookie() {
        let dev = device(Some("pw"));
        let (ex, seen) = scripted(vec![login_ok("t1"), ok(GET_OK)]);
        let stats = ConnectionStats::default();
        let resp = perform(&dev, &ex, &HeloRequest::get("eParamID_X"), &stats)
            .await
            .unwrap();
        assert!(matches!(resp, HeloResponse::Param(_)));
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].path_and_query, "/authenticator/login");
        assert_eq!(seen[1].cookie.as_deref(), Some("t1"));
    }

    #[tokio::test]
    async fn expired_session_relogs_once_and_retries_with_the_new_cookie() {
        let dev = device(Some("pw"));
        dev.store_session(Arc::from("stale"));
        let (ex, seen) = scripted(vec![not_found(), login_ok("fresh"), ok(GET_OK)]);
        let stats = ConnectionStats::default();
        perform(&dev, &ex, &HeloRequest::get("eParamID_X"), &stats)
            .await
            .unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0].cookie.as_deref(), Some("stale"));
        assert_eq!(seen[1].path_and_query, "/authenticator/login");
        assert_eq!(
            seen[2].cookie.as_deref(),
            Some("fresh"),
            "retry must carry the new cookie"
        );
        assert_eq!(stats.snapshot().relogins, 1);
    }

    #[tokio::test]
    async fn a_second_404_after_relogin_is_session_expired_not_a_loop() {
        let dev = device(Some("pw"));
        dev.store_session(Arc::from("stale"));
        let (ex, seen) = scripted(vec![not_found(), login_ok("fresh"), not_found()]);
        let err = perform(
            &dev,
            &ex,
            &HeloRequest::get("eParamID_X"),
            &ConnectionStats::default(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                err,
                HeloError::Auth {
                    failure: AuthFailure::SessionExpired,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(seen.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn wrong_password_fails_once_without_retrying() {
        let dev = device(Some("nope"));
        let (ex, seen) = scripted(vec![ok(
            r#"{"login":"Login Failed - Passwords did not match"}"#,
        )]);
        let err = perform(
            &dev,
            &ex,
            &HeloRequest::get("eParamID_X"),
            &ConnectionStats::default(),
        )
        .await
        .unwrap_err();
        assert!(err.is_wrong_password(), "{err}");
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn another_connections_relogin_is_reused() {
        let dev = device(Some("pw"));
        dev.store_session(Arc::from("stale"));
        let (_, generation) = dev.session();
        // Another connection logs in while this one is waiting for its 404.
        dev.store_session(Arc::from("fresh-from-peer"));
        let (ex, seen) = scripted(vec![ok(GET_OK)]);
        let (cookie, _) = relogin(&dev, &ex, generation).await.unwrap();
        assert_eq!(cookie.as_deref(), Some("fresh-from-peer"));
        assert!(seen.lock().unwrap().is_empty(), "no second login");
    }

    #[tokio::test]
    async fn no_password_and_html_404_says_a_password_is_needed() {
        let dev = device(None);
        let (ex, _) = scripted(vec![not_found()]);
        let err = perform(
            &dev,
            &ex,
            &HeloRequest::get("eParamID_X"),
            &ConnectionStats::default(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                err,
                HeloError::Auth {
                    failure: AuthFailure::PasswordRequired,
                    ..
                }
            ),
            "{err}"
        );
    }
}
