//! Several supervisors as one cluster: the supervisor's side of `conn-cluster`.
//!
//! The node joins at start; a driver task then follows its [`ClusterView`]: a loop
//! runs (observing at least) for every encoder the node supervises, and an encoder
//! the node must give up is released only after its loop has stopped. Every device
//! action and every operator command first asks `Cluster::permit`: the node acts
//! only on what it owns, and only while its lease is valid with margin. Every
//! decision about membership, assignment and fencing is `conn-cluster`'s.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    sync::Mutex,
    time::Duration,
};

use conn_cluster::{ClusterConfig, ClusterNode, ClusterView, EtcdStore};
use conn_metrics::ClusterMetrics;
use serde::Serialize;
use tokio::{
    sync::{oneshot, watch},
    task::JoinHandle,
};

use crate::{
    config::{ClusterSettings, EncoderConfig, FleetConfig},
    fleet::{lock, Fleet, FleetError},
};

/// Why this node does not act on an encoder now.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotActing {
    /// This node could not renew its lease in time: it observes and acts on nothing
    /// until it can again.
    Demoted,
    /// This node does not hold the encoder's owner key: `owner` does, or nobody yet.
    NotOwner {
        /// The node that owns it, as this node sees it.
        owner: Option<String>,
    },
}

impl NotActing {
    /// `demoted` or `not_owner`: the `reason` of log lines and API answers.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Demoted => "demoted",
            Self::NotOwner { .. } => "not_owner",
        }
    }

    /// The node that owns the encoder, when another one does.
    pub fn owner(&self) -> Option<&str> {
        match self {
            Self::NotOwner { owner } => owner.as_deref(),
            Self::Demoted => None,
        }
    }
}

impl fmt::Display for NotActing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Demoted => f.write_str(
                "not acting: this node cannot renew its etcd lease (demoted, observing only)",
            ),
            Self::NotOwner { owner: Some(owner) } => {
                write!(f, "not acting: node {owner} owns this encoder")
            }
            Self::NotOwner { owner: None } => {
                f.write_str("not acting: this node does not hold the encoder's owner key")
            }
        }
    }
}

/// This node's membership, shared by the fleet and its loops.
pub(crate) struct Cluster {
    /// As the file said at start: a reload cannot change them.
    settings: ClusterSettings,
    node: ClusterNode,
    view: watch::Receiver<ClusterView>,
    /// How long an action may take once permitted (the lease's demotion margin).
    margin: Duration,
    metrics: ClusterMetrics,
    /// Every encoder of the shared fleet, by id: a loop can start for any of them.
    configs: Mutex<BTreeMap<String, EncoderConfig>>,
    /// One change of the loops at a time (the driver's, a reload's, shutdown's).
    pub(crate) changing: tokio::sync::Mutex<()>,
    driver: Mutex<Option<JoinHandle<()>>>,
    /// Where the node talks to etcd.
    _thread: CoordinationThread,
}

/// A thread of its own for the node's work with etcd (lease renewals, the watch,
/// owner keys): a fleet busy with hundreds of checks must not delay a renewal past
/// the demotion margin, or the node would stop acting (and its encoders move) for
/// nothing. Stops when dropped.
struct CoordinationThread {
    handle: tokio::runtime::Handle,
    _stop: oneshot::Sender<()>,
}

impl CoordinationThread {
    fn spawn() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("helo-cluster".into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        Ok(Self {
            handle,
            _stop: stop,
        })
    }
}

/// What `GET /api/cluster` answers: this node's view of the cluster.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    /// This node.
    pub node: String,
    /// Live members, sorted.
    pub members: Vec<String>,
    /// The last request to etcd succeeded.
    pub store_up: bool,
    /// This node may act on what it owns (its lease is valid with margin).
    pub acting: bool,
    /// Encoders whose owner key this node holds.
    pub owned: usize,
    /// Owner keys this node gained or lost since it started.
    pub ownership_changes: u64,
    /// Every encoder of the fleet and the node that owns it (the holder of its owner
    /// key, else the member rendezvous hashing names; `null` without members).
    pub owners: BTreeMap<String, Option<String>>,
}

// === impl Cluster ===

