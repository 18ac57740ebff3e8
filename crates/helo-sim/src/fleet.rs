//! Many devices in one process, on consecutive ports.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::{fleet_control, RequestCounts, SimConfig, SimDevice, SimError};

/// `n` simulated encoders: on ports `PORT`, `PORT+1`, … of the base address, or each on
/// an ephemeral port when the base port is 0.
#[derive(Debug)]
pub struct SimFleet {
    devices: Vec<SimDevice>,
    control: Option<JoinHandle<()>>,
}

impl SimFleet {
    /// Starts `n` devices; `config` gets each device's index (0-based). On a failure the
    /// devices already started are stopped again.
    pub async fn start(
        base: SocketAddr,
        n: usize,
        mut config: impl FnMut(usize) -> SimConfig,
    ) -> Result<SimFleet, SimError> {
        let mut devices = Vec::with_capacity(n);
        for i in 0..n {
            let addr = match address(base, i) {
                Ok(a) => a,
                Err(e) => {
                    stop_all(devices).await;
                    return Err(e);
                }
            };
            match SimDevice::start(addr, config(i)).await {
                Ok(d) => devices.push(d),
                Err(e) => {
                    stop_all(devices).await;
                    return Err(e);
                }
            }
        }
        Ok(SimFleet {
            devices,
            control: None,
        })
    }

    /// Serves the fleet control endpoint (`GET /sim/fleet`, `POST
    /// /sim/fleet/devices/{k}/faults`) on `addr` until the fleet stops; answers the
    /// bound address. A second call replaces the first endpoint.
    pub async fn serve_control(&mut self, addr: SocketAddr) -> Result<SocketAddr, SimError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| SimError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| SimError::Bind { addr, source })?;
        let devices: Arc<[_]> = self.devices.iter().map(|d| Arc::clone(d.inner())).collect();
        if let Some(old) = self
            .control
            .replace(tokio::spawn(fleet_control::serve(listener, devices)))
        {
            old.abort();
        }
        Ok(local)
    }

    /// Requests received so far, summed over every device.
    pub fn request_counts(&self) -> RequestCounts {
        self.devices.iter().map(SimDevice::request_counts).sum()
    }

    /// The devices, in port order.
    pub fn devices(&self) -> &[SimDevice] {
        &self.devices
    }

    /// The number of devices.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// True when the fleet has no device.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// Stops every device (and the control endpoint) and waits for them.
    pub async fn shutdown(mut self) {
        if let Some(control) = self.control.take() {
            control.abort();
            // Only a finished task has dropped its listener: callers may check the port.
            let _ = control.await;
        }
        stop_all(std::mem::take(&mut self.devices)).await;
    }
}

impl Drop for SimFleet {
    fn drop(&mut self) {
        if let Some(control) = self.control.take() {
            control.abort();
        }
    }
}

fn address(base: SocketAddr, i: usize) -> Result<SocketAddr, SimError> {
    if base.port() == 0 {
        return Ok(base);
    }
    let port = usize::from(base.port())
        .checked_add(i)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| {
            SimError::InvalidConfig(format!("device {} would need a port above 65535", i + 1))
        })?;
    Ok(SocketAddr::new(base.ip(), port))
}

async fn stop_all(devices: Vec<SimDevice>) {
    for d in devices {
        d.shutdown().await;
    }
}
