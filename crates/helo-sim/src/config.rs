//! Device configuration: identity, password, timing and model quirks.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use crate::{Faults, SimError};

/// How one simulated encoder behaves. Build it with struct-update syntax from
/// [`SimConfig::default`] (realistic timings) or [`SimConfig::fast`] (short timings for
/// tests).
#[derive(Clone)]
pub struct SimConfig {
    /// Login password; `None` means `eParamID_Authentication` is 0 and no login is needed.
    pub password: Option<String>,
    /// Initial `eParamID_SysName`.
    pub sys_name: String,
    /// Time a replicator command (record/stream start or stop) takes to show in the
    /// state; real devices take "about a second".
    pub transition_delay: Duration,
    /// Time a preset recall stays at "Recalling..." before its result.
    pub recall_delay: Duration,
    /// Lifetime of a login session, counted from the login (not sliding).
    pub session_ttl: Duration,
    /// How long `wait_for_config_events` is held when nothing changes.
    pub event_hold: Duration,
    /// An event connection id unused for this long expires.
    pub event_expiry: Duration,
    /// How long the device stays unavailable after `eParamID_Reboot` = 1.
    pub reboot_downtime: Duration,
    /// During a reboot answer `503` + `Retry-After` instead of refusing connections.
    pub reboot_answers_503: bool,
    /// Delay before the device restarts a failed stream itself when
    /// `eParamID_AutoRecoverStreaming` is 1.
    pub auto_recover_delay: Duration,
    /// Initial `eParamID_AutoRecoverStreaming`.
    pub auto_recover_streaming: bool,
    /// Temperature model.
    pub thermal: ThermalConfig,
    /// Initial `eParamID_CurrentMediaAvailable`, percent (0–100).
    pub initial_media_available: u8,
    /// Percent of the medium used per second of recording.
    pub media_drain_per_sec: f64,
    /// Chance (0–1) that a running stream fails in each [`SimConfig::stream_fail_tick`].
    pub stream_fail_chance: f64,
    /// The tick the failure chance applies to.
    pub stream_fail_tick: Duration,
    /// Every stream fails this long after it started (a deterministic schedule).
    pub stream_fail_after: Option<Duration>,
    /// Preset numbers (1–20) whose recall answers "Preset Empty".
    pub empty_presets: BTreeSet<u8>,
    /// Parameter names this model lacks: they answer "not found" everywhere.
    pub unsupported_params: BTreeSet<String>,
    /// When false, `connect` and `wait_for_config_events` answer `400` so clients fall
    /// back to polling.
    pub events_supported: bool,
    /// Seed for the device's random numbers (stream failures, session tokens); `None`
    /// seeds from entropy.
    pub rng_seed: Option<u64>,
    /// Faults active from the start.
    pub faults: Faults,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            password: None,
            sys_name: "HELO".to_owned(),
            transition_delay: Duration::from_millis(700),
            recall_delay: Duration::from_millis(500),
            session_ttl: Duration::from_secs(600),
            event_hold: Duration::from_secs(50),
            event_expiry: Duration::from_secs(60),
            reboot_downtime: Duration::from_secs(5),
            reboot_answers_503: false,
            auto_recover_delay: Duration::from_secs(2),
            auto_recover_streaming: false,
            thermal: ThermalConfig::default(),
            initial_media_available: 100,
            media_drain_per_sec: 0.01,
            stream_fail_chance: 0.0,
            stream_fail_tick: Duration::from_secs(1),
            stream_fail_after: None,
            empty_presets: BTreeSet::new(),
            unsupported_params: BTreeSet::new(),
            events_supported: true,
            rng_seed: None,
            faults: Faults::default(),
        }
    }
}

impl SimConfig {
    /// Short timings for tests: 20 ms transitions and recalls, 300 ms reboot, 100 ms
    /// auto-recovery. Everything else as in [`SimConfig::default`].
    pub fn fast() -> Self {
        SimConfig {
            transition_delay: Duration::from_millis(20),
            recall_delay: Duration::from_millis(20),
            reboot_downtime: Duration::from_millis(300),
            auto_recover_delay: Duration::from_millis(100),
            ..SimConfig::default()
        }
    }

