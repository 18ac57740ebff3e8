//! The peer baseline: the simplest poller (`xtask/peer/poller.py`, Python asyncio and
//! aiohttp, six GETs per check on one keep-alive client), run against the same
//! simulator right after the supervisor and measured the same way (`/proc` CPU and
//! RSS of its one process, device requests from the simulator).

// Plain threads driving other processes: wall-clock `std::time::Instant` is right here.
#![allow(clippy::disallowed_types)]

use std::{
    path::Path,
    time::{Duration, Instant},
};

use super::{
    fleet::{self, Options, Setup},
    procfs,
    procs::Proc,
};

/// The peer poller over one window.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) n: usize,
    pub(crate) window_s: f64,
    pub(crate) checks: f64,
    pub(crate) failed: f64,
    pub(crate) cpu_s: f64,
    pub(crate) rss_bytes: u64,
    pub(crate) device_requests: f64,
}

impl Peer {
    pub(crate) fn cpu_per_check_us(&self) -> f64 {
        self.cpu_s * 1e6 / self.checks.max(1.0)
    }
    pub(crate) fn rss_per_encoder_kib(&self) -> f64 {
        self.rss_bytes as f64 / 1024.0 / self.n as f64
    }
    pub(crate) fn requests_per_check(&self) -> f64 {
        self.device_requests / self.checks.max(1.0)
    }
}

/// `(checks, failed)` from the poller's status file.
fn counts(path: &Path) -> Option<(f64, f64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some((it.next()??, it.next()??))
}

/// Starts the poller, waits until every encoder was polled, measures one window.
pub(crate) fn measure(
    opts: &Options,
    setup: Setup,
    dir: &Path,
    sim: &mut Proc,
) -> Result<Peer, String> {
    let script = crate::run::root()
        .join("xtask")
        .join("peer")
        .join("poller.py");
    let status = dir.join("peer-checks.txt");
    let _ = std::fs::remove_file(&status);
    let n = setup.n;
    let mut peer = Proc::spawn(
        "peer-poller",
        Path::new("python3"),
        &[
            script.display().to_string(),
            "--base-port".into(),
            fleet::SIM_BASE_PORT.to_string(),
            "--encoders".into(),
            n.to_string(),
            "--interval".into(),
            setup.interval_s.to_string(),
            "--status".into(),
            status.display().to_string(),
        ],
        &[],
        dir,
    )?;
    // Warm: every encoder polled once (its first check falls within one interval).
    fleet::wait_for(Duration::from_secs(120), || {
        peer.check_alive()?;
        sim.check_alive()?;
        Ok(counts(&status).is_some_and(|(c, _)| c >= n as f64))
    })
    .map_err(|e| format!("the peer poller did not warm up (is aiohttp installed?): {e}"))?;
    std::thread::sleep(Duration::from_secs(5));
    let ticks = procfs::clock_ticks();
    let (c0, f0) = counts(&status).ok_or("no peer status")?;
    let r0 = fleet::sim_requests()?;
    let cpu0 = procfs::cpu_time(peer.pid(), ticks)?;
    let t0 = Instant::now();
    eprintln!("   peer poller window: {:?}", opts.window);
    while t0.elapsed() < opts.window {
        std::thread::sleep(Duration::from_millis(250));
        peer.check_alive()?;
        sim.check_alive()?;
    }
    let cpu1 = procfs::cpu_time(peer.pid(), ticks)?;
    let rss_bytes = procfs::rss_bytes(peer.pid())?;
    let window_s = t0.elapsed().as_secs_f64();
    let r1 = fleet::sim_requests()?;
    // Written every second: both ends lag by up to a second, alike on average.
    let (c1, f1) = counts(&status).ok_or("no peer status")?;
    peer.stop(Duration::from_secs(5));
    let out = Peer {
        n,
        window_s,
        checks: c1 - c0,
        failed: f1 - f0,
        cpu_s: (cpu1 - cpu0).as_secs_f64(),
        rss_bytes,
        device_requests: r1 - r0,
    };
    eprintln!(
        "   peer: {:.1} µs CPU/check, {:.1} KiB RSS/encoder, {:.2} requests/check, {} failed",
        out.cpu_per_check_us(),
        out.rss_per_encoder_kib(),
        out.requests_per_check(),
        out.failed
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_status_file() {
        let dir = std::env::temp_dir().join(format!("peer-status-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.txt");
        assert_eq!(counts(&path), None);
        std::fs::write(&path, "1200 3\n").unwrap();
        assert_eq!(counts(&path), Some((1200.0, 3.0)));
        std::fs::write(&path, "garbage").unwrap();
        assert_eq!(counts(&path), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
