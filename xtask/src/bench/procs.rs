//! Child processes that are always stopped: on success, on error and on panic.

use std::{
    fs::File,
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    time::Duration,
};

/// A running child; dropping it stops it (SIGTERM, then SIGKILL after a grace).
#[derive(Debug)]
pub(crate) struct Proc {
    name: &'static str,
    child: Option<Child>,
}

impl Proc {
    /// Starts `program args`, stdout and stderr to `log_dir/NAME.{out,err}`.
    pub(crate) fn spawn(
        name: &'static str,
        program: &Path,
        args: &[String],
        envs: &[(&str, &str)],
        log_dir: &Path,
    ) -> Result<Self, String> {
        let out = File::create(log_dir.join(format!("{name}.out")))
            .map_err(|e| format!("{name}: log file: {e}"))?;
        let err = File::create(log_dir.join(format!("{name}.err")))
            .map_err(|e| format!("{name}: log file: {e}"))?;
        eprintln!("$ {} {}", program.display(), args.join(" "));
        let child = Command::new(program)
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        Ok(Self {
            name,
            child: Some(child),
        })
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// An error if the process has exited.
    pub(crate) fn check_alive(&mut self) -> Result<(), String> {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => Ok(()),
            Some(Ok(Some(status))) => Err(format!("{} exited early ({status})", self.name)),
            Some(Err(e)) => Err(format!("{}: {e}", self.name)),
            None => Err(format!("{} already stopped", self.name)),
        }
    }

    /// Stops the process: SIGTERM, up to `grace` to exit, then SIGKILL. Answers how it
    /// exited after SIGTERM; `None` if it had to be killed or was already stopped.
    pub(crate) fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let step = Duration::from_millis(50);
        let mut waited = Duration::ZERO;
        while waited < grace {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(step);
            waited += step;
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.stop(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(name: &'static str, script: &str) -> Proc {
        let dir = std::env::temp_dir();
        Proc::spawn(
            name,
            Path::new("sh"),
            &["-c".into(), script.into()],
            &[],
            &dir,
        )
        .unwrap()
    }

    #[test]
    fn stop_answers_how_the_process_exited() {
        // Exits 0 on SIGTERM, as conn-supervisor does.
        let mut clean = sh("procs-test-clean", "trap 'exit 0' TERM; sleep 5 & wait");
        std::thread::sleep(Duration::from_millis(200));
        assert!(clean.check_alive().is_ok());
        let status = clean.stop(Duration::from_secs(5)).unwrap();
        assert!(status.success(), "{status}");
        assert!(clean.check_alive().is_err(), "stopped");
        assert_eq!(clean.stop(Duration::from_secs(1)), None, "already stopped");

        // Ignores SIGTERM: killed after the grace, no exit status to report.
        let mut stubborn = sh("procs-test-stubborn", "trap '' TERM; sleep 3");
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(stubborn.stop(Duration::from_millis(300)), None);

        // Exited early with an error: check_alive says so.
        let mut failing = sh("procs-test-failing", "exit 3");
        std::thread::sleep(Duration::from_millis(300));
        let err = failing.check_alive().unwrap_err();
        assert!(err.contains("procs-test-failing exited early"), "{err}");
    }
}
