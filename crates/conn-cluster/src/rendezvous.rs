//! Which live member supervises which encoder: rendezvous (highest-random-weight)
//! hashing. Every member scores every (member, encoder) pair and the highest score
//! wins, so when a member joins it takes about 1/N of the encoders from the others and
//! nothing else moves, and when it leaves only its own encoders move.
//!
//! The weight is part of the cluster's protocol: every node must compute the same
//! number, on every platform and in every release. It is FNV-1a (64 bit) over the
//! member name's length, the member name and the encoder id, followed by MurmurHash3's
//! 64-bit finalizer, because FNV alone gives similar names similar weights. Changing it
//! moves encoders across a mixed-version cluster; do not.

/// The weight of `member` for `encoder`; higher wins.
pub fn weight(member: &str, encoder: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let mut eat = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    // The length prefix keeps ("ab", "c") and ("a", "bc") apart.
    eat(&(member.len() as u64).to_le_bytes());
    eat(member.as_bytes());
    eat(encoder.as_bytes());
    fmix64(hash)
}

/// MurmurHash3's finalizer: every input bit flips each output bit with probability ~1/2.
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// The member that should supervise `encoder`, or `None` without members. The order of
/// `members` does not matter; a tie (never seen in practice) goes to the greater name.
pub fn owner_of<'m, M: AsRef<str>>(encoder: &str, members: &'m [M]) -> Option<&'m M> {
    members.iter().max_by(|a, b| {
        let (a, b) = (a.as_ref(), b.as_ref());
        (weight(a, encoder), a).cmp(&(weight(b, encoder), b))
    })
}

/// The encoders among `encoders` that `me` should supervise when `members` are live.
pub fn assignment<'e, E: AsRef<str>, M: AsRef<str>>(
    encoders: &'e [E],
    members: &[M],
    me: &str,
) -> Vec<&'e str> {
    encoders
        .iter()
        .map(AsRef::as_ref)
        .filter(|e| owner_of(e, members).is_some_and(|m| m.as_ref() == me))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn encoders(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("studio-{i}")).collect()
    }

    fn owners(encoders: &[String], members: &[&str]) -> BTreeMap<String, String> {
        encoders
            .iter()
            .map(|e| (e.clone(), owner_of(e, members).unwrap().to_string()))
            .collect()
    }

    #[test]
    fn no_members_no_owner() {
        let none: [&str; 0] = [];
        assert_eq!(owner_of("studio-a", &none), None);
        assert!(assignment(&["studio-a"], &none, "sup-a").is_empty());
    }

    #[test]
    fn one_member_gets_everything() {
        let all = encoders(50);
        assert_eq!(assignment(&all, &["sup-a"], "sup-a").len(), 50);
        assert!(assignment(&all, &["sup-a"], "sup-b").is_empty());
    }

    #[test]
    fn assignments_partition_the_fleet() {
        let all = encoders(300);
        for members in [&["a", "b"][..], &["a", "b", "c"][..]] {
            let mut seen: Vec<&str> = members
                .iter()
                .flat_map(|m| assignment(&all, members, m))
                .collect();
            seen.sort_unstable();
            let mut expected: Vec<&str> = all.iter().map(String::as_str).collect();
            expected.sort_unstable();
            assert_eq!(seen, expected, "each encoder exactly once");
        }
    }

    #[test]
    fn the_answer_does_not_depend_on_member_order() {
        let all = encoders(200);
        let a = owners(&all, &["sup-a", "sup-b", "sup-c"]);
        assert_eq!(a, owners(&all, &["sup-c", "sup-a", "sup-b"]));
        assert_eq!(a, owners(&all, &["sup-b", "sup-c", "sup-a"]));
    }

    #[test]
    fn the_load_is_spread_evenly() {
        let all = encoders(3000);
        let members = ["sup-a", "sup-b", "sup-c"];
        for m in members {
            let n = assignment(&all, &members, m).len();
            assert!((850..=1150).contains(&n), "{m} got {n} of 3000");
        }
    }

    #[test]
    fn a_join_moves_about_one_nth_and_only_to_the_new_member() {
        let all = encoders(3000);
        let before = owners(&all, &["sup-a", "sup-b", "sup-c"]);
        let after = owners(&all, &["sup-a", "sup-b", "sup-c", "sup-d"]);
        let moved: Vec<_> = all.iter().filter(|e| before[*e] != after[*e]).collect();
        for e in &moved {
            assert_eq!(after[*e], "sup-d", "{e} moved between old members");
        }
        // 1/4 of 3000 = 750.
        assert!((650..=850).contains(&moved.len()), "{} moved", moved.len());
    }

    #[test]
    fn a_leave_moves_only_the_leavers_encoders() {
        let all = encoders(3000);
        let before = owners(&all, &["sup-a", "sup-b", "sup-c"]);
        let after = owners(&all, &["sup-a", "sup-c"]);
        for e in &all {
            if before[e] == "sup-b" {
                assert_ne!(after[e], "sup-b");
            } else {
                assert_eq!(before[e], after[e], "{e} moved though its owner stayed");
            }
        }
    }

    #[test]
    fn weights_are_fixed_across_builds() {
        // The protocol: these numbers must never change (see the module docs).
        let w = weight("sup-a", "studio-a");
        assert_eq!(w, weight("sup-a", "studio-a"));
        assert_ne!(weight("ab", "c"), weight("a", "bc"));
        // Computed by an independent implementation of the documented algorithm.
        assert_eq!(weight("sup-a", "studio-a"), 0x50f3_0102_b018_baa7);
        assert_eq!(weight("sup-b", "studio-a"), 0x08b9_a355_b36e_3b11);
    }
}
