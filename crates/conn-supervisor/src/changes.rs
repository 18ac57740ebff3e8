//! Which encoders' views may have changed: each mark is a number from one fleet-wide
//! sequence, so a reader that remembers the last number it saw asks "what changed
//! since?" in one pass.
//!
//! Writers (the supervision loop after each check and hold change, the admin actions)
//! only mark; they never build a view or wait for a reader. Readers are never queued
//! for: a reader reads the current marks when it is ready, so a slow one costs nothing
//! while it is slow.

use std::{collections::HashMap, sync::Mutex};

use crate::fleet::lock;

/// Change marks of a fleet. See the module docs.
#[derive(Debug, Default)]
pub struct Changes {
    inner: Mutex<Marks>,
}

#[derive(Debug, Default)]
struct Marks {
    by_id: HashMap<String, u64>,
    /// The last sequence number handed out.
    seq: u64,
}

impl Changes {
    /// Marks `id` as changed (a new or updated encoder).
    pub(crate) fn touch(&self, id: &str) {
        let mut m = lock(&self.inner);
        m.seq += 1;
        let seq = m.seq;
        match m.by_id.get_mut(id) {
            Some(mark) => *mark = seq,
            None => {
                m.by_id.insert(id.to_string(), seq);
            }
        }
    }

    /// Forgets `id` (no longer supervised); the sequence moves, so readers look and
    /// notice that it is gone.
    pub(crate) fn forget(&self, id: &str) {
        let mut m = lock(&self.inner);
        if m.by_id.remove(id).is_some() {
            m.seq += 1;
        }
    }

    /// The encoders marked after `since`, and the sequence number to ask from next.
    pub fn changed_since(&self, since: u64) -> (Vec<String>, u64) {
        let m = lock(&self.inner);
        let changed = m
            .by_id
            .iter()
            .filter(|(_, &mark)| mark > since)
            .map(|(id, _)| id.clone())
            .collect();
        (changed, m.seq)
    }

    /// The last sequence number handed out.
    pub fn current(&self) -> u64 {
        lock(&self.inner).seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    #[test]
    fn a_reader_sees_each_change_once_from_where_it_left_off() {
        let c = Changes::default();
        c.touch("a");
        c.touch("b");
        let (changed, seen) = c.changed_since(0);
        assert_eq!(sorted(changed), ["a", "b"]);
        assert_eq!(seen, c.current());
        assert_eq!(c.changed_since(seen), (Vec::new(), seen));
        c.touch("b");
        c.touch("b");
        let (changed, seen2) = c.changed_since(seen);
        assert_eq!(changed, ["b"]);
        assert!(seen2 > seen);
    }

    #[test]
    fn forgetting_moves_the_sequence_and_drops_the_mark() {
        let c = Changes::default();
        c.touch("a");
        let before = c.current();
        c.forget("a");
        let (changed, after) = c.changed_since(0);
        assert!(changed.is_empty());
        assert!(after > before, "readers must notice the removal");
        // Forgetting what is not there changes nothing.
        c.forget("a");
        assert_eq!(c.current(), after);
    }
}
