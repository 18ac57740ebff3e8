//! Project tasks: `cargo xtask test`, `cargo xtask bench`, `cargo xtask soak`,
//! `cargo xtask fuzz`, `cargo xtask screenshot`, `cargo xtask fmt`.

mod bench;
mod fuzz;
mod run;
mod screenshot;
mod soak;
mod test;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  test    fmt check, clippy (-D warnings) and every test in the workspace
  bench   criterion benchmarks and the fleet-scale sweep; writes target/bench-summary.md
  soak    a fleet under random faults for --minutes; fails on growth after warm-up or
          streams not back; writes target/soak-report.md (`cargo xtask soak --help`)
  screenshot  docs/fleet-page.png from the demo fleet in headless Chromium
              (more: cargo xtask screenshot --help)
  fuzz    every cargo-fuzz target for --seconds N (default 60) each (nightly, cargo-fuzz);
          crashes go to fuzz/regressions/, which `test` replays
  fmt     format the workspace
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("soak") => soak::run(&args[1..]),
        Some("screenshot") => screenshot::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("fmt") => run::cargo(&["fmt", "--all"]),
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown task {other:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
