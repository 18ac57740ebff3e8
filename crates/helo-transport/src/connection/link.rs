//! The wire of one connection: whose turn it is, one HTTP/1.1 round trip, and what
//! happens to an answer nobody waits for any more. The only file that touches hyper.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, OnceLock, Weak,
    },
    time::Duration,
};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use tokio::{
    sync::{Mutex, OwnedMutexGuard},
    task::JoinHandle,
    time::Instant,
};

use super::on_wire::OnTheWire;
use crate::{
    config::DeviceName,
    error::{BoxError, HeloError, TimeoutPhase},
    exchange::Exchange,
    wire::{RawRequest, RawResponse},
};

type Sender = SendRequest<Full<Bytes>>;

/// One HTTP/1.1 keep-alive connection's wire.
///
/// HTTP/1.1 carries one request at a time, so the sender sits behind a fair (FIFO)
/// lock, the *lane*: a request holds it from sending until its answer is read, and
/// requests behind it wait in the order they came. The time a request may wait for
/// the lane is the queue deadline ([`HeloError::QueueTimeout`]); the time it may hold
/// it, the request deadline ([`HeloError::Timeout`]). An answer still on its way when
/// its request is given up (deadline, or the caller dropped it) is read to its end in
/// the background, holding the lane, so that the next request finds a clean
/// connection; only if it does not come within another request deadline is the
/// connection closed, and the requests behind it fail with a typed error.
pub(super) struct Link {
    me: Weak<Link>,
    device: DeviceName,
    authority: String,
    max_body: usize,
    queue_timeout: Duration,
    lane: Arc<Mutex<Sender>>,
    /// Set by the driver task when hyper's connection ended.
    ended: Arc<AtomicBool>,
    /// Set when we closed the connection or an error left it in an unknown state.
    broken: AtomicBool,
    /// Why the connection is unusable, for the errors of the requests that find it so.
    reason: OnceLock<String>,
    driver: JoinHandle<()>,
    created: Instant,
    /// Milliseconds after `created` at which a request last got the lane.
    last_turn_ms: AtomicU64,
}

/// What [`Link::new`] needs.
pub(super) struct LinkParts {
    pub(super) device: DeviceName,
    pub(super) authority: String,
    pub(super) max_body: usize,
    pub(super) queue_timeout: Duration,
    pub(super) sender: Sender,
    pub(super) ended: Arc<AtomicBool>,
    pub(super) driver: JoinHandle<()>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Link {
    pub(super) fn new(parts: LinkParts) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            device: parts.device,
            authority: parts.authority,
            max_body: parts.max_body,
            queue_timeout: parts.queue_timeout,
            lane: Arc::new(Mutex::new(parts.sender)),
            ended: parts.ended,
            broken: AtomicBool::new(false),
            reason: OnceLock::new(),
            driver: parts.driver,
            created: Instant::now(),
            last_turn_ms: AtomicU64::new(0),
        })
    }

    pub(super) fn created(&self) -> Instant {
        self.created
    }

    /// When (after [`created`](Self::created)) a request last got its turn.
    pub(super) fn last_turn(&self) -> Duration {
        Duration::from_millis(self.last_turn_ms.load(Ordering::Relaxed))
    }

    pub(super) fn is_closed(&self) -> bool {
        self.broken.load(Ordering::Acquire) || self.ended.load(Ordering::Acquire)
    }

    /// Marks the connection unusable and closes its socket; the first reason given is
    /// the one later requests are told.
    pub(super) fn close(&self, reason: &str) {
        let _ = self.reason.set(reason.to_string());
        self.broken.store(true, Ordering::Release);
        self.driver.abort();
    }

    /// The error of a request that finds the connection unusable.
    pub(super) fn closed_error(&self, request: &str) -> HeloError {
        let reason = match self.reason.get() {
            Some(r) => r.clone(),
            None => "the device closed the connection".to_string(),
        };
        HeloError::Connect {
            device: self.device.clone(),
            request: request.to_string(),
            source: format!("connection is closed: {reason}").into(),
        }
    }

    /// Waits for the lane, in FIFO order, for at most the queue deadline; answers it
    /// and when the wire became the request's.
    ///
    /// `called` is when an outer layer called the request, if this is its first poll
    /// (see [`RequestClock`](super::RequestClock)): a request that finds the wire free
    /// at once starts its deadline from it and reads no clock.
    async fn turn(
        &self,
        label: &str,
        called: Option<Instant>,
    ) -> Result<(OwnedMutexGuard<Sender>, Instant), HeloError> {
        let (guard, at) = match self.lane.clone().try_lock_owned() {
            Ok(guard) => (guard, called),
            // Only a request that has to wait pays for a timer (and a clock read).
            Err(_) => {
                let guard =
                    tokio::time::timeout(self.queue_timeout, self.lane.clone().lock_owned())
                        .await
                        .map_err(|_| HeloError::QueueTimeout {
                            device: self.device.clone(),
                            request: label.to_string(),
                            waited: self.queue_timeout,
                        })?;
                (guard, None)
            }
        };
        if self.is_closed() {
            return Err(self.closed_error(label));
        }
        Ok((guard, at.unwrap_or_else(Instant::now)))
    }

    fn build(&self, label: &str, req: RawRequest) -> Result<http::Request<Full<Bytes>>, HeloError> {
        let mut builder = http::Request::builder()
            .method(req.method)
            .uri(req.path_and_query.as_str())
            .header(http::header::HOST, self.authority.as_str());
        if let Some(cookie) = &req.cookie {
            builder = builder.header(http::header::COOKIE, format!("session={cookie}"));
        }
        let body = match req.form_body {
            Some(form) => {
                builder = builder.header(
                    http::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                );
                Full::new(Bytes::from(form))
            }
            None => Full::new(Bytes::new()),
        };
        builder.body(body).map_err(|e| HeloError::Protocol {
            device: self.device.clone(),
            request: label.to_string(),
            detail: format!("cannot build request: {e}"),
        })
    }

    /// Sends the request and reads its answer while holding the lane. An error that
    /// leaves the connection unusable closes it before the lane is released, so the
    /// next request in line is told so instead of finding a dead sender.
    async fn round_trip(
        self: Arc<Self>,
        mut sender: OwnedMutexGuard<Sender>,
        label: String,
        req: http::Request<Full<Bytes>>,
    ) -> Result<RawResponse, HeloError> {
        let result = self.send(&mut sender, &label, req).await;
        if let Err(e) = &result {
            if e.breaks_connection() {
                self.close(&format!("{label} failed: {e}"));
            }
        }
        drop(sender);
        result
    }

    async fn send(
        &self,
        sender: &mut Sender,
        label: &str,
        req: http::Request<Full<Bytes>>,
    ) -> Result<RawResponse, HeloError> {
        let device = &self.device;
        let max_body = self.max_body;
        let connect_err = |source: BoxError| HeloError::Connect {
            device: device.clone(),
            request: label.to_string(),
            source,
        };
        let protocol = |detail: String| HeloError::Protocol {
            device: device.clone(),
            request: label.to_string(),
            detail,
        };
        let too_large = || HeloError::BodyTooLarge {
            device: device.clone(),
            request: label.to_string(),
            limit: max_body,
        };
        sender.ready().await.map_err(|e| connect_err(Box::new(e)))?;
        let resp = sender.send_request(req).await.map_err(|e| {
            if e.is_parse() || e.is_parse_status() {
                protocol(format!("malformed HTTP response: {e}"))
            } else {
                connect_err(Box::new(e))
            }
        })?;
        let (parts, body) = resp.into_parts();
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > max_body as u64) {
            return Err(too_large());
        }
        let body = Limited::new(body, max_body).collect().await.map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                protocol(format!("response body truncated: {e}"))
            }
        })?;
        let header_strings = |name: http::header::HeaderName| {
            parts
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_string))
                .collect::<Vec<_>>()
        };
        Ok(RawResponse {
            status: parts.status.as_u16(),
            set_cookies: header_strings(http::header::SET_COOKIE),
            retry_after: header_strings(http::header::RETRY_AFTER).into_iter().next(),
            body: body.to_bytes(),
        })
    }
}

