//! The node's behaviour against the in-memory store, on tokio's paused clock: every
//! instant is exact, and after every step the fencing invariant is checked.

use std::{collections::BTreeMap, time::Duration};

use tokio::time::{sleep, sleep_until, Instant};

use crate::{
    rendezvous, ClusterConfig, ClusterError, ClusterNode, LeaseId, MemoryClient, MemoryStore,
};

const TTL: Duration = Duration::from_secs(10);
const STEP: Duration = Duration::from_millis(50);

fn config(node: &str) -> ClusterConfig {
    ClusterConfig::new(vec!["http://127.0.0.1:2379".into()], "fleet", node).with_lease_ttl(TTL)
}

fn fleet(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("enc-{i:03}")).collect()
}

struct Member {
    name: String,
    client: MemoryClient,
    node: Option<ClusterNode>,
}

/// A store, some nodes on it, and the test playing each node's supervisor.
struct Cluster {
    store: MemoryStore,
    fleet: Vec<String>,
    members: Vec<Member>,
}

impl Cluster {
    async fn start(names: &[&str], fleet: Vec<String>) -> Self {
        let mut cluster = Self {
            store: MemoryStore::new(),
            fleet,
            members: Vec::new(),
        };
        for name in names {
            cluster.add(name).await;
        }
        cluster
    }

    async fn add(&mut self, name: &str) {
        let client = self.store.client();
        let node = ClusterNode::start(config(name), client.clone(), self.fleet.clone())
            .await
            .expect("node starts");
        self.members.retain(|m| m.name != name);
        self.members.push(Member {
            name: name.to_owned(),
            client,
            node: Some(node),
        });
    }

    fn member(&self, name: &str) -> &Member {
        self.members
            .iter()
            .find(|m| m.name == name)
            .expect("member")
    }

    fn node(&self, name: &str) -> &ClusterNode {
        self.member(name).node.as_ref().expect("running")
    }

    fn client(&self, name: &str) -> &MemoryClient {
        &self.member(name).client
    }

    fn live(&self) -> impl Iterator<Item = &ClusterNode> {
        self.members.iter().filter_map(|m| m.node.as_ref())
    }

    /// Like `SIGKILL`: the node's task stops, its lease is neither renewed nor revoked.
    fn kill(&mut self, name: &str) {
        let member = self.members.iter_mut().find(|m| m.name == name).unwrap();
        drop(member.node.take());
    }

    fn lease_of(&self, name: &str) -> LeaseId {
        self.store
            .get(&format!("/fleet/members/{name}"))
            .expect("member key")
            .lease
    }

    /// The store's answer: encoder -> owning node.
    fn owners(&self) -> BTreeMap<String, String> {
        self.store
            .list("/fleet/owners/")
            .into_iter()
            .map(|kv| (kv.key["/fleet/owners/".len()..].to_owned(), kv.value))
            .collect()
    }

    /// The fencing invariant: a node may act on an encoder only while the store says it
    /// owns it, so never two at once.
    fn check_fencing(&self) {
        let owners = self.owners();
        for encoder in &self.fleet {
            let acting: Vec<&str> = self
                .live()
                .filter(|n| n.may_act(encoder))
                .map(ClusterNode::node)
                .collect();
            assert!(acting.len() <= 1, "{encoder}: {acting:?} may all act");
            if let Some(node) = acting.first() {
                assert_eq!(
                    owners.get(encoder).map(String::as_str),
                    Some(*node),
                    "{node} may act on {encoder} without holding its key"
                );
            }
        }
    }

    /// Plays each supervisor: stops the loops listed in `to_release`, then releases.
    async fn supervise(&self) {
        for node in self.live() {
            let view = node.view();
            for encoder in view.to_release() {
                let _ = node.release(encoder).await;
            }
        }
    }

