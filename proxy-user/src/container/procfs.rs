//! What `/proc` says of a container's process: its cgroup v2 directory, its network
//! namespace, its capability bounding set.

use std::{
    fs,
    path::{Path, PathBuf},
};

use super::ContainerError;
use crate::cgroup;

/// The cgroup v2 directory process `pid` is in, under the cgroup2 mount. The root cgroup is
/// refused: steering it would steer every process on the host.
pub fn cgroup_dir(id: &str, pid: u32) -> Result<PathBuf, ContainerError> {
    let path = PathBuf::from(format!("/proc/{pid}/cgroup"));
    let text = fs::read_to_string(&path).map_err(|source| ContainerError::Io { path, source })?;
    let relative = cgroup2_path(&text).ok_or(ContainerError::NoCgroup2(pid))?;
    if relative == "/" {
        return Err(ContainerError::RootCgroup {
            id: id.to_owned(),
            pid,
        });
    }
    let mount = cgroup::cgroup2_mount()?;
    Ok(mount.join(relative.trim_start_matches('/')))
}

/// The network namespace file of process `pid`.
pub fn netns(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/ns/net"))
}

/// The capability bounding set of process `pid` (`CapBnd` in its status).
pub fn bounding_set(pid: u32) -> Result<u64, ContainerError> {
    let path = PathBuf::from(format!("/proc/{pid}/status"));
    let text = fs::read_to_string(&path).map_err(|source| ContainerError::Io {
        path: path.clone(),
        source,
    })?;
    capability_line(&text, "CapBnd:").ok_or_else(|| ContainerError::Io {
        path,
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "no CapBnd line"),
    })
}

/// The cgroup v2 path in a `/proc/PID/cgroup` text: the `0::PATH` line. A path the kernel
/// marks as outside the reader's cgroup namespace (`/../x`) is not one veil can use.
fn cgroup2_path(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|line| line.strip_prefix("0::"))
        .filter(|path| {
            path.starts_with('/') && !Path::new(path).components().any(|c| c.as_os_str() == "..")
        })
}

/// The hexadecimal mask after `key` in a `/proc/PID/status` text.
fn capability_line(text: &str, key: &str) -> Option<u64> {
    let value = text.lines().find_map(|line| line.strip_prefix(key))?;
    u64::from_str_radix(value.trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cgroup2_line() {
        let hybrid = "1:cpu:/libpod_parent/libpod-abc\n0::/libpod_parent/libpod-abc\n";
        assert_eq!(cgroup2_path(hybrid), Some("/libpod_parent/libpod-abc"));
        assert_eq!(cgroup2_path("0::/\n"), Some("/"));
        assert_eq!(cgroup2_path("0::/../outside\n"), None);
        assert_eq!(cgroup2_path("4:memory:/x\n"), None);
    }

    #[test]
    fn reads_capability_masks() {
        let status = "Name:\tsh\nCapInh:\t0000000000000000\nCapBnd:\t00000000a80425fb\n";
        assert_eq!(capability_line(status, "CapBnd:"), Some(0xa80425fb));
        assert_eq!(capability_line("CapBnd:\tzz\n", "CapBnd:"), None);
    }
}
