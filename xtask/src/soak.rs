//! `cargo xtask soak`: a simulated fleet under random faults for a long while, the
//! supervisor's memory, descriptors, threads, series and scrape time sampled all along;
//! fails if any of them keeps growing after warm-up, if the supervisor dies or stops
//! answering, or if a stream or recording is not back on air once the faults stop.

// The xtask drives other processes from plain threads: wall-clock time is right here.
#![allow(clippy::disallowed_types)]

mod args;
mod fleet;
mod outages;
mod report;
mod sample;
mod schedule;
mod verdict;

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use self::{
    args::Args,
    fleet::Fleet,
    report::{FaultRecord, Report},
    sample::Sample,
    schedule::{Role, Step},
    verdict::Check,
};
use crate::{
    bench::{fleet::bin_dir, procfs},
    run::{cargo, root},
};

/// Longest wait for the supervisor to check every encoder once.
const FIRST_CHECKS: Duration = Duration::from_secs(300);
/// At most this many offending encoders are printed (all are in the report).
const PRINTED_PROBLEMS: usize = 20;

pub(crate) fn run(extra: &[String]) -> Result<(), String> {
    let args = Args::parse(extra)?;
    let root = root();
    cargo(&[
        "build",
        "--release",
        "-p",
        "helo-sim",
        "-p",
        "conn-supervisor",
    ])?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| root.join("target").join("soak-report.md"));
    let dir = work_dir(&root, args.out.as_deref());
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;

    let n = args.encoders;
    let roles: Vec<Role> = (1..=n).map(Role::of).collect();
    let events = schedule::schedule(args.seed, args.fault_phase(), args.fault_every, &roles);
    eprintln!(
        "== soak: {n} encoders, {} min of faults ({} scheduled, seed {}), warm-up {:.1} min, settle {} s ==",
        args.minutes,
        events.iter().filter(|e| e.step == Step::Start).count(),
        args.seed,
        args.warmup().as_secs_f64() / 60.0,
        args.settle.as_secs()
    );

    let mut fleet = Fleet::start(&bin_dir(&root), &dir, n, &args.settings, &args.env)?;
    let first_checks = fleet.wait_checked(FIRST_CHECKS)?;
    eprintln!(
        "   every encoder checked after {:.1} s; faults start now",
        first_checks.as_secs_f64()
    );

    let mut report = Report {
        command: Args::command(extra),
        args: args.clone(),
        settings: fleet.settings.clone(),
        dir: dir
            .strip_prefix(&root)
            .unwrap_or(&dir)
            .display()
            .to_string(),
        first_checks,
        started: report::utc_now(),
        ..Report::default()
    };
    let died = soak(&args, &mut fleet, &events, &mut report);
    if let Some(reason) = &died {
        eprintln!("   stopped early: {reason}");
    }

    let mut checks = Vec::new();
    checks.push(Check::new(
        "supervisor and simulator alive throughout",
        died.is_none(),
        died.clone().unwrap_or_else(|| "both ran to the end".into()),
    ));
    let healthz_failed = report.samples.iter().filter(|s| !s.healthz).count();
    checks.push(Check::new(
        "/healthz answered every sample",
        healthz_failed == 0 && !report.samples.is_empty(),
        format!(
            "{healthz_failed} of {} samples without an answer within 5 s",
            report.samples.len()
        ),
    ));
    checks.extend(verdict::growth(
        &report.samples,
        args.warmup().as_secs_f64(),
        args.fault_phase().as_secs_f64(),
        args.max_rss_growth_kib_per_hour,
        n,
    ));
    if died.is_none() {
        report.problems = final_check(&fleet);
        let shown = report.problems.iter().take(PRINTED_PROBLEMS);
        for p in shown {
            eprintln!("   not back: {p}");
        }
        checks.push(Check::new(
            "every encoder healthy and on air after the settle",
            report.problems.is_empty(),
            if report.problems.is_empty() {
                format!("all {n} encoders healthy; every expected stream and recording active on the device")
            } else {
                format!("{} of {n} encoders not", report.problems.len())
            },
        ));
        let stopped = fleet.stop();
        checks.push(Check::new(
            "supervisor exits 0 on SIGTERM",
            stopped.is_ok(),
            stopped.err().unwrap_or_else(|| "exit 0 within 10 s".into()),
        ));
    }
    drop(fleet);
    report.log = report::LogSummary::of(
        &std::fs::read_to_string(dir.join("conn-supervisor.err")).unwrap_or_default(),
    );
    checks.push(Check::new(
        "no panic in the supervisor's log",
        report.log.panics.is_empty(),
        format!(
            "{} lines mention a panic; {} warnings, {} errors",
            report.log.panics.len(),
            report.log.warnings,
            report.log.errors
        ),
    ));
    report.checks = checks;
    report.finished = report::utc_now();

    write_csvs(&dir, &report)?;
    let text = report::render(&report);
    println!("\n{text}");
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(&out, &text).map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!(
        "report written to {}; samples, faults and process logs in {}",
        out.display(),
        dir.display()
    );
    let failed: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.name)
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("soak failed: {}", failed.join("; ")))
    }
}