impl Cluster {
    /// Whether this node may act on `encoder` now; if not, why not.
    pub(crate) fn permit(&self, encoder: &str) -> Result<(), NotActing> {
        if self.node.may_act(encoder) {
            return Ok(());
        }
        let view = self.view.borrow();
        if !view.can_act {
            return Err(NotActing::Demoted);
        }
        let owner = view
            .owner_of(encoder)
            .filter(|owner| *owner != view.node)
            .map(str::to_owned);
        Err(NotActing::NotOwner { owner })
    }

    /// How long an action may take once permitted: the lease's demotion margin. An
    /// action permitted just before demotion then ends (or is given up while still
    /// queued) before etcd can expire the lease and another node take over.
    pub(crate) fn action_deadline(&self) -> Duration {
        self.margin
    }

    pub(crate) fn node_name(&self) -> &str {
        self.node.node()
    }

    pub(crate) fn owner_of(&self, encoder: &str) -> Option<String> {
        self.node.owner_of(encoder)
    }

    pub(crate) fn view(&self) -> ClusterView {
        self.view.borrow().clone()
    }

    pub(crate) fn config_of(&self, encoder: &str) -> Option<EncoderConfig> {
        lock(&self.configs).get(encoder).cloned()
    }

    pub(crate) fn knows(&self, encoder: &str) -> bool {
        lock(&self.configs).contains_key(encoder)
    }

    pub(crate) fn fleet_ids(&self) -> BTreeSet<String> {
        lock(&self.configs).keys().cloned().collect()
    }

    /// A reload: the new fleet. Answers the ids whose configuration changed, whose
    /// loops must start again. A changed `[cluster]` table is reported, not applied:
    /// the node keeps its membership until it restarts.
    pub(crate) fn set_configs(&self, config: &FleetConfig) -> Result<Vec<String>, FleetError> {
        if config.cluster.as_ref() != Some(&self.settings) {
            tracing::warn!(
                node = %self.node.node(),
                reason = "cluster_table_changed",
                "the [cluster] table changed; it applies at the next start, the node stays as it is"
            );
        }
        let encoders = &config.encoders;
        self.node
            .set_encoders(encoders.iter().map(|e| e.id.clone()).collect())?;
        let new: BTreeMap<String, EncoderConfig> =
            encoders.iter().map(|e| (e.id.clone(), e.clone())).collect();
        let mut configs = lock(&self.configs);
        let changed = configs
            .iter()
            .filter(|(id, old)| {
                new.get(*id)
                    .is_some_and(|n| !crate::fleet::same_encoder(old, n))
            })
            .map(|(id, _)| id.clone())
            .collect();
        *configs = new;
        Ok(changed)
    }

    pub(crate) async fn release(&self, encoder: &str) {
        match self.node.release(encoder).await {
            Ok(()) => tracing::info!(encoder_id = %encoder, reason = "released", "handed over"),
            // The node retries by itself; the key goes with the lease in any case.
            Err(e) => {
                tracing::warn!(encoder_id = %encoder, reason = "release_pending", error = %e, "owner key not deleted yet")
            }
        }
    }

    /// Exports the view.
    fn record(&self, view: &ClusterView) {
        let m = &self.metrics;
        m.set_members(view.members.len());
        m.set_owned_encoders(view.owned.len());
        m.set_store_up(view.store_up);
        m.set_acting(view.can_act);
        m.set_ownership_changes(view.ownership_changes);
    }

    pub(crate) fn status(&self) -> ClusterStatus {
        let view = self.view();
        let owners = self
            .fleet_ids()
            .into_iter()
            .map(|e| {
                let owner = view.owner_of(&e).map(str::to_owned);
                (e, owner)
            })
            .collect();
        ClusterStatus {
            node: view.node.clone(),
            members: view.members.clone(),
            store_up: view.store_up,
            acting: view.can_act,
            owned: view.owned.len(),
            ownership_changes: view.ownership_changes,
            owners,
        }
    }

    /// Why this node is not ready, if it is not: it cannot act on what it owns.
    pub(crate) fn unready(&self) -> Option<String> {
        let view = self.view.borrow();
        match (view.store_up, view.can_act) {
            (true, true) => None,
            (false, true) => {
                Some("etcd unreachable; still acting until the lease margin runs out".to_string())
            }
            (false, false) => Some("etcd unreachable; observing only, not acting".to_string()),
            (true, false) => {
                Some("no valid lease in the cluster yet; observing only, not acting".to_string())
            }
        }
    }