    /// Every live, acting member owns exactly what rendezvous gives it among the live
    /// members, and may act on it.
    fn settled(&self) -> bool {
        let names: Vec<&str> = self.live().map(ClusterNode::node).collect();
        let owners = self.owners();
        self.fleet.iter().all(|e| {
            let expected = rendezvous::owner_of(e, &names).copied();
            owners.get(e).map(String::as_str) == expected
                && expected.is_some_and(|n| self.node(n).may_act(e))
        }) && self.live().all(|n| n.view().members.len() == names.len())
    }

    /// Steps the clock until `done`, checking the invariant at every step.
    async fn run_until(&self, limit: Duration, done: impl Fn(&Self) -> bool) -> Duration {
        let start = Instant::now();
        loop {
            self.check_fencing();
            if done(self) {
                return start.elapsed();
            }
            assert!(start.elapsed() < limit, "not done within {limit:?}");
            self.supervise().await;
            sleep(STEP).await;
        }
    }

    /// Steps the clock for `span`, checking the invariant at every step.
    async fn run_for(&self, span: Duration) {
        let end = Instant::now() + span;
        while Instant::now() < end {
            self.check_fencing();
            self.supervise().await;
            sleep(STEP.min(end - Instant::now())).await;
        }
        self.check_fencing();
    }
}

#[tokio::test(start_paused = true)]
async fn one_member_owns_the_whole_fleet() {
    let c = Cluster::start(&["a"], fleet(30)).await;
    c.run_until(Duration::from_secs(1), Cluster::settled).await;
    let view = c.node("a").view();
    assert_eq!(view.members, ["a"]);
    assert_eq!(view.owned.len(), 30);
    assert_eq!(view.assigned.len(), 30);
    assert!(view.can_act && view.store_up);
    assert_eq!(view.ownership_changes, 30);
    assert_eq!(c.owners().len(), 30);
}

#[tokio::test(start_paused = true)]
async fn a_large_fleet_is_taken_in_concurrent_rounds_and_acted_on_from_the_first() {
    let c = Cluster::start(&["a"], fleet(200)).await;
    // 20 ms each way: one key at a time would take 200 × 40 ms = 8 s.
    c.client("a").set_latency(Duration::from_millis(20));
    let mut views = c.node("a").subscribe();
    let first = tokio::time::timeout(
        Duration::from_millis(100),
        views.wait_for(|v| !v.owned.is_empty()),
    )
    .await
    .expect("the first round is published at once")
    .expect("node runs")
    .owned
    .clone();
    assert!(first.len() <= 64, "{} keys in the first round", first.len());
    // What it holds it acts on, before the rest is taken.
    assert!(first.iter().all(|e| c.node("a").may_act(e)));
    assert!(c.owners().len() < 200);
    // Four rounds of 64, 64, 64 and 8 keys.
    let took = c.run_until(Duration::from_secs(1), Cluster::settled).await;
    assert!(took < Duration::from_millis(300), "{took:?}");
    assert_eq!(c.node("a").view().owned.len(), 200);
}

