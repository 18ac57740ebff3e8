//! Fleet scale, detection/recovery and scrape cost: `helo-sim` serving N encoders in
//! one process, `conn-supervisor` in another, health interval compressed to 1 s.

// The xtask drives other processes from plain threads: there is no tokio clock to
// follow, so wall-clock `std::time::Instant` is the right tool here.
#![allow(clippy::disallowed_types)]

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use super::{http, procfs, procs::Proc, prom};

pub(crate) const SIM_BASE_PORT: u16 = 20_000;
const ADMIN: &str = "127.0.0.1:19990";
const CONTROL: &str = "127.0.0.1:19991";
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Descriptors per process (`ulimit -n`); the sim needs one per listener and one per
/// connection, so large fleets get one pooled connection per encoder.
const FD_BUDGET: usize = 19_000;

/// What to run and where.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) bin_dir: PathBuf,
    /// The supervisor binary (default: `bin_dir`'s), e.g. an older build to compare.
    pub(crate) supervisor: Option<PathBuf>,
    pub(crate) out_dir: PathBuf,
    pub(crate) window: Duration,
    pub(crate) trials: usize,
    /// Also run the peer poller (`xtask/peer/poller.py`) against the same simulator.
    pub(crate) peer: bool,
}

/// How one fleet is configured. `None`: the supervisor's default.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Setup {
    pub(crate) n: usize,
    pub(crate) events: bool,
    pub(crate) min_warm: Option<usize>,
    pub(crate) max_connections: Option<usize>,
    /// `check_interval` (and `unhealthy_interval`), seconds.
    pub(crate) interval_s: u64,
    /// `max_lifetime`, seconds (connection churn).
    pub(crate) max_lifetime_s: Option<u64>,
}

impl Setup {
    /// The supervisor as a user gets it: every pool and event setting at its default,
    /// checks every `interval_s` seconds.
    pub(crate) fn defaults(n: usize, interval_s: u64) -> Self {
        Self {
            n,
            events: true,
            min_warm: None,
            max_connections: None,
            interval_s,
            max_lifetime_s: None,
        }
    }

    /// The compressed setup of the fault and scrape measurements: 1 s checks, one warm
    /// connection, as many pooled connections as descriptors allow.
    pub(crate) fn new(n: usize, events: bool) -> Self {
        // The pool refills while a connection is checked out, so it holds up to
        // max_connections per encoder; plus the listener and the event connection.
        // Both modes of one size get the same pool, so they compare.
        let per_encoder = |max: usize| 1 + max + 1;
        let max_connections = if n * per_encoder(2) + 100 <= FD_BUDGET {
            2
        } else {
            1
        };
        Self {
            n,
            events,
            min_warm: Some(1),
            max_connections: Some(max_connections),
            interval_s: 1,
            max_lifetime_s: None,
        }
    }

    /// `min_warm/max_connections` as configured (`d`: default).
    pub(crate) fn pool_label(&self) -> String {
        let v = |x: Option<usize>| x.map_or("d".to_string(), |x| x.to_string());
        format!("{}/{}", v(self.min_warm), v(self.max_connections))
    }

    pub(crate) fn mode(&self) -> &'static str {
        if self.events {
            "events"
        } else {
            "polling"
        }
    }
}

/// The supervisor in steady state over one window.
#[derive(Debug, Clone)]
pub(crate) struct Steady {
    pub(crate) setup: Setup,
    /// Series carrying an `encoder_id`, per encoder, at the start and the end of the
    /// window.
    pub(crate) series_before: f64,
    pub(crate) series_after: f64,
    pub(crate) window_s: f64,
    pub(crate) checks: f64,
    pub(crate) cpu_s: f64,
    pub(crate) sim_cpu_s: f64,
    /// RSS at the start of the window, before any `/metrics` scrape.
    pub(crate) rss_unscraped: u64,
    /// RSS at the end of the window (after one scrape).
    pub(crate) rss_bytes: u64,
    pub(crate) device_requests: f64,
    pub(crate) lateness_p99_s: Option<f64>,
    pub(crate) lateness_p50_s: Option<f64>,
    pub(crate) late_over_interval: f64,
    pub(crate) late_max_bucket: Option<f64>,
    pub(crate) supervisor_fds: usize,
    pub(crate) sim_fds: usize,
}

