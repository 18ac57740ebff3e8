//! One device's state: parameter values, the record and stream replicator machines,
//! the lazily computed physics, sessions and event queues.
//!
//! Nothing here ticks. Every access first calls [`DeviceState::advance`], which applies
//! whatever was due (a pending transition, a scheduled stream failure, …) at the instant
//! it was due, so reads are exact without timers. The device task sleeps until
//! [`DeviceState::next_deadline`] only so that waiting event clients hear of changes.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::auth::Sessions;
use crate::events::{ConfigEvent, EventHub};
use crate::params::{rs, Param, Value};
use crate::physics::{Media, Thermal};
use crate::{SimConfig, SimError};

/// The reboot answer goes out before the device drops off the network.
const REBOOT_GRACE: Duration = Duration::from_millis(50);
/// Lower bound between two automatic recovery attempts, so a zero delay cannot spin.
const MIN_RETRY: Duration = Duration::from_millis(10);

/// `t + d`, saturating far in the future instead of panicking on overflow.
pub(crate) fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .or_else(|| t.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(t)
}

/// How an unavailable device behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DownMode {
    /// The listener is closed: connections are refused.
    Refuse,
    /// Protocol requests get `503` with `Retry-After`.
    Answer503,
}

/// A period during which the device is unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Down {
    pub(crate) until: Instant,
    pub(crate) mode: DownMode,
}

/// The record or the stream state machine.
#[derive(Debug, Clone, Copy)]
struct Replicator {
    state: i64,
    /// A command takes effect at this instant with this target state.
    pending: Option<(Instant, i64)>,
    /// When the current recording or stream began.
    since: Option<Instant>,
}

impl Replicator {
    fn idle() -> Self {
        Replicator {
            state: rs::IDLE,
            pending: None,
            since: None,
        }
    }

    fn start(&mut self, at: Instant) {
        match self.pending {
            Some((_, rs::ACTIVE)) => {}
            // A start right after a stop replaces it: how operators recover a failure.
            Some((_, rs::IDLE)) => self.pending = Some((at, rs::ACTIVE)),
            _ if matches!(self.state, rs::IDLE | rs::FAILING_IN_IDLE) => {
                self.pending = Some((at, rs::ACTIVE));
            }
            // Already active, failing (needs a stop first), shut down: ignored, as devices do.
            _ => {}
        }
    }

    fn stop(&mut self, at: Instant) {
        let starting = matches!(self.pending, Some((_, rs::ACTIVE)));
        let running = matches!(
            self.state,
            rs::ACTIVE | rs::FAILING_IN_IDLE | rs::FAILING_ACTIVE
        );
        if starting || (running && !matches!(self.pending, Some((_, rs::IDLE)))) {
            self.pending = Some((at, rs::IDLE));
        }
    }

    fn shutdown(&mut self, at: Instant) {
        if self.state != rs::SHUTDOWN {
            self.pending = Some((at, rs::SHUTDOWN));
        }
    }

    fn busy(&self) -> bool {
        self.state == rs::ACTIVE || matches!(self.pending, Some((_, rs::ACTIVE)))
    }

    fn duration(&self, now: Instant) -> String {
        let secs = match (self.state, self.since) {
            (rs::ACTIVE, Some(since)) => now.saturating_duration_since(since).as_secs(),
            _ => 0,
        };
        format!(
            "{:02}:{:02}:{:02}:{:02}",
            secs / 86_400,
            secs / 3_600 % 24,
            secs / 60 % 60,
            secs % 60
        )
    }
}

/// Something scheduled to happen at an instant.
#[derive(Debug, Clone, Copy)]
enum Happening {
    RecordPending,
    StreamPending,
    StreamFail,
    StreamRecover,
    MediaFull,
    RecallDone,
    Reboot,
}

