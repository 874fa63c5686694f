//! The bpf(2) commands aya does not expose for pinned cgroup links: opening a pinned link's
//! fd, swapping the program behind a link (BPF_LINK_UPDATE) without detaching it, and
//! detaching a link synchronously (BPF_LINK_DETACH; dropping the last reference to a link
//! only detaches it later, from a workqueue).

use std::{
    ffi::CString,
    io,
    os::{
        fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
    path::Path,
};

const BPF_OBJ_GET: libc::c_long = 7;
const BPF_LINK_UPDATE: libc::c_long = 29;
const BPF_LINK_DETACH: libc::c_long = 34;

/// The magic number of a bpffs super block (`statfs.f_type`).
pub const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Opens the bpf object pinned at `path`.
pub fn obj_get(path: &Path) -> io::Result<OwnedFd> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    // union bpf_attr, BPF_OBJ_GET: pathname (u64), bpf_fd (u32), file_flags (u32).
    let mut attr = [0u64; 2];
    attr[0] = c_path.as_ptr() as u64;
    // SAFETY: attr is a valid, zero-padded bpf_attr prefix for BPF_OBJ_GET and outlives the
    // call; c_path stays alive until after it.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Replaces the program behind `link` with `prog`, atomically: the hook never runs without a
/// program.
pub fn link_update(link: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
    // union bpf_attr, BPF_LINK_UPDATE: link_fd, new_prog_fd, flags, old_prog_fd (all u32).
    let mut attr = [0u32; 4];
    attr[0] = link.as_raw_fd() as u32;
    attr[1] = prog.as_raw_fd() as u32;
    // SAFETY: attr is a valid bpf_attr prefix for BPF_LINK_UPDATE; both fds are borrowed for
    // the duration of the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_LINK_UPDATE,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Detaches `link` from its hook now; the link object lives on until its last reference goes.
pub fn link_detach(link: BorrowedFd<'_>) -> io::Result<()> {
    // union bpf_attr, BPF_LINK_DETACH: link_fd (u32).
    let mut attr = [0u32; 1];
    attr[0] = link.as_raw_fd() as u32;
    // SAFETY: attr is a valid bpf_attr prefix for BPF_LINK_DETACH; the fd is borrowed for the
    // duration of the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_LINK_DETACH,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The file-system magic number of the file system holding `path`.
pub fn fs_magic(path: &Path) -> io::Result<i64> {
    let stat = nix::sys::statfs::statfs(path).map_err(io::Error::from)?;
    Ok(stat.filesystem_type().0 as i64)
}
