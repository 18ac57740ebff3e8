//! Desired state, reconciled: each encoder should be streaming (or recording) or is only
//! observed; on every check and every event the [`Reconciler`] compares that with what
//! the device shows and decides what to do. The supervisor carries the actions out and
//! reports back; it holds no rule of its own.
//!
//! ```text
//!            seen active                       seen active
//!   Settled <----------- Diverged --grace--> Starting --deadline/failing--> Backoff
//!      |                    ^  (failing: at once)  ^                           |
//!      |  not active        |                      +--- Stopping <-- settle ---+
//!      +--------------------+                           (a restart)            |
//!                                                  last try failed -> GaveUp --+ retry_after
//! ```

mod policy;
mod track;

#[cfg(test)]
mod tests;

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use self::track::{Command, Track, TrackEvent};
pub use self::{policy::ReconcilePolicy, track::TrackPhase};

/// Which replicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    /// The stream replicator (`eParamID_ReplicatorStreamState`).
    Stream,
    /// The record replicator (`eParamID_ReplicatorRecordState`).
    Record,
}

impl Activity {
    /// `stream` or `record`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stream => "stream",
            Self::Record => "record",
        }
    }

    /// The active state's name: `streaming` or `recording`.
    pub fn active_name(self) -> &'static str {
        match self {
            Self::Stream => "streaming",
            Self::Record => "recording",
        }
    }
}

/// What the encoder should be doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct DesiredState {
    /// It should be streaming (`expect_streaming`).
    pub streaming: bool,
    /// It should be recording (`expect_recording`).
    pub recording: bool,
}

/// What one check or event showed of the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Observation {
    /// `eParamID_ReplicatorStreamState` as a number; `None`: not read.
    pub stream_state: Option<i64>,
    /// `eParamID_ReplicatorRecordState` as a number; `None`: not read.
    pub record_state: Option<i64>,
    /// The device's own `eParamID_AutoRecoverStreaming`, when known.
    pub device_auto_recover: Option<bool>,
    /// The thermal model asks for this lighter streaming profile (device overheating).
    pub switch_profile: Option<u8>,
}

/// Something the supervisor should do to the device now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send Stream (3) / Record (1).
    Start {
        /// Which replicator.
        activity: Activity,
        /// Which try of the round, from 1.
        attempt: u32,
        /// The second half of a restart (a stop was sent before).
        restart: bool,
    },
    /// Send Stop Streaming (4) / Stop Recording (2): the first half of a restart.
    Stop {
        /// Which replicator.
        activity: Activity,
        /// Which try of the round, from 1.
        attempt: u32,
    },
    /// Set `eParamID_StreamingProfileSel` to this lighter profile (device overheating).
    SwitchProfile {
        /// The profile, 0–9.
        profile: u8,
    },
}

impl Action {
    /// The `action` label of `helo_recovery_actions_total`: `start_stream`,
    /// `restart_stream`, `stop_stream`, `start_recording`, `restart_recording`,
    /// `stop_recording` or `lighter_profile`.
    pub fn label(&self) -> &'static str {
        match *self {
            Self::Start {
                activity: Activity::Stream,
                restart,
                ..
            } => {
                if restart {
                    "restart_stream"
                } else {
                    "start_stream"
                }
            }
            Self::Start {
                activity: Activity::Record,
                restart,
                ..
            } => {
                if restart {
                    "restart_recording"
                } else {
                    "start_recording"
                }
            }
            Self::Stop {
                activity: Activity::Stream,
                ..
            } => "stop_stream",
            Self::Stop {
                activity: Activity::Record,
                ..
            } => "stop_recording",
            Self::SwitchProfile { .. } => "lighter_profile",
        }
    }

    /// The replicator it acts on, if any.
    pub fn activity(&self) -> Option<Activity> {
        match *self {
            Self::Start { activity, .. } | Self::Stop { activity, .. } => Some(activity),
            Self::SwitchProfile { .. } => None,
        }
    }
}

