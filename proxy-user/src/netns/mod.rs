//! Network namespaces: a sandbox's own namespace, made by veil or adopted from a container,
//! kept alive by a bind mount under `<run-dir>/netns/<name>` so a restarted veil finds it
//! again, and veil's listeners opened inside it ([`listeners`]).
//!
//! Namespace switches happen on a short-lived thread of their own (`setns` and `unshare`
//! with `CLONE_NEWNET` change only the calling thread), so the runtime's threads, and with
//! them every upstream connection, stay in veil's namespace.

mod listeners;
mod loopback;

use std::{
    fs::{self, File, OpenOptions},
    io,
    os::fd::{AsFd, AsRawFd},
    path::{Path, PathBuf},
};

use nix::{
    mount::{mount, umount2, MntFlags, MsFlags},
    sched::{setns, unshare, CloneFlags},
};

pub use listeners::{NsListeners, Ports};

/// Errors from making, adopting, entering or releasing a network namespace.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The path cannot be opened.
    #[error("network namespace {path}: {source}")]
    Open {
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The path is not a network namespace.
    #[error(
        "{0} is not a network namespace (give a file such as /proc/PID/ns/net or one `ip netns` \
         made)"
    )]
    NotNetns(PathBuf),
    /// The namespace is the one veil itself runs in (the host's, for a container run with
    /// the host's network): veil cannot serve it as a sandbox's.
    #[error(
        "{0} is veil's own network namespace (the host's): a sandbox needs a namespace of its \
         own (a container run with the host's network cannot be one)"
    )]
    VeilsOwn(PathBuf),
    /// The kernel refused to create a namespace.
    #[error("creating a network namespace: {0}")]
    Create(io::Error),
    /// Entering a namespace failed.
    #[error("entering network namespace {path}: {source}")]
    Enter {
        /// The namespace's path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Bind-mounting (or unmounting) the namespace failed.
    #[error("keeping network namespace at {path}: {source}")]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Opening a listener inside failed.
    #[error("listening on {addr} in network namespace {path}: {source}")]
    Listen {
        /// The namespace's path.
        path: PathBuf,
        /// The address.
        addr: std::net::SocketAddr,
        /// The error.
        source: io::Error,
    },
}

/// `ioctl(NS_GET_NSTYPE)`: what kind of namespace an nsfs file is (`_IO(0xb7, 0x3)`).
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
/// `SO_NETNS_COOKIE`: the cookie of a socket's network namespace (Linux 5.14).
const SO_NETNS_COOKIE: libc::c_int = 71;

/// Makes a new network namespace with loopback up and keeps it at `path` (a file that must
/// not exist yet; its directory must). Returns the namespace, open.
pub fn create(path: &Path) -> Result<File, NetnsError> {
    mount_point(path)?;
    let made = on_thread(|| {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| NetnsError::Create(e.into()))?;
        loopback::up().map_err(NetnsError::Create)?;
        bind(Path::new("/proc/thread-self/ns/net"), path)
    });
    if made.is_err() {
        let _ = fs::remove_file(path);
    }
    made?;
    open(path)
}

/// Keeps the existing network namespace `source` (e.g. `/proc/PID/ns/net`) at `path` too,
/// so it outlives the processes in it while veil serves it. Returns it, open.
pub fn adopt(source: &Path, path: &Path) -> Result<File, NetnsError> {
    let adopted = open(source)?;
    let own = open(Path::new("/proc/thread-self/ns/net"))?;
    if same_file(&adopted, &own)? {
        return Err(NetnsError::VeilsOwn(source.to_path_buf()));
    }
    mount_point(path)?;
    if let Err(e) = bind(source, path) {
        let _ = fs::remove_file(path);
        return Err(e);
    }
    open(path)
}

/// Whether two namespace files are the same namespace (nsfs: one inode per namespace).
fn same_file(a: &File, b: &File) -> Result<bool, NetnsError> {
    use std::os::unix::fs::MetadataExt;
    let meta = |f: &File| {
        f.metadata().map_err(|source| NetnsError::Open {
            path: PathBuf::from("/proc/thread-self/ns/net"),
            source,
        })
    };
    let (a, b) = (meta(a)?, meta(b)?);
    Ok(a.dev() == b.dev() && a.ino() == b.ino())
}

/// Opens the network namespace file at `path`, checking that it is one.
pub fn open(path: &Path) -> Result<File, NetnsError> {
    let file = File::open(path).map_err(|source| NetnsError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the descriptor's namespace; on a
    // file that is no nsfs file it fails with ENOTTY.
    let kind = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE) };
    if kind != libc::CLONE_NEWNET {
        return Err(NetnsError::NotNetns(path.to_path_buf()));
    }
    Ok(file)
}

/// Lets go of the namespace kept at `path`: unmounts it and removes the file. The namespace
/// itself ends when nothing else holds it. A missing file is no error.
pub fn release(path: &Path) -> Result<(), NetnsError> {
    let mount_err = |source: io::Error| NetnsError::Mount {
        path: path.to_path_buf(),
        source,
    };
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL | nix::Error::ENOENT) => {}
        Err(e) => return Err(mount_err(e.into())),
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(mount_err(e)),
    }
}

/// Runs `f` on a new thread inside the namespace `ns` and returns its result.
pub fn within<T: Send>(
    ns: &File,
    path: &Path,
    f: impl FnOnce() -> Result<T, NetnsError> + Send,
) -> Result<T, NetnsError> {
    on_thread(|| {
        setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| NetnsError::Enter {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        f()
    })
}

/// The cookie of the network namespace `socket` belongs to, as `bpf_get_netns_cookie` gives
/// it to the programs.
pub fn cookie(socket: &impl AsFd) -> io::Result<u64> {
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: the option writes at most `len` bytes into `cookie`, which is that large.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&raw mut cookie).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(cookie)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The cookie of the namespace veil itself runs in.
pub fn own_cookie() -> io::Result<u64> {
    cookie(&std::net::UdpSocket::bind("127.0.0.1:0")?)
}

/// Creates the empty file a namespace is bind-mounted on.
fn mount_point(path: &Path) -> Result<(), NetnsError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map(drop)
        .map_err(|source| NetnsError::Mount {
            path: path.to_path_buf(),
            source,
        })
}

fn bind(source: &Path, path: &Path) -> Result<(), NetnsError> {
    mount(
        Some(source),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| NetnsError::Mount {
        path: path.to_path_buf(),
        source: e.into(),
    })
}

/// Runs `f` on a thread of its own, which ends with it (so a namespace it entered goes too).
fn on_thread<T: Send>(f: impl FnOnce() -> Result<T, NetnsError> + Send) -> Result<T, NetnsError> {
    std::thread::scope(|scope| {
        scope.spawn(f).join().unwrap_or_else(|_| {
            Err(NetnsError::Create(io::Error::other(
                "the namespace thread panicked",
            )))
        })
    })
}
