//! The `[cluster]` table: several supervisors sharing one fleet through etcd. Parsed
//! and validated here only; without the table the supervisor runs alone.

use std::time::Duration;

use conn_cluster::ClusterError;

use super::{
    is_name,
    issues::{quoted, Issues},
    parse_duration,
    raw::{RawCluster, RawDuration},
    EncoderConfig,
};

/// The environment variable that, when set, names this node instead of `cluster.node`
/// (so every node can share one configuration file).
pub const CLUSTER_NODE_ENV: &str = "HELO_CLUSTER_NODE";

/// How long a node's lease lives without renewal, unless `lease_ttl` says otherwise.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);

const LEASE_TTL_MIN: Duration = Duration::from_secs(2);
const LEASE_TTL_MAX: Duration = Duration::from_secs(300);

/// This node's place in a cluster of supervisors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// The etcd endpoints, e.g. `http://10.0.0.5:2379` (without a trailing `/`).
    pub etcd: Vec<String>,
    /// The cluster's name: nodes with the same name share the fleet.
    pub name: String,
    /// This node's name, unique in the cluster: `$HELO_CLUSTER_NODE` if set, else
    /// `node`.
    pub node: String,
    /// How long this node's lease lives without renewal.
    pub lease_ttl: Duration,
}

/// The cluster settings, or `None` when they have a mistake (each one in `issues`).
pub(super) fn resolve(
    raw: &RawCluster,
    env: &dyn Fn(&str) -> Option<String>,
    issues: &mut Issues,
) -> Option<ClusterSettings> {
    let before = issues.error_count();
    let mut etcd = Vec::new();
    match &raw.etcd {
        None => {}
        Some(list) if list.value.is_empty() => issues.error(
            "cluster.etcd",
            list.line,
            "needs at least one endpoint, e.g. [\"http://10.0.0.5:2379\"]",
        ),
        Some(list) => {
            for (i, url) in &list.value {
                match endpoint(&url.value) {
                    Ok(url) => etcd.push(url),
                    Err(message) => issues.error(format!("cluster.etcd[{i}]"), url.line, message),
                }
            }
        }
    }
    let name = raw.name.as_ref().and_then(|at| {
        let ok = is_name(&at.value);
        if !ok {
            issues.error("cluster.name", at.line, name_rule(&at.value));
        }
        ok.then(|| at.value.clone())
    });
    let node = match env(CLUSTER_NODE_ENV).filter(|v| !v.is_empty()) {
        Some(from_env) if is_name(&from_env) => Some(from_env),
        Some(from_env) => {
            let line = raw.node.as_ref().map_or(raw.line, |at| at.line);
            issues.error(
                "cluster.node",
                line,
                format!("{CLUSTER_NODE_ENV}: {}", name_rule(&from_env)),
            );
            None
        }
        None => match &raw.node {
            Some(at) if is_name(&at.value) => Some(at.value.clone()),
            Some(at) => {
                issues.error("cluster.node", at.line, name_rule(&at.value));
                None
            }
            None => {
                issues.error(
                    "cluster.node",
                    raw.line,
                    format!("missing required key \"node\" (or set {CLUSTER_NODE_ENV})"),
                );
                None
            }
        },
    };
    let lease_ttl = match &raw.lease_ttl {
        None => DEFAULT_LEASE_TTL,
        Some(at) => {
            let ttl = match &at.value {
                RawDuration::Text(t) => parse_duration(t),
                RawDuration::Secs(s) => parse_duration(&s.to_string()),
            }
            .and_then(|d| {
                if (LEASE_TTL_MIN..=LEASE_TTL_MAX).contains(&d) {
                    Ok(d)
                } else {
                    Err(format!(
                        "{d:?} is out of range ({LEASE_TTL_MIN:?} to {LEASE_TTL_MAX:?})"
                    ))
                }
            });
            ttl.unwrap_or_else(|message| {
                issues.error("cluster.lease_ttl", at.line, message);
                DEFAULT_LEASE_TTL
            })
        }
    };
    let settings = match (name, node) {
        (Some(name), Some(node)) if issues.error_count() == before => ClusterSettings {
            etcd,
            name,
            node,
            lease_ttl,
        },
        _ => return None,
    };
    if settings.etcd.is_empty() {
        // Missing, of the wrong type or empty: reported while reading.
        return None;
    }
    // The rules the cluster library will apply at start, so `config check` finds
    // what `run` would refuse (https endpoints, a TTL that is not whole seconds).
    match crate::cluster::cluster_config(&settings).validate() {
        Ok(()) => Some(settings),
        Err(ClusterError::InvalidConfig { key, detail }) => {
            let line = match key {
                "etcd" => raw.etcd.as_ref().and_then(|at| at.line),
                "name" => raw.name.as_ref().and_then(|at| at.line),
                "node" => raw.node.as_ref().and_then(|at| at.line),
                "lease_ttl" => raw.lease_ttl.as_ref().and_then(|at| at.line),
                _ => None,
            };
            issues.error(format!("cluster.{key}"), line.or(raw.line), detail);
            None
        }
        Err(other) => {
            issues.error("cluster", raw.line, other.to_string());
            None
        }
    }
}

