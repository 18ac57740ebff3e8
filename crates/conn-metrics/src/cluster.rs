//! The cluster families: this node's view of a cluster of supervisors sharing one
//! fleet. Every series carries the node's name as its only label (`node`), so a
//! Prometheus scraping every node sees one series per node and family.

use std::{
    fmt,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use prometheus::{core::Collector, IntCounter, IntGauge, Opts, Registry};

use crate::error::MetricsError;

/// This node in the cluster: `helo_cluster_members`, `helo_cluster_owned_encoders`,
/// `helo_cluster_ownership_changes_total`, `helo_cluster_store_up` and
/// `helo_cluster_acting`, each labelled `node`.
///
/// Take it once with [`HeloMetrics::cluster`](crate::HeloMetrics::cluster); clones
/// share the series.
#[derive(Clone)]
pub struct ClusterMetrics {
    node: Arc<str>,
    members: IntGauge,
    owned: IntGauge,
    changes: IntCounter,
    store_up: IntGauge,
    acting: IntGauge,
    /// The node's own cumulative count, as last exported: the counter follows it.
    changes_seen: Arc<AtomicU64>,
}

impl ClusterMetrics {
    pub(crate) fn register(registry: &Registry, node: &str) -> Result<Self, MetricsError> {
        let opts = |name, help| Opts::new(name, help).const_label("node", node);
        Ok(Self {
            node: Arc::from(node),
            members: registered(registry, "helo_cluster_members", || {
                IntGauge::with_opts(opts(
                    "helo_cluster_members",
                    "Live members of the cluster, as this node sees them.",
                ))
            })?,
            owned: registered(registry, "helo_cluster_owned_encoders", || {
                IntGauge::with_opts(opts(
                    "helo_cluster_owned_encoders",
                    "Encoders whose owner key this node holds.",
                ))
            })?,
            changes: registered(registry, "helo_cluster_ownership_changes_total", || {
                IntCounter::with_opts(opts(
                    "helo_cluster_ownership_changes_total",
                    "Owner keys this node gained or lost.",
                ))
            })?,
            store_up: registered(registry, "helo_cluster_store_up", || {
                IntGauge::with_opts(opts(
                    "helo_cluster_store_up",
                    "1 while this node's last request to etcd succeeded.",
                ))
            })?,
            acting: registered(registry, "helo_cluster_acting", || {
                IntGauge::with_opts(opts(
                    "helo_cluster_acting",
                    "1 while this node's lease is valid with margin, so it may act on what \
                     it owns; 0 while it only observes.",
                ))
            })?,
            changes_seen: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The node these series are labelled with.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Live members.
    pub fn set_members(&self, members: usize) {
        self.members.set(saturate(members));
    }

    /// Encoders this node owns.
    pub fn set_owned_encoders(&self, owned: usize) {
        self.owned.set(saturate(owned));
    }

    /// Whether the last request to etcd succeeded.
    pub fn set_store_up(&self, up: bool) {
        self.store_up.set(i64::from(up));
    }

    /// Whether this node may act on what it owns.
    pub fn set_acting(&self, acting: bool) {
        self.acting.set(i64::from(acting));
    }

    /// The node's own running count of ownership changes since it started; the
    /// counter moves up by the difference. A smaller count than before (it cannot
    /// happen within one process) leaves the counter where it is.
    pub fn set_ownership_changes(&self, total: u64) {
        let before = self.changes_seen.fetch_max(total, Ordering::Relaxed);
        if total > before {
            self.changes.inc_by(total - before);
        }
    }
}

/// Creates one metric and registers it.
fn registered<M: Collector + Clone + 'static>(
    registry: &Registry,
    family: &'static str,
    make: impl FnOnce() -> prometheus::Result<M>,
) -> Result<M, MetricsError> {
    let err = |source| MetricsError::Register { family, source };
    let metric = make().map_err(err)?;
    registry.register(Box::new(metric.clone())).map_err(err)?;
    Ok(metric)
}

fn saturate(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl fmt::Debug for ClusterMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterMetrics")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use crate::HeloMetrics;

    #[test]
    fn every_series_carries_the_node_and_the_counter_follows_the_total() {
        let metrics = HeloMetrics::new().unwrap();
        let cluster = metrics.cluster("sup-a").unwrap();
        cluster.set_members(3);
        cluster.set_owned_encoders(100);
        cluster.set_store_up(true);
        cluster.set_acting(false);
        cluster.set_ownership_changes(100);
        cluster.set_ownership_changes(140);
        cluster.set_ownership_changes(120);
        let text = metrics.gather_text();
        for line in [
            r#"helo_cluster_members{node="sup-a"} 3"#,
            r#"helo_cluster_owned_encoders{node="sup-a"} 100"#,
            r#"helo_cluster_store_up{node="sup-a"} 1"#,
            r#"helo_cluster_acting{node="sup-a"} 0"#,
            r#"helo_cluster_ownership_changes_total{node="sup-a"} 140"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        // Encoder series removal leaves the node's series alone.
        metrics.remove_encoder("sup-a");
        assert!(metrics.gather_text().contains("helo_cluster_members"));
    }

    #[test]
    fn a_second_call_answers_the_same_series() {
        let metrics = HeloMetrics::new().unwrap();
        let first = metrics.cluster("sup-a").unwrap();
        let second = metrics.cluster("sup-b").unwrap();
        second.set_members(2);
        assert_eq!(second.node(), "sup-a");
        assert!(metrics
            .gather_text()
            .contains(r#"helo_cluster_members{node="sup-a"} 2"#));
        drop(first);
    }
}