impl Steady {
    pub(crate) fn cpu_per_check_us(&self) -> f64 {
        self.cpu_s * 1e6 / self.checks.max(1.0)
    }
    /// Before any scrape.
    pub(crate) fn rss_per_encoder_kib(&self) -> f64 {
        self.rss_unscraped as f64 / 1024.0 / self.setup.n as f64
    }
    /// After one scrape.
    pub(crate) fn rss_scraped_per_encoder_kib(&self) -> f64 {
        self.rss_bytes as f64 / 1024.0 / self.setup.n as f64
    }
    pub(crate) fn requests_per_check(&self) -> f64 {
        self.device_requests / self.checks.max(1.0)
    }
    pub(crate) fn checks_per_s(&self) -> f64 {
        self.checks / self.window_s
    }
}

/// Detection and recovery trials.
#[derive(Debug, Clone, Default)]
pub(crate) struct Trials {
    pub(crate) detect_ms: Vec<Option<f64>>,
    pub(crate) recover_ms: Vec<Option<f64>>,
    pub(crate) hang_unhealthy_ms: Option<f64>,
    /// Trials whose `helo_connection_health` gauge was seen below 70 afterwards.
    pub(crate) gauge_confirmed: usize,
    /// Median time of one poll of the admin API (the figures above come from the
    /// status's own timestamp, so they do not depend on it).
    pub(crate) poll_ms: f64,
}

/// The cost of scraping `/metrics`.
#[derive(Debug, Clone)]
pub(crate) struct Scrape {
    pub(crate) n: usize,
    pub(crate) times_ms: Vec<f64>,
    pub(crate) bytes: usize,
    pub(crate) series: usize,
    pub(crate) cpu_ms_per_scrape: f64,
}

/// Everything one fleet run measured.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub(crate) setup: Setup,
    /// From starting the supervisor until sampled encoders were checked and up.
    pub(crate) warm_s: f64,
    pub(crate) steady: Option<Steady>,
    /// The peer poller against the same simulator, after the supervisor stopped.
    pub(crate) peer: Option<super::peer::Peer>,
    pub(crate) trials: Option<Trials>,
    pub(crate) scrape: Option<Scrape>,
}

