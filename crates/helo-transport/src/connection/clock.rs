//! The instants the layers of one request share, so that a request that need not wait
//! reads the clock twice: once when the outermost timing layer calls it, once when
//! the innermost one sees it finish.
//!
//! A tower stack builds its futures in one synchronous `call` chain and polls them in
//! one synchronous `poll` chain, on one thread. So an outer layer can hand an instant
//! to the layers inside it through a thread-local that is set only for the duration of
//! that chain, and read back what they published in the same way. Whatever is not
//! nested that way (a layer used alone, a future polled elsewhere) finds nothing and
//! reads the clock itself: correct in every stack, cheap in ours.

use std::cell::Cell;

use tokio::time::Instant;

thread_local! {
    /// The instant the request now being called (or first polled) was called at.
    static CALLED: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The instant an inner layer saw the request now being polled finish.
    static FINISHED: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The clock of one request through a stack: see the [module docs](self).
///
/// ```
/// use helo_transport::RequestClock;
/// use tokio::time::Instant;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let start = Instant::now();
/// // An outer layer calls the inner ones with its instant ...
/// let seen = RequestClock::calling(start, || RequestClock::called_at());
/// assert_eq!(seen, start);
/// // ... and reads back when an inner one saw the request finish.
/// let (_, finished) = RequestClock::polling(|| RequestClock::finish_now());
/// assert!(finished.is_some());
/// // Outside such a call, there is nothing to share.
/// assert_eq!(RequestClock::called(), None);
/// # }
/// ```
#[derive(Debug)]
pub struct RequestClock(());

impl RequestClock {
    /// Runs `call` (the inner layers' `call`, or a first poll) with `at` as the
    /// instant the request was called; the previous value is restored after.
    pub fn calling<R>(at: Instant, call: impl FnOnce() -> R) -> R {
        let before = CALLED.replace(Some(at));
        let out = call();
        CALLED.set(before);
        out
    }

    /// The instant an outer layer called the request at, if one is calling it now.
    pub fn called() -> Option<Instant> {
        CALLED.get()
    }

    /// The instant an outer layer called the request at, or else the clock.
    pub fn called_at() -> Instant {
        CALLED.get().unwrap_or_else(Instant::now)
    }

    /// Runs `poll` (the inner layers' poll) and answers, with its result, the instant
    /// an inner layer published with [`finish_now`](Self::finish_now) during it.
    pub fn polling<R>(poll: impl FnOnce() -> R) -> (R, Option<Instant>) {
        let before = FINISHED.replace(None);
        let out = poll();
        let finished = FINISHED.replace(before);
        (out, finished)
    }

    /// Reads the clock as a request finished, and publishes the instant to the layer
    /// polling this one (see [`polling`](Self::polling)).
    pub fn finish_now() -> Instant {
        let now = Instant::now();
        FINISHED.set(Some(now));
        now
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn instants_are_shared_only_inside_the_chain() {
        let t0 = Instant::now();
        tokio::time::advance(Duration::from_secs(5)).await;
        // Nested calls see the innermost caller's instant; the outer one is restored.
        RequestClock::calling(t0, || {
            assert_eq!(RequestClock::called(), Some(t0));
            let t1 = t0 + Duration::from_secs(1);
            RequestClock::calling(t1, || assert_eq!(RequestClock::called_at(), t1));
            assert_eq!(RequestClock::called(), Some(t0));
        });
        assert_eq!(RequestClock::called(), None);
        assert_eq!(RequestClock::called_at(), t0 + Duration::from_secs(5));

        // A finish published outside a poll chain is never read by a later one.
        RequestClock::finish_now();
        let ((), seen) = RequestClock::polling(|| {});
        assert_eq!(seen, None, "stale finish");
        let (at, seen) = RequestClock::polling(RequestClock::finish_now);
        assert_eq!(seen, Some(at));
    }
}
