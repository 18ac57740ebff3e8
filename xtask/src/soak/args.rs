//! The command line of `cargo xtask soak`.

use std::{path::PathBuf, time::Duration};

pub(crate) const USAGE: &str = "\
usage: cargo xtask soak [options]

  --minutes M                       fault phase length (default 60)
  --encoders N                      simulated encoders (default 1000)
  --warmup-minutes W                left out of the growth verdict (default M/5)
  --fault-every SECS                mean time between two faults (default 3)
  --sample-every SECS               between two samples of the supervisor (default 10)
  --settle SECS                     quiet time after the last fault before the final
                                    check that every stream is back (default 60)
  --seed S                          seed of the fault schedule (default 1)
  --max-rss-growth-kib-per-hour X   RSS slope bound after warm-up (default: 10 % of
                                    the median post-warm-up RSS per hour)
  --out FILE                        the Markdown report (default target/soak-report.md)
  --set KEY=VALUE                   a supervisor [defaults] setting, VALUE as TOML
                                    (e.g. --set max_lifetime=120); repeatable
  --env KEY=VALUE                   an environment variable of the supervisor process
                                    (e.g. --env MALLOC_ARENA_MAX=2); repeatable
";

/// What the soak runs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Args {
    pub(crate) minutes: f64,
    pub(crate) encoders: usize,
    /// `None`: a fifth of the fault phase.
    pub(crate) warmup: Option<Duration>,
    pub(crate) fault_every: Duration,
    pub(crate) sample_every: Duration,
    pub(crate) settle: Duration,
    pub(crate) seed: u64,
    /// `None`: 10 % of the post-warm-up RSS per hour.
    pub(crate) max_rss_growth_kib_per_hour: Option<f64>,
    pub(crate) out: Option<PathBuf>,
    /// Supervisor settings that replace the soak's (`--set`).
    pub(crate) settings: Vec<(String, String)>,
    /// Environment variables of the supervisor process (`--env`).
    pub(crate) env: Vec<(String, String)>,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            minutes: 60.0,
            encoders: 1_000,
            warmup: None,
            fault_every: Duration::from_secs(3),
            sample_every: Duration::from_secs(10),
            settle: Duration::from_secs(60),
            seed: 1,
            max_rss_growth_kib_per_hour: None,
            out: None,
            settings: Vec::new(),
            env: Vec::new(),
        }
    }
}

/// `KEY=VALUE` of `--set`: a plain key, and a one-line value (TOML, checked by the
/// supervisor when it starts).
fn setting(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("--set {text:?}: KEY=VALUE expected"))?;
    let (key, value) = (key.trim(), value.trim());
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
        return Err(format!(
            "--set {text:?}: the key is a setting name like max_lifetime"
        ));
    }
    if value.is_empty() || value.contains(['\n', '\r']) {
        return Err(format!("--set {text:?}: the value is one line of TOML"));
    }
    Ok((key.to_string(), value.to_string()))
}

/// `KEY=VALUE` of `--env`: a variable name as a shell writes it, and a one-line value.
/// The supervisor's log settings and password variable are the soak's own.
fn env_var(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("--env {text:?}: KEY=VALUE expected"))?;
    let name_ok = key.starts_with(|c: char| c.is_ascii_uppercase() || c == '_')
        && key
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !name_ok {
        return Err(format!(
            "--env {text:?}: the key is a variable name like MALLOC_ARENA_MAX"
        ));
    }
    if super::fleet::OWN_ENV.contains(&key) {
        return Err(format!("--env {text:?}: {key} is set by the soak itself"));
    }
    if value.contains(['\n', '\r', '\0']) {
        return Err(format!("--env {text:?}: the value is one line"));
    }
    Ok((key.to_string(), value.to_string()))
}

