//! Response bodies, including the deliberately broken ones faults need.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

use crate::server::ConnCtl;

/// Time for hyper to flush what was sent before a cut-off body kills the connection.
const FLUSH_PAUSE: Duration = Duration::from_millis(10);
const PAD_CHUNK: usize = 16 * 1024;
static PAD: [u8; PAD_CHUNK] = [b'x'; PAD_CHUNK];

/// A response body.
#[derive(Debug)]
pub(crate) enum SimBody {
    /// A complete body.
    Full(Option<Bytes>),
    /// Sends `data`, then kills the connection (with RST when `rst`). Its size is unknown
    /// to hyper so that a hand-written `Content-Length` header is what goes on the wire.
    CutOff {
        data: Option<Bytes>,
        ctl: Arc<ConnCtl>,
        rst: bool,
        pause: Option<Pin<Box<Sleep>>>,
    },
    /// `head`, `remaining` padding bytes, `tail`: a large body without a large buffer.
    Padding {
        head: Option<Bytes>,
        remaining: u64,
        tail: Option<Bytes>,
    },
}

impl SimBody {
    pub(crate) fn full(data: Bytes) -> Self {
        SimBody::Full(Some(data))
    }
}

impl Body for SimBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            SimBody::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            SimBody::CutOff {
                data,
                ctl,
                rst,
                pause,
            } => {
                if let Some(d) = data.take() {
                    return Poll::Ready(Some(Ok(Frame::data(d))));
                }
                let pause = pause.get_or_insert_with(|| Box::pin(tokio::time::sleep(FLUSH_PAUSE)));
                ready!(pause.as_mut().poll(cx));
                ctl.kill(*rst);
                // The connection task drops the connection on the kill signal.
                Poll::Pending
            }
            SimBody::Padding {
                head,
                remaining,
                tail,
            } => {
                if let Some(h) = head.take() {
                    return Poll::Ready(Some(Ok(Frame::data(h))));
                }
                if *remaining > 0 {
                    let n = usize::try_from(*remaining).map_or(PAD_CHUNK, |r| r.min(PAD_CHUNK));
                    *remaining -= n as u64;
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&PAD[..n])))));
                }
                Poll::Ready(tail.take().map(|t| Ok(Frame::data(t))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            SimBody::Full(d) => d.is_none(),
            SimBody::CutOff { .. } => false,
            SimBody::Padding {
                head,
                remaining,
                tail,
            } => head.is_none() && *remaining == 0 && tail.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            SimBody::Full(d) => SizeHint::with_exact(d.as_ref().map_or(0, |d| d.len() as u64)),
            SimBody::CutOff { .. } => SizeHint::default(),
            SimBody::Padding {
                head,
                remaining,
                tail,
            } => {
                let len = |b: &Option<Bytes>| b.as_ref().map_or(0, |b| b.len() as u64);
                SizeHint::with_exact(len(head) + *remaining + len(tail))
            }
        }
    }
}
