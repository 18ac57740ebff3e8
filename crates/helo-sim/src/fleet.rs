//! Many devices in one process, on consecutive ports.

use std::net::SocketAddr;

use crate::{SimConfig, SimDevice, SimError};

/// `n` simulated encoders: on ports `PORT`, `PORT+1`, … of the base address, or each on
/// an ephemeral port when the base port is 0.
#[derive(Debug)]
pub struct SimFleet {
    devices: Vec<SimDevice>,
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
        Ok(SimFleet { devices })
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

    /// Stops every device and waits for them.
    pub async fn shutdown(self) {
        stop_all(self.devices).await;
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
