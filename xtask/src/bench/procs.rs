//! Child processes that are always stopped: on success, on error and on panic.

use std::{
    fs::File,
    path::Path,
    process::{Child, Command, Stdio},
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

    /// Stops the process: SIGTERM, up to `grace` to exit, then SIGKILL.
    pub(crate) fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let step = Duration::from_millis(50);
        let mut waited = Duration::ZERO;
        while waited < grace {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(step);
            waited += step;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}
