//! Login, session cookies, and the one retry after an expired session; the login
//! lockout after a refused password and the request budget, both shared by every
//! connection of a device, are applied here because every request passes through.

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
    take_budget(device, req)?;
    let resp = ex.exchange(req.to_string(), raw, limit).await?;
    wire::parse(device.name(), req, &resp, cfg.password().is_some())
}

/// One request's place in the device's request budget, or the refusal.
fn take_budget(device: &Device, req: &HeloRequest) -> Result<(), HeloError> {
    device
        .take_budget()
        .map_err(|retry_in| HeloError::BudgetExhausted {
            device: device.name().clone(),
            request: req.to_string(),
            per_minute: device.config().request_budget().per_minute,
            retry_in,
        })
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
    // A refused password is answered from memory until the lockout ends: the next
    // login of any connection or source would be refused too, and every refusal
    // brings a device's or a site's account lockout closer.
    if let Some(failure) = device.locked_login() {
        return Err(HeloError::Auth {
            device: device.name().clone(),
            request: req.to_string(),
            failure,
        });
    }
    take_budget(device, &req)?;
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
    if let Err(e) = wire::parse(device.name(), &req, &resp, true) {
        if let HeloError::Auth {
            failure: failure @ AuthFailure::WrongPassword { .. },
            ..
        } = &e
        {
            device.lock_logins(failure.clone());
            tracing::debug!(encoder_id = %device.name(), lockout = ?cfg.login_lockout(),
                "password refused; no login until the lockout ends");
        }
        return Err(e);
    }
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
    use std::{sync::Mutex, time::Duration};

    use bytes::Bytes;
    use futures_util::FutureExt;

    use super::*;
    use crate::{
        budget::RequestBudget,
        config::{DeviceConfig, Password},
        exchange::MockExchange,
        outcome::Outcome,
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

    const REFUSED: &str = r#"{"login":"Login Failed - Passwords did not match"}"#;

    fn locked_device(lockout: Duration) -> Device {
        Device::new(
            DeviceConfig::from_url("enc-1", "http://127.0.0.1:1")
                .unwrap()
                .with_password(Some(Password::new("nope")))
                .with_login_lockout(lockout),
        )
    }

    async fn get(dev: &Device, ex: &MockExchange) -> Result<HeloResponse, HeloError> {
        perform(
            dev,
            ex,
            &HeloRequest::get("eParamID_X"),
            &ConnectionStats::default(),
        )
        .await
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_password_locks_every_login_of_the_device_until_the_lockout_ends() {
        let dev = locked_device(Duration::from_secs(600));
        let (ex, seen) = scripted(vec![ok(REFUSED), login_ok("t1"), ok(GET_OK)]);
        let first = get(&dev, &ex).await.unwrap_err();
        assert!(first.is_wrong_password(), "{first}");
        assert_eq!(seen.lock().unwrap().len(), 1);
        assert_eq!(dev.login_locked_for(), Some(Duration::from_secs(600)));

        // Every source, every connection: a request needing a login, an explicit
        // login, a relogin after a 404. Same typed error, nothing sent.
        tokio::time::advance(Duration::from_secs(599)).await;
        let again = get(&dev, &ex).await.unwrap_err();
        assert!(again.is_wrong_password(), "{again}");
        assert_eq!(again.to_string(), first.to_string());
        let login = perform(&dev, &ex, &HeloRequest::Login, &ConnectionStats::default())
            .await
            .unwrap_err();
        assert!(login.is_wrong_password(), "{login}");
        let clone = dev.clone();
        assert!(get(&clone, &ex).await.unwrap_err().is_wrong_password());
        assert_eq!(seen.lock().unwrap().len(), 1, "no login sent while locked");
        assert_eq!(dev.login_locked_for(), Some(Duration::from_secs(1)));

        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(dev.login_locked_for(), None);
        get(&dev, &ex).await.unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen.len(),
            3,
            "one login after the lockout, then the request"
        );
        assert_eq!(seen[1].path_and_query, "/authenticator/login");
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_device_from_the_configuration_is_not_locked() {
        let dev = locked_device(Duration::from_secs(600));
        let (ex, seen) = scripted(vec![ok(REFUSED), login_ok("t1"), ok(GET_OK)]);
        assert!(get(&dev, &ex).await.unwrap_err().is_wrong_password());
        // A reload builds new devices from the (changed) configuration.
        let reloaded = Device::new(dev.config().clone());
        assert_eq!(reloaded.login_locked_for(), None);
        get(&reloaded, &ex).await.unwrap();
        assert_eq!(seen.lock().unwrap().len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_lockout_sends_every_login() {
        let dev = locked_device(Duration::ZERO);
        let (ex, seen) = scripted(vec![ok(REFUSED), ok(REFUSED)]);
        assert!(get(&dev, &ex).await.unwrap_err().is_wrong_password());
        assert!(get(&dev, &ex).await.unwrap_err().is_wrong_password());
        assert_eq!(seen.lock().unwrap().len(), 2);
        assert_eq!(dev.login_locked_for(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_beyond_the_budget_fail_at_once_as_shed_and_are_counted() {
        let dev = Device::new(
            DeviceConfig::from_url("enc-1", "http://127.0.0.1:1")
                .unwrap()
                .with_request_budget(RequestBudget {
                    per_minute: 60,
                    burst: 3,
                })
                .unwrap(),
        );
        let (ex, seen) = scripted(vec![ok(GET_OK); 4]);
        for _ in 0..3 {
            get(&dev, &ex).await.unwrap();
        }
        let err = get(&dev, &ex).await.unwrap_err();
        assert!(err.is_budget_exhausted(), "{err}");
        assert_eq!(err.outcome(), Outcome::Shed);
        let boxed: crate::BoxError = Box::new(err);
        assert_eq!(Outcome::of(boxed.as_ref()), Outcome::Shed);
        assert_eq!(
            boxed.to_string(),
            "enc-1: get eParamID_X: request budget of 60/min used up; not sent (next in 1s)"
        );
        assert_eq!(
            seen.lock().unwrap().len(),
            3,
            "the refused request was not sent"
        );
        assert_eq!(dev.budget_refused(), 1);
        // Shared by every handle of the device, and refilled by the clock.
        assert!(get(&dev.clone(), &ex)
            .await
            .unwrap_err()
            .is_budget_exhausted());
        assert_eq!(dev.budget_refused(), 2);
        tokio::time::advance(Duration::from_secs(1)).await;
        get(&dev, &ex).await.unwrap();
        assert_eq!(seen.lock().unwrap().len(), 4);
    }

    #[test]
    fn a_budget_of_nothing_is_refused() {
        let cfg = DeviceConfig::from_url("enc", "h").unwrap();
        assert_eq!(cfg.request_budget(), RequestBudget::default());
        for (per_minute, burst) in [(0, 10), (10, 0)] {
            let err = cfg
                .clone()
                .with_request_budget(RequestBudget { per_minute, burst })
                .unwrap_err();
            assert!(err.to_string().contains("request budget"), "{err}");
        }
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
