//! `cargo xtask screenshot`: regenerates `docs/fleet-page.png`, the README's picture
//! of the fleet page: the demo fleet runs for 20 s with the page open in headless
//! Chromium (the browser test's), then, once a tile shows a problem (a failing stream
//! or a reboot, within 40 s more), the window is captured. Extra arguments go to
//! the capturing program (`crates/conn-supervisor/examples/fleet_page.rs`), e.g.
//! `--release --encoders 1000 --measure 20 --out target/fleet-page-1000.png` for the
//! page's numbers at scale (`--release` builds the program optimised).

use crate::run::cargo;

pub(crate) fn run(extra: &[String]) -> Result<(), String> {
    let release = extra.iter().any(|a| a == "--release");
    let extra: Vec<&str> = extra
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--release")
        .collect();
    let mut args = vec![
        "run",
        "--quiet",
        "--package",
        "conn-supervisor",
        "--example",
        "fleet_page",
    ];
    if release {
        args.push("--release");
    }
    args.push("--");
    if extra.is_empty() {
        args.extend([
            "--out",
            "docs/fleet-page.png",
            "--settle",
            "20",
            "--problem",
            "40",
            "--height",
            "540",
        ]);
    }
    args.extend(extra);
    cargo(&args)
}
