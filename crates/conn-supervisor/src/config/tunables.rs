//! Thresholds, intervals and pool sizes: fleet defaults with per-encoder overrides.

use std::time::Duration;

use super::{
    issues::Issues,
    parse_duration,
    raw::{At, RawDuration, Table},
};

/// Converts a raw TOML value into a setting, checking its range.
trait FromRaw<R>: Sized {
    fn from_raw(raw: &R) -> Result<Self, String>;
}

impl FromRaw<RawDuration> for Duration {
    fn from_raw(raw: &RawDuration) -> Result<Self, String> {
        match raw {
            RawDuration::Text(t) => parse_duration(t),
            RawDuration::Secs(s) => parse_duration(&s.to_string()),
        }
    }
}

impl FromRaw<f64> for f64 {
    fn from_raw(raw: &f64) -> Result<Self, String> {
        raw.is_finite()
            .then_some(*raw)
            .ok_or_else(|| "must be a finite number".into())
    }
}

impl FromRaw<bool> for bool {
    fn from_raw(raw: &bool) -> Result<Self, String> {
        Ok(*raw)
    }
}

impl FromRaw<i64> for usize {
    fn from_raw(raw: &i64) -> Result<Self, String> {
        usize::try_from(*raw).map_err(|_| format!("{raw} must not be negative"))
    }
}

impl FromRaw<i64> for u32 {
    fn from_raw(raw: &i64) -> Result<Self, String> {
        u32::try_from(*raw).map_err(|_| format!("{raw} is out of range"))
    }
}

impl FromRaw<i64> for Option<u8> {
    fn from_raw(raw: &i64) -> Result<Self, String> {
        u8::try_from(*raw)
            .map(Some)
            .map_err(|_| format!("{raw} is out of range"))
    }
}

fn in_range<T: PartialOrd + std::fmt::Debug>(v: &T, lo: T, hi: T) -> Result<(), String> {
    if *v < lo || *v > hi {
        Err(format!("{v:?} is out of range ({lo:?} to {hi:?})"))
    } else {
        Ok(())
    }
}

macro_rules! tunables {
    ($(
        $(#[doc = $doc:literal])*
        $field:ident : $ty:ty = $default:expr, from $raw:ty, check |$v:ident| $check:expr;
    )*) => {
        /// Settings that have a fleet default and may be overridden per encoder.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Tunables {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        impl Default for Tunables {
            fn default() -> Self {
                Self { $( $field: $default, )* }
            }
        }

        /// The same settings as written in `[defaults]` or `[encoder.overrides]`.
        #[derive(Default)]
        pub(crate) struct RawTunables {
            $( pub(super) $field: Option<At<$raw>>, )*
        }

        impl RawTunables {
            /// Every key these tables may hold.
            pub(super) const KEYS: &'static [&'static str] = &[$(stringify!($field)),*];

            /// Reads the settings of `table`; wrong types go to `issues`.
            pub(super) fn read(table: &Table<'_>, issues: &mut Issues) -> Self {
                Self { $( $field: table.get(stringify!($field), issues), )* }
            }
        }

        impl Tunables {
            /// These settings with `raw`'s values on top; mistakes go to `issues`.
            pub(super) fn overridden(
                &self,
                raw: Option<&RawTunables>,
                prefix: &str,
                issues: &mut Issues,
            ) -> Tunables {
                let mut out = self.clone();
                let Some(raw) = raw else { return out };
                $(
                    if let Some(at) = &raw.$field {
                        let checked = <$ty as FromRaw<$raw>>::from_raw(&at.value)
                            .and_then(|$v: $ty| { $check?; Ok($v) });
                        match checked {
                            Ok(v) => out.$field = v,
                            Err(message) => issues.error(
                                format!("{prefix}.{}", stringify!($field)),
                                at.line,
                                message,
                            ),
                        }
                    }
                )*
                out.check_pairs(raw, prefix, issues);
                out
            }
        }
    };
}

