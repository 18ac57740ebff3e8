//! The embedded default: a simulated fleet with faults, on loopback, supervised with
//! short intervals so that every supervision path shows within its first minute: a
//! failed stream restarted (at 20 s, then every 25 s), an idle stream started again
//! after a reboot (at 15 s, then every 40 s), an overheating encoder on the lighter
//! profile (at once), a held encoder left alone (always).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use helo_sim::{SimConfig, SimDevice};
use helo_transport::{names, Device, DeviceConfig, HeloClientExt, HeloConnection, Password};
use tokio::task::JoinHandle;

use crate::config::{EncoderConfig, FleetConfig, Tunables};

/// The demo password of the encoder that needs one (it is a simulator).
const DEMO_PASSWORD: &str = "demo-password";

/// What each simulated encoder of the demo does, by position (repeating).
pub const ROLES: [&str; 9] = [
    "streaming",
    "overheating",
    "stream-fails",
    "password",
    "reboots",
    "no-temperature",
    "no-events",
    "recording",
    "held",
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

/// Intervals short enough to watch, divided by `speed` (1.0 for people; tests run the
/// same demo faster).
pub fn demo_tunables(speed: f64) -> Tunables {
    let at = |secs: f64| Duration::from_secs_f64(secs / speed);
    Tunables {
        check_interval: at(5.0),
        unhealthy_interval: at(2.0),
        request_timeout: at(2.0),
        connect_timeout: at(2.0),
        health_deadline: at(3.0),
        cooling_period: at(15.0),
        recovery_backoff: at(1.0),
        desired_state_grace: at(5.0),
        start_timeout: at(5.0),
        recovery_retry_after: at(60.0),
        device_temperature_limit: 70.0,
        overheat_profile: Some(1),
        keepalive_interval: at(10.0),
        ..Tunables::default()
    }
}

impl Demo {
    /// Starts `n` simulated encoders on ephemeral loopback ports, puts them in their
    /// roles, and schedules their faults.
    pub async fn start(n: usize, admin_listen: SocketAddr) -> Result<Self, DemoError> {
        Self::start_at_speed(n, admin_listen, 1.0).await
    }

    /// [`Demo::start`] with every interval and fault time divided by `speed`
    /// (clamped to 1–20), so a test sees the first minute in a few seconds.
    pub async fn start_at_speed(
        n: usize,
        admin_listen: SocketAddr,
        speed: f64,
    ) -> Result<Self, DemoError> {
        let speed = if speed.is_finite() {
            speed.clamp(1.0, 20.0)
        } else {
            1.0
        };
        let n = n.clamp(1, 10_000);
        let mut sims = Vec::with_capacity(n);
        let mut encoders = Vec::with_capacity(n);
        let tunables = demo_tunables(speed);
        let shared = Arc::new(tunables.clone());
        for i in 0..n {
            let role = ROLES[i % ROLES.len()];
            let mut sim_config = SimConfig {
                sys_name: format!("demo-{i}"),
                ..SimConfig::default()
            };
            match role {
                "password" => sim_config = sim_config.with_password(DEMO_PASSWORD),
                "reboots" => sim_config.reboot_downtime = Duration::from_secs_f64(4.0 / speed),
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
            // The held encoder is left idle: under maintenance, nobody starts it.
            if role != "held" {
                start_replicator(&device, streams).await?;
            }
            if role == "overheating" {
                sim.overheat(82);
            }
            encoders.push(EncoderConfig {
                id,
                device,
                expect_streaming: streams,
                expect_recording: !streams,
                hold: role == "held",
                tunables: Arc::clone(&shared),
            });
            sims.push(sim);
        }
        let sims = Arc::new(sims);
        let chaos = tokio::spawn(chaos(sims.clone(), speed));
        Ok(Self {
            sims,
            config: FleetConfig::new(admin_listen, tunables, encoders),
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

/// The demo's fault schedule (ticks every 5 s, the first at once): the stream of every
/// "stream-fails" encoder fails at 20 s, then every 25 s; every "reboots" encoder
/// reboots at 15 s, then every 40 s, and comes back idle.
async fn chaos(sims: Arc<Vec<SimDevice>>, speed: f64) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(5.0 / speed));
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        n += 1;
        for (i, sim) in sims.iter().enumerate() {
            match ROLES[i % ROLES.len()] {
                "stream-fails" if n % 5 == 0 => {
                    sim.fail_stream_now();
                }
                "reboots" if n % 8 == 4 => sim.reboot(),
                _ => {}
            }
        }
    }
}
