//! Duplicate encoder ids, found in one pass over tens of thousands of them.
//!
//! A map from each id to its line is one random access into a table of megabytes per
//! encoder: at 40 000 encoders that cache miss was the part of validation that grew
//! fastest. Here the table holds only the ids' 64-bit hashes (a few hundred KiB, which
//! stay in cache); the ids themselves are kept in file order and read only when two
//! hashes meet.

use std::{
    collections::{hash_map::RandomState, HashMap},
    hash::{BuildHasher, BuildHasherDefault, Hasher},
};

/// The ids seen so far, each with the line it was first seen on.
pub(super) struct SeenIds {
    state: RandomState,
    /// The hash of each id seen, to its place in `first`.
    by_hash: HashMap<u64, usize, BuildHasherDefault<Prehashed>>,
    first: Vec<(String, Option<usize>)>,
    /// Ids whose hash another id already has (practically never).
    collided: HashMap<String, Option<usize>>,
}

impl SeenIds {
    pub(super) fn with_capacity(n: usize) -> Self {
        Self {
            state: RandomState::new(),
            by_hash: HashMap::with_capacity_and_hasher(n, BuildHasherDefault::default()),
            first: Vec::with_capacity(n),
            collided: HashMap::new(),
        }
    }

    /// Notes `id`, seen on `line`. A duplicate answers `Some` with the line of the first
    /// sighting (itself `None` when that had no line).
    pub(super) fn duplicate(&mut self, id: &str, line: Option<usize>) -> Option<Option<usize>> {
        let hash = self.state.hash_one(id);
        match self.by_hash.get(&hash) {
            None => {
                self.by_hash.insert(hash, self.first.len());
                self.first.push((id.to_string(), line));
                None
            }
            Some(&at) => match self.first.get(at) {
                Some((first, first_line)) if first == id => Some(*first_line),
                _ => match self.collided.get(id) {
                    Some(first_line) => Some(*first_line),
                    None => {
                        self.collided.insert(id.to_string(), line);
                        None
                    }
                },
            },
        }
    }
}

/// A hasher for keys that are already hashes.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the keys are `u64`); this keeps any other input
        // hashed, if poorly.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_sighting_of_an_id_names_the_first_line() {
        let mut seen = SeenIds::with_capacity(4);
        assert_eq!(seen.duplicate("a", Some(3)), None);
        assert_eq!(seen.duplicate("b", None), None);
        assert_eq!(seen.duplicate("a", Some(9)), Some(Some(3)));
        assert_eq!(seen.duplicate("b", Some(12)), Some(None));
        assert_eq!(seen.duplicate("a", Some(20)), Some(Some(3)));
    }

    #[test]
    fn ids_whose_hashes_meet_are_still_told_apart() {
        // Force every id onto one hash: the path a real collision would take.
        let mut seen = SeenIds::with_capacity(4);
        let hash = seen.state.hash_one("a");
        assert_eq!(seen.duplicate("a", Some(1)), None);
        seen.by_hash.insert(seen.state.hash_one("b"), 0);
        seen.by_hash.insert(seen.state.hash_one("c"), 0);
        assert_eq!(seen.by_hash.get(&hash), Some(&0));
        assert_eq!(seen.duplicate("b", Some(2)), None);
        assert_eq!(seen.duplicate("c", Some(3)), None);
        assert_eq!(seen.duplicate("b", Some(4)), Some(Some(2)));
        assert_eq!(seen.duplicate("c", Some(5)), Some(Some(3)));
        assert_eq!(seen.duplicate("a", Some(6)), Some(Some(1)));
    }
}
