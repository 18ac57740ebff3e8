//! The two processes of a soak: `helo-sim` serving the encoders (each on a free port)
//! and `conn-supervisor` supervising them; both stopped on every exit path.

// The xtask drives other processes from plain threads: wall-clock time is right here.
#![allow(clippy::disallowed_types)]

use std::{
    fmt::Write as _,
    path::Path,
    time::{Duration, Instant},
};

use serde_json::Value as Json;

use super::{
    sample::{encoder_id, encoders},
    schedule::Role,
};
use crate::bench::{fleet::Setup, http, procs::Proc};

const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// The simulated devices' password: logins, sessions and their expiry are part of the
/// soak. A test value, not a secret; the supervisor reads it from the environment.
const PASSWORD: &str = "soak-test-password";
const PASSWORD_ENV: &str = "HELO_SOAK_PASSWORD";
/// Logins expire by themselves too, besides the injected expiries.
const SESSION_TTL_S: &str = "300";

/// The supervisor's environment variables the soak sets itself; `--env` adds others.
pub(crate) const OWN_ENV: [&str; 3] = ["RUST_LOG", "NO_COLOR", PASSWORD_ENV];

/// The supervisor settings the soak runs with, besides `min_warm`/`max_connections`
/// (sized to the descriptor budget as `cargo xtask bench` does) and `--set`: checks
/// compressed to see many cycles in an hour, and a short pause after recovery gives up
/// so the settle period sees it try again.
pub(crate) const SETTINGS: [(&str, &str); 4] = [
    ("check_interval", "\"2s\""),
    ("unhealthy_interval", "\"1s\""),
    ("recovery_retry_after", "\"20s\""),
    ("events", "true"),
];

/// The `[defaults]` of the supervisor's configuration: [`SETTINGS`], the pool sized
/// by `setup`, then `overrides` (a key given again replaces its value).
pub(crate) fn settings(setup: Setup, overrides: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = SETTINGS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain(
            [
                ("min_warm", setup.min_warm),
                ("max_connections", setup.max_connections),
            ]
            .into_iter()
            // `None` leaves the supervisor's default.
            .filter_map(|(k, v)| Some((k.to_string(), v?.to_string()))),
        )
        .collect();
    for (key, value) in overrides {
        match out.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1.clone_from(value),
            None => out.push((key.clone(), value.clone())),
        }
    }
    out
}

/// A running fleet.
#[derive(Debug)]
pub(crate) struct Fleet {
    // Dropped in this order: the supervisor stops before its devices do.
    sup: Proc,
    sim: Proc,
    /// `HOST:PORT` of encoder k at `devices[k - 1]`.
    pub(crate) devices: Vec<String>,
    /// helo-sim's fleet control endpoint.
    pub(crate) control: String,
    /// The supervisor's admin API.
    pub(crate) admin: String,
    /// The `[defaults]` it runs with.
    pub(crate) settings: Vec<(String, String)>,
}

