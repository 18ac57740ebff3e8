//! An in-memory [`CoordinationStore`] with etcd's semantics (leases that expire on the
//! store's clock, revisions, atomic create and delete, prefix watches from a revision)
//! and faults a test controls per client: unreachable, hung (like a `SIGSTOP`ped
//! server) and latency. Time is tokio's, so tests run on the paused clock.

use std::{
    collections::{BTreeMap, VecDeque},
    fmt,
    sync::{Arc, Mutex, MutexGuard, Weak},
    time::Duration,
};

use tokio::{
    sync::{mpsc, watch, Notify},
    time::Instant,
};

use crate::{
    error::ClusterError,
    store::{
        CoordinationStore, CreateOutcome, KeyValue, Lease, LeaseId, Snapshot, StoreFuture,
        WatchEvent, WatchStream,
    },
};

/// Events kept for watches that start at an older revision; older ones are "compacted".
const HISTORY: usize = 4096;
/// Batches a watcher may fall behind before it is cancelled (and must list again).
const WATCH_BUFFER: usize = 1024;

/// The store itself (the "server"). Cheap to clone; every clone is the same store.
/// Talk to it through [`MemoryStore::client`]. Needs a tokio runtime: a task expires
/// leases on time.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

/// One node's connection to a [`MemoryStore`], with its own faults.
#[derive(Clone)]
pub struct MemoryClient {
    store: MemoryStore,
    link: Arc<watch::Sender<Link>>,
}

struct Inner {
    state: Mutex<State>,
    wake: Arc<Notify>,
}

#[derive(Default)]
struct State {
    revision: i64,
    next_lease: i64,
    leases: BTreeMap<LeaseId, LeaseEntry>,
    kv: BTreeMap<String, KeyValue>,
    history: VecDeque<WatchEvent>,
    watchers: Vec<Watcher>,
}

struct LeaseEntry {
    ttl: Duration,
    expires_at: Instant,
}

struct Watcher {
    prefix: String,
    tx: mpsc::Sender<Vec<WatchEvent>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Link {
    mode: Mode,
    latency: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Up,
    Down,
    Hung,
}

// === impl MemoryStore ===

impl MemoryStore {
    /// A new, empty store; must be called inside a tokio runtime.
    pub fn new() -> Self {
        let wake = Arc::new(Notify::new());
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                next_lease: 0x7000,
                ..State::default()
            }),
            wake: wake.clone(),
        });
        tokio::spawn(reap(Arc::downgrade(&inner), wake));
        Self { inner }
    }

    /// A new connection to this store, up and without latency.
    pub fn client(&self) -> MemoryClient {
        MemoryClient {
            store: self.clone(),
            link: Arc::new(watch::Sender::new(Link {
                mode: Mode::Up,
                latency: Duration::ZERO,
            })),
        }
    }

    /// The key's current value, if any.
    pub fn get(&self, key: &str) -> Option<KeyValue> {
        self.lock().kv.get(key).cloned()
    }

    /// Every key under `prefix`.
    pub fn list(&self, prefix: &str) -> Vec<KeyValue> {
        self.lock().list(prefix)
    }

    /// When `lease` expires unless renewed, or `None` if it is gone.
    pub fn lease_expiry(&self, lease: LeaseId) -> Option<Instant> {
        self.lock().leases.get(&lease).map(|l| l.expires_at)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        let mut state = self
            .inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Every operation sees expiry up to now, even if the reaper has not run yet.
        state.expire(Instant::now());
        state
    }

    fn changed(&self) {
        self.inner.wake.notify_one();
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("MemoryStore")
            .field("revision", &state.revision)
            .field("leases", &state.leases.len())
            .field("keys", &state.kv.len())
            .finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Lets the reaper see that the store is gone.
        self.wake.notify_one();
    }
}

/// Expires leases when they are due, so watchers see deletions without any request.
async fn reap(inner: Weak<Inner>, wake: Arc<Notify>) {
    loop {
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let next = {
            let Some(inner) = inner.upgrade() else { return };
            let mut state = inner
                .state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            state.expire(Instant::now());
            state.leases.values().map(|l| l.expires_at).min()
        };
        match next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = &mut notified => {}
                }
            }
            None => notified.await,
        }
    }
}

// === impl State ===

