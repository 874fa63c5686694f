//! Removing everything the demo made, whatever happened: the guard that does it when dropped,
//! and its fallbacks.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use crate::demo_support::{output, print_indented, step};

/// Removes everything the demo created, in reverse order, when dropped.
pub struct Cleanup {
    /// The veil binary, for `veil reset` (the instance's paths are in the environment).
    pub veil: PathBuf,
    /// `veil serve`, once started.
    pub serve: Option<Child>,
    /// The stand-in remote API, once started.
    pub upstream: Option<Child>,
    /// The instance's bpffs directory.
    pub bpf_dir: PathBuf,
    /// The instance's sandbox parent cgroup.
    pub cgroup_parent: PathBuf,
    /// The demo's temp dir: state, run dir, PKI, logs.
    pub tmp: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        step("Cleaning up");
        if let Some(child) = self.serve.take() {
            println!("Stopping veil serve (SIGTERM) and waiting for it to exit");
            warn(stop(child, Duration::from_secs(10)));
        }
        if let Some(mut child) = self.upstream.take() {
            println!("Stopping the stand-in API");
            warn(
                child
                    .kill()
                    .and_then(|()| child.wait())
                    .map(drop)
                    .map_err(Into::into),
            );
        }
        if self.bpf_dir.exists() || self.cgroup_parent.exists() {
            println!("Detaching veil and removing its pins and sandbox cgroups (veil reset)");
            warn(reset(&self.veil));
        }
        if self.bpf_dir.exists() {
            println!("Still there: removing {}", self.bpf_dir.display());
            warn(fs::remove_dir_all(&self.bpf_dir).map_err(Into::into));
        }
        if self.cgroup_parent.exists() {
            println!(
                "Still there: removing the cgroup {}",
                self.cgroup_parent.display()
            );
            warn(remove_cgroup(&self.cgroup_parent));
        }
        println!("Removing {}", self.tmp.display());
        warn(fs::remove_dir_all(&self.tmp).map_err(Into::into));
    }
}

/// Prints a cleanup failure without stopping the rest of the cleanup.
fn warn(result: Result<()>) {
    if let Err(e) = result {
        eprintln!("warning: cleanup step failed: {e:#}");
    }
}

/// Runs `veil reset` (the daemon must have stopped).
fn reset(veil: &Path) -> Result<()> {
    let out = output(Command::new(veil).arg("reset"))?;
    print_indented(&out);
    if !out.status.success() {
        bail!("veil reset failed ({})", out.status);
    }
    Ok(())
}

/// Sends SIGTERM to `child` and waits for it; SIGKILL after `grace`.
fn stop(mut child: Child, grace: Duration) -> Result<()> {
    let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
    if child.try_wait()?.is_none() {
        // SAFETY: kill has no memory-safety preconditions; `child` is not reaped yet, so the
        // pid still names it.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            return Err(std::io::Error::last_os_error()).context("sending SIGTERM");
        }
    }
    let started = Instant::now();
    while started.elapsed() < grace {
        if let Some(status) = child.try_wait()? {
            println!("veil serve exited ({status})");
            return Ok(());
        }
        thread::sleep(Duration::from_millis(50));
    }
    child.kill()?;
    child.wait()?;
    bail!("it did not exit within {grace:?} of SIGTERM; killed it")
}

/// Removes a cgroup and its descendants, killing any processes left in them first.
pub fn remove_cgroup(dir: &Path) -> Result<()> {
    let populated = || {
        fs::read_to_string(dir.join("cgroup.events"))
            .map(|events| events.lines().any(|l| l == "populated 1"))
            .unwrap_or(false)
    };
    if populated() {
        println!("Processes remain in it: killing them (cgroup.kill)");
        fs::write(dir.join("cgroup.kill"), "1").context("writing cgroup.kill")?;
        let started = Instant::now();
        while populated() && started.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(50));
        }
    }
    remove_cgroup_dirs(dir)
}

/// rmdir's `dir` after its child cgroups, retrying while the kernel still releases them.
fn remove_cgroup_dirs(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_cgroup_dirs(&entry.path())?;
        }
    }
    let mut tries = 0;
    loop {
        match fs::remove_dir(dir) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 50 => {
                tries += 1;
                thread::sleep(Duration::from_millis(100));
            }
            result => return result.with_context(|| format!("rmdir {}", dir.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{mounts, process};

    /// remove_cgroup kills what is left in a cgroup tree and removes it (needs root and cgroup2;
    /// skipped otherwise).
    #[test]
    fn remove_cgroup_kills_and_removes_a_populated_tree() -> Result<()> {
        let mounts = mounts::read()?;
        let Some(cgroup2) = mounts::cgroup2(&mounts).filter(|_| process::is_root()) else {
            eprintln!("skipped: needs root and a cgroup2 mount");
            return Ok(());
        };
        let top = cgroup2.join(format!("xtask-test-{}", std::process::id()));
        let leaf = top.join("a/b");
        fs::create_dir_all(&leaf)?;
        let mut sleeper = Command::new("sleep").arg("60").spawn()?;
        fs::write(leaf.join("cgroup.procs"), sleeper.id().to_string())?;
        let removed = remove_cgroup(&top);
        if top.exists() {
            // Leave nothing behind even when the code under test failed.
            let _ = sleeper.kill();
            let _ = sleeper.wait();
            let _ = remove_cgroup_dirs(&top);
        }
        removed?;
        assert!(!top.exists());
        // cgroup.kill sends SIGKILL.
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&sleeper.wait()?),
            Some(libc::SIGKILL)
        );
        Ok(())
    }
}
