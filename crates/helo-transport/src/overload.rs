//! The error of a request refused before it reached the device.

use std::fmt;

use crate::{config::DeviceName, connection::ConnectionId};

/// A request refused at once, before it reached the device, because its connection
/// was at its allowed load, its device at its in-flight cap, or the connection's
/// queue full. Take another connection (or wait) and try again.
///
/// Load-shedding layers above a connection (conn-core's thermal layer) build it; it
/// lives here, beside [`HeloError`](crate::HeloError), so that
/// [`Outcome::of`](crate::Outcome::of) can recognise it as
/// [`Outcome::Shed`](crate::Outcome::Shed) without knowing those layers. Tested with
/// `err.is::<Overloaded>()` on the boxed error.
#[derive(Debug, Clone, PartialEq)]
pub struct Overloaded {
    device: DeviceName,
    conn: ConnectionId,
    request: String,
    in_flight: usize,
    limit: Limit,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Limit {
    /// The connection's allowed load, in percent.
    Connection(f64),
    /// The device's in-flight cap over all its connections.
    Device(usize),
    /// The connection was not ready: its queue was full.
    NotReady,
}

impl Overloaded {
    /// Refused because `in_flight` requests already use the connection's allowed load
    /// (`allowed`, in percent of its capacity).
    pub fn connection(
        device: DeviceName,
        conn: ConnectionId,
        request: impl fmt::Display,
        in_flight: usize,
        allowed: f64,
    ) -> Self {
        Self::new(device, conn, request, in_flight, Limit::Connection(allowed))
    }

    /// Refused because `in_flight` requests are under way on the device's
    /// connections together, its cap being `cap`.
    pub fn device_cap(
        device: DeviceName,
        conn: ConnectionId,
        request: impl fmt::Display,
        in_flight: usize,
        cap: usize,
    ) -> Self {
        Self::new(device, conn, request, in_flight, Limit::Device(cap))
    }

    /// Refused because the connection was not ready (its queue was full).
    pub fn not_ready(device: DeviceName, conn: ConnectionId, request: impl fmt::Display) -> Self {
        Self::new(device, conn, request, 0, Limit::NotReady)
    }

    fn new(
        device: DeviceName,
        conn: ConnectionId,
        request: impl fmt::Display,
        in_flight: usize,
        limit: Limit,
    ) -> Self {
        Self {
            device,
            conn,
            request: request.to_string(),
            in_flight,
            limit,
        }
    }

    /// The device.
    pub fn device(&self) -> &DeviceName {
        &self.device
    }

    /// The connection that refused.
    pub fn conn(&self) -> ConnectionId {
        self.conn
    }

    /// The request that was refused.
    pub fn request(&self) -> &str {
        &self.request
    }

    /// Requests in flight when it refused (on the connection, or on the device when
    /// [`is_device_cap`](Self::is_device_cap)); 0 when the connection was not ready.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The connection's allowed load in percent, when that was the limit.
    pub fn allowed_load(&self) -> Option<f64> {
        match self.limit {
            Limit::Connection(a) => Some(a),
            _ => None,
        }
    }

    /// Whether the device's in-flight cap (not this connection) was the limit:
    /// another connection of the same device will not help.
    pub fn is_device_cap(&self) -> bool {
        matches!(self.limit, Limit::Device(_))
    }

    /// Whether the connection was not ready (its queue was full).
    pub fn is_not_ready(&self) -> bool {
        matches!(self.limit, Limit::NotReady)
    }
}

impl fmt::Display for Overloaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (dev, req, conn, n) = (&self.device, &self.request, self.conn, self.in_flight);
        match self.limit {
            Limit::Connection(allowed) => write!(
                f,
                "{dev}: {req}: shed: connection {conn} overloaded: {n} requests in flight, allowed load {allowed:.0}%"
            ),
            Limit::Device(cap) => write!(
                f,
                "{dev}: {req}: shed: connection {conn} refused: {n} requests in flight on the device (cap {cap})"
            ),
            Limit::NotReady => write!(
                f,
                "{dev}: {req}: shed: connection {conn} not ready (its queue is full)"
            ),
        }
    }
}

impl std::error::Error for Overloaded {}