/// The fault phase and the settle after it: faults on schedule, a sample every
/// `sample_every`. Answers why it stopped early, if it did.
fn soak(
    args: &Args,
    fleet: &mut Fleet,
    events: &[schedule::Event],
    report: &mut Report,
) -> Option<String> {
    let ticks = procfs::clock_ticks();
    let start = Instant::now();
    let end = args.fault_phase() + args.settle;
    let mut next = events.iter().peekable();
    let mut next_sample = Duration::ZERO;
    let mut started_faults = 0;
    loop {
        if let Err(e) = fleet.check_alive() {
            return Some(e);
        }
        let now = start.elapsed();
        while let Some(e) = next.next_if(|e| e.at <= now) {
            let t_s = start.elapsed().as_secs_f64();
            let outcome = fleet.inject(e.encoder, &e.patch);
            if let Err(err) = &outcome {
                eprintln!(
                    "   {t_s:.1} s: {} {} on encoder {} failed: {err}",
                    e.kind.as_str(),
                    e.step.as_str(),
                    e.encoder
                );
            }
            if e.step == Step::Start {
                started_faults += 1;
            }
            report.faults.push(FaultRecord {
                t_s,
                event: e.clone(),
                error: outcome.err(),
            });
        }
        if now >= next_sample {
            let t_s = now.as_secs_f64();
            let s = sample::take(fleet, t_s, ticks, started_faults);
            progress(&s, report.samples.last());
            report.samples.push(s);
            if now >= end {
                return None;
            }
            // Behind schedule (a slow scrape): skip ahead rather than sample in a burst.
            while next_sample <= start.elapsed() {
                next_sample += args.sample_every;
            }
            next_sample = next_sample.min(end);
        }
        let wake = next
            .peek()
            .map_or(next_sample, |e| e.at.min(next_sample))
            .saturating_sub(start.elapsed());
        std::thread::sleep(wake.min(Duration::from_millis(250)));
    }
}

fn progress(s: &Sample, prev: Option<&Sample>) {
    let mut line = format!(
        "   t={:>5.0} s  rss {:>7.1} MiB  fds {:>5}  threads {:>3}  series {:>7}  scrape {:>6.1} ms",
        s.t_s,
        s.rss_kib.unwrap_or(0) as f64 / 1024.0,
        s.fds.unwrap_or(0),
        s.threads.unwrap_or(0),
        s.series.unwrap_or(0),
        s.scrape_ms.unwrap_or(f64::NAN),
    );
    if let Some(f) = &s.fleet {
        let _ = write!(
            line,
            "  healthy {}/{}  streaming {}/{}  recording {}/{}",
            f.count("healthy"),
            f.by_status.values().sum::<usize>(),
            f.streaming,
            f.expect_streaming,
            f.recording,
            f.expect_recording
        );
    }
    if let Some(rate) = prev.and_then(|p| report::request_rate(p, s)) {
        let _ = write!(line, "  {rate:.0} req/s");
    }
    let _ = write!(line, "  faults {}", s.faults);
    if !s.healthz {
        line.push_str("  /healthz FAILED");
    }
    eprintln!("{line}");
}