    /// Stops following the view (shutdown).
    pub(crate) fn stop_driver(&self) {
        if let Some(driver) = lock(&self.driver).take() {
            driver.abort();
        }
    }

    /// Leaves the cluster: the lease is revoked, so the others take over at once.
    pub(crate) async fn leave(&self) {
        match self.node.shutdown().await {
            Ok(()) => tracing::info!(node = %self.node.node(), "left the cluster"),
            Err(e) => {
                tracing::warn!(node = %self.node.node(), error = %e, "could not revoke the lease; it expires by itself")
            }
        }
    }
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.node.node())
            .field("margin", &self.margin)
            .finish_non_exhaustive()
    }
}

/// The library's settings from the file's.
pub fn cluster_config(settings: &ClusterSettings) -> ClusterConfig {
    ClusterConfig::new(
        settings.etcd.clone(),
        settings.name.clone(),
        settings.node.clone(),
    )
    .with_lease_ttl(settings.lease_ttl)
}

/// Joins the cluster `settings` names and starts supervising this node's share of
/// `config`'s encoders; from then on the loops follow ownership as it moves.
///
/// Fails with [`FleetError::Cluster`]: an invalid setting
/// ([`conn_cluster::ClusterError::is_invalid_config`]) or etcd not answering
/// ([`conn_cluster::ClusterError::is_unreachable`], naming the endpoints).
pub async fn start(config: &FleetConfig, settings: &ClusterSettings) -> Result<Fleet, FleetError> {
    let cluster_config = cluster_config(settings);
    let margin = cluster_config.demotion_margin();
    let ids = config.encoders.iter().map(|e| e.id.clone()).collect();
    let thread = CoordinationThread::spawn().map_err(FleetError::ClusterThread)?;
    let joined = thread
        .handle
        .spawn(async move {
            let store = EtcdStore::connect(&cluster_config).await?;
            ClusterNode::start(cluster_config, store, ids).await
        })
        .await;
    let node = match joined {
        Ok(started) => started?,
        Err(e) => return Err(FleetError::ClusterThread(std::io::Error::other(e))),
    };
    start_with(config, settings, node, margin, thread).await
}

/// The rest of [`start`], once the node has joined.
async fn start_with(
    config: &FleetConfig,
    settings: &ClusterSettings,
    node: ClusterNode,
    margin: Duration,
    thread: CoordinationThread,
) -> Result<Fleet, FleetError> {
    let fleet = Fleet::with_metrics(&config.defaults, config.metrics)?;
    let metrics = fleet.metrics().cluster(node.node())?;
    let cluster = std::sync::Arc::new(Cluster {
        settings: settings.clone(),
        view: node.subscribe(),
        node,
        margin,
        metrics,
        configs: Mutex::new(
            config
                .encoders
                .iter()
                .map(|e| (e.id.clone(), e.clone()))
                .collect(),
        ),
        changing: tokio::sync::Mutex::new(()),
        driver: Mutex::new(None),
        _thread: thread,
    });
    let fleet = fleet.join(cluster.clone());
    let first = cluster.view();
    cluster.record(&first);
    fleet.follow(&first).await;
    fleet.set_ready();
    tracing::info!(
        node = %cluster.node_name(),
        members = ?first.members,
        supervised = first.supervised().len(),
        "joined the cluster"
    );
    let driver = tokio::spawn(drive(fleet.clone(), cluster.clone()));
    *lock(&cluster.driver) = Some(driver);
    Ok(fleet)
}

/// Follows the view until the node stops.
async fn drive(fleet: Fleet, cluster: std::sync::Arc<Cluster>) {
    let mut views = cluster.view.clone();
    loop {
        let view = views.borrow_and_update().clone();
        cluster.record(&view);
        fleet.follow(&view).await;
        if views.changed().await.is_err() {
            return;
        }
    }
}

/// How the loops must change to follow a view.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Moves {
    /// Loops to stop.
    pub(crate) stop: Vec<String>,
    /// Of those (or without a loop), encoders to release once their loop stopped.
    pub(crate) release: Vec<String>,
    /// Loops to start.
    pub(crate) start: Vec<String>,
}

