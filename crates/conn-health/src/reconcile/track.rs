//! One replicator (the stream or the recorder): its desired state against what the
//! device shows, and the tries that bring it back.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::{Activity, ReconcilePolicy};

/// What the replicator shows, keyed on the protocol's numbers (0 uninitialized, 1 idle,
/// 2 active, 3 failing in idle, 4 failing while active, 5 shutdown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Observed {
    /// Not read (no answer, or not supported).
    Unknown,
    /// Streaming or recording.
    Active,
    /// Uninitialized, idle or shut down: not running, not failing.
    Inactive(i64),
    /// `FailingInIdle` (3) or failing while active (4).
    Failing(i64),
    /// A number the protocol does not define: nothing to act on.
    Other(i64),
}

impl Observed {
    pub(crate) fn of(value: Option<i64>) -> Self {
        match value {
            None => Self::Unknown,
            Some(2) => Self::Active,
            Some(n @ (0 | 1 | 5)) => Self::Inactive(n),
            Some(n @ (3 | 4)) => Self::Failing(n),
            Some(n) => Self::Other(n),
        }
    }
}

/// Where one replicator's reconciliation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "phase")]
pub enum TrackPhase {
    /// In its desired state, or only observed.
    Settled,
    /// Not in its desired state since `since`; the first try waits for the grace
    /// period (a failing replicator is tried at once).
    #[serde(rename = "grace")]
    Diverged {
        /// When the difference was first seen.
        #[serde(skip)]
        since: Instant,
    },
    /// The stop of a restart was sent; the start follows at `start_at`.
    Stopping {
        /// Which try this is, from 1.
        attempt: u32,
        /// When the start is due.
        #[serde(skip)]
        start_at: Instant,
    },
    /// A start was sent; the replicator must be active by `deadline`.
    Starting {
        /// Which try this is, from 1.
        attempt: u32,
        /// When the try counts as failed.
        #[serde(skip)]
        deadline: Instant,
    },
    /// Try `attempt` failed; the next one is due at `next_at`.
    Backoff {
        /// The try that failed.
        attempt: u32,
        /// When the next try is due.
        #[serde(skip)]
        next_at: Instant,
    },
    /// Every try of the round failed; a new round starts at `retry_at`.
    GaveUp {
        /// Tries made in the round.
        attempts: u32,
        /// When the next round starts.
        #[serde(skip)]
        retry_at: Instant,
    },
    /// Failing, and the device's own auto-recovery is on: it is left to the device.
    DeferredToDevice,
    /// Paused by an operator: observed, never acted on.
    Held,
    /// A try was due, but this supervisor may not act on the encoder now (another
    /// node of its cluster owns it, or it cannot renew its lease): nothing was sent
    /// and nothing counted. The next check that finds it still out of its desired
    /// state makes the try.
    NotActing {
        /// Tries of the round that failed before.
        attempts: u32,
    },
}

/// A command for the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    Start,
    Stop,
}

/// What one observation of one replicator concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct TrackStep {
    pub(crate) command: Option<(Command, u32, bool)>,
    pub(crate) recheck_at: Option<Instant>,
    pub(crate) event: Option<TrackEvent>,
}

/// Something worth a log line and a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrackEvent {
    /// First seen out of its desired state.
    Diverged { observed: i64 },
    /// Back in its desired state after `attempts` tries.
    Recovered { attempts: u32 },
    /// Try `attempt` did not bring it back.
    AttemptFailed { attempt: u32 },
    /// The last try of a round failed.
    GaveUp { attempts: u32 },
    /// Failing, left to the device's own recovery.
    DeferredToDevice,
}

/// One replicator's reconciliation state.
#[derive(Debug, Clone)]
pub(crate) struct Track {
    pub(crate) activity: Activity,
    pub(crate) desired_active: bool,
    pub(crate) phase: TrackPhase,
    /// When it was first seen out of its desired state (cleared once back in it).
    pub(crate) diverged_since: Option<Instant>,
    /// The last state seen (a protocol number).
    pub(crate) last_seen: Option<i64>,
    /// Whether the current round of tries restarts (stop, then start) rather than
    /// only starts.
    restart: bool,
}

impl Track {
    pub(crate) fn new(activity: Activity, desired_active: bool) -> Self {
        Self {
            activity,
            desired_active,
            phase: TrackPhase::Settled,
            diverged_since: None,
            last_seen: None,
            restart: false,
        }
    }

