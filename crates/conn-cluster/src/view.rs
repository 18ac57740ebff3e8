//! What a node publishes: the cluster as it sees it, for the supervisor's loops, its
//! metrics and its API.

use std::collections::{BTreeMap, BTreeSet};

use crate::rendezvous;

/// One node's view of the cluster, published on a `watch` channel.
///
/// The supervisor runs a loop (observing at least) for every encoder in
/// [`supervised`](Self::supervised); acts only where
/// [`ClusterNode::may_act`](crate::ClusterNode::may_act) says so; and, for every
/// encoder in [`to_release`](Self::to_release), stops that loop and then calls
/// [`ClusterNode::release`](crate::ClusterNode::release).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ClusterView {
    /// This node's name.
    pub node: String,
    /// Live members (their keys exist), sorted (`helo_cluster_members` is its length).
    pub members: Vec<String>,
    /// The encoders that rendezvous hashing gives this node among the live members.
    pub assigned: BTreeSet<String>,
    /// The encoders whose owner key this node holds (`helo_cluster_owned_encoders`).
    pub owned: BTreeSet<String>,
    /// Every owner key seen: encoder -> owning node.
    pub owners: BTreeMap<String, String>,
    /// The last request to the store succeeded (`helo_cluster_store_up`).
    pub store_up: bool,
    /// This node's lease is known valid with margin: it may act on what it owns.
    pub can_act: bool,
    /// Owner keys this node gained or lost since it started
    /// (`helo_cluster_ownership_changes_total`).
    pub ownership_changes: u64,
}

impl ClusterView {
    /// The node that owns `encoder`: the holder of its owner key, else the one
    /// rendezvous hashing names among the live members (it will take the key).
    pub fn owner_of(&self, encoder: &str) -> Option<&str> {
        self.owners
            .get(encoder)
            .map(String::as_str)
            .or_else(|| rendezvous::owner_of(encoder, &self.members).map(String::as_str))
    }

    /// Encoders this node should have a loop for: assigned to it, or still owned by it.
    pub fn supervised(&self) -> BTreeSet<&str> {
        self.assigned
            .iter()
            .chain(&self.owned)
            .map(String::as_str)
            .collect()
    }

    /// Encoders this node owns but no longer should: stop their loops, then release.
    pub fn to_release(&self) -> Vec<&str> {
        self.owned
            .difference(&self.assigned)
            .map(String::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_falls_back_to_rendezvous() {
        let view = ClusterView {
            members: vec!["a".into(), "b".into()],
            owners: BTreeMap::from([("e1".into(), "b".into())]),
            ..ClusterView::default()
        };
        assert_eq!(view.owner_of("e1"), Some("b"));
        let hashed = rendezvous::owner_of("e2", &view.members).unwrap();
        assert_eq!(view.owner_of("e2"), Some(hashed.as_str()));
        assert_eq!(ClusterView::default().owner_of("e2"), None);
    }

    #[test]
    fn release_is_owned_minus_assigned() {
        let view = ClusterView {
            assigned: ["e1", "e2"].map(String::from).into(),
            owned: ["e2", "e3"].map(String::from).into(),
            ..ClusterView::default()
        };
        assert_eq!(view.to_release(), vec!["e3"]);
        assert_eq!(
            view.supervised().into_iter().collect::<Vec<_>>(),
            vec!["e1", "e2", "e3"]
        );
    }
}
