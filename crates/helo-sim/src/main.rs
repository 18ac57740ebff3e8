//! `helo-sim`: serve simulated AJA HELO encoders on consecutive ports until Ctrl-C.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use helo_sim::{SimConfig, SimFleet};

mod fault_flags;

use fault_flags::FaultArgs;

/// Simulated AJA HELO encoders speaking the HELO REST protocol.
///
/// Prints one line per encoder (`encoder-1 http://127.0.0.1:18080`), then with
/// `--control` one line `control http://ADDR`, and serves until Ctrl-C or SIGTERM.
/// The fault flags are the JSON keys of `POST /sim/faults` with dashes (but
/// --fault-probability for `probability`); that endpoint on each encoder's port changes
/// them at run time.
#[derive(Debug, Parser)]
#[command(name = "helo-sim", version)]
struct Cli {
    /// Address of the first encoder; the others follow on consecutive ports (port 0:
    /// each gets a free port).
    #[arg(long, default_value = "127.0.0.1:18080")]
    listen: SocketAddr,
    /// Also serve the fleet control endpoint here: `GET /sim/fleet` (request totals
    /// over every encoder), `POST /sim/fleet/devices/{k}/faults`.
    #[arg(long)]
    control: Option<SocketAddr>,
    /// Number of encoders.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=65_535))]
    encoders: u32,
    /// Require a login with this password.
    #[arg(long)]
    password: Option<String>,
    /// Device name; with several encoders `-N` is appended.
    #[arg(long, default_value = "HELO")]
    sys_name: String,

    /// Replicator command to state change, ms.
    #[arg(long)]
    transition_ms: Option<u64>,
    /// Preset recall duration, ms.
    #[arg(long)]
    recall_ms: Option<u64>,
    /// Login session lifetime, s.
    #[arg(long)]
    session_ttl_s: Option<u64>,
    /// Long-poll hold time of wait_for_config_events, ms.
    #[arg(long)]
    event_hold_ms: Option<u64>,
    /// Unused event connection ids expire after this, s.
    #[arg(long)]
    event_expiry_s: Option<u64>,
    /// Reboot downtime, ms.
    #[arg(long)]
    reboot_ms: Option<u64>,
    /// During a reboot answer 503 + Retry-After instead of refusing connections.
    #[arg(long)]
    reboot_503: bool,
    /// Start with eParamID_AutoRecoverStreaming = 1.
    #[arg(long)]
    auto_recover: bool,
    /// Chance (0-1) that a running stream fails in each --stream-fail-tick-ms.
    #[arg(long)]
    stream_fail_chance: Option<f64>,
    /// Tick for --stream-fail-chance, ms.
    #[arg(long)]
    stream_fail_tick_ms: Option<u64>,
    /// Every stream fails this long after it starts, ms.
    #[arg(long)]
    stream_fail_after_ms: Option<u64>,
    /// Presets (1-20) whose recall reports "Preset Empty" (comma separated).
    #[arg(long, value_delimiter = ',')]
    empty_presets: Vec<u8>,
    /// Parameters this model lacks, e.g. eParamID_Temperature (comma separated).
    #[arg(long, value_delimiter = ',')]
    unsupported: Vec<String>,
    /// Answer 400 to event connections so clients poll.
    #[arg(long)]
    no_events: bool,
    /// Seed for stream failures and tokens (device i uses seed + i).
    #[arg(long)]
    seed: Option<u64>,

    #[command(flatten)]
    faults: FaultArgs,
}

