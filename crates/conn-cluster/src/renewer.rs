//! Keeps one lease alive, on its own task, so that slow store requests of the node's
//! task never delay a renewal. It moves the fence's deadline forward itself and
//! reports what it sees on a `watch` channel (latest wins, never blocks).

use std::sync::Arc;

use tokio::{
    sync::watch,
    task::JoinHandle,
    time::{sleep_until, Instant},
};

use crate::{
    config::Timing,
    error::ClusterError,
    fence::Fence,
    store::{CoordinationStore, Lease},
};

/// The renewer's last word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Renewal {
    /// Nothing sent yet.
    Started,
    /// The last renewal succeeded.
    Renewed,
    /// The last renewal failed; the next one is on schedule.
    Failed(ClusterError),
    /// etcd no longer knows the lease. The renewer has stopped.
    Lost,
    /// No answer within TTL - margin: the node can no longer act on this lease, yet
    /// renewals may still reach etcd. The renewer has stopped renewing it.
    GaveUp,
}

/// Aborts the renewer when dropped (with the node's task, or on a new lease).
#[derive(Debug)]
pub(crate) struct Renewer {
    task: JoinHandle<()>,
}

impl Renewer {
    /// Renews `lease`, granted by a request sent at `granted_at`, every check interval.
    pub(crate) fn spawn(
        store: Arc<dyn CoordinationStore>,
        fence: Arc<Fence>,
        lease: Lease,
        granted_at: Instant,
        report: watch::Sender<Renewal>,
    ) -> Self {
        let task = tokio::spawn(renew(store, fence, lease, granted_at, report));
        Self { task }
    }
}

impl Drop for Renewer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn renew(
    store: Arc<dyn CoordinationStore>,
    fence: Arc<Fence>,
    lease: Lease,
    granted_at: Instant,
    report: watch::Sender<Renewal>,
) {
    let mut timing = Timing::for_ttl(lease.ttl);
    let mut next = granted_at + timing.check_interval;
    loop {
        sleep_until(next).await;
        let sent = Instant::now();
        next = sent + timing.check_interval;
        // An answer counts from when its request was sent, so a late one still
        // renews the right to act, up to the point where it could not.
        let useful = timing.ttl - timing.margin;
        match tokio::time::timeout(useful, store.keep_alive(lease.id)).await {
            Ok(Ok(Some(ttl))) => {
                timing = Timing::for_ttl(ttl);
                fence.renewed(lease.id, sent + ttl - timing.margin);
                report.send_replace(Renewal::Renewed);
            }
            Ok(Ok(None)) => {
                report.send_replace(Renewal::Lost);
                return;
            }
            Ok(Err(err)) => {
                report.send_replace(Renewal::Failed(err));
            }
            Err(_) => {
                report.send_replace(Renewal::GaveUp);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::MemoryStore;

    #[tokio::test(start_paused = true)]
    async fn renews_every_check_interval_and_reports_loss() {
        let store = MemoryStore::new();
        let client = store.client();
        let ttl = Duration::from_secs(10);
        let granted_at = Instant::now();
        let lease = client.grant(ttl).await.unwrap();
        let fence = Arc::new(Fence::default());
        fence.set_lease(Some((lease.id, granted_at + ttl - ttl / 3)));
        fence.set_registered(lease.id);
        let (tx, mut rx) = watch::channel(Renewal::Started);
        let _renewer = Renewer::spawn(
            Arc::new(client.clone()),
            fence.clone(),
            lease,
            granted_at,
            tx,
        );

        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow(), Renewal::Renewed);
        assert_eq!(Instant::now(), granted_at + Duration::from_secs(2));
        assert_eq!(
            store.lease_expiry(lease.id),
            Some(granted_at + Duration::from_secs(12))
        );
        assert_eq!(
            fence.acting_until(),
            Some(granted_at + Duration::from_secs(2) + ttl - ttl / 3)
        );

        client.revoke(lease.id).await.unwrap();
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow(), Renewal::Lost);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_when_no_answer_could_still_be_of_use() {
        let store = MemoryStore::new();
        let client = store.client();
        let ttl = Duration::from_secs(10);
        let granted_at = Instant::now();
        let lease = client.grant(ttl).await.unwrap();
        let fence = Arc::new(Fence::default());
        let (tx, mut rx) = watch::channel(Renewal::Started);
        client.set_hung();
        let _renewer = Renewer::spawn(Arc::new(client), fence, lease, granted_at, tx);
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow(), Renewal::GaveUp);
        // Sent at 2 s, waited TTL - margin (tokio's timers round up to the millisecond).
        let gave_up = Instant::now() - (granted_at + Duration::from_secs(2) + ttl - ttl / 3);
        assert!(gave_up < Duration::from_millis(1), "{gave_up:?}");
    }
}
