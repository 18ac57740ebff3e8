//! The soak's Markdown report and its CSV files.

use std::{collections::BTreeMap, fmt::Write as _, process::Command, time::Duration};

use super::{
    args::Args,
    outages::outages,
    sample::Sample,
    schedule::{Event, Kind, Step},
    verdict::{Check, RSS_GROWTH_PER_HOUR},
};
use crate::bench::procfs;

/// Rows of the time-series table.
const ROWS: usize = 30;
/// Statuses with a column of their own; the rest are summed as "other".
const STATUSES: [&str; 4] = ["healthy", "degraded", "critical", "unreachable"];

/// One fault event as carried out.
#[derive(Debug, Clone)]
pub(crate) struct FaultRecord {
    /// When it was sent, seconds from the start of the fault phase.
    pub(crate) t_s: f64,
    pub(crate) event: Event,
    /// Why helo-sim did not take it.
    pub(crate) error: Option<String>,
}

/// Everything a soak found.
#[derive(Debug, Clone, Default)]
pub(crate) struct Report {
    pub(crate) command: String,
    pub(crate) args: Args,
    /// The supervisor's `[defaults]`.
    pub(crate) settings: Vec<(String, String)>,
    /// Where the logs and CSVs are (`target/soak`, or beside `--out`).
    pub(crate) dir: String,
    /// From starting the supervisor until it had checked every encoder.
    pub(crate) first_checks: Duration,
    pub(crate) started: String,
    pub(crate) finished: String,
    pub(crate) samples: Vec<Sample>,
    pub(crate) faults: Vec<FaultRecord>,
    pub(crate) checks: Vec<Check>,
    /// Encoders not healthy or not on air after the settle.
    pub(crate) problems: Vec<String>,
    /// What the supervisor logged.
    pub(crate) log: LogSummary,
}

/// The supervisor's log (`RUST_LOG=warn`), counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LogSummary {
    pub(crate) warnings: usize,
    pub(crate) errors: usize,
    /// Lines that mention a panic.
    pub(crate) panics: Vec<String>,
    /// The most frequent messages (`LEVEL target: message`, fields dropped), with counts.
    pub(crate) top: Vec<(String, usize)>,
}

impl LogSummary {
    /// Counts the lines of a `tracing` text log without colours.
    pub(crate) fn of(text: &str) -> Self {
        let mut out = Self::default();
        let mut messages: BTreeMap<String, usize> = BTreeMap::new();
        for line in text.lines() {
            // `TIMESTAMP  LEVEL target: message key=value ...`
            let mut words = line.split_whitespace();
            let _time = words.next();
            let level = words.next().unwrap_or("");
            match level {
                "WARN" => out.warnings += 1,
                "ERROR" => out.errors += 1,
                _ => {}
            }
            if line.contains("panicked") {
                out.panics.push(line.chars().take(300).collect());
            }
            if level == "WARN" || level == "ERROR" {
                let rest: Vec<&str> = words.take_while(|w| !w.contains('=')).collect();
                *messages
                    .entry(format!("{level} {}", rest.join(" ")))
                    .or_default() += 1;
            }
        }
        let mut top: Vec<(String, usize)> = messages.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(12);
        out.top = top;
        out
    }
}

/// The current time, UTC, to the second.
pub(crate) fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M:%S UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Requests per second the devices answered between two samples.
pub(crate) fn request_rate(prev: &Sample, s: &Sample) -> Option<f64> {
    let dt = s.t_s - prev.t_s;
    (dt > 0.0).then_some((s.device_requests? - prev.device_requests?) / dt)
}

/// The supervisor's CPU use between two samples, % of one core.
fn cpu_percent(prev: &Sample, s: &Sample) -> Option<f64> {
    let dt = s.t_s - prev.t_s;
    (dt > 0.0).then_some((s.cpu_s? - prev.cpu_s?) / dt * 100.0)
}

