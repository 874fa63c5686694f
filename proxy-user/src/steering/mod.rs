//! Steering: loading veil's eBPF programs, attaching them to cgroups, pinning them in bpffs,
//! and taking each steered connection's original destination out of the kernel's map.
//!
//! Layout under the bpf directory (default `/sys/fs/bpf/veil`):
//!
//! ```text
//! maps/VEIL_BY_COOKIE, maps/VEIL_BY_PEER    the connection maps, shared by every load
//! links/<cgroup id>/{connect4,sock_ops,sock_release}   one pinned link per hook per cgroup
//! ```
//!
//! Links stay attached while their pins exist, whether or not veil runs: with no listener the
//! rewritten connects are refused (fail closed). Every `veil serve` loads the embedded object
//! afresh, reuses the pinned maps, and swaps its programs into the pinned links with
//! `BPF_LINK_UPDATE`, so a restart never attaches twice and never leaves a hook empty.

mod keys;
mod sys;

use std::{
    fs::{self, File},
    io,
    net::{SocketAddr, SocketAddrV4},
    os::fd::AsFd,
    path::{Path, PathBuf},
    str::FromStr,
};

use aya::{
    maps::{HashMap, MapData, MapError},
    programs::{
        links::FdLink, CgroupAttachMode, CgroupSock, CgroupSockAddr, ProgramError, SockOps,
    },
    Ebpf, EbpfLoader,
};
use veil_ebpf::{
    ConnRecord, Endpoint, GLOBAL_PROXY_IP4, GLOBAL_PROXY_PORT, MAP_BY_PEER, PROG_CONNECT4,
    PROG_SOCK_OPS, PROG_SOCK_RELEASE,
};

use crate::cgroup::{self, CgroupError};

pub use keys::{comm, endpoint, socket_addr};

/// The eBPF object built by `cargo xtask build-ebpf`, embedded at compile time.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/veil-ebpf.o"));

/// Errors from loading, attaching and reading the eBPF side.
#[derive(Debug, thiserror::Error)]
pub enum SteeringError {
    /// The bpf directory is not on bpffs and bpffs could not be mounted.
    #[error(
        "{0} is not on a bpf file system; mount one with `mount -t bpf bpf /sys/fs/bpf` (needs root)"
    )]
    NoBpffs(PathBuf),
    /// Loading the object failed (verifier, permissions, or incompatible pinned maps).
    #[error(
        "loading veil's eBPF programs failed (are you root? pinned maps in {maps} from another \
         veil version must be removed with `veil reset`): {source}"
    )]
    Load {
        /// The map pin directory.
        maps: PathBuf,
        /// The loader's error.
        source: Box<aya::EbpfError>,
    },
    /// A program operation failed.
    #[error("{what}: {source}")]
    Program {
        /// What was being done.
        what: String,
        /// The error.
        source: Box<ProgramError>,
    },
    /// A map was missing or of the wrong type.
    #[error("map {name}: {source}")]
    Map {
        /// The map's name.
        name: &'static str,
        /// The error.
        source: Box<MapError>,
    },
    /// The listener address cannot be steered to.
    #[error("cannot steer to {0}: veil's listener must be a specific IPv4 address with a port")]
    BadListener(SocketAddr),
    /// A cgroup problem.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// Any other I/O failure, with the path it concerned.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// How much the eBPF programs log (through aya-log into veil's own log). Statements below the
/// level are pruned by the verifier at load time, so `Off` costs nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BpfLogLevel {
    /// No logging.
    #[default]
    Off = 0,
    /// Errors only.
    Error = 1,
    /// Warnings and errors.
    Warn = 2,
    /// Informational messages and above.
    Info = 3,
    /// Per-connection messages and above.
    Debug = 4,
    /// Everything.
    Trace = 5,
}

impl FromStr for BpfLogLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "off" => Self::Off,
            "error" => Self::Error,
            "warn" => Self::Warn,
            "info" => Self::Info,
            "debug" => Self::Debug,
            "trace" => Self::Trace,
            _ => {
                return Err(format!(
                    "unknown level {s:?}: use off, error, warn, info, debug or trace"
                ))
            }
        })
    }
}

