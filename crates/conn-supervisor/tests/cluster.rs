//! Several supervisor processes (the real binary) as one cluster on a real etcd
//! (`/usr/bin/etcd`, Debian's `etcd-server`), over simulated encoders on loopback.
//! Each test starts its own etcd; the guards kill every process on every exit path.
//! Without etcd the tests that need it print why and return.
//!
//! Timings: lease TTL 3 s (demotion margin 1 s, etcd renewals every 600 ms), checks
//! every 3 s (1 s while unhealthy), requests bounded by 800 ms; the 300-encoder test
//! takes 5 s for the lease and the checks, so that three supervisors and 300 devices
//! on two cores keep their leases while each first takes all and then hands over. The tests that time things run one at a time, so
//! that they do not skew each other's clocks.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use conn_cluster::rendezvous;
use helo_sim::{RequestKind, SimConfig, SimFleet};
use tokio::time::{sleep, Instant};

use support::{
    etcd::Etcd,
    node::{encoder_id, encoders_in_metrics, run_to_end, FleetFile, Node, Scratch},
    proxy::Proxy,
};

const TTL: Duration = Duration::from_secs(3);

/// The fleet file of the 300-encoder test.
fn large() -> FleetFile {
    FleetFile {
        lease_ttl: "5s",
        check_interval: "5s",
        unhealthy_interval: "2s",
        ..FleetFile::default()
    }
}
/// `check_interval` of the other fleet files (healthy encoders).
const CHECK_INTERVAL: Duration = Duration::from_secs(3);
/// `stream_state` of a streaming replicator.
const STREAMING: i64 = 2;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn sims(n: usize) -> SimFleet {
    SimFleet::start("127.0.0.1:0".parse().unwrap(), n, |_| SimConfig::fast())
        .await
        .unwrap()
}

fn urls(sims: &SimFleet) -> Vec<String> {
    sims.devices().iter().map(|d| d.url()).collect()
}

/// Encoder -> node, as rendezvous hashing assigns `n` encoders to `members`.
fn rendezvous_owners(ids: &[String], members: &[&str]) -> BTreeMap<String, String> {
    ids.iter()
        .cloned()
        .map(|e| {
            let owner = rendezvous::owner_of(&e, members).unwrap().to_string();
            (e, owner)
        })
        .collect()
}

fn owned_by<'a>(owners: &'a BTreeMap<String, String>, node: &str) -> BTreeSet<&'a str> {
    owners
        .iter()
        .filter(|(_, o)| *o == node)
        .map(|(e, _)| e.as_str())
        .collect()
}

/// Until every node agrees that the `n` encoders are owned as rendezvous hashing says
/// among exactly these nodes, and each holds its share's keys and may act on them.
async fn settled(nodes: &[&Node], n: usize, limit: Duration) -> BTreeMap<String, String> {
    let ids: Vec<String> = (0..n).map(encoder_id).collect();
    settled_on(nodes, &ids, limit).await
}

/// As [`settled`], for a fleet of these ids.
async fn settled_on(nodes: &[&Node], ids: &[String], limit: Duration) -> BTreeMap<String, String> {
    let mut names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    names.sort_unstable();
    let expected = rendezvous_owners(ids, &names);
    let start = Instant::now();
    loop {
        let mut ok = true;
        let mut last = String::new();
        for node in nodes {
            let state = node.cluster().await;
            let owners: BTreeMap<String, String> = state
                .owners
                .iter()
                .filter_map(|(e, o)| Some((e.clone(), o.clone()?)))
                .collect();
            let share = owned_by(&expected, &node.name).len();
            if state.members != names || owners != expected || state.owned != share || !state.acting
            {
                ok = false;
                last = format!(
                    "{}: members {:?}, owns {} of {share}, acting {}",
                    node.name, state.members, state.owned, state.acting
                );
            }
        }
        if ok {
            return expected;
        }
        assert!(
            start.elapsed() < limit,
            "not settled within {limit:?}: {last}"
        );
        sleep(Duration::from_millis(100)).await;
    }
}