impl Exchange for Link {
    fn exchange(
        &self,
        label: String,
        req: RawRequest,
        limit: Duration,
    ) -> BoxFuture<'static, Result<RawResponse, HeloError>> {
        // `self` lives in an `Arc` (see `Link::new`), so the upgrade only fails while
        // the connection is being dropped.
        let link = self.me.upgrade().ok_or_else(|| self.closed_error(&label));
        let http_req = self.build(&label, req);
        // Read here, on the request's first poll: a later exchange of the same
        // request (a retry after a new login) reads the clock.
        let called = super::RequestClock::called();
        Box::pin(async move {
            let link = link?;
            let http_req = http_req?;
            // The request deadline starts once the wire is ours: waiting behind
            // other requests is the queue deadline's business.
            let (sender, started) = link.turn(&label, called).await?;
            let since = started.saturating_duration_since(link.created);
            link.last_turn_ms.store(
                u64::try_from(since.as_millis()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
            let mut on_wire = OnTheWire::new(
                Box::pin(link.clone().round_trip(sender, label.clone(), http_req)),
                link.clone(),
                label.clone(),
                limit,
            );
            match tokio::time::timeout_at(started + limit, &mut on_wire).await {
                Ok(result) => result,
                // Dropping `on_wire` hands the unread answer to a drain task.
                Err(_) => Err(HeloError::Timeout {
                    device: link.device.clone(),
                    request: label,
                    phase: TimeoutPhase::Response,
                    after: limit,
                }),
            }
        })
    }
}

impl OnTheWire {
    /// Where a given-up round trip goes: read its answer to the end within `grace`,
    /// holding the lane, or close the connection.
    pub(super) fn drain(
        fut: BoxFuture<'static, Result<RawResponse, HeloError>>,
        link: Arc<Link>,
        label: String,
        grace: Duration,
    ) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            link.close(&format!("{label} was given up outside a tokio runtime"));
            return;
        };
        runtime.spawn(async move {
            let mut fut = fut;
            match tokio::time::timeout(grace, &mut fut).await {
                Ok(Ok(_)) => {
                    tracing::debug!(encoder_id = %link.device, request = %label,
                        "late answer read; the connection stays usable");
                }
                // An error that breaks the connection has closed it already.
                Ok(Err(e)) => {
                    tracing::debug!(encoder_id = %link.device, request = %label, error = %e,
                        "late answer failed");
                }
                Err(_) => {
                    tracing::debug!(encoder_id = %link.device, request = %label, ?grace,
                        "no late answer; closing the connection");
                    // Closed before the lane is released (by dropping `fut`), so the
                    // requests in line learn why instead of meeting a dead sender.
                    link.close(&format!(
                        "an earlier request ({label}) got no answer, even {grace:?} after its deadline"
                    ));
                }
            }
            drop(fut);
        });
    }
}
