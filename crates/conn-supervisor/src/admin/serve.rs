//! The admin server's own accept loop (instead of `axum::serve`), so that no client
//! can exhaust it: at most [`AdminLimits::max_connections`] connections are held at
//! once, so the process never runs out of descriptors for its devices; when all are
//! held, a newcomer takes the slot of the connection idle the longest (`slots`), or is
//! closed at once if every connection is busy; a connection that sends no complete
//! request head within [`AdminLimits::header_read_timeout`] (slowloris, or idle
//! keep-alive) is closed, as is one that moves no byte for
//! [`AdminLimits::idle_timeout`]; an accept error (EMFILE) is waited out, never
//! fatal; a TLS handshake is bounded too.

use std::{convert::Infallible, future::Future, io, sync::Arc, time::Duration};

use axum::{body::Body, extract::Request, Router};
use http_body_util::BodyExt;
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
    sync::watch,
    time::Instant,
};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::{
    idle::Idle,
    slots::{Slot, Slots},
};

/// The admin server's bounds. The defaults suit an API used by a few pages,
/// scripts and a Prometheus server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminLimits {
    /// Connections held at once (`admin_max_connections`, default 256); beyond it a
    /// newcomer replaces the connection idle the longest, or is closed if none is idle.
    pub max_connections: usize,
    /// A connection must send a whole request head within this (default 10 s),
    /// counted from its opening or the end of its last answer: slow or idle clients
    /// give their slot back.
    pub header_read_timeout: Duration,
    /// A connection on which no byte moves either way for this long is closed
    /// (default 60 s; the event stream sends a ping every 10 s).
    pub idle_timeout: Duration,
    /// The answer to any request but the event stream must start within this
    /// (default 30 s), else 503.
    pub request_timeout: Duration,
    /// A TLS handshake must complete within this (default 10 s).
    pub tls_handshake_timeout: Duration,
    /// The largest request body accepted (default 16 KiB; the actions take none),
    /// else 413.
    pub max_body_bytes: usize,
}

impl Default for AdminLimits {
    fn default() -> Self {
        Self {
            max_connections: crate::config::DEFAULT_ADMIN_MAX_CONNECTIONS,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            tls_handshake_timeout: Duration::from_secs(10),
            max_body_bytes: 16 * 1024,
        }
    }
}

/// How long to wait after an accept error other than a connection reset, typically
/// EMFILE: a descriptor may be free again by then, and the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How long a newcomer waits for the idle connection it replaces to close.
const REPLACE_WAIT: Duration = Duration::from_secs(1);

/// How often a run of accept errors is logged.
const ACCEPT_ERROR_LOG_EVERY: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` completes; then sends `true` on
/// `closing` (event streams end), lets each connection finish its answer and waits
/// for all of them.
pub(super) async fn run(
    listener: TcpListener,
    app: Router,
    limits: AdminLimits,
    tls: Option<TlsAcceptor>,
    closing: watch::Sender<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let slots = Slots::new(limits.max_connections);
    let limits = Arc::new(limits);
    let mut errors = AcceptErrors::default();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    errors.failed(&e);
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    }
                }
            },
        };
        let Some(slot) = slots.take(REPLACE_WAIT).await else {
            // Every connection is answering a request: this one is closed unanswered.
            tracing::debug!("admin API: every connection busy; closing a new one");
            continue;
        };
        tokio::spawn(connection(
            stream,
            slot,
            app.clone(),
            Arc::clone(&limits),
            tls.clone(),
            closing.subscribe(),
        ));
    }
    drop(listener);
    let _ = closing.send(true);
    // Every connection holds a slot until it ends: all slots back means all ended.
    slots.all_free().await;
    Ok(())
}

/// Errors of one connection that do not concern the listener (as in hyper-util).
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Failing accepts, logged at most every [`ACCEPT_ERROR_LOG_EVERY`] with how many
/// failed since: out of descriptors, the loop fails and retries ten times a second.
#[derive(Default)]
struct AcceptErrors {
    logged_at: Option<Instant>,
    unlogged: u64,
}

impl AcceptErrors {
    fn failed(&mut self, e: &io::Error) {
        let now = Instant::now();
        self.unlogged += 1;
        if self
            .logged_at
            .is_none_or(|at| now.duration_since(at) >= ACCEPT_ERROR_LOG_EVERY)
        {
            tracing::warn!(
                error = %e,
                failures = self.unlogged,
                "admin API: accept failed; retrying every {} ms",
                ACCEPT_BACKOFF.as_millis()
            );
            self.logged_at = Some(now);
            self.unlogged = 0;
        }
    }
}

/// One client connection, holding `slot` until it ends.
async fn connection(
    stream: TcpStream,
    slot: Slot,
    app: Router,
    limits: Arc<AdminLimits>,
    tls: Option<TlsAcceptor>,
    closing: watch::Receiver<bool>,
) {
    let slot = Arc::new(slot);
    let serving = handshake_and_serve(stream, Arc::clone(&slot), app, &limits, tls, closing);
    tokio::pin!(serving);
    loop {
        tokio::select! {
            () = &mut serving => return,
            // A newcomer wants the slot of this idle connection: it is dropped at once,
            // unless a request arrived meanwhile.
            () = slot.kicked() => if !slot.is_busy() {
                tracing::debug!("admin API: idle connection closed for a new one");
                return;
            },
        }
    }
}

async fn handshake_and_serve(
    stream: TcpStream,
    slot: Arc<Slot>,
    app: Router,
    limits: &AdminLimits,
    tls: Option<TlsAcceptor>,
    mut closing: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    match tls {
        None => http(stream, slot, app, limits, closing).await,
        Some(acceptor) => {
            let handshake =
                tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(stream));
            let done = tokio::select! {
                done = handshake => done,
                _ = closing.wait_for(|c| *c) => return,
            };
            match done {
                Ok(Ok(stream)) => http(stream, slot, app, limits, closing).await,
                Ok(Err(e)) => tracing::debug!(error = %e, "admin API: TLS handshake failed"),
                Err(_) => tracing::debug!("admin API: TLS handshake timed out"),
            }
        }
    }
}

/// HTTP/1.1 on `io` until the client leaves, a limit closes it, or the server closes.
async fn http<IO>(
    io: IO,
    slot: Arc<Slot>,
    app: Router,
    limits: &AdminLimits,
    mut closing: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(Idle::new(io, limits.idle_timeout));
    let guard = Arc::clone(&slot);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        // Busy from the request head until the last byte of its answer is written
        // (the guard lives in the answer's body), so it is never taken for a newcomer.
        let busy = guard.busy();
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await.unwrap_or_else(|e| match e {});
            Ok::<_, Infallible>(response.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    let _answering = &busy;
                    frame
                }))
            }))
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        done = conn.as_mut() => {
            if let Err(e) = done {
                tracing::debug!(error = %e, "admin API: connection ended");
            }
            return;
        }
        // A dropped sender means the server is gone: close too.
        _ = closing.wait_for(|c| *c) => {
            // Nothing under way (waiting for a request, or half a head): nothing to
            // finish, and a slow client must not hold the shutdown up.
            if !slot.is_busy() {
                return;
            }
            conn.as_mut().graceful_shutdown();
        }
    }
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "admin API: connection ended");
    }
}