    /// Tries made in the current round.
    pub(crate) fn attempts(&self) -> u32 {
        match self.phase {
            TrackPhase::Stopping { attempt, .. }
            | TrackPhase::Starting { attempt, .. }
            | TrackPhase::Backoff { attempt, .. } => attempt,
            TrackPhase::GaveUp { attempts, .. } | TrackPhase::NotActing { attempts } => attempts,
            _ => 0,
        }
    }

    /// Whether the replicator is known to be in its desired state: `None` while its
    /// state is unknown.
    pub(crate) fn in_desired_state(&self) -> Option<bool> {
        if !self.desired_active {
            return Some(true);
        }
        match Observed::of(self.last_seen) {
            Observed::Unknown => None,
            Observed::Active => Some(true),
            _ => Some(false),
        }
    }

    /// When the machine wants to look again, whatever is observed meanwhile.
    pub(crate) fn due_at(&self, policy: &ReconcilePolicy) -> Option<Instant> {
        match self.phase {
            TrackPhase::Diverged { since } => Some(since + policy.grace),
            TrackPhase::Stopping { start_at, .. } => Some(start_at),
            TrackPhase::Starting { deadline, .. } => Some(deadline),
            TrackPhase::Backoff { next_at, .. } => Some(next_at),
            TrackPhase::GaveUp { retry_at, .. } => Some(retry_at),
            // Not acting waits for the regular checks: it has nothing of its own to
            // wait for, and looking sooner would only be refused again.
            TrackPhase::Settled
            | TrackPhase::DeferredToDevice
            | TrackPhase::Held
            | TrackPhase::NotActing { .. } => None,
        }
    }

    /// Takes one observation at `now` and decides.
    pub(crate) fn observe(
        &mut self,
        now: Instant,
        seen: Option<i64>,
        device_auto_recover: bool,
        held: bool,
        policy: &ReconcilePolicy,
    ) -> TrackStep {
        let observed = Observed::of(seen);
        if observed != Observed::Unknown {
            self.last_seen = seen;
        }
        if !self.desired_active {
            self.settle();
            return TrackStep::default();
        }
        let mut step = TrackStep::default();
        match observed {
            Observed::Active => {
                let attempts = self.attempts();
                // Not acting here, it came back by someone else's hand.
                let was_acting = !matches!(
                    self.phase,
                    TrackPhase::Settled
                        | TrackPhase::Held
                        | TrackPhase::Diverged { .. }
                        | TrackPhase::NotActing { .. }
                );
                self.settle();
                if held {
                    self.phase = TrackPhase::Held;
                }
                if was_acting {
                    step.event = Some(TrackEvent::Recovered { attempts });
                }
                return step;
            }
            // Nothing to judge: keep the plan, look again when it falls due.
            Observed::Unknown | Observed::Other(_) => {
                if held {
                    self.phase = TrackPhase::Held;
                }
                step.recheck_at = self.due_at(policy);
                return step;
            }
            Observed::Inactive(n) | Observed::Failing(n) => {
                if self.diverged_since.is_none() {
                    self.diverged_since = Some(now);
                    step.event = Some(TrackEvent::Diverged { observed: n });
                }
            }
        }
        if held {
            self.phase = TrackPhase::Held;
            return step;
        }
        let failing = matches!(observed, Observed::Failing(_));
        // The device's own auto-recovery covers a stream failing while active (4);
        // a supervisor must not fight it.
        if device_auto_recover && observed == Observed::Failing(4) {
            if self.phase != TrackPhase::DeferredToDevice {
                step.event = Some(TrackEvent::DeferredToDevice);
            }
            self.phase = TrackPhase::DeferredToDevice;
            return step;
        }
        if policy.max_attempts == 0 {
            // Recovery disabled: observed and reported, never acted on.
            self.phase = TrackPhase::Settled;
            return step;
        }
        match self.phase {
            TrackPhase::Settled | TrackPhase::Held | TrackPhase::DeferredToDevice => {
                let since = if self.phase == TrackPhase::Settled {
                    self.diverged_since.unwrap_or(now)
                } else {
                    // Released from a hold, or the device gave up its own recovery:
                    // the operator gets the grace period again.
                    now
                };
                self.phase = TrackPhase::Diverged { since };
                self.after_grace(now, since, failing, policy, &mut step);
            }
            TrackPhase::Diverged { since } => {
                self.after_grace(now, since, failing, policy, &mut step)
            }
            TrackPhase::Stopping { attempt, start_at } => {
                if now >= start_at {
                    self.start(now, attempt, policy, &mut step);
                } else {
                    step.recheck_at = Some(start_at);
                }
            }
            TrackPhase::Starting { attempt, deadline } => {
                if failing || now >= deadline {
                    self.attempt_failed(now, attempt, failing, policy, &mut step);
                } else {
                    step.recheck_at = Some(deadline);
                }
            }
            TrackPhase::Backoff { attempt, next_at } => {
                if now >= next_at {
                    self.begin(now, attempt + 1, failing, policy, &mut step);
                } else {
                    step.recheck_at = Some(next_at);
                }
            }
            TrackPhase::GaveUp { retry_at, .. } => {
                if now >= retry_at {
                    self.begin(now, 1, failing, policy, &mut step);
                } else {
                    step.recheck_at = Some(retry_at);
                }
            }
            TrackPhase::NotActing { attempts } => {
                self.begin(now, attempts + 1, failing, policy, &mut step)
            }
        }
        step
    }

