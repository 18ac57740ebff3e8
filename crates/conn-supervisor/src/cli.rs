//! The command line.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

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
        /// How many simulated encoders.
        #[arg(long, default_value_t = 8)]
        encoders: usize,
        /// Admin HTTP address (default: an ephemeral loopback port).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// One-shot health check in the Nagios/Icinga plugin convention (exit 0 OK,
    /// 1 WARNING, 2 CRITICAL, 3 UNKNOWN).
    Check {
        /// The device, e.g. http://10.0.0.21.
        url: String,
        /// Environment variable holding the device password.
        #[arg(long)]
        password_env: Option<String>,
        /// Print the full health status as JSON instead of one line.
        #[arg(long)]
        json: bool,
        /// Warn when the device is not streaming.
        #[arg(long)]
        expect_streaming: bool,
        /// Warn when the device is not recording.
        #[arg(long)]
        expect_recording: bool,
    },
    /// Work with a configuration file without starting anything.
    Config {
        /// check.
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Read or set one parameter.
    Param {
        /// get or set.
        #[command(subcommand)]
        action: ParamAction,
    },
    /// Start or stop streaming.
    Stream {
        /// start or stop.
        action: StartStop,
        /// The device.
        url: String,
        /// Environment variable holding the device password.
        #[arg(long)]
        password_env: Option<String>,
    },
    /// Start or stop recording.
    Record {
        /// start or stop.
        action: StartStop,
        /// The device.
        url: String,
        /// Environment variable holding the device password.
        #[arg(long)]
        password_env: Option<String>,
    },
    /// Print the device's parameter changes as JSON lines until interrupted.
    Events {
        /// The device.
        url: String,
        /// Environment variable holding the device password.
        #[arg(long)]
        password_env: Option<String>,
    },
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
