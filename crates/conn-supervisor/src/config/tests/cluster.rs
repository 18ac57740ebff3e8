//! The `[cluster]` table.

use super::*;

const ENCODER: &str = "[[encoder]]\nid = \"a\"\nurl = \"http://h\"\n";

fn parse_env(text: &str, node_env: Option<&str>) -> Result<FleetConfig, ConfigError> {
    let env = |var: &str| {
        (var == CLUSTER_NODE_ENV)
            .then(|| node_env.map(str::to_string))
            .flatten()
    };
    FleetConfig::parse("fleet.toml", text, &env, None)
}

#[test]
fn without_the_table_the_node_is_alone() {
    assert_eq!(parse(ENCODER).unwrap().cluster, None);
}

#[test]
fn a_cluster_is_read_with_its_defaults() {
    let text = format!(
        "[cluster]\netcd = [\"http://10.0.0.5:2379\", \"http://etcd-2:2379/\"]\nname = \"studios\"\nnode = \"node-1\"\n{ENCODER}"
    );
    let cluster = parse_env(&text, None).unwrap().cluster.unwrap();
    assert_eq!(
        cluster,
        ClusterSettings {
            etcd: vec!["http://10.0.0.5:2379".into(), "http://etcd-2:2379".into()],
            name: "studios".into(),
            node: "node-1".into(),
            lease_ttl: DEFAULT_LEASE_TTL,
        }
    );
    let with_ttl = text.replace(
        "node = \"node-1\"",
        "node = \"node-1\"\nlease_ttl = \"30s\"",
    );
    assert_eq!(
        parse_env(&with_ttl, None)
            .unwrap()
            .cluster
            .unwrap()
            .lease_ttl,
        Duration::from_secs(30)
    );
}

#[test]
fn the_environment_names_the_node() {
    let text = format!(
        "[cluster]\netcd = [\"http://e:2379\"]\nname = \"c\"\nnode = \"from-file\"\n{ENCODER}"
    );
    let node = |env| parse_env(&text, env).map(|c| c.cluster.unwrap().node);
    assert_eq!(node(Some("from-env")).unwrap(), "from-env");
    assert_eq!(node(None).unwrap(), "from-file");
    assert_eq!(
        node(Some("")).unwrap(),
        "from-file",
        "empty counts as unset"
    );
    let err = node(Some("no spaces please")).unwrap_err();
    assert_eq!(err.issues[0].key, "cluster.node", "{err}");
    assert!(
        err.issues[0].message.starts_with("HELO_CLUSTER_NODE"),
        "{err}"
    );
    let no_node = text.replace("node = \"from-file\"\n", "");
    assert_eq!(
        parse_env(&no_node, Some("n2"))
            .unwrap()
            .cluster
            .unwrap()
            .node,
        "n2"
    );
    let err = parse_env(&no_node, None).unwrap_err();
    assert_eq!(
        (err.issues[0].key.as_str(), err.issues[0].line),
        ("cluster.node", Some(1))
    );
    assert!(
        err.issues[0].message.contains("or set HELO_CLUSTER_NODE"),
        "{err}"
    );
}

#[test]
fn every_cluster_mistake_is_named() {
    let text = format!(
        "[cluster]\netcd = [\"http://e:2379\", \"e2:2379\", 7, \"http://root:pw-secret@e3:2379\"]\nname = \"\"\nnode = \"a/b\"\nlease_ttl = \"1s\"\n{ENCODER}"
    );
    let err = parse_env(&text, None).unwrap_err();
    assert_eq!(
        err.issues
            .iter()
            .map(|i| (i.key.as_str(), i.line))
            .collect::<Vec<_>>(),
        [
            // The wrong type is found while reading, the bad URLs after.
            ("cluster.etcd[2]", Some(2)),
            ("cluster.etcd[1]", Some(2)),
            ("cluster.etcd[3]", Some(2)),
            ("cluster.name", Some(3)),
            ("cluster.node", Some(4)),
            ("cluster.lease_ttl", Some(5)),
        ],
        "{err}"
    );
    assert!(!format!("{err:?}").contains("pw-secret"), "{err}");
    assert!(err.issues[5].message.contains("out of range"), "{err}");
    check_err(
        &format!("[cluster]\netcd = []\nname = \"c\"\nnode = \"n\"\n{ENCODER}"),
        "cluster.etcd",
        Some(2),
        "at least one endpoint",
    );
    check_err(
        &format!("[cluster]\nname = \"c\"\nnode = \"n\"\nlease_ttl = 301\n{ENCODER}"),
        "cluster.etcd",
        Some(1),
        "missing required key",
    );
    check_err(
        &format!("[cluster]\netcd = \"http://e:2379\"\nname = \"c\"\nnode = \"n\"\n{ENCODER}"),
        "cluster.etcd",
        Some(2),
        "expected an array of strings",
    );
}

#[test]
fn what_the_cluster_library_refuses_is_refused_here() {
    check_err(
        &format!("[cluster]\netcd = [\"https://e:2379\"]\nname = \"c\"\nnode = \"n\"\n{ENCODER}"),
        "cluster.etcd",
        Some(2),
        "https",
    );
    check_err(
        &format!("[cluster]\netcd = [\"http://e:2379\"]\nname = \"c\"\nnode = \"n\"\nlease_ttl = \"2500ms\"\n{ENCODER}"),
        "cluster.lease_ttl",
        Some(5),
        "whole number of seconds",
    );
}

#[test]
fn every_request_must_end_within_the_demotion_margin() {
    let cluster = |ttl: &str| {
        format!("[cluster]\netcd = [\"http://e:2379\"]\nname = \"c\"\nnode = \"n\"\nlease_ttl = \"{ttl}\"\n")
    };
    // The defaults fit: 3 s requests, a 10 s lease, a 3.333 s margin.
    assert!(parse_env(&format!("{}{ENCODER}", cluster("10s")), None).is_ok());
    // A 9 s lease leaves 3 s: not longer than the request timeout.
    check_err(
        &format!("{}{ENCODER}", cluster("9s")),
        "cluster.lease_ttl",
        Some(5),
        "request_timeout is 3.000s for a",
    );
    // An override on one encoder is enough, and names it.
    let slow = format!(
        "{}{ENCODER}[encoder.overrides]\nrequest_timeout = \"4s\"\n[[encoder]]\nid = \"b\"\nurl = \"http://h2\"\n",
        cluster("10s")
    );
    let err = parse_env(&slow, None).unwrap_err();
    assert_eq!(err.issues.len(), 1, "{err}");
    let message = &err.issues[0].message;
    assert!(
        message.contains("3.333s") && message.contains("4.000s for a ("),
        "{err}"
    );
    assert!(!message.contains("for a, b"), "{err}");
    // Short requests fit a short lease.
    let fast = format!(
        "{}[defaults]\nrequest_timeout = \"800ms\"\n{ENCODER}",
        cluster("3s")
    );
    assert!(parse_env(&fast, None).is_ok());
}
