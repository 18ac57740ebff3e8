//! The summary table: every comparison with its same-run baseline, ratio, target and
//! verdict, then the fleet details.

use std::{fmt::Write as _, process::Command};

use super::{fleet, peer, procfs};

/// Medians of the layer benchmarks, ns per request (cumulative stacks).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layers {
    pub(crate) bare: f64,
    pub(crate) thermal: f64,
    pub(crate) health: f64,
    pub(crate) metrics: f64,
}

/// Medians of the warm/cold benchmarks, ns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Warm {
    pub(crate) checkout: f64,
    pub(crate) warm: f64,
    pub(crate) cold: f64,
}

/// Everything measured in one `cargo xtask bench`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Results {
    pub(crate) command: String,
    pub(crate) quick: bool,
    pub(crate) window_s: u64,
    pub(crate) layers: Option<Layers>,
    pub(crate) warm: Option<Warm>,
    pub(crate) runs: Vec<fleet::Run>,
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**MISSED**"
    }
}

fn ns(v: f64) -> String {
    if v >= 1_000.0 {
        format!("{:.2} µs", v / 1_000.0)
    } else {
        format!("{v:.0} ns")
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.0} ms"))
}

fn opt_s(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{:.0} ms", v * 1e3))
}

fn stats(v: &[Option<f64>]) -> (Option<f64>, Option<f64>, usize) {
    let got: Vec<f64> = v.iter().flatten().copied().collect();
    let max = got.iter().copied().reduce(f64::max);
    (fleet::median(&got), max, v.len() - got.len())
}

fn row(out: &mut String, cells: &[&str]) {
    let _ = writeln!(out, "| {} |", cells.join(" | "));
}

/// The markdown summary.
pub(crate) fn render(r: &Results) -> String {
    let mut out = String::new();
    let (cores, model) = procfs::machine();
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let _ = writeln!(out, "## Benchmark summary\n");
    let _ = writeln!(
        out,
        "`{}` — {date}, {cores} cores, {model}{}\n",
        r.command,
        if r.quick {
            " (quick: not for the record)"
        } else {
            ""
        }
    );
    row(
        &mut out,
        &[
            "#",
            "measurement",
            "result",
            "baseline (same run)",
            "ratio",
            "target",
            "verdict",
        ],
    );
    row(&mut out, &["---"; 7]);
    if let Some(l) = r.layers {
        let added = l.metrics - l.bare;
        row(
            &mut out,
            &[
                "1",
                "stack overhead per request (median)",
                &format!("+{} (full stack {})", ns(added), ns(l.metrics)),
                &format!("bare no-op {}", ns(l.bare)),
                &format!("{:.1}×", l.metrics / l.bare),
                "≤ 300 ns added",
                verdict(added <= 300.0),
            ],
        );
        let share = |name: &str, d: f64| format!("{name} +{} ({:.0} %)", ns(d), 100.0 * d / added);
        row(
            &mut out,
            &[
                "1",
                "share per layer",
                &[
                    share("thermal", l.thermal - l.bare),
                    share("health", l.health - l.thermal),
                    share("metrics", l.metrics - l.health),
                ]
                .join(", "),
                "",
                "",
                "",
                "",
            ],
        );
    }
    if let Some(w) = r.warm {
        row(
            &mut out,
            &[
                "2",
                "warm checkout (median)",
                &ns(w.checkout),
                "",
                "",
                "≤ 5 µs",
                verdict(w.checkout <= 5_000.0),
            ],
        );
        row(
            &mut out,
            &[
                "2",
                "warm checkout + 1 read vs cold connect + login + read",
                &format!("warm {}", ns(w.warm)),
                &format!("cold {}", ns(w.cold)),
                &format!("{:.1}× faster", w.cold / w.warm),
                "≥ 10×",
                verdict(w.cold / w.warm >= 10.0),
            ],
        );
    }
    fleet_rows(&mut out, r);
    fleet_details(&mut out, r);
    out
}

fn steady(r: &Results, n: usize, events: bool) -> Option<&fleet::Steady> {
    r.runs
        .iter()
        .filter(|run| run.setup.n == n && run.setup.events == events)
        .find_map(|run| run.steady.as_ref())
}

fn peer_of(r: &Results, n: usize) -> Option<&peer::Peer> {
    r.runs
        .iter()
        .filter(|run| run.setup.n == n)
        .find_map(|run| run.peer.as_ref())
}

/// The RSS goal per encoder at `n` encoders (issue 11), if there is one.
fn rss_target(n: usize) -> Option<f64> {
    match n {
        1_000 => Some(40.0),
        3_000 => Some(32.0),
        _ => None,
    }
}