/// At most `max` indices of `len`, evenly spread, first and last included.
pub(crate) fn pick(len: usize, max: usize) -> Vec<usize> {
    if len <= max || max < 2 {
        return (0..len.min(max)).collect();
    }
    let mut out: Vec<usize> = (0..max).map(|i| i * (len - 1) / (max - 1)).collect();
    out.dedup();
    out
}

fn machine() -> String {
    let (cores, model) = procfs::machine();
    let ram_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or("unknown".to_string(), |kib| {
            format!("{:.1} GiB", kib / 1024.0 / 1024.0)
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or("unknown".to_string(), |k| k.trim().to_string());
    format!("{cores} cores (`nproc`, {model}), {ram_gib} RAM, kernel {kernel}")
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("–".to_string(), |v| v.to_string())
}

/// The report in Markdown.
pub(crate) fn render(r: &Report) -> String {
    let a = &r.args;
    let mut s = String::new();
    let verdict = if r.checks.iter().all(|c| c.ok) {
        "PASS"
    } else {
        "FAIL"
    };
    let _ = writeln!(
        s,
        "# Soak: {} encoders, {} min — {verdict}\n",
        a.encoders, a.minutes
    );
    let _ = writeln!(s, "- Command: `{}`", r.command);
    let _ = writeln!(s, "- Run: {} to {}", r.started, r.finished);
    let _ = writeln!(s, "- Machine: {}", machine());
    let settings: Vec<String> = r
        .settings
        .iter()
        .map(|(k, v)| format!("{k} = {}", v.trim_matches('"')))
        .collect();
    let _ = writeln!(
        s,
        "- Fleet: one `helo-sim` serving {} encoders (password, sessions expire after 300 s), \
         one `conn-supervisor` ({}); 8 in 10 encoders expect streaming, 1 in 10 streaming \
         and recording, 1 in 10 observed only. Every encoder checked {:.1} s after the admin API answered.",
        a.encoders,
        settings.join(", "),
        r.first_checks.as_secs_f64()
    );
    if !a.env.is_empty() {
        let env: Vec<String> = a.env.iter().map(|(k, v)| format!("`{k}={v}`")).collect();
        let _ = writeln!(
            s,
            "- Supervisor environment besides the soak's: {}",
            env.join(" ")
        );
    }
    let _ = writeln!(
        s,
        "- Faults for {} min, one about every {} s (seed {}); the first {:.1} min are warm-up, \
         left out of the growth verdict; then {} s without faults before the final check. A \
         sample every {} s.",
        a.minutes,
        a.fault_every.as_secs_f64(),
        a.seed,
        a.warmup().as_secs_f64() / 60.0,
        a.settle.as_secs(),
        a.sample_every.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "- RSS bound: {}.\n",
        a.max_rss_growth_kib_per_hour.map_or(
            format!(
                "{:.0} % of the median post-warm-up RSS per hour",
                RSS_GROWTH_PER_HOUR * 100.0
            ),
            |b| format!("{b:.0} KiB per hour")
        )
    );

    let _ = writeln!(s, "## Verdict: {verdict}\n");
    let _ = writeln!(s, "| check | result | detail |\n| --- | --- | --- |");
    for c in &r.checks {
        let result = if c.ok { "pass" } else { "**FAIL**" };
        let _ = writeln!(
            s,
            "| {} | {result} | {} |",
            c.name,
            c.detail.replace('|', "\\|")
        );
    }

    let _ = writeln!(
        s,
        "\n## Over time ({} of {} samples; CPU and request rates since the row above)\n",
        pick(r.samples.len(), ROWS).len(),
        r.samples.len()
    );
    let _ = writeln!(
        s,
        "| t (min) | RSS (MiB) | fds | threads | series | scrape (ms) | supervisor CPU | device req/s | healthy | degraded | critical | unreachable | other | streaming | recording | faults so far | connections opened | load |"
    );
    let _ = writeln!(s, "|{}", " --- |".repeat(18));
    // Short runs sample more often than a tenth of a minute.
    let digits = if a.minutes > 10.0 { 1 } else { 2 };
    let mut prev: Option<&Sample> = None;
    for i in pick(r.samples.len(), ROWS) {
        let x = &r.samples[i];
        let rate = prev
            .and_then(|p| request_rate(p, x))
            .map(|v| format!("{v:.0}"));
        let cpu = prev
            .and_then(|p| cpu_percent(p, x))
            .map(|v| format!("{v:.0} %"));
        let (statuses, other, streaming, recording) = match &x.fleet {
            Some(f) => {
                let named: Vec<String> =
                    STATUSES.iter().map(|st| f.count(st).to_string()).collect();
                let other = f.by_status.values().sum::<usize>()
                    - STATUSES.iter().map(|st| f.count(st)).sum::<usize>();
                (
                    named,
                    other.to_string(),
                    format!("{}/{}", f.streaming, f.expect_streaming),
                    format!("{}/{}", f.recording, f.expect_recording),
                )
            }
            None => (vec!["–".to_string(); 4], "–".into(), "–".into(), "–".into()),
        };
        let _ = writeln!(
            s,
            "| {:.digits$}{} | {} | {} | {} | {} | {} | {} | {} | {} | {other} | {streaming} | {recording} | {} | {} | {} |",
            x.t_s / 60.0,
            if x.healthz { "" } else { " (no /healthz)" },
            opt(x.rss_kib.map(|k| format!("{:.1}", k as f64 / 1024.0))),
            opt(x.fds),
            opt(x.threads),
            opt(x.series),
            opt(x.scrape_ms.map(|m| format!("{m:.0}"))),
            opt(cpu),
            opt(rate),
            statuses.join(" | "),
            x.faults,
            opt(x.connections_opened.map(|c| format!("{c:.0}"))),
            opt(x.load1.map(|l| format!("{l:.1}")))
        );
        prev = Some(x);
    }

    let judged: Vec<&Sample> = r
        .samples
        .iter()
        .filter(|x| x.t_s >= a.warmup().as_secs_f64() && x.t_s <= a.fault_phase().as_secs_f64())
        .filter(|x| x.series_by_metric.is_some())
        .collect();
    if let (Some(first), Some(last)) = (judged.first(), judged.last()) {
        let _ = writeln!(
            s,
            "\n## Series by metric\n\nWhere the series changed between the first and the \
             last sample of the judged window ({} label values then, {} at the end):\n",
            opt(first.label_values),
            opt(last.label_values)
        );
        s.push_str(&series_by_metric(first, last, 12));
    }

    let _ = writeln!(s, "\n## Faults injected\n");
    let started = r
        .faults
        .iter()
        .filter(|f| f.event.step == Step::Start)
        .count();
    let failed = r.faults.iter().filter(|f| f.error.is_some()).count();
    let _ = writeln!(
        s,
        "{started} faults started on {} encoders; {failed} injections failed. Every event \
         with its time and encoder: `{dir}/faults.csv`; every sample: \
         `{dir}/samples.csv`.\n",
        r.faults
            .iter()
            .map(|f| f.event.encoder)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        dir = r.dir
    );
    let _ = writeln!(
        s,
        "| fault | started | ended by the soak | failed to inject | what it does |\n| --- | --- | --- | --- | --- |"
    );
    let mut by_kind: BTreeMap<Kind, (usize, usize, usize)> = BTreeMap::new();
    for f in &r.faults {
        let e = by_kind.entry(f.event.kind).or_default();
        match f.event.step {
            Step::Start => e.0 += 1,
            Step::End => e.1 += 1,
        }
        e.2 += usize::from(f.error.is_some());
    }
    for (kind, _) in Kind::ALL {
        let (st, en, fa) = by_kind.get(&kind).copied().unwrap_or_default();
        let _ = writeln!(
            s,
            "| {} | {st} | {en} | {fa} | {} |",
            kind.as_str(),
            kind.describe()
        );
    }
    let errors: Vec<&FaultRecord> = r.faults.iter().filter(|f| f.error.is_some()).collect();
    for f in errors.iter().take(10) {
        let _ = writeln!(
            s,
            "\n- {:.1} s, {} {} on encoder {}: {}",
            f.t_s,
            f.event.kind.as_str(),
            f.event.step.as_str(),
            f.event.encoder,
            f.error.as_deref().unwrap_or("")
        );
    }

    render_outages(&mut s, r);

    let _ = writeln!(s, "\n## The supervisor's log\n");
    let _ = writeln!(
        s,
        "{} warnings, {} errors, {} panics (`RUST_LOG=warn`, `{}/conn-supervisor.err`). \
         Most frequent:\n",
        r.log.warnings,
        r.log.errors,
        r.log.panics.len(),
        r.dir
    );
    for (message, count) in &r.log.top {
        let _ = writeln!(s, "- {count} × `{}`", message.replace('`', "'"));
    }
    for p in &r.log.panics {
        let _ = writeln!(s, "- panic: `{}`", p.replace('`', "'"));
    }

    let _ = writeln!(s, "\n## After the settle\n");
    if r.problems.is_empty() {
        if r.checks.iter().any(|c| c.name.starts_with("every encoder")) {
            let _ = writeln!(
                s,
                "Every encoder healthy, every expected stream and recording active on the device."
            );
        } else {
            let _ = writeln!(s, "Not checked: the soak stopped early.");
        }
    } else {
        let _ = writeln!(s, "{} encoders not back:\n", r.problems.len());
        for p in &r.problems {
            let _ = writeln!(s, "- {}", p.replace('|', "\\|"));
        }
    }
    s
}

/// Spells of expected streams and recordings off air, by cause, and the longest.
fn render_outages(s: &mut String, r: &Report) {
    let spells = outages(&r.samples, &r.faults);
    let end_s = r.samples.last().map_or(0.0, |x| x.t_s);
    let _ = writeln!(s, "\n## Streams and recordings off air\n");
    let encoders = spells
        .iter()
        .map(|o| o.k)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let never = spells.iter().filter(|o| o.to_s.is_none()).count();
    let _ = writeln!(
        s,
        "As the supervisor reported them (`/api/encoders`), sample by sample: a spell seen \
         in one sample lasted from a moment to two sample periods. {} spells on {encoders} \
         encoders; {never} not back by the last sample. The cause is the last fault started \
         on the encoder before the spell was seen.\n",
        spells.len()
    );
    if spells.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "| cause | spells | median seen off (s) | longest seen off (s) |\n| --- | --- | --- | --- |"
    );
    let mut by_cause: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for o in &spells {
        by_cause
            .entry(o.cause_name())
            .or_default()
            .push(o.seen_off_s(end_s));
    }
    for (cause, times) in &by_cause {
        let longest = times.iter().copied().fold(0.0, f64::max);
        let _ = writeln!(
            s,
            "| {cause} | {} | {:.0} | {longest:.0} |",
            times.len(),
            crate::bench::fleet::median(times).unwrap_or(0.0)
        );
    }
    let mut longest: Vec<_> = spells.iter().collect();
    longest.sort_by(|a, b| b.seen_off_s(end_s).total_cmp(&a.seen_off_s(end_s)));
    let _ = writeln!(
        s,
        "\nLongest:\n\n| encoder | cause | fault at (s) | seen off from (s) | seen back at (s) | seen off (s) |\n| --- | --- | --- | --- | --- | --- |"
    );
    for o in longest.iter().take(5) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.0} | {} | {:.0} |",
            super::sample::encoder_id(o.k),
            o.cause_name(),
            o.cause.map_or("–".into(), |(_, t)| format!("{t:.0}")),
            o.from_s,
            o.to_s.map_or("never".into(), |t| format!("{t:.0}")),
            o.seen_off_s(end_s)
        );
    }
}