impl Args {
    /// Parses the options after `soak`; `Err` holds the message (with the usage).
    pub(crate) fn parse(extra: &[String]) -> Result<Self, String> {
        let mut a = Args::default();
        let mut it = extra.iter();
        while let Some(flag) = it.next() {
            let mut value = || {
                it.next()
                    .map(|v| v.replace('_', ""))
                    .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
            };
            let number = |v: String| -> Result<f64, String> {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| format!("{flag}: {v:?} is not a number >= 0\n{USAGE}"))
            };
            let secs = |v: String| number(v).map(Duration::from_secs_f64);
            match flag.as_str() {
                "--minutes" => a.minutes = number(value()?)?,
                "--encoders" => {
                    let v = value()?;
                    a.encoders = v
                        .parse()
                        .map_err(|_| format!("--encoders: {v:?} is not a count\n{USAGE}"))?;
                }
                "--warmup-minutes" => {
                    a.warmup = Some(Duration::from_secs_f64(number(value()?)? * 60.0));
                }
                "--fault-every" => a.fault_every = secs(value()?)?,
                "--sample-every" => a.sample_every = secs(value()?)?,
                "--settle" => a.settle = secs(value()?)?,
                "--seed" => {
                    let v = value()?;
                    a.seed = v
                        .parse()
                        .map_err(|_| format!("--seed: {v:?} is not a number\n{USAGE}"))?;
                }
                "--max-rss-growth-kib-per-hour" => {
                    a.max_rss_growth_kib_per_hour = Some(number(value()?)?);
                }
                "--out" => {
                    let v = it
                        .next()
                        .ok_or_else(|| format!("--out needs a file\n{USAGE}"))?;
                    a.out = Some(PathBuf::from(v));
                }
                "--set" => {
                    let v = it
                        .next()
                        .ok_or_else(|| format!("--set needs KEY=VALUE\n{USAGE}"))?;
                    a.settings.push(setting(v)?);
                }
                "--env" => {
                    let v = it
                        .next()
                        .ok_or_else(|| format!("--env needs KEY=VALUE\n{USAGE}"))?;
                    a.env.push(env_var(v)?);
                }
                "-h" | "--help" => return Err(USAGE.to_string()),
                other => return Err(format!("unknown option {other:?}\n{USAGE}")),
            }
        }
        if a.minutes <= 0.0 || a.minutes > 24.0 * 60.0 {
            return Err("--minutes must be more than 0 and at most 1440".into());
        }
        if a.encoders == 0 || a.encoders > 5_000 {
            return Err("--encoders must be 1 to 5000 (ports and descriptors)".into());
        }
        if a.fault_every < Duration::from_millis(100) {
            return Err("--fault-every must be at least 0.1 s".into());
        }
        if a.sample_every < Duration::from_secs(1) {
            return Err("--sample-every must be at least 1 s".into());
        }
        if a.warmup.is_some_and(|w| w >= a.fault_phase()) {
            return Err("--warmup-minutes must be shorter than --minutes".into());
        }
        Ok(a)
    }

    /// How long faults are injected.
    pub(crate) fn fault_phase(&self) -> Duration {
        Duration::from_secs_f64(self.minutes * 60.0)
    }

    /// Left out of the growth verdict: given, or a fifth of the fault phase (12 min of
    /// an hour, 1 min of 5), so a short run shrinks it in proportion.
    pub(crate) fn warmup(&self) -> Duration {
        self.warmup.unwrap_or(self.fault_phase() / 5)
    }

    /// The command line as typed, for the report.
    pub(crate) fn command(extra: &[String]) -> String {
        std::iter::once("cargo xtask soak".to_string())
            .chain(extra.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn defaults_and_every_option() {
        let d = parse(&[]).unwrap();
        assert_eq!(d, Args::default());
        assert_eq!(d.warmup(), Duration::from_secs(12 * 60));

        let a = parse(&[
            "--minutes",
            "5",
            "--encoders",
            "1_000",
            "--warmup-minutes",
            "0.5",
            "--fault-every",
            "1.5",
            "--sample-every",
            "5",
            "--settle",
            "30",
            "--seed",
            "42",
            "--max-rss-growth-kib-per-hour",
            "2048",
            "--out",
            "/tmp/r_1.md",
            "--set",
            "max_lifetime = \"2m\"",
            "--set",
            "min_warm=2",
            "--env",
            "MALLOC_ARENA_MAX=2",
            "--env",
            "MALLOC_MMAP_THRESHOLD_=131072",
        ])
        .unwrap();
        assert_eq!(a.minutes, 5.0);
        assert_eq!(a.encoders, 1_000);
        assert_eq!(a.warmup(), Duration::from_secs(30));
        assert_eq!(a.fault_every, Duration::from_millis(1_500));
        assert_eq!(a.sample_every, Duration::from_secs(5));
        assert_eq!(a.settle, Duration::from_secs(30));
        assert_eq!(a.seed, 42);
        assert_eq!(a.max_rss_growth_kib_per_hour, Some(2048.0));
        assert_eq!(a.out, Some(PathBuf::from("/tmp/r_1.md")));
        assert_eq!(
            a.settings,
            vec![
                ("max_lifetime".to_string(), "\"2m\"".to_string()),
                ("min_warm".to_string(), "2".to_string())
            ]
        );
        assert_eq!(
            a.env,
            vec![
                ("MALLOC_ARENA_MAX".to_string(), "2".to_string()),
                ("MALLOC_MMAP_THRESHOLD_".to_string(), "131072".to_string())
            ]
        );
    }

    #[test]
    fn a_short_run_shrinks_its_warm_up() {
        let a = parse(&["--minutes", "5"]).unwrap();
        assert_eq!(a.fault_phase(), Duration::from_secs(300));
        assert_eq!(a.warmup(), Duration::from_secs(60));
    }

    #[test]
    fn bad_input_is_an_error_that_names_the_option() {
        for (args, needle) in [
            (&["--minutes"][..], "--minutes needs a value"),
            (&["--minutes", "abc"], "--minutes"),
            (&["--minutes", "0"], "--minutes must be"),
            (&["--minutes", "-3"], "--minutes"),
            (&["--minutes", "NaN"], "--minutes"),
            (&["--encoders", "0"], "--encoders must be"),
            (&["--encoders", "9000"], "--encoders must be"),
            (&["--encoders", "1.5"], "--encoders"),
            (&["--fault-every", "0"], "--fault-every must be"),
            (&["--sample-every", "0.5"], "--sample-every must be"),
            (
                &["--minutes", "5", "--warmup-minutes", "5"],
                "--warmup-minutes",
            ),
            (&["--seed", "x"], "--seed"),
            (&["--out"], "--out needs a file"),
            (&["--set"], "--set needs KEY=VALUE"),
            (&["--set", "max_lifetime"], "KEY=VALUE expected"),
            (&["--set", "Bad-Key=1"], "setting name"),
            (&["--set", "x="], "one line of TOML"),
            (&["--set", "x=1\n[[encoder]]"], "one line of TOML"),
            (&["--env"], "--env needs KEY=VALUE"),
            (&["--env", "MALLOC_ARENA_MAX"], "KEY=VALUE expected"),
            (&["--env", "lower=1"], "variable name"),
            (&["--env", "1X=1"], "variable name"),
            (&["--env", "RUST_LOG=debug"], "set by the soak itself"),
            (&["--env", "HELO_SOAK_PASSWORD=x"], "set by the soak itself"),
            (&["--env", "X=a\nb"], "one line"),
            (&["--frobnicate"], "unknown option \"--frobnicate\""),
        ] {
            let err = parse(args).unwrap_err();
            assert!(err.contains(needle), "{args:?}: {err}");
        }
        assert!(parse(&["--help"]).unwrap_err().starts_with("usage:"));
    }

    #[test]
    fn the_command_line_is_kept_for_the_report() {
        let extra = ["--minutes".to_string(), "5".to_string()];
        assert_eq!(Args::command(&extra), "cargo xtask soak --minutes 5");
    }
}