fn fleet_rows(out: &mut String, r: &Results) {
    let mut sizes: Vec<usize> = r
        .runs
        .iter()
        .filter(|run| run.steady.is_some())
        .map(|run| run.setup.n)
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    for &n in &sizes {
        let Some(e) = steady(r, n, true) else {
            continue;
        };
        let p = peer_of(r, n);
        let item = "3";
        let base = |f: &dyn Fn(&peer::Peer) -> String| {
            p.map_or("–".into(), |p| format!("peer {}", f(p)))
        };
        let ratio = |a: f64, b: Option<f64>| b.map_or("–".into(), |b| format!("{:.2}×", a / b));
        let every = format!(
            "N={n}, every {} s, pool {}",
            e.setup.interval_s,
            e.setup.pool_label()
        );
        row(
            out,
            &[
                item,
                &format!("{every}: CPU per check, all-in"),
                &format!("{:.1} µs", e.cpu_per_check_us()),
                &base(&|p| format!("{:.1} µs", p.cpu_per_check_us())),
                &ratio(e.cpu_per_check_us(), p.map(peer::Peer::cpu_per_check_us)),
                "≤ 100 µs",
                verdict(e.cpu_per_check_us() <= 100.0),
            ],
        );
        let rss_goal = rss_target(n);
        row(
            out,
            &[
                item,
                &format!("{every}: RSS per encoder"),
                &format!("{:.1} KiB", e.rss_per_encoder_kib()),
                &base(&|p| format!("{:.1} KiB", p.rss_per_encoder_kib())),
                &ratio(
                    e.rss_per_encoder_kib(),
                    p.map(peer::Peer::rss_per_encoder_kib),
                ),
                &rss_goal.map_or("–".into(), |g| format!("≤ {g} KiB")),
                rss_goal.map_or("(info)", |g| verdict(e.rss_per_encoder_kib() <= g)),
            ],
        );
        row(
            out,
            &[
                item,
                &format!("{every}: device requests per check"),
                &format!("{:.2}", e.requests_per_check()),
                &base(&|p| format!("{:.2}", p.requests_per_check())),
                &ratio(
                    e.requests_per_check(),
                    p.map(peer::Peer::requests_per_check),
                ),
                "≤ 1.2",
                verdict(e.requests_per_check() <= 1.2),
            ],
        );
        row(
            out,
            &[
                item,
                &format!("{every}: series per encoder, window start → end"),
                &format!("{:.1} → {:.1}", e.series_before, e.series_after),
                "",
                "",
                "≤ 25, unchanged",
                verdict(e.series_after <= 25.0 && e.series_after <= e.series_before),
            ],
        );
        let late = |s: &fleet::Steady| {
            format!(
                "p99 {}, {} of {:.0} > 1 s",
                opt_s(s.lateness_p99_s),
                s.late_over_interval,
                s.checks
            )
        };
        row(
            out,
            &[
                item,
                &format!("{every}: check lateness against schedule"),
                &late(e),
                "",
                "",
                "",
                "(info)",
            ],
        );
    }
    // The cost of one more encoder: the RSS slope between the smallest and the
    // largest size, for the supervisor and the peer alike.
    if let (Some(&lo), Some(&hi)) = (sizes.first(), sizes.last()) {
        if let (Some(a), Some(b)) = (steady(r, lo, true), steady(r, hi, true)) {
            if hi > lo {
                let slope = |x: f64, y: f64| (y - x) / 1024.0 / (hi - lo) as f64;
                let sup = slope(a.rss_unscraped as f64, b.rss_unscraped as f64);
                let peer = peer_of(r, lo)
                    .zip(peer_of(r, hi))
                    .map(|(x, y)| slope(x.rss_bytes as f64, y.rss_bytes as f64));
                row(
                    out,
                    &[
                        "3",
                        &format!("RSS per added encoder (N={lo} → {hi})"),
                        &format!("{sup:.1} KiB"),
                        &peer.map_or("–".into(), |p| format!("peer {p:.1} KiB")),
                        &peer.map_or("–".into(), |p| format!("{:.2}×", sup / p)),
                        "≤ 16 KiB",
                        verdict(sup <= 16.0),
                    ],
                );
            }
        }
    }
    for run in &r.runs {
        let Some(t) = &run.trials else { continue };
        let n = run.setup.n;
        let mode = run.setup.mode();
        let (d_med, d_max, d_miss) = stats(&t.detect_ms);
        let (r_med, r_max, r_miss) = stats(&t.recover_ms);
        let detect_ok = d_miss == 0 && d_max.is_some_and(|m| m <= 250.0);
        row(
            out,
            &[
                "4",
                &format!(
                    "N={n}, {mode}: stream failure → score < 70 ({} trials)",
                    t.detect_ms.len()
                ),
                &format!("median {}, max {}{}", ms(d_med), ms(d_max), missed(d_miss)),
                &format!(
                    "gauge < 70 confirmed in {}/{}",
                    t.gauge_confirmed,
                    t.detect_ms.len()
                ),
                "",
                if run.setup.events {
                    "≤ 250 ms"
                } else {
                    "(≈ interval, 1 s)"
                },
                if run.setup.events {
                    verdict(detect_ok)
                } else {
                    "(info)"
                },
            ],
        );
        row(
            out,
            &[
                "4",
                &format!("N={n}, {mode}: stream failure → eRRSStreaming again"),
                &format!("median {}, max {}{}", ms(r_med), ms(r_max), missed(r_miss)),
                "",
                "",
                "≤ 3 s",
                verdict(r_miss == 0 && r_max.is_some_and(|m| m <= 3_000.0)),
            ],
        );
        row(
            out,
            &[
                "4",
                &format!("N={n}, {mode}: encoder stops answering → unhealthy"),
                &format!("score < 70 after {}", ms(t.hang_unhealthy_ms)),
                "",
                "",
                "(no target)",
                "(info)",
            ],
        );
    }
    for run in &r.runs {
        let Some(s) = &run.scrape else { continue };
        let max = s.times_ms.iter().copied().fold(0.0, f64::max);
        row(
            out,
            &[
                "5",
                &format!("N={}: /metrics scrape", s.n),
                &format!(
                    "median {:.1} ms (max {max:.1}), {:.2} MB, {} series",
                    fleet::median(&s.times_ms).unwrap_or(0.0),
                    s.bytes as f64 / 1e6,
                    s.series
                ),
                &format!("supervisor CPU {:.1} ms per scrape", s.cpu_ms_per_scrape),
                "",
                "(no target)",
                "(info)",
            ],
        );
    }
}

