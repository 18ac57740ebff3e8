//! The node's state machine, one task: gets a lease (renewed by a [`Renewer`] of its
//! own) and the member key, mirrors the cluster's keys through a watch, takes the owner
//! keys rendezvous hashing gives it, deletes those the supervisor releases, and joins
//! again with a new lease when the old one is lost.
//!
//! Safety (never two nodes acting on one encoder) rests on etcd alone: an owner key is
//! only ever created if absent, bound to its owner's lease, and a node acts only while
//! its [`Fence`] says the lease is valid with margin. The watch only speeds things up:
//! a stale view makes a create fail, never succeed twice.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    future::Future,
    sync::Arc,
    time::Duration,
};

use futures_util::StreamExt;
use tokio::{
    sync::{mpsc, oneshot, watch},
    time::{sleep_until, Instant},
};

use crate::{
    config::Timing,
    error::{bounded, ClusterError},
    fence::Fence,
    keys::{KeyKind, Keys},
    rendezvous,
    renewer::{Renewal, Renewer},
    store::{CoordinationStore, CreateOutcome, KeyValue, LeaseId, WatchEvent, WatchStream},
    view::ClusterView,
};

/// Requests from the handle that need an answer.
#[derive(Debug)]
pub(crate) enum Command {
    Release {
        encoder: String,
        reply: oneshot::Sender<Result<(), ClusterError>>,
    },
    Shutdown {
        reply: oneshot::Sender<Result<(), ClusterError>>,
    },
}

pub(crate) struct Task {
    store: Arc<dyn CoordinationStore>,
    keys: Keys,
    node: String,
    requested_ttl: Duration,
    timing: Timing,
    lease: Option<LeaseState>,
    renewer: Option<Renewer>,
    renewal: Option<watch::Receiver<Renewal>>,
    /// A lease given up while etcd may still hold it: revoked after joining again.
    abandoned: Option<LeaseId>,
    /// Live members: name -> the lease their key is bound to.
    members: BTreeMap<String, LeaseId>,
    owners: BTreeMap<String, Holder>,
    /// The newest revision applied per key, so a late watch event never undoes what
    /// this node already applied from its own write.
    seen: HashMap<String, i64>,
    encoders: Vec<String>,
    /// What rendezvous gives this node, and the member list it was computed for.
    assigned: BTreeSet<String>,
    assigned_for: Option<Vec<String>>,
    watch: Option<WatchStream>,
    store_up: bool,
    changes: u64,
    owned: BTreeSet<String>,
    fence: Arc<Fence>,
    view: watch::Sender<ClusterView>,
    encoders_rx: watch::Receiver<Vec<String>>,
    commands: mpsc::Receiver<Command>,
    next_tick: Instant,
    next_resync: Instant,
    /// The last `reconcile` left assigned keys to take: go round again at once.
    more_to_acquire: bool,
}

/// Owner keys taken per round of `reconcile`, concurrently. etcd handles concurrent
/// writes together (one fsync for many), so a node with a large fleet holds its keys
/// in a few round trips, not one per encoder; and between rounds it publishes what it
/// holds and reads its watch, so it acts on the first encoders without waiting for
/// the last, and sees a member that joined meanwhile before it takes keys that are no
/// longer its own.
const ACQUIRE_BATCH: usize = 64;

#[derive(Debug, Clone, Copy)]
struct LeaseState {
    id: LeaseId,
    registered: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Holder {
    node: String,
    lease: LeaseId,
}

pub(crate) struct Parts {
    pub(crate) store: Arc<dyn CoordinationStore>,
    pub(crate) cluster: String,
    pub(crate) node: String,
    pub(crate) ttl: Duration,
    pub(crate) fence: Arc<Fence>,
    pub(crate) view: watch::Sender<ClusterView>,
    pub(crate) encoders: watch::Receiver<Vec<String>>,
    pub(crate) commands: mpsc::Receiver<Command>,
}

impl Task {
    pub(crate) fn new(parts: Parts) -> Self {
        let now = Instant::now();
        let mut encoders_rx = parts.encoders;
        let encoders = encoders_rx.borrow_and_update().clone();
        Self {
            store: parts.store,
            keys: Keys::new(&parts.cluster),
            node: parts.node,
            requested_ttl: parts.ttl,
            timing: Timing::for_ttl(parts.ttl),
            lease: None,
            renewer: None,
            renewal: None,
            abandoned: None,
            members: BTreeMap::new(),
            owners: BTreeMap::new(),
            seen: HashMap::new(),
            encoders,
            assigned: BTreeSet::new(),
            assigned_for: None,
            watch: None,
            store_up: false,
            changes: 0,
            owned: BTreeSet::new(),
            fence: parts.fence,
            view: parts.view,
            encoders_rx,
            commands: parts.commands,
            next_tick: now,
            next_resync: now,
            more_to_acquire: false,
        }
    }