    /// The command of the current try was not sent: this supervisor may not act on
    /// the encoder now. The try is taken back, uncounted; it is made again by the
    /// next check that still finds the replicator out of its desired state.
    pub(crate) fn command_not_taken(&mut self) {
        if let TrackPhase::Stopping { attempt, .. } | TrackPhase::Starting { attempt, .. } =
            self.phase
        {
            self.phase = TrackPhase::NotActing {
                attempts: attempt.saturating_sub(1),
            };
        }
    }

    /// A command the device refused or did not answer: the try failed.
    pub(crate) fn command_failed(&mut self, now: Instant, policy: &ReconcilePolicy) -> TrackStep {
        let mut step = TrackStep::default();
        match self.phase {
            TrackPhase::Stopping { attempt, .. } | TrackPhase::Starting { attempt, .. } => {
                self.attempt_failed(now, attempt, self.restart, policy, &mut step)
            }
            _ => {}
        }
        step
    }

    fn after_grace(
        &mut self,
        now: Instant,
        since: Instant,
        failing: bool,
        policy: &ReconcilePolicy,
        step: &mut TrackStep,
    ) {
        // A failing replicator is broken, not stopped by someone: no grace.
        if failing || now >= since + policy.grace {
            self.begin(now, 1, failing, policy, step);
        } else {
            step.recheck_at = Some(since + policy.grace);
        }
    }

    /// Starts try `attempt`: a failing replicator (or one whose plain start already
    /// failed) is restarted, stop then start; an inactive one is started.
    fn begin(
        &mut self,
        now: Instant,
        attempt: u32,
        failing: bool,
        policy: &ReconcilePolicy,
        step: &mut TrackStep,
    ) {
        self.restart = failing || attempt > 1;
        if self.restart {
            let start_at = now + policy.settle;
            self.phase = TrackPhase::Stopping { attempt, start_at };
            step.command = Some((Command::Stop, attempt, true));
            step.recheck_at = Some(start_at);
        } else {
            self.start(now, attempt, policy, step);
        }
    }

    fn start(
        &mut self,
        now: Instant,
        attempt: u32,
        policy: &ReconcilePolicy,
        step: &mut TrackStep,
    ) {
        let deadline = now + policy.start_timeout;
        self.phase = TrackPhase::Starting { attempt, deadline };
        step.command = Some((Command::Start, attempt, self.restart));
        step.recheck_at = Some(deadline);
    }

    fn attempt_failed(
        &mut self,
        now: Instant,
        attempt: u32,
        failing: bool,
        policy: &ReconcilePolicy,
        step: &mut TrackStep,
    ) {
        if attempt >= policy.max_attempts {
            let retry_at = now + policy.retry_after;
            self.phase = TrackPhase::GaveUp {
                attempts: attempt,
                retry_at,
            };
            step.event = Some(TrackEvent::GaveUp { attempts: attempt });
            step.recheck_at = Some(retry_at);
            return;
        }
        let next_at = now + policy.delay_after(attempt);
        self.phase = TrackPhase::Backoff { attempt, next_at };
        self.restart = self.restart || failing;
        step.event = Some(TrackEvent::AttemptFailed { attempt });
        step.recheck_at = Some(next_at);
    }

    fn settle(&mut self) {
        self.phase = TrackPhase::Settled;
        self.diverged_since = None;
        self.restart = false;
    }

    /// How long it has been out of its desired state.
    pub(crate) fn diverged_for(&self, now: Instant) -> Option<Duration> {
        self.diverged_since
            .filter(|_| self.desired_active)
            .map(|t| now.saturating_duration_since(t))
    }
}
