//! What the forked child does, as root, before it executes the sandboxed command (or
//! bubblewrap): join the sandbox's cgroup and network namespace, give up what a sandbox must
//! not have, and become the unprivileged identity.

use std::{
    ffi::{CStr, CString},
    fs::File,
    io,
    os::unix::ffi::OsStrExt,
    path::Path,
};

use nix::{
    fcntl::{open, OFlag},
    sched::{setns, CloneFlags},
    sys::stat::Mode,
    unistd::{setgid, setgroups, setsid, setuid, write},
};

use super::identity::Ids;

/// The capability packet (and raw) sockets need, dropped from every sandboxed command.
const CAP_NET_RAW: libc::c_ulong = 13;

/// Everything the child needs, prepared before the fork (the child allocates nothing).
pub struct Setup {
    procs: CString,
    netns: Option<File>,
    ids: Option<Ids>,
}

impl Setup {
    /// The setup for a sandbox whose cgroup is `cgroup` and network namespace `netns` (an
    /// open namespace file), run as `ids` (root when `None`).
    pub fn new(cgroup: &Path, netns: Option<File>, ids: Option<Ids>) -> io::Result<Self> {
        let procs = CString::new(cgroup.join("cgroup.procs").as_os_str().as_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(Self { procs, netns, ids })
    }

    /// Runs in the child between fork and exec: only async-signal-safe calls (open, write,
    /// setns, setsid, prctl, setgroups, setgid, setuid; nix's wrappers of them allocate
    /// nothing).
    pub fn apply(&self) -> io::Result<()> {
        join_cgroup(&self.procs)?;
        if let Some(ns) = &self.netns {
            setns(ns, CloneFlags::CLONE_NEWNET)?;
        }
        // A new session without the caller's controlling terminal: nothing in the sandbox can
        // push keystrokes into the caller's shell (TIOCSTI) or take its terminal.
        setsid()?;
        // Packet sockets never pass veil's in-kernel socket checks (the cgroup hook sees
        // inet sockets only); without CAP_NET_RAW in the bounding set nothing in the
        // sandbox can open one, root or a file-capability binary alike.
        check(prctl1(libc::PR_CAPBSET_DROP, CAP_NET_RAW))?;
        // No setuid binary or file capability raises the sandbox's privileges again.
        check(prctl1(libc::PR_SET_NO_NEW_PRIVS, 1))?;
        // The caller's supplementary groups (docker, adm, ...) stay outside.
        setgroups(&[])?;
        if let Some(ids) = self.ids {
            setgid(ids.gid)?;
            setuid(ids.uid)?;
        }
        Ok(())
    }
}

/// Moves the calling process into the cgroup whose `cgroup.procs` is `procs`.
fn join_cgroup(procs: &CStr) -> io::Result<()> {
    let fd = open(procs, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    match write(&fd, b"0")? {
        1 => Ok(()),
        _ => Err(io::ErrorKind::WriteZero.into()),
    }
}

fn prctl1(option: libc::c_int, arg: libc::c_ulong) -> libc::c_int {
    // SAFETY: PR_CAPBSET_DROP and PR_SET_NO_NEW_PRIVS take one integer argument and no
    // pointers; the unused ones are zero as prctl(2) asks.
    unsafe { libc::prctl(option, arg, 0, 0, 0) }
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
