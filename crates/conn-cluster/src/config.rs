//! `[cluster]`: where etcd is, what this cluster and this node are called, and the lease
//! time-to-live from which every other timing follows.

use std::time::Duration;

use crate::error::ClusterError;

/// The `[cluster]` settings. Plain data: the supervisor's config module parses TOML into
/// it; [`ClusterConfig::validate`] checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// etcd client endpoints, e.g. `http://127.0.0.1:2379`.
    pub etcd: Vec<String>,
    /// The cluster's name: every key lives under `/<name>/` in etcd.
    pub name: String,
    /// This node's name, unique in the cluster.
    pub node: String,
    /// How long etcd keeps this node's keys after its last keep-alive.
    pub lease_ttl: Duration,
}

/// Derived timings; all follow from the lease TTL (see [`ClusterConfig::demotion_margin`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timing {
    pub(crate) ttl: Duration,
    pub(crate) margin: Duration,
    pub(crate) check_interval: Duration,
    pub(crate) rpc_timeout: Duration,
    pub(crate) start_timeout: Duration,
}

// === impl ClusterConfig ===

impl ClusterConfig {
    /// The shortest lease TTL: etcd's own minimum with its default heartbeat (1.5 s,
    /// rounded up to whole seconds).
    pub const MIN_LEASE_TTL: Duration = Duration::from_secs(2);
    /// The longest lease TTL: a dead node's encoders would wait this long for a new owner.
    pub const MAX_LEASE_TTL: Duration = Duration::from_secs(300);
    /// The default lease TTL, as in the issue: a third of Patroni's 30 s.
    pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);

    /// Settings with the default lease TTL.
    pub fn new(etcd: Vec<String>, name: impl Into<String>, node: impl Into<String>) -> Self {
        Self {
            etcd,
            name: name.into(),
            node: node.into(),
            lease_ttl: Self::DEFAULT_LEASE_TTL,
        }
    }

    /// The same settings with another lease TTL.
    pub fn with_lease_ttl(mut self, lease_ttl: Duration) -> Self {
        self.lease_ttl = lease_ttl;
        self
    }

    /// Checks every value; the error names the key.
    pub fn validate(&self) -> Result<(), ClusterError> {
        if self.etcd.is_empty() {
            return Err(ClusterError::config(
                "etcd",
                "no endpoints (give at least one, e.g. \"http://127.0.0.1:2379\")",
            ));
        }
        for endpoint in &self.etcd {
            check_endpoint(endpoint)?;
        }
        check_name("name", &self.name)?;
        check_name("node", &self.node)?;
        let ttl = self.lease_ttl;
        if !(Self::MIN_LEASE_TTL..=Self::MAX_LEASE_TTL).contains(&ttl) {
            return Err(ClusterError::config(
                "lease_ttl",
                format!(
                    "{ttl:?} is out of range ({:?} to {:?})",
                    Self::MIN_LEASE_TTL,
                    Self::MAX_LEASE_TTL
                ),
            ));
        }
        if ttl.subsec_nanos() != 0 {
            return Err(ClusterError::config(
                "lease_ttl",
                format!("{ttl:?} is not a whole number of seconds (etcd leases count seconds)"),
            ));
        }
        Ok(())
    }

    /// How long before its lease can expire in etcd a node that cannot renew it stops
    /// acting: a third of the TTL (3.3 s with the default 10 s).
    ///
    /// Demotion is counted from the moment the last successful keep-alive was *sent*,
    /// which is no later than etcd renewed the lease, so etcd's expiry is at least this
    /// margin after demotion. The margin must cover whatever a node still has in flight
    /// when it demotes: a device request that started just before must end before
    /// another node can own the encoder, so the supervisor's request timeout should be
    /// shorter than this margin (3 s < 3.3 s with the defaults). A third also leaves two
    /// thirds of the TTL for keep-alive retries, so one slow answer does not demote.
    pub fn demotion_margin(&self) -> Duration {
        Timing::for_ttl(self.lease_ttl).margin
    }

    /// How often the node renews its lease and retries what failed: a fifth of the TTL.
    /// A dead node's encoders get a new owner within TTL + this interval.
    pub fn check_interval(&self) -> Duration {
        Timing::for_ttl(self.lease_ttl).check_interval
    }
}

