//! Pool and thermal settings, with field defaults and validation.

use std::time::Duration;

use helo_transport::Backoff;

use crate::error::CoreError;

/// Settings of the warm pool, shared by every encoder of one [`WarmupManager`].
///
/// Build with struct update syntax over [`Default`], then [`PoolConfig::validate`]:
///
/// ```
/// # use std::time::Duration;
/// let config = conn_core::PoolConfig {
///     min_warm: 2,
///     keepalive_interval: Duration::from_secs(20),
///     ..Default::default()
/// };
/// config.validate()?;
/// # Ok::<(), conn_core::CoreError>(())
/// ```
///
/// [`WarmupManager`]: crate::WarmupManager
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    /// Validated connections kept per encoder, warm or handed out (a checkout that
    /// finds none warm has one more warmed). Default 3.
    pub min_warm: usize,
    /// Connections per encoder, warm, checked out and cooling together. Default 6.
    pub max_connections: usize,
    /// A warm connection above `min_warm` unused this long is closed. Default 5 min.
    pub idle_timeout: Duration,
    /// A connection is replaced after this long. Default 30 min.
    pub max_lifetime: Duration,
    /// Fraction (0 ≤ j < 1) by which each connection's lifetime is shortened at random,
    /// so a pool never expires all at once. Default 0.1.
    pub lifetime_jitter: f64,
    /// An idle warm connection is pinged this often, and replaced if dead. Default 30 s.
    pub keepalive_interval: Duration,
    /// Pause between two connects to one encoder, so refills never storm a small
    /// device. Zero disables pacing. Default 250 ms.
    pub refill_interval: Duration,
    /// Ceiling of the first retry delay after a failed warmup; it doubles with each
    /// failure in a row ([`Backoff`]). Default 1 s.
    pub backoff_base: Duration,
    /// Largest retry delay. Default 60 s.
    pub backoff_max: Duration,
    /// Jitter fraction (0 ≤ j ≤ 1) of each retry delay: 1 draws it anywhere below its
    /// ceiling (full jitter), 0 always waits the ceiling. Default 1.
    pub backoff_jitter: f64,
    /// Retry delay after the device refused the password, when the device has no
    /// login lockout of its own running ([`helo_transport::Device::login_locked_for`]:
    /// the pool then waits exactly for its end, as every other login source does).
    /// Default [`helo_transport::DEFAULT_LOGIN_LOCKOUT`], 10 min.
    pub auth_failed_backoff: Duration,
    /// Time for one warmup: connect, log in and validate. Default 10 s.
    pub warmup_timeout: Duration,
    /// Time for one keepalive ping. Default 5 s.
    pub ping_timeout: Duration,
    /// Requests in flight per encoder, over all its connections. Default 4.
    pub max_in_flight_per_encoder: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            min_warm: 3,
            max_connections: 6,
            idle_timeout: Duration::from_secs(300),
            max_lifetime: Duration::from_secs(1800),
            lifetime_jitter: 0.1,
            keepalive_interval: Duration::from_secs(30),
            refill_interval: Duration::from_millis(250),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            backoff_jitter: 1.0,
            auth_failed_backoff: helo_transport::DEFAULT_LOGIN_LOCKOUT,
            warmup_timeout: Duration::from_secs(10),
            ping_timeout: Duration::from_secs(5),
            max_in_flight_per_encoder: 4,
        }
    }
}

impl PoolConfig {
    /// These settings with `warmup_timeout` sized for one connect and the two
    /// requests a warm-up may make (a login, then a validation), each under its own
    /// timeout.
    pub fn with_warmup_for(mut self, connect: Duration, request: Duration) -> Self {
        self.warmup_timeout = connect.saturating_add(request.saturating_mul(2));
        self
    }

