//! The key layout in etcd, in one place:
//!
//! ```text
//! /<cluster>/members/<node>      value: <node>   lease: that node's
//! /<cluster>/owners/<encoder>    value: <node>   lease: the owner's
//! ```
//!
//! Both kinds are bound to the node's one lease, so when the lease goes (expiry after
//! a crash, or revocation on a clean stop) the node leaves and its encoders are free in
//! the same etcd revision.

/// Builds and parses this cluster's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Keys {
    /// `/<cluster>/`: the trailing slash keeps `/studio` from matching `/studio-b`.
    root: String,
}

/// What a key under the cluster's root is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind<'a> {
    Member(&'a str),
    Owner(&'a str),
}

impl Keys {
    pub(crate) fn new(cluster: &str) -> Self {
        Self {
            root: format!("/{cluster}/"),
        }
    }

    /// The prefix that holds every key of the cluster.
    pub(crate) fn root(&self) -> &str {
        &self.root
    }

    pub(crate) fn member(&self, node: &str) -> String {
        format!("{}members/{node}", self.root)
    }

    pub(crate) fn owner(&self, encoder: &str) -> String {
        format!("{}owners/{encoder}", self.root)
    }

    /// `None` for keys of other clusters, other kinds, or names that break the naming
    /// rule (nothing this crate wrote).
    pub(crate) fn parse<'k>(&self, key: &'k str) -> Option<KeyKind<'k>> {
        let rest = key.strip_prefix(self.root.as_str())?;
        let kind = if let Some(node) = rest.strip_prefix("members/") {
            KeyKind::Member(node)
        } else if let Some(encoder) = rest.strip_prefix("owners/") {
            KeyKind::Owner(encoder)
        } else {
            return None;
        };
        let name = match kind {
            KeyKind::Member(n) | KeyKind::Owner(n) => n,
        };
        crate::config::is_valid_name(name).then_some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let keys = Keys::new("studio-fleet");
        assert_eq!(keys.root(), "/studio-fleet/");
        assert_eq!(keys.member("sup-a"), "/studio-fleet/members/sup-a");
        assert_eq!(keys.owner("studio-a"), "/studio-fleet/owners/studio-a");
        assert_eq!(
            keys.parse(&keys.member("sup-a")),
            Some(KeyKind::Member("sup-a"))
        );
        assert_eq!(
            keys.parse(&keys.owner("studio-a")),
            Some(KeyKind::Owner("studio-a"))
        );
    }

    #[test]
    fn foreign_keys_are_ignored() {
        let keys = Keys::new("studio");
        for key in [
            "/studio-b/members/sup-a",
            "/studio/other/x",
            "/studio/members/",
            "/studio/owners/a/b",
            "/studio/owners/bad name",
            "studio/members/a",
        ] {
            assert_eq!(keys.parse(key), None, "{key}");
        }
    }
}