impl State {
    fn expire(&mut self, now: Instant) {
        let due: Vec<LeaseId> = self
            .leases
            .iter()
            .filter(|(_, l)| l.expires_at <= now)
            .map(|(id, _)| *id)
            .collect();
        for lease in due {
            self.revoke(lease);
        }
    }

    /// Like etcd: the lease and all its keys go in one revision.
    fn revoke(&mut self, lease: LeaseId) -> bool {
        if self.leases.remove(&lease).is_none() {
            return false;
        }
        let keys: Vec<String> = self
            .kv
            .iter()
            .filter(|(_, kv)| kv.lease == lease)
            .map(|(k, _)| k.clone())
            .collect();
        if keys.is_empty() {
            return true;
        }
        self.revision += 1;
        let revision = self.revision;
        let events = keys
            .into_iter()
            .map(|key| {
                self.kv.remove(&key);
                WatchEvent::Delete { key, revision }
            })
            .collect();
        self.emit(events);
        true
    }

    fn put(&mut self, key: &str, value: &str, lease: LeaseId) -> Result<i64, ClusterError> {
        if lease != LeaseId(0) && !self.leases.contains_key(&lease) {
            return Err(ClusterError::store("put", "requested lease not found"));
        }
        self.revision += 1;
        let kv = KeyValue {
            key: key.to_owned(),
            value: value.to_owned(),
            lease,
            mod_revision: self.revision,
        };
        self.kv.insert(key.to_owned(), kv.clone());
        self.emit(vec![WatchEvent::Put(kv)]);
        Ok(self.revision)
    }

    fn delete(&mut self, key: &str) -> i64 {
        self.kv.remove(key);
        self.revision += 1;
        let revision = self.revision;
        self.emit(vec![WatchEvent::Delete {
            key: key.to_owned(),
            revision,
        }]);
        revision
    }

    fn list(&self, prefix: &str) -> Vec<KeyValue> {
        self.kv
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, kv)| kv.clone())
            .collect()
    }

    fn emit(&mut self, events: Vec<WatchEvent>) {
        for event in &events {
            if self.history.len() == HISTORY {
                self.history.pop_front();
            }
            self.history.push_back(event.clone());
        }
        // A watcher that cannot keep up is cancelled, as etcd does; never an unbounded queue.
        self.watchers.retain(|w| {
            let batch: Vec<WatchEvent> = events
                .iter()
                .filter(|e| key_of(e).starts_with(&w.prefix))
                .cloned()
                .collect();
            batch.is_empty() || w.tx.try_send(batch).is_ok()
        });
    }

    fn watch(
        &mut self,
        prefix: &str,
        from_revision: i64,
    ) -> Result<mpsc::Receiver<Vec<WatchEvent>>, ClusterError> {
        // As in etcd, revision 0 (or less) means "from now on".
        let from_revision = if from_revision <= 0 {
            self.revision + 1
        } else {
            from_revision
        };
        let oldest = self.history.front().map_or(self.revision + 1, revision_of);
        if from_revision <= self.revision && from_revision < oldest {
            return Err(ClusterError::store(
                "watch",
                format!("required revision {from_revision} has been compacted"),
            ));
        }
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let past: Vec<WatchEvent> = self
            .history
            .iter()
            .filter(|e| revision_of(e) >= from_revision && key_of(e).starts_with(prefix))
            .cloned()
            .collect();
        if !past.is_empty() && tx.try_send(past).is_err() {
            return Err(ClusterError::store("watch", "too far behind"));
        }
        self.watchers.push(Watcher {
            prefix: prefix.to_owned(),
            tx,
        });
        Ok(rx)
    }
}

fn key_of(event: &WatchEvent) -> &str {
    match event {
        WatchEvent::Put(kv) => &kv.key,
        WatchEvent::Delete { key, .. } => key,
    }
}

fn revision_of(event: &WatchEvent) -> i64 {
    match event {
        WatchEvent::Put(kv) => kv.mod_revision,
        WatchEvent::Delete { revision, .. } => *revision,
    }
}

// === impl MemoryClient ===

impl MemoryClient {
    /// The store this client talks to.
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    /// Requests go through again (hung ones proceed).
    pub fn set_up(&self) {
        self.link.send_modify(|l| l.mode = Mode::Up);
    }

    /// Requests fail at once, like a refused connection; open watches end with an error.
    pub fn set_down(&self) {
        self.link.send_modify(|l| l.mode = Mode::Down);
    }