    /// Checks every value; the error names the first bad key.
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.max_connections == 0 {
            return Err(CoreError::invalid("max_connections", "must be at least 1"));
        }
        if self.min_warm > self.max_connections {
            return Err(CoreError::invalid(
                "min_warm",
                format!(
                    "{} is more than max_connections ({})",
                    self.min_warm, self.max_connections
                ),
            ));
        }
        nonzero("idle_timeout", self.idle_timeout)?;
        nonzero("max_lifetime", self.max_lifetime)?;
        fraction("lifetime_jitter", self.lifetime_jitter, false)?;
        nonzero("keepalive_interval", self.keepalive_interval)?;
        nonzero("backoff_base", self.backoff_base)?;
        if self.backoff_max < self.backoff_base {
            return Err(CoreError::invalid(
                "backoff_max",
                "must not be less than backoff_base",
            ));
        }
        fraction("backoff_jitter", self.backoff_jitter, true)?;
        nonzero("auth_failed_backoff", self.auth_failed_backoff)?;
        nonzero("warmup_timeout", self.warmup_timeout)?;
        nonzero("ping_timeout", self.ping_timeout)?;
        if self.max_in_flight_per_encoder == 0 {
            return Err(CoreError::invalid(
                "max_in_flight_per_encoder",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// The warmup retry delays these settings describe.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self.backoff_base, self.backoff_max).with_jitter(self.backoff_jitter)
    }

    /// A copy with out-of-range values pulled back into range, for constructors that
    /// cannot fail.
    pub(crate) fn normalized(&self) -> Self {
        let d = Self::default();
        let mut c = self.clone();
        c.max_connections = c.max_connections.max(1);
        c.min_warm = c.min_warm.min(c.max_connections);
        or_default(&mut c.idle_timeout, d.idle_timeout);
        or_default(&mut c.max_lifetime, d.max_lifetime);
        c.lifetime_jitter = clamp_fraction(c.lifetime_jitter, 0.0, 0.99);
        or_default(&mut c.keepalive_interval, d.keepalive_interval);
        or_default(&mut c.backoff_base, d.backoff_base);
        c.backoff_max = c.backoff_max.max(c.backoff_base);
        c.backoff_jitter = clamp_fraction(c.backoff_jitter, 0.0, 1.0);
        or_default(&mut c.auth_failed_backoff, d.auth_failed_backoff);
        or_default(&mut c.warmup_timeout, d.warmup_timeout);
        or_default(&mut c.ping_timeout, d.ping_timeout);
        c.max_in_flight_per_encoder = c.max_in_flight_per_encoder.max(1);
        c
    }
}

/// Settings of the thermal model (connection heat and device heat).
///
/// Temperature (0–100) = 0.4 × request-rate factor (requests in the last
/// `cooling_period` against `burst_limit`) + 0.3 × error-rate % + 0.3 × load %
/// (in-flight against `connection_capacity`), capped at 100.
#[derive(Debug, Clone, PartialEq)]
pub struct ThermalConfig {
    /// A connection at or above this temperature needs cooling. Default 80.
    pub temperature_high: f64,
    /// A connection at or above this load % needs cooling. Default 75.
    pub load_high: f64,
    /// A connection at or above this error rate % needs cooling. Default 50.
    pub error_rate_high: f64,
    /// Requests per `cooling_period` that count as a full request-rate factor. Default 100.
    pub burst_limit: u32,
    /// Length of one cooling, and of the sliding statistics window. Default 60 s.
    pub cooling_period: Duration,
    /// Equal steps in which a cooling connection's allowed load goes down. Default 5.
    pub gradual_cooldown: u32,
    /// Requests one connection may carry at once at 100 % allowed load. Default 4.
    pub connection_capacity: u32,
    /// Allowed load % that an encoder's last usable connection never goes below, and
    /// that error cuts never go below. Must allow at least one request. Default 25.
    pub min_allowed_load: f64,
    /// Allowed load % a fresh connection starts at (100 disables slow start). Default 50.
    pub ramp_start: f64,
    /// Time for the allowed load to climb from `min_allowed_load` to 100 % (additive
    /// increase); zero climbs at once. Default 30 s.
    pub ramp_up: Duration,
    /// Factor (0 < f < 1) applied to the allowed load on a timeout or connection error
    /// (multiplicative decrease). Default 0.5.
    pub aimd_decrease: f64,
    /// Device temperature (°C) above which the device counts as overheated. Default 70.
    pub device_temperature_limit: f64,
    /// The device is no longer overheated once it falls this far below the limit. Default 5.
    pub device_temperature_hysteresis: f64,
    /// Opt-in: streaming profile (0–9, `eParamID_StreamingProfileSel`) to switch an
    /// overheated device to. Default `None` (only report).
    pub overheat_profile: Option<u8>,
    /// How often the manager folds each connection's request outcomes into its
    /// window, applies AIMD cuts, and republishes its allowed load (which also climbs
    /// with time). Reads of the manager fold first and are never stale; this bounds
    /// how late the thermal layer sees a cut or a climb. Default 500 ms.
    pub update_interval: Duration,
}

impl Default for ThermalConfig {
    fn default() -> Self {
        Self {
            temperature_high: 80.0,
            load_high: 75.0,
            error_rate_high: 50.0,
            burst_limit: 100,
            cooling_period: Duration::from_secs(60),
            gradual_cooldown: 5,
            connection_capacity: 4,
            min_allowed_load: 25.0,
            ramp_start: 50.0,
            ramp_up: Duration::from_secs(30),
            aimd_decrease: 0.5,
            device_temperature_limit: 70.0,
            device_temperature_hysteresis: 5.0,
            overheat_profile: None,
            update_interval: Duration::from_millis(500),
        }
    }
}

impl ThermalConfig {
    /// Checks every value; the error names the first bad key.
    pub fn validate(&self) -> Result<(), CoreError> {
        percent("temperature_high", self.temperature_high)?;
        percent("load_high", self.load_high)?;
        percent("error_rate_high", self.error_rate_high)?;
        if self.burst_limit == 0 {
            return Err(CoreError::invalid("burst_limit", "must be at least 1"));
        }
        nonzero("cooling_period", self.cooling_period)?;
        if self.gradual_cooldown == 0 {
            return Err(CoreError::invalid("gradual_cooldown", "must be at least 1"));
        }
        if self.connection_capacity == 0 {
            return Err(CoreError::invalid(
                "connection_capacity",
                "must be at least 1",
            ));
        }
        percent("min_allowed_load", self.min_allowed_load)?;
        let one_request = 100.0 / f64::from(self.connection_capacity);
        if self.min_allowed_load + 1e-9 < one_request {
            return Err(CoreError::invalid(
                "min_allowed_load",
                format!(
                    "{}% allows no request on a connection of capacity {} (need at least {one_request}%)",
                    self.min_allowed_load, self.connection_capacity
                ),
            ));
        }
        percent("ramp_start", self.ramp_start)?;
        if self.ramp_start < self.min_allowed_load {
            return Err(CoreError::invalid(
                "ramp_start",
                "must not be less than min_allowed_load",
            ));
        }
        if !(self.aimd_decrease > 0.0 && self.aimd_decrease < 1.0) {
            return Err(CoreError::invalid(
                "aimd_decrease",
                "must be between 0 and 1 (exclusive)",
            ));
        }
        if !self.device_temperature_limit.is_finite() {
            return Err(CoreError::invalid(
                "device_temperature_limit",
                "must be a finite number",
            ));
        }
        if !(self.device_temperature_hysteresis.is_finite()
            && self.device_temperature_hysteresis >= 0.0)
        {
            return Err(CoreError::invalid(
                "device_temperature_hysteresis",
                "must be a finite number, 0 or more",
            ));
        }
        if let Some(p) = self.overheat_profile {
            if p > 9 {
                return Err(CoreError::invalid(
                    "overheat_profile",
                    format!("profile {p} is not one of 0-9"),
                ));
            }
        }
        nonzero("update_interval", self.update_interval)?;
        Ok(())
    }

    /// A copy with out-of-range values pulled back into range, for constructors that
    /// cannot fail.
    pub(crate) fn normalized(&self) -> Self {
        let d = Self::default();
        let mut c = self.clone();
        let pct = |v: f64, dv: f64| {
            if v.is_finite() && v > 0.0 {
                v.min(100.0)
            } else {
                dv
            }
        };
        c.temperature_high = pct(c.temperature_high, d.temperature_high);
        c.load_high = pct(c.load_high, d.load_high);
        c.error_rate_high = pct(c.error_rate_high, d.error_rate_high);
        c.burst_limit = c.burst_limit.max(1);
        or_default(&mut c.cooling_period, d.cooling_period);
        c.gradual_cooldown = c.gradual_cooldown.max(1);
        c.connection_capacity = c.connection_capacity.max(1);
        let one_request = 100.0 / f64::from(c.connection_capacity);
        c.min_allowed_load = pct(c.min_allowed_load, d.min_allowed_load).max(one_request);
        c.ramp_start = pct(c.ramp_start, d.ramp_start).max(c.min_allowed_load);
        if !(c.aimd_decrease > 0.0 && c.aimd_decrease < 1.0) {
            c.aimd_decrease = d.aimd_decrease;
        }
        if !c.device_temperature_limit.is_finite() {
            c.device_temperature_limit = d.device_temperature_limit;
        }
        if !(c.device_temperature_hysteresis.is_finite() && c.device_temperature_hysteresis >= 0.0)
        {
            c.device_temperature_hysteresis = d.device_temperature_hysteresis;
        }
        c.overheat_profile = c.overheat_profile.filter(|p| *p <= 9);
        or_default(&mut c.update_interval, d.update_interval);
        c
    }
}

fn nonzero(key: &'static str, d: Duration) -> Result<(), CoreError> {
    if d.is_zero() {
        return Err(CoreError::invalid(key, "must be greater than zero"));
    }
    Ok(())
}

fn fraction(key: &'static str, v: f64, one_allowed: bool) -> Result<(), CoreError> {
    let ok = v.is_finite() && v >= 0.0 && (v < 1.0 || (one_allowed && v <= 1.0));
    if !ok {
        let range = if one_allowed {
            "0 to 1"
        } else {
            "0 to below 1"
        };
        return Err(CoreError::invalid(key, format!("{v} is not in {range}")));
    }
    Ok(())
}

fn percent(key: &'static str, v: f64) -> Result<(), CoreError> {
    if !(v.is_finite() && v > 0.0 && v <= 100.0) {
        return Err(CoreError::invalid(
            key,
            format!("{v} is not a percentage above 0 and at most 100"),
        ));
    }
    Ok(())
}

fn or_default(d: &mut Duration, default: Duration) {
    if d.is_zero() {
        *d = default;
    }
}

fn clamp_fraction(v: f64, lo: f64, hi: f64) -> f64 {
    if v.is_finite() {
        v.clamp(lo, hi)
    } else {
        lo
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_pool(change: impl FnOnce(&mut PoolConfig), bad_key: Option<&str>) {
        let mut c = PoolConfig::default();
        change(&mut c);
        assert_eq!(c.validate().err().and_then(|e| e.config_key()), bad_key);
        assert!(c.normalized().validate().is_ok(), "normalized {c:?}");
    }

    fn check_thermal(change: impl FnOnce(&mut ThermalConfig), bad_key: Option<&str>) {
        let mut c = ThermalConfig::default();
        change(&mut c);
        assert_eq!(c.validate().err().and_then(|e| e.config_key()), bad_key);
        assert!(c.normalized().validate().is_ok(), "normalized {c:?}");
    }

    #[test]
    fn pool_defaults_follow_the_issue() {
        let c = PoolConfig::default();
        assert_eq!(c.min_warm, 3);
        assert_eq!(c.max_in_flight_per_encoder, 4);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn thermal_defaults_follow_the_issue() {
        let c = ThermalConfig::default();
        assert_eq!(c.temperature_high, 80.0);
        assert_eq!(c.load_high, 75.0);
        assert_eq!(c.burst_limit, 100);
        assert_eq!(c.cooling_period, Duration::from_secs(60));
        assert_eq!(c.gradual_cooldown, 5);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn pool_validation_names_the_key() {
        check_pool(|_| {}, None);
        check_pool(|c| c.max_connections = 0, Some("max_connections"));
        check_pool(|c| c.min_warm = 7, Some("min_warm"));
        check_pool(|c| c.idle_timeout = Duration::ZERO, Some("idle_timeout"));
        check_pool(|c| c.lifetime_jitter = 1.0, Some("lifetime_jitter"));
        check_pool(|c| c.lifetime_jitter = f64::NAN, Some("lifetime_jitter"));
        check_pool(
            |c| c.backoff_max = Duration::from_millis(1),
            Some("backoff_max"),
        );
        check_pool(|c| c.backoff_jitter = 1.5, Some("backoff_jitter"));
        check_pool(
            |c| c.max_in_flight_per_encoder = 0,
            Some("max_in_flight_per_encoder"),
        );
        check_pool(|c| c.refill_interval = Duration::ZERO, None);
        check_pool(|c| c.min_warm = 0, None);
    }

    #[test]
    fn thermal_validation_names_the_key() {
        check_thermal(|_| {}, None);
        check_thermal(|c| c.temperature_high = 120.0, Some("temperature_high"));
        check_thermal(|c| c.load_high = 0.0, Some("load_high"));
        check_thermal(|c| c.burst_limit = 0, Some("burst_limit"));
        check_thermal(
            |c| c.cooling_period = Duration::ZERO,
            Some("cooling_period"),
        );
        check_thermal(|c| c.gradual_cooldown = 0, Some("gradual_cooldown"));
        check_thermal(|c| c.connection_capacity = 0, Some("connection_capacity"));
        check_thermal(|c| c.min_allowed_load = 10.0, Some("min_allowed_load"));
        check_thermal(|c| c.ramp_start = 20.0, Some("ramp_start"));
        check_thermal(|c| c.aimd_decrease = 1.0, Some("aimd_decrease"));
        check_thermal(|c| c.overheat_profile = Some(10), Some("overheat_profile"));
        check_thermal(|c| c.overheat_profile = Some(2), None);
        check_thermal(|c| c.ramp_up = Duration::ZERO, None);
        check_thermal(
            |c| c.update_interval = Duration::ZERO,
            Some("update_interval"),
        );
    }
}
