//! Connection slots: at most `max` admin connections at once. When all are taken, a
//! new client takes the slot of the connection that has been idle the longest (one
//! that has not sent a request yet, or waits between requests), as nginx reuses its
//! idle keep-alive connections: a flood of connections that say nothing then cannot
//! keep `/healthz` or an operator out, while a request under way or an open event
//! stream is never cut for a newcomer.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard, PoisonError,
    },
    time::Duration,
};

use tokio::{
    sync::{Notify, OwnedSemaphorePermit, Semaphore},
    time::Instant,
};

/// The slots of one server.
#[derive(Debug)]
pub(super) struct Slots {
    free: Arc<Semaphore>,
    max: usize,
    held: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
}

/// What the slots know of one connection.
#[derive(Debug, Default)]
pub(super) struct Conn {
    state: Mutex<ConnState>,
    kick: Notify,
}

#[derive(Debug, Default)]
struct ConnState {
    /// Requests whose answer is not yet fully sent.
    in_flight: usize,
    /// Since when nothing has been under way; `None` while a request is.
    idle_since: Option<Instant>,
    /// Told to give its slot up.
    kicked: bool,
}

/// A taken slot; given back when dropped.
#[derive(Debug)]
pub(super) struct Slot {
    slots: Arc<Slots>,
    id: u64,
    conn: Arc<Conn>,
    _permit: OwnedSemaphorePermit,
}

/// A request under way on a connection: while one lives, the connection is not idle.
#[derive(Debug)]
pub(super) struct Busy(Arc<Conn>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Slots {
    pub(super) fn new(max: usize) -> Arc<Self> {
        let max = max.max(1);
        Arc::new(Self {
            free: Arc::new(Semaphore::new(max)),
            max,
            held: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        })
    }

    /// A free slot, if there is one.
    pub(super) fn try_take(self: &Arc<Self>) -> Option<Slot> {
        let permit = Arc::clone(&self.free).try_acquire_owned().ok()?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            state: Mutex::new(ConnState {
                in_flight: 0,
                idle_since: Some(Instant::now()),
                kicked: false,
            }),
            kick: Notify::new(),
        });
        lock(&self.held).insert(id, Arc::clone(&conn));
        Some(Slot {
            slots: Arc::clone(self),
            id,
            conn,
            _permit: permit,
        })
    }

    /// A slot: a free one, else the one of the connection idle the longest, which is
    /// told to close; `None` when every connection is busy, or the one told does not
    /// close within `wait`.
    pub(super) async fn take(self: &Arc<Self>, wait: Duration) -> Option<Slot> {
        if let Some(slot) = self.try_take() {
            return Some(slot);
        }
        if !self.kick_longest_idle() {
            return None;
        }
        let permit = tokio::time::timeout(wait, Arc::clone(&self.free).acquire_owned()).await;
        // Given back at once: try_take registers the connection.
        drop(permit);
        self.try_take()
    }

    /// Tells the connection idle the longest to close; `false` if none is idle.
    fn kick_longest_idle(&self) -> bool {
        let held = lock(&self.held);
        let longest = held
            .values()
            .filter_map(|c| {
                let state = lock(&c.state);
                (!state.kicked)
                    .then_some(state.idle_since)
                    .flatten()
                    .map(|since| (since, c))
            })
            .min_by_key(|(since, _)| *since);
        match longest {
            Some((_, conn)) => {
                lock(&conn.state).kicked = true;
                conn.kick.notify_one();
                true
            }
            None => false,
        }
    }

    /// Waits until every slot is free again: every connection has ended.
    pub(super) async fn all_free(&self) {
        let all = u32::try_from(self.max).unwrap_or(u32::MAX);
        let _ = self.free.acquire_many(all).await;
    }
}

impl Slot {
    /// Marks a request under way until the returned guard drops.
    pub(super) fn busy(&self) -> Busy {
        let mut state = lock(&self.conn.state);
        state.in_flight += 1;
        state.idle_since = None;
        // A request that arrives just after the connection was told to give way wins:
        // the connection ignores the kick while busy, and may be chosen again later.
        state.kicked = false;
        Busy(Arc::clone(&self.conn))
    }

