//! The fleet page of a running demo fleet, in headless Chromium: the README screenshot
//! (`cargo xtask screenshot`) and the page's measurements at scale
//! (`cargo xtask screenshot --encoders 1000 --measure 20 --out target/fleet-page-1000.png`).
//!
//! Runs the demo in this process (the same simulated fleet and intervals as
//! `conn-supervisor demo`), lets it live for `--settle` seconds with the page open, then
//! takes the screenshot. With `--measure SECS` it also reads the live updates for that
//! long as a plain client would, and prints the size of the snapshot and of each
//! update, and the page's own render times (`window.fleetPage`).

#[path = "../tests/support/browser.rs"]
mod browser;

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use browser::{Browser, Installed};
use conn_supervisor::{admin, demo::Demo, fleet::Fleet};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    time::Instant,
};

const USAGE: &str = "\
usage: fleet_page [--encoders N] [--settle SECS] [--problem SECS] [--out PATH]
                  [--measure SECS] [--width PX] [--height PX]

  --encoders N     demo encoders (default 8)
  --settle SECS    how long the demo runs with the page open before the screenshot (default 20)
  --problem SECS   then wait up to SECS more for a tile that is critical or unreachable
                   (a stream failing, a reboot), so the picture shows one (default 0)
  --out PATH       where to write the PNG (default: no screenshot)
  --measure SECS   also measure the live updates for SECS seconds and print the numbers

`cargo xtask screenshot` with no argument writes docs/fleet-page.png; `--release` (to
the xtask) builds this program optimised.
";