impl Tunables {
    /// Settings that must agree with each other. Checked only where this table sets
    /// one of the pair, so a mistake in `[defaults]` is reported once, not once per
    /// encoder.
    fn check_pairs(&self, raw: &RawTunables, prefix: &str, issues: &mut Issues) {
        // The line of whichever of the two keys is written here (the first if both).
        fn line_of<A, B>(a: &Option<At<A>>, b: &Option<At<B>>) -> Option<Option<usize>> {
            match (a, b) {
                (Some(a), _) => Some(a.line),
                (None, Some(b)) => Some(b.line),
                (None, None) => None,
            }
        }
        let mut pair = |key: &str, line: Option<Option<usize>>, bad: bool, message: String| {
            if let (Some(line), true) = (line, bad) {
                issues.error(format!("{prefix}.{key}"), line, message);
            }
        };
        pair(
            "degraded_threshold",
            line_of(&raw.degraded_threshold, &raw.healthy_threshold),
            self.degraded_threshold > self.healthy_threshold,
            format!(
                "degraded_threshold {} is above healthy_threshold {}",
                self.degraded_threshold, self.healthy_threshold
            ),
        );
        pair(
            "device_temperature_critical",
            line_of(
                &raw.device_temperature_critical,
                &raw.device_temperature_limit,
            ),
            self.device_temperature_critical <= self.device_temperature_limit,
            format!(
                "device_temperature_critical {} must be above device_temperature_limit {}",
                self.device_temperature_critical, self.device_temperature_limit
            ),
        );
        pair(
            "media_available_critical",
            line_of(&raw.media_available_critical, &raw.media_available_min),
            self.media_available_critical >= self.media_available_min,
            format!(
                "media_available_critical {} must be below media_available_min {}",
                self.media_available_critical, self.media_available_min
            ),
        );
        pair(
            "max_connections",
            line_of(&raw.max_connections, &raw.min_warm),
            self.max_connections < self.min_warm,
            format!(
                "max_connections {} is below min_warm {}",
                self.max_connections, self.min_warm
            ),
        );
    }
}

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);

