//! The wire of one connection: whose turn it is, one HTTP/1.1 round trip (through
//! [`http1`](super::http1)), and what happens to an answer nobody waits for any more.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, OnceLock, Weak,
    },
    time::Duration,
};

use futures_util::future::BoxFuture;
use tokio::{
    net::TcpStream,
    sync::{Mutex, OwnedMutexGuard},
    time::Instant,
};

use super::{
    http1::{self, WireError},
    on_wire::OnTheWire,
};
use crate::{
    config::DeviceName,
    error::{HeloError, TimeoutPhase},
    exchange::Exchange,
    wire::{RawRequest, RawResponse},
};

/// Holding it is having the wire: the turn of one request.
type Sender = ();

/// One HTTP/1.1 keep-alive connection's wire.
///
/// HTTP/1.1 carries one request at a time, so the wire is behind a fair (FIFO)
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
    /// The largest answer head accepted.
    head_limit: usize,
    queue_timeout: Duration,
    lane: Arc<Mutex<Sender>>,
    /// Read and written only by the request holding the lane (and, while nobody
    /// holds it, probed by [`is_closed`](Self::is_closed)).
    stream: TcpStream,
    /// Set when the device closed the connection, we closed it, or an error left it
    /// in an unknown state.
    broken: AtomicBool,
    /// Why the connection is unusable, for the errors of the requests that find it so.
    reason: OnceLock<String>,
    created: Instant,
    /// Milliseconds after `created` at which a request last got the lane.
    last_turn_ms: AtomicU64,
}

/// What [`Link::new`] needs.
pub(super) struct LinkParts {
    pub(super) device: DeviceName,
    pub(super) authority: String,
    pub(super) max_body: usize,
    pub(super) head_limit: usize,
    pub(super) queue_timeout: Duration,
    pub(super) stream: TcpStream,
}

impl Link {
    pub(super) fn new(parts: LinkParts) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            device: parts.device,
            authority: parts.authority,
            max_body: parts.max_body,
            head_limit: parts.head_limit,
            queue_timeout: parts.queue_timeout,
            lane: Arc::new(Mutex::new(())),
            stream: parts.stream,
            broken: AtomicBool::new(false),
            reason: OnceLock::new(),
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

    /// Whether the connection is unusable. An idle connection (nobody holds the lane)
    /// is probed without blocking: an idle keep-alive socket that is readable was
    /// closed by the device (or the device talks out of turn), so it is closed here
    /// before a request finds out. The probe costs no system call while the reactor
    /// has seen nothing on the socket.
    pub(super) fn is_closed(&self) -> bool {
        if self.broken.load(Ordering::Acquire) {
            return true;
        }
        match self.lane.try_lock() {
            Ok(_idle) => self.probe_idle(),
            Err(_) => false,
        }
    }

    /// Probes the socket of a connection whose lane the caller holds, with no
    /// request on the wire; closes the connection and answers `true` if it is done.
    fn probe_idle(&self) -> bool {
        let mut probe = [0u8; 1];
        match self.stream.try_read(&mut probe) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Ok(0) => {
                self.close("the device closed the connection");
                true
            }
            Ok(_) => {
                self.close("the device sent data nobody asked for");
                true
            }
            Err(e) => {
                self.close(&format!("the connection failed: {e}"));
                true
            }
        }
    }

    /// Marks the connection unusable and closes its socket; the first reason given is
    /// the one later requests are told.
    pub(super) fn close(&self, reason: &str) {
        let _ = self.reason.set(reason.to_string());
        self.broken.store(true, Ordering::Release);
        // Tells the device at once; the descriptor itself goes with the last handle.
        let _ = socket2::SockRef::from(&self.stream).shutdown(std::net::Shutdown::Both);
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
        if self.broken.load(Ordering::Acquire) || self.probe_idle() {
            return Err(self.closed_error(label));
        }
        Ok((guard, at.unwrap_or_else(Instant::now)))
    }

    fn build(&self, label: &str, req: RawRequest) -> Result<Vec<u8>, HeloError> {
        http1::encode(&self.authority, &req).map_err(|e| HeloError::Protocol {
            device: self.device.clone(),
            request: label.to_string(),
            detail: match e {
                WireError::Unsendable(what) => format!("cannot build request: {what}"),
                other => format!("cannot build request: {other:?}"),
            },
        })
    }

    /// Sends the request and reads its answer while holding the lane. A failed round
    /// trip leaves the wire in an unknown state, and an answer that ends the
    /// connection ends it: either closes the connection before the lane is released,
    /// so the next request in line is told so instead of meeting a dead socket.
    async fn round_trip(
        self: Arc<Self>,
        lane: OwnedMutexGuard<Sender>,
        label: String,
        req: Vec<u8>,
    ) -> Result<RawResponse, HeloError> {
        let result = self.send(&label, &req).await;
        match &result {
            Ok(answer) if !answer.reusable => self.close("the device ended the connection"),
            Ok(_) => {}
            Err(e) => self.close(&format!("{label} failed: {e}")),
        }
        drop(lane);
        result.map(|answer| answer.response)
    }

    async fn send(&self, label: &str, req: &[u8]) -> Result<http1::Answer, HeloError> {
        let error = |e: WireError| match e {
            WireError::Io(source) => HeloError::Connect {
                device: self.device.clone(),
                request: label.to_string(),
                source: Box::new(source),
            },
            WireError::Malformed(detail) => HeloError::Protocol {
                device: self.device.clone(),
                request: label.to_string(),
                detail,
            },
            WireError::TooLarge => HeloError::BodyTooLarge {
                device: self.device.clone(),
                request: label.to_string(),
                limit: self.max_body,
            },
            WireError::Unsendable(what) => HeloError::Protocol {
                device: self.device.clone(),
                request: label.to_string(),
                detail: format!("cannot build request: {what}"),
            },
        };
        http1::write_all(&self.stream, req)
            .await
            .map_err(|e| error(WireError::Io(e)))?;
        http1::read_answer(&self.stream, self.head_limit, self.max_body)
            .await
            .map_err(error)
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
            let (lane, started) = link.turn(&label, called).await?;
            let since = started.saturating_duration_since(link.created);
            link.last_turn_ms.store(
                u64::try_from(since.as_millis()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
            let mut on_wire = OnTheWire::new(
                Box::pin(link.clone().round_trip(lane, label.clone(), http_req)),
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
