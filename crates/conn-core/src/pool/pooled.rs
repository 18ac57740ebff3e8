//! A connection handed out by the pool, returned to it on drop.

use std::{
    fmt,
    ops::Deref,
    sync::{
        atomic::{AtomicBool, Ordering},
        Weak,
    },
};

use helo_transport::ConnectionId;

use super::encoder::EncoderSlot;
use crate::{conn::PoolConn, EncoderId};

/// A warm connection checked out of the pool.
///
/// Derefs to the connection (for [`HeloConnection`](helo_transport::HeloConnection):
/// clone it to get a `tower::Service`). When dropped it goes back to the warm set,
/// unless it is broken ([`PooledConnection::mark_broken`], or closed by the device),
/// past its lifetime (closed and replaced), or hot or cooling (the thermal model
/// keeps it until its cooling ends). Clones of the inner connection made while it was
/// out do not keep it out of the pool.
pub struct PooledConnection<T: PoolConn> {
    conn: T,
    encoder: EncoderId,
    slot: Weak<EncoderSlot<T>>,
    broken: AtomicBool,
}

impl<T: PoolConn> PooledConnection<T> {
    pub(crate) fn new(conn: T, encoder: EncoderId, slot: Weak<EncoderSlot<T>>) -> Self {
        Self {
            conn,
            encoder,
            slot,
            broken: AtomicBool::new(false),
        }
    }

    /// The connection's id.
    pub fn id(&self) -> ConnectionId {
        self.conn.id()
    }

    /// The encoder it belongs to.
    pub fn encoder(&self) -> &EncoderId {
        &self.encoder
    }

    /// The connection.
    pub fn get_ref(&self) -> &T {
        &self.conn
    }

    /// Marks the connection unusable: on drop it is closed and replaced instead of
    /// going back to the warm set.
    pub fn mark_broken(&self) {
        self.broken.store(true, Ordering::Release);
    }

    /// Whether [`mark_broken`](Self::mark_broken) was called or the connection closed.
    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Acquire) || self.conn.is_closed()
    }
}

impl<T: PoolConn> Deref for PooledConnection<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.conn
    }
}

impl<T: PoolConn> Drop for PooledConnection<T> {
    fn drop(&mut self) {
        match self.slot.upgrade() {
            Some(slot) => slot.checkin(&self.conn, self.broken.load(Ordering::Acquire)),
            // The pool is gone: nobody will ever hand this connection out again.
            None => self.conn.close(),
        }
    }
}

impl<T: PoolConn> fmt::Debug for PooledConnection<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledConnection")
            .field("encoder", &self.encoder)
            .field("id", &self.conn.id())
            .field("broken", &self.is_broken())
            .finish()
    }
}
