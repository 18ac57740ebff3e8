//! Event connections: per-connection queues of parameter changes for
//! `wait_for_config_events` long polls.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Changes kept per connection between two waits; older ones are dropped first.
pub(crate) const QUEUE_LIMIT: usize = 256;
/// Idle connections beyond this many are evicted, least recently used first.
const MAX_CONNECTIONS: usize = 64;

/// One parameter change as sent to clients.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct ConfigEvent {
    pub(crate) param_id: &'static str,
    pub(crate) param_type: &'static str,
    pub(crate) int_value: i64,
    pub(crate) str_value: String,
    pub(crate) last_config_update: String,
}

#[derive(Debug)]
struct Connection {
    queue: VecDeque<ConfigEvent>,
    last_used: Instant,
    /// Long polls in progress; a connection being waited on never expires.
    waiting: u32,
    notify: Arc<Notify>,
}

/// How a wait starts.
#[derive(Debug)]
pub(crate) enum WaitStart {
    /// Changes were already queued.
    Ready(Vec<ConfigEvent>),
    /// Nothing queued: wait for this to be notified.
    Wait(Arc<Notify>),
}

/// All event connections of one device.
#[derive(Debug)]
pub(crate) struct EventHub {
    conns: HashMap<u64, Connection>,
    next_id: u64,
    expiry: Duration,
}

impl EventHub {
    pub(crate) fn new(expiry: Duration) -> Self {
        EventHub {
            conns: HashMap::new(),
            next_id: 1,
            expiry,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.conns.len()
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        self.conns.contains_key(&id)
    }

    /// Drops every connection (a reboot); ids keep counting so old ones stay invalid.
    pub(crate) fn clear(&mut self) {
        for c in self.conns.values() {
            c.notify.notify_one();
        }
        self.conns.clear();
    }

    fn expired(&self, c: &Connection, now: Instant) -> bool {
        c.waiting == 0 && now.saturating_duration_since(c.last_used) > self.expiry
    }

    /// Removes expired connections.
    pub(crate) fn prune(&mut self, now: Instant) {
        let expiry = self.expiry;
        self.conns
            .retain(|_, c| c.waiting > 0 || now.saturating_duration_since(c.last_used) <= expiry);
    }

    pub(crate) fn connect(&mut self, now: Instant) -> u64 {
        self.prune(now);
        if self.conns.len() >= MAX_CONNECTIONS {
            let victim = self
                .conns
                .iter()
                .filter(|(_, c)| c.waiting == 0)
                .min_by_key(|(_, c)| c.last_used)
                .map(|(id, _)| *id);
            if let Some(id) = victim {
                self.conns.remove(&id);
            }
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.conns.insert(
            id,
            Connection {
                queue: VecDeque::new(),
                last_used: now,
                waiting: 0,
                notify: Arc::new(Notify::new()),
            },
        );
        id
    }

    /// Queues a change on every connection and wakes their waiters.
    pub(crate) fn push(&mut self, event: &ConfigEvent, now: Instant) {
        self.prune(now);
        for c in self.conns.values_mut() {
            if c.queue.len() >= QUEUE_LIMIT {
                c.queue.pop_front();
            }
            c.queue.push_back(event.clone());
            c.notify.notify_one();
        }
    }

    /// Starts a long poll; `None` for an unknown or expired id.
    pub(crate) fn begin_wait(&mut self, id: u64, now: Instant) -> Option<WaitStart> {
        let expired = self.expired(self.conns.get(&id)?, now);
        if expired {
            self.conns.remove(&id);
            return None;
        }
        let c = self.conns.get_mut(&id)?;
        c.last_used = now;
        if !c.queue.is_empty() {
            return Some(WaitStart::Ready(c.queue.drain(..).collect()));
        }
        c.waiting += 1;
        Some(WaitStart::Wait(Arc::clone(&c.notify)))
    }

    /// Marks a connection used without taking its queue (a wait answered at once);
    /// false for an unknown or expired id.
    pub(crate) fn touch(&mut self, id: u64, now: Instant) -> bool {
        let Some(c) = self.conns.get(&id) else {
            return false;
        };
        if self.expired(c, now) {
            self.conns.remove(&id);
            return false;
        }
        if let Some(c) = self.conns.get_mut(&id) {
            c.last_used = now;
        }
        true
    }

    /// Takes what is queued for a waiting connection (empty when nothing is).
    pub(crate) fn take(&mut self, id: u64) -> Vec<ConfigEvent> {
        self.conns
            .get_mut(&id)
            .map(|c| c.queue.drain(..).collect())
            .unwrap_or_default()
    }

    /// Ends a long poll begun with [`WaitStart::Wait`].
    pub(crate) fn end_wait(&mut self, id: u64, now: Instant) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.waiting = c.waiting.saturating_sub(1);
            c.last_used = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(n: i64) -> ConfigEvent {
        ConfigEvent {
            param_id: "eParamID_X",
            param_type: "integer",
            int_value: n,
            str_value: n.to_string(),
            last_config_update: n.to_string(),
        }
    }

    #[test]
    fn changes_between_waits_are_queued_bounded_oldest_dropped() {
        let t0 = Instant::now();
        let mut hub = EventHub::new(Duration::from_secs(60));
        let id = hub.connect(t0);
        for n in 0..(QUEUE_LIMIT as i64 + 10) {
            hub.push(&ev(n), t0);
        }
        match hub.begin_wait(id, t0) {
            Some(WaitStart::Ready(events)) => {
                assert_eq!(events.len(), QUEUE_LIMIT);
                assert_eq!(events[0].int_value, 10);
            }
            other => panic!("expected queued events, got {other:?}"),
        }
        assert!(matches!(hub.begin_wait(id, t0), Some(WaitStart::Wait(_))));
    }

    #[test]
    fn unused_ids_expire_but_waited_ones_do_not() {
        let t0 = Instant::now();
        let mut hub = EventHub::new(Duration::from_secs(60));
        let idle = hub.connect(t0);
        let busy = hub.connect(t0);
        assert!(matches!(hub.begin_wait(busy, t0), Some(WaitStart::Wait(_))));
        let later = t0 + Duration::from_secs(61);
        assert!(hub.begin_wait(idle, later).is_none());
        hub.prune(later);
        assert_eq!(hub.len(), 1);
        hub.end_wait(busy, later);
        assert!(hub
            .begin_wait(busy, later + Duration::from_secs(1))
            .is_some());
        assert!(hub.begin_wait(999, t0).is_none());
    }
}