    /// Requests and watch events wait until [`set_up`](Self::set_up), like a server
    /// stopped with `SIGSTOP`. The store's clock goes on: leases still expire.
    pub fn set_hung(&self) {
        self.link.send_modify(|l| l.mode = Mode::Hung);
    }

    /// Each request waits `latency` on its way to the store and again on its way back.
    pub fn set_latency(&self, latency: Duration) {
        self.link.send_modify(|l| l.latency = latency);
    }

    /// One leg of a round trip: waits out latency and hangs; fails if the link is down.
    async fn travel(&self, op: &'static str) -> Result<(), ClusterError> {
        let mut link = self.link.subscribe();
        loop {
            let now = *link.borrow_and_update();
            match now.mode {
                Mode::Down => return Err(ClusterError::store(op, "memory store unreachable")),
                Mode::Hung => {
                    // The sender lives in `self`, so this cannot end.
                    let _ = link.changed().await;
                }
                Mode::Up if now.latency.is_zero() => return Ok(()),
                Mode::Up => {
                    tokio::time::sleep(now.latency).await;
                    // A link that went down while the message travelled loses it.
                    if self.link.borrow().mode == Mode::Up {
                        return Ok(());
                    }
                }
            }
        }
    }

    fn call<T: Send + 'static>(
        &self,
        op: &'static str,
        handle: impl FnOnce(&mut State) -> Result<T, ClusterError> + Send + 'static,
    ) -> StoreFuture<'static, T> {
        let this = self.clone();
        Box::pin(async move {
            this.travel(op).await?;
            let answer = {
                let mut state = this.store.lock();
                handle(&mut state)
            };
            this.store.changed();
            this.travel(op).await?;
            answer
        })
    }
}

impl fmt::Debug for MemoryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryClient")
            .field("link", &*self.link.borrow())
            .finish_non_exhaustive()
    }
}