/// The changes that make the running loops follow `view`.
///
/// A loop runs for every encoder of the fleet the node supervises (assigned or
/// owned); an owned encoder no longer assigned is stopped, then released. A loop for
/// an encoder that is merely no longer supervised stops only while the view is
/// backed by etcd (the store answers and this node is a member): a node cut off from
/// etcd cannot know who owns what, so it keeps observing, and acts on nothing.
pub(crate) fn moves(
    view: &ClusterView,
    fleet: &BTreeSet<String>,
    running: &BTreeSet<String>,
) -> Moves {
    let supervised = view.supervised();
    let release: BTreeSet<&str> = view.to_release().into_iter().collect();
    let backed = view.store_up && view.members.contains(&view.node);
    let stop = running
        .iter()
        .filter(|e| {
            let e = e.as_str();
            release.contains(e) || !fleet.contains(e) || (backed && !supervised.contains(e))
        })
        .cloned()
        .collect();
    let start = supervised
        .iter()
        .filter(|e| fleet.contains(**e) && !running.contains(**e) && !release.contains(**e))
        .map(|e| e.to_string())
        .collect();
    Moves {
        stop,
        release: release.into_iter().map(str::to_owned).collect(),
        start,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn view(node: &str, members: &[&str], assigned: &[&str], owned: &[&str]) -> ClusterView {
        let mut view = ClusterView::default();
        view.node = node.into();
        view.members = members.iter().map(|m| m.to_string()).collect();
        view.assigned = set(assigned);
        view.owned = set(owned);
        view.store_up = true;
        view.can_act = true;
        view
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn loops_start_for_what_is_supervised_and_stop_before_release() {
        let fleet = set(&["e1", "e2", "e3", "e4"]);
        // e1 assigned and owned; e2 assigned, key not taken yet (observe at once);
        // e3 owned but assigned elsewhere now (a node joined); e4 someone else's.
        let v = view("a", &["a", "b"], &["e1", "e2"], &["e1", "e3"]);
        let m = moves(&v, &fleet, &set(&["e1", "e3", "e4"]));
        assert_eq!(
            m,
            Moves {
                stop: strings(&["e3", "e4"]),
                release: strings(&["e3"]),
                start: strings(&["e2"]),
            }
        );
    }

    #[test]
    fn a_node_cut_off_from_etcd_keeps_observing() {
        let fleet = set(&["e1", "e2"]);
        // The lease is lost: this node is no member in its own view, owns nothing.
        let mut v = view("a", &["b"], &[], &[]);
        v.store_up = false;
        v.can_act = false;
        let m = moves(&v, &fleet, &set(&["e1", "e2"]));
        assert_eq!(m, Moves::default());
        // Lost for good: etcd answers, yet this node is no member (it joins again).
        v.store_up = true;
        assert_eq!(moves(&v, &fleet, &set(&["e1", "e2"])), Moves::default());
        // Back as a member, the view is authoritative again: both are b's now.
        v.members = vec!["a".into(), "b".into()];
        let m = moves(&v, &fleet, &set(&["e1", "e2"]));
        assert_eq!(m.stop, strings(&["e1", "e2"]));
    }

    #[test]
    fn encoders_that_left_the_fleet_stop_and_unknown_ones_never_start() {
        // e2 left the file: the node still owns it (to release); e9 is assigned in a
        // view computed before the reload but has no configuration here.
        let v = view("a", &["a"], &["e1", "e9"], &["e1", "e2"]);
        let m = moves(&v, &set(&["e1"]), &set(&["e1", "e2"]));
        assert_eq!(
            m,
            Moves {
                stop: strings(&["e2"]),
                release: strings(&["e2"]),
                start: vec![],
            }
        );
    }

    #[test]
    fn refusals_say_why_and_who_owns_it() {
        assert_eq!(NotActing::Demoted.reason(), "demoted");
        assert!(NotActing::Demoted.to_string().contains("demoted"));
        let other = NotActing::NotOwner {
            owner: Some("sup-b".into()),
        };
        assert_eq!(
            (other.reason(), other.owner()),
            ("not_owner", Some("sup-b"))
        );
        assert!(other.to_string().contains("sup-b"), "{other}");
        let nobody = NotActing::NotOwner { owner: None };
        assert!(nobody.to_string().contains("owner key"), "{nobody}");
    }
}
