//! One keep-alive HTTP/1.1 connection to one device, as a tower `Service`.

mod clock;
pub(crate) mod http1;
mod link;
mod on_wire;

use std::{
    fmt,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    task::{ready, Context, Poll},
    time::Duration,
};

use futures_util::future::BoxFuture;
use tokio::{
    net::TcpStream,
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Instant,
};
use tokio_util::sync::PollSemaphore;

pub use self::clock::RequestClock;
use self::link::{Link, LinkParts};
use crate::{
    config::{Device, DeviceName},
    error::{HeloError, TimeoutPhase},
    request::{HeloRequest, HeloResponse},
    session,
    stats::{ConnectionStats, StatsSnapshot},
};

/// The largest response head accepted (a HELO answer's is about 300 bytes).
const HEAD_LIMIT: usize = 8192;

/// A process-wide unique connection number, used in logs (metric labels use the
/// pool's stable slot instead).
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
/// Cloning is cheap and gives another handle to the same connection. HTTP/1.1
/// carries one request at a time, so requests from all handles take turns on the
/// wire, first come first served, in the connection's queue:
///
/// * **Bounded, and readiness says so.** At most
///   [`max_queued`](crate::DeviceConfig::max_queued) requests are in the queue or on
///   the wire. `poll_ready` is `Ready` once a place in the queue is this handle's, and
///   `Pending` while the queue is full, so a layer above that cannot wait (the thermal
///   layer) sheds instead of queueing without bound.
/// * **Two deadlines.** Waiting for the turn is bounded by
///   [`queue_timeout`](crate::DeviceConfig::queue_timeout)
///   ([`HeloError::QueueTimeout`]); the device's turn, from sending to the end of the
///   answer, by [`request_timeout`](crate::DeviceConfig::request_timeout)
///   ([`HeloError::Timeout`]). The queue never counts against the device.
/// * **A timeout does not break the queue.** An answer that comes after its
///   request's deadline (or after the caller dropped the request) is read to its end
///   in the background, keeping the wire, and the next request goes out on a clean
///   connection. If no answer comes within another request deadline, the connection
///   is closed; requests still in the queue then fail with a [`HeloError::Connect`]
///   that names them and says why, and [`is_closed`](Self::is_closed) tells the pool
///   to replace it.
pub struct HeloConnection {
    inner: Arc<Inner>,
    /// Waits for a place when the queue is full. Made on first need: most handles
    /// (the clones made for one call) never wait.
    waiter: Option<PollSemaphore>,
    /// The place in the queue `poll_ready` took for the next `call`.
    permit: Option<OwnedSemaphorePermit>,
}

struct Inner {
    id: ConnectionId,
    device: Device,
    link: Arc<Link>,
    /// One permit per place in the queue (waiting or on the wire).
    queue: Arc<Semaphore>,
    stats: ConnectionStats,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // No handle is left: nobody can send on it again, and a late answer being
        // read in the background is not worth keeping the socket for.
        self.link.close("connection dropped");
    }
}

impl Clone for HeloConnection {
    fn clone(&self) -> Self {
        Self::from_inner(self.inner.clone())
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
    fn from_inner(inner: Arc<Inner>) -> Self {
        Self {
            inner,
            waiter: None,
            permit: None,
        }
    }

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
        // No HTTP library connection, driver task or buffer is kept: the link
        // writes and reads the socket itself, one request at a time, and holds
        // nothing between requests (see `http1`).
        let link = Link::new(LinkParts {
            device: name,
            authority: cfg.authority(),
            max_body: cfg.max_body_bytes(),
            head_limit: HEAD_LIMIT,
            queue_timeout: cfg.queue_timeout(),
            stream,
        });
        let conn = Self::from_inner(Arc::new(Inner {
            id: ConnectionId::next(),
            device: device.clone(),
            link,
            queue: Arc::new(Semaphore::new(cfg.max_queued())),
            stats: ConnectionStats::default(),
        }));
        if cfg.password().is_some() && device.session().0.is_none() {
            conn.request(HeloRequest::Login).await?;
        }
        Ok(conn)
    }