/// Until each node's `/metrics` has series of exactly its own encoders (so the union
/// over the nodes holds every encoder exactly once), and its `/api/encoders` lists
/// exactly them, each naming it as the owner.
async fn exactly_once(nodes: &[&Node], owners: &BTreeMap<String, String>, limit: Duration) {
    let start = Instant::now();
    loop {
        let mut mismatch = None;
        for node in nodes {
            let own: BTreeSet<String> = owned_by(owners, &node.name)
                .into_iter()
                .map(str::to_string)
                .collect();
            let exported = encoders_in_metrics(&node.metrics().await);
            if exported != own {
                let extra: Vec<_> = exported.difference(&own).take(5).collect();
                let missing: Vec<_> = own.difference(&exported).take(5).collect();
                mismatch = Some(format!(
                    "{}: exports {} extra {extra:?}, misses {missing:?}",
                    node.name,
                    exported.len()
                ));
            }
        }
        if mismatch.is_none() {
            break;
        }
        assert!(
            start.elapsed() < limit,
            "metrics not exactly once within {limit:?}: {mismatch:?}"
        );
        sleep(Duration::from_millis(200)).await;
    }
    let mut union = BTreeSet::new();
    for node in nodes {
        let exported = encoders_in_metrics(&node.metrics().await);
        for e in &exported {
            assert!(union.insert(e.clone()), "{e} exported twice");
        }
        let listed = node.encoders().await;
        assert_eq!(
            listed.keys().map(String::as_str).collect::<BTreeSet<_>>(),
            owned_by(owners, &node.name),
            "{}: /api/encoders",
            node.name
        );
        for (e, view) in &listed {
            assert_eq!(view["owner"], node.name.as_str(), "{e}");
        }
    }
    assert_eq!(union.len(), owners.len(), "every encoder exported");
}

