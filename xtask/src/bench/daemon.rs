//! A background process the benchmark started: stopped (SIGTERM, then SIGKILL) when dropped,
//! so every server goes away also when a scenario fails.

use std::{
    fs::File,
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use crate::process;

/// A running child process with its log file.
#[derive(Debug)]
pub struct Daemon {
    /// What it is, for messages.
    pub what: String,
    /// The process.
    child: Option<Child>,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` with stdout and stderr going to `log`.
    pub fn spawn(what: &str, cmd: &mut Command, log: &Path) -> Result<Self> {
        let file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let line = process::show(cmd);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting `{line}`"))?;
        Ok(Self {
            what: what.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits until `ready` holds; fails with the log if the process exits or 20 s pass.
    pub fn wait_ready(&mut self, mut ready: impl FnMut() -> bool) -> Result<()> {
        let started = Instant::now();
        loop {
            if ready() {
                return Ok(());
            }
            super::interrupt::check()?;
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "{} exited during startup ({status}):\n{}",
                    self.what,
                    self.log_text()
                );
            }
            if started.elapsed() > Duration::from_secs(20) {
                bail!(
                    "{} did not come up within 20 s:\n{}",
                    self.what,
                    self.log_text()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until something accepts TCP connections at `addr`.
    pub fn wait_tcp(&mut self, addr: SocketAddr) -> Result<()> {
        self.wait_ready(|| TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok())
    }

    /// The last 40 lines of the log.
    pub fn log_text(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Sends SIGTERM and waits up to 10 s, then SIGKILL.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            if child.try_wait().ok().flatten().is_none() {
                // SAFETY: kill has no memory-safety preconditions; `child` is not reaped, so
                // the pid still names it.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        eprintln!("warning: {} did not exit on SIGTERM; killing it", self.what);
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}