impl BpfLogLevel {
    /// The `log` crate filter that lets records of this level through.
    pub fn filter(self) -> log::LevelFilter {
        match self {
            Self::Off => log::LevelFilter::Off,
            Self::Error => log::LevelFilter::Error,
            Self::Warn => log::LevelFilter::Warn,
            Self::Info => log::LevelFilter::Info,
            Self::Debug => log::LevelFilter::Debug,
            Self::Trace => log::LevelFilter::Trace,
        }
    }
}

/// What `load` needs to know.
#[derive(Clone, Debug)]
pub struct SteeringConfig {
    /// The bpffs directory veil pins under.
    pub dir: PathBuf,
    /// veil's listener, which connects are rewritten to.
    pub listen: SocketAddr,
    /// How much the programs log.
    pub log_level: BpfLogLevel,
}

/// Whether `attach` found the cgroup already steered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attached {
    /// Links were created and pinned now.
    New(u64),
    /// Pinned links existed already (and run this process's programs since `load`).
    Existing(u64),
}

/// The loaded programs and the map veil reads original destinations from.
pub struct Steering {
    ebpf: Ebpf,
    by_peer: HashMap<MapData, Endpoint, ConnRecord>,
    dir: PathBuf,
}

/// The hooks veil attaches, with the pin file name of each.
const HOOKS: [(&str, &str); 3] = [
    (PROG_CONNECT4, "connect4"),
    (PROG_SOCK_OPS, "sock_ops"),
    (PROG_SOCK_RELEASE, "sock_release"),
];

impl Steering {
    /// Loads the embedded programs, reusing (or creating and pinning) the connection maps under
    /// `config.dir`, and moves every pinned link onto the new programs. Returns the cgroup ids
    /// that were already steered.
    pub fn load(config: &SteeringConfig) -> Result<(Self, Vec<u64>), SteeringError> {
        let SocketAddr::V4(listen) = config.listen else {
            return Err(SteeringError::BadListener(config.listen));
        };
        if listen.ip().is_unspecified() || listen.port() == 0 {
            return Err(SteeringError::BadListener(config.listen));
        }
        ensure_bpffs(&config.dir)?;
        let maps = config.dir.join("maps");
        for dir in [&maps, &config.dir.join("links")] {
            fs::create_dir_all(dir).map_err(|source| io_err(dir, source))?;
        }
        let mut ebpf = load_object(&maps, listen, config.log_level)?;
        for (name, _) in HOOKS {
            load_program(&mut ebpf, name)?;
        }
        let by_peer = ebpf
            .take_map(MAP_BY_PEER)
            .ok_or(MapError::InvalidName {
                name: MAP_BY_PEER.to_owned(),
            })
            .and_then(HashMap::try_from)
            .map_err(|source| SteeringError::Map {
                name: MAP_BY_PEER,
                source: Box::new(source),
            })?;
        let steering = Self {
            ebpf,
            by_peer,
            dir: config.dir.clone(),
        };
        let steered = steering.adopt_pinned_links()?;
        Ok((steering, steered))
    }

    /// Steers the cgroup at `dir` (and every cgroup below it) through veil, pinning the links.
    pub fn attach(&mut self, dir: &Path) -> Result<Attached, SteeringError> {
        let cgroup_id = cgroup::cgroup_id(dir)?;
        let link_dir = self.link_dir(cgroup_id);
        if HOOKS.iter().all(|(_, pin)| link_dir.join(pin).exists()) {
            return Ok(Attached::Existing(cgroup_id));
        }
        fs::create_dir_all(&link_dir).map_err(|source| io_err(&link_dir, source))?;
        let cgroup = File::open(dir).map_err(|source| io_err(dir, source))?;
        for (name, pin) in HOOKS {
            let pin_path = link_dir.join(pin);
            if pin_path.exists() {
                continue;
            }
            if let Err(e) = self.attach_one(name, &cgroup, &pin_path) {
                // Leave nothing half-attached behind.
                self.detach(cgroup_id)?;
                return Err(e);
            }
        }
        Ok(Attached::New(cgroup_id))
    }

