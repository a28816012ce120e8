//! Child processes of a test or benchmark, stopped on every path (Drop:
//! SIGTERM, then SIGKILL after a grace), each with its log file.
//! Optionally under `timeout(1)` with a hard time limit, so a process ends
//! by itself even if its parent dies.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a child gets between SIGTERM and SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(15);

/// The `klinecast` binary cargo built for this test or benchmark.
pub const KLINECAST: &str = env!("CARGO_BIN_EXE_klinecast");

/// What to start.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    /// Name for logs and errors.
    pub name: &'a str,
    /// The program (a path, or a name found on `PATH`).
    pub program: &'a str,
    pub args: Vec<String>,
    /// Added to the environment.
    pub env: Vec<(&'a str, &'a str)>,
    /// Where stdout and stderr go.
    pub log: PathBuf,
    /// stdin is a pipe the caller owns (else /dev/null).
    pub piped_stdin: bool,
    /// Run under `timeout(1)`: killed after this long whatever happens.
    pub limit: Option<Duration>,
}

/// A started process.
pub struct Child {
    pub name: String,
    /// The process started: the program itself, or its `timeout(1)` wrapper.
    pub child: std::process::Child,
    /// The program's own pid (under a wrapper: the wrapper's child).
    pub pid: u32,
    pub log: PathBuf,
    /// A history store directory made for this process alone (removed
    /// when it is dropped), unless the test gave `--history-dir` itself.
    pub history_dir: Option<PathBuf>,
}

impl Child {
    /// Starts `klinecast <args>` with its log (stderr) in `log`; stdin is a
    /// pipe the test owns when `piped_stdin`, else /dev/null.
    pub fn spawn(name: &str, args: &[&str], log: PathBuf, piped_stdin: bool) -> Child {
        let args = args.iter().map(|a| (*a).to_owned()).collect();
        // Every gateway process needs a history store of its own (several
        // gateways of one test share a topic); a test that restarts a
        // gateway on the same store passes --history-dir, which wins.
        let history_dir = fresh_history_dir(name);
        let dir = history_dir.to_string_lossy().into_owned();
        let spec = Spec {
            name,
            program: KLINECAST,
            args,
            env: vec![("KLINECAST_LOG", "info"), ("KLINECAST_HISTORY_DIR", &dir)],
            log,
            piped_stdin,
            limit: None,
        };
        let mut child = Child::start(spec).unwrap_or_else(|e| panic!("start klinecast {name}: {e}"));
        child.history_dir = Some(history_dir);
        child
    }

    /// Starts a process as `spec` says.
    pub fn start(spec: Spec<'_>) -> Result<Child, String> {
        let out = fs::File::create(&spec.log).map_err(|e| format!("{}: log file: {e}", spec.name))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut command = match spec.limit {
            None => Command::new(spec.program),
            Some(limit) => {
                let mut wrapper = Command::new("timeout");
                wrapper.args(["-k", "10s", &format!("{}s", limit.as_secs().max(1)), spec.program]);
                wrapper
            }
        };
        command.args(&spec.args).stdout(out).stderr(err);
        command.stdin(if spec.piped_stdin { Stdio::piped() } else { Stdio::null() });
        for (key, value) in &spec.env {
            command.env(key, value);
        }
        let child = command.spawn().map_err(|e| format!("{}: cannot start {}: {e}", spec.name, spec.program))?;
        let mut started =
            Child { name: spec.name.to_owned(), pid: child.id(), child, log: spec.log, history_dir: None };
        if spec.limit.is_some() {
            started.pid = started.wrapped_pid()?;
        }
        Ok(started)
    }

    /// The wrapper's child, from `/proc/<pid>/task/<pid>/children`.
    fn wrapped_pid(&mut self) -> Result<u32, String> {
        let wrapper = self.child.id();
        let path = format!("/proc/{wrapper}/task/{wrapper}/children");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if let Ok(text) = fs::read_to_string(&path)
                && let Some(pid) = text.split_whitespace().next().and_then(|p| p.parse().ok())
            {
                return Ok(pid);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("{} exited at once ({status}); see {}", self.name, self.log.display()));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(format!("{}: no child process under timeout(1)", self.name))
    }

    /// The process's log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines of the log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits until the log contains `needle`; false on timeout or exit.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log_text().contains(needle) {
                return true;
            }
            if !self.alive() {
                return self.log_text().contains(needle);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Waits up to `limit` for the process to end by itself; stops it if
    /// it does not. Returns whether it ended by itself with success.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let started = Instant::now();
        while self.alive() && started.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.alive() {
            eprintln!("{}: still running after {limit:?}; stopping it", self.name);
            self.terminate(TERM_GRACE);
            return false;
        }
        matches!(self.child.try_wait(), Ok(Some(status)) if status.success())
    }

    /// Stops the process ([`TERM_GRACE`] between SIGTERM and SIGKILL).
    pub fn stop(&mut self) {
        self.terminate(TERM_GRACE);
    }

    /// SIGTERM (forwarded by a `timeout(1)` wrapper), then SIGKILL after
    /// `grace`; the exit status if it exited by itself.
    pub fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        signal(self.child.id(), "TERM");
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{}: no exit {grace:?} after SIGTERM; SIGKILL", self.name);
        signal(self.pid, "KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        drop(self.child.stdin.take()); // a replay from stdin ends at EOF
        self.terminate(TERM_GRACE);
        if let Some(dir) = self.history_dir.take() {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

/// A directory no other process uses, for one process's history store.
pub fn fresh_history_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let safe: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("history").join(format!("{safe}-{}-{nanos}", std::process::id()))
}

/// Sends `SIG<name>` to `pid` with kill(1) (no libc bindings here).
pub fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).stderr(Stdio::null()).status();
}

/// A log file for a process of a test, under the target's temp directory.
pub fn log_path(topic: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{topic}-{name}.log"))
}
