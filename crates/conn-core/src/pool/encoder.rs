//! One encoder's pool: its connections, its health, and the upkeep task that keeps
//! `min_warm` of them warm.

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    sync::{Arc, Mutex, MutexGuard, RwLock, Weak},
    time::Duration,
};

use helo_transport::{ConnectionId, Device, HeloError, TimeoutPhase};
use tokio::{sync::Notify, task::JoinHandle, time::Instant};

use super::{control::PoolHooks, pooled::PooledConnection};
use crate::{
    config::PoolConfig,
    conn::{Connector, PoolConn},
    error::CoreError,
    observer::PoolObserver,
    reasons::RetireReason,
    EncoderId,
};

/// Where an encoder's pool stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncoderPoolState {
    /// No connection has been warmed yet, and no warmup has failed.
    Warming,
    /// The last warmup succeeded and at least one connection is usable.
    Ready,
    /// Warmups are failing; the next one is in `retry_in`.
    Unreachable {
        /// Warmups failed in a row.
        consecutive_failures: u32,
        /// Time until the next attempt (zero: due now).
        retry_in: Duration,
    },
    /// The device refused the password; retried only after `auth_failed_backoff` or
    /// [`WarmupManager::retry_now`](crate::WarmupManager::retry_now).
    AuthFailed,
}

impl EncoderPoolState {
    /// `warming`, `ready`, `unreachable` or `auth_failed`, for logs and the admin API.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Warming => "warming",
            Self::Ready => "ready",
            Self::Unreachable { .. } => "unreachable",
            Self::AuthFailed => "auth_failed",
        }
    }

    /// The pool has a usable connection and the device answers.
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Ready)
    }

    /// The device refused the password.
    pub fn is_auth_failed(&self) -> bool {
        matches!(self, Self::AuthFailed)
    }

    /// Warmups are failing.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }
}

/// Counts of one encoder's connections, for the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Warm: idle (or being pinged), ready to hand out.
    pub warm: usize,
    /// Handed out and not yet returned.
    pub checked_out: usize,
    /// Taken out of rotation by a cooling.
    pub cooling: usize,
    /// A warmup is under way.
    pub connecting: bool,
}

/// What every encoder slot of one manager shares.
pub(crate) struct PoolCtx {
    pub(crate) config: PoolConfig,
    pub(crate) observer: Arc<dyn PoolObserver>,
    pub(crate) hooks: RwLock<Option<Weak<dyn PoolHooks>>>,
}

impl PoolCtx {
    fn hooks(&self) -> Option<Arc<dyn PoolHooks>> {
        self.hooks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(Weak::upgrade)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// In the warm set, ready to hand out.
    Idle,
    /// Out of the warm set for a keepalive ping.
    Checking,
    /// Handed out.
    Out,
    /// Held by a cooling: neither warm nor handed out.
    Parked,
}

struct Member<T> {
    conn: T,
    expires_at: Instant,
    last_used: Instant,
    last_checked: Instant,
    status: Status,
    cooling: bool,
}

struct SlotState<T> {
    members: HashMap<ConnectionId, Member<T>>,
    /// Warm connections in hand-out order: the most recently returned (or warmed)
    /// last, handed out first.
    idle: VecDeque<ConnectionId>,
    /// A checkout found nothing idle: demand beyond what is kept warm, so the pool
    /// warms one more (above `min_warm`, it is closed again after `idle_timeout`).
    missed: bool,
    connecting: bool,
    stopped: bool,
    failures: u32,
    auth_failed: bool,
    /// Backoff: no warmup before this.
    next_attempt_at: Option<Instant>,
    /// Pacing: no warmup before this.
    next_connect_at: Option<Instant>,
    reported_warm: Option<usize>,
}

/// Where a returning connection goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Back {
    Unknown,
    NotOut,
    Retire(RetireReason),
    Park,
    Warm,
}

/// Work found by one look at the slot.
pub(crate) enum Action<T> {
    Connect,
    Ping(ConnectionId, T),
    Wait(Option<Instant>),
    Stop,
}

