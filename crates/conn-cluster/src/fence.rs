//! The fencing state that [`ClusterNode::may_act`](crate::ClusterNode::may_act) reads:
//! which owner keys this node holds, and until when it may act on them. Shared by the
//! node's task, its lease renewer and its handle; read without any round trip.
//!
//! `act_until` is the instant by which the node must have stopped acting: the send
//! time of the lease's last successful renewal + TTL - margin. `may_act` compares it
//! with the clock itself, so demotion is on time even if no task runs at that moment.

use std::{
    collections::BTreeSet,
    sync::{Mutex, MutexGuard},
};

use tokio::time::Instant;

use crate::store::LeaseId;

#[derive(Debug, Default)]
pub(crate) struct Fence {
    state: Mutex<FenceState>,
}

#[derive(Debug, Default)]
struct FenceState {
    /// The lease renewals are accepted for; a late one for an older lease is ignored.
    lease: Option<LeaseId>,
    act_until: Option<Instant>,
    /// The member key is on the lease: the node is part of the cluster.
    registered: bool,
    /// Owner keys held with the current lease, minus those being released.
    owned: BTreeSet<String>,
    /// Released by the supervisor, their keys not yet deleted in the store.
    releasing: BTreeSet<String>,
    closed: bool,
}

impl Fence {
    fn lock(&self) -> MutexGuard<'_, FenceState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn may_act(&self, encoder: &str) -> bool {
        let state = self.lock();
        state.acting_until().is_some() && state.owned.contains(encoder)
    }

    /// Until when the node may act, if it may act now.
    pub(crate) fn acting_until(&self) -> Option<Instant> {
        self.lock().acting_until()
    }

    /// A new lease (granted at `act_until` + margin - TTL), not yet registered; or none.
    pub(crate) fn set_lease(&self, lease: Option<(LeaseId, Instant)>) {
        let mut state = self.lock();
        state.lease = lease.map(|(id, _)| id);
        state.act_until = lease.map(|(_, until)| until);
        state.registered = false;
        if lease.is_none() {
            state.releasing.clear();
        }
    }

    pub(crate) fn set_registered(&self, lease: LeaseId) {
        let mut state = self.lock();
        if state.lease == Some(lease) {
            state.registered = true;
        }
    }

    /// A renewal of `lease` succeeded; acting is allowed until `until`.
    pub(crate) fn renewed(&self, lease: LeaseId, until: Instant) {
        let mut state = self.lock();
        if state.lease == Some(lease) {
            state.act_until = state.act_until.max(Some(until));
        }
    }

    /// Replaces the owned set with `held` minus what is being released; returns it.
    pub(crate) fn sync(&self, mut held: BTreeSet<String>) -> BTreeSet<String> {
        let mut state = self.lock();
        if state.closed {
            held.clear();
        }
        held.retain(|e| !state.releasing.contains(e));
        state.owned.clone_from(&held);
        held
    }

    /// The supervisor gives `encoder` up: it stops counting as owned at once.
    pub(crate) fn begin_release(&self, encoder: &str) {
        let mut state = self.lock();
        state.owned.remove(encoder);
        state.releasing.insert(encoder.to_owned());
    }

    pub(crate) fn end_release(&self, encoder: &str) {
        self.lock().releasing.remove(encoder);
    }

    pub(crate) fn releasing(&self) -> BTreeSet<String> {
        self.lock().releasing.clone()
    }

    /// For good: shut down or dropped.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.act_until = None;
        state.owned.clear();
    }
}

impl FenceState {
    fn acting_until(&self) -> Option<Instant> {
        self.act_until
            .filter(|until| !self.closed && self.registered && Instant::now() < *until)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn acting_needs_registration_and_ends_at_the_deadline_by_itself() {
        let fence = Fence::default();
        fence.sync(set(&["a"]));
        assert!(!fence.may_act("a"), "no lease yet");
        let lease = LeaseId(7);
        fence.set_lease(Some((lease, Instant::now() + Duration::from_secs(1))));
        assert!(!fence.may_act("a"), "not registered");
        fence.set_registered(lease);
        assert!(fence.may_act("a"));
        assert!(!fence.may_act("b"));
        tokio::time::sleep(Duration::from_millis(999)).await;
        assert!(fence.may_act("a"));
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert!(!fence.may_act("a"), "the deadline itself is too late");
    }

    #[tokio::test(start_paused = true)]
    async fn renewals_extend_only_the_current_lease_and_never_shorten() {
        let fence = Fence::default();
        let now = Instant::now();
        fence.set_lease(Some((LeaseId(1), now + Duration::from_secs(5))));
        fence.set_registered(LeaseId(1));
        fence.renewed(LeaseId(1), now + Duration::from_secs(3));
        assert_eq!(fence.acting_until(), Some(now + Duration::from_secs(5)));
        fence.renewed(LeaseId(1), now + Duration::from_secs(6));
        assert_eq!(fence.acting_until(), Some(now + Duration::from_secs(6)));
        // A late answer for a lease this node gave up changes nothing.
        fence.set_lease(None);
        fence.renewed(LeaseId(1), now + Duration::from_secs(9));
        assert_eq!(fence.acting_until(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn releasing_and_closing_stop_acting() {
        let fence = Fence::default();
        fence.set_lease(Some((LeaseId(1), Instant::now() + Duration::from_secs(5))));
        fence.set_registered(LeaseId(1));
        assert_eq!(fence.sync(set(&["a", "b"])), set(&["a", "b"]));
        fence.begin_release("a");
        assert!(!fence.may_act("a"));
        assert_eq!(fence.sync(set(&["a", "b"])), set(&["b"]), "still released");
        fence.end_release("a");
        assert_eq!(fence.sync(set(&["a", "b"])), set(&["a", "b"]));
        fence.close();
        assert!(!fence.may_act("b"));
        assert!(fence.sync(set(&["b"])).is_empty());
        fence.renewed(LeaseId(1), Instant::now() + Duration::from_secs(9));
        assert_eq!(fence.acting_until(), None);
    }
}
