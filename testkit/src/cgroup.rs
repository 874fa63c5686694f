//! Removing a cgroup tree, whatever is still running in it.

use std::{
    fs,
    path::Path,
    thread,
    time::{Duration, Instant},
};

use crate::error::{Context, Error};

/// How long the kernel may take to let go of a killed cgroup.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// Kills every process in the cgroup at `dir` and below (`cgroup.kill`), then removes it and
/// its descendants. A cgroup that is not there is fine.
pub fn remove_cgroup(dir: &Path) -> Result<(), Error> {
    if !dir.exists() {
        return Ok(());
    }
    let populated = || {
        fs::read_to_string(dir.join("cgroup.events"))
            .is_ok_and(|events| events.lines().any(|l| l == "populated 1"))
    };
    if populated() {
        fs::write(dir.join("cgroup.kill"), "1")
            .doing(|| format!("writing {}/cgroup.kill", dir.display()))?;
        let started = Instant::now();
        while populated() && started.elapsed() < RELEASE_TIMEOUT {
            thread::sleep(Duration::from_millis(10));
        }
    }
    remove_dirs(dir)
}

/// rmdir's `dir` after its child cgroups, retrying while the kernel still releases them.
fn remove_dirs(dir: &Path) -> Result<(), Error> {
    for entry in fs::read_dir(dir).doing(|| format!("listing {}", dir.display()))? {
        let entry = entry.doing(|| format!("listing {}", dir.display()))?;
        if entry.path().is_dir() {
            remove_dirs(&entry.path())?;
        }
    }
    let started = Instant::now();
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                if started.elapsed() > RELEASE_TIMEOUT {
                    return Err(Error::CgroupBusy(dir.to_path_buf()));
                }
                thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(Error::io(format!("rmdir {}", dir.display()), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{os::unix::process::ExitStatusExt, process::Command};

    use super::*;
    use crate::mounts;

    /// remove_cgroup kills what is left in a cgroup tree and removes it (needs root and
    /// cgroup2; skipped otherwise).
    #[test]
    fn kills_and_removes_a_populated_tree() {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let Some(cgroup2) = mounts::cgroup2_mount().ok().filter(|_| root) else {
            eprintln!("skipped: needs root and a cgroup2 mount");
            return;
        };
        let top = cgroup2.join(format!("veil-testkit-{}", std::process::id()));
        let leaf = top.join("a/b");
        fs::create_dir_all(&leaf).expect("creating the cgroups");
        let mut sleeper = Command::new("sleep").arg("60").spawn().expect("sleep runs");
        fs::write(leaf.join("cgroup.procs"), sleeper.id().to_string()).expect("moving sleep");
        let removed = remove_cgroup(&top);
        if top.exists() {
            // Leave nothing behind even when the code under test failed.
            let _ = sleeper.kill();
            let _ = sleeper.wait();
            let _ = remove_dirs(&top);
        }
        removed.expect("the tree is removed");
        assert!(!top.exists());
        // cgroup.kill sends SIGKILL.
        let status = sleeper.wait().expect("sleep is reaped");
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }
}
