//! The seam between the pool and the transport: what a pooled connection must do,
//! and who opens one.

use futures_util::future::BoxFuture;
use helo_transport::{names, ConnectionId, Device, HeloConnection, HeloError, HeloRequest};

/// A connection the pool can hold: cheap to clone (a handle), closable, and able to
/// prove it is alive with one cheap request.
///
/// Implemented for [`HeloConnection`]; tests use `testing::FakeConn` (feature
/// `test-util`).
pub trait PoolConn: Clone + Send + Sync + 'static {
    /// The connection's process-wide id.
    fn id(&self) -> ConnectionId;
    /// Whether the connection can no longer be used. Must not do I/O.
    fn is_closed(&self) -> bool;
    /// One cheap request that proves the device answers on this connection.
    fn ping(&self) -> BoxFuture<'static, Result<(), HeloError>>;
    /// Closes the connection; later requests fail.
    fn close(&self);
}

/// Opens connections to a device: TCP connect, login when a password is set.
#[cfg_attr(
    any(test, feature = "test-util"),
    mockall::automock(type Conn = crate::testing::FakeConn;)
)]
pub trait Connector: Send + Sync + 'static {
    /// The connection type.
    type Conn: PoolConn;
    /// Opens one connection.
    fn connect(&self, device: &Device) -> BoxFuture<'static, Result<Self::Conn, HeloError>>;
}

/// Opens [`HeloConnection`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeloConnector;

impl Connector for HeloConnector {
    type Conn = HeloConnection;

    fn connect(&self, device: &Device) -> BoxFuture<'static, Result<HeloConnection, HeloError>> {
        let device = device.clone();
        Box::pin(async move { HeloConnection::connect(&device).await })
    }
}

impl PoolConn for HeloConnection {
    fn id(&self) -> ConnectionId {
        HeloConnection::id(self)
    }

    fn is_closed(&self) -> bool {
        HeloConnection::is_closed(self)
    }

    /// Reads `eParamID_SysName`. A device that does not know the parameter still
    /// answered, which is all a ping needs to prove.
    fn ping(&self) -> BoxFuture<'static, Result<(), HeloError>> {
        let conn = self.clone();
        Box::pin(async move {
            match conn.request(HeloRequest::get(names::SYS_NAME)).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_unsupported() => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    fn close(&self) {
        HeloConnection::close(self);
    }
}
