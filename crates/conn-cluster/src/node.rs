//! [`ClusterNode`]: the handle the supervisor holds; the work happens in
//! [`Task`](crate::task::Task).

use std::{fmt, sync::Arc};

use tokio::{
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
};

use crate::{
    config::{check_name, ClusterConfig},
    error::ClusterError,
    fence::Fence,
    store::CoordinationStore,
    task::{Command, Parts, Task},
    view::ClusterView,
};

/// This process as a member of the cluster.
///
/// Dropping it without [`shutdown`](Self::shutdown) stops it at once, as a crash would:
/// it acts on nothing from then on, and its keys stay in etcd until its lease expires.
pub struct ClusterNode {
    node: String,
    fence: Arc<Fence>,
    view: watch::Receiver<ClusterView>,
    encoders: watch::Sender<Vec<String>>,
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
}

impl ClusterNode {
    /// Validates `config`, joins the cluster (grants a lease, registers this node,
    /// reads every member and owner key) and starts the node's task, which then takes
    /// the owner keys of the `encoders` assigned to this node.
    ///
    /// Fails with [`ClusterError::StoreUnreachable`] (naming the endpoints) if the store
    /// does not answer within a few seconds (half the TTL, 1-5 s).
    pub async fn start(
        config: ClusterConfig,
        store: impl CoordinationStore,
        encoders: Vec<String>,
    ) -> Result<Self, ClusterError> {
        config.validate()?;
        let encoders = normalize(encoders)?;
        let fence = Arc::new(Fence::default());
        let (view_tx, view) = watch::channel(ClusterView {
            node: config.node.clone(),
            ..ClusterView::default()
        });
        let (encoders_tx, encoders_rx) = watch::channel(encoders);
        let (commands, commands_rx) = mpsc::channel(64);
        let mut task = Task::new(Parts {
            store: Arc::new(store),
            cluster: config.name.clone(),
            node: config.node.clone(),
            ttl: config.lease_ttl,
            fence: fence.clone(),
            view: view_tx,
            encoders: encoders_rx,
            commands: commands_rx,
        });
        let limit = task.start_timeout();
        let joined = match tokio::time::timeout(limit, task.establish()).await {
            Ok(joined) => joined,
            Err(_) => Err(ClusterError::Timeout {
                op: "join",
                timeout: limit,
            }),
        };
        if let Err(err) = joined {
            task.abandon().await;
            return Err(ClusterError::StoreUnreachable {
                endpoints: config.etcd.clone(),
                detail: err.to_string(),
            });
        }
        task.publish();
        let task = tokio::spawn(task.run());
        Ok(Self {
            node: config.node,
            fence,
            view,
            encoders: encoders_tx,
            commands,
            task,
        })
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The view as it changes.
    pub fn subscribe(&self) -> watch::Receiver<ClusterView> {
        self.view.clone()
    }

    /// The view now.
    pub fn view(&self) -> ClusterView {
        self.view.borrow().clone()
    }

    /// Replaces the fleet (after a config reload). Encoders that leave it show up in
    /// [`ClusterView::to_release`] if this node owns them.
    pub fn set_encoders(&self, encoders: Vec<String>) -> Result<(), ClusterError> {
        let encoders = normalize(encoders)?;
        self.encoders.send_replace(encoders);
        Ok(())
    }

    /// Whether this node may act on `encoder` now (start or stop a stream or a
    /// recording, switch a profile, cool a connection): it holds the owner key and its
    /// lease is valid with margin. Reads local state only; call it before every action.
    pub fn may_act(&self, encoder: &str) -> bool {
        self.fence.may_act(encoder)
    }

    /// Gives `encoder` up. Call it after the loop for `encoder` has stopped acting:
    /// [`may_act`](Self::may_act) is false for it from this call on, and the owner key
    /// is deleted so that the next owner can take it.
    ///
    /// An `Err` means the key could not be deleted yet; the node keeps trying, and the
    /// key goes with the lease in any case. It is not taken again while this is pending.
    pub async fn release(&self, encoder: &str) -> Result<(), ClusterError> {
        self.fence.begin_release(encoder);
        let (reply, answer) = oneshot::channel();
        let command = Command::Release {
            encoder: encoder.to_owned(),
            reply,
        };
        if self.commands.send(command).await.is_err() {
            return Err(self.gone());
        }
        answer.await.unwrap_or_else(|_| Err(self.gone()))
    }

    /// The node that owns `encoder`, as this node sees it: the holder of its owner
    /// key, else the live member rendezvous hashing names.
    pub fn owner_of(&self, encoder: &str) -> Option<String> {
        self.view.borrow().owner_of(encoder).map(str::to_owned)
    }

    /// Leaves the cluster cleanly: stops acting, then revokes the lease so that its
    /// member and owner keys go at once and the others take over without waiting for
    /// the TTL.
    pub async fn shutdown(&self) -> Result<(), ClusterError> {
        self.fence.close();
        let (reply, answer) = oneshot::channel();
        if self
            .commands
            .send(Command::Shutdown { reply })
            .await
            .is_err()
        {
            return Err(self.gone());
        }
        answer.await.unwrap_or_else(|_| Err(self.gone()))
    }

    fn gone(&self) -> ClusterError {
        ClusterError::Shutdown {
            node: self.node.clone(),
        }
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        self.fence.close();
        self.task.abort();
    }
}

impl fmt::Debug for ClusterNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterNode")
            .field("node", &self.node)
            .field("view", &*self.view.borrow())
            .finish_non_exhaustive()
    }
}

/// Sorted, without duplicates, every id a valid key segment.
fn normalize(mut encoders: Vec<String>) -> Result<Vec<String>, ClusterError> {
    for encoder in &encoders {
        check_name("encoders", encoder)?;
    }
    encoders.sort_unstable();
    encoders.dedup();
    Ok(encoders)
}
