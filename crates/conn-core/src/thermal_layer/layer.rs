use std::{fmt, sync::Arc};

use tower::Layer;

use super::Thermal;
use crate::thermal::ConnThermal;

/// Wraps a connection's service in [`Thermal`]. Cheap to clone; every service it
/// builds shares the one connection's thermal state.
#[derive(Clone)]
pub struct ThermalLayer {
    state: Arc<ConnThermal>,
}

impl ThermalLayer {
    pub(crate) fn new(state: Arc<ConnThermal>) -> Self {
        Self { state }
    }
}

impl<S> Layer<S> for ThermalLayer {
    type Service = Thermal<S>;

    fn layer(&self, inner: S) -> Thermal<S> {
        Thermal::new(inner, self.state.clone())
    }
}

impl fmt::Debug for ThermalLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThermalLayer")
            .field("encoder", &self.state.encoder)
            .field("conn", &self.state.conn)
            .finish()
    }
}
