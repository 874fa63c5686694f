//! cgroup v2 paths: finding the mount, naming sandboxes, creating, joining and removing them.
//!
//! The parsing and naming rules are pure functions; the rest is thin file-system I/O.

use std::{
    fs, io,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

/// Errors from cgroup handling.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// No cgroup2 file system is mounted.
    #[error("no cgroup v2 file system is mounted (looked for fstype cgroup2 in /proc/mounts)")]
    NoCgroup2,
    /// A sandbox name breaks the naming rule.
    #[error(
        "invalid sandbox name {0:?}: use 1-64 characters from A-Z a-z 0-9 _ . - (not . or ..)"
    )]
    InvalidName(String),
    /// The path is not a directory in the cgroup2 file system.
    #[error("{0} is not a cgroup v2 directory")]
    NotACgroup(PathBuf),
    /// A sandbox cgroup already exists.
    #[error("cgroup {0} already exists (is a sandbox of that name still running?)")]
    Exists(PathBuf),
    /// Processes did not leave a cgroup in time.
    #[error("processes in {0} did not exit after cgroup.kill")]
    Busy(PathBuf),
    /// Any other I/O failure, with the path it concerned.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// Returns the mount point of the cgroup2 file system listed in `mounts` (the text of
/// `/proc/mounts`), if any. Octal escapes in the path (`\040` for a space) are decoded.
pub fn cgroup2_mount_in(mounts: &str) -> Option<PathBuf> {
    mounts.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (_source, target, fstype) = (fields.next()?, fields.next()?, fields.next()?);
        (fstype == "cgroup2").then(|| PathBuf::from(unescape_mount_path(target)))
    })
}

/// Finds the cgroup2 mount point of this machine.
pub fn cgroup2_mount() -> Result<PathBuf, CgroupError> {
    let mounts = fs::read_to_string("/proc/mounts").map_err(|source| CgroupError::Io {
        path: "/proc/mounts".into(),
        source,
    })?;
    cgroup2_mount_in(&mounts).ok_or(CgroupError::NoCgroup2)
}

/// Checks a sandbox name: 1-64 characters from `[A-Za-z0-9_.-]`, not `.` or `..`.
pub fn validate_name(name: &str) -> Result<(), CgroupError> {
    let ok = (1..=64).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(CgroupError::InvalidName(name.to_owned()))
    }
}

/// Resolves a `--cgroup-parent` value: an absolute path is taken as is, a relative one is
/// placed under the cgroup2 mount.
pub fn resolve_parent(mount: &Path, parent: &Path) -> PathBuf {
    if parent.is_absolute() {
        parent.to_path_buf()
    } else {
        mount.join(parent)
    }
}

/// The cgroup id of a cgroup v2 directory: its inode number, which is what
/// `bpf_get_current_cgroup_id()` reports for tasks in it.
pub fn cgroup_id(dir: &Path) -> Result<u64, CgroupError> {
    let meta = fs::metadata(dir).map_err(|source| io_err(dir, source))?;
    if !meta.is_dir() || !dir.join("cgroup.procs").exists() {
        return Err(CgroupError::NotACgroup(dir.to_path_buf()));
    }
    Ok(meta.ino())
}

/// Creates `dir` (and its parents) as cgroups. Fails if `dir` itself already exists.
pub fn create(dir: &Path) -> Result<(), CgroupError> {
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent).map_err(|source| io_err(parent, source))?;
    }
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Err(CgroupError::Exists(dir.to_path_buf()))
        }
        Err(source) => Err(io_err(dir, source)),
    }
}

/// Creates `dir` as a cgroup if it does not exist yet.
pub fn ensure(dir: &Path) -> Result<(), CgroupError> {
    fs::create_dir_all(dir).map_err(|source| io_err(dir, source))
}

/// Kills every process in `dir` and its descendants, waits for them to leave, and removes
/// the directories, deepest first. A missing `dir` is not an error.
pub fn remove(dir: &Path) -> Result<(), CgroupError> {
    if !dir.exists() {
        return Ok(());
    }
    let mut children = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                children.push(entry.path());
            }
        }
    }
    for child in children {
        remove(&child)?;
    }
    if is_populated(dir)? {
        // cgroup.kill is recursive and atomic with respect to forks.
        fs::write(dir.join("cgroup.kill"), "1").map_err(|source| io_err(dir, source))?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while is_populated(dir)? {
            if Instant::now() > deadline {
                return Err(CgroupError::Busy(dir.to_path_buf()));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
    match fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(io_err(dir, source)),
    }
}

/// Whether any process lives in `dir` or below it (`populated` in `cgroup.events`).
pub fn is_populated(dir: &Path) -> Result<bool, CgroupError> {
    let events = dir.join("cgroup.events");
    match fs::read_to_string(&events) {
        Ok(text) => Ok(populated_in(&text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(io_err(&events, source)),
    }
}

fn populated_in(events: &str) -> bool {
    events.lines().any(|line| line.trim() == "populated 1")
}

fn unescape_mount_path(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn io_err(path: &Path, source: io::Error) -> CgroupError {
    CgroupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
sysfs /sys sysfs rw,nosuid 0 0
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
";

    #[test]
    fn finds_hybrid_cgroup2_mount() {
        assert_eq!(
            cgroup2_mount_in(HYBRID),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
    }

    #[test]
    fn finds_unified_mount_and_decodes_escapes() {
        let mounts = "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n";
        assert_eq!(
            cgroup2_mount_in(mounts),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        let spaced = "none /mnt/my\\040cg cgroup2 rw 0 0\n";
        assert_eq!(cgroup2_mount_in(spaced), Some(PathBuf::from("/mnt/my cg")));
    }

    #[test]
    fn no_cgroup2_mount() {
        assert_eq!(
            cgroup2_mount_in("cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n"),
            None
        );
        assert_eq!(cgroup2_mount_in(""), None);
        assert_eq!(cgroup2_mount_in("garbage\n\n  \n"), None);
    }

    #[test]
    fn sandbox_names() {
        for good in ["a", "ci-job_7.x", &"n".repeat(64)] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "ü", &"n".repeat(65), "x\n"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parent_resolution() {
        let mount = Path::new("/sys/fs/cgroup/unified");
        assert_eq!(
            resolve_parent(mount, Path::new("veil")),
            PathBuf::from("/sys/fs/cgroup/unified/veil")
        );
        assert_eq!(
            resolve_parent(mount, Path::new("/elsewhere/x")),
            PathBuf::from("/elsewhere/x")
        );
    }

    #[test]
    fn populated_parsing() {
        assert!(populated_in("populated 1\nfrozen 0\n"));
        assert!(!populated_in("populated 0\nfrozen 0\n"));
        assert!(!populated_in(""));
    }
}