/// Side effects gathered under the lock and run after it is released.
struct Outbox<T> {
    retired: Vec<(T, RetireReason)>,
    warm: Option<usize>,
    notify: bool,
}

impl<T> Outbox<T> {
    fn new() -> Self {
        Self {
            retired: Vec::new(),
            warm: None,
            notify: false,
        }
    }
}

/// One encoder's pool.
pub(crate) struct EncoderSlot<T> {
    pub(crate) encoder: EncoderId,
    device: Device,
    ctx: Arc<PoolCtx>,
    state: Mutex<SlotState<T>>,
    notify: Notify,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl<T> fmt::Debug for EncoderSlot<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncoderSlot")
            .field("encoder", &self.encoder)
            .finish_non_exhaustive()
    }
}

// === impl SlotState ===

impl<T: PoolConn> SlotState<T> {
    fn warm(&self) -> usize {
        self.members
            .values()
            .filter(|m| matches!(m.status, Status::Idle | Status::Checking) && !m.cooling)
            .count()
    }

    /// Live connections that are not past their lifetime, warm or handed out: what
    /// `min_warm` counts. A check holds its connection for milliseconds; warming a
    /// replacement for every checkout would double the connections (and the device's
    /// connection table) for nothing.
    fn fresh_kept(&self, now: Instant) -> usize {
        self.members
            .values()
            .filter(|m| {
                matches!(m.status, Status::Idle | Status::Checking | Status::Out)
                    && !m.cooling
                    && m.expires_at > now
            })
            .count()
    }

    fn owned(&self) -> usize {
        self.members.len() + usize::from(self.connecting)
    }

    fn usable(&self) -> usize {
        self.members
            .values()
            .filter(|m| !m.cooling && !m.conn.is_closed())
            .count()
    }

    fn retire(&mut self, id: ConnectionId, reason: RetireReason, out: &mut Outbox<T>) -> bool {
        let Some(m) = self.members.remove(&id) else {
            return false;
        };
        if m.status == Status::Idle {
            self.idle.retain(|i| *i != id);
        }
        out.retired.push((m.conn, reason));
        out.notify = true;
        true
    }

    fn note_warm(&mut self, out: &mut Outbox<T>) {
        let warm = self.warm();
        if self.reported_warm != Some(warm) {
            self.reported_warm = Some(warm);
            out.warm = Some(warm);
        }
    }
}

/// The earliest future instant seen.
struct Earliest {
    now: Instant,
    at: Option<Instant>,
}

impl Earliest {
    fn see(&mut self, t: Instant) {
        // Only future instants: a past-due item that cannot be acted on must not turn
        // the upkeep loop into a busy loop.
        if t > self.now {
            self.at = Some(self.at.map_or(t, |a| a.min(t)));
        }
    }
}

// === impl EncoderSlot ===