impl Fleet {
    /// Starts `n` simulated encoders, then the supervisor over them (with `overrides`
    /// of its settings and `env` added to its environment); logs and the generated
    /// `fleet.toml` go to `dir`.
    pub(crate) fn start(
        bin_dir: &Path,
        dir: &Path,
        n: usize,
        overrides: &[(String, String)],
        env: &[(String, String)],
    ) -> Result<Self, String> {
        let mut sim = Proc::spawn(
            "helo-sim",
            &bin_dir.join("helo-sim"),
            &[
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--encoders".into(),
                n.to_string(),
                "--control".into(),
                "127.0.0.1:0".into(),
                "--seed".into(),
                "7".into(),
                "--password".into(),
                PASSWORD.into(),
                "--session-ttl-s".into(),
                SESSION_TTL_S.into(),
            ],
            &[("RUST_LOG", "warn"), ("NO_COLOR", "1")],
            dir,
        )?;
        let banner = wait_for_output(&mut sim, &dir.join("helo-sim.out"), |text| {
            parse_sim_banner(text, n)
        })?;
        let (devices, control) = banner;
        let settings = settings(Setup::new(n, true), overrides);
        let config = config_text(&devices, &settings);
        let config_path = dir.join("fleet.toml");
        std::fs::write(&config_path, config)
            .map_err(|e| format!("{}: {e}", config_path.display()))?;
        let mut sup = Proc::spawn(
            "conn-supervisor",
            &bin_dir.join("conn-supervisor"),
            &[
                "run".into(),
                "--config".into(),
                config_path.display().to_string(),
            ],
            &[
                ("RUST_LOG", "warn"),
                ("NO_COLOR", "1"),
                (PASSWORD_ENV, PASSWORD),
            ]
            .into_iter()
            .chain(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .collect::<Vec<_>>(),
            dir,
        )?;
        let admin = wait_for_output(&mut sup, &dir.join("conn-supervisor.out"), parse_admin)?;
        Ok(Self {
            sup,
            sim,
            devices,
            control,
            admin,
            settings,
        })
    }

    pub(crate) fn supervisor_pid(&self) -> u32 {
        self.sup.pid()
    }

    /// An error naming the process that exited.
    pub(crate) fn check_alive(&mut self) -> Result<(), String> {
        self.sup.check_alive()?;
        self.sim.check_alive()
    }

    /// Waits until the supervisor has checked every encoder once.
    pub(crate) fn wait_checked(&mut self, limit: Duration) -> Result<Duration, String> {
        let started = Instant::now();
        let n = self.devices.len();
        loop {
            self.check_alive()?;
            if let Ok(list) = encoders(&self.admin) {
                let checked = list.iter().filter(|e| e.checks > 0).count();
                if list.len() == n && checked == n {
                    return Ok(started.elapsed());
                }
            }
            if started.elapsed() > limit {
                return Err(format!(
                    "the supervisor had not checked every encoder after {limit:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Applies a fault patch to encoder `k` through helo-sim's fleet control endpoint.
    pub(crate) fn inject(&self, k: usize, patch: &str) -> Result<(), String> {
        let r = http::post(
            &self.control,
            &format!("/sim/fleet/devices/{k}/faults"),
            patch,
            HTTP_TIMEOUT,
        )?;
        if r.status == 200 {
            Ok(())
        } else {
            let body: String = r.body.chars().take(200).collect();
            Err(format!("answered {}: {body}", r.status))
        }
    }

    /// Encoder `k`'s own stream and record states (2 = active), from its `/sim/state`:
    /// the truth the supervisor's status is checked against.
    pub(crate) fn device_replicators(
        &self,
        k: usize,
    ) -> Result<(Option<i64>, Option<i64>), String> {
        let addr = self
            .devices
            .get(k.wrapping_sub(1))
            .ok_or_else(|| format!("no encoder {k}"))?;
        let r = http::get(addr, "/sim/state", HTTP_TIMEOUT)?;
        let json: Json =
            serde_json::from_str(&r.body).map_err(|e| format!("{addr}/sim/state: {e}"))?;
        Ok((
            json["state"]["stream_state"].as_i64(),
            json["state"]["record_state"].as_i64(),
        ))
    }

    /// Stops the supervisor with SIGTERM, as an operator would: an error unless it
    /// was still running and exits 0 within 10 s. Then stops the devices.
    pub(crate) fn stop(&mut self) -> Result<(), String> {
        let alive = self.sup.check_alive();
        let exit = self.sup.stop(Duration::from_secs(10));
        let _ = self.sim.stop(Duration::from_secs(10));
        alive?;
        match exit {
            Some(status) if status.success() => Ok(()),
            Some(status) => Err(format!("exited with {status} on SIGTERM")),
            None => Err("still running 10 s after SIGTERM (killed)".into()),
        }
    }
}

/// Polls a child's stdout file until `parse` finds what it needs (60 s at most).
fn wait_for_output<T>(
    child: &mut Proc,
    path: &Path,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, String> {
    let started = Instant::now();
    loop {
        child.check_alive()?;
        if let Some(found) = std::fs::read_to_string(path)
            .ok()
            .as_deref()
            .and_then(&parse)
        {
            return Ok(found);
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!("nothing usable in {} after 60 s", path.display()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// helo-sim's banner: `encoder-K http://ADDR` for every encoder, then
/// `control http://ADDR`. `None` until all of it is there.
pub(crate) fn parse_sim_banner(text: &str, n: usize) -> Option<(Vec<String>, String)> {
    let mut devices = vec![String::new(); n];
    let mut control = None;
    for line in text.lines() {
        let Some((name, url)) = line.split_once(' ') else {
            continue;
        };
        let addr = url.trim().strip_prefix("http://")?.trim_end_matches('/');
        if name == "control" {
            control = Some(addr.to_string());
        } else if let Some(k) = name
            .strip_prefix("encoder-")
            .and_then(|k| k.parse::<usize>().ok())
        {
            *devices.get_mut(k.checked_sub(1)?)? = addr.to_string();
        }
    }
    let control = control?;
    devices
        .iter()
        .all(|d| !d.is_empty())
        .then_some((devices, control))
}

/// The supervisor's first line: `admin: http://ADDR/`.
pub(crate) fn parse_admin(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("admin: http://"))
        .map(|a| a.trim().trim_end_matches('/').to_string())
}

/// The supervisor's configuration over `devices`.
pub(crate) fn config_text(devices: &[String], settings: &[(String, String)]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# generated by `cargo xtask soak`");
    let _ = writeln!(s, "admin_listen = \"127.0.0.1:0\"\n");
    let _ = writeln!(s, "[defaults]");
    for (key, value) in settings {
        let _ = writeln!(s, "{key} = {value}");
    }
    s.push('\n');
    for (i, addr) in devices.iter().enumerate() {
        let k = i + 1;
        let role = Role::of(k);
        let _ = writeln!(s, "[[encoder]]");
        let _ = writeln!(s, "id = \"{}\"", encoder_id(k));
        let _ = writeln!(s, "url = \"http://{addr}\"");
        let _ = writeln!(s, "password_env = \"{PASSWORD_ENV}\"");
        if role.streaming {
            let _ = writeln!(s, "expect_streaming = true");
        }
        if role.recording {
            let _ = writeln!(s, "expect_recording = true");
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_banners() {
        let text = "encoder-2 http://127.0.0.1:40002\nencoder-1 http://127.0.0.1:40001\n";
        assert_eq!(parse_sim_banner(text, 2), None, "no control line yet");
        let text = format!("{text}control http://127.0.0.1:39999\n");
        assert_eq!(
            parse_sim_banner(&text, 2),
            Some((
                vec!["127.0.0.1:40001".to_string(), "127.0.0.1:40002".to_string()],
                "127.0.0.1:39999".to_string()
            ))
        );
        assert_eq!(parse_sim_banner(&text, 3), None, "encoder 3 missing");
        assert_eq!(
            parse_admin("admin: http://127.0.0.1:41234/\nother\n"),
            Some("127.0.0.1:41234".to_string())
        );
        assert_eq!(parse_admin("starting\n"), None);
    }

    #[test]
    fn the_config_gives_every_encoder_its_role_and_no_password() {
        let devices: Vec<String> = (1..=10)
            .map(|k| format!("127.0.0.1:{}", 40_000 + k))
            .collect();
        let text = config_text(&devices, &settings(Setup::new(10, true), &[]));
        assert_eq!(text.matches("[[encoder]]").count(), 10);
        assert_eq!(text.matches("expect_streaming = true").count(), 9);
        assert_eq!(text.matches("expect_recording = true").count(), 1);
        assert!(text.contains("id = \"enc-00010\"\nurl = \"http://127.0.0.1:40010\""));
        assert!(text.contains("check_interval = \"2s\""));
        assert!(text.contains("admin_listen = \"127.0.0.1:0\""));
        assert!(
            text.contains("min_warm = 1\nmax_connections = 2\n"),
            "{text}"
        );
        assert!(
            !text.contains(PASSWORD),
            "the password stays in the environment"
        );
    }

    #[test]
    fn overrides_replace_a_setting_or_add_one() {
        let set = |k: &str, v: &str| (k.to_string(), v.to_string());
        let s = settings(
            Setup::new(10, true),
            &[
                set("check_interval", "\"30s\""),
                set("max_lifetime", "120"),
                set("min_warm", "2"),
            ],
        );
        let text = config_text(&[], &s);
        assert!(text.contains("check_interval = \"30s\"\n"), "{text}");
        assert!(!text.contains("\"2s\""), "replaced, not repeated: {text}");
        assert!(text.contains("min_warm = 2\n"), "{text}");
        assert!(text.ends_with("max_lifetime = 120\n\n"), "{text}");
    }
}
