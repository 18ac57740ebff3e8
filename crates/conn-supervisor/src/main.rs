//! `conn-supervisor`: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser as _;
use conn_supervisor::{
    cli::{Cli, Command, ParamAction, WaitArgs},
    tools,
};

/// mimalloc, not glibc's malloc: measured side by side, the tower stack's overhead per
/// request fell (+278 ns to +208 ns), a large configuration validates faster, and the
/// fleet's resident size was the same or lower; the fleet-level CPU per check of those
/// runs was within the machine's noise. BENCHMARKS.md has the runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // A usage mistake in `check` is UNKNOWN (3) to a monitoring system, not
            // clap's 2, which a plugin would read as CRITICAL.
            let is_check = std::env::args().nth(1).as_deref() == Some("check");
            let code = match e.exit_code() {
                0 => 0,
                _ if is_check => 3,
                c => u8::try_from(c).unwrap_or(2),
            };
            return ExitCode::from(code);
        }
    };
    conn_supervisor::logging::init(cli.log_json);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // One worker thread unless the operator sets tokio's own TOKIO_WORKER_THREADS. The
    // supervision of thousands of encoders is a few percent of one core, and the heavy
    // admin work (a /metrics scrape, the fleet page's diffs, a reload's parsing) runs on
    // the blocking pool; a second worker only added the cost of the two waking each
    // other: 13 % more CPU per check at 1 000 encoders, 28 % at 3 000 (BENCHMARKS.md).
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads(1);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("conn-supervisor: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(dispatch(cli.command))
}

async fn dispatch(command: Command) -> ExitCode {
    let tool = |r: Result<(), tools::ToolError>| match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conn-supervisor: {e}");
            ExitCode::from(1)
        }
    };
    match command {
        Command::Run { config } => conn_supervisor::commands::run(&config).await,
        Command::Demo { encoders, listen } => {
            conn_supervisor::commands::demo(encoders, listen).await
        }
        Command::Check {
            url,
            password_env,
            json,
            expect_streaming,
            expect_recording,
        } => {
            conn_supervisor::check::check(conn_supervisor::check::CheckArgs {
                url: &url,
                password_env: password_env.as_deref(),
                json,
                expect_streaming,
                expect_recording,
            })
            .await
        }
        Command::Config {
            action: conn_supervisor::cli::ConfigAction::Check { file },
        } => conn_supervisor::commands::config_check(&file),
        Command::Completions { shell } => write_out(&conn_supervisor::cli::completions(shell)),
        Command::Man => match conn_supervisor::cli::man_page() {
            Ok(page) => write_out(&page),
            Err(e) => {
                eprintln!("conn-supervisor: cannot render the manual page: {e}");
                ExitCode::from(1)
            }
        },
        Command::Param { action } => match action {
            ParamAction::Get {
                url,
                param,
                password_env,
            } => tool(
                async {
                    let dev = tools::device(&url, password_env.as_deref())?;
                    tools::param_get(&dev, &param).await
                }
                .await,
            ),
            ParamAction::Set {
                url,
                param,
                value,
                password_env,
            } => tool(
                async {
                    let dev = tools::device(&url, password_env.as_deref())?;
                    tools::param_set(&dev, &param, &value).await
                }
                .await,
            ),
        },
        Command::Stream {
            action,
            url,
            password_env,
            wait,
        } => tool(
            async {
                let dev = tools::device(&url, password_env.as_deref())?;
                tools::stream(&dev, action, &wait_options(wait)).await
            }
            .await,
        ),
        Command::Record {
            action,
            url,
            password_env,
            wait,
        } => tool(
            async {
                let dev = tools::device(&url, password_env.as_deref())?;
                tools::record(&dev, action, &wait_options(wait)).await
            }
            .await,
        ),
        Command::Events {
            url,
            password_env,
            min_poll_gap,
            connect_tries,
            max_outage,
        } => tool(
            async {
                // Before anything else, so an early SIGTERM still ends with exit 0.
                let mut interrupt = tools::Interrupt::new()?;
                let dev = tools::device(&url, password_env.as_deref())?;
                let opts = tools::EventsOptions {
                    connect_tries,
                    max_outage,
                    min_poll_gap,
                };
                tokio::select! {
                    e = tools::events(&dev, &opts) => Err(e),
                    () = interrupt.recv() => Ok(()),
                }
            }
            .await,
        ),
    }
}

fn wait_options(args: WaitArgs) -> tools::WaitOptions {
    tools::WaitOptions {
        wait: !args.no_wait,
        timeout: args.timeout,
        ..tools::WaitOptions::default()
    }
}

/// Writes generated text to stdout; a closed pipe is an error, not a panic.
fn write_out(bytes: &[u8]) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conn-supervisor: cannot write output: {e}");
            ExitCode::from(1)
        }
    }
}