    pub(crate) fn start_timeout(&self) -> Duration {
        self.timing.start_timeout
    }

    /// Grants a lease, registers, lists and watches: what `ClusterNode::start` waits for.
    pub(crate) async fn establish(&mut self) -> Result<(), ClusterError> {
        let store = self.store.clone();
        let sent = Instant::now();
        let lease = self
            .call("lease grant", store.grant(self.requested_ttl))
            .await?;
        self.timing = Timing::for_ttl(lease.ttl);
        self.lease = Some(LeaseState {
            id: lease.id,
            registered: false,
        });
        // etcd renewed (granted) no earlier than `sent`.
        let until = sent + lease.ttl - self.timing.margin;
        self.fence.set_lease(Some((lease.id, until)));
        let (report, renewal) = watch::channel(Renewal::Started);
        self.renewer = Some(Renewer::spawn(
            store.clone(),
            self.fence.clone(),
            lease,
            sent,
            report,
        ));
        self.renewal = Some(renewal);
        self.register().await?;
        self.resync().await?;
        self.next_tick = Instant::now() + self.timing.check_interval;
        tracing::info!(node = %self.node, lease = %lease.id, ttl = ?lease.ttl, "joined the cluster");
        if let Some(old) = self.abandoned.take() {
            // Now that the member key is on the new lease, this frees the old owner
            // keys without this node leaving; the watch shows them free, and they
            // come back to it. If the revoke fails, the old lease expires unrenewed.
            let _ = self.call("lease revoke", store.revoke(old)).await;
        }
        Ok(())
    }

    /// Best effort after a failed start: the lease would expire anyway.
    pub(crate) async fn abandon(&mut self) {
        self.renewer = None;
        if let Some(lease) = self.lease.take() {
            self.fence.set_lease(None);
            let store = self.store.clone();
            let _ = self.call("lease revoke", store.revoke(lease.id)).await;
        }
    }

