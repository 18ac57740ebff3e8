//! [`CoordinationStore`] on etcd v3, through the `etcd-client` crate (tonic/gRPC).

use std::{fmt, sync::Arc, time::Duration};

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, PutOptions, Txn, TxnOp,
    TxnOpResponse, WatchOptions,
};
use tokio::sync::Mutex;

use crate::{
    config::{ClusterConfig, Timing},
    error::{bounded, ClusterError},
    store::{
        CoordinationStore, CreateOutcome, KeyValue, Lease, LeaseId, Snapshot, StoreFuture,
        WatchEvent, WatchStream,
    },
};

/// etcd as the cluster's store. Cheap to clone (one gRPC channel, balanced over the
/// endpoints). Connecting does no I/O; the first request does.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    endpoints: Vec<String>,
    /// The open keep-alive stream, reused from one renewal to the next.
    keeper: Arc<Mutex<Option<Keeper>>>,
}

struct Keeper {
    lease: LeaseId,
    sender: etcd_client::LeaseKeeper,
    stream: etcd_client::LeaseKeepAliveStream,
}

impl EtcdStore {
    /// A client for `config.etcd`. Validates `config`; a node's first request (in
    /// [`ClusterNode::start`](crate::ClusterNode::start)) finds out whether etcd answers.
    pub async fn connect(config: &ClusterConfig) -> Result<Self, ClusterError> {
        config.validate()?;
        let timing = Timing::for_ttl(config.lease_ttl);
        let options = ConnectOptions::new()
            .with_connect_timeout(timing.rpc_timeout)
            // HTTP/2 pings find a dead or stopped server between requests, so the
            // channel reconnects (to another endpoint if there is one).
            .with_keep_alive(timing.check_interval, timing.rpc_timeout)
            .with_keep_alive_while_idle(true)
            // A member cut off from the etcd majority answers nothing rather than
            // something stale.
            .with_require_leader(true);
        let unreachable = |detail: String| ClusterError::StoreUnreachable {
            endpoints: config.etcd.clone(),
            detail,
        };
        let client = tokio::time::timeout(
            timing.start_timeout,
            Client::connect(&config.etcd, Some(options)),
        )
        .await
        .map_err(|_| unreachable(format!("no connection within {:?}", timing.start_timeout)))?
        .map_err(|e| unreachable(bounded(&e.to_string())))?;
        Ok(Self {
            client,
            endpoints: config.etcd.clone(),
            keeper: Arc::new(Mutex::new(None)),
        })
    }

    /// The endpoints, as configured.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }
}

impl fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

fn err(op: &'static str) -> impl Fn(etcd_client::Error) -> ClusterError {
    move |e| ClusterError::store(op, e)
}

/// etcd keys and values are bytes; this crate writes only UTF-8, so anything else
/// under the prefix is not ours and is skipped.
fn key_value(kv: &etcd_client::KeyValue) -> Option<KeyValue> {
    Some(KeyValue {
        key: kv.key_str().ok()?.to_owned(),
        value: kv.value_str().ok()?.to_owned(),
        lease: LeaseId(kv.lease()),
        mod_revision: kv.mod_revision(),
    })
}

fn revision(header: Option<&etcd_client::ResponseHeader>) -> i64 {
    header.map_or(0, etcd_client::ResponseHeader::revision)
}

fn ttl(seconds: i64) -> Option<Duration> {
    u64::try_from(seconds)
        .ok()
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
}

