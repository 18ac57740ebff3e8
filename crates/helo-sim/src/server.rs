//! The device task (listener, timer, reboot downtime) and per-connection serving.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::device::DeviceInner;
use crate::hostile::{self, RawAnswer};
use crate::protocol;
use crate::state::{Down, DownMode};

/// Per-connection read buffer limit; requests are a few hundred bytes.
const MAX_BUF: usize = 64 * 1024;
const REBIND_RETRY: Duration = Duration::from_millis(100);
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(20);

/// Lets a request (or its body) abort its own connection, or take it over.
#[derive(Debug, Default)]
pub(crate) struct ConnCtl {
    kill: Notify,
    rst: AtomicBool,
    hijack: Notify,
    raw: Mutex<Option<RawAnswer>>,
}

impl ConnCtl {
    /// Has the connection task take the socket back from hyper and write `answer`
    /// instead of hyper's response.
    pub(crate) fn answer_raw(&self, answer: RawAnswer) {
        *self.raw.lock().unwrap_or_else(|e| e.into_inner()) = Some(answer);
        self.hijack.notify_one();
    }

    fn take_raw(&self) -> Option<RawAnswer> {
        self.raw.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Drops the connection; with `rst` the peer sees a reset instead of a close.
    pub(crate) fn kill(&self, rst: bool) {
        if rst {
            self.rst.store(true, Ordering::Relaxed);
        }
        self.kill.notify_one();
    }
}

/// The TCP stream, which resets instead of closing when its connection was killed so.
struct SimStream {
    tcp: TcpStream,
    ctl: Arc<ConnCtl>,
}

impl Drop for SimStream {
    fn drop(&mut self) {
        if self.ctl.rst.load(Ordering::Relaxed) {
            let _ = self.tcp.set_zero_linger();
        }
    }
}

impl AsyncRead for SimStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// The one task per device: accepts connections, sleeps until the state next changes
/// on its own (so event waiters hear of it), and drops off the network while down.
pub(crate) async fn run_device(inner: Arc<DeviceInner>, listener: TcpListener) {
    let mut listener = Some(listener);
    let mut conns: JoinSet<()> = JoinSet::new();
    let mut shutdown = inner.shutdown.subscribe();
    let mut down = inner.down.subscribe();
    let mut rebind_at: Option<Instant> = None;
    loop {
        if *shutdown.borrow_and_update() {
            break;
        }
        let deadline = inner.tick();
        let now = Instant::now();
        let refuse_until = match *down.borrow_and_update() {
            Some(Down {
                until,
                mode: DownMode::Refuse,
            }) if until > now => Some(until),
            _ => None,
        };
        match (refuse_until, listener.is_some()) {
            (Some(_), true) => {
                listener = None;
                conns.abort_all();
            }
            (None, false) if rebind_at.is_none_or(|t| t <= now) => {
                match TcpListener::bind(inner.addr).await {
                    Ok(l) => {
                        listener = Some(l);
                        rebind_at = None;
                    }
                    Err(e) => {
                        warn!(addr = %inner.addr, error = %e, "cannot listen again; retrying");
                        rebind_at = Some(now + REBIND_RETRY);
                    }
                }
            }
            _ => {}
        }
        let retry = if listener.is_none() { rebind_at } else { None };
        let wake_at = [deadline, refuse_until, retry].into_iter().flatten().min();
        tokio::select! {
            _ = shutdown.changed() => {}
            _ = down.changed() => {}
            _ = inner.wake.notified() => {}
            _ = sleep_until(wake_at) => {}
            accepted = accept(listener.as_ref()) => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(serve_connection(Arc::clone(&inner), stream));
                }
                Err(e) => {
                    // Out of file descriptors, typically: pause rather than spin.
                    debug!(addr = %inner.addr, error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    conns.shutdown().await;
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn accept(listener: Option<&TcpListener>) -> io::Result<(TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

async fn serve_connection(inner: Arc<DeviceInner>, tcp: TcpStream) {
    // Partial answers (the reset fault) must leave at once, not wait for Nagle.
    let _ = tcp.set_nodelay(true);
    let ctl = Arc::new(ConnCtl::default());
    let io = TokioIo::new(SimStream {
        tcp,
        ctl: Arc::clone(&ctl),
    });
    let svc_ctl = Arc::clone(&ctl);
    let service =
        service_fn(move |req| protocol::handle(Arc::clone(&inner), Arc::clone(&svc_ctl), req));
    let mut conn = http1::Builder::new()
        .max_buf_size(MAX_BUF)
        .serve_connection(io, service);
    let raw = tokio::select! {
        res = &mut conn => {
            if let Err(e) = res {
                debug!(error = %e, "connection ended with an error");
            }
            None
        }
        _ = ctl.kill.notified() => None,
        _ = ctl.hijack.notified() => ctl.take_raw(),
    };
    if let Some(answer) = raw {
        // hyper has read the request and written nothing for it: the socket is ours.
        let stream = conn.into_parts().io.into_inner();
        hostile::send(stream, answer).await;
    }
}
