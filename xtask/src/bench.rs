//! `cargo xtask bench`: criterion benchmarks (layer overhead, warm vs cold) and the
//! fleet sweep (scale, detection and recovery, scrape cost), each against its baseline
//! in the same run; one summary table at the end, also written to
//! `target/bench-summary.md`.

mod criterion;
// The fleet helpers are shared with `cargo xtask soak`.
pub(crate) mod fleet;
pub(crate) mod http;
mod peer;
pub(crate) mod procfs;
pub(crate) mod procs;
pub(crate) mod prom;
mod report;

use std::time::Duration;

use crate::run::{cargo, root};

const USAGE: &str = "\
usage: cargo xtask bench [options]

  --quick            short criterion times, 20 s fleet windows, size 1000
  --only PARTS       comma separated: layers, warm, fleet, faults, scrape (default: all)
  --sizes N,N,...    fleet sizes (default 1000,3000)
  --window SECS      steady-state window per fleet point (default 120)
  --interval SECS    check interval of the fleet sweep (default 10)
  --min-warm N       fleet sweep: set min_warm (default: the supervisor's default)
  --max-connections N  fleet sweep: set max_connections (default: the default)
  --max-lifetime SECS  fleet sweep: set max_lifetime (connection churn)
  --supervisor PATH  fleet sweep: this conn-supervisor binary (e.g. an older build)
  --no-peer          fleet sweep without the peer poller (xtask/peer/poller.py)
  --polling          fleet sweep: also the supervisor with events = false
  --trials N         stream-failure trials per mode (default 3)
  --fault-n N        fleet size of the detection/recovery trials (default 1000)
  --scrape-n N       fleet size of the scrape measurement (default: largest size)
";

#[derive(Debug, Clone)]
struct Args {
    parts: Vec<String>,
    sizes: Vec<usize>,
    window: Duration,
    trials: usize,
    fault_n: usize,
    scrape_n: Option<usize>,
    timing: criterion::Timing,
    quick: bool,
    interval_s: u64,
    min_warm: Option<usize>,
    max_connections: Option<usize>,
    max_lifetime_s: Option<u64>,
    supervisor: Option<std::path::PathBuf>,
    peer: bool,
    polling: bool,
}

impl Args {
    fn parse(extra: &[String]) -> Result<Self, String> {
        let mut a = Args {
            parts: ["layers", "warm", "fleet", "faults", "scrape"]
                .map(String::from)
                .to_vec(),
            sizes: vec![1_000, 3_000],
            window: Duration::from_secs(120),
            trials: 3,
            fault_n: 1_000,
            scrape_n: None,
            timing: criterion::Timing {
                warm_up_s: 1.0,
                measure_s: 3.0,
            },
            quick: false,
            interval_s: 10,
            min_warm: None,
            max_connections: None,
            max_lifetime_s: None,
            supervisor: None,
            peer: true,
            polling: false,
        };
        let mut it = extra.iter();
        let number = |v: Option<&String>, flag: &str| -> Result<usize, String> {
            v.and_then(|v| v.replace('_', "").parse().ok())
                .ok_or_else(|| format!("{flag} needs a number\n{USAGE}"))
        };
        while let Some(flag) = it.next() {
            match flag.as_str() {
                "--quick" => {
                    a.quick = true;
                    a.sizes = vec![1_000];
                    a.window = Duration::from_secs(20);
                    a.trials = 2;
                    a.timing = criterion::Timing {
                        warm_up_s: 0.5,
                        measure_s: 1.0,
                    };
                }
                "--only" => {
                    let v = it.next().ok_or(format!("--only needs parts\n{USAGE}"))?;
                    a.parts = v.split(',').map(|s| s.trim().to_string()).collect();
                    for p in &a.parts {
                        if !["layers", "warm", "fleet", "faults", "scrape"].contains(&p.as_str()) {
                            return Err(format!("unknown part {p:?}\n{USAGE}"));
                        }
                    }
                }
                "--sizes" => {
                    let v = it.next().ok_or(format!("--sizes needs sizes\n{USAGE}"))?;
                    a.sizes = v
                        .split(',')
                        .map(|s| s.trim().replace('_', "").parse::<usize>())
                        .collect::<Result<_, _>>()
                        .map_err(|e| format!("--sizes: {e}"))?;
                }
                "--window" => a.window = Duration::from_secs(number(it.next(), flag)? as u64),
                "--trials" => a.trials = number(it.next(), flag)?,
                "--interval" => a.interval_s = number(it.next(), flag)?.max(1) as u64,
                "--min-warm" => a.min_warm = Some(number(it.next(), flag)?),
                "--max-connections" => a.max_connections = Some(number(it.next(), flag)?),
                "--max-lifetime" => a.max_lifetime_s = Some(number(it.next(), flag)? as u64),
                "--supervisor" => {
                    let v = it
                        .next()
                        .ok_or(format!("--supervisor needs a path\n{USAGE}"))?;
                    a.supervisor = Some(v.into());
                }
                "--no-peer" => a.peer = false,
                "--polling" => a.polling = true,
                "--fault-n" => a.fault_n = number(it.next(), flag)?,
                "--scrape-n" => a.scrape_n = Some(number(it.next(), flag)?),
                "-h" | "--help" => return Err(USAGE.to_string()),
                other => return Err(format!("unknown option {other:?}\n{USAGE}")),
            }
        }
        if a.sizes.iter().any(|&n| n == 0 || n > 10_000) {
            return Err("fleet sizes must be 1 to 10000 (ports and descriptors)".into());
        }
        Ok(a)
    }

    fn wants(&self, part: &str) -> bool {
        self.parts.iter().any(|p| p == part)
    }
}

pub(crate) fn run(extra: &[String]) -> Result<(), String> {
    let args = Args::parse(extra)?;
    let root = root();
    let mut results = report::Results {
        command: std::iter::once("cargo xtask bench".to_string())
            .chain(extra.iter().cloned())
            .collect::<Vec<_>>()
            .join(" "),
        ..report::Results::default()
    };
    if args.wants("layers") {
        criterion::run(&root, "stack", "stack", args.timing)?;
        let m = |id| criterion::median_ns(&root, "stack", id);
        results.layers = Some(report::Layers {
            bare: m("bare")?,
            thermal: m("thermal")?,
            health: m("health")?,
            metrics: m("metrics")?,
        });
    }
    if args.wants("warm") {
        criterion::run(&root, "warm_cold", "warm_cold", args.timing)?;
        let m = |id| criterion::median_ns(&root, "warm_cold", id);
        results.warm = Some(report::Warm {
            checkout: m("checkout")?,
            warm: m("warm")?,
            cold: m("cold")?,
        });
    }
    let (sweep, faults, scrape) = (
        args.wants("fleet"),
        args.wants("faults"),
        args.wants("scrape"),
    );
    if sweep || faults || scrape {
        cargo(&[
            "build",
            "--release",
            "-p",
            "conn-supervisor",
            "-p",
            "helo-sim",
        ])?;
        let opts = fleet::Options {
            bin_dir: fleet::bin_dir(&root),
            supervisor: args.supervisor.clone(),
            out_dir: root.join("target").join("bench-fleet"),
            window: args.window,
            trials: args.trials,
            peer: args.peer,
        };
        if sweep {
            // The supervisor as a user gets it (events on, pool defaults), then the
            // peer poller against the same simulator.
            for &n in &args.sizes {
                let mut setup = fleet::Setup::defaults(n, args.interval_s);
                setup.min_warm = args.min_warm;
                setup.max_connections = args.max_connections;
                setup.max_lifetime_s = args.max_lifetime_s;
                results
                    .runs
                    .push(fleet::run(&opts, setup, true, false, false)?);
                if args.polling {
                    let setup = fleet::Setup {
                        events: false,
                        ..setup
                    };
                    let opts = fleet::Options {
                        peer: false,
                        ..opts.clone()
                    };
                    results
                        .runs
                        .push(fleet::run(&opts, setup, true, false, false)?);
                }
            }
        }
        // Detection and scrape keep their compressed setup (1 s checks).
        let mut extra: Vec<(usize, bool, bool, bool)> = Vec::new();
        if faults {
            extra.push((args.fault_n, true, true, false));
            extra.push((args.fault_n, false, true, false));
        }
        if scrape {
            let scrape_n = args
                .scrape_n
                .unwrap_or_else(|| args.sizes.iter().copied().max().unwrap_or(3_000));
            match extra.iter_mut().find(|e| e.0 == scrape_n && e.1) {
                Some(e) => e.3 = true,
                None => extra.push((scrape_n, true, false, true)),
            }
        }
        for (n, events, trials, scrape) in extra {
            let setup = fleet::Setup::new(n, events);
            let opts = fleet::Options {
                supervisor: None,
                peer: false,
                ..opts.clone()
            };
            results
                .runs
                .push(fleet::run(&opts, setup, false, trials, scrape)?);
        }
    }
    results.quick = args.quick;
    results.window_s = args.window.as_secs();
    let text = report::render(&results);
    println!("\n{text}");
    let path = root.join("target").join("bench-summary.md");
    std::fs::write(&path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("summary written to {}", path.display());
    Ok(())
}