tunables! {
    /// Time between health checks of a healthy encoder.
    check_interval: Duration = Duration::from_secs(30), from RawDuration, check |v| in_range(&v, 100 * MS, HOUR);
    /// Time between health checks of an unhealthy or recovering encoder.
    unhealthy_interval: Duration = Duration::from_secs(5), from RawDuration, check |v| in_range(&v, 100 * MS, HOUR);
    /// Random spread of each interval, as a fraction (0.1 = ±10 %).
    interval_jitter: f64 = 0.1, from f64, check |v| in_range(&v, 0.0, 0.5);
    /// Timeout of an ordinary device request.
    request_timeout: Duration = helo_transport::DEFAULT_REQUEST_TIMEOUT, from RawDuration, check |v| in_range(&v, 100 * MS, 60 * SEC);
    /// Timeout of a TCP connect.
    connect_timeout: Duration = helo_transport::DEFAULT_CONNECT_TIMEOUT, from RawDuration, check |v| in_range(&v, 100 * MS, 60 * SEC);
    /// Deadline of one whole health check (all checks run concurrently under it).
    health_deadline: Duration = Duration::from_secs(5), from RawDuration, check |v| in_range(&v, 100 * MS, 120 * SEC);
    /// Connections kept warm per encoder, counting the one a check is using. One is
    /// enough for the supervisor's own checks (a broken one is replaced before the
    /// next check); more only buy spares that keepalive pings cost the device.
    min_warm: usize = 1, from i64, check |v| in_range(&v, 1, 32);
    /// Connections per encoder at most.
    max_connections: usize = 6, from i64, check |v| in_range(&v, 1, 64);
    /// Requests one connection may queue at full allowed load (HTTP/1.1 carries one at
    /// a time; a polling health check asks up to six things at once).
    connection_capacity: u32 = 16, from i64, check |v| in_range(&v, 1, 256);
    /// Requests in flight per encoder at most, over all its connections.
    max_in_flight: usize = 8, from i64, check |v| in_range(&v, 1, 256);
    /// Requests per minute one encoder may be sent, all sources together (pool,
    /// checks, events, actions); more are refused, counted in
    /// `helo_request_budget_refused_total`, not sent.
    request_budget: u32 = helo_transport::DEFAULT_REQUEST_BUDGET_PER_MINUTE, from i64, check |v| in_range(&v, 10, 100_000);
    /// Requests one encoder may be sent at once before `request_budget` applies.
    request_budget_burst: u32 = helo_transport::DEFAULT_REQUEST_BUDGET_BURST, from i64, check |v| in_range(&v, 1, 10_000);
    /// After the device refuses the password, no login from any source for this long
    /// (or until the configuration changes): a device's or a site's own lockout must
    /// not be tripped by retries.
    login_lockout: Duration = helo_transport::DEFAULT_LOGIN_LOCKOUT, from RawDuration, check |v| in_range(&v, SEC, 24 * HOUR);
    /// Idle connections are pinged this often to keep them warm.
    keepalive_interval: Duration = Duration::from_secs(20), from RawDuration, check |v| in_range(&v, 100 * MS, HOUR);
    /// Connections unused this long are replaced.
    idle_timeout: Duration = Duration::from_secs(300), from RawDuration, check |v| in_range(&v, SEC, 24 * HOUR);
    /// Connections older than this are replaced (with jitter).
    max_lifetime: Duration = Duration::from_secs(1800), from RawDuration, check |v| in_range(&v, SEC, 24 * HOUR);
    /// Connection temperature (0–100) that triggers cooling.
    temperature_high: f64 = 80.0, from f64, check |v| in_range(&v, 1.0, 100.0);
    /// Connection load (percent) that triggers cooling.
    load_high: f64 = 75.0, from f64, check |v| in_range(&v, 1.0, 100.0);
    /// Requests per cooling period that count as a full burst.
    burst_limit: u32 = 100, from i64, check |v| in_range(&v, 1, 1_000_000);
    /// How long a gradual cooling takes.
    cooling_period: Duration = Duration::from_secs(60), from RawDuration, check |v| in_range(&v, SEC, HOUR);
    /// Steps of a gradual cooling.
    gradual_cooldown: u32 = 5, from i64, check |v| in_range(&v, 1, 100);
    /// Device temperature (°C) above which an encoder is reported as overheating.
    device_temperature_limit: f64 = 70.0, from f64, check |v| in_range(&v, 1.0, 150.0);
    /// Streaming profile (0–9) to switch an overheating encoder to; unset: only report.
    overheat_profile: Option<u8> = None, from i64, check |v| v.map_or(Ok(()), |p| in_range(&p, 0, 9));
    /// Device temperature (°C) at which the resource check fails (the encoder is critical).
    device_temperature_critical: f64 = 85.0, from f64, check |v| in_range(&v, 1.0, 200.0);
    /// Free media (percent) below which resource usage warns.
    media_available_min: f64 = 10.0, from f64, check |v| in_range(&v, 0.0, 100.0);
    /// Free media (percent) at or below which the resource check fails.
    media_available_critical: f64 = 2.0, from f64, check |v| in_range(&v, 0.0, 100.0);
    /// Stream recovery tries (stop, then stream) before giving up until healthy again.
    recovery_max_attempts: u32 = 3, from i64, check |v| in_range(&v, 0, 20);
    /// First wait between recovery tries; doubles each try.
    recovery_backoff: Duration = Duration::from_secs(2), from RawDuration, check |v| in_range(&v, 100 * MS, 600 * SEC);
    /// After the last recovery try failed, how long until a new round of tries.
    recovery_retry_after: Duration = Duration::from_secs(300), from RawDuration, check |v| in_range(&v, SEC, 24 * HOUR);
    /// How long the supervisor leaves a stream or recording that is not in its desired
    /// state alone, so an operator's own stop and start can settle.
    desired_state_grace: Duration = Duration::from_secs(10), from RawDuration, check |v| in_range(&v, Duration::ZERO, HOUR);
    /// How long a start may take to reach streaming (or recording) before it counts as
    /// a failed try.
    start_timeout: Duration = Duration::from_secs(10), from RawDuration, check |v| in_range(&v, 100 * MS, 600 * SEC);
    /// Score at or above which a connection is healthy.
    healthy_threshold: f64 = 80.0, from f64, check |v| in_range(&v, 0.0, 100.0);
    /// Score at or above which a connection is degraded (below: unhealthy).
    degraded_threshold: f64 = 70.0, from f64, check |v| in_range(&v, 0.0, 100.0);
    /// Follow device state with event long-polls (falls back to polling by itself).
    events: bool = true, from bool, check |v| Ok::<(), String>(());
}

impl RawTunables {
    /// Keys set here that only the fleet-wide managers read (pools, thermal model,
    /// health scoring), so they cannot differ per encoder; with their lines.
    pub(super) fn fleet_only(&self) -> Vec<(&'static str, Option<usize>)> {
        let mut found = Vec::new();
        macro_rules! fleet_only {
            ($($key:ident),* $(,)?) => {
                $(
                    if let Some(v) = &self.$key {
                        found.push((stringify!($key), v.line));
                    }
                )*
            };
        }
        fleet_only!(
            health_deadline,
            min_warm,
            max_connections,
            connection_capacity,
            max_in_flight,
            keepalive_interval,
            idle_timeout,
            max_lifetime,
            temperature_high,
            load_high,
            burst_limit,
            cooling_period,
            gradual_cooldown,
            device_temperature_limit,
            overheat_profile,
            media_available_min,
            device_temperature_critical,
            media_available_critical,
            healthy_threshold,
            degraded_threshold,
        );
        found
    }
}
