//! `stream start|stop` and `record start|stop`: send the command, then wait until the
//! device shows the new state, so the answer says what happened rather than what the
//! state was before the device got round to it.

use std::time::Duration;

use helo_transport::{
    names, Device, HeloClientExt, HeloConnection, HeloError, HeloRequest, HeloResponse,
    RecordState, ReplicatorCommand, StreamState,
};
use tokio::time::Instant;
use tower::Service;

use serde::Serialize;

use super::{print_json, ToolError};
use crate::cli::StartStop;

// The replicator state numbers (per the protocol; names differ between firmware and
// mocks, so only the numbers are used).
const IDLE: i64 = 1;
const ACTIVE: i64 = 2;
const FAILING_IN_IDLE: i64 = 3;
const FAILING_ACTIVE: i64 = 4;

/// Which engine of the replicator a command drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Streaming (`eParamID_ReplicatorStreamState`).
    Stream,
    /// Recording (`eParamID_ReplicatorRecordState`).
    Record,
}

impl Engine {
    fn state_param(self) -> &'static str {
        match self {
            Self::Stream => names::STREAM_STATE,
            Self::Record => names::RECORD_STATE,
        }
    }

    fn command(self, action: StartStop) -> ReplicatorCommand {
        match (self, action) {
            (Self::Stream, StartStop::Start) => ReplicatorCommand::Stream,
            (Self::Stream, StartStop::Stop) => ReplicatorCommand::StopStreaming,
            (Self::Record, StartStop::Start) => ReplicatorCommand::Record,
            (Self::Record, StartStop::Stop) => ReplicatorCommand::StopRecording,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Self::Stream => "stream",
            Self::Record => "record",
        }
    }

    /// The label of a state number, e.g. `streaming`, `failing_in_record`, `other(7)`.
    fn label(self, n: i64) -> String {
        match self {
            Self::Stream => StreamState::from_value(n).to_string(),
            Self::Record => RecordState::from_value(n).to_string(),
        }
    }
}

fn target(action: StartStop) -> i64 {
    match action {
        StartStop::Start => ACTIVE,
        StartStop::Stop => IDLE,
    }
}

/// How long to wait for the new state, and how often to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitOptions {
    /// Wait at all; without, the state read right after the command is the answer.
    pub wait: bool,
    /// How long after the command the state must show.
    pub timeout: Duration,
    /// Time between two reads of the state.
    pub poll_gap: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        Self {
            wait: true,
            timeout: Duration::from_secs(10),
            poll_gap: Duration::from_millis(250),
        }
    }
}

/// What the device showed after a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The engine commanded.
    pub engine: Engine,
    /// The state number seen last.
    pub state: i64,
    /// The state number asked for.
    pub target: i64,
    /// From sending the command to the last read of the state.
    pub took: Duration,
    /// `Some(true)` reached, `Some(false)` not reached, `None` not waited for.
    pub reached: Option<bool>,
    /// The wait ended early because the device reported a new failure state.
    pub failed: bool,
}

impl Transition {
    /// `Ok` unless the state was waited for and not reached.
    pub fn check(&self, device: &str) -> Result<(), ToolError> {
        if self.reached != Some(false) {
            return Ok(());
        }
        Err(ToolError::NotReached {
            device: device.to_string(),
            noun: self.engine.noun(),
            seen: self.engine.label(self.state),
            want: match self.target {
                ACTIVE => match self.engine {
                    Engine::Stream => StreamState::Streaming.as_str(),
                    Engine::Record => RecordState::Recording.as_str(),
                },
                _ => "idle",
            },
            after: self.took,
            failed: self.failed,
        })
    }
}

/// The output line: `{"stream_state":"streaming","took_ms":812,"reached":true}`
/// (`record_state` for recording; `reached` is `null` with `--no-wait`).
impl serde::Serialize for Transition {
    fn serialize<Ser: serde::Serializer>(&self, s: Ser) -> Result<Ser::Ok, Ser::Error> {
        let label = Some(self.engine.label(self.state));
        Line {
            stream_state: label.clone().filter(|_| self.engine == Engine::Stream),
            record_state: label.filter(|_| self.engine == Engine::Record),
            took_ms: u64::try_from(self.took.as_millis()).unwrap_or(u64::MAX),
            reached: self.reached,
        }
        .serialize(s)
    }
}

/// The output line, fields in this order.
#[derive(Serialize)]
struct Line {
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record_state: Option<String>,
    took_ms: u64,
    reached: Option<bool>,
}

/// Sends the start/stop command and reads the state every `poll_gap` until it shows
/// the target (streaming/recording, or idle), the timeout passes, or the device
/// reports a *new* failure (`FailingInIdle`/`FailingIn…`, 3/4), which ends the wait
/// early: a failure state that was already there before the command (a stop sent to a
/// failed stream) only ends it once the state moved.
///
/// Errors from the device end the wait with that error; the command may have been
/// applied.
pub async fn change_state<S>(
    svc: &S,
    engine: Engine,
    action: StartStop,
    opts: &WaitOptions,
) -> Result<Transition, HeloError>
where
    S: Service<HeloRequest, Response = HeloResponse, Error = HeloError> + Clone + Send + 'static,
    S::Future: Send,
{
    let param = engine.state_param();
    let target = target(action);
    let before = if opts.wait {
        Some(svc.get_int(param).await?)
    } else {
        None
    };
    let sent = Instant::now();
    svc.replicator_command(engine.command(action)).await?;
    let deadline = sent + opts.timeout;
    let mut moved = false;
    loop {
        let state = svc.get_int(param).await?;
        let now = Instant::now();
        let done = |reached, failed| Transition {
            engine,
            state,
            target,
            took: now - sent,
            reached,
            failed,
        };
        let Some(before) = before else {
            return Ok(done(None, false));
        };
        if state == target {
            return Ok(done(Some(true), false));
        }
        moved |= state != before;
        if matches!(state, FAILING_IN_IDLE | FAILING_ACTIVE) && moved {
            return Ok(done(Some(false), true));
        }
        if now >= deadline {
            return Ok(done(Some(false), false));
        }
        tokio::time::sleep_until((now + opts.poll_gap).min(deadline)).await;
    }
}

/// `stream start|stop`: prints the [`Transition`] line; an error when the state was
/// not reached.
pub async fn stream(
    device: &Device,
    action: StartStop,
    opts: &WaitOptions,
) -> Result<(), ToolError> {
    run(device, Engine::Stream, action, opts).await
}

/// `record start|stop`: prints the [`Transition`] line; an error when the state was
/// not reached.
pub async fn record(
    device: &Device,
    action: StartStop,
    opts: &WaitOptions,
) -> Result<(), ToolError> {
    run(device, Engine::Record, action, opts).await
}

async fn run(
    device: &Device,
    engine: Engine,
    action: StartStop,
    opts: &WaitOptions,
) -> Result<(), ToolError> {
    let conn = HeloConnection::connect(device).await?;
    let transition = change_state(&conn, engine, action, opts).await?;
    print_json(&transition)?;
    transition.check(device.name().as_str())
}