    /// Stops steering the cgroup with this id: detaches its links at once and unpins them. A
    /// cgroup that was not steered is not an error.
    pub fn detach(&mut self, cgroup_id: u64) -> Result<(), SteeringError> {
        let link_dir = self.link_dir(cgroup_id);
        for (_, pin) in HOOKS {
            let path = link_dir.join(pin);
            match sys::obj_get(&path) {
                Ok(link) => match sys::link_detach(link.as_fd()) {
                    // ENOLINK: already detached (its cgroup was removed).
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::ENOLINK) => {}
                    Err(source) => return Err(io_err(&path, source)),
                },
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(io_err(&path, source)),
            }
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(io_err(&path, source)),
            }
        }
        match fs::remove_dir(&link_dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(io_err(&link_dir, source)),
        }
    }

    /// Takes the record the kernel filed for a connection whose client end is `peer`: looks
    /// it up and deletes it, so a record is used once. `None` means veil has no record and
    /// must refuse the connection.
    pub fn take(&mut self, peer: SocketAddr) -> Option<ConnRecord> {
        let key = endpoint(peer);
        match self.by_peer.get(&key, 0) {
            Ok(record) => {
                if let Err(e) = self.by_peer.remove(&key) {
                    log::warn!("removing the record for {peer}: {e}");
                }
                Some(record)
            }
            Err(MapError::KeyNotFound) => None,
            Err(e) => {
                log::error!("looking up the record for {peer}: {e}");
                None
            }
        }
    }

    /// Starts forwarding the programs' aya-log records to veil's log.
    pub fn logger(&mut self) -> Result<aya_log::EbpfLogger<&'static dyn log::Log>, SteeringError> {
        aya_log::EbpfLogger::init(&mut self.ebpf).map_err(|e| SteeringError::Io {
            path: self.dir.clone(),
            source: io::Error::other(format!("starting the eBPF logger: {e}")),
        })
    }

    fn attach_one(&mut self, name: &str, cgroup: &File, pin: &Path) -> Result<(), SteeringError> {
        let what = || format!("attaching {name} to cgroup");
        let wrap = |source: ProgramError| SteeringError::Program {
            what: what(),
            source: Box::new(source),
        };
        let link: FdLink = match name {
            PROG_CONNECT4 => {
                let prog: &mut CgroupSockAddr = program(&mut self.ebpf, name)?;
                let id = prog
                    .attach(cgroup, CgroupAttachMode::Single)
                    .map_err(wrap)?;
                let link = prog.take_link(id).map_err(wrap)?;
                link.try_into().map_err(|e| link_err(what(), e))?
            }
            PROG_SOCK_OPS => {
                let prog: &mut SockOps = program(&mut self.ebpf, name)?;
                let id = prog
                    .attach(cgroup, CgroupAttachMode::Single)
                    .map_err(wrap)?;
                let link = prog.take_link(id).map_err(wrap)?;
                link.try_into().map_err(|e| link_err(what(), e))?
            }
            _ => {
                let prog: &mut CgroupSock = program(&mut self.ebpf, name)?;
                let id = prog
                    .attach(cgroup, CgroupAttachMode::Single)
                    .map_err(wrap)?;
                let link = prog.take_link(id).map_err(wrap)?;
                link.try_into().map_err(|e| link_err(what(), e))?
            }
        };
        link.pin(pin).map_err(|e| SteeringError::Io {
            path: pin.to_path_buf(),
            source: io::Error::other(e.to_string()),
        })?;
        Ok(())
    }

    /// Moves every pinned link onto this load's programs; drops pins whose cgroup is gone.
    fn adopt_pinned_links(&self) -> Result<Vec<u64>, SteeringError> {
        let links = self.dir.join("links");
        let entries = fs::read_dir(&links).map_err(|source| io_err(&links, source))?;
        let mut steered = Vec::new();
        for entry in entries.flatten() {
            let Some(cgroup_id) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            let mut live = true;
            for (name, pin) in HOOKS {
                let path = entry.path().join(pin);
                if !path.exists() {
                    continue;
                }
                let fd = self.program_fd(name)?;
                let link = sys::obj_get(&path).map_err(|source| io_err(&path, source))?;
                match sys::link_update(link.as_fd(), fd) {
                    Ok(()) => {}
                    // ENOLINK: the cgroup was removed and the link is defunct.
                    Err(e) if e.raw_os_error() == Some(libc::ENOLINK) => live = false,
                    Err(source) => return Err(io_err(&path, source)),
                }
            }
            if live {
                steered.push(cgroup_id);
            } else {
                log::info!("cgroup {cgroup_id} no longer exists; removing its pinned links");
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        Ok(steered)
    }

    fn program_fd(&self, name: &str) -> Result<std::os::fd::BorrowedFd<'_>, SteeringError> {
        let prog = self
            .ebpf
            .program(name)
            .ok_or_else(|| missing_program(name))?;
        let fd = prog.fd().map_err(|source| SteeringError::Program {
            what: format!("program {name}"),
            source: Box::new(source),
        })?;
        Ok(fd.as_fd())
    }

    fn link_dir(&self, cgroup_id: u64) -> PathBuf {
        self.dir.join("links").join(cgroup_id.to_string())
    }
}