    pub(crate) async fn run(mut self) {
        loop {
            self.reconcile().await;
            self.publish();
            let acting_until = self.fence.acting_until();
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Release { encoder, reply }) => {
                        let result = self.release(&encoder).await;
                        let _ = reply.send(result);
                    }
                    Some(Command::Shutdown { reply }) => {
                        let result = self.shutdown().await;
                        let _ = reply.send(result);
                        return;
                    }
                    // Every handle is gone; `Drop` already closed the fence.
                    None => return,
                },
                () = sleep_until(self.next_tick) => self.tick().await,
                // Demotion: nothing to do but publish `can_act = false`.
                () = sleep_until(acting_until.unwrap_or(self.next_tick)), if acting_until.is_some() => {}
                status = next_renewal(&mut self.renewal) => self.on_renewal(status).await,
                changed = self.encoders_rx.changed() => match changed {
                    Ok(()) => {
                        self.encoders = self.encoders_rx.borrow_and_update().clone();
                        self.assigned_for = None;
                    }
                    Err(_) => return,
                },
                item = next_event(&mut self.watch) => self.on_watch(item),
                () = std::future::ready(()), if self.more_to_acquire => {}
            }
        }
    }

    /// One store round trip, bounded by the RPC timeout; publishes a demotion that
    /// falls due while it waits.
    async fn call<T>(
        &mut self,
        op: &'static str,
        request: impl Future<Output = Result<T, ClusterError>>,
    ) -> Result<T, ClusterError> {
        let timeout = self.timing.rpc_timeout;
        let request = tokio::time::timeout(timeout, request);
        tokio::pin!(request);
        let result = loop {
            let acting_until = self.fence.acting_until();
            tokio::select! {
                result = &mut request => break result,
                () = sleep_until(acting_until.unwrap_or_else(Instant::now)), if acting_until.is_some() => self.publish(),
            }
        };
        let result = result.unwrap_or(Err(ClusterError::Timeout { op, timeout }));
        self.set_store_up(result.as_ref().err(), op);
        result
    }

    fn set_store_up(&mut self, error: Option<&ClusterError>, op: &'static str) {
        match error {
            None => {
                if !self.store_up {
                    tracing::info!(node = %self.node, "etcd reachable");
                }
                self.store_up = true;
            }
            Some(err) => {
                if self.store_up {
                    tracing::warn!(node = %self.node, op, error = %err, "etcd unreachable");
                }
                self.store_up = false;
            }
        }
    }

    async fn tick(&mut self) {
        self.next_tick = Instant::now() + self.timing.check_interval;
        let result = match self.lease {
            None => self.establish().await,
            Some(_) => self.upkeep().await,
        };
        if let Err(err) = result {
            tracing::debug!(node = %self.node, error = %err, "upkeep failed; retrying next tick");
        }
    }

    async fn upkeep(&mut self) -> Result<(), ClusterError> {
        if self.lease.is_some_and(|l| !l.registered) {
            self.register().await?;
        }
        if self.watch.is_none() || Instant::now() >= self.next_resync {
            self.resync().await?;
        }
        for encoder in self.fence.releasing() {
            self.delete_owner_key(&encoder).await?;
        }
        Ok(())
    }

    async fn on_renewal(&mut self, status: Renewal) {
        let Some(lease) = self.lease else { return };
        match status {
            Renewal::Started => {}
            Renewal::Renewed => self.set_store_up(None, "keep-alive"),
            Renewal::Failed(err) => self.set_store_up(Some(&err), "keep-alive"),
            Renewal::Lost => {
                tracing::warn!(node = %self.node, lease = %lease.id, "lease lost; joining again");
                self.lose_lease();
                self.rejoin().await;
            }
            Renewal::GaveUp => {
                // Renewals may still reach etcd while no answer comes back in time:
                // this node could never act again, yet would hold its encoders for
                // ever. It lets the lease go (no more renewals; revoked once it has
                // joined again) so that the others can take over.
                tracing::warn!(node = %self.node, lease = %lease.id, "no keep-alive answer in time; letting the lease go");
                self.set_store_up(
                    Some(&ClusterError::Timeout {
                        op: "keep-alive",
                        timeout: self.timing.ttl - self.timing.margin,
                    }),
                    "keep-alive",
                );
                self.lose_lease();
                self.abandoned = Some(lease.id);
                self.rejoin().await;
            }
        }
    }

    async fn rejoin(&mut self) {
        if let Err(err) = self.establish().await {
            tracing::debug!(node = %self.node, error = %err, "join failed; retrying next tick");
        }
    }

    fn lose_lease(&mut self) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        // Order matters: stop acting before anything else changes.
        self.fence.set_lease(None);
        self.renewer = None;
        self.renewal = None;
        self.owners.retain(|_, h| h.lease != lease.id);
        self.members.retain(|_, l| *l != lease.id);
        self.watch = None;
        self.sync_fence();
    }

    async fn register(&mut self) -> Result<(), ClusterError> {
        let Some(lease) = self.lease else {
            return Ok(());
        };
        let store = self.store.clone();
        let key = self.keys.member(&self.node);
        let revision = self
            .call("register", store.put(&key, &self.node, lease.id))
            .await?;
        self.apply(WatchEvent::Put(KeyValue {
            key,
            value: self.node.clone(),
            lease: lease.id,
            mod_revision: revision,
        }));
        if let Some(l) = &mut self.lease {
            l.registered = true;
        }
        self.fence.set_registered(lease.id);
        Ok(())
    }

    /// Lists every key and watches from there: the view is exact as of the list.
    async fn resync(&mut self) -> Result<(), ClusterError> {
        let store = self.store.clone();
        let root = self.keys.root().to_owned();
        let snapshot = self.call("list", store.get_prefix(&root)).await?;
        let watch = self
            .call("watch", store.watch_prefix(&root, snapshot.revision + 1))
            .await?;
        self.members.clear();
        self.owners.clear();
        self.seen.clear();
        for kv in snapshot.kvs {
            self.apply(WatchEvent::Put(kv));
        }
        self.watch = Some(watch);
        self.next_resync = Instant::now() + self.timing.ttl;
        let mine = self.lease.map(|l| l.id);
        if self.lease.is_some_and(|l| l.registered) && self.members.get(&self.node) != mine.as_ref()
        {
            tracing::warn!(
                node = %self.node,
                "this node's member key is missing or bound to another lease \
                 (is another node running with the same name?); registering again"
            );
            self.register().await?;
        }
        self.sync_fence();
        Ok(())
    }

    fn on_watch(&mut self, item: Option<Result<Vec<WatchEvent>, ClusterError>>) {
        match item {
            Some(Ok(events)) => {
                for event in events {
                    self.apply(event);
                }
                self.sync_fence();
            }
            Some(Err(err)) => {
                tracing::debug!(node = %self.node, error = %err, "watch ended; listing again");
                self.watch = None;
                self.next_tick = Instant::now();
            }
            None => {
                self.watch = None;
                self.next_tick = Instant::now();
            }
        }
    }

    fn apply(&mut self, event: WatchEvent) {
        let (key, revision) = match &event {
            WatchEvent::Put(kv) => (kv.key.as_str(), kv.mod_revision),
            WatchEvent::Delete { key, revision } => (key.as_str(), *revision),
        };
        if self.seen.get(key).is_some_and(|&seen| seen >= revision) {
            return;
        }
        let Some(kind) = self.keys.parse(key) else {
            return;
        };
        let name = match kind {
            KeyKind::Member(n) | KeyKind::Owner(n) => n.to_owned(),
        };
        let is_member = matches!(kind, KeyKind::Member(_));
        self.seen.insert(key.to_owned(), revision);
        match (event, is_member) {
            (WatchEvent::Put(kv), true) => {
                self.members.insert(name, kv.lease);
            }
            (WatchEvent::Put(kv), false) => {
                // A malformed holder still holds the key: keep it, shown escaped.
                let node = if crate::config::is_valid_name(&kv.value) {
                    kv.value
                } else {
                    bounded(&kv.value)
                };
                self.owners.insert(
                    name,
                    Holder {
                        node,
                        lease: kv.lease,
                    },
                );
            }
            (WatchEvent::Delete { .. }, true) => {
                self.members.remove(&name);
            }
            (WatchEvent::Delete { .. }, false) => {
                self.owners.remove(&name);
            }
        }
    }

    /// Recomputes the owned set from the owner keys and hands it to the fence.
    fn sync_fence(&mut self) {
        let lease = self.lease.map(|l| l.id);
        let held: BTreeSet<String> = self
            .owners
            .iter()
            .filter(|(_, h)| h.node == self.node && Some(h.lease) == lease)
            .map(|(e, _)| e.clone())
            .collect();
        let owned = self.fence.sync(held);
        let moved = owned.symmetric_difference(&self.owned).count();
        self.changes += moved as u64;
        self.owned = owned;
    }

    /// Takes the free owner keys of the encoders assigned to this node, at most
    /// [`ACQUIRE_BATCH`] of them, concurrently.
    async fn reconcile(&mut self) {
        self.more_to_acquire = false;
        let Some(lease) = self.lease else { return };
        if self.watch.is_none() || self.fence.acting_until().is_none() {
            return;
        }
        let releasing = self.fence.releasing();
        self.assignment();
        let mut wanted: Vec<String> = self
            .assigned
            .iter()
            .filter(|e| !self.owners.contains_key(*e) && !releasing.contains(*e))
            .cloned()
            .collect();
        if wanted.is_empty() {
            return;
        }
        let more = wanted.len() > ACQUIRE_BATCH;
        wanted.truncate(ACQUIRE_BATCH);
        let store = self.store.clone();
        let node = self.node.clone();
        let keyed: Vec<(String, String)> = wanted
            .into_iter()
            .map(|encoder| {
                let key = self.keys.owner(&encoder);
                (encoder, key)
            })
            .collect();
        let creates = keyed.into_iter().map(|(encoder, key)| {
            let (store, node) = (&store, &node);
            async move {
                let created = store.create(&key, node, lease.id).await;
                (encoder, key, created)
            }
        });
        let batch = self
            .call("acquire", async {
                Ok(futures_util::future::join_all(creates).await)
            })
            .await;
        let mut failed = None;
        for (encoder, key, created) in batch.into_iter().flatten() {
            match created {
                Ok(CreateOutcome::Created { revision }) => {
                    tracing::info!(node = %self.node, encoder, "owner key taken");
                    self.apply(WatchEvent::Put(KeyValue {
                        key,
                        value: self.node.clone(),
                        lease: lease.id,
                        mod_revision: revision,
                    }));
                }
                Ok(CreateOutcome::Exists(kv)) => self.apply(WatchEvent::Put(kv)),
                Err(err) => {
                    tracing::debug!(node = %self.node, encoder, error = %err, "acquire failed");
                    failed = Some(err);
                }
            }
        }
        match failed {
            // The next change or tick tries again; a failure is enough for now.
            Some(err) => self.set_store_up(Some(&err), "acquire"),
            None => self.more_to_acquire = more,
        }
        self.sync_fence();
    }

    async fn release(&mut self, encoder: &str) -> Result<(), ClusterError> {
        let result = self.delete_owner_key(encoder).await;
        self.sync_fence();
        result
    }

    /// Deletes the owner key if it is still this node's. Until that succeeds the
    /// encoder stays "releasing" (not owned, not taken again) and each tick retries.
    async fn delete_owner_key(&mut self, encoder: &str) -> Result<(), ClusterError> {
        let Some(lease) = self.lease else {
            // No lease, no keys: they went with it.
            self.fence.end_release(encoder);
            return Ok(());
        };
        let store = self.store.clone();
        let key = self.keys.owner(encoder);
        let deleted = self
            .call("release", store.delete_if(&key, &self.node, lease.id))
            .await?;
        if let Some(revision) = deleted {
            tracing::info!(node = %self.node, encoder, "owner key released");
            self.apply(WatchEvent::Delete { key, revision });
        }
        self.fence.end_release(encoder);
        Ok(())
    }

    async fn shutdown(&mut self) -> Result<(), ClusterError> {
        self.fence.close();
        self.renewer = None;
        let result = match self.lease {
            Some(lease) => {
                let store = self.store.clone();
                let result = self.call("lease revoke", store.revoke(lease.id)).await;
                self.lease = None;
                result
            }
            None => Ok(()),
        };
        self.owners.retain(|_, h| h.node != self.node);
        self.members.remove(&self.node);
        self.sync_fence();
        self.publish();
        tracing::info!(node = %self.node, "left the cluster");
        result
    }

    /// The encoders rendezvous gives this node among the members it knows; computed
    /// again only when the members or the fleet change.
    fn assignment(&mut self) -> &BTreeSet<String> {
        let members: Vec<String> = self.members.keys().cloned().collect();
        if self.assigned_for.as_ref() != Some(&members) {
            self.assigned = rendezvous::assignment(&self.encoders, &members, &self.node)
                .into_iter()
                .map(str::to_owned)
                .collect();
            self.assigned_for = Some(members);
        }
        &self.assigned
    }

    pub(crate) fn publish(&mut self) {
        let assigned = self.assignment().clone();
        let view = ClusterView {
            node: self.node.clone(),
            members: self.members.keys().cloned().collect(),
            assigned,
            owned: self.owned.clone(),
            owners: self
                .owners
                .iter()
                .map(|(e, h)| (e.clone(), h.node.clone()))
                .collect(),
            store_up: self.store_up,
            can_act: self.fence.acting_until().is_some(),
            ownership_changes: self.changes,
        };
        self.view.send_if_modified(|current| {
            let changed = *current != view;
            if changed {
                *current = view;
            }
            changed
        });
    }
}

async fn next_renewal(renewal: &mut Option<watch::Receiver<Renewal>>) -> Renewal {
    if let Some(rx) = renewal {
        // After the renewer's last word its sender is gone: wait for a new renewer.
        if rx.changed().await.is_ok() {
            return rx.borrow_and_update().clone();
        }
    }
    std::future::pending().await
}

async fn next_event(
    watch: &mut Option<WatchStream>,
) -> Option<Result<Vec<WatchEvent>, ClusterError>> {
    match watch {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}