/// Starts the two processes, measures what is asked, stops them.
pub(crate) fn run(
    opts: &Options,
    setup: Setup,
    steady: bool,
    trials: bool,
    scrape: bool,
) -> Result<Run, String> {
    let n = setup.n;
    let dir = opts.out_dir.join(format!("n{n}-{}", setup.mode()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let streaming = if trials { opts.trials.min(n) } else { 0 };
    let config = config_text(setup, streaming);
    let config_path = dir.join("fleet.toml");
    std::fs::write(&config_path, config).map_err(|e| format!("{}: {e}", config_path.display()))?;
    eprintln!(
        "== fleet: {n} encoders, {}, every {} s (min_warm/max_connections {}) ==",
        setup.mode(),
        setup.interval_s,
        setup.pool_label()
    );

    let mut sim = Proc::spawn(
        "helo-sim",
        &opts.bin_dir.join("helo-sim"),
        &[
            "--listen".into(),
            format!("127.0.0.1:{SIM_BASE_PORT}"),
            "--encoders".into(),
            n.to_string(),
            "--control".into(),
            CONTROL.into(),
            "--seed".into(),
            "7".into(),
        ],
        &[("RUST_LOG", "warn")],
        &dir,
    )?;
    wait_for(Duration::from_secs(60), || {
        sim.check_alive()?;
        Ok(http::get(CONTROL, "/sim/fleet", HTTP_TIMEOUT).is_ok_and(|r| r.status == 200))
    })
    .map_err(|e| format!("helo-sim did not come up: {e}"))?;
    for k in 1..=streaming {
        start_streaming(k)?;
    }
    for k in 1..=streaming {
        wait_for(Duration::from_secs(10), || Ok(stream_state(k)? == Some(2)))
            .map_err(|e| format!("encoder {k} did not start streaming: {e}"))?;
    }

    let supervisor = opts
        .supervisor
        .clone()
        .unwrap_or_else(|| opts.bin_dir.join("conn-supervisor"));
    let mut sup = Proc::spawn(
        "conn-supervisor",
        &supervisor,
        &[
            "run".into(),
            "--config".into(),
            config_path.display().to_string(),
        ],
        &[("RUST_LOG", "warn")],
        &dir,
    )?;
    let warm_started = Instant::now();
    // Readiness from a sample of encoders through the admin API: a full /metrics
    // scrape of a large fleet is itself heavy (and would inflate the RSS measured).
    let sample: Vec<usize> = (0..20).map(|i| 1 + i * n / 20).collect();
    wait_for(Duration::from_secs(300), || {
        sup.check_alive()?;
        sim.check_alive()?;
        for &k in &sample {
            let Ok(r) = http::get(
                ADMIN,
                &format!("/api/encoders/{}", encoder_id(k)),
                HTTP_TIMEOUT,
            ) else {
                return Ok(false);
            };
            // `"checks":{"count":N,...}` and the status the supervisor computed.
            let checks = r
                .body
                .find("\"checks\":{")
                .and_then(|at| json_number(&r.body[at..], "\"count\":"))
                .unwrap_or(0.0);
            if checks < 3.0 || !r.body.contains("\"status\":\"healthy\"") {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .map_err(|e| format!("the fleet did not warm up: {e}"))?;
    let warm_s = warm_started.elapsed().as_secs_f64();
    eprintln!("   warm after {warm_s:.1} s; settling");
    std::thread::sleep(Duration::from_secs(5));

    let mut out = Run {
        setup,
        warm_s,
        steady: None,
        peer: None,
        trials: None,
        scrape: None,
    };
    if steady {
        out.steady = Some(measure_steady(opts, setup, &mut sup, &mut sim)?);
    }
    if trials {
        out.trials = Some(run_trials(setup, streaming)?);
    }
    if scrape {
        let background = out.steady.as_ref().map(|s| s.cpu_s / s.window_s);
        out.scrape = Some(measure_scrape(n, &sup, background)?);
    }
    sup.check_alive()?;
    sim.check_alive()?;
    sup.stop(Duration::from_secs(10));
    if steady && opts.peer {
        // The device side has seen the supervisor's connections close; let it settle.
        std::thread::sleep(Duration::from_secs(2));
        out.peer = Some(super::peer::measure(opts, setup, &dir, &mut sim)?);
    }
    sim.check_alive()?;
    sim.stop(Duration::from_secs(10));
    Ok(out)
}

fn config_text(setup: Setup, streaming: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# generated by `cargo xtask bench`");
    let _ = writeln!(s, "admin_listen = \"{ADMIN}\"\n");
    let _ = writeln!(s, "[defaults]");
    let _ = writeln!(s, "check_interval = \"{}s\"", setup.interval_s);
    let _ = writeln!(s, "unhealthy_interval = \"{}s\"", setup.interval_s);
    if let Some(v) = setup.min_warm {
        let _ = writeln!(s, "min_warm = {v}");
    }
    if let Some(v) = setup.max_connections {
        let _ = writeln!(s, "max_connections = {v}");
    }
    if let Some(v) = setup.max_lifetime_s {
        let _ = writeln!(s, "max_lifetime = \"{v}s\"");
    }
    let _ = writeln!(s, "events = {}\n", setup.events);
    for k in 1..=setup.n {
        let _ = writeln!(s, "[[encoder]]");
        let _ = writeln!(s, "id = \"{}\"", encoder_id(k));
        let _ = writeln!(s, "url = \"http://{}\"", device_addr(k));
        if k <= streaming {
            let _ = writeln!(s, "expect_streaming = true");
        }
        s.push('\n');
    }
    s
}

/// Encoder `k` (1-based).
pub(crate) fn encoder_id(k: usize) -> String {
    format!("enc-{k:05}")
}

fn device_addr(k: usize) -> String {
    format!("127.0.0.1:{}", usize::from(SIM_BASE_PORT) + k - 1)
}

fn metrics() -> Result<String, String> {
    let r = http::get(ADMIN, "/metrics", HTTP_TIMEOUT)?;
    if r.status == 200 {
        Ok(r.body)
    } else {
        Err(format!("/metrics answered {}", r.status))
    }
}

pub(crate) fn sim_requests() -> Result<f64, String> {
    let r = http::get(CONTROL, "/sim/fleet", HTTP_TIMEOUT)?;
    json_number(&r.body, "\"total\":").ok_or_else(|| format!("no total in {:?}", r.body))
}

fn start_streaming(k: usize) -> Result<(), String> {
    let r = http::get(
        &device_addr(k),
        "/config?action=set&paramid=eParamID_ReplicatorCommand&value=3",
        HTTP_TIMEOUT,
    )?;
    if r.status == 200 {
        Ok(())
    } else {
        Err(format!("start streaming on {k}: {} {}", r.status, r.body))
    }
}

/// The device's own `eParamID_ReplicatorStreamState` (2 = eRRSStreaming).
fn stream_state(k: usize) -> Result<Option<i64>, String> {
    let r = http::get(&device_addr(k), "/sim/state", HTTP_TIMEOUT)?;
    Ok(json_number(&r.body, "\"stream_state\":").map(|v| v as i64))
}

fn inject(k: usize, patch: &str) -> Result<(), String> {
    let r = http::post(
        CONTROL,
        &format!("/sim/fleet/devices/{k}/faults"),
        patch,
        HTTP_TIMEOUT,
    )?;
    if r.status == 200 {
        Ok(())
    } else {
        Err(format!("fault {patch} on {k}: {} {}", r.status, r.body))
    }
}

/// The first number after `key` in a JSON text.
fn json_number(text: &str, key: &str) -> Option<f64> {
    let rest = &text[text.find(key)? + key.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Polls `ready` every 500 ms until it says yes or `limit` passes.
pub(crate) fn wait_for(
    limit: Duration,
    mut ready: impl FnMut() -> Result<bool, String>,
) -> Result<(), String> {
    let start = Instant::now();
    loop {
        if ready()? {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(format!("not ready after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn measure_steady(
    opts: &Options,
    setup: Setup,
    sup: &mut Proc,
    sim: &mut Proc,
) -> Result<Steady, String> {
    let ticks = procfs::clock_ticks();
    // Before the first scrape: the supervisor's own footprint.
    let rss_unscraped = procfs::rss_bytes(sup.pid())?;
    let m0 = metrics()?;
    let r0 = sim_requests()?;
    let c0 = procfs::cpu_time(sup.pid(), ticks)?;
    let s0 = procfs::cpu_time(sim.pid(), ticks)?;
    let t0 = Instant::now();
    eprintln!("   steady-state window: {:?}", opts.window);
    while t0.elapsed() < opts.window {
        std::thread::sleep(Duration::from_millis(250));
        sup.check_alive()?;
        sim.check_alive()?;
    }
    let c1 = procfs::cpu_time(sup.pid(), ticks)?;
    let s1 = procfs::cpu_time(sim.pid(), ticks)?;
    let rss_bytes = procfs::rss_bytes(sup.pid())?;
    let window_s = t0.elapsed().as_secs_f64();
    let r1 = sim_requests()?;
    let m1 = metrics()?;
    let checks =
        prom::sum(&m1, "helo_health_checks_total") - prom::sum(&m0, "helo_health_checks_total");
    let per_encoder = |text: &str| {
        prom::samples(text)
            .filter(|(_, labels, _)| prom::label(labels, "encoder_id").is_some())
            .count() as f64
            / setup.n as f64
    };
    let name = "helo_health_check_lateness_seconds";
    let late = prom::bucket_delta(&prom::buckets(&m0, name), &prom::buckets(&m1, name));
    let late_max_bucket = late
        .iter()
        .scan(0.0, |prev, &(le, n)| {
            let grew = n > *prev;
            *prev = n;
            Some((le, grew))
        })
        .filter(|(_, grew)| *grew)
        .map(|(le, _)| le)
        .last();
    let out = Steady {
        setup,
        series_before: per_encoder(&m0),
        series_after: per_encoder(&m1),
        window_s,
        checks,
        cpu_s: (c1 - c0).as_secs_f64(),
        sim_cpu_s: (s1 - s0).as_secs_f64(),
        rss_unscraped,
        rss_bytes,
        device_requests: r1 - r0,
        lateness_p99_s: prom::quantile(&late, 0.99),
        lateness_p50_s: prom::quantile(&late, 0.5),
        late_over_interval: prom::above(&late, 1.0),
        late_max_bucket,
        supervisor_fds: procfs::fds(sup.pid()),
        sim_fds: procfs::fds(sim.pid()),
    };
    eprintln!(
        "   {:.0} checks/s, {:.1} µs CPU/check, {:.1} KiB RSS/encoder, {:.2} requests/check, lateness p99 {:?} s, series/encoder {:.1} -> {:.1}",
        out.checks_per_s(),
        out.cpu_per_check_us(),
        out.rss_per_encoder_kib(),
        out.requests_per_check(),
        out.lateness_p99_s,
        out.series_before,
        out.series_after
    );
    Ok(out)
}

/// Encoder `k`'s last health status as the admin API shows it: its score and the
/// wall-clock time it was computed (the moment `helo_connection_health` is set from
/// it), plus how long asking took.
fn last_health(k: usize) -> Result<(Option<(f64, f64)>, f64), String> {
    let started = Instant::now();
    let r = http::get(
        ADMIN,
        &format!("/api/encoders/{}", encoder_id(k)),
        HTTP_TIMEOUT,
    )?;
    let took = started.elapsed().as_secs_f64() * 1e3;
    let key = "\"last_health\":{";
    let Some(at) = r.body.find(key) else {
        return Ok((None, took));
    };
    let rest = &r.body[at..];
    let status = json_number(rest, "\"health_score\":").zip(json_number(rest, "\"timestamp\":"));
    Ok((status, took))
}

fn wall_clock() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Polls encoder `k` until a status computed after `t0` (wall clock) scores below 70;
/// answers the milliseconds from `t0` to that status, and whether to keep polling.
fn unhealthy_since(k: usize, t0: f64, polls: &mut Vec<f64>) -> Result<Option<f64>, String> {
    let (status, took) = last_health(k)?;
    polls.push(took);
    Ok(status
        .filter(|&(score, at)| score < 70.0 && at >= t0)
        .map(|(_, at)| (at - t0) * 1e3))
}

fn run_trials(setup: Setup, streaming: usize) -> Result<Trials, String> {
    let mut out = Trials::default();
    let mut polls = Vec::new();
    let limit = Duration::from_secs(15);
    for k in 1..=streaming {
        if stream_state(k)? != Some(2) {
            start_streaming(k)?;
            wait_for(Duration::from_secs(10), || Ok(stream_state(k)? == Some(2)))?;
        }
        let started = Instant::now();
        let t0 = wall_clock();
        inject(k, r#"{"fail_stream": true}"#)?;
        let (mut detect, mut recover) = (None, None);
        while started.elapsed() < limit && (detect.is_none() || recover.is_none()) {
            if detect.is_none() {
                detect = unhealthy_since(k, t0, &mut polls)?;
            }
            if recover.is_none() && stream_state(k)? == Some(2) {
                recover = Some(started.elapsed().as_secs_f64() * 1e3);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // The gauge is set from the same status; confirm it (the series may already be
        // gone when the cooled connection was retired).
        if detect.is_some() {
            let text = metrics()?;
            let gauge = prom::of_encoder(&text, "helo_connection_health", &encoder_id(k));
            if gauge.iter().any(|v| *v < 70.0) {
                out.gauge_confirmed += 1;
            }
        }
        eprintln!(
            "   trial {k} ({}): detected {detect:?} ms, recovered {recover:?} ms",
            setup.mode()
        );
        out.detect_ms.push(detect);
        out.recover_ms.push(recover);
        // Let the recovery settle (the cooled connection is replaced) before the next.
        std::thread::sleep(Duration::from_secs(3));
    }
    // An encoder that stops answering: the `hang` fault holds every request.
    let k = setup.n / 2 + 1;
    let started = Instant::now();
    let t0 = wall_clock();
    inject(k, r#"{"hang": true}"#)?;
    let mut unhealthy = None;
    while started.elapsed() < Duration::from_secs(30) && unhealthy.is_none() {
        unhealthy = unhealthy_since(k, t0, &mut polls)?;
        std::thread::sleep(Duration::from_millis(5));
    }
    inject(k, r#"{"clear": true}"#)?;
    eprintln!(
        "   hang on {k} ({}): score < 70 after {unhealthy:?} ms",
        setup.mode()
    );
    out.hang_unhealthy_ms = unhealthy;
    out.poll_ms = median(&polls).unwrap_or(0.0);
    Ok(out)
}

fn measure_scrape(n: usize, sup: &Proc, background: Option<f64>) -> Result<Scrape, String> {
    let ticks = procfs::clock_ticks();
    let rounds = 10;
    let mut times = Vec::new();
    let mut bytes = 0;
    let mut series = 0;
    let c0 = procfs::cpu_time(sup.pid(), ticks)?;
    let t0 = Instant::now();
    for _ in 0..rounds {
        let started = Instant::now();
        let text = metrics()?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
        bytes = text.len();
        series = prom::samples(&text).count();
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = (procfs::cpu_time(sup.pid(), ticks)? - c0).as_secs_f64();
    let cpu = cpu - background.unwrap_or(0.0) * elapsed;
    let out = Scrape {
        n,
        bytes,
        series,
        cpu_ms_per_scrape: cpu.max(0.0) * 1e3 / rounds as f64,
        times_ms: times,
    };
    eprintln!(
        "   /metrics at {n} encoders: median {:.1} ms, {} bytes, {} series",
        median(&out.times_ms).unwrap_or(0.0),
        out.bytes,
        out.series
    );
    Ok(out)
}

/// The median of some numbers.
pub(crate) fn median(xs: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

/// Where the release binaries are.
pub(crate) fn bin_dir(root: &Path) -> PathBuf {
    root.join("target").join("release")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_and_helpers() {
        let setup = Setup::new(3, true);
        assert_eq!(setup.max_connections, Some(2));
        assert_eq!(Setup::new(5_000, true).max_connections, Some(1));
        assert_eq!(Setup::new(5_000, false).max_connections, Some(1));
        assert_eq!(Setup::new(1_000, true).max_connections, Some(2));
        let defaults = config_text(Setup::defaults(2, 10), 0);
        assert!(defaults.contains("check_interval = \"10s\""));
        assert!(!defaults.contains("min_warm") && !defaults.contains("max_connections"));
        assert_eq!(Setup::defaults(2, 10).pool_label(), "d/d");
        let text = config_text(setup, 1);
        assert!(text.contains("min_warm = 1"));
        assert!(text.contains("check_interval = \"1s\""));
        assert!(text.contains("events = true"));
        assert_eq!(text.matches("[[encoder]]").count(), 3);
        assert_eq!(text.matches("expect_streaming = true").count(), 1);
        assert!(text.contains("url = \"http://127.0.0.1:20002\""));
        assert_eq!(
            json_number(r#"{"a":{"total":42,"x":1}}"#, "\"total\":"),
            Some(42.0)
        );
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[1.0, 2.0]), Some(1.5));
        assert_eq!(median(&[]), None);
    }
}