impl CoordinationStore for EtcdStore {
    fn grant(&self, ttl_wanted: Duration) -> StoreFuture<'_, Lease> {
        let mut client = self.client.clone();
        Box::pin(async move {
            let seconds = i64::try_from(ttl_wanted.as_secs()).unwrap_or(i64::MAX);
            let resp = client
                .lease_grant(seconds, None)
                .await
                .map_err(err("lease grant"))?;
            let granted = ttl(resp.ttl())
                .ok_or_else(|| ClusterError::store("lease grant", "granted no time"))?;
            Ok(Lease {
                id: LeaseId(resp.id()),
                ttl: granted,
            })
        })
    }

    fn keep_alive(&self, lease: LeaseId) -> StoreFuture<'_, Option<Duration>> {
        Box::pin(async move {
            let mut slot = self.keeper.lock().await;
            // Taken out, so a request abandoned half-way (timeout) drops its stream
            // and the next one starts a fresh stream instead of reading a stale answer.
            let mut keeper = match slot.take() {
                Some(k) if k.lease == lease => k,
                _ => {
                    let opened = self.client.clone().lease_keep_alive(lease.0).await;
                    match opened {
                        Ok((sender, stream)) => Keeper {
                            lease,
                            sender,
                            stream,
                        },
                        // Opening renews once and reports a missing lease only as text.
                        Err(etcd_client::Error::LeaseKeepAliveError(text))
                            if text.contains("not found") =>
                        {
                            return Ok(None)
                        }
                        Err(e) => return Err(ClusterError::store("keep-alive", e)),
                    }
                }
            };
            keeper
                .sender
                .keep_alive()
                .await
                .map_err(err("keep-alive"))?;
            let answer = keeper
                .stream
                .message()
                .await
                .map_err(err("keep-alive"))?
                .ok_or_else(|| ClusterError::store("keep-alive", "stream closed"))?;
            let renewed = ttl(answer.ttl());
            if renewed.is_some() {
                *slot = Some(keeper);
            }
            Ok(renewed)
        })
    }

    fn put(&self, key: &str, value: &str, lease: LeaseId) -> StoreFuture<'_, i64> {
        let mut client = self.client.clone();
        let (key, value) = (key.to_owned(), value.to_owned());
        Box::pin(async move {
            let resp = client
                .put(key, value, Some(PutOptions::new().with_lease(lease.0)))
                .await
                .map_err(err("put"))?;
            Ok(revision(resp.header()))
        })
    }

    fn create(&self, key: &str, value: &str, lease: LeaseId) -> StoreFuture<'_, CreateOutcome> {
        let mut client = self.client.clone();
        let (key, value) = (key.to_owned(), value.to_owned());
        Box::pin(async move {
            let txn = Txn::new()
                .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(
                    key.clone(),
                    value,
                    Some(PutOptions::new().with_lease(lease.0)),
                )])
                .or_else([TxnOp::get(key, None)]);
            let resp = client.txn(txn).await.map_err(err("create"))?;
            if resp.succeeded() {
                return Ok(CreateOutcome::Created {
                    revision: revision(resp.header()),
                });
            }
            resp.op_responses()
                .iter()
                .find_map(|op| match op {
                    TxnOpResponse::Get(get) => get.kvs().first().and_then(key_value),
                    _ => None,
                })
                .map(CreateOutcome::Exists)
                .ok_or_else(|| ClusterError::store("create", "key neither absent nor present"))
        })
    }

    fn delete_if(&self, key: &str, value: &str, lease: LeaseId) -> StoreFuture<'_, Option<i64>> {
        let mut client = self.client.clone();
        let (key, value) = (key.to_owned(), value.to_owned());
        Box::pin(async move {
            let txn = Txn::new()
                .when([
                    Compare::value(key.clone(), CompareOp::Equal, value),
                    Compare::lease(key.clone(), CompareOp::Equal, lease.0),
                ])
                .and_then([TxnOp::delete(key, None)]);
            let resp = client.txn(txn).await.map_err(err("delete"))?;
            Ok(resp.succeeded().then(|| revision(resp.header())))
        })
    }

    fn get_prefix(&self, prefix: &str) -> StoreFuture<'_, Snapshot> {
        let mut client = self.client.clone();
        let prefix = prefix.to_owned();
        Box::pin(async move {
            let resp = client
                .get(prefix, Some(GetOptions::new().with_prefix()))
                .await
                .map_err(err("get"))?;
            Ok(Snapshot {
                revision: revision(resp.header()),
                kvs: resp.kvs().iter().filter_map(key_value).collect(),
            })
        })
    }

    fn watch_prefix(&self, prefix: &str, from_revision: i64) -> StoreFuture<'_, WatchStream> {
        let mut client = self.client.clone();
        let prefix = prefix.to_owned();
        Box::pin(async move {
            let options = WatchOptions::new()
                .with_prefix()
                .with_start_revision(from_revision);
            let stream = client
                .watch(prefix, Some(options))
                .await
                .map_err(err("watch"))?;
            // The stream carries the request sender too: dropping it would end the watch.
            let events = futures_util::stream::unfold(Some(stream), |open| async move {
                let mut stream = open?;
                loop {
                    let resp = match stream.message().await {
                        Ok(Some(resp)) => resp,
                        Ok(None) => {
                            let e = ClusterError::store("watch", "stream closed");
                            return Some((Err(e), None));
                        }
                        Err(e) => return Some((Err(ClusterError::store("watch", e)), None)),
                    };
                    if resp.canceled() || resp.compact_revision() != 0 {
                        let why = format!(
                            "cancelled (compacted at {}): {}",
                            resp.compact_revision(),
                            resp.cancel_reason()
                        );
                        return Some((Err(ClusterError::store("watch", why)), None));
                    }
                    let batch: Vec<WatchEvent> = resp
                        .events()
                        .iter()
                        .filter_map(|event| {
                            let kv = key_value(event.kv()?)?;
                            Some(match event.event_type() {
                                EventType::Put => WatchEvent::Put(kv),
                                EventType::Delete => WatchEvent::Delete {
                                    key: kv.key,
                                    revision: kv.mod_revision,
                                },
                            })
                        })
                        .collect();
                    // "Created" and progress answers carry no events.
                    if !batch.is_empty() {
                        return Some((Ok(batch), Some(stream)));
                    }
                }
            });
            Ok(Box::pin(events) as WatchStream)
        })
    }

    fn revoke(&self, lease: LeaseId) -> StoreFuture<'_, ()> {
        let mut client = self.client.clone();
        Box::pin(async move {
            client
                .lease_revoke(lease.0)
                .await
                .map_err(err("lease revoke"))?;
            Ok(())
        })
    }
}