impl Cli {
    fn config(&self, index: usize) -> SimConfig {
        let d = SimConfig::default();
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        SimConfig {
            password: self.password.clone(),
            sys_name: if self.encoders > 1 {
                format!("{}-{}", self.sys_name, index + 1)
            } else {
                self.sys_name.clone()
            },
            transition_delay: self.transition_ms.map_or(d.transition_delay, ms),
            recall_delay: self.recall_ms.map_or(d.recall_delay, ms),
            session_ttl: self.session_ttl_s.map_or(d.session_ttl, s),
            event_hold: self.event_hold_ms.map_or(d.event_hold, ms),
            event_expiry: self.event_expiry_s.map_or(d.event_expiry, s),
            reboot_downtime: self.reboot_ms.map_or(d.reboot_downtime, ms),
            reboot_answers_503: self.reboot_503,
            auto_recover_streaming: self.auto_recover,
            stream_fail_chance: self.stream_fail_chance.unwrap_or(d.stream_fail_chance),
            stream_fail_tick: self.stream_fail_tick_ms.map_or(d.stream_fail_tick, ms),
            stream_fail_after: self.stream_fail_after_ms.map(ms),
            empty_presets: self.empty_presets.iter().copied().collect::<BTreeSet<_>>(),
            unsupported_params: self.unsupported.iter().cloned().collect(),
            events_supported: !self.no_events,
            rng_seed: self.seed.map(|seed| seed.wrapping_add(index as u64)),
            faults: self.faults.faults(),
            ..d
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = cli.config(0).validate() {
        eprintln!("helo-sim: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("helo-sim: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    let mut fleet =
        match SimFleet::start(cli.listen, cli.encoders as usize, |i| cli.config(i)).await {
            Ok(f) => f,
            Err(e) => {
                eprintln!("helo-sim: {e}");
                return ExitCode::from(2);
            }
        };
    let control = match cli.control {
        Some(addr) => match fleet.serve_control(addr).await {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("helo-sim: control endpoint: {e}");
                fleet.shutdown().await;
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    {
        let mut out = std::io::stdout().lock();
        for (i, d) in fleet.devices().iter().enumerate() {
            let _ = writeln!(out, "encoder-{} {}", i + 1, d.url());
        }
        if let Some(addr) = control {
            let _ = writeln!(out, "control http://{addr}");
        }
        let _ = out.flush();
    }
    wait_for_stop().await;
    fleet.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("helo-sim").chain(args.iter().copied()))
    }

    #[test]
    fn hostile_flags_set_the_faults_of_the_same_name() {
        let cli = parse(&[
            "--error-text-bytes",
            "100000",
            "--error-text",
            "bad\r\n|text",
            "--hostile-values",
            "a|b",
            "--event-connection-id",
            "-1\r\nX-Injected: yes",
            "--instant-events",
            "--event-shape",
            r#"{"unexpected":true}"#,
            "--endless-event-array",
            "--garbage-response",
            "--http09",
            "--huge-content-length",
            "--absurd-chunks",
            "--endless-body",
            "--deep-json-depth",
            "100000",
            "--slowloris-response",
            "--slowloris-interval-ms",
            "50",
            "--redirect-loop",
            "--informational-flood",
            "30",
            "--login-without-cookie",
            "--event-hold-ms",
            "0",
        ])
        .unwrap();
        let cfg = cli.config(0);
        let f = &cfg.faults;
        assert_eq!(f.error_text_bytes, 100_000);
        assert_eq!(f.error_text.as_deref(), Some("bad\r\n|text"));
        assert_eq!(f.hostile_values.as_deref(), Some("a|b"));
        assert_eq!(
            f.event_connection_id.as_deref(),
            Some("-1\r\nX-Injected: yes")
        );
        assert_eq!(f.event_shape, Some(serde_json::json!({"unexpected": true})));
        assert!(f.instant_events && f.endless_event_array && f.garbage_response && f.http09);
        assert!(f.huge_content_length && f.absurd_chunks && f.endless_body);
        assert!(f.slowloris_response && f.redirect_loop && f.login_without_cookie);
        assert_eq!(
            (
                f.deep_json_depth,
                f.slowloris_interval_ms,
                f.informational_flood
            ),
            (100_000, 50, 30)
        );
        assert_eq!(cfg.event_hold, Duration::ZERO);
        assert!(cfg.validate().is_ok());
    }

    #[test]
    fn fault_defaults_are_no_fault_and_caps_are_checked() {
        let cli = parse(&[]).unwrap();
        assert!(cli.config(0).faults.is_clear());
        assert!(parse(&["--event-shape", "{not json"]).is_err());
        let over = parse(&["--deep-json-depth", "10000001"]).unwrap();
        let err = over.config(0).validate().unwrap_err();
        assert!(err.to_string().contains("deep_json_depth"), "{err}");
    }
}
