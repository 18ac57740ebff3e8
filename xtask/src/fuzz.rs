//! `cargo xtask fuzz`: runs every cargo-fuzz target (`fuzz/`) for a fixed time, one
//! after another, and reports executions, speed and coverage; a crash is copied to
//! `fuzz/regressions/<target>/`, where the stable test suite replays it.

use std::{
    fmt::Write as _,
    fs,
    io::{BufRead, BufReader, Write as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use crate::run::root;

const USAGE: &str = "\
usage: cargo xtask fuzz [options]

  --seconds N      run each target N seconds (default 60)
  --target NAME    only this target (repeat, or comma separated; default: all)
  --merge          then add the fewest inputs that reach new edges to fuzz/corpus/<target>

needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). New inputs
go to fuzz/work/<target>/ (not committed), full logs to fuzz/work/<target>.log, the
summary to target/fuzz-summary.md.
";

/// A fuzz target and the longest input worth trying on it.
#[derive(Debug)]
struct Target {
    name: &'static str,
    max_len: usize,
}

/// Every target of `fuzz/fuzz_targets/`. Device answers are a few hundred bytes and a
/// fleet file a few kilobytes: longer inputs only slow the search down.
const TARGETS: &[Target] = &[
    Target {
        name: "wire_response",
        max_len: 8_192,
    },
    Target {
        name: "http1_answer",
        max_len: 8_192,
    },
    Target {
        name: "event_batch",
        max_len: 8_192,
    },
    Target {
        name: "set_cookie",
        max_len: 2_048,
    },
    Target {
        name: "param_value",
        max_len: 512,
    },
    Target {
        name: "config",
        max_len: 8_192,
    },
];

/// Per input: more than this is a hang (libFuzzer's own default is 20 minutes).
const TIMEOUT_S: u64 = 10;
/// The whole process, and any single allocation: an input of a few kilobytes that
/// needs more has found an unbounded allocation.
const RSS_LIMIT_MB: u64 = 1_024;
const MALLOC_LIMIT_MB: u64 = 128;

#[derive(Debug)]
struct Args {
    seconds: u64,
    targets: Vec<&'static Target>,
    merge: bool,
}

impl Args {
    fn parse(extra: &[String]) -> Result<Self, String> {
        let mut seconds = 60;
        let mut names: Vec<String> = Vec::new();
        let mut merge = false;
        let mut it = extra.iter();
        while let Some(flag) = it.next() {
            match flag.as_str() {
                "--seconds" => {
                    seconds = it
                        .next()
                        .and_then(|v| v.parse().ok())
                        .filter(|&s| s > 0)
                        .ok_or(format!("--seconds needs a positive number\n{USAGE}"))?;
                }
                "--target" => {
                    let v = it.next().ok_or(format!("--target needs a name\n{USAGE}"))?;
                    names.extend(v.split(',').map(|s| s.trim().to_string()));
                }
                "--merge" => merge = true,
                "-h" | "--help" => return Err(USAGE.to_string()),
                other => return Err(format!("unknown option {other:?}\n{USAGE}")),
            }
        }
        let targets = if names.is_empty() {
            TARGETS.iter().collect()
        } else {
            names
                .iter()
                .map(|n| {
                    TARGETS.iter().find(|t| t.name == n).ok_or_else(|| {
                        let known: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
                        format!("unknown target {n:?} (targets: {})", known.join(", "))
                    })
                })
                .collect::<Result<_, _>>()?
        };
        Ok(Self {
            seconds,
            targets,
            merge,
        })
    }
}

/// What one run reported.
#[derive(Debug, Default)]
struct Run {
    target: &'static str,
    executions: Option<u64>,
    exec_per_sec: Option<u64>,
    coverage: Option<u64>,
    features: Option<u64>,
    corpus: Option<String>,
    new_units: Option<u64>,
    peak_rss_mb: Option<u64>,
    /// Inputs that crashed, ran out of time or memory, copied into the repository.
    findings: Vec<PathBuf>,
    exit_ok: bool,
}

pub(crate) fn run(extra: &[String]) -> Result<(), String> {
    let args = Args::parse(extra)?;
    let root = root();
    let fuzz = root.join("fuzz");
    check_tools()?;
    // One build for every target first, so build time is not fuzzing time.
    nightly(&root, &["fuzz", "build"]).map_err(|e| format!("building the fuzz targets: {e}"))?;
    let mut runs = Vec::new();
    for t in &args.targets {
        let r = fuzz_one(&root, &fuzz, t, args.seconds)?;
        eprintln!(
            "fuzz: {}: {} executions, cov {}, {}",
            t.name,
            show(r.executions),
            show(r.coverage),
            if r.findings.is_empty() && r.exit_ok {
                "clean"
            } else {
                "FAILED"
            }
        );
        runs.push(r);
        if args.merge {
            merge(&root, &fuzz, t)?;
        }
    }
    let text = render(&args, &runs);
    println!("\n{text}");
    let path = root.join("target").join("fuzz-summary.md");
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    fs::write(&path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("summary written to {}", path.display());
    let failed: Vec<String> = runs
        .iter()
        .filter(|r| !r.findings.is_empty() || !r.exit_ok)
        .map(|r| match r.findings.first() {
            Some(_) => format!(
                "{} found {}",
                r.target,
                r.findings
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => format!("{} failed (see fuzz/work/{}.log)", r.target, r.target),
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\nreplay with `cargo test -p <crate> --test fuzz_regressions`; fix, and \
             keep the inputs as regression cases",
            failed.join("\n")
        ))
    }
}

/// Says which of nightly and cargo-fuzz is missing, and how to get it.
fn check_tools() -> Result<(), String> {
    let works = |args: &[&str]| {
        clean_command("cargo")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !works(&["+nightly", "--version"]) {
        return Err("the nightly toolchain is missing: cargo-fuzz needs it \
             (`rustup toolchain install nightly`)"
            .into());
    }
    if !works(&["+nightly", "fuzz", "--version"]) {
        return Err("cargo-fuzz is not installed (`cargo install cargo-fuzz`)".into());
    }
    Ok(())
}

/// `cargo` as found on PATH (the rustup proxy, which understands `+nightly`), without
/// the variables the stable `cargo xtask` set for itself: they would pin the stable
/// toolchain for the nested build.
fn clean_command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    for var in [
        "RUSTUP_TOOLCHAIN",
        "CARGO",
        "RUSTC",
        "RUSTDOC",
        "RUSTC_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn nightly(root: &Path, args: &[&str]) -> Result<(), String> {
    eprintln!("$ cargo +nightly {}", args.join(" "));
    let status = clean_command("cargo")
        .arg("+nightly")
        .args(args)
        .current_dir(root)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`cargo +nightly {}` failed ({status})",
            args.join(" ")
        ))
    }
}