/// Every sample as CSV.
pub(crate) fn samples_csv(samples: &[Sample]) -> String {
    let mut s = String::from(
        "t_s,rss_kib,fds,threads,cpu_s,healthz,series,series_max_per_encoder,scrape_ms,\
         metrics_bytes,healthy,degraded,critical,unreachable,other,streaming,expect_streaming,\
         recording,expect_recording,device_requests,faults,load1,connections_opened,\
         series_encoders,label_values\n",
    );
    let o = |v: Option<String>| v.unwrap_or_default();
    for x in samples {
        let fleet = x.fleet.as_ref().map_or(",,,,,,,,".to_string(), |f| {
            let named: usize = STATUSES.iter().map(|st| f.count(st)).sum();
            format!(
                "{},{},{},{},{},{},{},{},{}",
                f.count("healthy"),
                f.count("degraded"),
                f.count("critical"),
                f.count("unreachable"),
                f.by_status.values().sum::<usize>() - named,
                f.streaming,
                f.expect_streaming,
                f.recording,
                f.expect_recording
            )
        });
        let _ = writeln!(
            s,
            "{:.1},{},{},{},{},{},{},{},{},{},{fleet},{},{},{},{},{},{}",
            x.t_s,
            o(x.rss_kib.map(|v| v.to_string())),
            o(x.fds.map(|v| v.to_string())),
            o(x.threads.map(|v| v.to_string())),
            o(x.cpu_s.map(|v| format!("{v:.2}"))),
            x.healthz,
            o(x.series.map(|v| v.to_string())),
            o(x.series_max_per_encoder.map(|v| v.to_string())),
            o(x.scrape_ms.map(|v| format!("{v:.1}"))),
            o(x.metrics_bytes.map(|v| v.to_string())),
            o(x.device_requests.map(|v| format!("{v:.0}"))),
            x.faults,
            o(x.load1.map(|v| format!("{v:.2}"))),
            o(x.connections_opened.map(|v| format!("{v:.0}"))),
            o(x.series_encoders.map(|v| v.to_string())),
            o(x.label_values.map(|v| v.to_string()))
        );
    }
    s
}

