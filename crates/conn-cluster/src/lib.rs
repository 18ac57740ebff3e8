//! Several supervisors as one cluster coordinated through etcd: membership on leases,
//! rendezvous assignment of encoders to live members, and fenced ownership, so that at
//! most one node acts on an encoder at any instant.
//!
//! Each node keeps `/<cluster>/members/<node>` on its lease and watches the cluster's
//! keys. Every encoder of the shared fleet goes to one live member by rendezvous
//! hashing ([`rendezvous`]); that member takes `/<cluster>/owners/<encoder>` (created
//! only if absent, on its lease) before it acts. A node that cannot renew its lease
//! stops acting a margin before etcd could expire it ([`ClusterConfig::demotion_margin`]),
//! and keeps observing.
//!
//! ```
//! use std::time::Duration;
//! use conn_cluster::{ClusterConfig, ClusterNode, MemoryStore};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), conn_cluster::ClusterError> {
//! // In production: `let store = EtcdStore::connect(&config).await?;`
//! let store = MemoryStore::new();
//! let config = ClusterConfig::new(vec!["http://127.0.0.1:2379".into()], "studio-fleet", "sup-a")
//!     .with_lease_ttl(Duration::from_secs(10));
//! let fleet = vec!["studio-a".to_string(), "studio-b".to_string()];
//! let node = ClusterNode::start(config, store.client(), fleet).await?;
//!
//! let mut view = node.subscribe();
//! view.wait_for(|v| v.owned.len() == 2).await.expect("node runs");
//! // Before every action on a device:
//! assert!(node.may_act("studio-a"));
//!
//! // A reload drops studio-a (a node joining would move some encoders the same way).
//! node.set_encoders(vec!["studio-b".to_string()])?;
//! view.wait_for(|v| v.to_release() == ["studio-a"]).await.expect("node runs");
//! // The supervisor stops studio-a's loop, then:
//! node.release("studio-a").await?;
//! assert!(!node.may_act("studio-a"));
//! assert!(node.may_act("studio-b"));
//!
//! node.shutdown().await?; // revokes the lease: the others take over at once
//! # Ok(())
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod error;
mod etcd;
mod fence;
mod keys;
#[cfg(any(test, feature = "test-util"))]
mod memory;
mod node;
pub mod rendezvous;
mod renewer;
mod store;
mod task;
mod view;

#[cfg(any(test, feature = "test-util"))]
pub use self::memory::{MemoryClient, MemoryStore};
pub use self::{
    config::ClusterConfig,
    error::ClusterError,
    etcd::EtcdStore,
    node::ClusterNode,
    store::{
        CoordinationStore, CreateOutcome, KeyValue, Lease, LeaseId, Snapshot, StoreFuture,
        WatchEvent, WatchStream,
    },
    view::ClusterView,
};

#[cfg(test)]
mod tests;
