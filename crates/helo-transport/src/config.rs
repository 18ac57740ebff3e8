//! What a client needs to know about one device: address, password, limits.

use std::{fmt, sync::Arc, time::Duration};

use tokio::time::Instant;

use crate::{
    budget::{BudgetState, RequestBudget},
    error::{AuthFailure, HeloError},
};

/// The name a device is known by in logs, errors and metrics (the encoder id).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceName(Arc<str>);

impl DeviceName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for DeviceName {
    fn from(s: &str) -> Self {
        Self(Arc::from(s))
    }
}

impl From<String> for DeviceName {
    fn from(s: String) -> Self {
        Self(Arc::from(s))
    }
}

impl fmt::Display for DeviceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DeviceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// A device password. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(Arc<str>);

impl Password {
    /// Wraps a password.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Arc::from(secret.into()))
    }

    /// The secret itself; only the login request should call this.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Default time to open a TCP connection (clients in the field use 2–3 s).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Default time for an ordinary request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Default time for one `wait_for_config_events` long poll: above AJA's 50 s hold.
pub const DEFAULT_EVENT_WAIT_TIMEOUT: Duration = Duration::from_secs(65);
/// Default cap on a response body; real answers are a few hundred bytes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default number of requests one connection holds at once, waiting for their turn
/// or on the wire (a health check asks six things at once).
pub const DEFAULT_MAX_QUEUED: usize = 16;
/// Default time a request may wait for its turn on a connection: far above what a
/// healthy device needs to turn a full queue over, so it fires only when the
/// connection carries more than the device answers.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time after a refused password during which no login of the device is sent
/// (pool, mirror, checks and actions alike): retrying cannot fix a wrong password, and
/// a device or a site may lock the account after a few refusals.
pub const DEFAULT_LOGIN_LOCKOUT: Duration = Duration::from_secs(600);

/// Settings for one device. Built with [`DeviceConfig::from_url`] and the `with_*`
/// methods, which validate as they go.
#[derive(Clone, Debug)]
pub struct DeviceConfig {
    name: DeviceName,
    host: String,
    port: u16,
    password: Option<Password>,
    connect_timeout: Duration,
    request_timeout: Duration,
    event_wait_timeout: Duration,
    max_body_bytes: usize,
    max_queued: usize,
    queue_timeout: Duration,
    request_budget: RequestBudget,
    login_lockout: Duration,
}

impl DeviceConfig {
    /// Settings for the device `name` at `url` (`http://host[:port][/]`, or
    /// `host[:port]`; the port defaults to 80), with field defaults for the rest.
    pub fn from_url(name: impl Into<DeviceName>, url: &str) -> Result<Self, HeloError> {
        let name = name.into();
        let (host, port) = parse_url(url).map_err(|detail| HeloError::InvalidConfig {
            device: name.clone(),
            detail: format!("bad url {url:?}: {detail}"),
        })?;
        Ok(Self {
            name,
            host,
            port,
            password: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            event_wait_timeout: DEFAULT_EVENT_WAIT_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_queued: DEFAULT_MAX_QUEUED,
            queue_timeout: DEFAULT_QUEUE_TIMEOUT,
            request_budget: RequestBudget::default(),
            login_lockout: DEFAULT_LOGIN_LOCKOUT,
        })
    }

    /// Sets the password used to log in (none: the device must have authentication off).
    pub fn with_password(mut self, password: Option<Password>) -> Self {
        self.password = password;
        self
    }

    /// Sets the TCP connect timeout.
    pub fn with_connect_timeout(self, t: Duration) -> Result<Self, HeloError> {
        self.check_nonzero("connect_timeout", t)?;
        Ok(Self {
            connect_timeout: t,
            ..self
        })
    }

    /// Sets the timeout of ordinary requests.
    pub fn with_request_timeout(self, t: Duration) -> Result<Self, HeloError> {
        self.check_nonzero("request_timeout", t)?;
        Ok(Self {
            request_timeout: t,
            ..self
        })
    }

    /// Sets the timeout of a `wait_for_config_events` long poll.
    pub fn with_event_wait_timeout(self, t: Duration) -> Result<Self, HeloError> {
        self.check_nonzero("event_wait_timeout", t)?;
        Ok(Self {
            event_wait_timeout: t,
            ..self
        })
    }