/// The metrics whose series changed most between two samples, with their counts then
/// and now: where the series went.
pub(crate) fn series_by_metric(first: &Sample, last: &Sample, rows: usize) -> String {
    let empty = BTreeMap::new();
    let a = first.series_by_metric.as_ref().unwrap_or(&empty);
    let b = last.series_by_metric.as_ref().unwrap_or(&empty);
    let mut changed: Vec<(&str, usize, usize)> = a
        .keys()
        .chain(b.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|m| {
            let n = |x: &BTreeMap<String, usize>| x.get(m).copied().unwrap_or(0);
            (m.as_str(), n(a), n(b))
        })
        .filter(|(_, x, y)| x != y)
        .collect();
    changed.sort_by_key(|&(m, x, y)| (std::cmp::Reverse(x.abs_diff(y)), m));
    let mut s = format!(
        "| metric | series at {:.1} min | at {:.1} min | change |\n| --- | --- | --- | --- |\n",
        first.t_s / 60.0,
        last.t_s / 60.0
    );
    for (m, x, y) in changed.iter().take(rows) {
        let _ = writeln!(s, "| `{m}` | {x} | {y} | {:+} |", *y as i64 - *x as i64);
    }
    if changed.is_empty() {
        s.push_str("| (none changed) | | | |\n");
    }
    s
}