/// Something worth a log line and a metric, from one decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReconcileEvent {
    /// First seen out of its desired state, showing this state number.
    Diverged {
        /// Which replicator.
        activity: Activity,
        /// The state number seen.
        observed: i64,
    },
    /// Back in its desired state after `attempts` tries (0: it came back by itself
    /// while the supervisor was still acting).
    Recovered {
        /// Which replicator.
        activity: Activity,
        /// Tries it took.
        attempts: u32,
    },
    /// A try did not bring it back.
    AttemptFailed {
        /// Which replicator.
        activity: Activity,
        /// The try that failed.
        attempt: u32,
    },
    /// The last try of a round failed: alert; a new round follows later.
    GaveUp {
        /// Which replicator.
        activity: Activity,
        /// Tries made.
        attempts: u32,
    },
    /// Failing, and the device's own auto-recovery is on: left to the device.
    DeferredToDevice {
        /// Which replicator.
        activity: Activity,
    },
}

/// What to do now, and when to look again.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// Carry these out in order, reporting each failure with
    /// [`Reconciler::action_failed`].
    pub actions: Vec<Action>,
    /// Look again (check the device) no later than this.
    pub recheck_at: Option<Instant>,
    /// What happened, for logs and metrics.
    pub events: Vec<ReconcileEvent>,
}

impl Decision {
    /// Whether the encoder is being brought back (check it more often meanwhile).
    pub fn is_acting(&self) -> bool {
        self.recheck_at.is_some() || !self.actions.is_empty()
    }
}

/// Where one replicator stands, for the status and the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TrackReport {
    /// Which replicator.
    pub activity: Activity,
    /// It should be active.
    pub desired_active: bool,
    /// The last state number seen.
    pub last_seen: Option<i64>,
    /// Known to be in its desired state (`None`: its state is unknown).
    pub in_desired_state: Option<bool>,
    /// Where reconciliation stands.
    #[serde(flatten)]
    pub phase: TrackPhase,
    /// Tries made in the current round.
    pub attempts: u32,
    /// Tries per round.
    pub max_attempts: u32,
    /// How long it has been out of its desired state.
    #[serde(skip)]
    pub diverged_for: Option<Duration>,
    /// How long until the machine acts or looks again.
    #[serde(skip)]
    pub due_in: Option<Duration>,
}

/// The desired-state machine of one encoder: a stream track, a record track, the
/// profile switch, and the hold.
#[derive(Debug, Clone)]
pub struct Reconciler {
    policy: ReconcilePolicy,
    stream: Track,
    record: Track,
    held: bool,
}

