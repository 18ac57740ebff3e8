//! The long-running commands (`run`, `demo`), the one-shot `check` and `config check`.

use std::{io::Write, net::SocketAddr, path::Path, process::ExitCode, time::Duration};

use tokio::net::TcpListener;

use crate::{
    admin, cluster,
    config::FleetConfig,
    demo::Demo,
    fleet::{Fleet, FleetError},
};

/// How long in-flight work may take to finish after SIGINT/SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// `run --config FILE`: exit 2 on a bad configuration, 0 after a clean shutdown.
pub async fn run(path: &Path) -> ExitCode {
    let config = match FleetConfig::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("conn-supervisor: {e}");
            return ExitCode::from(2);
        }
    };
    supervise(config, Some(path), None).await
}

/// `demo`: a simulated fleet with faults, supervised on loopback.
pub async fn demo(encoders: usize, listen: Option<SocketAddr>) -> ExitCode {
    let listen = listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let demo = match Demo::start(encoders, listen).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("conn-supervisor: {e}");
            return ExitCode::from(1);
        }
    };
    let config = demo.config.clone();
    supervise(config, None, Some(demo)).await
}

/// Runs a fleet with its admin API until SIGINT/SIGTERM; SIGHUP reloads `path`.
async fn supervise(config: FleetConfig, path: Option<&Path>, demo: Option<Demo>) -> ExitCode {
    crate::nofile::raise_and_log();
    // The TLS files are read before anything listens: a bad one stops the start.
    let admin_options = match admin::AdminOptions::from_config(&config) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("conn-supervisor: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(config.admin_listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "conn-supervisor: cannot listen on {}: {e}",
                config.admin_listen
            );
            return ExitCode::from(2);
        }
    };
    let admin_addr = listener.local_addr().unwrap_or(config.admin_listen);
    let started = match &config.cluster {
        None => Fleet::start(&config),
        Some(settings) => cluster::start(&config, settings).await,
    };
    let fleet = match started {
        Ok(f) => f,
        Err(e) => {
            eprintln!("conn-supervisor: {e}");
            return ExitCode::from(start_failure_code(&e));
        }
    };
    // The first line on stdout says where to look; scripts and the README rely on it.
    let scheme = if admin_options.is_tls() {
        "https"
    } else {
        "http"
    };
    println!("admin: {scheme}://{admin_addr}/");
    let _ = std::io::stdout().flush();
    tracing::info!(
        encoders = config.encoders.len(),
        admin = %admin_addr,
        tls = admin_options.is_tls(),
        token = config.admin.token.is_some(),
        max_connections = admin_options.limits().max_connections,
        "supervisor started"
    );

    let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(admin::serve_with(
        listener,
        fleet.clone(),
        admin_options,
        async {
            let _ = admin_stopped.await;
        },
    ));
    wait_for_stop(&fleet, path).await;
    tracing::info!("shutting down");
    fleet.shutdown(SHUTDOWN_GRACE).await;
    let _ = stop_admin.send(());
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, server).await;
    if let Some(demo) = demo {
        demo.stop().await;
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// 2 for a configuration the supervisor cannot run with; 1 when etcd does not answer
/// at start (the configuration may be right, and a restart later may succeed).
fn start_failure_code(e: &FleetError) -> u8 {
    match e {
        FleetError::Cluster(c) if c.is_unreachable() => 1,
        _ => 2,
    }
}

#[cfg(unix)]
async fn wait_for_stop(fleet: &Fleet, path: Option<&Path>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return,
            _ = term.recv() => return,
            _ = hup.recv() => reload(fleet, path).await,
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_stop(_fleet: &Fleet, _path: Option<&Path>) {
    let _ = tokio::signal::ctrl_c().await;
}

/// SIGHUP: re-reads the file; a bad file is reported and the running fleet kept.
async fn reload(fleet: &Fleet, path: Option<&Path>) {
    let Some(path) = path else {
        tracing::info!("SIGHUP ignored: no configuration file");
        return;
    };
    // Reading and validating a large fleet file takes a while and reads secret files:
    // blocking work, kept off the runtime workers that run the fleet.
    let owned = path.to_path_buf();
    let loaded = match tokio::task::spawn_blocking(move || FleetConfig::load(&owned)).await {
        Ok(loaded) => loaded,
        Err(e) => {
            tracing::error!(error = %e, "configuration not reloaded: the reading task failed");
            return;
        }
    };
    match loaded {
        Ok(config) => match fleet.reload(&config).await {
            Ok(()) => tracing::info!(encoders = config.encoders.len(), "configuration reloaded"),
            Err(e) => tracing::error!(error = %e, "reload failed"),
        },
        Err(e) => {
            tracing::error!(error = %e, "configuration not reloaded; keeping the running one")
        }
    }
}

/// `config check FILE`: validates the file without starting anything. Exit 0 with
/// `ok: N encoders` (and any warnings), or 2 with every mistake, as `run` would.
pub fn config_check(path: &Path) -> ExitCode {
    match FleetConfig::read(path) {
        Ok(config) => {
            println!("ok: {} encoders", config.encoders.len());
            for warning in &config.warnings {
                println!("warning: {warning}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("conn-supervisor: {e}");
            ExitCode::from(2)
        }
    }
}