/// After the settle: every encoder the supervisor calls healthy, and every stream and
/// recording it should keep active is active on the device itself (and the supervisor
/// says so). One line per encoder that is not.
fn final_check(fleet: &Fleet) -> Vec<String> {
    let list = match sample::encoders(&fleet.admin) {
        Ok(list) => list,
        Err(e) => return vec![format!("cannot read /api/encoders: {e}")],
    };
    let mut problems = Vec::new();
    if list.len() != fleet.devices.len() {
        problems.push(format!(
            "/api/encoders lists {} encoders of {}",
            list.len(),
            fleet.devices.len()
        ));
    }
    for e in &list {
        let role = e.role();
        let mut wrong = Vec::new();
        if e.status != "healthy" {
            wrong.push(format!("status {}", e.status));
        }
        let device = if role.streaming || role.recording {
            match fleet.device_replicators(e.k) {
                Ok(states) => Some(states),
                Err(err) => {
                    wrong.push(format!("device state unreadable: {err}"));
                    None
                }
            }
        } else {
            None
        };
        let (dev_stream, dev_record) = device.unwrap_or((None, None));
        let show = |s: &Option<String>| s.clone().unwrap_or_else(|| "?".into());
        if role.streaming {
            if dev_stream != Some(2) {
                wrong.push(format!(
                    "not streaming (device stream_state {dev_stream:?}; supervisor sees {} / {})",
                    show(&e.stream),
                    show(&e.stream_phase)
                ));
            } else if e.stream.as_deref() != Some("streaming") {
                wrong.push(format!(
                    "the device streams but the supervisor says {}",
                    show(&e.stream)
                ));
            }
        }
        if role.recording {
            if dev_record != Some(2) {
                wrong.push(format!(
                    "not recording (device record_state {dev_record:?}; supervisor sees {} / {})",
                    show(&e.record),
                    show(&e.record_phase)
                ));
            } else if e.record.as_deref() != Some("recording") {
                wrong.push(format!(
                    "the device records but the supervisor says {}",
                    show(&e.record)
                ));
            }
        }
        if !wrong.is_empty() {
            let reasons = if e.reasons.is_empty() {
                String::new()
            } else {
                format!(" — reasons: {}", e.reasons.join("; "))
            };
            problems.push(format!("{}: {}{reasons}", e.id, wrong.join(", ")));
        }
    }
    problems
}

/// Where the logs, `fleet.toml` and the CSVs go: `target/soak/`, or beside the report
/// named by `--out` (`X.md` → `X/`), so two soaks can run side by side.
fn work_dir(root: &Path, out: Option<&Path>) -> PathBuf {
    match out {
        Some(out) => out.with_extension(""),
        None => root.join("target").join("soak"),
    }
}

fn write_csvs(dir: &Path, report: &Report) -> Result<(), String> {
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    write("samples.csv", report::samples_csv(&report.samples))?;
    write("faults.csv", report::faults_csv(&report.faults))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logs_go_beside_the_report_so_two_soaks_do_not_share_them() {
        let root = Path::new("/repo");
        assert_eq!(work_dir(root, None), PathBuf::from("/repo/target/soak"));
        assert_eq!(
            work_dir(root, Some(Path::new("target/soak-60min.md"))),
            PathBuf::from("target/soak-60min")
        );
        assert_ne!(
            work_dir(root, Some(Path::new("/tmp/a.md"))),
            work_dir(root, Some(Path::new("/tmp/b.md")))
        );
    }
}
