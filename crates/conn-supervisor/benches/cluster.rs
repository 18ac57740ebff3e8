//! The cluster's numbers for BENCHMARKS.md, with production timings (lease TTL 10 s):
//! three supervisor processes on a real etcd over 300 simulated encoders.
//!
//! - takeover after SIGKILL, five times (each node in turn, restarted after): until
//!   every encoder of the killed node is owned by a survivor, and until each has been
//!   checked by its new owner;
//! - the share of the fleet that moves when the killed node joins again;
//! - etcd traffic per node per minute at rest, from etcd's own `/metrics`.
//!
//! `cargo bench -p conn-supervisor --bench cluster` (needs `/usr/bin/etcd`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use conn_cluster::rendezvous;
use helo_sim::{SimConfig, SimFleet};
use tokio::time::{sleep, Instant};

use support::{
    etcd::Etcd,
    node::{encoder_id, FleetFile, Node, Scratch},
};

const N: usize = 300;
const KILLS: usize = 5;
const NAMES: [&str; 3] = ["sup-a", "sup-b", "sup-c"];

fn main() {
    if !Etcd::installed() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

fn expected(members: &[&str]) -> BTreeMap<String, String> {
    (0..N)
        .map(encoder_id)
        .map(|e| {
            let owner = rendezvous::owner_of(&e, members).unwrap().to_string();
            (e, owner)
        })
        .collect()
}

/// Until every live node agrees on rendezvous ownership among them and holds its keys.
async fn settle(nodes: &[&Node]) -> BTreeMap<String, String> {
    let mut names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    names.sort_unstable();
    let want = expected(&names);
    let start = Instant::now();
    loop {
        let mut ok = true;
        for node in nodes {
            let s = node.cluster().await;
            let owners: BTreeMap<String, String> = s
                .owners
                .into_iter()
                .filter_map(|(e, o)| Some((e, o?)))
                .collect();
            let share = want.values().filter(|o| **o == node.name).count();
            ok &= s.members == names && owners == want && s.owned == share && s.acting;
        }
        if ok {
            return want;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "not settled");
        sleep(Duration::from_millis(100)).await;
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

/// etcd's messages received, by gRPC method.
async fn etcd_messages(etcd: &Etcd) -> BTreeMap<String, f64> {
    let mut by_method = BTreeMap::new();
    for line in etcd.metrics().await.lines() {
        let Some(rest) = line.strip_prefix("grpc_server_msg_received_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let method = labels
            .split(',')
            .find_map(|l| l.strip_prefix("grpc_method=\""))
            .and_then(|m| m.strip_suffix('"'))
            .unwrap_or("?");
        *by_method.entry(method.to_string()).or_insert(0.0) += value.parse::<f64>().unwrap_or(0.0);
    }
    by_method
}

async fn run() {
    let etcd = Etcd::start().await;
    let sims = SimFleet::start("127.0.0.1:0".parse().unwrap(), N, |_| SimConfig::fast())
        .await
        .unwrap();
    let urls: Vec<String> = sims.devices().iter().map(|d| d.url()).collect();
    let scratch = Scratch::new();
    let fleet = FleetFile {
        lease_ttl: "10s",
        check_interval: "30s",
        unhealthy_interval: "5s",
        expect_streaming: false,
        events: true,
    };
    let file = scratch.write("fleet.toml", &fleet.text(&etcd.endpoint(), &urls));
    let mut nodes = Vec::new();
    for name in NAMES {
        nodes.push(Node::start(&file, name, scratch.path(&format!("{name}.log"))).await);
    }
    let mut owners = settle(&nodes.iter().collect::<Vec<_>>()).await;

    // etcd traffic at rest: one minute, once the start-up hand-overs are over.
    sleep(Duration::from_secs(20)).await;
    let before = etcd_messages(&etcd).await;
    sleep(Duration::from_secs(60)).await;
    let after = etcd_messages(&etcd).await;
    println!("## etcd traffic at rest, 3 nodes, 300 encoders, one minute");
    let mut total = 0.0;
    for (method, n) in &after {
        let delta = n - before.get(method).copied().unwrap_or(0.0);
        if delta > 0.0 {
            println!("- {method}: {:.0} per node per minute", delta / 3.0);
            total += delta;
        }
    }
    println!("- all: {:.0} messages per node per minute", total / 3.0);

    let mut owned_times = Vec::new();
    let mut checked_times = Vec::new();
    let mut moved_shares = Vec::new();
    for round in 0..KILLS {
        let victim = round % NAMES.len();
        let name = NAMES[victim];
        let orphans: BTreeSet<String> = owners
            .iter()
            .filter(|(_, o)| *o == name)
            .map(|(e, _)| e.clone())
            .collect();
        let killed = Instant::now();
        nodes[victim].kill();
        let survivors: Vec<&Node> = nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != victim)
            .map(|(_, n)| n)
            .collect();
        // Polled lightly (100 ms, the small /api/cluster first), so that polling does
        // not load the survivors it measures.
        let owned_at = loop {
            let mut views = Vec::new();
            for node in &survivors {
                views.push(node.cluster().await);
            }
            let owned = orphans.iter().all(|e| {
                let o = views[0].owners[e].as_deref();
                o.is_some() && o != Some(name) && views.iter().all(|v| v.owners[e].as_deref() == o)
            });
            if owned {
                break killed.elapsed();
            }
            assert!(killed.elapsed() < Duration::from_secs(60), "no takeover");
            sleep(Duration::from_millis(100)).await;
        };
        let checked_at = loop {
            let mut listed = BTreeMap::new();
            for node in &survivors {
                listed.extend(node.encoders().await);
            }
            let checked = orphans.iter().all(|e| {
                listed
                    .get(e)
                    .and_then(|v| v["checks"]["count"].as_u64())
                    .is_some_and(|c| c >= 1)
            });
            if checked {
                break killed.elapsed();
            }
            assert!(killed.elapsed() < Duration::from_secs(60), "not checked");
            sleep(Duration::from_millis(100)).await;
        };
        println!(
            "kill {}: {name} ({} encoders): owned after {:.2} s, checked after {:.2} s",
            round + 1,
            orphans.len(),
            owned_at.as_secs_f64(),
            checked_at.as_secs_f64()
        );
        owned_times.push(owned_at);
        checked_times.push(checked_at);
        let two = settle(&survivors).await;
        drop(survivors);
        // The node comes back: a join.
        nodes[victim] =
            Node::start(&file, name, scratch.path(&format!("{name}-{round}.log"))).await;
        owners = settle(&nodes.iter().collect::<Vec<_>>()).await;
        let moved: Vec<&String> = two
            .iter()
            .filter(|(e, o)| owners[*e] != **o)
            .map(|(e, _)| e)
            .collect();
        assert!(
            moved.iter().all(|e| owners[*e] == name),
            "only the newcomer's share moves"
        );
        moved_shares.push(moved.len());
        println!(
            "join {}: {name} took {} of {N} encoders",
            round + 1,
            moved.len()
        );
    }
    println!("## takeover after SIGKILL ({KILLS} kills, lease TTL 10 s)");
    println!(
        "- owned: median {:.2} s, max {:.2} s",
        median(owned_times.clone()).as_secs_f64(),
        owned_times.iter().max().unwrap().as_secs_f64()
    );
    println!(
        "- owned and checked: median {:.2} s, max {:.2} s",
        median(checked_times.clone()).as_secs_f64(),
        checked_times.iter().max().unwrap().as_secs_f64()
    );
    let total_moved: usize = moved_shares.iter().sum();
    println!(
        "## joins: {moved_shares:?} of {N} moved, mean {:.1} % (1/3 = 33.3 %)",
        100.0 * total_moved as f64 / (KILLS * N) as f64
    );
}