impl CoordinationStore for MemoryClient {
    fn grant(&self, ttl: Duration) -> StoreFuture<'_, Lease> {
        self.call("lease grant", move |state| {
            state.next_lease += 1;
            let id = LeaseId(state.next_lease);
            state.leases.insert(
                id,
                LeaseEntry {
                    ttl,
                    expires_at: Instant::now() + ttl,
                },
            );
            Ok(Lease { id, ttl })
        })
    }

    fn keep_alive(&self, lease: LeaseId) -> StoreFuture<'_, Option<Duration>> {
        self.call("keep-alive", move |state| {
            Ok(state.leases.get_mut(&lease).map(|l| {
                l.expires_at = Instant::now() + l.ttl;
                l.ttl
            }))
        })
    }

    fn put(&self, key: &str, value: &str, lease: LeaseId) -> StoreFuture<'_, i64> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.call("put", move |state| state.put(&key, &value, lease))
    }

    fn create(&self, key: &str, value: &str, lease: LeaseId) -> StoreFuture<'_, CreateOutcome> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.call("create", move |state| match state.kv.get(&key) {
            Some(kv) => Ok(CreateOutcome::Exists(kv.clone())),
            None => state
                .put(&key, &value, lease)
                .map(|revision| CreateOutcome::Created { revision }),
        })
    }

    fn delete_if(&self, key: &str, value: &str, lease: LeaseId) -> StoreFuture<'_, Option<i64>> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.call("delete", move |state| {
            let ours = state
                .kv
                .get(&key)
                .is_some_and(|kv| kv.value == value && kv.lease == lease);
            Ok(ours.then(|| state.delete(&key)))
        })
    }

    fn get_prefix(&self, prefix: &str) -> StoreFuture<'_, Snapshot> {
        let prefix = prefix.to_owned();
        self.call("get", move |state| {
            Ok(Snapshot {
                revision: state.revision,
                kvs: state.list(&prefix),
            })
        })
    }

    fn watch_prefix(&self, prefix: &str, from_revision: i64) -> StoreFuture<'_, WatchStream> {
        let prefix = prefix.to_owned();
        let this = self.clone();
        Box::pin(async move {
            let rx = this
                .call("watch", move |state| state.watch(&prefix, from_revision))
                .await?;
            let link = this.link.subscribe();
            let stream = futures_util::stream::unfold(Some((rx, link)), |open| async move {
                let (mut rx, mut link) = open?;
                loop {
                    let mode = link.borrow_and_update().mode;
                    match mode {
                        Mode::Down => {
                            let err = ClusterError::store("watch", "memory store unreachable");
                            return Some((Err(err), None));
                        }
                        Mode::Hung => {
                            if link.changed().await.is_err() {
                                return None;
                            }
                        }
                        Mode::Up => {
                            tokio::select! {
                                batch = rx.recv() => return Some(match batch {
                                    Some(batch) => (Ok(batch), Some((rx, link))),
                                    None => (Err(ClusterError::store("watch", "watch cancelled")), None),
                                }),
                                changed = link.changed() => if changed.is_err() { return None },
                            }
                        }
                    }
                }
            });
            Ok(Box::pin(stream) as WatchStream)
        })
    }

    fn revoke(&self, lease: LeaseId) -> StoreFuture<'_, ()> {
        self.call("lease revoke", move |state| {
            if state.revoke(lease) {
                Ok(())
            } else {
                Err(ClusterError::store(
                    "lease revoke",
                    "requested lease not found",
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    const TTL: Duration = Duration::from_secs(3);

    #[tokio::test(start_paused = true)]
    async fn leases_expire_on_the_clock_and_take_their_keys() {
        let store = MemoryStore::new();
        let c = store.client();
        let lease = c.grant(TTL).await.unwrap();
        c.put("/x/a", "1", lease.id).await.unwrap();
        let mut watch = c.watch_prefix("/x/", 1).await.unwrap();
        let start = Instant::now();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(c.keep_alive(lease.id).await.unwrap(), Some(TTL));
        assert_eq!(
            store.lease_expiry(lease.id),
            Some(start + Duration::from_secs(4))
        );

        // The put from before the watch started (revision 1) is replayed, then the expiry.
        let first = watch.next().await.unwrap().unwrap();
        assert!(matches!(&first[0], WatchEvent::Put(kv) if kv.key == "/x/a"));
        let second = watch.next().await.unwrap().unwrap();
        assert!(matches!(&second[0], WatchEvent::Delete { key, .. } if key == "/x/a"));
        assert_eq!(Instant::now(), start + Duration::from_secs(4));
        assert_eq!(store.get("/x/a"), None);
        assert_eq!(c.keep_alive(lease.id).await.unwrap(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn create_and_delete_are_conditional() {
        let store = MemoryStore::new();
        let (a, b) = (store.client(), store.client());
        let la = a.grant(TTL).await.unwrap().id;
        let lb = b.grant(TTL).await.unwrap().id;
        assert!(matches!(
            a.create("/k", "a", la).await.unwrap(),
            CreateOutcome::Created { .. }
        ));
        match b.create("/k", "b", lb).await.unwrap() {
            CreateOutcome::Exists(kv) => assert_eq!((kv.value.as_str(), kv.lease), ("a", la)),
            other => panic!("{other:?}"),
        }
        assert_eq!(b.delete_if("/k", "b", lb).await.unwrap(), None);
        assert_eq!(a.delete_if("/k", "a", lb).await.unwrap(), None);
        assert!(a.delete_if("/k", "a", la).await.unwrap().is_some());
        assert!(b.put("/k", "b", LeaseId(99)).await.unwrap_err().is_store());
    }

    #[tokio::test(start_paused = true)]
    async fn faults_are_per_client() {
        let store = MemoryStore::new();
        let (a, b) = (store.client(), store.client());
        a.set_down();
        assert!(a.grant(TTL).await.unwrap_err().is_store());
        b.grant(TTL).await.unwrap();

        a.set_hung();
        let hung = tokio::spawn({
            let a = a.clone();
            async move { a.get_prefix("/").await }
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!hung.is_finished());
        a.set_up();
        assert!(hung.await.unwrap().is_ok());

        a.set_latency(Duration::from_millis(100));
        let t0 = Instant::now();
        a.get_prefix("/").await.unwrap();
        assert_eq!(Instant::now() - t0, Duration::from_millis(200));
    }

    #[tokio::test(start_paused = true)]
    async fn a_watch_ends_with_an_error_when_its_link_goes_down() {
        let store = MemoryStore::new();
        let c = store.client();
        let mut watch = c.watch_prefix("/", 1).await.unwrap();
        c.set_down();
        assert!(watch.next().await.unwrap().unwrap_err().is_store());
        assert!(watch.next().await.is_none());
    }
}