#[tokio::test(start_paused = true)]
async fn two_and_three_members_split_the_fleet_by_rendezvous() {
    let mut c = Cluster::start(&["a", "b"], fleet(60)).await;
    c.run_until(Duration::from_secs(1), Cluster::settled).await;
    let (a, b) = (c.node("a").view(), c.node("b").view());
    assert_eq!(a.owned.len() + b.owned.len(), 60);
    assert!(a.owned.is_disjoint(&b.owned));
    assert!(!a.owned.is_empty() && !b.owned.is_empty());

    c.add("c").await;
    c.run_until(Duration::from_secs(2), Cluster::settled).await;
    let owners = c.owners();
    for e in &c.fleet {
        let owner = &owners[e];
        for node in c.live() {
            // Fencing: only the owner may act; everyone names the same owner.
            assert_eq!(
                node.may_act(e),
                node.node() == owner,
                "{e} on {}",
                node.node()
            );
            assert_eq!(node.owner_of(e).as_deref(), Some(owner.as_str()));
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_join_moves_only_what_the_newcomer_gets() {
    let mut c = Cluster::start(&["a", "b"], fleet(300)).await;
    c.run_until(Duration::from_secs(1), Cluster::settled).await;
    let before = c.owners();
    let changes_a = c.node("a").view().ownership_changes;

    c.add("c").await;
    c.run_until(Duration::from_secs(2), Cluster::settled).await;
    let after = c.owners();
    let moved: Vec<&String> = c.fleet.iter().filter(|e| before[*e] != after[*e]).collect();
    for e in &moved {
        assert_eq!(after[*e], "c", "{e} moved between old members");
    }
    // About a third of 300.
    assert!((70..=130).contains(&moved.len()), "{} moved", moved.len());
    let released_by_a = moved.iter().filter(|e| before[**e] == "a").count() as u64;
    assert_eq!(
        c.node("a").view().ownership_changes,
        changes_a + released_by_a
    );
}

#[tokio::test(start_paused = true)]
async fn a_killed_members_encoders_move_after_its_ttl_and_nothing_else_moves() {
    let mut c = Cluster::start(&["a", "b", "c"], fleet(90)).await;
    c.run_until(Duration::from_secs(1), Cluster::settled).await;
    // Let the renewals fall at arbitrary points of the interval.
    c.run_for(Duration::from_millis(1370)).await;
    let before = c.owners();
    let expiry = c.store.lease_expiry(c.lease_of("b")).unwrap();

    c.kill("b");
    let killed = Instant::now();
    let took = c.run_until(Duration::from_secs(20), Cluster::settled).await;
    let check = config("b").check_interval();
    assert!(took <= TTL + check, "takeover took {took:?}");
    // Not before etcd let b's keys go.
    assert!(
        killed + took >= expiry,
        "taken over before b's lease expired"
    );
    let after = c.owners();
    for e in &c.fleet {
        if before[e] != "b" {
            assert_eq!(before[e], after[e], "{e} moved though its owner lived");
        }
    }
    assert!(c.owners().values().all(|n| n != "b"));
}

#[tokio::test(start_paused = true)]
async fn a_cut_off_member_demotes_before_its_lease_can_expire_then_rejoins() {
    let c = Cluster::start(&["a", "b"], fleet(40)).await;
    c.run_until(Duration::from_secs(1), Cluster::settled).await;
    c.run_for(Duration::from_millis(730)).await;
    let mine: Vec<String> = c.node("a").view().owned.into_iter().collect();
    assert!(!mine.is_empty());
    let lease = c.lease_of("a");

    c.client("a").set_down();
    // No renewal gets through any more: this is when etcd drops a's keys.
    let expiry = c.store.lease_expiry(lease).unwrap();
    let demote_by = expiry - config("a").demotion_margin();
    sleep_until(demote_by - Duration::from_millis(1)).await;
    c.check_fencing();
    assert!(mine.iter().all(|e| c.node("a").may_act(e)), "demoted early");
    sleep_until(demote_by).await;
    assert!(mine.iter().all(|e| !c.node("a").may_act(e)), "not demoted");
    // The view follows as soon as a's task wakes for the deadline (same millisecond).
    let mut views = c.node("a").subscribe();
    let view = tokio::time::timeout(Duration::from_millis(1), views.wait_for(|v| !v.can_act))
        .await
        .expect("the view shows the demotion")
        .unwrap()
        .clone();
    assert!(!view.store_up);
    // It keeps observing: still assigned, still "owned" as far as it knows.
    assert_eq!(view.owned.len(), mine.len());

    // b takes over once etcd let a's keys go, not before.
    let took = c
        .run_until(Duration::from_secs(10), |c| {
            mine.iter().all(|e| c.node("b").may_act(e))
        })
        .await;
    assert!(Instant::now() >= expiry);
    assert!(
        Instant::now() - expiry <= config("b").check_interval(),
        "{took:?}"
    );

    // a comes back: its lease is gone, so it joins again with a new one and gets its
    // share back from b, who releases it.
    c.client("a").set_up();
    c.run_until(Duration::from_secs(5), Cluster::settled).await;
    assert_ne!(c.lease_of("a"), lease);
    assert!(mine.iter().all(|e| c.node("a").may_act(e)));
}

#[tokio::test(start_paused = true)]
async fn a_member_back_before_its_lease_expired_acts_again_with_the_same_keys() {
    let mut c = Cluster::start(&["a", "b"], fleet(40)).await;
    c.run_until(Duration::from_secs(1), Cluster::settled).await;
    let lease = c.lease_of("a");
    let owned = c.node("a").view().owned;
    let changes = c.node("a").view().ownership_changes;

    // Hung like a SIGSTOPped etcd seen from a: requests wait.
    c.client("a").set_hung();
    let expiry = c.store.lease_expiry(lease).unwrap();
    c.run_until(Duration::from_secs(10), |c| !c.node("a").view().can_act)
        .await;
    assert!(Instant::now() < expiry);
    // Meanwhile c joins; a will learn of it when it sees the store again.
    c.add("c").await;
    c.run_for(Duration::from_millis(500)).await;
    assert!(Instant::now() < expiry);
    c.client("a").set_up();

    c.run_until(Duration::from_secs(1), |c| c.node("a").view().can_act)
        .await;
    assert_eq!(c.lease_of("a"), lease, "the same lease, renewed in time");
    // Settles with c included: a hands c its share.
    c.run_until(Duration::from_secs(3), Cluster::settled).await;
    let now_owned = c.node("a").view().owned;
    assert!(
        now_owned.is_subset(&owned),
        "a gained nothing, kept the rest"
    );
    let handed = (owned.len() - now_owned.len()) as u64;
    assert_eq!(c.node("a").view().ownership_changes, changes + handed);
}

#[tokio::test(start_paused = true)]
async fn latency_below_the_rpc_timeout_changes_nothing() {
    let c = Cluster::start(&["a", "b"], fleet(20)).await;
    c.run_until(Duration::from_secs(1), Cluster::settled).await;
    let owners = c.owners();
    // 2 x 800 ms round trips; the RPC timeout is 2 s.
    c.client("a").set_latency(Duration::from_millis(800));
    c.run_for(3 * TTL).await;
    assert!(c.settled());
    assert_eq!(c.owners(), owners);
    assert!(c.node("a").view().can_act);
}

#[tokio::test(start_paused = true)]
async fn late_keep_alive_answers_still_count_from_their_sending() {
    let c = Cluster::start(&["a", "b"], fleet(20)).await;
    c.run_until(Duration::from_secs(1), Cluster::settled).await;
    let owners = c.owners();
    // 3 s round trips: past the 2 s timeout of other requests, but an answer to a
    // renewal sent at t still allows acting until t + ttl - margin = t + 6.7 s.
    c.client("a").set_latency(Duration::from_millis(1500));
    c.run_for(3 * TTL).await;
    assert_eq!(c.owners(), owners, "nothing moved");
    assert!(c.node("a").view().can_act);
    assert!(c.settled());
}

#[tokio::test(start_paused = true)]
async fn a_member_whose_answers_never_come_in_time_lets_its_encoders_go() {
    let c = Cluster::start(&["a", "b"], fleet(20)).await;
    c.run_until(Duration::from_secs(1), Cluster::settled).await;
    let mine = c.node("a").view().owned;
    // 8 s round trips: every renewal reaches etcd, no answer is of use.
    c.client("a").set_latency(Duration::from_secs(4));
    c.run_until(Duration::from_secs(30), |c| {
        mine.iter().all(|e| c.node("b").may_act(e))
    })
    .await;
    assert!(!c.node("a").view().can_act);
    assert!(mine.iter().all(|e| !c.node("a").may_act(e)));
    // Healed, a joins again and gets its share back.
    c.client("a").set_latency(Duration::ZERO);
    c.run_until(Duration::from_secs(30), Cluster::settled).await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_hands_over_at_once() {
    let c = Cluster::start(&["a", "b"], fleet(30)).await;
    c.run_until(Duration::from_secs(1), Cluster::settled).await;
    let mine = c.node("a").view().owned;
    c.node("a").shutdown().await.unwrap();
    assert!(mine.iter().all(|e| !c.node("a").may_act(e)));
    assert_eq!(c.store.get("/fleet/members/a"), None);
    let took = c
        .run_until(Duration::from_secs(1), |c| {
            c.fleet.iter().all(|e| c.node("b").may_act(e))
        })
        .await;
    assert!(took < Duration::from_millis(100), "{took:?}");
    let err = c.node("a").release("enc-000").await.unwrap_err();
    assert!(err.is_shutdown(), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_release_that_fails_is_retried_and_never_taken_back() {
    let c = Cluster::start(&["a"], fleet(10)).await;
    c.run_until(Duration::from_secs(1), Cluster::settled).await;
    c.client("a").set_down();
    let err = c.node("a").release("enc-003").await.unwrap_err();
    assert!(err.is_store(), "{err}");
    assert!(!c.node("a").may_act("enc-003"));
    assert_eq!(c.owners()["enc-003"], "a", "the key is still there");
    c.client("a").set_up();
    // The tick deletes it; the encoder is still a's by rendezvous, so a takes it again
    // (a release is a hand-over point, not a ban).
    c.run_until(Duration::from_secs(5), |c| {
        c.node("a").view().ownership_changes >= 12
    })
    .await;
    c.run_until(Duration::from_secs(1), Cluster::settled).await;
}

#[tokio::test(start_paused = true)]
async fn a_reload_releases_removed_encoders_and_takes_new_ones() {
    let c = Cluster::start(&["a", "b"], fleet(10)).await;
    c.run_until(Duration::from_secs(1), Cluster::settled).await;
    let mut next = fleet(12);
    next.retain(|e| e != "enc-004");
    for member in &c.members {
        member
            .node
            .as_ref()
            .unwrap()
            .set_encoders(next.clone())
            .unwrap();
    }
    c.run_until(Duration::from_secs(1), |c| {
        let owners = c.owners();
        !owners.contains_key("enc-004") && next.iter().all(|e| owners.contains_key(e))
    })
    .await;
    let err = c.node("a").set_encoders(vec!["bad id".into()]).unwrap_err();
    assert_eq!(err.config_key(), Some("encoders"));
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_store_at_start_is_a_typed_error() {
    let store = MemoryStore::new();
    let down = store.client();
    down.set_down();
    let err = ClusterNode::start(config("a"), down, fleet(3))
        .await
        .unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    assert!(err.to_string().contains("http://127.0.0.1:2379"), "{err}");

    let hung = store.client();
    hung.set_hung();
    let start = Instant::now();
    let err = ClusterNode::start(config("a"), hung, fleet(3))
        .await
        .unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    assert!(
        start.elapsed() <= Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn bad_config_and_bad_ids_are_refused_before_any_request() {
    let store = MemoryStore::new();
    let err = ClusterNode::start(
        config("a").with_lease_ttl(Duration::from_secs(1)),
        store.client(),
        vec![],
    )
    .await
    .unwrap_err();
    assert_eq!(err.config_key(), Some("lease_ttl"));
    let err = ClusterNode::start(config("a"), store.client(), vec!["a/b".into()])
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ClusterError::InvalidConfig {
            key: "encoders",
            ..
        }
    ));
    assert!(store.list("/").is_empty());
}

#[test]
fn the_handle_can_be_shared_between_tasks() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<ClusterNode>();
    shared::<crate::EtcdStore>();
    shared::<crate::ClusterView>();
}
