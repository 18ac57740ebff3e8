//! Why things happen: cooling reasons, cooling outcomes, retirement reasons.

use std::{fmt, str::FromStr};

use crate::error::CoreError;

/// Why a connection is being cooled. Parses from, and prints as, the labels used in
/// logs and metrics (`"high_load".parse()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoolingReason {
    /// Load at or above `load_high`.
    HighLoad,
    /// Cooled ahead of trouble (e.g. before a busy period).
    Preventive,
    /// Temperature at or above `temperature_high`.
    HighTemperature,
    /// Error rate at or above `error_rate_high`.
    ErrorRate,
    /// An operator asked for it.
    Manual,
}

impl CoolingReason {
    /// Every reason, in declaration order.
    pub const ALL: [Self; 5] = [
        Self::HighLoad,
        Self::Preventive,
        Self::HighTemperature,
        Self::ErrorRate,
        Self::Manual,
    ];

    /// The label: `high_load`, `preventive`, `high_temperature`, `error_rate`, `manual`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HighLoad => "high_load",
            Self::Preventive => "preventive",
            Self::HighTemperature => "high_temperature",
            Self::ErrorRate => "error_rate",
            Self::Manual => "manual",
        }
    }
}

impl fmt::Display for CoolingReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CoolingReason {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| CoreError::UnknownCoolingReason {
                given: s.to_string(),
            })
    }
}

/// How a cooling ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoolingOutcome {
    /// All steps ran; the connection was retired (or, as its encoder's last usable
    /// connection, put back on a slow start).
    Completed,
    /// The procedure failed (the pool lost the connection, or refused a step); the
    /// connection was force-reset.
    Failed,
}

impl CoolingOutcome {
    /// `completed` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for CoolingOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the pool closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetireReason {
    /// At the end of a cooling.
    Cooled,
    /// Closed by the device, failed a keepalive, or marked broken by a user.
    Broken,
    /// Past its (jittered) `max_lifetime`.
    Expired,
    /// A surplus warm connection unused for `idle_timeout`.
    Idle,
    /// `force_reset_connection`.
    Reset,
    /// `stop_warmup`.
    Stopped,
}

impl RetireReason {
    /// `cooled`, `broken`, `expired`, `idle`, `reset` or `stopped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cooled => "cooled",
            Self::Broken => "broken",
            Self::Expired => "expired",
            Self::Idle => "idle",
            Self::Reset => "reset",
            Self::Stopped => "stopped",
        }
    }
}

impl fmt::Display for RetireReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Option<CoolingReason>) {
        let got = input.parse::<CoolingReason>();
        match expected {
            Some(r) => assert_eq!(got.ok(), Some(r), "{input}"),
            None => assert!(
                got.as_ref().is_err_and(|e| e.is_unknown_cooling_reason()),
                "{input}: {got:?}"
            ),
        }
    }

    #[test]
    fn reasons_parse_from_their_labels() {
        check("high_load", Some(CoolingReason::HighLoad));
        check("preventive", Some(CoolingReason::Preventive));
        check("high_temperature", Some(CoolingReason::HighTemperature));
        check("error_rate", Some(CoolingReason::ErrorRate));
        check("manual", Some(CoolingReason::Manual));
        check(" HIGH_LOAD ", Some(CoolingReason::HighLoad));
        check("hot", None);
        check("", None);
        for r in CoolingReason::ALL {
            assert_eq!(r.to_string().parse::<CoolingReason>().ok(), Some(r));
        }
    }

    #[test]
    fn labels() {
        assert_eq!(RetireReason::Cooled.as_str(), "cooled");
        assert_eq!(RetireReason::Stopped.to_string(), "stopped");
        assert_eq!(CoolingOutcome::Failed.as_str(), "failed");
    }
}
