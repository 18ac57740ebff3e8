//! One keep-alive HTTP/1.1 connection to one device, as a tower `Service`.

use std::{
    fmt,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpStream, sync::Mutex, task::JoinHandle, time::Instant};

use crate::{
    config::{Device, DeviceName},
    error::{BoxError, HeloError, TimeoutPhase},
    exchange::Exchange,
    request::{HeloRequest, HeloResponse},
    session,
    stats::{ConnectionStats, StatsSnapshot},
    wire::{RawRequest, RawResponse},
};

/// A process-wide unique connection number, used in logs and metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(u64);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl ConnectionId {
    /// A fresh id, never handed out before in this process.
    pub fn next() -> Self {
        Self(NEXT_ID.fetch_add(1, Ordering::Relaxed))
    }

    /// An id from a number (tests, mocks).
    pub fn from_raw(n: u64) -> Self {
        Self(n)
    }

    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One TCP connection to one device, speaking HTTP/1.1 keep-alive, logged in when
/// the device has a password.
///
/// Cloning is cheap and gives another handle to the same connection: requests from
/// all handles take turns on the wire, because HTTP/1.1 carries one at a time.
#[derive(Clone)]
pub struct HeloConnection {
    inner: Arc<Inner>,
}

struct Inner {
    id: ConnectionId,
    device: Device,
    exchange: HyperExchange,
    stats: ConnectionStats,
    created: Instant,
    /// Milliseconds after `created` of the last finished request.
    last_used_ms: AtomicU64,
    /// Set when an error left the connection in an unknown state.
    broken: AtomicBool,
    driver: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl fmt::Debug for HeloConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeloConnection")
            .field("id", &self.inner.id)
            .field("device", self.inner.device.name())
            .field("closed", &self.is_closed())
            .field("stats", &self.inner.stats.snapshot())
            .finish()
    }
}

impl HeloConnection {
    /// Opens a connection to `device` and, when a password is configured and the
    /// device has no session yet, logs in.
    pub async fn connect(device: &Device) -> Result<Self, HeloError> {
        let cfg = device.config();
        let name = device.name().clone();
        let request = "connect".to_string();
        let limit = cfg.connect_timeout();
        let stream = tokio::time::timeout(limit, TcpStream::connect((cfg.host(), cfg.port())))
            .await
            .map_err(|_| HeloError::Timeout {
                device: name.clone(),
                request: request.clone(),
                phase: TimeoutPhase::Connect,
                after: limit,
            })?
            .map_err(|e| HeloError::Connect {
                device: name.clone(),
                request: request.clone(),
                source: Box::new(e),
            })?;
        // Requests are tiny; Nagle would only add latency.
        let _ = stream.set_nodelay(true);
        let mut builder = http1::Builder::new();
        // Some AJA firmware sends slightly non-compliant headers; be tolerant.
        builder
            .allow_spaces_after_header_name_in_responses(true)
            .allow_obsolete_multiline_headers_in_responses(true)
            .ignore_invalid_headers_in_responses(true);
        let (sender, conn) = tokio::time::timeout(limit, builder.handshake(TokioIo::new(stream)))
            .await
            .map_err(|_| HeloError::Timeout {
                device: name.clone(),
                request: request.clone(),
                phase: TimeoutPhase::Handshake,
                after: limit,
            })?
            .map_err(|e| HeloError::Connect {
                device: name.clone(),
                request: request.clone(),
                source: Box::new(e),
            })?;
        let closed = Arc::new(AtomicBool::new(false));
        let driver = {
            let closed = closed.clone();
            let name = name.clone();
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(encoder_id = %name, error = %e, "connection ended");
                }
                closed.store(true, Ordering::Release);
            })
        };
        let conn = Self {
            inner: Arc::new(Inner {
                id: ConnectionId::next(),
                device: device.clone(),
                exchange: HyperExchange {
                    device: name,
                    authority: cfg.authority(),
                    max_body: cfg.max_body_bytes(),
                    sender: Arc::new(Mutex::new(sender)),
                    closed,
                },
                stats: ConnectionStats::default(),
                created: Instant::now(),
                last_used_ms: AtomicU64::new(0),
                broken: AtomicBool::new(false),
                driver,
            }),
        };
        if cfg.password().is_some() && device.session().0.is_none() {
            conn.request(HeloRequest::Login).await?;
        }
        Ok(conn)
    }

    /// Sends one request and reads its answer, logging in again once if the session
    /// expired.
    pub async fn request(&self, req: HeloRequest) -> Result<HeloResponse, HeloError> {
        let inner = &self.inner;
        if self.is_closed() {
            return Err(HeloError::Connect {
                device: inner.device.name().clone(),
                request: req.to_string(),
                source: "connection is closed".into(),
            });
        }
        inner.stats.started();
        let result = session::perform(&inner.device, &inner.exchange, &req, &inner.stats).await;
        inner.stats.finished(result.is_ok());
        let elapsed = u64::try_from(inner.created.elapsed().as_millis()).unwrap_or(u64::MAX);
        inner.last_used_ms.store(elapsed, Ordering::Relaxed);
        if let Err(e) = &result {
            if e.breaks_connection() {
                inner.broken.store(true, Ordering::Release);
            }
        }
        result
    }

    /// This connection's id.
    pub fn id(&self) -> ConnectionId {
        self.inner.id
    }

    /// The device this connection talks to.
    pub fn device(&self) -> &Device {
        &self.inner.device
    }

    /// The device's name.
    pub fn name(&self) -> &DeviceName {
        self.inner.device.name()
    }

    /// Whether the connection is unusable: closed by the device, or left in an
    /// unknown state by a timeout or a malformed answer.
    pub fn is_closed(&self) -> bool {
        self.inner.broken.load(Ordering::Acquire)
            || self.inner.exchange.closed.load(Ordering::Acquire)
    }

    /// Marks the connection unusable and closes its socket.
    pub fn close(&self) {
        self.inner.broken.store(true, Ordering::Release);
        self.inner.driver.abort();
    }

    /// The connection's counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// When the connection was opened.
    pub fn created_at(&self) -> Instant {
        self.inner.created
    }

    /// How long since a request last finished (or since the connection opened).
    pub fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.inner.last_used_ms.load(Ordering::Relaxed));
        self.inner.created.elapsed().saturating_sub(last)
    }
}