fn check_endpoint(endpoint: &str) -> Result<(), ClusterError> {
    let bad = |why: &str| {
        ClusterError::config(
            "etcd",
            format!(
                "{:?} {why} (expected e.g. \"http://127.0.0.1:2379\")",
                crate::error::bounded(endpoint)
            ),
        )
    };
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(&format!("is not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => return Err(bad("uses https, which this build does not support")),
        Some(_) => return Err(bad("has a scheme other than http")),
        None => return Err(bad("has no scheme")),
    }
    let Some(authority) = uri.authority() else {
        return Err(bad("has no host"));
    };
    if authority.host().is_empty() {
        return Err(bad("has no host"));
    }
    if authority.port_u16().is_none() {
        return Err(bad("has no port"));
    }
    if authority.as_str().contains('@') {
        return Err(bad("holds user info (put no credentials in the URL)"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(bad("has a path or query"));
    }
    Ok(())
}

/// Cluster, node and encoder names share the supervisor's rule for encoder ids, so every
/// one of them is a safe etcd key segment and a safe label.
pub(crate) fn check_name(key: &'static str, name: &str) -> Result<(), ClusterError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(ClusterError::config(
            key,
            format!(
                "{:?} must be 1-64 characters of letters, digits, '.', '_' or '-'",
                crate::error::bounded(name)
            ),
        ))
    }
}

pub(crate) fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

// === impl Timing ===

impl Timing {
    pub(crate) fn for_ttl(ttl: Duration) -> Self {
        let check_interval = ttl / 5;
        Self {
            ttl,
            margin: ttl / 3,
            check_interval,
            // A renewal that takes longer than the interval is as good as failed: the
            // next one is due.
            rpc_timeout: check_interval,
            start_timeout: (ttl / 2).clamp(Duration::from_secs(1), Duration::from_secs(5)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ClusterConfig {
        ClusterConfig::new(
            vec!["http://127.0.0.1:2379".into()],
            "studio-fleet",
            "sup-a",
        )
    }

    fn check(edit: impl FnOnce(&mut ClusterConfig), key: &str, needle: &str) {
        let mut c = config();
        edit(&mut c);
        let err = c.validate().expect_err("must be rejected");
        assert!(err.is_invalid_config(), "{err}");
        assert_eq!(err.config_key(), Some(key), "{err}");
        assert!(err.to_string().contains(needle), "{err} lacks {needle:?}");
    }

    #[test]
    fn a_good_config_passes() {
        config().validate().unwrap();
        config()
            .with_lease_ttl(Duration::from_secs(2))
            .validate()
            .unwrap();
        config()
            .with_lease_ttl(Duration::from_secs(300))
            .validate()
            .unwrap();
    }

    #[test]
    fn bad_values_name_their_key() {
        check(|c| c.etcd.clear(), "etcd", "no endpoints");
        check(|c| c.etcd = vec!["not a url".into()], "etcd", "not a URL");
        check(|c| c.etcd = vec!["127.0.0.1:2379".into()], "etcd", "scheme");
        check(|c| c.etcd = vec!["https://h:2379".into()], "etcd", "https");
        check(|c| c.etcd = vec!["ftp://h:2379".into()], "etcd", "scheme");
        check(|c| c.etcd = vec!["http://h".into()], "etcd", "no port");
        check(|c| c.etcd = vec!["http://h:2379/v3".into()], "etcd", "path");
        check(
            |c| c.etcd = vec!["http://u:secret@h:2379".into()],
            "etcd",
            "credentials",
        );
        check(|c| c.name = String::new(), "name", "1-64");
        check(|c| c.name = "a/b".into(), "name", "1-64");
        check(|c| c.node = "x".repeat(65), "node", "1-64");
        check(|c| c.node = "sup a".into(), "node", "1-64");
        check(
            |c| c.lease_ttl = Duration::from_secs(1),
            "lease_ttl",
            "out of range",
        );
        check(
            |c| c.lease_ttl = Duration::from_secs(301),
            "lease_ttl",
            "out of range",
        );
        check(
            |c| c.lease_ttl = Duration::from_millis(2500),
            "lease_ttl",
            "whole number",
        );
    }

    #[test]
    fn timings_follow_the_ttl() {
        let t = Timing::for_ttl(Duration::from_secs(10));
        assert_eq!(
            t.margin,
            Duration::from_millis(3333) + Duration::from_nanos(333_333)
        );
        assert_eq!(t.check_interval, Duration::from_secs(2));
        assert_eq!(t.start_timeout, Duration::from_secs(5));
        // The bound: takeover within TTL + one check interval <= 12 s.
        assert!(t.ttl + t.check_interval <= Duration::from_secs(12));
        // Retries fit between the last renewal and demotion.
        assert!(t.ttl - t.margin >= 3 * t.check_interval);
        assert_eq!(config().demotion_margin(), t.margin);
        assert_eq!(config().check_interval(), t.check_interval);
    }
}