fn load_object(
    maps: &Path,
    listen: SocketAddrV4,
    level: BpfLogLevel,
) -> Result<Ebpf, SteeringError> {
    let ip = u32::from_ne_bytes(listen.ip().octets());
    let port = u32::from(listen.port().to_be());
    let level = level as u8;
    EbpfLoader::new()
        .default_map_pin_directory(maps)
        .override_global(GLOBAL_PROXY_IP4, &ip, true)
        .override_global(GLOBAL_PROXY_PORT, &port, true)
        .override_global(aya_log::LEVEL, &level, false)
        .load(OBJECT)
        .map_err(|source| SteeringError::Load {
            maps: maps.to_path_buf(),
            source: Box::new(source),
        })
}

fn load_program(ebpf: &mut Ebpf, name: &str) -> Result<(), SteeringError> {
    let wrap = |source| SteeringError::Program {
        what: format!("loading {name}"),
        source: Box::new(source),
    };
    match name {
        PROG_CONNECT4 => program::<CgroupSockAddr>(ebpf, name)?.load().map_err(wrap),
        PROG_SOCK_OPS => program::<SockOps>(ebpf, name)?.load().map_err(wrap),
        _ => program::<CgroupSock>(ebpf, name)?.load().map_err(wrap),
    }
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, SteeringError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    let prog = ebpf
        .program_mut(name)
        .ok_or_else(|| missing_program(name))?;
    prog.try_into().map_err(|source| SteeringError::Program {
        what: format!("program {name}"),
        source: Box::new(source),
    })
}

fn missing_program(name: &str) -> SteeringError {
    SteeringError::Program {
        what: format!("program {name}"),
        source: Box::new(ProgramError::UnexpectedProgramType),
    }
}

fn link_err(what: String, e: aya::programs::links::LinkError) -> SteeringError {
    SteeringError::Io {
        path: PathBuf::new(),
        source: io::Error::other(format!("{what}: {e}")),
    }
}

/// Makes sure `dir` will be on bpffs: if `/sys/fs/bpf` is where it should live and nothing is
/// mounted there, mounts bpffs (as node agents do).
fn ensure_bpffs(dir: &Path) -> Result<(), SteeringError> {
    let existing = dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    if sys::fs_magic(existing).ok() == Some(sys::BPF_FS_MAGIC) {
        return Ok(());
    }
    let default_mount = Path::new("/sys/fs/bpf");
    if dir.starts_with(default_mount) && default_mount.is_dir() {
        let mounted = nix::mount::mount(
            Some("bpf"),
            default_mount,
            Some("bpf"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        );
        if mounted.is_ok() && sys::fs_magic(default_mount).ok() == Some(sys::BPF_FS_MAGIC) {
            log::info!("mounted bpffs at {}", default_mount.display());
            return Ok(());
        }
    }
    Err(SteeringError::NoBpffs(dir.to_path_buf()))
}

fn io_err(path: &Path, source: io::Error) -> SteeringError {
    SteeringError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_levels_parse() {
        assert_eq!("off".parse::<BpfLogLevel>(), Ok(BpfLogLevel::Off));
        assert_eq!("DEBUG".parse::<BpfLogLevel>(), Ok(BpfLogLevel::Debug));
        assert!("loud".parse::<BpfLogLevel>().unwrap_err().contains("trace"));
        assert_eq!(BpfLogLevel::Trace as u8, 5);
    }
}
