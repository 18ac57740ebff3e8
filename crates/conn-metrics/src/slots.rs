//! Stable `connection_id` labels: a connection is labelled with its *slot*, the
//! lowest number not held by another live connection of the same encoder, so a
//! replaced connection's successor takes over its series instead of starting new ones.
//!
//! A pool holds at most `max_connections` live connections per encoder, and each one
//! is announced by `warmup_success` and ends with `connection_retired`, so the labels
//! stay within `0..max_connections` however often connections are replaced: a day of
//! churn creates no new series.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

use helo_transport::ConnectionId;

/// The live connections of every encoder, by slot.
#[derive(Debug, Default)]
pub(crate) struct ConnectionSlots {
    by_encoder: Mutex<HashMap<Box<str>, Vec<Option<ConnectionId>>>>,
}

impl ConnectionSlots {
    fn lock(&self) -> MutexGuard<'_, HashMap<Box<str>, Vec<Option<ConnectionId>>>> {
        // Every critical section leaves the map consistent; a poisoned lock guards
        // good data.
        self.by_encoder.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The slot of `conn`, given now if it has none: the lowest free one.
    pub(crate) fn assign(&self, encoder: &str, conn: ConnectionId) -> usize {
        let mut map = self.lock();
        let slots = match map.get_mut(encoder) {
            Some(slots) => slots,
            None => map.entry(encoder.into()).or_default(),
        };
        if let Some(i) = slots.iter().position(|s| *s == Some(conn)) {
            return i;
        }
        match slots.iter().position(Option::is_none) {
            Some(i) => {
                slots[i] = Some(conn);
                i
            }
            None => {
                slots.push(Some(conn));
                slots.len() - 1
            }
        }
    }

    /// The slot of a live connection; `None` for one never announced or already gone.
    pub(crate) fn of(&self, encoder: &str, conn: ConnectionId) -> Option<usize> {
        self.lock()
            .get(encoder)?
            .iter()
            .position(|s| *s == Some(conn))
    }

    /// Frees the slot of `conn`, answering which it was.
    pub(crate) fn release(&self, encoder: &str, conn: ConnectionId) -> Option<usize> {
        let mut map = self.lock();
        let slots = map.get_mut(encoder)?;
        let i = slots.iter().position(|s| *s == Some(conn))?;
        slots[i] = None;
        if slots.iter().all(Option::is_none) {
            map.remove(encoder);
        }
        Some(i)
    }

    /// Forgets every slot of `encoder`.
    pub(crate) fn remove_encoder(&self, encoder: &str) {
        self.lock().remove(encoder);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(n: u64) -> ConnectionId {
        ConnectionId::from_raw(n)
    }

    #[test]
    fn the_lowest_free_slot_is_reused_and_encoders_do_not_share() {
        let s = ConnectionSlots::default();
        assert_eq!(s.assign("a", c(10)), 0);
        assert_eq!(s.assign("a", c(11)), 1);
        assert_eq!(s.assign("a", c(10)), 0, "assigning again keeps the slot");
        assert_eq!(s.assign("b", c(12)), 0);
        assert_eq!(s.release("a", c(10)), Some(0));
        assert_eq!(s.of("a", c(10)), None);
        assert_eq!(s.release("a", c(10)), None, "released once");
        assert_eq!(
            s.assign("a", c(13)),
            0,
            "the successor takes the freed slot"
        );
        assert_eq!(s.of("a", c(11)), Some(1));
        // A thousand replacements of both connections use the same two slots.
        let mut next = 100;
        for _ in 0..1_000 {
            let live: Vec<ConnectionId> = s.lock()["a"].iter().flatten().copied().collect();
            for old in live {
                let slot = s.release("a", old).unwrap();
                next += 1;
                assert_eq!(s.assign("a", c(next)), slot);
            }
        }
        assert_eq!(s.lock()["a"].len(), 2);
        s.remove_encoder("a");
        assert_eq!(s.of("a", c(next)), None);
        assert_eq!(s.of("b", c(12)), Some(0));
    }
}
