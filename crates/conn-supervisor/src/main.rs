//! `conn-supervisor`: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;
use conn_supervisor::{
    cli::{Cli, Command, ParamAction},
    tools,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    conn_supervisor::logging::init(cli.log_json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
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
            conn_supervisor::commands::check(
                &url,
                password_env.as_deref(),
                json,
                expect_streaming,
                expect_recording,
            )
            .await
        }
        Command::Config {
            action: conn_supervisor::cli::ConfigAction::Check { file },
        } => conn_supervisor::commands::config_check(&file),
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
        } => tool(
            async {
                let dev = tools::device(&url, password_env.as_deref())?;
                tools::stream(&dev, action).await
            }
            .await,
        ),
        Command::Record {
            action,
            url,
            password_env,
        } => tool(
            async {
                let dev = tools::device(&url, password_env.as_deref())?;
                tools::record(&dev, action).await
            }
            .await,
        ),
        Command::Events { url, password_env } => tool(
            async {
                let dev = tools::device(&url, password_env.as_deref())?;
                tokio::select! {
                    r = tools::events(&dev) => r,
                    _ = tokio::signal::ctrl_c() => Ok(()),
                }
            }
            .await,
        ),
    }
}
