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
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
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

/// `BPF_LINK_TYPE_CGROUP`: a link attaching a program to a cgroup.
pub const LINK_TYPE_CGROUP: u32 = 3;

/// What the kernel says about a cgroup link (`struct bpf_link_info`, its `cgroup` member).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    /// The link's type (`BPF_LINK_TYPE_*`).
    pub kind: u32,
    /// The cgroup it is attached to; 0 once it was detached (`BPF_LINK_DETACH`, or its
    /// cgroup was removed).
    pub cgroup_id: u64,
    /// The hook (`enum bpf_attach_type`).
    pub attach_type: u32,
}

/// `struct bpf_link_info` up to its `cgroup` member, with room to spare (which the kernel
/// accepts as long as it is zero).
#[repr(C, align(8))]
struct RawLinkInfo {
    kind: u32,
    _id: u32,
    _prog_id: u32,
    _padding: u32,
    cgroup_id: u64,
    attach_type: u32,
    _rest: [u32; 25],
}

/// `union bpf_attr` for BPF_OBJ_GET_INFO_BY_FD.
#[repr(C)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// Asks the kernel about `link` (BPF_OBJ_GET_INFO_BY_FD).
pub fn link_info(link: BorrowedFd<'_>) -> io::Result<LinkInfo> {
    let mut info = RawLinkInfo {
        kind: 0,
        _id: 0,
        _prog_id: 0,
        _padding: 0,
        cgroup_id: 0,
        attach_type: 0,
        _rest: [0; 25],
    };
    let mut attr = InfoAttr {
        bpf_fd: link.as_raw_fd() as u32,
        info_len: std::mem::size_of::<RawLinkInfo>() as u32,
        info: std::ptr::addr_of_mut!(info) as u64,
    };
    // SAFETY: attr is a valid bpf_attr for BPF_OBJ_GET_INFO_BY_FD; info is writable for the
    // length given and outlives the call; the fd is borrowed for its duration.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET_INFO_BY_FD,
            std::ptr::addr_of_mut!(attr),
            std::mem::size_of::<InfoAttr>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(LinkInfo {
        kind: info.kind,
        cgroup_id: info.cgroup_id,
        attach_type: info.attach_type,
    })
}

/// The file-system magic number of the file system holding `path`.
pub fn fs_magic(path: &Path) -> io::Result<i64> {
    let stat = nix::sys::statfs::statfs(path).map_err(io::Error::from)?;
    Ok(stat.filesystem_type().0 as i64)
}
