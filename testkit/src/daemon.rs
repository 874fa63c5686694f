//! A background process with its log: waited for until it is ready, and stopped (SIGTERM, then
//! SIGKILL) when dropped, so nothing is left running when whoever started it fails.

use std::{
    fs::{self, OpenOptions},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use crate::error::{Context, Error};

/// How long a stopped process gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// How many of the log's last lines errors quote.
const LOG_TAIL: usize = 40;

/// A running child process whose standard output and error go to a log file.
#[derive(Debug)]
pub struct Daemon {
    what: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` (called `what` in messages) with no standard input and its standard output
    /// and error appended to `log`.
    pub fn spawn(what: &str, cmd: &mut Command, log: &Path) -> Result<Self, Error> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .doing(|| format!("opening {}", log.display()))?;
        let stderr = file
            .try_clone()
            .doing(|| format!("opening {}", log.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(stderr)
            .spawn()
            .doing(|| format!("starting {what} ({})", cmd.get_program().to_string_lossy()))?;
        Ok(Self {
            what: what.to_owned(),
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    /// The process id, while it has not been stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines of the log.
    pub fn log_tail(&self) -> String {
        let text = self.log();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n")
    }

    /// Waits until `ready` holds; fails with the log's end if the process exits first or
    /// `timeout` passes.
    pub fn wait_ready(
        &mut self,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), Error> {
        let started = Instant::now();
        loop {
            if ready() {
                return Ok(());
            }
            if let Some(status) = self.try_wait() {
                return Err(Error::Exited {
                    what: self.what.clone(),
                    status,
                    log: self.log_tail(),
                });
            }
            if started.elapsed() > timeout {
                return Err(Error::Timeout {
                    what: self.what.clone(),
                    timeout,
                    log: self.log_tail(),
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until something accepts TCP connections at `addr`.
    pub fn wait_tcp(&mut self, addr: SocketAddr, timeout: Duration) -> Result<(), Error> {
        self.wait_ready(timeout, || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        })
    }

    /// How the process ended, if it has.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// Sends `signal` without waiting.
    pub fn signal(&self, signal: i32) {
        if let Some(pid) = self
            .child
            .as_ref()
            .and_then(|c| libc::pid_t::try_from(c.id()).ok())
        {
            // SAFETY: kill(2) has no memory-safety preconditions; the child is not reaped yet
            // (`stop` takes it before reaping), so the pid still names it.
            unsafe { libc::kill(pid, signal) };
        }
    }

    /// Sends `signal` and waits for the process to exit; SIGKILL if it is still there after
    /// [`STOP_GRACE`]. Returns how it ended, or `None` if it was stopped before.
    pub fn stop(&mut self, signal: i32) -> Option<ExitStatus> {
        if self.try_wait().is_none() {
            self.signal(signal);
        }
        let mut child = self.child.take()?;
        let started = Instant::now();
        while started.elapsed() < STOP_GRACE {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(10));
        }
        eprintln!(
            "warning: {} did not exit within {STOP_GRACE:?}; killing it",
            self.what
        );
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop(libc::SIGTERM);
    }
}