/// Everything one simulated device knows.
#[derive(Debug)]
pub(crate) struct DeviceState {
    cfg: Arc<SimConfig>,
    values: Vec<Value>,
    record: Replicator,
    stream: Replicator,
    stream_fail_at: Option<Instant>,
    stream_recover_at: Option<Instant>,
    thermal: Thermal,
    media: Media,
    /// When the running recall ends, and its result.
    recall: Option<(Instant, i64)>,
    reboot_at: Option<Instant>,
    pub(crate) sessions: Sessions,
    pub(crate) events: EventHub,
    rng: fastrand::Rng,
    update_counter: u64,
    emitted_temp: i64,
    emitted_media: i64,
    /// Set when the device must go down; taken by the device task.
    down: Option<Down>,
    /// Set when the schedule may have changed; the device task then recomputes its timer.
    dirty: bool,
}

impl DeviceState {
    pub(crate) fn new(cfg: Arc<SimConfig>, now: Instant) -> Self {
        let rng = cfg
            .rng_seed
            .map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed);
        let mut s = DeviceState {
            values: Vec::new(),
            record: Replicator::idle(),
            stream: Replicator::idle(),
            stream_fail_at: None,
            stream_recover_at: None,
            thermal: Thermal::new(cfg.thermal.clone(), now),
            media: Media::new(0.0, 0.0, now),
            recall: None,
            reboot_at: None,
            sessions: Sessions::default(),
            events: EventHub::new(cfg.event_expiry),
            rng,
            update_counter: 0,
            emitted_temp: 0,
            emitted_media: 0,
            down: None,
            dirty: true,
            cfg,
        };
        s.reset(now);
        s
    }

    /// Back to power-on defaults; keeps the random generator and id counters so old
    /// event connection ids stay invalid.
    fn reset(&mut self, now: Instant) {
        let cfg = Arc::clone(&self.cfg);
        self.values = Param::ALL.iter().map(|p| default_value(*p, &cfg)).collect();
        self.record = Replicator::idle();
        self.stream = Replicator::idle();
        self.stream_fail_at = None;
        self.stream_recover_at = None;
        self.thermal = Thermal::new(cfg.thermal.clone(), now);
        self.media = Media::new(
            f64::from(cfg.initial_media_available),
            cfg.media_drain_per_sec,
            now,
        );
        self.recall = None;
        self.reboot_at = None;
        self.sessions.expire_all();
        self.events.clear();
        self.dirty = true;
    }

    // === time ===

    /// Applies, in order, everything that was due up to `now`.
    pub(crate) fn advance(&mut self, now: Instant, start_fails: bool) {
        // Each step clears or moves its own happening; the bound is only a safety net.
        for _ in 0..256 {
            match self.next_happening() {
                Some((t, h)) if t <= now => self.apply(t, h, now, start_fails),
                _ => break,
            }
        }
        self.emit_physics(now);
    }

    /// When something next changes on its own; `None` when nothing will.
    pub(crate) fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let mut next = self.next_happening().map(|(t, _)| t);
        // Temperature and media only need a timer when someone listens for their events.
        if !self.events.is_empty() {
            for t in [self.thermal.next_change(now), self.media.next_change(now)]
                .into_iter()
                .flatten()
            {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        next
    }

    pub(crate) fn take_down(&mut self) -> Option<Down> {
        self.down.take()
    }

    pub(crate) fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    fn next_happening(&self) -> Option<(Instant, Happening)> {
        let media_full = if self.record.state == rs::ACTIVE {
            self.media.full_at()
        } else {
            None
        };
        [
            self.record
                .pending
                .map(|(t, _)| (t, Happening::RecordPending)),
            self.stream
                .pending
                .map(|(t, _)| (t, Happening::StreamPending)),
            self.stream_fail_at.map(|t| (t, Happening::StreamFail)),
            self.stream_recover_at
                .map(|t| (t, Happening::StreamRecover)),
            media_full.map(|t| (t, Happening::MediaFull)),
            self.recall.map(|(t, _)| (t, Happening::RecallDone)),
            self.reboot_at.map(|t| (t, Happening::Reboot)),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|(t, _)| *t)
    }

    fn apply(&mut self, t: Instant, h: Happening, now: Instant, start_fails: bool) {
        self.dirty = true;
        match h {
            Happening::RecordPending => {
                if let Some((_, target)) = self.record.pending.take() {
                    let target = if target == rs::ACTIVE && self.media.at(t) <= 0.0 {
                        rs::FAILING_ACTIVE
                    } else {
                        target
                    };
                    self.set_record(t, target);
                }
            }
            Happening::StreamPending => {
                if let Some((_, target)) = self.stream.pending.take() {
                    let target = if target == rs::ACTIVE && start_fails {
                        rs::FAILING_ACTIVE
                    } else {
                        target
                    };
                    self.set_stream(t, target);
                }
            }
            Happening::StreamFail => {
                self.stream_fail_at = None;
                if self.stream.state == rs::ACTIVE {
                    self.set_stream(t, rs::FAILING_ACTIVE);
                }
            }
            Happening::StreamRecover => {
                self.stream_recover_at = None;
                let recoverable = self.stream.state == rs::FAILING_ACTIVE
                    && self.stream.pending.is_none()
                    && self.auto_recover();
                if recoverable && start_fails {
                    // Failed retries are invisible, so after a long unobserved gap the
                    // next one is simply due from now instead of being replayed.
                    let retry = self.cfg.auto_recover_delay.max(MIN_RETRY);
                    self.stream_recover_at = Some(later(t.max(now), retry));
                } else if recoverable {
                    self.set_stream(t, rs::ACTIVE);
                }
            }
            Happening::MediaFull => self.set_record(t, rs::FAILING_ACTIVE),
            Happening::RecallDone => {
                if let Some((_, result)) = self.recall.take() {
                    self.store(Param::RegisterRecallResult, Value::Int(result), t);
                }
            }
            Happening::Reboot => {
                let mode = if self.cfg.reboot_answers_503 {
                    DownMode::Answer503
                } else {
                    DownMode::Refuse
                };
                self.reset(t);
                self.down = Some(Down {
                    until: later(t, self.cfg.reboot_downtime),
                    mode,
                });
            }
        }
    }

    // === replicator ===

    /// Every stream state change goes through here so timers, physics and events agree.
    fn set_stream(&mut self, t: Instant, state: i64) {
        let before = self.stream.state;
        self.stream.state = state;
        self.stream.since = (state == rs::ACTIVE).then_some(t);
        self.stream_fail_at = if state == rs::ACTIVE {
            self.sample_fail_at(t)
        } else {
            None
        };
        self.stream_recover_at = (state == rs::FAILING_ACTIVE && self.auto_recover())
            .then(|| later(t, self.cfg.auto_recover_delay.max(MIN_RETRY)));
        self.activity_changed(t);
        if before != state {
            self.emit(Param::ReplicatorStreamState, t);
        }
    }

    fn set_record(&mut self, t: Instant, state: i64) {
        let before = self.record.state;
        self.record.state = state;
        self.record.since = (state == rs::ACTIVE).then_some(t);
        self.activity_changed(t);
        if before != state {
            self.emit(Param::ReplicatorRecordState, t);
        }
    }

    fn activity_changed(&mut self, t: Instant) {
        let active = self.record.state == rs::ACTIVE || self.stream.state == rs::ACTIVE;
        self.thermal.set_active(t, active);
        self.media.set_draining(t, self.record.state == rs::ACTIVE);
        self.dirty = true;
    }

    fn active(&self) -> bool {
        self.record.state == rs::ACTIVE || self.stream.state == rs::ACTIVE
    }

    fn auto_recover(&self) -> bool {
        self.values[Param::AutoRecoverStreaming as usize].as_int() == 1
    }

    /// When a stream started at `t` fails: the fixed schedule or a geometric draw from
    /// the per-tick chance, whichever comes first.
    fn sample_fail_at(&mut self, t: Instant) -> Option<Instant> {
        let mut at = self.cfg.stream_fail_after.map(|d| later(t, d));
        let p = self.cfg.stream_fail_chance;
        if p > 0.0 && !self.cfg.stream_fail_tick.is_zero() {
            let ticks = if p >= 1.0 {
                1.0
            } else {
                let u = 1.0 - self.rng.f64();
                (u.ln() / (1.0 - p).ln()).ceil().max(1.0)
            };
            if let Ok(d) =
                Duration::try_from_secs_f64(self.cfg.stream_fail_tick.as_secs_f64() * ticks)
            {
                let c = later(t, d);
                at = Some(at.map_or(c, |a| a.min(c)));
            }
        }
        at
    }

    fn command(&mut self, cmd: i64, now: Instant) -> Result<(), SimError> {
        let at = later(now, self.cfg.transition_delay);
        if matches!(cmd, 1 | 3) && self.values[Param::MediaState as usize].as_int() == 1 {
            return Err(SimError::Rejected {
                param: Param::ReplicatorCommand.name().to_owned(),
                reason: "recording and streaming are unavailable in Data-LAN media mode".to_owned(),
            });
        }
        match cmd {
            1 => self.record.start(at),
            2 => self.record.stop(at),
            3 => self.stream.start(at),
            4 => self.stream.stop(at),
            5 => {
                self.record.shutdown(at);
                self.stream.shutdown(at);
            }
            _ => {}
        }
        self.dirty = true;
        Ok(())
    }

    /// Fails a running (or starting) stream now; an idle one shows FailingInIdle.
    pub(crate) fn fail_stream(&mut self, now: Instant) -> bool {
        if self.stream.busy() {
            self.stream.pending = None;
            self.set_stream(now, rs::FAILING_ACTIVE);
            true
        } else if self.stream.state == rs::IDLE {
            self.set_stream(now, rs::FAILING_IN_IDLE);
            true
        } else {
            false
        }
    }

    /// Fails a running (or starting) recording now; an idle recorder shows FailingInIdle.
    pub(crate) fn fail_record(&mut self, now: Instant) -> bool {
        if self.record.busy() {
            self.record.pending = None;
            self.set_record(now, rs::FAILING_ACTIVE);
            true
        } else if self.record.state == rs::IDLE {
            self.set_record(now, rs::FAILING_IN_IDLE);
            true
        } else {
            false
        }
    }

    pub(crate) fn overheat(&mut self, now: Instant, temp_c: i64) {
        let active = self.active();
        self.thermal.overheat(now, temp_c as f64, active);
        self.emit_physics(now);
        self.dirty = true;
    }

    pub(crate) fn cool_down(&mut self, now: Instant) {
        let active = self.active();
        self.thermal.cool_down(now, active);
        self.emit_physics(now);
        self.dirty = true;
    }

    pub(crate) fn bump_link_errors(&mut self, now: Instant, n: u64) {
        let cur = self.values[Param::LinkErrors as usize].as_int();
        let add = i64::try_from(n).unwrap_or(i64::MAX);
        let next = cur.saturating_add(add).min(i64::from(i32::MAX));
        self.store(Param::LinkErrors, Value::Int(next), now);
    }

    pub(crate) fn reboot(&mut self, now: Instant) {
        self.reboot_at = Some(now);
        self.dirty = true;
    }

    // === parameters ===

    /// A parameter by name (or numeric id), unless this model lacks it.
    pub(crate) fn lookup(&self, key: &str) -> Result<Param, SimError> {
        Param::lookup(key)
            .filter(|p| self.supports(*p))
            .ok_or_else(|| SimError::UnknownParam(key.to_owned()))
    }

    fn supports(&self, p: Param) -> bool {
        !self.cfg.unsupported_params.contains(p.name())
    }

    pub(crate) fn value(&self, p: Param, now: Instant) -> Value {
        match p {
            Param::ReplicatorRecordState => Value::Int(self.record.state),
            Param::ReplicatorStreamState => Value::Int(self.stream.state),
            Param::Temperature => Value::Int(self.thermal.reported(now)),
            Param::CurrentMediaAvailable => Value::Int(self.media.reported(now)),
            Param::RecordingDuration => Value::Text(self.record.duration(now)),
            Param::StreamingDuration => Value::Text(self.stream.duration(now)),
            _ => self.values[p as usize].clone(),
        }
    }

    pub(crate) fn default_of(&self, p: Param) -> Value {
        default_value(p, &self.cfg)
    }

    /// Sets a parameter as a client would; `bypass_readonly` is the test back door.
    pub(crate) fn set(
        &mut self,
        p: Param,
        raw: &str,
        now: Instant,
        bypass_readonly: bool,
    ) -> Result<(), SimError> {
        let read_only = || SimError::ReadOnly(p.name().to_owned());
        if p.spec().readonly && !bypass_readonly {
            return Err(read_only());
        }
        let value = p.parse(raw).map_err(|reason| SimError::InvalidValue {
            param: p.name().to_owned(),
            value: raw.to_owned(),
            reason,
        })?;
        let n = value.as_int();
        self.dirty = true;
        match p {
            Param::ReplicatorCommand => {
                self.command(n, now)?;
                self.store(p, value, now);
            }
            Param::ReplicatorRecordState => {
                self.record.pending = None;
                self.set_record(now, n);
            }
            Param::ReplicatorStreamState => {
                self.stream.pending = None;
                self.set_stream(now, n);
            }
            Param::Temperature => self.overheat(now, n),
            Param::CurrentMediaAvailable => {
                self.media.set(now, n as f64);
                self.emit_physics(now);
            }
            Param::RecordingDuration | Param::StreamingDuration => return Err(read_only()),
            Param::MediaState => {
                if n == 1 && (self.record.busy() || self.stream.busy()) {
                    return Err(SimError::Rejected {
                        param: p.name().to_owned(),
                        reason: "cannot enter Data-LAN mode while recording or streaming"
                            .to_owned(),
                    });
                }
                self.store(p, value, now);
            }
            Param::RegisterRecall => {
                self.store(p, value, now);
                let empty = u8::try_from(n).is_ok_and(|n| self.cfg.empty_presets.contains(&n));
                self.recall = Some((later(now, self.cfg.recall_delay), if empty { 4 } else { 2 }));
                self.store(Param::RegisterRecallResult, Value::Int(1), now);
            }
            Param::Reboot => {
                self.store(p, value, now);
                if n == 1 {
                    self.reboot_at = Some(later(now, REBOOT_GRACE));
                }
            }
            Param::AutoRecoverStreaming => {
                self.store(p, value, now);
                self.stream_recover_at =
                    (n == 1 && self.stream.state == rs::FAILING_ACTIVE).then(|| {
                        self.stream_recover_at
                            .unwrap_or_else(|| later(now, self.cfg.auto_recover_delay))
                    });
            }
            _ => self.store(p, value, now),
        }
        Ok(())
    }

    fn store(&mut self, p: Param, value: Value, now: Instant) {
        let slot = &mut self.values[p as usize];
        if *slot != value {
            *slot = value;
            self.emit(p, now);
        }
    }

    // === events ===

    fn event(&self, p: Param, now: Instant) -> ConfigEvent {
        let v = self.value(p, now);
        ConfigEvent {
            param_id: p.name(),
            param_type: p.spec().kind.type_name(),
            int_value: v.as_int(),
            str_value: p.value_name(&v),
            last_config_update: self.update_counter.to_string(),
        }
    }

    fn emit(&mut self, p: Param, now: Instant) {
        if self.events.is_empty() || !self.supports(p) {
            return;
        }
        self.update_counter += 1;
        let ev = self.event(p, now);
        self.events.push(&ev, now);
    }

    /// Emits temperature and media changes of at least one whole unit.
    fn emit_physics(&mut self, now: Instant) {
        if self.events.is_empty() {
            return;
        }
        let temp = self.thermal.reported(now);
        if temp != self.emitted_temp {
            self.emitted_temp = temp;
            self.emit(Param::Temperature, now);
        }
        let media = self.media.reported(now);
        if media != self.emitted_media {
            self.emitted_media = media;
            self.emit(Param::CurrentMediaAvailable, now);
        }
    }

    /// Opens an event connection; returns its id and the initial values of the
    /// parameters that matter for health.
    pub(crate) fn connect(&mut self, now: Instant) -> (u64, Vec<ConfigEvent>) {
        let id = self.events.connect(now);
        self.emitted_temp = self.thermal.reported(now);
        self.emitted_media = self.media.reported(now);
        self.dirty = true;
        let initial = [
            Param::ReplicatorRecordState,
            Param::ReplicatorStreamState,
            Param::Temperature,
            Param::CurrentMediaAvailable,
            Param::SystemState,
            Param::AutoRecoverStreaming,
            Param::MediaState,
        ]
        .into_iter()
        .filter(|p| self.supports(*p))
        .map(|p| self.event(p, now))
        .collect();
        (id, initial)
    }

    // === authentication ===

    pub(crate) fn auth_required(&self) -> bool {
        self.values[Param::Authentication as usize].as_int() == 1
    }

    /// A session token for a good password (any password when no login is required).
    pub(crate) fn login(&mut self, password: &str, now: Instant) -> Option<String> {
        if self.auth_required() && password != self.cfg.password.as_deref().unwrap_or("") {
            return None;
        }
        Some(self.sessions.open(&mut self.rng, now, self.cfg.session_ttl))
    }

    // === inspection ===

    pub(crate) fn snapshot(&self, now: Instant) -> DeviceSnapshot {
        DeviceSnapshot {
            record_state: self.record.state,
            stream_state: self.stream.state,
            temperature_c: self.thermal.reported(now),
            media_available: self.media.reported(now),
            system_state: self.values[Param::SystemState as usize].as_int(),
            params: Param::ALL
                .iter()
                .filter(|p| self.supports(**p))
                .map(|p| (p.name().to_owned(), self.value(*p, now).to_text()))
                .collect(),
            event_connections: self.events.len(),
            sessions: self.sessions.len(),
        }
    }
}

