use std::fmt;

use helo_transport::ConnectionId;

use crate::EncoderId;

/// A request refused at once because the connection is at its allowed load, or the
/// encoder at its in-flight cap. Take another connection (or wait) and try again.
///
/// Tested with `err.is::<Overloaded>()` on the boxed error.
#[derive(Debug, Clone, PartialEq)]
pub struct Overloaded {
    encoder: EncoderId,
    conn: ConnectionId,
    in_flight: usize,
    limit: Limit,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Limit {
    /// The connection's allowed load, in percent.
    Connection(f64),
    /// The encoder's in-flight cap.
    Encoder(usize),
    /// The inner service was not ready.
    NotReady,
}

impl Overloaded {
    pub(crate) fn connection(
        encoder: EncoderId,
        conn: ConnectionId,
        in_flight: usize,
        allowed: f64,
    ) -> Self {
        Self {
            encoder,
            conn,
            in_flight,
            limit: Limit::Connection(allowed),
        }
    }

    pub(crate) fn encoder_cap(
        encoder: EncoderId,
        conn: ConnectionId,
        in_flight: usize,
        cap: usize,
    ) -> Self {
        Self {
            encoder,
            conn,
            in_flight,
            limit: Limit::Encoder(cap),
        }
    }

    pub(crate) fn not_ready(encoder: EncoderId, conn: ConnectionId) -> Self {
        Self {
            encoder,
            conn,
            in_flight: 0,
            limit: Limit::NotReady,
        }
    }

    /// The encoder.
    pub fn encoder(&self) -> &EncoderId {
        &self.encoder
    }

    /// The connection that refused.
    pub fn conn(&self) -> ConnectionId {
        self.conn
    }

    /// Requests in flight when it refused (on the connection, or on the encoder when
    /// [`is_encoder_cap`](Self::is_encoder_cap)).
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

    /// Whether the encoder's in-flight cap (not this connection) was the limit:
    /// another connection of the same encoder will not help.
    pub fn is_encoder_cap(&self) -> bool {
        matches!(self.limit, Limit::Encoder(_))
    }
}

impl fmt::Display for Overloaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (enc, conn, n) = (&self.encoder, self.conn, self.in_flight);
        match self.limit {
            Limit::Connection(allowed) => write!(
                f,
                "{enc}: connection {conn} overloaded: {n} requests in flight, allowed load {allowed:.0}%"
            ),
            Limit::Encoder(cap) => write!(
                f,
                "{enc}: connection {conn} refused: {n} requests in flight on the encoder (cap {cap})"
            ),
            Limit::NotReady => write!(f, "{enc}: connection {conn} overloaded: not ready"),
        }
    }
}

impl std::error::Error for Overloaded {}