fn missed(n: usize) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} not within the limit)")
    }
}

fn fleet_details(out: &mut String, r: &Results) {
    let runs: Vec<(&fleet::Steady, f64)> = r
        .runs
        .iter()
        .filter_map(|x| x.steady.as_ref().map(|s| (s, x.warm_s)))
        .collect();
    if runs.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nFleet details (steady-state window {} s; min_warm / max_connections as configured; RSS before / after one /metrics scrape):\n",
        r.window_s
    );
    row(
        out,
        &[
            "N",
            "mode",
            "warm/max",
            "warm-up",
            "checks/s",
            "CPU/check",
            "sim CPU/check",
            "RSS",
            "RSS/encoder",
            "requests/check",
            "series/encoder",
            "lateness p50",
            "p99",
            "> 1 s",
            "worst ≤",
            "fds sup/sim",
        ],
    );
    row(out, &["---"; 16]);
    for (s, warm_s) in runs {
        row(
            out,
            &[
                &s.setup.n.to_string(),
                &format!("{}, every {} s", s.setup.mode(), s.setup.interval_s),
                &s.setup.pool_label(),
                &format!("{warm_s:.0} s"),
                &format!("{:.0}", s.checks_per_s()),
                &format!("{:.1} µs", s.cpu_per_check_us()),
                &format!("{:.1} µs", s.sim_cpu_s * 1e6 / s.checks.max(1.0)),
                &format!(
                    "{:.1} / {:.1} MiB",
                    s.rss_unscraped as f64 / (1024.0 * 1024.0),
                    s.rss_bytes as f64 / (1024.0 * 1024.0)
                ),
                &format!(
                    "{:.1} / {:.1} KiB",
                    s.rss_per_encoder_kib(),
                    s.rss_scraped_per_encoder_kib()
                ),
                &format!("{:.2}", s.requests_per_check()),
                &format!("{:.1}", s.series_after),
                &opt_s(s.lateness_p50_s),
                &opt_s(s.lateness_p99_s),
                &format!("{:.0}", s.late_over_interval),
                &s.late_max_bucket.map_or("–".into(), |b| format!("{b} s")),
                &format!("{}/{}", s.supervisor_fds, s.sim_fds),
            ],
        );
    }
    for run in &r.runs {
        let Some(p) = &run.peer else { continue };
        let mib = p.rss_bytes as f64 / (1024.0 * 1024.0);
        row(
            out,
            &[
                &p.n.to_string(),
                &format!("peer poller, every {} s", run.setup.interval_s),
                "–",
                "–",
                &format!("{:.0}", p.checks / p.window_s),
                &format!("{:.1} µs", p.cpu_per_check_us()),
                "–",
                &format!("{mib:.1} MiB"),
                &format!("{:.1} KiB", p.rss_per_encoder_kib()),
                &format!("{:.2}", p.requests_per_check()),
                "–",
                "–",
                "–",
                &format!("{} failed", p.failed),
                "–",
                "–",
            ],
        );
    }
}