/// A node stops acting a margin (a third of `lease_ttl`) before its lease can expire;
/// a device request it started just before must end within that margin, before
/// another node can take the encoder over. So every `request_timeout` must be
/// shorter than the margin.
pub(super) fn check_request_timeouts(
    raw: &RawCluster,
    settings: &ClusterSettings,
    encoders: &[EncoderConfig],
    issues: &mut Issues,
) {
    let margin = crate::cluster::cluster_config(settings).demotion_margin();
    let slow: Vec<&EncoderConfig> = encoders
        .iter()
        .filter(|e| e.tunables.request_timeout >= margin)
        .collect();
    let Some(worst) = slow.iter().map(|e| e.tunables.request_timeout).max() else {
        return;
    };
    let ids: Vec<&str> = slow.iter().take(3).map(|e| e.id.as_str()).collect();
    let more = slow.len().saturating_sub(ids.len());
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    let line = raw.lease_ttl.as_ref().map_or(raw.line, |at| at.line);
    issues.error(
        "cluster.lease_ttl",
        line,
        format!(
            "its demotion margin ({:.3}s, a third of {:?}) must be longer than every \
             request_timeout, so that a request started just before this node stops acting \
             ends before another node can take over; request_timeout is {:.3}s for {}{more} \
             (raise lease_ttl above 3 × request_timeout, or lower request_timeout)",
            margin.as_secs_f64(),
            settings.lease_ttl,
            worst.as_secs_f64(),
            ids.join(", "),
        ),
    );
}

fn name_rule(value: &str) -> String {
    format!(
        "{} must be 1–64 characters of letters, digits, '.', '_' or '-'",
        quoted(value)
    )
}

/// An etcd endpoint: `http://` or `https://`, a host and a port, nothing else. The
/// URL is not repeated in the messages: it might hold credentials.
fn endpoint(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("must start with http:// or https://")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('@') {
        return Err("credentials in an etcd URL are not supported".into());
    }
    if rest.contains(['/', '?', '#']) {
        return Err("must be only scheme://host:port, without a path".into());
    }
    let (host, port) = match rest.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or("unclosed [ in an IPv6 host")?;
            let ok = !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || ":.".contains(c));
            (ok.then_some(host), after.strip_prefix(':'))
        }
        None => match rest.rsplit_once(':') {
            Some((host, port)) => {
                let ok = !host.is_empty()
                    && host
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c));
                (ok.then_some(host), Some(port))
            }
            None => (Some(rest), None),
        },
    };
    if host.is_none() {
        return Err("the host is not a host name or an IP address".into());
    }
    match port.map(str::parse::<u16>) {
        Some(Ok(p)) if p > 0 => Ok(url.strip_suffix('/').unwrap_or(url).to_string()),
        _ => Err("needs host:port with a port from 1 to 65535, e.g. http://10.0.0.5:2379".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::endpoint;

    #[test]
    fn etcd_endpoints() {
        for ok in [
            "http://10.0.0.5:2379",
            "https://etcd-1.example.org:2379/",
            "http://[::1]:2379",
        ] {
            assert!(endpoint(ok).is_ok(), "{ok}: {:?}", endpoint(ok));
        }
        assert_eq!(
            endpoint("http://e:2379/").as_deref(),
            Ok("http://e:2379"),
            "the trailing slash is dropped"
        );
        for (bad, why) in [
            ("10.0.0.5:2379", "must start with"),
            ("unix:///run/etcd.sock", "must start with"),
            ("http://10.0.0.5", "port"),
            ("http://10.0.0.5:0", "port"),
            ("http://10.0.0.5:99999", "port"),
            ("http://:2379", "host"),
            ("http://e tcd:2379", "host"),
            ("http://e:2379/v3", "without a path"),
            ("http://root:hunter2@e:2379", "credentials"),
            ("http://[::1:2379", "unclosed"),
        ] {
            match endpoint(bad) {
                Ok(u) => panic!("{bad} accepted as {u}"),
                Err(e) => {
                    assert!(e.contains(why), "{bad}: {e}");
                    assert!(!e.contains("hunter2"), "{e}");
                }
            }
        }
    }
}
