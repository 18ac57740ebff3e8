//! How the checker reads connection temperatures: a trait, so checks can be tested
//! with a stub and never reach into the thermal manager's internals.

use std::sync::Arc;

use helo_transport::ConnectionId;

use crate::status::EncoderId;

/// Connection temperatures, 0–100, as the thermal manager keeps them.
///
/// `conn_core::ConnectionThermalManager` is the implementation used in production
/// (implemented at the end of this file); tests use `MockThermalReadings` (feature `test-util`)
/// or a small stub.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
pub trait ThermalReadings: Send + Sync + 'static {
    /// The temperature of one connection, 0–100; `None` when the manager does not
    /// know the connection (then `thermal_status` is unknown, not failed).
    fn temperature(&self, encoder: &EncoderId, conn: ConnectionId) -> Option<f64>;

    /// The temperature from which a connection counts as hot (default 80).
    fn temperature_high(&self) -> f64 {
        80.0
    }
}

impl<T: ThermalReadings + ?Sized> ThermalReadings for Arc<T> {
    fn temperature(&self, encoder: &EncoderId, conn: ConnectionId) -> Option<f64> {
        (**self).temperature(encoder, conn)
    }

    fn temperature_high(&self) -> f64 {
        (**self).temperature_high()
    }
}

impl<T: ThermalReadings + ?Sized> ThermalReadings for Box<T> {
    fn temperature(&self, encoder: &EncoderId, conn: ConnectionId) -> Option<f64> {
        (**self).temperature(encoder, conn)
    }

    fn temperature_high(&self) -> f64 {
        (**self).temperature_high()
    }
}

/// No thermal manager: `thermal_status` is always unknown and leaves the score.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoThermalReadings;

impl ThermalReadings for NoThermalReadings {
    fn temperature(&self, _: &EncoderId, _: ConnectionId) -> Option<f64> {
        None
    }
}

// === impl ThermalReadings for conn_core::ConnectionThermalManager ===
//
/// The production reading: the thermal manager of `conn-core`.
impl ThermalReadings for conn_core::ConnectionThermalManager {
    fn temperature(&self, encoder: &EncoderId, conn: ConnectionId) -> Option<f64> {
        conn_core::ConnectionThermalManager::temperature(self, encoder, conn)
    }

    fn temperature_high(&self) -> f64 {
        self.config().temperature_high
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use conn_core::{
        ConnectionThermalManager, MockPoolControl, NoopObserver, PoolConfig, ThermalConfig,
    };

    use super::*;

    #[tokio::test]
    async fn the_thermal_manager_is_read_with_its_own_threshold() {
        let mut pool = MockPoolControl::new();
        pool.expect_owns().returning(|_, _| true);
        let manager = ConnectionThermalManager::with_pool(
            Arc::new(pool),
            &PoolConfig::default(),
            ThermalConfig {
                temperature_high: 65.0,
                ..ThermalConfig::default()
            },
            Arc::new(NoopObserver),
        );
        let readings: &dyn ThermalReadings = &manager;
        assert_eq!(readings.temperature_high(), 65.0);
        let enc = EncoderId::from("enc-1");
        let conn = ConnectionId::from_raw(5);
        let _layer = manager.layer(&enc, conn);
        manager.check_temperature(&enc, conn);
        assert_eq!(
            readings.temperature(&enc, conn),
            Some(0.0),
            "an idle connection is cold"
        );
        assert_eq!(
            readings.temperature(&enc, conn),
            manager.temperature(&enc, conn)
        );
    }
}