#[derive(Debug)]
struct Args {
    encoders: usize,
    settle: Duration,
    problem: Duration,
    out: Option<PathBuf>,
    measure: Option<Duration>,
    width: u32,
    height: u32,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        encoders: 8,
        settle: Duration::from_secs(20),
        problem: Duration::ZERO,
        out: None,
        measure: None,
        width: 1200,
        height: 900,
    };
    fn value<T: std::str::FromStr>(v: Option<String>, flag: &str) -> Result<T, String> {
        v.and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{flag} needs a number\n{USAGE}"))
    }
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--encoders" => a.encoders = value(args.next(), "--encoders")?,
            "--settle" => a.settle = Duration::from_secs(value(args.next(), "--settle")?),
            "--problem" => a.problem = Duration::from_secs(value(args.next(), "--problem")?),
            "--measure" => a.measure = Some(Duration::from_secs(value(args.next(), "--measure")?)),
            "--width" => a.width = value(args.next(), "--width")?,
            "--height" => a.height = value(args.next(), "--height")?,
            "--out" => {
                a.out = Some(
                    args.next()
                        .map(PathBuf::from)
                        .ok_or(format!("--out needs a path\n{USAGE}"))?,
                )
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fleet_page: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleet_page: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    // Before anything starts: without a browser there is nothing to do.
    let installed = Installed::find()?;
    let demo = Demo::start(args.encoders, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|e| e.to_string())?;
    let fleet = Fleet::start(&demo.config).map_err(|e| e.to_string())?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("admin listener: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("admin listener: {e}"))?;
    let server = tokio::spawn(admin::serve(
        listener,
        fleet.clone(),
        std::future::pending(),
    ));
    eprintln!(
        "demo: {} encoders, admin http://{addr}/",
        demo.config.encoders.len()
    );
    let result = capture(&args, &installed, addr, &fleet).await;
    server.abort();
    fleet.shutdown(Duration::from_secs(5)).await;
    demo.stop().await;
    result
}

async fn capture(
    args: &Args,
    installed: &Installed,
    addr: SocketAddr,
    fleet: &Fleet,
) -> Result<(), String> {
    let browser = Browser::start(installed, args.width, args.height).await?;
    let result = async {
        browser.goto(&format!("http://{addr}/")).await?;
        let n = args.encoders;
        browser
            .wait_for(
                "a tile per encoder",
                Duration::from_secs(60),
                &format!("return document.querySelectorAll('.tile').length === {n}"),
            )
            .await?;
        eprintln!("page: {n} tiles; the demo runs for {:?}", args.settle);
        tokio::time::sleep(args.settle).await;
        if !args.problem.is_zero() {
            let found = browser
                .wait_for(
                    "a problem",
                    args.problem,
                    "return document.querySelector('.lvl-critical, .lvl-unreachable') !== null",
                )
                .await;
            if let Err(e) = found {
                eprintln!("no problem to show: {e}");
            }
            // The live update has arrived; let the frame paint.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        if let Some(out) = &args.out {
            browser.screenshot(out).await?;
            eprintln!("screenshot: {}", out.display());
        }
        if let Some(window) = args.measure {
            measure(&browser, addr, window, fleet).await?;
        }
        Ok(())
    }
    .await;
    browser.close().await;
    result
}

/// Prints the sizes of the events and the page's render times.
/// A server with the page's routes whose `/api/events` replays `snapshot`, then one
/// `update` a second later, then stays quiet.
async fn replay_server(
    fleet: Fleet,
    snapshot: String,
    update: String,
) -> Result<SocketAddr, String> {
    use axum::response::sse::{Event, Sse};
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("replay listener: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("replay listener: {e}"))?;
    let events = std::sync::Arc::new([("snapshot", snapshot), ("update", update)]);
    let replay = move || {
        let events = events.clone();
        async move {
            let stream = futures_util::stream::unfold(0usize, move |i| {
                let events = events.clone();
                async move {
                    let Some((name, data)) = events.get(i) else {
                        return std::future::pending().await;
                    };
                    if i > 0 {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    let event = Event::default().event(*name).data(data.as_str());
                    Some((Ok::<_, std::convert::Infallible>(event), i + 1))
                }
            });
            Sse::new(stream)
        }
    };
    let app = axum::Router::new()
        .route("/api/events", axum::routing::get(replay))
        .fallback_service(admin::router(fleet));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

fn n_tiles(stats: &serde_json::Value) -> u64 {
    stats["tiles"].as_u64().unwrap_or(0)
}

/// The live updates as a plain client sees them for `window`, and the page's render
/// times: live (with the demo sharing the machine), then replayed to a fresh page from
/// a quiet server (the fleet stopped), which measures the browser alone.
async fn measure(
    browser: &Browser,
    addr: SocketAddr,
    window: Duration,
    fleet: &Fleet,
) -> Result<(), String> {
    let live = browser.eval("return window.fleetPage").await?;
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("events: {e}"))?;
    let asked = Instant::now();
    stream
        .write_all(b"GET /api/events HTTP/1.0\r\n\r\n")
        .await
        .map_err(|e| format!("events: {e}"))?;
    let mut lines = BufReader::new(stream).lines();
    let mut sizes: Vec<(String, usize, usize)> = Vec::new();
    let mut kept: Vec<(String, String)> = Vec::new();
    let mut first_at = None;
    let end = Instant::now() + window;
    let mut name = String::new();
    while let Ok(line) = tokio::time::timeout_at(end, lines.next_line()).await {
        let Some(line) = line.map_err(|e| format!("events: {e}"))? else {
            break;
        };
        if let Some(v) = line.strip_prefix("event: ") {
            name = v.to_string();
        } else if let Some(data) = line.strip_prefix("data: ") {
            first_at.get_or_insert_with(|| asked.elapsed());
            let encoders = serde_json::from_str::<serde_json::Value>(data)
                .ok()
                .and_then(|v| v["encoders"].as_array().map(Vec::len))
                .unwrap_or(0);
            sizes.push((name.clone(), data.len(), encoders));
            kept.push((std::mem::take(&mut name), data.to_string()));
        }
    }
    // The browser alone: the fleet stops, and a quiet server replays the snapshot and
    // the median update to a fresh page, three times.
    fleet.shutdown(Duration::from_secs(5)).await;
    let snapshot_data = kept
        .iter()
        .find(|(n, _)| n == "snapshot")
        .map(|k| k.1.clone());
    let mut update_data: Vec<&String> = kept
        .iter()
        .filter(|(n, _)| n == "update")
        .map(|k| &k.1)
        .collect();
    update_data.sort_by_key(|d| d.len());
    let update_data = update_data.get(update_data.len() / 2).map(|d| (*d).clone());
    let replay = replay_server(
        fleet.clone(),
        snapshot_data.unwrap_or_default(),
        update_data.unwrap_or_default(),
    )
    .await?;
    let mut fresh = Vec::new();
    for _ in 0..3 {
        browser.goto(&format!("http://{replay}/")).await?;
        let s = browser
            .wait_for(
                "the replayed update rendered",
                Duration::from_secs(60),
                "const s = window.fleetPage; return s.updates > 0 && s.renders > 0 ? s : null",
            )
            .await?;
        let ms = |k: &str| s[k].as_f64().unwrap_or(f64::NAN);
        fresh.push((ms("snapshotRenderMs"), ms("lastRenderMs")));
    }
    let mut snapshot_ms: Vec<f64> = fresh.iter().map(|f| f.0).collect();
    snapshot_ms.sort_by(f64::total_cmp);
    let mut update_ms: Vec<f64> = fresh.iter().map(|f| f.1).collect();
    update_ms.sort_by(f64::total_cmp);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    let snapshot = sizes.iter().find(|(n, _, _)| n == "snapshot");
    let updates: Vec<&(String, usize, usize)> =
        sizes.iter().filter(|(n, _, _)| n == "update").collect();
    let mut bytes: Vec<usize> = updates.iter().map(|u| u.1).collect();
    bytes.sort_unstable();
    let mut per: Vec<usize> = updates.iter().map(|u| u.2).collect();
    per.sort_unstable();
    let pct = |v: &[usize], p: usize| v.get(v.len().saturating_sub(1) * p / 100).copied();
    println!("| measure | value |");
    println!("| --- | --- |");
    if let Some((_, b, n)) = snapshot {
        println!(
            "| snapshot event | {b} bytes, {n} encoders ({} bytes/encoder) |",
            b / (*n).max(1)
        );
    }
    if let Some(t) = first_at {
        println!("| snapshot, request to its data | {} ms |", t.as_millis());
    }
    println!(
        "| update events in {window:?} | {} (median {} bytes / {} encoders, max {} bytes / {} encoders) |",
        updates.len(),
        pct(&bytes, 50).unwrap_or(0),
        pct(&per, 50).unwrap_or(0),
        bytes.last().unwrap_or(&0),
        per.last().unwrap_or(&0),
    );
    let renders: Vec<f64> = live["recentRenderMs"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_f64()).collect())
        .unwrap_or_default();
    let mut sorted = renders.clone();
    sorted.sort_by(f64::total_cmp);
    let fmt = |v: Option<&f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    println!(
        "| page, quiet server: render of the snapshot ({} tiles; least / median / most of 3) | {:.1} / {:.1} / {:.1} ms |",
        n_tiles(&live),
        snapshot_ms[0],
        snapshot_ms[1],
        snapshot_ms[2],
    );
    println!(
        "| page, quiet server: render of the median update (least / median / most of 3) | {:.1} / {:.1} / {:.1} ms |",
        update_ms[0], update_ms[1], update_ms[2],
    );
    println!(
        "| page, live: render of an update (last {} over the settle time) | median {} ms, 90th {} ms, most {} ms |",
        sorted.len(),
        fmt(sorted.get(sorted.len() / 2)),
        fmt(sorted.get(sorted.len().saturating_sub(1) * 9 / 10)),
        fmt(sorted.last()),
    );
    println!(
        "| machine load (1, 5, 15 min) | {} |",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
