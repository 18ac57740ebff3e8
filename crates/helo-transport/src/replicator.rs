//! The replicator (record and stream engine): commands and states, keyed on numbers.
//!
//! Real firmware names the stream states `eRSS…` and mocks `eRRS…`, so the names are
//! never parsed: only the numbers are.

use std::fmt;

use serde::{Serialize, Serializer};

/// A value for `eParamID_ReplicatorCommand`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplicatorCommand {
    /// 0: no command.
    NoCommand,
    /// 1: start recording.
    Record,
    /// 2: stop recording.
    StopRecording,
    /// 3: start streaming.
    Stream,
    /// 4: stop streaming.
    StopStreaming,
    /// 5: shut the replicator down.
    Shutdown,
}

impl ReplicatorCommand {
    /// The number sent to the device.
    pub fn value(self) -> i64 {
        match self {
            Self::NoCommand => 0,
            Self::Record => 1,
            Self::StopRecording => 2,
            Self::Stream => 3,
            Self::StopStreaming => 4,
            Self::Shutdown => 5,
        }
    }
}

macro_rules! replicator_state {
    (
        $(#[$meta:meta])*
        $name:ident, $active:ident, $failing_active:ident, $active_text:literal, $failing_text:literal
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            /// 0: uninitialized.
            Uninitialized,
            /// 1: idle.
            Idle,
            #[doc = concat!("2: ", $active_text, ".")]
            $active,
            /// 3: failing while idle.
            FailingInIdle,
            #[doc = concat!("4: failing while ", $active_text, ".")]
            $failing_active,
            /// 5: shut down.
            Shutdown,
            /// A number this client does not know, kept as sent.
            Other(i64),
        }

        impl $name {
            /// The state for a device's number; unknown numbers are kept as `Other`.
            pub fn from_value(n: i64) -> Self {
                match n {
                    0 => Self::Uninitialized,
                    1 => Self::Idle,
                    2 => Self::$active,
                    3 => Self::FailingInIdle,
                    4 => Self::$failing_active,
                    5 => Self::Shutdown,
                    n => Self::Other(n),
                }
            }

            /// The device's number for this state.
            pub fn value(self) -> i64 {
                match self {
                    Self::Uninitialized => 0,
                    Self::Idle => 1,
                    Self::$active => 2,
                    Self::FailingInIdle => 3,
                    Self::$failing_active => 4,
                    Self::Shutdown => 5,
                    Self::Other(n) => n,
                }
            }

            /// Whether the replicator reports a failure (`FailingIn…`).
            pub fn is_failing(self) -> bool {
                matches!(self, Self::FailingInIdle | Self::$failing_active)
            }

            /// Whether it is running normally.
            pub fn is_active(self) -> bool {
                matches!(self, Self::$active)
            }

            /// A stable lowercase label for logs and JSON.
            pub fn as_str(self) -> &'static str {
                match self {
                    Self::Uninitialized => "uninitialized",
                    Self::Idle => "idle",
                    Self::$active => $active_text,
                    Self::FailingInIdle => "failing_in_idle",
                    Self::$failing_active => $failing_text,
                    Self::Shutdown => "shutdown",
                    Self::Other(_) => "other",
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    Self::Other(n) => write!(f, "other({n})"),
                    s => f.write_str(s.as_str()),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

replicator_state!(
    /// `eParamID_ReplicatorRecordState`.
    RecordState, Recording, FailingInRecord, "recording", "failing_in_record"
);
replicator_state!(
    /// `eParamID_ReplicatorStreamState`.
    StreamState, Streaming, FailingInStream, "streaming", "failing_in_stream"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_number_round_trips_and_unknowns_are_kept() {
        for n in -1..=7 {
            assert_eq!(StreamState::from_value(n).value(), n);
            assert_eq!(RecordState::from_value(n).value(), n);
        }
        assert_eq!(StreamState::from_value(4), StreamState::FailingInStream);
        assert!(StreamState::from_value(4).is_failing());
        assert_eq!(RecordState::from_value(2), RecordState::Recording);
        assert_eq!(StreamState::from_value(99), StreamState::Other(99));
        assert_eq!(StreamState::from_value(99).to_string(), "other(99)");
        assert_eq!(ReplicatorCommand::StopStreaming.value(), 4);
    }
}