// === tests ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_own_each_of_300_encoders_once_and_a_join_moves_only_the_newcomers_share() {
    if !Etcd::installed() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let etcd = Etcd::start().await;
    let sims = sims(300).await;
    let scratch = Scratch::new();
    let file = scratch.write("fleet.toml", &large().text(&etcd.endpoint(), &urls(&sims)));
    let a = Node::start(&file, "sup-a", scratch.path("a.log")).await;
    let b = Node::start(&file, "sup-b", scratch.path("b.log")).await;
    let two = settled(&[&a, &b], 300, Duration::from_secs(20)).await;
    exactly_once(&[&a, &b], &two, Duration::from_secs(20)).await;

    let c = Node::start(&file, "sup-c", scratch.path("c.log")).await;
    let three = settled(&[&a, &b, &c], 300, Duration::from_secs(20)).await;
    let moved: BTreeSet<&str> = two
        .iter()
        .filter(|(e, o)| three[*e] != **o)
        .map(|(e, _)| e.as_str())
        .collect();
    // Only the newcomer's share moved: nothing went from sup-a to sup-b or back.
    assert_eq!(moved, owned_by(&three, "sup-c"));
    let share = moved.len() as f64 / 300.0;
    println!(
        "join: {} of 300 encoders moved ({:.1} %)",
        moved.len(),
        share * 100.0
    );
    assert!((0.25..=0.42).contains(&share), "about a third: {share}");
    exactly_once(&[&a, &b, &c], &three, Duration::from_secs(20)).await;

    for node in [&a, &b, &c] {
        let own = owned_by(&three, &node.name).len() as f64;
        let metric = |name| node.cluster_metric(name);
        assert_eq!(metric("helo_cluster_members").await, Some(3.0));
        assert_eq!(metric("helo_cluster_owned_encoders").await, Some(own));
        assert_eq!(metric("helo_cluster_store_up").await, Some(1.0));
        assert_eq!(metric("helo_cluster_acting").await, Some(1.0));
        assert_eq!(node.get("/readyz").await, (200, "ready\n".to_string()));
    }
    // The newcomer only gained keys, one change each.
    assert_eq!(
        c.cluster_metric("helo_cluster_ownership_changes_total")
            .await,
        Some(moved.len() as f64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_encoders_are_owned_and_checked_by_the_others_within_ttl_and_a_check() {
    if !Etcd::installed() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let etcd = Etcd::start().await;
    let n = 90;
    let sims = sims(n).await;
    let scratch = Scratch::new();
    let file = scratch.write(
        "fleet.toml",
        &FleetFile::default().text(&etcd.endpoint(), &urls(&sims)),
    );
    let a = Node::start(&file, "sup-a", scratch.path("a.log")).await;
    let mut b = Node::start(&file, "sup-b", scratch.path("b.log")).await;
    let c = Node::start(&file, "sup-c", scratch.path("c.log")).await;
    let before = settled(&[&a, &b, &c], n, Duration::from_secs(20)).await;
    exactly_once(&[&a, &b, &c], &before, Duration::from_secs(20)).await;
    let orphans: BTreeSet<&str> = owned_by(&before, "sup-b");

    let killed = Instant::now();
    b.kill();
    let took = loop {
        let (ca, cc) = (a.cluster().await, c.cluster().await);
        let listed: BTreeMap<String, serde_json::Value> = a
            .encoders()
            .await
            .into_iter()
            .chain(c.encoders().await)
            .collect();
        let done = orphans.iter().all(|e| {
            let owner = &ca.owners[*e];
            owner == &cc.owners[*e]
                && matches!(owner.as_deref(), Some("sup-a" | "sup-c"))
                && listed
                    .get(*e)
                    .is_some_and(|v| v["owner"] == owner.as_deref().unwrap_or_default())
                && listed[*e]["checks"]["count"].as_u64().unwrap_or(0) >= 1
        });
        if done {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(20),
            "no takeover within 20 s; sup-a:\n{}",
            a.log()
        );
        sleep(Duration::from_millis(100)).await;
    };
    println!(
        "takeover: {} encoders owned and checked {took:?} after SIGKILL",
        orphans.len()
    );
    assert!(
        took <= TTL + CHECK_INTERVAL,
        "takeover took {took:?}, more than TTL + a check interval"
    );
    let after = settled(&[&a, &c], n, Duration::from_secs(5)).await;
    for (e, owner) in &before {
        if owner != "sup-b" {
            assert_eq!(&after[e], owner, "{e} moved though its owner lived");
        }
    }
    exactly_once(&[&a, &c], &after, Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_etcd_stops_acting_before_its_lease_expires_so_a_stream_restarts_once()
{
    if !Etcd::installed() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let etcd = Etcd::start().await;
    let proxy = Proxy::start(etcd.addr()).await;
    let n = 12;
    let sims = sims(n).await;
    let scratch = Scratch::new();
    let fleet = FleetFile {
        expect_streaming: true,
        events: true,
        ..FleetFile::default()
    };
    let a_file = scratch.write("a.toml", &fleet.text(&proxy.endpoint(), &urls(&sims)));
    let b_file = scratch.write("b.toml", &fleet.text(&etcd.endpoint(), &urls(&sims)));
    let a = Node::start(&a_file, "sup-a", scratch.path("a.log")).await;
    let b = Node::start(&b_file, "sup-b", scratch.path("b.log")).await;
    let owners = settled(&[&a, &b], n, Duration::from_secs(20)).await;
    let devices = sims.devices();
    let start = Instant::now();
    while !devices
        .iter()
        .all(|d| d.snapshot().stream_state == STREAMING)
    {
        assert!(start.elapsed() < Duration::from_secs(20), "not all on air");
        sleep(Duration::from_millis(100)).await;
    }
    sleep(Duration::from_millis(500)).await;
    devices.iter().for_each(|d| d.reset_request_counts());
    let k = (0..n)
        .find(|k| owners[&encoder_id(*k)] == "sup-a")
        .expect("sup-a owns something");
    let e = encoder_id(k);
    let sets = |k: usize| devices[k].request_count(RequestKind::Set);
    let a_checks =
        |view: &BTreeMap<String, serde_json::Value>| view[&e]["checks"]["count"].as_u64().unwrap();

    // sup-a loses etcd (a partition: nothing passes, nothing is refused).
    let cut = Instant::now();
    proxy.cut();
    let demoted = loop {
        let (status, body) = a.get("/readyz").await;
        if status == 503 && body.contains("not acting") {
            break cut.elapsed();
        }
        assert!(cut.elapsed() < TTL, "sup-a still acting: {status} {body}");
        sleep(Duration::from_millis(50)).await;
    };
    // Demoted a margin before its lease can expire: etcd still says sup-a owns e.
    let margin = TTL / 3;
    assert!(
        demoted <= TTL - margin + Duration::from_millis(300),
        "demoted {demoted:?} after the cut"
    );
    assert_eq!(b.cluster().await.owners[&e].as_deref(), Some("sup-a"));
    let observed_before = a_checks(&a.encoders().await);

    // The stream fails while sup-a cannot act and sup-b does not own it yet.
    assert!(devices[k].fail_stream_now());
    let restored = loop {
        // Read in this order: if sup-b did not own e when asked, nothing counted
        // before was sup-b's.
        let count = sets(k);
        let b_owns = b.cluster().await.owners[&e].as_deref() == Some("sup-b");
        if !b_owns {
            assert_eq!(count, 0, "a device action while only sup-a held the key");
        }
        if b_owns && devices[k].snapshot().stream_state == STREAMING {
            break cut.elapsed();
        }
        assert!(
            cut.elapsed() < Duration::from_secs(20),
            "not restored; sup-b:\n{}",
            b.log()
        );
        sleep(Duration::from_millis(50)).await;
    };
    println!("cut off: demoted after {demoted:?}, stream back after {restored:?}");
    // Any second restart would show within a check or two.
    sleep(Duration::from_secs(2)).await;
    assert_eq!(sets(k), 2, "one restart (stop, start), by sup-b alone");
    let others: u64 = (0..n).filter(|i| *i != k).map(sets).sum();
    assert_eq!(others, 0, "no other encoder was touched");

    // sup-a kept observing, tried, was refused, and says why everywhere.
    let seen = a.encoders().await;
    assert!(a_checks(&seen) > observed_before, "sup-a stopped checking");
    let last = &seen[&e]["last_action"];
    assert_eq!(last["outcome"], "not_taken", "{last}");
    assert!(
        last["error"].as_str().unwrap().contains("demoted"),
        "{last}"
    );
    let (status, body) = a.get("/readyz").await;
    assert_eq!(status, 503);
    assert!(
        body.contains("etcd unreachable; observing only, not acting"),
        "{body}"
    );
    assert_eq!(a.cluster_metric("helo_cluster_store_up").await, Some(0.0));
    assert_eq!(a.cluster_metric("helo_cluster_acting").await, Some(0.0));
    let (status, body) = a.post(&format!("/api/encoders/{e}/cooldown")).await;
    assert_eq!(status, 409, "{body}");
    let refusal: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(refusal["reason"], "demoted", "{body}");
    // The owner may hold it; the demoted node may not.
    let hold = format!("/api/encoders/{e}/hold");
    assert_eq!(a.post(&hold).await.0, 409);
    let (status, body) = b.post(&hold).await;
    assert_eq!(
        (status, body.contains("\"held\":true")),
        (200, true),
        "{body}"
    );
    assert_eq!(b.delete(&hold).await.0, 200);

    // Healed: sup-a joins again and takes its share back, e included; it finds the
    // stream on air and does nothing.
    proxy.heal();
    let back = settled(&[&a, &b], n, Duration::from_secs(20)).await;
    assert_eq!(back, owners);
    let (status, body) = b.post(&format!("/api/encoders/{e}/cooldown")).await;
    assert_eq!(status, 409, "{body}");
    let refusal: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (refusal["reason"].as_str(), refusal["owner"].as_str()),
        (Some("not_owner"), Some("sup-a")),
        "{body}"
    );
    // The loop for e may be restarted while the view settles (started again once
    // sup-a is a member and e is assigned to it): wait until sup-a lists it again.
    let start = Instant::now();
    let retaken = loop {
        let view = a.encoders().await;
        if view.contains_key(&e) {
            break a_checks(&view);
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "sup-a does not list {e} again"
        );
        sleep(Duration::from_millis(100)).await;
    };
    let start = Instant::now();
    while a_checks(&a.encoders().await) < retaken + 2 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "sup-a not checking"
        );
        sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(a.get("/readyz").await.0, 200);
    assert_eq!(sets(k), 2, "never twice");
    exactly_once(&[&a, &b], &owners, Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_etcd_dies_keeps_observing_says_so_and_acts_once_etcd_is_back() {
    if !Etcd::installed() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let mut etcd = Etcd::start().await;
    let n = 4;
    let sims = sims(n).await;
    let scratch = Scratch::new();
    let fleet = FleetFile {
        expect_streaming: true,
        events: true,
        ..FleetFile::default()
    };
    let file = scratch.write("fleet.toml", &fleet.text(&etcd.endpoint(), &urls(&sims)));
    let a = Node::start(&file, "sup-a", scratch.path("a.log")).await;
    settled(&[&a], n, Duration::from_secs(20)).await;
    let devices = sims.devices();
    let start = Instant::now();
    while !devices
        .iter()
        .all(|d| d.snapshot().stream_state == STREAMING)
    {
        assert!(start.elapsed() < Duration::from_secs(20), "not all on air");
        sleep(Duration::from_millis(100)).await;
    }
    sleep(Duration::from_millis(500)).await;
    devices.iter().for_each(|d| d.reset_request_counts());

    let gone = Instant::now();
    etcd.kill();
    loop {
        let (status, body) = a.get("/readyz").await;
        if status == 503 && body.contains("etcd unreachable; observing only, not acting") {
            break;
        }
        assert!(gone.elapsed() < TTL, "still acting: {status} {body}");
        sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(a.cluster_metric("helo_cluster_store_up").await, Some(0.0));
    assert_eq!(a.cluster_metric("helo_cluster_acting").await, Some(0.0));
    let e = encoder_id(0);
    let checks =
        |v: &BTreeMap<String, serde_json::Value>| v[&e]["checks"]["count"].as_u64().unwrap();
    let observed_before = checks(&a.encoders().await);
    assert!(devices[0].fail_stream_now());
    // Observed and reported, never acted on, for longer than a few tries would take.
    sleep(Duration::from_secs(4)).await;
    let seen = a.encoders().await;
    assert!(checks(&seen) > observed_before, "still observing");
    assert_ne!(seen[&e]["status"], "healthy", "{}", seen[&e]);
    assert_eq!(seen[&e]["stream"]["phase"], "not_acting", "{}", seen[&e]);
    assert_eq!(seen[&e]["stream"]["attempts"], 0, "no try counted");
    assert_eq!(devices[0].request_count(RequestKind::Set), 0);

    // etcd is back with its data: the node acts again, and restarts the stream once.
    etcd.restart().await;
    let back = Instant::now();
    while a.get("/readyz").await.0 != 200 {
        assert!(
            back.elapsed() < Duration::from_secs(20),
            "not acting again:\n{}",
            a.log()
        );
        sleep(Duration::from_millis(100)).await;
    }
    while devices[0].snapshot().stream_state != STREAMING {
        assert!(
            back.elapsed() < Duration::from_secs(20),
            "not restored:\n{}",
            a.log()
        );
        sleep(Duration::from_millis(100)).await;
    }
    sleep(Duration::from_secs(2)).await;
    assert_eq!(devices[0].request_count(RequestKind::Set), 2, "one restart");
    assert_eq!(a.cluster_metric("helo_cluster_store_up").await, Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_hands_over_what_left_the_fleet_and_shares_what_joined_it() {
    if !Etcd::installed() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let etcd = Etcd::start().await;
    let sims = sims(9).await;
    let scratch = Scratch::new();
    let pairs: Vec<(String, String)> = urls(&sims)
        .into_iter()
        .enumerate()
        .map(|(i, url)| (encoder_id(i), url))
        .collect();
    let fleet = FleetFile::default();
    let file = scratch.write(
        "fleet.toml",
        &fleet.text_with(&etcd.endpoint(), &pairs[..6]),
    );
    let a = Node::start(&file, "sup-a", scratch.path("a.log")).await;
    let b = Node::start(&file, "sup-b", scratch.path("b.log")).await;
    let before = settled(&[&a, &b], 6, Duration::from_secs(20)).await;
    exactly_once(&[&a, &b], &before, Duration::from_secs(20)).await;
    // Connection ids are never reused in a process: a loop started again would show
    // new ones.
    let connections = |view: &serde_json::Value| -> BTreeSet<u64> {
        view["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["connection_id"].as_u64().unwrap())
            .collect()
    };
    let start = Instant::now();
    let pools = loop {
        let mut pools = BTreeMap::new();
        for node in [&a, &b] {
            for (e, view) in node.encoders().await {
                pools.insert(e, connections(&view));
            }
        }
        if pools.values().all(|p| !p.is_empty()) {
            break pools;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no connections: {pools:?}"
        );
        sleep(Duration::from_millis(100)).await;
    };

    // enc-000 and enc-001 leave the fleet; enc-006 to enc-008 join it.
    let ids: Vec<String> = (2..9).map(encoder_id).collect();
    scratch.write(
        "fleet.toml",
        &fleet.text_with(&etcd.endpoint(), &pairs[2..]),
    );
    a.hangup().await;
    b.hangup().await;
    let after = settled_on(&[&a, &b], &ids, Duration::from_secs(20)).await;
    exactly_once(&[&a, &b], &after, Duration::from_secs(20)).await;
    for node in [&a, &b] {
        let status = node.cluster().await;
        assert_eq!(
            status.owners.keys().cloned().collect::<Vec<_>>(),
            ids,
            "{}",
            node.name
        );
        // The encoders that stayed kept their loops and pools.
        for (e, view) in node.encoders().await {
            if let Some(before) = pools.get(&e) {
                let now = connections(&view);
                assert!(
                    !before.is_disjoint(&now),
                    "{e} started again: {before:?} then {now:?}"
                );
            }
        }
    }
    // Nobody supervises the two that left.
    sleep(Duration::from_millis(500)).await;
    let gone = [&sims.devices()[0], &sims.devices()[1]];
    gone.iter().for_each(|d| d.reset_request_counts());
    sleep(CHECK_INTERVAL).await;
    for d in gone {
        assert_eq!(d.request_count(RequestKind::Total), 0, "{}", d.url());
    }
}

#[tokio::test]
async fn bad_cluster_settings_are_refused_with_a_clear_message() {
    let scratch = Scratch::new();
    let urls = vec!["http://127.0.0.1:9".to_string()];
    let text = |etcd: &str, ttl: &'static str| {
        FleetFile {
            lease_ttl: ttl,
            ..FleetFile::default()
        }
        .text(etcd, &urls)
    };
    // No endpoints: a configuration error, for `config check` and `run` alike.
    let none = scratch.write(
        "none.toml",
        &text("x", "3s").replace("etcd = [\"x\"]", "etcd = []"),
    );
    let none = none.to_str().unwrap();
    for args in [&["config", "check", none][..], &["run", "--config", none]] {
        let (code, stderr) = run_to_end(args, "sup-a").await;
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("cluster.etcd") && stderr.contains("at least one endpoint"),
            "{stderr}"
        );
    }
    // Requests longer than the demotion margin (a third of a 3 s lease).
    let slow = scratch.write(
        "slow.toml",
        &text("http://127.0.0.1:2379", "3s").replace("\"800ms\"", "\"1s\""),
    );
    let (code, stderr) = run_to_end(&["run", "--config", slow.to_str().unwrap()], "sup-a").await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("cluster.lease_ttl") && stderr.contains("request_timeout is 1.000s"),
        "{stderr}"
    );
    // https is not supported by this build: said before anything starts.
    let tls = scratch.write("tls.toml", &text("https://127.0.0.1:2379", "3s"));
    let (code, stderr) = run_to_end(&["run", "--config", tls.to_str().unwrap()], "sup-a").await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("https"), "{stderr}");
    // Nothing listens there: etcd unreachable at start, named, and exit 1.
    let endpoint = format!("http://127.0.0.1:{}", support::free_port());
    let away = scratch.write("away.toml", &text(&endpoint, "3s"));
    let started = Instant::now();
    let (code, stderr) = run_to_end(&["run", "--config", away.to_str().unwrap()], "sup-a").await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("etcd unreachable at {endpoint}")),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
