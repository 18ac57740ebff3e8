//! When to restart a failed stream: a small state machine, so the supervisor only
//! carries out what it decides.

use std::time::Duration;

use helo_transport::StreamState;
use tokio::time::Instant;

/// Limits of stream recovery.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecoveryPolicy {
    /// Restarts tried before giving up (until the stream is healthy again).
    pub max_attempts: u32,
    /// Wait after the first try; doubles with each further try.
    pub backoff: Duration,
    /// The longest wait between tries.
    pub backoff_max: Duration,
}

impl Default for RecoveryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff: Duration::from_secs(2),
            backoff_max: Duration::from_secs(60),
        }
    }
}

/// What the device looks like at one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamObservation {
    /// The stream state, if it could be read.
    pub state: Option<StreamState>,
    /// The encoder is configured to be streaming.
    pub expect_streaming: bool,
    /// The device's own `eParamID_AutoRecoverStreaming`, if known.
    pub device_auto_recover: Option<bool>,
}

/// What to do about the stream now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryDecision {
    /// Nothing is wrong (or nothing is expected).
    Nothing,
    /// The stream is failing but the device recovers it by itself: report, don't fight.
    DeferToDevice,
    /// A restart is due later; the supervisor should check again at `until`.
    Wait {
        /// When the next try is allowed.
        until: Instant,
    },
    /// Restart now (stop streaming, then stream). `attempt` counts from 1.
    Restart {
        /// Which try this is.
        attempt: u32,
    },
    /// Every try failed; no more until the stream is healthy again.
    GiveUp {
        /// How many tries were made.
        attempts: u32,
    },
    /// The stream is back after `attempts` tries.
    Recovered {
        /// How many tries it took.
        attempts: u32,
    },
}

impl RecoveryDecision {
    /// Whether the encoder is failing or being recovered (the supervisor checks it
    /// more often then).
    pub fn is_recovering(&self) -> bool {
        matches!(
            self,
            Self::DeferToDevice | Self::Wait { .. } | Self::Restart { .. }
        )
    }
}

/// The recovery state of one encoder's stream.
#[derive(Debug, Clone)]
pub struct StreamRecovery {
    policy: RecoveryPolicy,
    attempts: u32,
    next_try: Option<Instant>,
    gave_up: bool,
}

impl StreamRecovery {
    /// A fresh state under `policy`.
    pub fn new(policy: RecoveryPolicy) -> Self {
        Self {
            policy,
            attempts: 0,
            next_try: None,
            gave_up: false,
        }
    }

    /// Restarts tried since the stream was last healthy.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Decides what to do about what was observed at `now`.
    pub fn observe(&mut self, now: Instant, seen: StreamObservation) -> RecoveryDecision {
        if !seen.expect_streaming {
            self.reset();
            return RecoveryDecision::Nothing;
        }
        match seen.state {
            Some(StreamState::Streaming) => {
                let attempts = self.attempts;
                self.reset();
                if attempts > 0 {
                    RecoveryDecision::Recovered { attempts }
                } else {
                    RecoveryDecision::Nothing
                }
            }
            Some(StreamState::FailingInStream) => {
                if seen.device_auto_recover == Some(true) {
                    return RecoveryDecision::DeferToDevice;
                }
                if self.gave_up {
                    return RecoveryDecision::Nothing;
                }
                if self.attempts >= self.policy.max_attempts {
                    self.gave_up = true;
                    return RecoveryDecision::GiveUp {
                        attempts: self.attempts,
                    };
                }
                if let Some(until) = self.next_try.filter(|t| now < *t) {
                    return RecoveryDecision::Wait { until };
                }
                self.attempts += 1;
                let factor = 2u32.saturating_pow(self.attempts - 1);
                let wait = self
                    .policy
                    .backoff
                    .saturating_mul(factor)
                    .min(self.policy.backoff_max);
                self.next_try = Some(now + wait);
                RecoveryDecision::Restart {
                    attempt: self.attempts,
                }
            }
            // Unknown, idle, starting or shut down: not a failed stream to restart.
            _ => RecoveryDecision::Nothing,
        }
    }

    fn reset(&mut self) {
        self.attempts = 0;
        self.next_try = None;
        self.gave_up = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(state: StreamState) -> StreamObservation {
        StreamObservation {
            state: Some(state),
            expect_streaming: true,
            device_auto_recover: Some(false),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn restarts_with_doubling_backoff_then_gives_up_then_resets() {
        let policy = RecoveryPolicy {
            max_attempts: 3,
            backoff: Duration::from_secs(2),
            backoff_max: Duration::from_secs(5),
        };
        let mut r = StreamRecovery::new(policy);
        let t0 = Instant::now();
        let failing = seen(StreamState::FailingInStream);
        assert_eq!(
            r.observe(t0, failing),
            RecoveryDecision::Restart { attempt: 1 }
        );
        assert_eq!(
            r.observe(t0 + Duration::from_secs(1), failing),
            RecoveryDecision::Wait {
                until: t0 + Duration::from_secs(2)
            }
        );
        let t2 = t0 + Duration::from_secs(2);
        assert_eq!(
            r.observe(t2, failing),
            RecoveryDecision::Restart { attempt: 2 }
        );
        // 2 s × 2 = 4 s.
        assert!(matches!(
            r.observe(t2 + Duration::from_secs(3), failing),
            RecoveryDecision::Wait { .. }
        ));
        let t6 = t2 + Duration::from_secs(4);
        assert_eq!(
            r.observe(t6, failing),
            RecoveryDecision::Restart { attempt: 3 }
        );
        // 2 s × 4 = 8 s, capped at 5 s.
        let t11 = t6 + Duration::from_secs(5);
        assert_eq!(
            r.observe(t11, failing),
            RecoveryDecision::GiveUp { attempts: 3 }
        );
        assert_eq!(
            r.observe(t11 + Duration::from_secs(60), failing),
            RecoveryDecision::Nothing
        );
        assert_eq!(
            r.observe(t11 + Duration::from_secs(61), seen(StreamState::Streaming)),
            RecoveryDecision::Recovered { attempts: 3 }
        );
        assert_eq!(r.attempts(), 0);
        assert_eq!(
            r.observe(t11 + Duration::from_secs(62), failing),
            RecoveryDecision::Restart { attempt: 1 }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_devices_own_recovery_is_not_fought() {
        let mut r = StreamRecovery::new(RecoveryPolicy::default());
        let obs = StreamObservation {
            device_auto_recover: Some(true),
            ..seen(StreamState::FailingInStream)
        };
        assert_eq!(
            r.observe(Instant::now(), obs),
            RecoveryDecision::DeferToDevice
        );
        assert_eq!(r.attempts(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_done_where_nothing_is_expected() {
        let mut r = StreamRecovery::new(RecoveryPolicy::default());
        let now = Instant::now();
        let obs = StreamObservation {
            expect_streaming: false,
            ..seen(StreamState::FailingInStream)
        };
        assert_eq!(r.observe(now, obs), RecoveryDecision::Nothing);
        assert_eq!(
            r.observe(now, seen(StreamState::Idle)),
            RecoveryDecision::Nothing
        );
        assert_eq!(
            r.observe(
                now,
                StreamObservation {
                    state: None,
                    ..seen(StreamState::Idle)
                }
            ),
            RecoveryDecision::Nothing
        );
        assert_eq!(
            r.observe(now, seen(StreamState::Streaming)),
            RecoveryDecision::Nothing
        );
    }
}