    /// Sends one request and reads its answer, logging in again once if the session
    /// expired. Waits for a place in the queue if it is full (the `Service` way,
    /// `poll_ready`, lets a caller shed instead).
    pub async fn request(&self, req: HeloRequest) -> Result<HeloResponse, HeloError> {
        let _place = self.inner.queue.clone().acquire_owned().await;
        perform(&self.inner, req).await
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

    /// Whether the connection is unusable: closed by the device, broken by an error
    /// that left it in an unknown state, or closed because an answer never came.
    pub fn is_closed(&self) -> bool {
        self.inner.link.is_closed()
    }

    /// Marks the connection unusable and closes its socket.
    pub fn close(&self) {
        self.inner.link.close("closed by its owner");
    }

    /// The connection's counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// When the connection was opened.
    pub fn created_at(&self) -> Instant {
        self.inner.link.created()
    }

    /// How long since a request last got its turn on the wire (or since the
    /// connection opened).
    pub fn idle_for(&self) -> Duration {
        let link = &self.inner.link;
        link.created().elapsed().saturating_sub(link.last_turn())
    }
}

/// One request, its place in the queue already taken.
async fn perform(inner: &Inner, req: HeloRequest) -> Result<HeloResponse, HeloError> {
    if inner.link.is_closed() {
        return Err(inner.link.closed_error(&req.to_string()));
    }
    inner.stats.started();
    let result = session::perform(&inner.device, &*inner.link, &req, &inner.stats).await;
    inner.stats.finished(result.is_ok());
    result
}

impl tower::Service<HeloRequest> for HeloConnection {
    type Response = HeloResponse;
    type Error = HeloError;
    type Future = BoxFuture<'static, Result<HeloResponse, HeloError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Ready means "a place in the queue is yours", not "the wire is free": the
        // requests of one health check (and of every other handle) must each get their
        // turn, in order, so the wait for the wire is the queue's, with its own
        // deadline. A full queue is Pending, so the layers above see back-pressure.
        // A closed connection is Ready: `call` then fails at once with an error that
        // names the request, which `poll_ready` does not know.
        if self.permit.is_some() || self.inner.link.is_closed() {
            return Poll::Ready(Ok(()));
        }
        if let Ok(permit) = self.inner.queue.clone().try_acquire_owned() {
            self.permit = Some(permit);
            return Poll::Ready(Ok(()));
        }
        let queue = &self.inner.queue;
        let waiter = self
            .waiter
            .get_or_insert_with(|| PollSemaphore::new(queue.clone()));
        // The semaphore is never closed, so `None` cannot happen; were it to, `call`
        // would wait for its place.
        self.permit = ready!(waiter.poll_acquire(cx));
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: HeloRequest) -> Self::Future {
        let place = self.permit.take();
        let inner = self.inner.clone();
        // The instant an outer layer called the request at: if the wire is free on
        // the first poll, the request deadline starts from it, and the request reads
        // no clock of its own.
        let called = RequestClock::called();
        Box::pin(FirstPoll {
            called,
            fut: async move {
                // A caller that skipped `poll_ready` waits for its place here.
                let _place = match place {
                    Some(p) => Some(p),
                    None => inner.queue.clone().acquire_owned().await.ok(),
                };
                perform(&inner, req).await
            },
        })
    }
}

pin_project_lite::pin_project! {
    /// Hands the caller's instant to the first poll of a request, where the wire is
    /// taken if it is free (see [`RequestClock`]).
    struct FirstPoll<F> {
        called: Option<Instant>,
        #[pin]
        fut: F,
    }
}

impl<F: std::future::Future> std::future::Future for FirstPoll<F> {
    type Output = F::Output;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        match this.called.take() {
            Some(at) => RequestClock::calling(at, || this.fut.poll(cx)),
            None => this.fut.poll(cx),
        }
    }
}