    /// Sets the cap on a response body.
    pub fn with_max_body_bytes(self, n: usize) -> Result<Self, HeloError> {
        if n < 64 {
            return Err(HeloError::InvalidConfig {
                device: self.name.clone(),
                detail: format!("max_body_bytes must be at least 64, got {n}"),
            });
        }
        Ok(Self {
            max_body_bytes: n,
            ..self
        })
    }

    /// Sets how many requests one connection holds at once, waiting for their turn
    /// or on the wire (1 to 4096); beyond that its `poll_ready` is pending.
    pub fn with_max_queued(self, n: usize) -> Result<Self, HeloError> {
        if !(1..=4096).contains(&n) {
            return Err(HeloError::InvalidConfig {
                device: self.name.clone(),
                detail: format!("max_queued must be 1 to 4096, got {n}"),
            });
        }
        Ok(Self {
            max_queued: n,
            ..self
        })
    }

    /// Sets how long a request may wait for its turn on a connection.
    pub fn with_queue_timeout(self, t: Duration) -> Result<Self, HeloError> {
        self.check_nonzero("queue_timeout", t)?;
        Ok(Self {
            queue_timeout: t,
            ..self
        })
    }

    /// Sets the request budget of the device: requests per minute, all connections and
    /// sources together, with a burst (both at least 1). A request beyond it fails at
    /// once with [`HeloError::BudgetExhausted`] and is never sent.
    pub fn with_request_budget(self, budget: RequestBudget) -> Result<Self, HeloError> {
        if budget.per_minute == 0 || budget.burst == 0 {
            return Err(HeloError::InvalidConfig {
                device: self.name.clone(),
                detail: format!(
                    "request budget must allow at least 1 request per minute and a burst of 1, got {}/min burst {}",
                    budget.per_minute, budget.burst
                ),
            });
        }
        Ok(Self {
            request_budget: budget,
            ..self
        })
    }

    /// Sets how long after a refused password no login is sent to the device (zero:
    /// every login is sent).
    pub fn with_login_lockout(self, t: Duration) -> Self {
        Self {
            login_lockout: t,
            ..self
        }
    }

    fn check_nonzero(&self, key: &str, t: Duration) -> Result<(), HeloError> {
        if t.is_zero() {
            return Err(HeloError::InvalidConfig {
                device: self.name.clone(),
                detail: format!("{key} must be greater than zero"),
            });
        }
        Ok(())
    }

    /// The device's name.
    pub fn name(&self) -> &DeviceName {
        &self.name
    }
    /// The host name or address.
    pub fn host(&self) -> &str {
        &self.host
    }
    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }
    /// `host:port`, as used in the `Host` header and for connecting.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
    /// The base URL, `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.authority())
    }
    /// The password, if any.
    pub fn password(&self) -> Option<&Password> {
        self.password.as_ref()
    }
    /// The TCP connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }
    /// The timeout of ordinary requests.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }
    /// The timeout of an event long poll.
    pub fn event_wait_timeout(&self) -> Duration {
        self.event_wait_timeout
    }
    /// The cap on a response body.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }
    /// Requests one connection holds at once, waiting or on the wire.
    pub fn max_queued(&self) -> usize {
        self.max_queued
    }
    /// How long a request may wait for its turn on a connection.
    pub fn queue_timeout(&self) -> Duration {
        self.queue_timeout
    }
    /// The device's request budget.
    pub fn request_budget(&self) -> RequestBudget {
        self.request_budget
    }
    /// How long after a refused password no login is sent (zero: no lockout).
    pub fn login_lockout(&self) -> Duration {
        self.login_lockout
    }
}

fn parse_url(url: &str) -> Result<(String, u16), String> {
    let url = url.trim();
    let rest = if let Some(rest) = url.strip_prefix("http://") {
        rest
    } else if url.starts_with("https://") {
        return Err("HELO devices speak plain http".into());
    } else if url.contains("://") {
        return Err("only http:// URLs are supported".into());
    } else {
        url
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err("missing host".into());
    }
    if authority.contains('@') {
        return Err("credentials in the URL are not supported; configure a password".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("unclosed [ in IPv6 host")?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{host:?} in [ ] is not an IPv6 address"));
        }
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err("unexpected text after IPv6 host".into()),
        };
        (host.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err("missing host".into());
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "?#%\\".contains(c))
    {
        return Err("host contains invalid characters".into());
    }
    let port = match port {
        None => 80,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("invalid port {p:?}")),
            Ok(p) => p,
        },
    };
    Ok((host, port))
}

