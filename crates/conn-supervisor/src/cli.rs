//! The command line.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Keeps warm, scored, cooled connections to a fleet of AJA HELO encoders and exports
/// it all as Prometheus metrics.
#[derive(Debug, Parser)]
#[command(name = "conn-supervisor", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    pub log_json: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Supervise the fleet described by a configuration file.
    Run {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Supervise a simulated fleet (with faults) on loopback: the embedded default.
    Demo {
        /// How many simulated encoders (each role once by default; roles repeat).
        #[arg(long, default_value_t = crate::demo::ROLES.len())]
        encoders: usize,
        /// Admin HTTP address (default: an ephemeral loopback port).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// One-shot health check in the Nagios/Icinga plugin convention: exit 0 OK,
    /// 1 WARNING (degraded), 2 CRITICAL (not in the expected state, health critical,
    /// unreachable, timed out or login refused), 3 UNKNOWN (bad arguments or an
    /// answer that cannot be interpreted).
    Check {
        /// The device, e.g. http://10.0.0.21.
        url: String,
        /// Environment variable holding the device password.
        #[arg(long)]
        password_env: Option<String>,
        /// Print one JSON object (status, reasons, score, the full health check)
        /// instead of the status line, whatever the outcome.
        #[arg(long)]
        json: bool,
        /// CRITICAL when the device is not streaming.
        #[arg(long)]
        expect_streaming: bool,
        /// CRITICAL when the device is not recording.
        #[arg(long)]
        expect_recording: bool,
    },
    /// Work with a configuration file without starting anything.
    Config {
        /// check.
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `conn-supervisor man > conn-supervisor.1`.
    Man,
    /// Read or set one parameter.
    Param {
        /// get or set.
        #[command(subcommand)]
        action: ParamAction,
    },
    /// Start or stop streaming, then wait until the device shows `streaming` (or
    /// `idle`) and print `{"stream_state":…,"took_ms":…,"reached":true|false|null}`.
    /// Exit 0 when the state was reached, 1 when not (or on any error).
    Stream {
        /// start or stop.
        action: StartStop,
        /// The device.
        url: String,
        /// Environment variable holding the device password.
        #[arg(long)]
        password_env: Option<String>,
        /// How long to wait for the new state.
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Start or stop recording, then wait until the device shows `recording` (or
    /// `idle`) and print `{"record_state":…,"took_ms":…,"reached":true|false|null}`.
    /// Exit 0 when the state was reached, 1 when not (or on any error).
    Record {
        /// start or stop.
        action: StartStop,
        /// The device.
        url: String,
        /// Environment variable holding the device password.
        #[arg(long)]
        password_env: Option<String>,
        /// How long to wait for the new state.
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Print the device's parameter changes as JSON lines until SIGINT or SIGTERM
    /// (exit 0). Exit 1 when the device cannot be reached at all, at once on a login
    /// error, or when a lost device stays away longer than --max-outage.
    Events {
        /// The device.
        url: String,
        /// Environment variable holding the device password.
        #[arg(long)]
        password_env: Option<String>,
        /// Least time from the start of one long poll to the start of the next, so a
        /// device that answers at once is not flooded (at least 10ms).
        #[arg(long, default_value = "250ms", value_parser = parse_poll_gap)]
        min_poll_gap: Duration,
        /// How many times to try the first connection before giving up.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
        connect_tries: u32,
        /// After the device was followed once, how long it may stay away (a reboot)
        /// before the command gives up.
        #[arg(long, default_value = "5m", value_parser = parse_cli_duration)]
        max_outage: Duration,
    },
}

/// `--timeout` / `--no-wait` of `stream` and `record`.
#[derive(Debug, Clone, Copy, Args)]
pub struct WaitArgs {
    /// How long to wait for the device to show the new state (e.g. 10s, 1500ms).
    #[arg(long, default_value = "10s", value_parser = parse_cli_duration)]
    pub timeout: Duration,
    /// Do not wait: print the state read right after the command, with
    /// `"reached":null`, and exit 0.
    #[arg(long, conflicts_with = "timeout")]
    pub no_wait: bool,
}

fn parse_cli_duration(text: &str) -> Result<Duration, String> {
    crate::config::parse_duration(text)
}

fn parse_poll_gap(text: &str) -> Result<Duration, String> {
    let d = parse_cli_duration(text)?;
    if d < Duration::from_millis(10) {
        return Err(format!("{text:?} is too short (at least 10ms)"));
    }
    Ok(d)
}

/// `config check`.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Validate a configuration file: print `ok: N encoders` and exit 0, or print
    /// every mistake with its key and line and exit 2.
    Check {
        /// The TOML configuration file.
        file: PathBuf,
    },
}

/// `param get` / `param set`.
#[derive(Debug, Subcommand)]
pub enum ParamAction {
    /// Print a parameter as one JSON line.
    Get {
        /// The device.
        url: String,
        /// The parameter, e.g. eParamID_ReplicatorStreamState.
        param: String,
        /// Environment variable holding the device password.
        #[arg(long)]
        password_env: Option<String>,
    },
    /// Set a parameter and print the device's answer.
    Set {
        /// The device.
        url: String,
        /// The parameter.
        param: String,
        /// The value.
        value: String,
        /// Environment variable holding the device password.
        #[arg(long)]
        password_env: Option<String>,
    },
}

/// start or stop.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StartStop {
    /// Start.
    Start,
    /// Stop.
    Stop,
}

/// The completion script of `shell`, generated from these definitions.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut command = <Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "conn-supervisor", &mut out);
    out
}

/// The manual page (roff), generated from these definitions.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut out)?;
    Ok(out)
}
