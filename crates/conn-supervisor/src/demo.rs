//! The embedded default: a simulated fleet with faults, on loopback, supervised with
//! short intervals so that something visibly happens within a minute.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use helo_sim::{SimConfig, SimDevice};
use helo_transport::{names, Device, DeviceConfig, HeloClientExt, HeloConnection, Password};
use tokio::task::JoinHandle;

use crate::config::{EncoderConfig, FleetConfig, Tunables};

/// The demo password of the encoder that needs one (it is a simulator).
const DEMO_PASSWORD: &str = "demo-password";

/// What each simulated encoder of the demo does, by position (repeating).
const ROLES: [&str; 8] = [
    "streaming",
    "overheating",
    "stream-fails",
    "password",
    "reboots",
    "no-temperature",
    "no-events",
    "recording",
];

/// A running demo fleet: the simulators and the fault schedule.
#[derive(Debug)]
pub struct Demo {
    /// The simulated encoders (shared with the fault schedule).
    pub sims: Arc<Vec<SimDevice>>,
    /// The supervisor configuration for them.
    pub config: FleetConfig,
    chaos: JoinHandle<()>,
}

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
#[error("demo: {0}")]
pub struct DemoError(String);

/// Intervals short enough to watch.
pub fn demo_tunables() -> Tunables {
    Tunables {
        check_interval: Duration::from_secs(5),
        unhealthy_interval: Duration::from_secs(2),
        request_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(2),
        health_deadline: Duration::from_secs(3),
        cooling_period: Duration::from_secs(15),
        recovery_backoff: Duration::from_secs(1),
        device_temperature_limit: 70.0,
        overheat_profile: Some(1),
        keepalive_interval: Duration::from_secs(10),
        ..Tunables::default()
    }
}

impl Demo {
    /// Starts `n` simulated encoders on ephemeral loopback ports, puts them in their
    /// roles, and schedules their faults.
    pub async fn start(n: usize, admin_listen: SocketAddr) -> Result<Self, DemoError> {
        let n = n.clamp(1, 10_000);
        let mut sims = Vec::with_capacity(n);
        let mut encoders = Vec::with_capacity(n);
        let tunables = demo_tunables();
        for i in 0..n {
            let role = ROLES[i % ROLES.len()];
            let mut sim_config = SimConfig {
                sys_name: format!("demo-{i}"),
                ..SimConfig::default()
            };
            match role {
                "password" => sim_config = sim_config.with_password(DEMO_PASSWORD),
                "reboots" => sim_config.reboot_downtime = Duration::from_secs(4),
                "no-temperature" => {
                    sim_config
                        .unsupported_params
                        .insert(names::TEMPERATURE.to_string());
                }
                "no-events" => sim_config.events_supported = false,
                _ => {}
            }
            let sim = SimDevice::start(SocketAddr::from(([127, 0, 0, 1], 0)), sim_config)
                .await
                .map_err(|e| DemoError(format!("cannot start simulated encoder {i}: {e}")))?;
            let id = format!("demo-{i:02}-{role}");
            let password = (role == "password").then(|| Password::new(DEMO_PASSWORD));
            let device = DeviceConfig::from_url(id.as_str(), &sim.url())
                .and_then(|d| d.with_request_timeout(tunables.request_timeout))
                .map_err(|e| DemoError(e.to_string()))?
                .with_password(password);
            let streams = role != "recording";
            start_replicator(&device, streams).await?;
            if role == "overheating" {
                sim.overheat(82);
            }
            encoders.push(EncoderConfig {
                id,
                device,
                expect_streaming: streams,
                expect_recording: !streams,
                hold: false,
                tunables: tunables.clone(),
            });
            sims.push(sim);
        }
        let sims = Arc::new(sims);
        let chaos = tokio::spawn(chaos(sims.clone()));
        Ok(Self {
            sims,
            config: FleetConfig {
                admin_listen,
                admin: Default::default(),
                cluster: None,
                defaults: tunables,
                encoders,
                warnings: Vec::new(),
            },
            chaos,
        })
    }

    /// Stops the fault schedule and the simulators.
    pub async fn stop(self) {
        self.chaos.abort();
        let _ = self.chaos.await;
        // Dropping a simulator stops it too; shutting down waits for its connections.
        if let Ok(sims) = Arc::try_unwrap(self.sims) {
            for sim in sims {
                sim.shutdown().await;
            }
        }
    }
}

async fn start_replicator(device: &DeviceConfig, stream: bool) -> Result<(), DemoError> {
    let conn = HeloConnection::connect(&Device::new(device.clone()))
        .await
        .map_err(|e| DemoError(e.to_string()))?;
    let result = if stream {
        conn.start_streaming().await
    } else {
        conn.start_recording().await
    };
    result.map_err(|e| DemoError(e.to_string()))
}

/// The demo's fault schedule: the stream of every "stream-fails" encoder fails every
/// 25 s; every "reboots" encoder reboots every 40 s.
async fn chaos(sims: Arc<Vec<SimDevice>>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        n += 1;
        for (i, sim) in sims.iter().enumerate() {
            match ROLES[i % ROLES.len()] {
                "stream-fails" if n % 5 == 0 => {
                    sim.fail_stream_now();
                }
                "reboots" if n % 8 == 0 => sim.reboot(),
                _ => {}
            }
        }
    }
}