/// One device as shared by all its connections: the configuration, the current login
/// session (so that one re-login serves every connection), the login lockout after a
/// refused password, and the request budget.
///
/// Everything that talks to the device through it shares these: a wrong password
/// stops every login source until [`login_lockout`](DeviceConfig::login_lockout) has
/// passed, and no loop can send more than the
/// [`request_budget`](DeviceConfig::request_budget). A changed configuration means a
/// new `Device`, which starts with neither.
#[derive(Clone, Debug)]
pub struct Device {
    inner: Arc<DeviceInner>,
}

#[derive(Debug)]
struct DeviceInner {
    config: DeviceConfig,
    session: std::sync::Mutex<Session>,
    /// Held while logging in, so that connections finding an expired session at the
    /// same moment log in once between them.
    login_lock: tokio::sync::Mutex<()>,
    budget: BudgetState,
}

/// The session cookie and a generation that grows with each login, so a connection
/// can tell whether another connection has already logged in again; and the lockout
/// after a refused password.
#[derive(Default)]
struct Session {
    cookie: Option<Arc<str>>,
    generation: u64,
    lockout: Option<Lockout>,
}

/// No login before `until`; the device's refusal, answered in its place.
#[derive(Debug, Clone)]
struct Lockout {
    until: Instant,
    failure: AuthFailure,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("cookie", &self.cookie.as_ref().map(|_| "<redacted>"))
            .field("generation", &self.generation)
            .field("lockout", &self.lockout)
            .finish()
    }
}