fn default_value(p: Param, cfg: &SimConfig) -> Value {
    match p {
        Param::SysName => Value::Text(cfg.sys_name.clone()),
        Param::Authentication => Value::Int(i64::from(cfg.password.is_some())),
        Param::AutoRecoverStreaming => Value::Int(i64::from(cfg.auto_recover_streaming)),
        Param::CurrentMediaAvailable => Value::Int(i64::from(cfg.initial_media_available)),
        Param::Temperature => Value::Int(cfg.thermal.baseline_c.round() as i64),
        _ => match p.spec().default {
            crate::params::Initial::Int(n) => Value::Int(n),
            crate::params::Initial::Text(s) => Value::Text(s.to_owned()),
        },
    }
}

/// A copy of a device's state at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceSnapshot {
    /// `eParamID_ReplicatorRecordState` (1 idle, 2 recording, 4 failing in record, …).
    pub record_state: i64,
    /// `eParamID_ReplicatorStreamState` (1 idle, 2 streaming, 4 failing in stream, …).
    pub stream_state: i64,
    /// `eParamID_Temperature`, °C.
    pub temperature_c: i64,
    /// `eParamID_CurrentMediaAvailable`, percent.
    pub media_available: i64,
    /// `eParamID_SystemState`.
    pub system_state: i64,
    /// Every supported parameter's value as the device would send it.
    pub params: std::collections::BTreeMap<String, String>,
    /// Live event connections.
    pub event_connections: usize,
    /// Live login sessions.
    pub sessions: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::WaitStart;

    const MS: Duration = Duration::from_millis(1);

    fn device(cfg: SimConfig) -> (DeviceState, Instant) {
        let t0 = Instant::now();
        (DeviceState::new(Arc::new(cfg), t0), t0)
    }

    fn cfg() -> SimConfig {
        SimConfig {
            transition_delay: 100 * MS,
            rng_seed: Some(1),
            ..SimConfig::default()
        }
    }

    fn at(s: &mut DeviceState, t: Instant) -> DeviceSnapshot {
        s.advance(t, false);
        s.snapshot(t)
    }

    #[test]
    fn stream_starts_after_the_transition_delay_and_stops() {
        let (mut s, t0) = device(cfg());
        s.set(Param::ReplicatorCommand, "3", t0, false).unwrap();
        assert_eq!(at(&mut s, t0 + 99 * MS).stream_state, rs::IDLE);
        assert_eq!(at(&mut s, t0 + 100 * MS).stream_state, rs::ACTIVE);
        assert_eq!(
            s.value(
                Param::StreamingDuration,
                t0 + 100 * MS + Duration::from_secs(3_723)
            ),
            Value::Text("00:01:02:03".to_owned())
        );
        s.set(Param::ReplicatorCommand, "4", t0 + 200 * MS, false)
            .unwrap();
        assert_eq!(at(&mut s, t0 + 300 * MS).stream_state, rs::IDLE);
    }

    #[test]
    fn failed_stream_needs_stop_then_start() {
        let (mut s, t0) = device(cfg());
        s.set(Param::ReplicatorCommand, "3", t0, false).unwrap();
        s.advance(t0 + 100 * MS, false);
        assert!(s.fail_stream(t0 + 100 * MS));
        s.set(Param::ReplicatorCommand, "3", t0 + 110 * MS, false)
            .unwrap();
        assert_eq!(at(&mut s, t0 + 500 * MS).stream_state, rs::FAILING_ACTIVE);
        s.set(Param::ReplicatorCommand, "4", t0 + 500 * MS, false)
            .unwrap();
        s.set(Param::ReplicatorCommand, "3", t0 + 510 * MS, false)
            .unwrap();
        assert_eq!(at(&mut s, t0 + 700 * MS).stream_state, rs::ACTIVE);
    }

    #[test]
    fn scheduled_failure_then_auto_recovery() {
        let (mut s, t0) = device(SimConfig {
            stream_fail_after: Some(Duration::from_secs(1)),
            auto_recover_streaming: true,
            auto_recover_delay: Duration::from_secs(2),
            ..cfg()
        });
        s.set(Param::ReplicatorCommand, "3", t0, false).unwrap();
        assert_eq!(s.next_deadline(t0), Some(t0 + 100 * MS));
        assert_eq!(at(&mut s, t0 + 1099 * MS).stream_state, rs::ACTIVE);
        assert_eq!(at(&mut s, t0 + 1100 * MS).stream_state, rs::FAILING_ACTIVE);
        // Lazily, one late read replays the failure, the recovery and the next failure.
        assert_eq!(at(&mut s, t0 + 3100 * MS).stream_state, rs::ACTIVE);
        assert_eq!(at(&mut s, t0 + 4100 * MS).stream_state, rs::FAILING_ACTIVE);
    }

    #[test]
    fn start_failure_keeps_failing_while_injected() {
        let (mut s, t0) = device(cfg());
        s.set(Param::ReplicatorCommand, "3", t0, false).unwrap();
        s.advance(t0 + 200 * MS, true);
        assert_eq!(s.snapshot(t0).stream_state, rs::FAILING_ACTIVE);
    }

    #[test]
    fn certain_failure_chance_fails_after_one_tick() {
        let (mut s, t0) = device(SimConfig {
            stream_fail_chance: 1.0,
            stream_fail_tick: Duration::from_secs(1),
            ..cfg()
        });
        s.set(Param::ReplicatorCommand, "3", t0, false).unwrap();
        assert_eq!(at(&mut s, t0 + 1099 * MS).stream_state, rs::ACTIVE);
        assert_eq!(at(&mut s, t0 + 1100 * MS).stream_state, rs::FAILING_ACTIVE);
    }

    #[test]
    fn recording_heats_and_drains_media_until_full_fails_it() {
        let (mut s, t0) = device(SimConfig {
            initial_media_available: 10,
            media_drain_per_sec: 1.0,
            transition_delay: Duration::ZERO,
            ..cfg()
        });
        s.set(Param::ReplicatorCommand, "1", t0, false).unwrap();
        let snap = at(&mut s, t0 + Duration::from_secs(5));
        assert_eq!(snap.record_state, rs::ACTIVE);
        assert_eq!(snap.media_available, 5);
        assert_eq!(snap.temperature_c, 41);
        let snap = at(&mut s, t0 + Duration::from_secs(11));
        assert_eq!(snap.record_state, rs::FAILING_ACTIVE);
        assert_eq!(snap.media_available, 0);
    }

    #[test]
    fn data_lan_rejects_start_and_busy_rejects_data_lan() {
        let (mut s, t0) = device(cfg());
        s.set(Param::MediaState, "1", t0, false).unwrap();
        let err = s.set(Param::ReplicatorCommand, "3", t0, false).unwrap_err();
        assert!(matches!(err, SimError::Rejected { .. }), "{err}");
        s.set(Param::MediaState, "0", t0, false).unwrap();
        s.set(Param::ReplicatorCommand, "1", t0, false).unwrap();
        assert!(s.set(Param::MediaState, "1", t0, false).is_err());
    }

    #[test]
    fn recall_reports_recalling_then_result() {
        let mut c = cfg();
        c.recall_delay = 50 * MS;
        c.empty_presets.insert(7);
        let (mut s, t0) = device(c);
        s.set(Param::RegisterRecall, "3", t0, false).unwrap();
        let result = |s: &mut DeviceState, t| {
            s.advance(t, false);
            s.value(Param::RegisterRecallResult, t)
        };
        assert_eq!(result(&mut s, t0), Value::Int(1));
        assert_eq!(result(&mut s, t0 + 50 * MS), Value::Int(2));
        s.set(Param::RegisterRecall, "7", t0 + 60 * MS, false)
            .unwrap();
        assert_eq!(result(&mut s, t0 + 200 * MS), Value::Int(4));
    }

    #[test]
    fn reboot_resets_and_asks_to_go_down() {
        let (mut s, t0) = device(cfg());
        s.set(Param::SysName, "renamed", t0, false).unwrap();
        s.set(Param::Reboot, "1", t0, false).unwrap();
        s.advance(t0 + REBOOT_GRACE, false);
        let down = s.take_down().unwrap();
        assert_eq!(down.mode, DownMode::Refuse);
        assert_eq!(down.until, t0 + REBOOT_GRACE + Duration::from_secs(5));
        assert_eq!(s.value(Param::SysName, t0), Value::Text("HELO".to_owned()));
        assert_eq!(s.value(Param::Reboot, t0), Value::Int(0));
    }

    #[test]
    fn readonly_unless_bypassed_and_unsupported_is_not_found() {
        let mut c = cfg();
        c.unsupported_params
            .insert("eParamID_Temperature".to_owned());
        let (mut s, t0) = device(c);
        let p = s.lookup("eParamID_SystemState").unwrap();
        assert!(matches!(
            s.set(p, "10", t0, false),
            Err(SimError::ReadOnly(_))
        ));
        s.set(p, "10", t0, true).unwrap();
        assert_eq!(s.snapshot(t0).system_state, 10);
        let err = s.lookup("eParamID_Temperature").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Parameter ID 'eParamID_Temperature' not found"
        );
        assert!(!s.snapshot(t0).params.contains_key("eParamID_Temperature"));
    }

    #[test]
    fn events_queue_state_changes_and_temperature_steps() {
        let (mut s, t0) = device(SimConfig {
            transition_delay: Duration::ZERO,
            ..cfg()
        });
        let (id, initial) = s.connect(t0);
        assert!(initial
            .iter()
            .any(|e| e.param_id == "eParamID_ReplicatorStreamState" && e.int_value == 1));
        s.set(Param::ReplicatorCommand, "3", t0, false).unwrap();
        s.advance(t0, false);
        // 40 °C heating at 0.2 °C/s shows 41 at 2.5 s; the device wakes itself for it.
        let wake = s.next_deadline(t0).unwrap();
        assert!(wake > t0 + 2400 * MS && wake < t0 + 2600 * MS, "{wake:?}");
        s.advance(wake, false);
        let events = match s.events.begin_wait(id, wake) {
            Some(WaitStart::Ready(e)) => e,
            other => panic!("{other:?}"),
        };
        let names: Vec<_> = events.iter().map(|e| (e.param_id, e.int_value)).collect();
        assert_eq!(
            names,
            [
                ("eParamID_ReplicatorCommand", 3),
                ("eParamID_ReplicatorStreamState", 2),
                ("eParamID_Temperature", 41)
            ]
        );
        assert_eq!(events[1].str_value, "eRRSStreaming");
        assert_eq!(events[1].param_type, "enum");
    }
}