    /// Sets the login password.
    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Checks the numbers; [`crate::SimDevice::start`] calls this.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |what: &str| Err(SimError::InvalidConfig(what.to_owned()));
        if !(0.0..=1.0).contains(&self.stream_fail_chance) {
            return bad("stream_fail_chance must be within 0..=1");
        }
        if self.stream_fail_chance > 0.0 && self.stream_fail_tick.is_zero() {
            return bad("stream_fail_tick must be positive when stream_fail_chance is set");
        }
        if !(self.media_drain_per_sec.is_finite() && self.media_drain_per_sec >= 0.0) {
            return bad("media_drain_per_sec must be a finite number >= 0");
        }
        if self.initial_media_available > 100 {
            return bad("initial_media_available must be 0..=100");
        }
        self.thermal.validate()?;
        self.faults.validate()
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("sys_name", &self.sys_name)
            .field("transition_delay", &self.transition_delay)
            .field("recall_delay", &self.recall_delay)
            .field("session_ttl", &self.session_ttl)
            .field("event_hold", &self.event_hold)
            .field("event_expiry", &self.event_expiry)
            .field("reboot_downtime", &self.reboot_downtime)
            .field("reboot_answers_503", &self.reboot_answers_503)
            .field("auto_recover_delay", &self.auto_recover_delay)
            .field("auto_recover_streaming", &self.auto_recover_streaming)
            .field("thermal", &self.thermal)
            .field("initial_media_available", &self.initial_media_available)
            .field("media_drain_per_sec", &self.media_drain_per_sec)
            .field("stream_fail_chance", &self.stream_fail_chance)
            .field("stream_fail_tick", &self.stream_fail_tick)
            .field("stream_fail_after", &self.stream_fail_after)
            .field("empty_presets", &self.empty_presets)
            .field("unsupported_params", &self.unsupported_params)
            .field("events_supported", &self.events_supported)
            .field("rng_seed", &self.rng_seed)
            .field("faults", &self.faults)
            .finish()
    }
}

/// Temperature model: while streaming or recording the device heats toward
/// `active_max_c`; idle it cools toward `baseline_c`. Both are linear, so the value is
/// computed from the clock when read instead of ticking.
#[derive(Debug, Clone, PartialEq)]
pub struct ThermalConfig {
    /// Idle temperature, °C.
    pub baseline_c: f64,
    /// Temperature reached after streaming or recording for a while, °C.
    pub active_max_c: f64,
    /// °C gained per second while active.
    pub heat_per_sec: f64,
    /// °C lost per second while idle.
    pub cool_per_sec: f64,
}

impl Default for ThermalConfig {
    fn default() -> Self {
        ThermalConfig {
            baseline_c: 40.0,
            active_max_c: 65.0,
            heat_per_sec: 0.2,
            cool_per_sec: 0.1,
        }
    }
}

impl ThermalConfig {
    fn validate(&self) -> Result<(), SimError> {
        let all_finite = [
            self.baseline_c,
            self.active_max_c,
            self.heat_per_sec,
            self.cool_per_sec,
        ]
        .iter()
        .all(|v| v.is_finite());
        if !all_finite || self.heat_per_sec < 0.0 || self.cool_per_sec < 0.0 {
            return Err(SimError::InvalidConfig(
                "thermal values must be finite and rates >= 0".to_owned(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_password() {
        let cfg = SimConfig::default().with_password("hunter2");
        let text = format!("{cfg:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("<redacted>"));
    }

    #[test]
    fn validate_rejects_bad_numbers() {
        assert!(SimConfig::default().validate().is_ok());
        let bad = SimConfig {
            stream_fail_chance: 1.5,
            ..SimConfig::default()
        };
        assert!(matches!(bad.validate(), Err(SimError::InvalidConfig(_))));
        let bad = SimConfig {
            thermal: ThermalConfig {
                heat_per_sec: f64::NAN,
                ..ThermalConfig::default()
            },
            ..SimConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