impl Device {
    /// A device with no session yet.
    pub fn new(config: DeviceConfig) -> Self {
        Self {
            inner: Arc::new(DeviceInner {
                budget: BudgetState::new(config.request_budget),
                config,
                session: std::sync::Mutex::new(Session::default()),
                login_lock: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The device's settings.
    pub fn config(&self) -> &DeviceConfig {
        &self.inner.config
    }

    /// The device's name.
    pub fn name(&self) -> &DeviceName {
        &self.inner.config.name
    }

    /// The current session cookie value and its generation.
    pub(crate) fn session(&self) -> (Option<Arc<str>>, u64) {
        let s = self.lock_session();
        (s.cookie.clone(), s.generation)
    }

    /// Stores a new session cookie and returns its generation.
    pub(crate) fn store_session(&self, cookie: Arc<str>) -> u64 {
        let mut s = self.lock_session();
        s.cookie = Some(cookie);
        s.lockout = None;
        s.generation += 1;
        s.generation
    }

    pub(crate) fn login_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.inner.login_lock
    }

    /// How long logins stay locked after a refused password; `None` when they are not.
    pub fn login_locked_for(&self) -> Option<Duration> {
        let s = self.lock_session();
        let remaining = s
            .lockout
            .as_ref()?
            .until
            .saturating_duration_since(Instant::now());
        (!remaining.is_zero()).then_some(remaining)
    }

    /// Ends a login lockout now, so the next login is sent: for an operator who fixed
    /// the password on the device itself (a changed configuration builds a new
    /// `Device`, which has none).
    pub fn clear_login_lockout(&self) {
        self.lock_session().lockout = None;
    }

    /// The refusal to answer in place of a login, while the lockout lasts.
    pub(crate) fn locked_login(&self) -> Option<AuthFailure> {
        let s = self.lock_session();
        let lockout = s.lockout.as_ref()?;
        (Instant::now() < lockout.until).then(|| lockout.failure.clone())
    }

    /// Records the device's refusal of the password: no login for `login_lockout`.
    pub(crate) fn lock_logins(&self, failure: AuthFailure) {
        let lockout = self.inner.config.login_lockout;
        if lockout.is_zero() {
            return;
        }
        let now = Instant::now();
        // Any length is accepted from configuration; one past the clock's range is
        // as good as a year.
        let until = now
            .checked_add(lockout)
            .unwrap_or(now + Duration::from_secs(365 * 86_400));
        self.lock_session().lockout = Some(Lockout { until, failure });
    }

    /// Takes one request's place in the device's budget, or says how long until one
    /// is free.
    pub(crate) fn take_budget(&self) -> Result<(), Duration> {
        self.inner.budget.take()
    }

    /// Requests refused by the request budget since this `Device` was built.
    pub fn budget_refused(&self) -> u64 {
        self.inner.budget.refused()
    }

    fn lock_session(&self) -> std::sync::MutexGuard<'_, Session> {
        // A poisoned lock only means another thread panicked mid-update of two plain
        // fields; the data is still consistent enough to use.
        self.inner
            .session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, expected: Result<(&str, u16), &str>) {
        let got = parse_url(url);
        match (got, expected) {
            (Ok((h, p)), Ok((eh, ep))) => assert_eq!((h.as_str(), p), (eh, ep), "{url}"),
            (Err(e), Err(frag)) => assert!(e.contains(frag), "{url}: {e}"),
            (got, want) => panic!("{url}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn urls() {
        check("http://10.0.0.5", Ok(("10.0.0.5", 80)));
        check("http://10.0.0.5:8080/", Ok(("10.0.0.5", 8080)));
        check("helo-1.local:81", Ok(("helo-1.local", 81)));
        check("http://[::1]:9000", Ok(("::1", 9000)));
        check("https://x", Err("plain http"));
        check("ftp://x", Err("only http"));
        check("http://", Err("missing host"));
        check("http://h:0", Err("invalid port"));
        check("http://h:99999", Err("invalid port"));
        check("http://u:p@h", Err("credentials"));
        check("http://h st", Err("invalid characters"));
        check("http://[defaults]", Err("not an IPv6 address"));
        check("http://[fe80::1]", Ok(("fe80::1", 80)));
    }

    #[test]
    fn password_never_shows() {
        let cfg = DeviceConfig::from_url("enc", "http://h")
            .unwrap()
            .with_password(Some(Password::new("hunter2")));
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        let dev = Device::new(cfg);
        dev.store_session(Arc::from("tok-secret"));
        let dbg = format!("{dev:?}");
        assert!(
            !dbg.contains("hunter2") && !dbg.contains("tok-secret"),
            "{dbg}"
        );
    }

    #[test]
    fn zero_timeouts_are_rejected() {
        let cfg = DeviceConfig::from_url("enc", "http://h").unwrap();
        let err = cfg
            .clone()
            .with_request_timeout(Duration::ZERO)
            .unwrap_err();
        assert!(err.to_string().contains("request_timeout"), "{err}");
        let err = cfg.clone().with_queue_timeout(Duration::ZERO).unwrap_err();
        assert!(err.to_string().contains("queue_timeout"), "{err}");
    }

    #[test]
    fn queue_bounds() {
        let cfg = DeviceConfig::from_url("enc", "http://h").unwrap();
        assert_eq!(cfg.max_queued(), DEFAULT_MAX_QUEUED);
        assert_eq!(cfg.queue_timeout(), DEFAULT_QUEUE_TIMEOUT);
        for bad in [0, 4097] {
            let err = cfg.clone().with_max_queued(bad).unwrap_err();
            assert!(err.to_string().contains("max_queued"), "{err}");
        }
        let cfg = cfg
            .with_max_queued(1)
            .unwrap()
            .with_queue_timeout(Duration::from_millis(600))
            .unwrap();
        assert_eq!(
            (cfg.max_queued(), cfg.queue_timeout()),
            (1, Duration::from_millis(600))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lockout_ends_by_itself_or_when_cleared() {
        let dev = Device::new(
            DeviceConfig::from_url("enc", "h")
                .unwrap()
                .with_login_lockout(Duration::from_secs(60)),
        );
        assert_eq!(dev.config().login_lockout(), Duration::from_secs(60));
        let refusal = AuthFailure::WrongPassword {
            message: "no".into(),
        };
        dev.lock_logins(refusal.clone());
        assert_eq!(dev.locked_login(), Some(refusal.clone()));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!((dev.locked_login(), dev.login_locked_for()), (None, None));
        dev.lock_logins(refusal);
        assert!(dev.login_locked_for().is_some());
        dev.clear_login_lockout();
        assert_eq!((dev.locked_login(), dev.login_locked_for()), (None, None));
        assert_eq!(
            DeviceConfig::from_url("enc", "h").unwrap().login_lockout(),
            DEFAULT_LOGIN_LOCKOUT
        );
    }

    #[test]
    fn session_generation_grows() {
        let dev = Device::new(DeviceConfig::from_url("enc", "h").unwrap());
        assert_eq!(dev.session().1, 0);
        assert_eq!(dev.store_session(Arc::from("a")), 1);
        assert_eq!(dev.store_session(Arc::from("b")), 2);
        assert_eq!(dev.session().0.as_deref(), Some("b"));
    }
}