    /// Whether a request is under way on the connection.
    pub(super) fn is_busy(&self) -> bool {
        lock(&self.conn.state).in_flight > 0
    }

    /// Completes when the slot is wanted by a newcomer: the connection must close.
    pub(super) async fn kicked(&self) {
        self.conn.kick.notified().await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        lock(&self.slots.held).remove(&self.id);
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut state = lock(&self.0.state);
        state.in_flight = state.in_flight.saturating_sub(1);
        if state.in_flight == 0 {
            state.idle_since = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_newcomer_takes_the_longest_idle_slot_never_a_busy_one() {
        let slots = Slots::new(3);
        let first = slots.try_take().unwrap_or_else(|| panic!("a free slot"));
        tokio::time::advance(Duration::from_secs(1)).await;
        let second = slots.try_take().unwrap_or_else(|| panic!("a free slot"));
        tokio::time::advance(Duration::from_secs(1)).await;
        let third = slots.try_take().unwrap_or_else(|| panic!("a free slot"));
        assert!(slots.try_take().is_none(), "all three taken");

        // The first is busy: the second, idle the longest of the others, gives way.
        let busy = first.busy();
        tokio::time::advance(Duration::from_secs(1)).await;
        let newcomer = tokio::spawn({
            let slots = Arc::clone(&slots);
            async move { slots.take(Duration::from_secs(1)).await }
        });
        tokio::time::timeout(Duration::from_secs(1), second.kicked())
            .await
            .unwrap_or_else(|_| panic!("the second connection was told to close"));
        drop(second);
        let fourth = newcomer
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("the newcomer got the second's slot"));

        // Idle again after its answer: now the first has been idle for the shortest
        // time, so the third gives way next.
        tokio::time::advance(Duration::from_secs(1)).await;
        drop(busy);
        let next = tokio::spawn({
            let slots = Arc::clone(&slots);
            async move { slots.take(Duration::from_secs(1)).await }
        });
        tokio::time::timeout(Duration::from_secs(1), third.kicked())
            .await
            .unwrap_or_else(|_| panic!("the third connection was told to close"));
        drop(third);
        assert!(next.await.unwrap_or_else(|e| panic!("{e}")).is_some());
        drop(fourth);
    }

    #[tokio::test(start_paused = true)]
    async fn when_every_connection_is_busy_the_newcomer_is_refused() {
        let slots = Slots::new(2);
        let a = slots.try_take().unwrap_or_else(|| panic!("a free slot"));
        let b = slots.try_take().unwrap_or_else(|| panic!("a free slot"));
        let (_busy_a, _busy_b) = (a.busy(), b.busy());
        assert!(slots.take(Duration::from_secs(1)).await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_arrives_after_the_kick_keeps_the_slot_and_it_can_be_kicked_again() {
        let slots = Slots::new(1);
        let a = slots.try_take().unwrap_or_else(|| panic!("a free slot"));
        let newcomer = tokio::spawn({
            let slots = Arc::clone(&slots);
            async move { slots.take(Duration::from_secs(1)).await }
        });
        a.kicked().await;
        // The request head arrived first: the connection keeps serving.
        let busy = a.busy();
        assert!(a.is_busy());
        assert!(newcomer.await.unwrap_or_else(|e| panic!("{e}")).is_none());
        drop(busy);
        // Idle again: the next newcomer may take its slot.
        let next = tokio::spawn({
            let slots = Arc::clone(&slots);
            async move { slots.take(Duration::from_secs(1)).await }
        });
        tokio::time::timeout(Duration::from_secs(1), a.kicked())
            .await
            .unwrap_or_else(|_| panic!("told again"));
        drop(a);
        assert!(next.await.unwrap_or_else(|e| panic!("{e}")).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_does_not_close_when_told_keeps_its_slot() {
        let slots = Slots::new(1);
        let _stuck = slots.try_take().unwrap_or_else(|| panic!("a free slot"));
        assert!(slots.take(Duration::from_millis(500)).await.is_none());
    }
}