impl tower::Service<HeloRequest> for HeloConnection {
    type Response = HeloResponse;
    type Error = HeloError;
    type Future = BoxFuture<'static, Result<HeloResponse, HeloError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Always ready: requests queue on the connection's own lock, one on the wire at
        // a time. Bounding that queue is the thermal layer's job, above this service.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: HeloRequest) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.request(req).await })
    }
}

/// The hyper side of [`Exchange`].
struct HyperExchange {
    device: DeviceName,
    authority: String,
    max_body: usize,
    sender: Arc<Mutex<SendRequest<Full<Bytes>>>>,
    closed: Arc<AtomicBool>,
}

impl Exchange for HyperExchange {
    fn exchange(
        &self,
        label: String,
        req: RawRequest,
        limit: Duration,
    ) -> BoxFuture<'static, Result<RawResponse, HeloError>> {
        let sender = self.sender.clone();
        let device = self.device.clone();
        let authority = self.authority.clone();
        let max_body = self.max_body;
        Box::pin(async move {
            let connect_err = |source: BoxError| HeloError::Connect {
                device: device.clone(),
                request: label.clone(),
                source,
            };
            let protocol = |detail: String| HeloError::Protocol {
                device: device.clone(),
                request: label.clone(),
                detail,
            };
            let mut builder = http::Request::builder()
                .method(req.method)
                .uri(req.path_and_query.as_str())
                .header(http::header::HOST, authority.as_str());
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
            let http_req = builder
                .body(body)
                .map_err(|e| protocol(format!("cannot build request: {e}")))?;
            // One request on the wire at a time; the lock is held until the body is read
            // because HTTP/1.1 cannot start the next request before that. The time
            // limit starts once this request has the connection.
            let mut sender = sender.lock().await;
            let timed_out = HeloError::Timeout {
                device: device.clone(),
                request: label.clone(),
                phase: TimeoutPhase::Response,
                after: limit,
            };
            let round_trip = async {
                sender.ready().await.map_err(|e| connect_err(Box::new(e)))?;
                let resp = sender.send_request(http_req).await.map_err(|e| {
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
                    return Err(HeloError::BodyTooLarge {
                        device: device.clone(),
                        request: label.clone(),
                        limit: max_body,
                    });
                }
                let body = Limited::new(body, max_body).collect().await.map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        HeloError::BodyTooLarge {
                            device: device.clone(),
                            request: label.clone(),
                            limit: max_body,
                        }
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
            };
            tokio::time::timeout(limit, round_trip)
                .await
                .unwrap_or(Err(timed_out))
        })
    }
}