/// A CSV field, quoted.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// Every fault event as CSV.
pub(crate) fn faults_csv(faults: &[FaultRecord]) -> String {
    let mut s = String::from("t_s,scheduled_s,kind,step,encoder,patch,error\n");
    for f in faults {
        let _ = writeln!(
            s,
            "{:.2},{:.2},{},{},{},{},{}",
            f.t_s,
            f.event.at.as_secs_f64(),
            f.event.kind.as_str(),
            f.event.step.as_str(),
            f.event.encoder,
            quoted(&f.event.patch),
            f.error.as_deref().map(quoted).unwrap_or_default()
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soak::sample::FleetStatus;

    #[test]
    fn pick_spreads_rows_evenly_with_both_ends() {
        assert_eq!(pick(5, 30), vec![0, 1, 2, 3, 4]);
        assert_eq!(pick(0, 30), Vec::<usize>::new());
        let p = pick(361, 30);
        assert_eq!(p.len(), 30);
        assert_eq!((p[0], p[29]), (0, 360));
        assert!(p.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(pick(3, 2), vec![0, 2]);
    }

    fn event(kind: Kind, step: Step, encoder: usize) -> Event {
        Event {
            at: Duration::from_secs(1),
            encoder,
            kind,
            step,
            patch: r#"{"hang":true}"#.into(),
        }
    }

    fn report() -> Report {
        let mut by_status = BTreeMap::new();
        by_status.insert("healthy".to_string(), 8);
        by_status.insert("unknown".to_string(), 2);
        let fleet = FleetStatus {
            by_status,
            streaming: 7,
            expect_streaming: 9,
            recording: 1,
            expect_recording: 1,
            off_air: vec![3],
        };
        let samples = (0..3)
            .map(|i| Sample {
                t_s: f64::from(i) * 10.0,
                rss_kib: Some(10_240),
                fds: Some(40),
                threads: Some(6),
                cpu_s: Some(f64::from(i) * 2.0),
                healthz: i != 1,
                series: Some(500),
                scrape_ms: Some(3.0),
                device_requests: Some(f64::from(i) * 1_000.0),
                fleet: Some(fleet.clone()),
                faults: i as usize,
                load1: Some(3.25),
                ..Sample::default()
            })
            .collect();
        Report {
            command: "cargo xtask soak --minutes 1".into(),
            dir: "target/soak-1".into(),
            samples,
            faults: vec![
                FaultRecord {
                    t_s: 1.0,
                    event: event(Kind::Hang, Step::Start, 3),
                    error: None,
                },
                FaultRecord {
                    t_s: 9.0,
                    event: event(Kind::Hang, Step::End, 3),
                    error: Some("answered 404: \"no\"".into()),
                },
                FaultRecord {
                    t_s: 5.0,
                    event: event(Kind::Reboot, Step::Start, 4),
                    error: None,
                },
            ],
            checks: vec![
                Check::new("RSS growth after warm-up", true, "+0 KiB/h"),
                Check::new(
                    "every encoder healthy and on air after the settle",
                    false,
                    "1 of 10",
                ),
            ],
            problems: vec!["enc-00003: status degraded | x".into()],
            log: LogSummary::of(LOG),
            ..Report::default()
        }
    }

    #[test]
    fn series_by_metric_shows_what_changed_most_first() {
        let at = |t_s: f64, counts: &[(&str, usize)]| Sample {
            t_s,
            series_by_metric: Some(counts.iter().map(|(m, n)| (m.to_string(), *n)).collect()),
            ..Sample::default()
        };
        let first = at(
            300.0,
            &[("helo_requests_total", 100), ("helo_up", 10), ("gone", 3)],
        );
        let last = at(
            3_600.0,
            &[
                ("helo_requests_total", 140),
                ("helo_up", 10),
                ("new_total", 5),
            ],
        );
        let table = series_by_metric(&first, &last, 12);
        let rows: Vec<&str> = table.lines().skip(2).collect();
        assert_eq!(
            rows,
            [
                "| `helo_requests_total` | 100 | 140 | +40 |",
                "| `new_total` | 0 | 5 | +5 |",
                "| `gone` | 3 | 0 | -3 |",
            ],
            "{table}"
        );
        assert!(table.starts_with("| metric | series at 5.0 min | at 60.0 min |"));
        assert!(series_by_metric(&first, &first, 12).contains("(none changed)"));
    }

    #[test]
    fn the_report_has_the_verdict_the_series_and_every_fault_kind() {
        let text = render(&report());
        assert!(
            text.starts_with("# Soak: 1000 encoders, 60 min — FAIL"),
            "{text}"
        );
        assert!(text.contains(
            "| every encoder healthy and on air after the settle | **FAIL** | 1 of 10 |"
        ));
        assert!(text.contains("- 2 × `WARN conn_supervisor::supervise: stream not streaming`"));
        assert!(text.contains("2 warnings, 1 errors, 1 panics"), "{text}");
        assert!(text.contains("`target/soak-1/faults.csv`"), "{text}");
        assert!(
            text.contains("`target/soak-1/conn-supervisor.err`"),
            "{text}"
        );
        assert!(text.contains("| 0.2 (no /healthz) | 10.0 | 40 | 6 | 500 | 3 | 20 % | 100 | 8 | 0 | 0 | 0 | 2 | 7/9 | 1/1 | 1 | – | 3.2 |"), "{text}");
        assert!(!text.contains("Supervisor environment"), "{text}");
        assert!(text.contains("| hang | 1 | 1 | 1 |"), "{text}");
        assert!(text.contains("| reboot | 1 | 0 | 0 |"));
        assert!(text.contains("| overheat | 0 | 0 | 0 |"));
        assert!(text.contains("2 faults started on 2 encoders; 1 injections failed"));
        assert!(text.contains("- enc-00003: status degraded \\| x"));
        // Encoder 3 is off air in every sample, from before its hang.
        assert!(
            text.contains("1 spells on 1 encoders; 1 not back"),
            "{text}"
        );
        assert!(text.contains("| start-up | 1 | 20 | 20 |"), "{text}");
        assert!(
            text.contains("| enc-00003 | start-up | – | 0 | never | 20 |"),
            "{text}"
        );

        let mut r = report();
        r.args.env = vec![("MALLOC_ARENA_MAX".into(), "2".into())];
        assert!(
            render(&r)
                .contains("- Supervisor environment besides the soak's: `MALLOC_ARENA_MAX=2`\n"),
            "{text}"
        );
    }

    const LOG: &str = "\
2026-12-02T13:10:57.874262Z  WARN conn_supervisor::supervise: stream not streaming encoder_id=enc-00007 state=1
2026-12-02T13:10:58.874262Z  WARN conn_supervisor::supervise: stream not streaming encoder_id=enc-00002 state=1
2026-12-02T13:11:18.080751Z ERROR conn_supervisor::supervise: stream still not streaming; giving up for now encoder_id=enc-00001
thread 'tokio-runtime-worker' panicked at src/x.rs:1:1:
2026-12-02T13:11:19.080751Z  INFO conn_supervisor: fine
";

    #[test]
    fn the_log_is_counted_by_level_and_message() {
        let log = LogSummary::of(LOG);
        assert_eq!((log.warnings, log.errors), (2, 1));
        assert_eq!(log.panics.len(), 1);
        assert_eq!(
            log.top,
            vec![
                (
                    "WARN conn_supervisor::supervise: stream not streaming".to_string(),
                    2
                ),
                (
                    "ERROR conn_supervisor::supervise: stream still not streaming; giving up for now"
                        .to_string(),
                    1
                ),
            ]
        );
    }

    #[test]
    fn csv_files_quote_what_needs_it() {
        let r = report();
        let faults = faults_csv(&r.faults);
        let mut lines = faults.lines();
        assert_eq!(
            lines.next(),
            Some("t_s,scheduled_s,kind,step,encoder,patch,error")
        );
        assert_eq!(
            lines.next(),
            Some(r#"1.00,1.00,hang,start,3,"{""hang"":true}","#)
        );
        assert_eq!(
            lines.next(),
            Some(r#"9.00,1.00,hang,end,3,"{""hang"":true}","answered 404: ""no""""#)
        );
        let samples = samples_csv(&r.samples);
        let header_fields = samples.lines().next().unwrap().split(',').count();
        for line in samples.lines().skip(1) {
            assert_eq!(line.split(',').count(), header_fields, "{line}");
        }
        assert!(
            samples.contains(
                "\n10.0,10240,40,6,2.00,false,500,,3.0,,8,0,0,0,2,7,9,1,1,1000,1,3.25,,,\n"
            ),
            "{samples}"
        );
        let empty = samples_csv(&[Sample::default()]);
        let line = empty.lines().nth(1).unwrap();
        assert_eq!(line.split(',').count(), header_fields, "{line}");
    }
}
