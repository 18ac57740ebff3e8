use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
};

use helo_transport::{BoxError, Outcome};
use pin_project_lite::pin_project;

use super::Overloaded;
use crate::thermal::ConnThermal;

pin_project! {
    /// The response future of [`Thermal`](super::Thermal).
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Called {
            #[pin]
            fut: F,
            guard: InFlight,
        },
        Overloaded {
            error: Option<Overloaded>,
        },
    }
}

/// One admitted request; released on completion, or on drop if cancelled.
struct InFlight {
    conn: Option<Arc<ConnThermal>>,
}

impl InFlight {
    fn finish(&mut self, outcome: Outcome) {
        if let Some(conn) = self.conn.take() {
            conn.release(Some(outcome));
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.release(None);
        }
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn admitted(fut: F, conn: Arc<ConnThermal>) -> Self {
        Self {
            state: State::Called {
                fut,
                guard: InFlight { conn: Some(conn) },
            },
        }
    }

    pub(crate) fn overloaded(error: Overloaded) -> Self {
        Self {
            state: State::Overloaded { error: Some(error) },
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Called { fut, guard } => {
                let result = ready!(fut.poll(cx)).map_err(Into::into);
                guard.finish(match &result {
                    Ok(_) => Outcome::Success,
                    Err(e) => Outcome::of(e.as_ref()),
                });
                Poll::Ready(result)
            }
            StateProj::Overloaded { error } => Poll::Ready(Err(match error.take() {
                Some(e) => Box::new(e),
                None => "ResponseFuture polled after completion".into(),
            })),
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