impl<T: PoolConn> EncoderSlot<T> {
    pub(crate) fn new(encoder: EncoderId, device: Device, ctx: Arc<PoolCtx>) -> Self {
        Self {
            encoder,
            device,
            ctx,
            state: Mutex::new(SlotState {
                members: HashMap::new(),
                idle: VecDeque::new(),
                missed: false,
                connecting: false,
                stopped: false,
                failures: 0,
                auth_failed: false,
                next_attempt_at: None,
                next_connect_at: None,
                reported_warm: None,
            }),
            notify: Notify::new(),
            task: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SlotState<T>> {
        // Every critical section leaves the state consistent before anything that
        // could panic, so a poisoned lock still guards good data.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_task(&self, task: JoinHandle<()>) {
        *self.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
    }

    pub(crate) fn abort_task(&self) {
        if let Some(t) = self.task.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            t.abort();
        }
    }

    pub(crate) fn wake(&self) {
        self.notify.notify_one();
    }

    fn flush(&self, out: Outbox<T>) {
        let hooks = if out.retired.is_empty() {
            None
        } else {
            self.ctx.hooks()
        };
        for (conn, reason) in out.retired {
            conn.close();
            tracing::debug!(encoder_id = %self.encoder, connection_id = %conn.id(), %reason, "connection retired");
            self.ctx
                .observer
                .connection_retired(&self.encoder, conn.id(), reason);
            if let Some(h) = &hooks {
                h.on_retired(&self.encoder, conn.id());
            }
        }
        if let Some(n) = out.warm {
            self.ctx.observer.warm_connections(&self.encoder, n);
        }
        if out.notify {
            self.notify.notify_one();
        }
    }

    // --- checkout and checkin (synchronous, no I/O) ---

    pub(crate) fn checkout(self: &Arc<Self>) -> Option<PooledConnection<T>> {
        let mut out = Outbox::new();
        let got = {
            let mut st = self.lock();
            let mut got = None;
            // The most recently returned first: one connection serves the checks,
            // needs no keepalive ping, and spares above `min_warm` go idle and retire.
            while let Some(id) = st.idle.pop_back() {
                let closed = match st.members.get(&id) {
                    Some(m) => m.conn.is_closed(),
                    None => continue,
                };
                if closed {
                    st.retire(id, RetireReason::Broken, &mut out);
                    continue;
                }
                if let Some(m) = st.members.get_mut(&id) {
                    m.status = Status::Out;
                    got = Some(m.conn.clone());
                }
                break;
            }
            if got.is_none() && !st.stopped {
                st.missed = true;
            }
            st.note_warm(&mut out);
            got
        };
        // The upkeep task warms what is missing (demand, or a broken one retired) in
        // the background.
        out.notify = true;
        self.flush(out);
        got.map(|conn| PooledConnection::new(conn, self.encoder.clone(), Arc::downgrade(self)))
    }

    pub(crate) fn checkin(&self, conn: &T, broken: bool) {
        let id = conn.id();
        let broken = broken || conn.is_closed();
        if !broken {
            // A hot connection may start cooling here; the pool then parks it below.
            if let Some(h) = self.ctx.hooks() {
                h.on_checkin(&self.encoder, id);
            }
        }
        let now = Instant::now();
        let mut out = Outbox::new();
        {
            let mut st = self.lock();
            let back = match st.members.get(&id) {
                None => Back::Unknown,
                Some(m) if m.status != Status::Out => Back::NotOut,
                Some(_) if broken => Back::Retire(RetireReason::Broken),
                Some(m) if now >= m.expires_at => Back::Retire(RetireReason::Expired),
                Some(m) if m.cooling && st.usable() > 0 => Back::Park,
                Some(_) => Back::Warm,
            };
            match back {
                Back::Unknown => {
                    // Retired while out (reset, cooled, stopped): make sure it is closed.
                    drop(st);
                    conn.close();
                    return;
                }
                Back::NotOut => return,
                Back::Retire(reason) => {
                    st.retire(id, reason, &mut out);
                }
                Back::Park | Back::Warm => {
                    if let Some(m) = st.members.get_mut(&id) {
                        if back == Back::Park {
                            m.status = Status::Parked;
                        } else {
                            m.status = Status::Idle;
                            m.last_used = now;
                            m.last_checked = now;
                            st.idle.push_back(id);
                        }
                    }
                }
            }
            st.note_warm(&mut out);
        }
        out.notify = true;
        self.flush(out);
    }

    // --- control from the thermal model ---

    fn unknown(&self, conn: ConnectionId) -> CoreError {
        CoreError::UnknownConnection {
            encoder: self.encoder.clone(),
            conn,
        }
    }

    pub(crate) fn owns(&self, conn: ConnectionId) -> bool {
        self.lock().members.contains_key(&conn)
    }

    pub(crate) fn usable_count(&self) -> usize {
        self.lock().usable()
    }

    pub(crate) fn begin_cooling(&self, conn: ConnectionId) -> Result<(), CoreError> {
        let mut out = Outbox::new();
        {
            let mut st = self.lock();
            let m = st
                .members
                .get_mut(&conn)
                .ok_or_else(|| self.unknown(conn))?;
            m.cooling = true;
            let idle = m.status == Status::Idle;
            // Degrade, never eject: an encoder's only usable connection stays in
            // rotation while it cools (the thermal layer holds it to its floor load);
            // parking it would leave the encoder with nothing to hand out.
            if idle && st.usable() > 0 {
                if let Some(m) = st.members.get_mut(&conn) {
                    m.status = Status::Parked;
                }
                st.idle.retain(|i| *i != conn);
            }
            st.note_warm(&mut out);
        }
        // The replacement starts warming now, while the connection cools.
        out.notify = true;
        self.flush(out);
        Ok(())
    }

    pub(crate) fn end_cooling(&self, conn: ConnectionId) -> Result<(), CoreError> {
        let now = Instant::now();
        let mut out = Outbox::new();
        {
            let mut st = self.lock();
            let m = st
                .members
                .get_mut(&conn)
                .ok_or_else(|| self.unknown(conn))?;
            m.cooling = false;
            if m.status == Status::Parked {
                if m.conn.is_closed() {
                    st.retire(conn, RetireReason::Broken, &mut out);
                } else {
                    m.status = Status::Idle;
                    m.last_checked = now;
                    st.idle.push_back(conn);
                }
            }
            st.note_warm(&mut out);
        }
        out.notify = true;
        self.flush(out);
        Ok(())
    }

    pub(crate) fn retire(&self, conn: ConnectionId, reason: RetireReason) -> Result<(), CoreError> {
        let mut out = Outbox::new();
        {
            let mut st = self.lock();
            if !st.retire(conn, reason, &mut out) {
                return Err(self.unknown(conn));
            }
            st.note_warm(&mut out);
        }
        self.flush(out);
        Ok(())
    }

    pub(crate) fn retry_now(&self) {
        {
            let mut st = self.lock();
            st.next_attempt_at = None;
        }
        // An operator's "retry now" after a refused password means it: the device's
        // login lockout, which every login source waits for, ends too.
        self.device.clear_login_lockout();
        self.notify.notify_one();
    }

    // --- reading ---

    pub(crate) fn warm_count(&self) -> usize {
        self.lock().warm()
    }

    pub(crate) fn stats(&self) -> PoolStats {
        let st = self.lock();
        let mut s = PoolStats {
            connecting: st.connecting,
            ..PoolStats::default()
        };
        for m in st.members.values() {
            if m.cooling {
                s.cooling += 1;
            } else if m.status == Status::Out {
                s.checked_out += 1;
            } else {
                s.warm += 1;
            }
        }
        s
    }

    pub(crate) fn state(&self) -> EncoderPoolState {
        let now = Instant::now();
        let st = self.lock();
        if st.auth_failed {
            EncoderPoolState::AuthFailed
        } else if st.failures > 0 {
            EncoderPoolState::Unreachable {
                consecutive_failures: st.failures,
                retry_in: st
                    .next_attempt_at
                    .map_or(Duration::ZERO, |t| t.saturating_duration_since(now)),
            }
        } else if st.usable() > 0 {
            EncoderPoolState::Ready
        } else {
            EncoderPoolState::Warming
        }
    }

    // --- upkeep ---

    /// One look at the slot: retire what must go, then say what to do next.
    fn plan(&self, now: Instant) -> Action<T> {
        let cfg = &self.ctx.config;
        let mut out = Outbox::new();
        let action = {
            let mut st = self.lock();
            self.plan_locked(&mut st, cfg, now, &mut out)
        };
        self.flush(out);
        action
    }

    fn plan_locked(
        &self,
        st: &mut SlotState<T>,
        cfg: &PoolConfig,
        now: Instant,
        out: &mut Outbox<T>,
    ) -> Action<T> {
        if st.stopped {
            return Action::Stop;
        }
        // A warm connection found dead goes before anyone can check it out.
        let dead: Vec<ConnectionId> = st
            .idle
            .iter()
            .copied()
            .filter(|id| st.members.get(id).is_some_and(|m| m.conn.is_closed()))
            .collect();
        for id in dead {
            st.retire(id, RetireReason::Broken, out);
        }
        // Surplus warm connections (above min_warm) unused for idle_timeout.
        while st.fresh_kept(now) > cfg.min_warm {
            let stale = st.idle.iter().copied().find(|id| {
                st.members.get(id).is_some_and(|m| {
                    m.expires_at > now
                        && now.saturating_duration_since(m.last_used) >= cfg.idle_timeout
                })
            });
            match stale {
                Some(id) => st.retire(id, RetireReason::Idle, out),
                None => break,
            };
        }
        // Expired warm connections leave once their replacement is warm, so expiry
        // never takes the pool below min_warm; at max_connections there is no room
        // for a replacement, so they leave first and the replacement follows.
        let expired: Vec<ConnectionId> = st
            .idle
            .iter()
            .copied()
            .filter(|id| st.members.get(id).is_some_and(|m| m.expires_at <= now))
            .collect();
        for id in expired {
            if st.fresh_kept(now) >= cfg.min_warm || st.owned() >= cfg.max_connections {
                st.retire(id, RetireReason::Expired, out);
            }
        }
        st.note_warm(out);

        let mut next = Earliest { now, at: None };
        if !st.idle.is_empty() {
            st.missed = false;
        }
        let wanted = st.fresh_kept(now) < cfg.min_warm || st.missed;
        if !st.connecting && wanted && st.owned() < cfg.max_connections {
            let gate = st
                .next_attempt_at
                .into_iter()
                .chain(st.next_connect_at)
                .max();
            match gate {
                Some(g) if g > now => next.see(g),
                _ => {
                    st.connecting = true;
                    return Action::Connect;
                }
            }
        }
        let surplus = st.fresh_kept(now) > cfg.min_warm;
        let mut due = None;
        for id in &st.idle {
            let Some(m) = st.members.get(id) else {
                continue;
            };
            let ping_at = m.last_checked + cfg.keepalive_interval;
            if ping_at <= now {
                due = Some(*id);
                break;
            }
            next.see(ping_at);
            next.see(m.expires_at);
            if surplus {
                next.see(m.last_used + cfg.idle_timeout);
            }
        }
        if let Some(id) = due {
            st.idle.retain(|i| *i != id);
            if let Some(m) = st.members.get_mut(&id) {
                m.status = Status::Checking;
                return Action::Ping(id, m.conn.clone());
            }
        }
        Action::Wait(next.at)
    }

    fn ping_done(&self, id: ConnectionId, ok: bool) {
        let now = Instant::now();
        let mut out = Outbox::new();
        {
            let mut st = self.lock();
            let verdict = st
                .members
                .get(&id)
                .filter(|m| m.status == Status::Checking)
                .map(|m| ok && !m.conn.is_closed());
            match verdict {
                Some(true) => {
                    if let Some(m) = st.members.get_mut(&id) {
                        m.last_checked = now;
                        if m.cooling {
                            m.status = Status::Parked;
                        } else {
                            m.status = Status::Idle;
                            // A pinged connection is an idle spare: it goes back to the
                            // end handed out last, so the one in use stays in use.
                            st.idle.push_front(id);
                        }
                    }
                }
                Some(false) => {
                    tracing::debug!(encoder_id = %self.encoder, connection_id = %id, "keepalive failed");
                    st.retire(id, RetireReason::Broken, &mut out);
                }
                None => {}
            }
            st.note_warm(&mut out);
        }
        self.flush(out);
    }

    async fn warm_one<C: Connector<Conn = T>>(&self, connector: &C) {
        let cfg = &self.ctx.config;
        self.ctx.observer.warmup_attempt(&self.encoder);
        let started = Instant::now();
        let connect = connector.connect(&self.device);
        let limit = cfg.warmup_timeout;
        let result = tokio::time::timeout(limit, async move {
            let conn = connect.await?;
            // Validate with one cheap request: a connection that cannot answer is not warm.
            match conn.ping().await {
                Ok(()) => Ok(conn),
                Err(e) => {
                    conn.close();
                    Err(e)
                }
            }
        })
        .await
        .unwrap_or_else(|_| {
            Err(HeloError::Timeout {
                device: self.encoder.clone(),
                request: "warmup".to_string(),
                phase: TimeoutPhase::Connect,
                after: limit,
            })
        });
        let now = Instant::now();
        let took = now.saturating_duration_since(started);
        let mut out = Outbox::new();
        let mut report = None;
        {
            let mut st = self.lock();
            st.connecting = false;
            match result {
                Ok(conn) if st.stopped => out.retired.push((conn, RetireReason::Stopped)),
                Ok(conn) => {
                    st.failures = 0;
                    st.auth_failed = false;
                    st.next_attempt_at = None;
                    if !cfg.refill_interval.is_zero() {
                        st.next_connect_at = Some(now + cfg.refill_interval);
                    }
                    let lifetime = cfg
                        .max_lifetime
                        .mul_f64(1.0 - cfg.lifetime_jitter * fastrand::f64());
                    let id = conn.id();
                    st.members.insert(
                        id,
                        Member {
                            conn,
                            expires_at: now + lifetime,
                            last_used: now,
                            last_checked: now,
                            status: Status::Idle,
                            cooling: false,
                        },
                    );
                    st.idle.push_back(id);
                    report = Some(Ok(id));
                }
                Err(e) => {
                    st.failures = st.failures.saturating_add(1);
                    let wait = if e.is_wrong_password() {
                        // Retrying cannot fix a wrong password, and hammering the
                        // login page of a small device helps no one. The device's
                        // login lockout is the one clock every login source (pool,
                        // mirror, checks) waits for; without one, our own backoff.
                        st.auth_failed = true;
                        self.device
                            .login_locked_for()
                            .unwrap_or(cfg.auth_failed_backoff)
                    } else {
                        st.auth_failed = false;
                        // A device that said when to come back (503 Retry-After) is
                        // not asked sooner.
                        let backoff = cfg.backoff();
                        let attempt = st.failures.saturating_sub(1);
                        backoff.honour_retry_after(backoff.delay_random(attempt), e.retry_after())
                    };
                    st.next_attempt_at = Some(now + wait);
                    tracing::debug!(
                        encoder_id = %self.encoder, error = %e, failures = st.failures,
                        retry_in = ?wait, "warmup failed"
                    );
                    report = Some(Err(e));
                }
            }
            st.note_warm(&mut out);
        }
        match &report {
            Some(Ok(id)) => self.ctx.observer.warmup_success(&self.encoder, *id, took),
            Some(Err(e)) => self.ctx.observer.warmup_failure(&self.encoder, e),
            None => {}
        }
        self.flush(out);
    }

    /// Closes everything the slot owns; the upkeep task is aborted and awaited.
    pub(crate) async fn stop(&self) {
        let mut out = Outbox::new();
        {
            let mut st = self.lock();
            st.stopped = true;
            let ids: Vec<ConnectionId> = st.members.keys().copied().collect();
            for id in ids {
                st.retire(id, RetireReason::Stopped, &mut out);
            }
            st.note_warm(&mut out);
        }
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        out.notify = false;
        self.flush(out);
    }

    pub(crate) fn config(&self) -> &PoolConfig {
        &self.ctx.config
    }
}

/// The upkeep task of one encoder: warm, ping, evict, wait. It sleeps until the next
/// deadline or a wake-up, so an idle or dead encoder costs nothing between events.
pub(crate) async fn upkeep<C: Connector>(slot: Arc<EncoderSlot<C::Conn>>, connector: Arc<C>) {
    loop {
        match slot.plan(Instant::now()) {
            Action::Stop => return,
            Action::Connect => slot.warm_one(&*connector).await,
            Action::Ping(id, conn) => {
                let ok = match tokio::time::timeout(slot.config().ping_timeout, conn.ping()).await {
                    Ok(Ok(())) => true,
                    // Our own request budget refused the ping: nothing was sent, so the
                    // connection is as alive as it was; retiring it would only cost the
                    // device a new connection and login from the same spent budget.
                    Ok(Err(e)) => e.is_budget_exhausted(),
                    Err(_) => false,
                };
                slot.ping_done(id, ok);
            }
            Action::Wait(deadline) => {
                let woken = slot.notify.notified();
                match deadline {
                    Some(at) => {
                        tokio::select! {
                            _ = tokio::time::sleep_until(at) => {}
                            _ = woken => {}
                        }
                    }
                    None => woken.await,
                }
            }
        }
    }
}
