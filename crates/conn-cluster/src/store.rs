//! What the node needs from its coordination store, as a small object-safe trait:
//! [`EtcdStore`](crate::EtcdStore) implements it for etcd v3, and
//! [`MemoryStore`](crate::MemoryStore) (feature `test-util`) in memory for tests.

use std::{fmt, future::Future, pin::Pin, time::Duration};

use futures_util::Stream;

use crate::error::ClusterError;

/// A future returned by a [`CoordinationStore`].
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ClusterError>> + Send + 'a>>;

/// Batches of changes under a watched prefix, in revision order. An `Err` (or the end)
/// means events may have been missed: list again and watch from the new revision.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<Vec<WatchEvent>, ClusterError>> + Send>>;

/// A lease id, as etcd numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseId(pub i64);

/// A granted lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Its id.
    pub id: LeaseId,
    /// The time-to-live the store granted (it may round the request up).
    pub ttl: Duration,
}

/// A key with its value, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
    /// The lease the key is bound to (`LeaseId(0)`: none).
    pub lease: LeaseId,
    /// The revision of the key's last change.
    pub mod_revision: i64,
}

/// One change under a watched prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// A key was created or changed.
    Put(KeyValue),
    /// A key was deleted (explicitly, or because its lease went).
    Delete {
        /// The key.
        key: String,
        /// The revision of the deletion.
        revision: i64,
    },
}

/// Every key under a prefix at one revision.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// The store's revision when it was read; watch from the next one.
    pub revision: i64,
    /// The keys, in key order.
    pub kvs: Vec<KeyValue>,
}

/// The answer to a create-if-absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The key was absent and now holds our value, bound to our lease.
    Created {
        /// The revision of the creation.
        revision: i64,
    },
    /// Someone holds the key; here it is.
    Exists(KeyValue),
}

/// The store operations the cluster node uses. Every method is one round trip (the
/// caller bounds it with a timeout); none retries on its own.
pub trait CoordinationStore: Send + Sync + 'static {
    /// Grants a lease of (at least) `ttl`.
    fn grant(&self, ttl: Duration) -> StoreFuture<'_, Lease>;

    /// Renews `lease` once. `Ok(Some(ttl))`: renewed for `ttl` from when the store
    /// handled it; `Ok(None)`: the lease is gone (expired or revoked).
    fn keep_alive(&self, lease: LeaseId) -> StoreFuture<'_, Option<Duration>>;

    /// Writes `key` = `value`, bound to `lease`. Returns the revision.
    fn put(&self, key: &str, value: &str, lease: LeaseId) -> StoreFuture<'_, i64>;

    /// Creates `key` = `value` bound to `lease` only if `key` is absent, atomically.
    fn create(&self, key: &str, value: &str, lease: LeaseId) -> StoreFuture<'_, CreateOutcome>;

    /// Deletes `key` only if it holds `value` and is bound to `lease`, atomically.
    /// Returns the revision of the deletion, or `None` if the key was not ours.
    fn delete_if(&self, key: &str, value: &str, lease: LeaseId) -> StoreFuture<'_, Option<i64>>;

    /// Every key under `prefix`.
    fn get_prefix(&self, prefix: &str) -> StoreFuture<'_, Snapshot>;

    /// Changes under `prefix` from `from_revision` on.
    fn watch_prefix(&self, prefix: &str, from_revision: i64) -> StoreFuture<'_, WatchStream>;

    /// Revokes `lease`: its keys go at once.
    fn revoke(&self, lease: LeaseId) -> StoreFuture<'_, ()>;
}

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // As etcdctl prints them.
        write!(f, "{:x}", self.0)
    }
}