/// Corpus folders of `t`: where new inputs go first (libFuzzer writes to the first),
/// then the committed corpus and the regressions, when they exist.
fn corpus_dirs(fuzz: &Path, t: &Target) -> Result<Vec<PathBuf>, String> {
    let work = fuzz.join("work").join(t.name);
    fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let mut dirs = vec![work];
    for kind in ["corpus", "regressions"] {
        let dir = fuzz.join(kind).join(t.name);
        if dir.is_dir() {
            dirs.push(dir);
        }
    }
    Ok(dirs)
}

fn fuzz_one(root: &Path, fuzz: &Path, t: &Target, seconds: u64) -> Result<Run, String> {
    let dirs = corpus_dirs(fuzz, t)?;
    let artifacts = fuzz.join("artifacts").join(t.name);
    fs::create_dir_all(&artifacts).map_err(|e| format!("{}: {e}", artifacts.display()))?;
    let mut args: Vec<String> = vec![
        "+nightly".into(),
        "fuzz".into(),
        "run".into(),
        t.name.into(),
    ];
    args.extend(dirs.iter().map(|d| d.display().to_string()));
    args.push("--".into());
    args.extend([
        format!("-max_total_time={seconds}"),
        format!("-max_len={}", t.max_len),
        format!("-timeout={TIMEOUT_S}"),
        format!("-rss_limit_mb={RSS_LIMIT_MB}"),
        format!("-malloc_limit_mb={MALLOC_LIMIT_MB}"),
        format!("-artifact_prefix={}/", artifacts.display()),
        "-print_final_stats=1".into(),
    ]);
    eprintln!("$ cargo {}", args.join(" "));
    let log_path = fuzz.join("work").join(format!("{}.log", t.name));
    let mut log =
        fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let mut child = clean_command("cargo")
        .args(&args)
        .current_dir(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
    // libFuzzer reports on stderr; the target's own output (none expected) on stdout.
    let stdout = child.stdout.take();
    let echo = std::thread::spawn(move || {
        let mut out = String::new();
        if let Some(s) = stdout {
            for line in BufReader::new(s).lines().map_while(Result::ok) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    });
    let mut run = Run {
        target: t.name,
        ..Run::default()
    };
    let mut written: Vec<PathBuf> = Vec::new();
    let mut tail: Vec<String> = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = writeln!(log, "{line}");
            read_line(&line, &mut run, &mut written);
            tail.push(line);
            if tail.len() > 40 {
                tail.remove(0);
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for cargo fuzz: {e}"))?;
    let stdout = echo.join().unwrap_or_default();
    let _ = write!(log, "{stdout}");
    run.exit_ok = status.success();
    for found in written {
        run.findings.push(keep(fuzz, t, &found)?);
    }
    if !run.exit_ok || !run.findings.is_empty() {
        eprintln!("--- last lines of {} ---", log_path.display());
        for line in &tail {
            eprintln!("{line}");
        }
    }
    Ok(run)
}

/// Picks the numbers out of one line of libFuzzer's output.
fn read_line(line: &str, run: &mut Run, written: &mut Vec<PathBuf>) {
    let stat = |name: &str| {
        line.strip_prefix(name)
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    if let Some(v) = stat("stat::number_of_executed_units:") {
        run.executions = Some(v);
    } else if let Some(v) = stat("stat::average_exec_per_sec:") {
        run.exec_per_sec = Some(v);
    } else if let Some(v) = stat("stat::new_units_added:") {
        run.new_units = Some(v);
    } else if let Some(v) = stat("stat::peak_rss_mb:") {
        run.peak_rss_mb = Some(v);
    } else if let Some(path) = line
        .split_once("Test unit written to ")
        .map(|(_, p)| p.trim())
    {
        written.push(PathBuf::from(path));
    } else if line.starts_with('#') {
        // `#123456	pulse  cov: 1234 ft: 5678 corp: 300/20Kb lim: 4096 exec/s: …`
        let mut words = line.split_whitespace();
        while let Some(w) = words.next() {
            match w {
                "cov:" => run.coverage = words.next().and_then(|v| v.parse().ok()),
                "ft:" => run.features = words.next().and_then(|v| v.parse().ok()),
                "corp:" => run.corpus = words.next().map(str::to_string),
                _ => {}
            }
        }
    }
}

/// Copies a finding into `fuzz/regressions/<target>/`, where the test suite replays it.
fn keep(fuzz: &Path, t: &Target, found: &Path) -> Result<PathBuf, String> {
    let dir = fuzz.join("regressions").join(t.name);
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let name = found
        .file_name()
        .ok_or_else(|| format!("{}: not a file", found.display()))?;
    let to = dir.join(name);
    fs::copy(found, &to).map_err(|e| format!("copying {}: {e}", found.display()))?;
    Ok(to)
}

/// Adds to the committed corpus the fewest new inputs that reach the edges it does not
/// (greedy set cover over edges, hit counts ignored): a few hundred small files per
/// target, not every input that changed a counter.
fn merge(root: &Path, fuzz: &Path, t: &Target) -> Result<(), String> {
    let corpus = fuzz.join("corpus").join(t.name);
    fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
    let work = fuzz.join("work").join(t.name);
    let corpus = corpus.display().to_string();
    let work = work.display().to_string();
    nightly(
        root,
        &[
            "fuzz",
            "run",
            t.name,
            &corpus,
            &work,
            "--",
            "-set_cover_merge=1",
            "-use_counters=0",
            &format!("-max_len={}", t.max_len),
            &format!("-timeout={TIMEOUT_S}"),
            &format!("-rss_limit_mb={RSS_LIMIT_MB}"),
        ],
    )
}

fn show(v: Option<u64>) -> String {
    v.map_or_else(|| "?".to_string(), |v| v.to_string())
}

fn render(args: &Args, runs: &[Run]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "cargo xtask fuzz --seconds {} ({} s per target, one after another)\n",
        args.seconds, args.seconds
    );
    out.push_str(
        "| target | executions | exec/s | coverage (cov) | features (ft) | corpus (inputs/size) | new inputs | peak RSS MB | result |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for r in runs {
        let result = if !r.findings.is_empty() {
            format!("{} finding(s)", r.findings.len())
        } else if !r.exit_ok {
            "failed".to_string()
        } else {
            "clean".to_string()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.target,
            show(r.executions),
            show(r.exec_per_sec),
            show(r.coverage),
            show(r.features),
            r.corpus.as_deref().unwrap_or("?"),
            show(r.new_units),
            show(r.peak_rss_mb),
            result
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libfuzzer_output_is_read() {
        let mut run = Run::default();
        let mut written = Vec::new();
        for line in [
            "#2	INITED cov: 10 ft: 11 corp: 1/1b exec/s: 0 rss: 30Mb",
            "#1048576	pulse  cov: 1234 ft: 5678 corp: 300/20Kb lim: 4096 exec/s: 17476 rss: 80Mb",
            "#1200000	DONE   cov: 1240 ft: 5700 corp: 305/21Kb lim: 4096 exec/s: 19672 rss: 81Mb",
            "Done 1200000 runs in 61 second(s)",
            "stat::number_of_executed_units: 1200000",
            "stat::average_exec_per_sec:     19672",
            "stat::new_units_added:          42",
            "stat::peak_rss_mb:              81",
            "artifact_prefix='fuzz/artifacts/x/'; Test unit written to fuzz/artifacts/x/crash-abc",
        ] {
            read_line(line, &mut run, &mut written);
        }
        assert_eq!(run.executions, Some(1_200_000));
        assert_eq!(run.exec_per_sec, Some(19_672));
        assert_eq!(run.coverage, Some(1_240));
        assert_eq!(run.features, Some(5_700));
        assert_eq!(run.corpus.as_deref(), Some("305/21Kb"));
        assert_eq!(run.new_units, Some(42));
        assert_eq!(run.peak_rss_mb, Some(81));
        assert_eq!(written, [PathBuf::from("fuzz/artifacts/x/crash-abc")]);
    }

    #[test]
    fn arguments() {
        let a = Args::parse(&[]).unwrap();
        assert_eq!(
            (a.seconds, a.targets.len(), a.merge),
            (60, TARGETS.len(), false)
        );
        let a = Args::parse(
            &["--seconds", "5", "--target", "config,set_cookie", "--merge"].map(String::from),
        )
        .unwrap();
        assert_eq!(a.seconds, 5);
        assert_eq!(
            a.targets.iter().map(|t| t.name).collect::<Vec<_>>(),
            ["config", "set_cookie"]
        );
        assert!(a.merge);
        let e = Args::parse(&["--target".into(), "nope".into()]).unwrap_err();
        assert!(e.contains("unknown target \"nope\""), "{e}");
        assert!(Args::parse(&["--seconds".into(), "0".into()]).is_err());
    }

    #[test]
    fn the_targets_are_those_of_the_fuzz_crate() {
        let fuzz = root().join("fuzz");
        let mut files: Vec<String> = fs::read_dir(fuzz.join("fuzz_targets"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let mut names: Vec<String> = TARGETS.iter().map(|t| format!("{}.rs", t.name)).collect();
        names.sort();
        assert_eq!(files, names);
        let manifest = fs::read_to_string(fuzz.join("Cargo.toml")).unwrap();
        for t in TARGETS {
            assert!(
                manifest.contains(&format!("name = \"{}\"", t.name)),
                "{} has no [[bin]] in fuzz/Cargo.toml",
                t.name
            );
        }
    }
}
