//! The mount table (/proc/mounts): where cgroup2 is, whether bpffs is mounted.

use std::path::{Path, PathBuf};

use crate::error::{Context, Error};

/// One line of /proc/mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted.
    pub target: PathBuf,
    /// The filesystem type (`cgroup2`, `bpf`, ...).
    pub fstype: String,
}

/// Reads and parses /proc/mounts.
pub fn read() -> Result<Vec<Mount>, Error> {
    let text = std::fs::read_to_string("/proc/mounts").doing(|| "reading /proc/mounts".into())?;
    Ok(parse(&text))
}

/// Where the cgroup2 file system is mounted, from /proc/mounts.
pub fn cgroup2_mount() -> Result<PathBuf, Error> {
    cgroup2(&read()?)
        .map(Path::to_path_buf)
        .ok_or(Error::NoCgroup2)
}

/// Parses the text of /proc/mounts; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _source = fields.next()?;
            let target = fields.next()?;
            let fstype = fields.next()?;
            Some(Mount {
                target: PathBuf::from(unescape(target)),
                fstype: unescape(fstype),
            })
        })
        .collect()
}

/// Undoes the kernel's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| {
            bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)) && d[0] <= b'3'
        });
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

/// The mount point of the first cgroup2 filesystem.
pub fn cgroup2(mounts: &[Mount]) -> Option<&Path> {
    mounts
        .iter()
        .find(|m| m.fstype == "cgroup2")
        .map(|m| m.target.as_path())
}

/// Whether a bpf filesystem is mounted at `path`.
pub fn has_bpffs_at(mounts: &[Mount], path: &Path) -> bool {
    mounts.iter().any(|m| m.fstype == "bpf" && m.target == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /sys/fs/cgroup tmpfs ro,nosuid,nodev,noexec,mode=755 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nosuid,nodev,noexec,relatime 0 0
cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,nodev,noexec,relatime,cpu,cpuacct 0 0
";

    #[test]
    fn finds_cgroup2_in_hybrid_layout() {
        let mounts = parse(HYBRID);
        assert_eq!(mounts.len(), 4);
        assert_eq!(cgroup2(&mounts), Some(Path::new("/sys/fs/cgroup/unified")));
    }

    #[test]
    fn finds_cgroup2_in_unified_layout() {
        let mounts = parse("cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n");
        assert_eq!(cgroup2(&mounts), Some(Path::new("/sys/fs/cgroup")));
    }

    #[test]
    fn no_cgroup2_when_only_v1() {
        let mounts = parse("cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n");
        assert_eq!(cgroup2(&mounts), None);
    }

    #[test]
    fn detects_bpffs_only_at_the_exact_path() {
        let bpf = Path::new("/sys/fs/bpf");
        assert!(!has_bpffs_at(&parse(HYBRID), bpf));
        let mounted = format!("{HYBRID}bpf /sys/fs/bpf bpf rw,relatime 0 0\n");
        assert!(has_bpffs_at(&parse(&mounted), bpf));
        let elsewhere = "bpf /run/bpf bpf rw 0 0\nnone /sys/fs/bpf tmpfs rw 0 0\n";
        assert!(!has_bpffs_at(&parse(elsewhere), bpf));
    }

    #[test]
    fn unescapes_octal_and_skips_short_lines() {
        let mounts = parse("garbage\n/dev/sda1 /mnt/my\\040disk ext4 rw 0 0\n");
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].target, Path::new("/mnt/my disk"));
        assert_eq!(unescape(r"a\\b\04"), r"a\\b\04");
    }
}
