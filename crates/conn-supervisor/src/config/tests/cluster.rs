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
        "[cluster]\netcd = [\"http://10.0.0.5:2379\", \"https://etcd-2:2379/\"]\nname = \"studios\"\nnode = \"node-1\"\n{ENCODER}"
    );
    let cluster = parse_env(&text, None).unwrap().cluster.unwrap();
    assert_eq!(
        cluster,
        ClusterSettings {
            etcd: vec!["http://10.0.0.5:2379".into(), "https://etcd-2:2379".into()],
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