impl Reconciler {
    /// A machine for an encoder that should be in `desired`.
    pub fn new(desired: DesiredState, policy: ReconcilePolicy) -> Self {
        Self {
            policy,
            stream: Track::new(Activity::Stream, desired.streaming),
            record: Track::new(Activity::Record, desired.recording),
            held: false,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &ReconcilePolicy {
        &self.policy
    }

    /// What the encoder should be doing.
    pub fn desired(&self) -> DesiredState {
        DesiredState {
            streaming: self.stream.desired_active,
            recording: self.record.desired_active,
        }
    }

    /// Pauses (`true`) or resumes reconciliation (maintenance). While held nothing is
    /// ever acted on; on release a replicator found out of its desired state gets the
    /// grace period again before the first try.
    pub fn set_held(&mut self, held: bool) {
        self.held = held;
    }

    /// Whether reconciliation is paused.
    pub fn is_held(&self) -> bool {
        self.held
    }

    /// Takes one observation at `now` and decides.
    pub fn observe(&mut self, now: Instant, seen: &Observation) -> Decision {
        let mut decision = Decision::default();
        let auto = seen.device_auto_recover == Some(true);
        let policy = self.policy;
        let held = self.held;
        let steps = [
            self.stream
                .observe(now, seen.stream_state, auto, held, &policy),
            // The device's auto-recovery setting is about streaming only.
            self.record
                .observe(now, seen.record_state, false, held, &policy),
        ];
        for (step, activity) in steps.into_iter().zip([Activity::Stream, Activity::Record]) {
            if let Some((command, attempt, restart)) = step.command {
                decision.actions.push(match command {
                    Command::Start => Action::Start {
                        activity,
                        attempt,
                        restart,
                    },
                    Command::Stop => Action::Stop { activity, attempt },
                });
            }
            if let Some(event) = step.event {
                decision.events.push(event_of(activity, event));
            }
            decision.recheck_at = earliest(decision.recheck_at, step.recheck_at);
        }
        if let Some(profile) = seen.switch_profile.filter(|_| !held) {
            decision.actions.push(Action::SwitchProfile { profile });
        }
        decision
    }

    /// The device refused an action, or did not answer: the try it belonged to failed.
    pub fn action_failed(&mut self, now: Instant, action: &Action) -> Decision {
        let mut decision = Decision::default();
        let Some(activity) = action.activity() else {
            return decision;
        };
        let policy = self.policy;
        let step = self.track_mut(activity).command_failed(now, &policy);
        if let Some(event) = step.event {
            decision.events.push(event_of(activity, event));
        }
        decision.recheck_at = step.recheck_at;
        decision
    }

    /// The action was not sent: this supervisor may not act on the encoder now (see
    /// [`TrackPhase::NotActing`]). Its try is taken back, uncounted.
    pub fn action_not_taken(&mut self, action: &Action) {
        if let Some(activity) = action.activity() {
            self.track_mut(activity).command_not_taken();
        }
    }

    /// When the machine wants to look again whatever happens meanwhile.
    pub fn due_at(&self) -> Option<Instant> {
        earliest(
            self.stream.due_at(&self.policy),
            self.record.due_at(&self.policy),
        )
    }

    /// Whether both replicators are known to be in their desired state (`None` while
    /// a replicator that matters has not been read).
    pub fn in_desired_state(&self) -> Option<bool> {
        match (
            self.stream.in_desired_state(),
            self.record.in_desired_state(),
        ) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        }
    }

    /// Where each replicator stands at `now`.
    pub fn report(&self, now: Instant) -> [TrackReport; 2] {
        [
            self.track_report(&self.stream, now),
            self.track_report(&self.record, now),
        ]
    }

    /// Whether the device's auto-recovery setting matters now: the stream should be
    /// streaming and is failing, so the answer decides between acting and deferring.
    pub fn needs_auto_recover_setting(&self, stream_state: Option<i64>) -> bool {
        self.stream.desired_active && stream_state == Some(4)
    }

    fn track_report(&self, track: &Track, now: Instant) -> TrackReport {
        TrackReport {
            activity: track.activity,
            desired_active: track.desired_active,
            last_seen: track.last_seen,
            in_desired_state: track.in_desired_state(),
            phase: track.phase,
            attempts: track.attempts(),
            max_attempts: self.policy.max_attempts,
            diverged_for: track.diverged_for(now),
            due_in: track
                .due_at(&self.policy)
                .map(|t| t.saturating_duration_since(now)),
        }
    }

    fn track_mut(&mut self, activity: Activity) -> &mut Track {
        match activity {
            Activity::Stream => &mut self.stream,
            Activity::Record => &mut self.record,
        }
    }
}

fn event_of(activity: Activity, event: TrackEvent) -> ReconcileEvent {
    match event {
        TrackEvent::Diverged { observed } => ReconcileEvent::Diverged { activity, observed },
        TrackEvent::Recovered { attempts } => ReconcileEvent::Recovered { activity, attempts },
        TrackEvent::AttemptFailed { attempt } => {
            ReconcileEvent::AttemptFailed { activity, attempt }
        }
        TrackEvent::GaveUp { attempts } => ReconcileEvent::GaveUp { activity, attempts },
        TrackEvent::DeferredToDevice => ReconcileEvent::DeferredToDevice { activity },
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
