//! Steering: loading veil's eBPF programs, attaching them to cgroups, pinning them in bpffs,
//! keeping each sandbox's settings in the kernel, taking each steered connection's original
//! destination out of the kernel's map, and reading what the kernel refused.
//!
//! Layout under the bpf directory (default `/sys/fs/bpf/veil`):
//!
//! ```text
//! maps/VEIL_BY_COOKIE, maps/VEIL_BY_NS_PEER the connection maps, shared by every load
//! maps/VEIL_NETNS                           the namespaces veil serves, by cookie
//! maps/VEIL_DNS_ORIG                        the resolver each DNS socket asked
//! maps/VEIL_SETTINGS                        per-sandbox settings by cgroup id (0: defaults)
//! maps/VEIL_REFUSALS, VEIL_REFUSALS_DROPPED the refusal ring buffer and its drop counter
//! links/<cgroup id>/<hook>                  one pinned link per hook per cgroup (see HOOKS)
//! ```
//!
//! Links stay attached while their pins exist, whether or not veil runs: with no listener the
//! rewritten connects are refused (fail closed). Every `veil serve` loads the embedded object
//! afresh, reuses the pinned maps, and swaps its programs into the pinned links with
//! `BPF_LINK_UPDATE`, so a restart never attaches twice and never leaves a hook empty.

mod check;
mod hooks;
mod keys;
mod refusal;
mod settings;
mod sys;

use std::{
    fs::{self, File},
    io,
    net::{SocketAddr, SocketAddrV4, SocketAddrV6},
    os::fd::AsFd,
    path::{Path, PathBuf},
    sync::{Mutex, OnceLock, PoisonError},
};

use aya::{
    maps::{HashMap, Map, MapData, MapError, PerCpuArray, RingBuf},
    programs::{links::LinkError, ProgramError},
    Ebpf, EbpfLoader,
};
use veil_ebpf::{
    ConnRecord, PeerKey, Settings, DEFAULT_SETTINGS_KEY, GLOBAL_PROXY_IP4, GLOBAL_PROXY_IP6,
    GLOBAL_PROXY_PORT, GLOBAL_PROXY_PORT6, MAP_BY_PEER, MAP_NETNS, MAP_REFUSALS,
    MAP_REFUSALS_DROPPED, MAP_SETTINGS,
};

use crate::{
    cgroup::{self, CgroupError},
    netns,
};
use hooks::HOOKS;

pub use check::MissingHook;
pub use keys::{comm, endpoint, socket_addr};
pub use refusal::{destination, protocol_name, reason_text, RefusalReader};
pub use settings::{Ipv6Policy, ResolverList, SandboxSettings, SettingsOverride};

/// The eBPF object built by `cargo xtask build-ebpf`, embedded at compile time.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/veil-ebpf.o"));

/// The embedded eBPF object's build id: the first 8 bytes of its SHA-256, in hex. Two
/// binaries with the same id load the same programs.
pub fn object_build_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let digest = ring::digest::digest(&ring::digest::SHA256, OBJECT);
        hex::encode(&digest.as_ref()[..8])
    })
}

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
    /// A link could not be made from an attached program.
    #[error("{what}: {source}")]
    Link {
        /// What was being done.
        what: String,
        /// The error.
        source: Box<LinkError>,
    },
    /// A map was missing or of the wrong type, or an operation on it failed.
    #[error("map {name}: {source}")]
    Map {
        /// The map's name.
        name: &'static str,
        /// The error.
        source: Box<MapError>,
    },
    /// A listener address cannot be steered to.
    #[error(
        "cannot steer to {0}: veil's listeners must be a specific IPv4 (--listen) and IPv6 \
         (--listen6) address with a port"
    )]
    BadListener(SocketAddr),
    /// More DNS resolvers than the kernel's settings hold.
    #[error("{given} DNS resolvers given; a sandbox may have at most {max}")]
    TooManyResolvers {
        /// How many were given.
        given: usize,
        /// The limit.
        max: usize,
    },
    /// The refusal reader was already taken by another task.
    #[error("the kernel refusal ring is already being read")]
    RefusalsTaken,
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
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
    /// veil's IPv4 listener, which IPv4 and v4-mapped connects are rewritten to.
    pub listen: SocketAddr,
    /// veil's IPv6 listener, which native IPv6 connects are rewritten to; without one they
    /// are refused.
    pub listen6: Option<SocketAddr>,
    /// The settings of steered tasks in no sandbox, and the defaults for new sandboxes.
    pub defaults: SandboxSettings,
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

/// The kernel's records of where steered connections were going, keyed by the client's
/// namespace and address. Apart from [`Steering`], so accepting a connection never waits
/// for a sandbox being created.
pub struct OrigDsts(Mutex<HashMap<MapData, PeerKey, ConnRecord>>);

impl OrigDsts {
    /// Takes the record the kernel filed for a connection from the namespace `netns` whose
    /// client end is `peer`: looks it up and deletes it, so a record is used once. `None`
    /// means veil has no record and must refuse the connection.
    pub fn take(&self, netns: u64, peer: SocketAddr) -> Option<ConnRecord> {
        let key = PeerKey {
            netns,
            peer: endpoint(peer),
            reserved: 0,
        };
        let mut by_peer = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match by_peer.get(&key, 0) {
            Ok(record) => {
                if let Err(e) = by_peer.remove(&key) {
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
}

/// The loaded programs and the maps veil reads and writes.
pub struct Steering {
    ebpf: Ebpf,
    settings: HashMap<MapData, u64, Settings>,
    netns: HashMap<MapData, u64, u32>,
    own_netns: u64,
    refusals: Option<(RingBuf<MapData>, PerCpuArray<MapData, u64>)>,
    dir: PathBuf,
}

impl Steering {
    /// Loads the embedded programs, reusing (or creating and pinning) the connection maps under
    /// `config.dir`, and moves every pinned link onto the new programs. Returns the
    /// original-destination records (for the accept path, apart from everything else) and the
    /// cgroup ids that were already steered. veil's own network namespace is served.
    pub fn load(config: &SteeringConfig) -> Result<(Self, OrigDsts, Vec<u64>), SteeringError> {
        let listen = listener_v4(config.listen)?;
        let listen6 = config.listen6.map(listener_v6).transpose()?;
        ensure_bpffs(&config.dir)?;
        let maps = config.dir.join("maps");
        for dir in [&maps, &config.dir.join("links")] {
            fs::create_dir_all(dir).map_err(|source| io_err(dir, source))?;
        }
        let mut ebpf = load_object(&maps, listen, listen6, config.log_level)?;
        for hook in &HOOKS {
            hook.load(&mut ebpf)?;
        }
        let by_peer = take_map(&mut ebpf, MAP_BY_PEER, HashMap::try_from)?;
        let settings = take_map(&mut ebpf, MAP_SETTINGS, HashMap::try_from)?;
        let netns = take_map(&mut ebpf, MAP_NETNS, HashMap::try_from)?;
        let own_netns = netns::own_cookie().map_err(|source| io_err(&config.dir, source))?;
        let ring = take_map(&mut ebpf, MAP_REFUSALS, RingBuf::try_from)?;
        let dropped = take_map(&mut ebpf, MAP_REFUSALS_DROPPED, PerCpuArray::try_from)?;
        let mut steering = Self {
            ebpf,
            settings,
            netns,
            own_netns,
            refusals: Some((ring, dropped)),
            dir: config.dir.clone(),
        };
        steering.set_settings(DEFAULT_SETTINGS_KEY, &config.defaults)?;
        steering.serve_netns(own_netns, 0)?;
        let steered = steering.adopt_pinned_links()?;
        Ok((steering, OrigDsts(Mutex::new(by_peer)), steered))
    }

    /// Steers the cgroup at `dir` (and every cgroup below it) through veil, pinning the links.
    pub fn attach(&mut self, dir: &Path) -> Result<Attached, SteeringError> {
        let cgroup_id = cgroup::cgroup_id(dir)?;
        let link_dir = self.link_dir(cgroup_id);
        if HOOKS.iter().all(|hook| link_dir.join(hook.pin).exists()) {
            return Ok(Attached::Existing(cgroup_id));
        }
        fs::create_dir_all(&link_dir).map_err(|source| io_err(&link_dir, source))?;
        let cgroup = File::open(dir).map_err(|source| io_err(dir, source))?;
        for hook in &HOOKS {
            let pin_path = link_dir.join(hook.pin);
            if pin_path.exists() {
                continue;
            }
            let attached = hook.attach(&mut self.ebpf, &cgroup).and_then(|link| {
                link.pin(&pin_path).map_err(|e| SteeringError::Io {
                    path: pin_path.clone(),
                    source: io::Error::other(e.to_string()),
                })
            });
            if let Err(e) = attached {
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
        detach_links(&self.link_dir(cgroup_id))
    }

    /// Files `settings` for the sandbox cgroup `cgroup_id` (or, under
    /// [`DEFAULT_SETTINGS_KEY`], for steered tasks in no sandbox). Tasks in cgroups below the
    /// sandbox get them too.
    pub fn set_settings(
        &mut self,
        cgroup_id: u64,
        settings: &SandboxSettings,
    ) -> Result<(), SteeringError> {
        let kernel = settings.to_kernel()?;
        self.settings
            .insert(cgroup_id, kernel, 0)
            .map_err(|source| SteeringError::Map {
                name: MAP_SETTINGS,
                source: Box::new(source),
            })
    }

    /// Drops the settings of every cgroup except the defaults and those in `keep`, so
    /// sandboxes that vanished while veil was down leave nothing behind.
    pub fn retain_settings(&mut self, keep: &[u64]) -> Result<(), SteeringError> {
        let stale: Vec<u64> = self
            .settings
            .keys()
            .filter_map(Result::ok)
            .filter(|id| *id != DEFAULT_SETTINGS_KEY && !keep.contains(id))
            .collect();
        stale.iter().try_for_each(|id| self.remove_settings(*id))
    }

    /// Drops the settings of the sandbox cgroup `cgroup_id`; absent settings are no error.
    pub fn remove_settings(&mut self, cgroup_id: u64) -> Result<(), SteeringError> {
        match self.settings.remove(&cgroup_id) {
            Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {
                Ok(())
            }
            Err(source) => Err(SteeringError::Map {
                name: MAP_SETTINGS,
                source: Box::new(source),
            }),
        }
    }

    /// Serves the network namespace with cookie `cookie` (its connects are steered instead of
    /// refused), with `NETNS_*` `flags`.
    pub fn serve_netns(&mut self, cookie: u64, flags: u32) -> Result<(), SteeringError> {
        self.netns
            .insert(cookie, flags, 0)
            .map_err(|source| SteeringError::Map {
                name: MAP_NETNS,
                source: Box::new(source),
            })
    }

    /// Stops serving the namespace `cookie`: its connects are refused from now on.
    pub fn unserve_netns(&mut self, cookie: u64) -> Result<(), SteeringError> {
        match self.netns.remove(&cookie) {
            Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {
                Ok(())
            }
            Err(source) => Err(SteeringError::Map {
                name: MAP_NETNS,
                source: Box::new(source),
            }),
        }
    }

    /// Stops serving every namespace but veil's own and those in `keep`.
    pub fn retain_netns(&mut self, keep: &[u64]) -> Result<(), SteeringError> {
        let stale: Vec<u64> = self
            .netns
            .keys()
            .filter_map(Result::ok)
            .filter(|cookie| *cookie != self.own_netns && !keep.contains(cookie))
            .collect();
        stale
            .iter()
            .try_for_each(|cookie| self.unserve_netns(*cookie))
    }

    /// The cookie of veil's own network namespace.
    pub fn own_netns(&self) -> u64 {
        self.own_netns
    }

    /// The hooks the steered cgroup `cgroup_id` is missing: each must have its pinned link,
    /// still attached to that cgroup. Empty when all of veil's programs are in place.
    pub fn missing_hooks(&self, cgroup_id: u64) -> Vec<MissingHook> {
        check::missing_hooks(&self.link_dir(cgroup_id), cgroup_id)
    }

    /// Hands out the reader of the kernel's refusals; there is one, for one task. Must run
    /// inside a tokio runtime.
    pub fn refusal_reader(&mut self) -> Result<RefusalReader, SteeringError> {
        let (ring, dropped) = self.refusals.take().ok_or(SteeringError::RefusalsTaken)?;
        RefusalReader::new(ring, dropped).map_err(|source| io_err(&self.dir, source))
    }

    /// Starts forwarding the programs' aya-log records to veil's log.
    pub fn logger(&mut self) -> Result<aya_log::EbpfLogger<&'static dyn log::Log>, SteeringError> {
        aya_log::EbpfLogger::init(&mut self.ebpf).map_err(|e| SteeringError::Io {
            path: self.dir.clone(),
            source: io::Error::other(format!("starting the eBPF logger: {e}")),
        })
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
            for hook in &HOOKS {
                let path = entry.path().join(hook.pin);
                if !path.exists() {
                    continue;
                }
                let fd = self.program_fd(hook.program)?;
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

/// Removes everything veil pinned under `dir`: detaches every steered cgroup's links at
/// once, then deletes the maps and the directory. Connects from formerly steered cgroups go
/// direct again. For `veil reset`; the daemon must not be running.
pub fn remove_all(dir: &Path) -> Result<usize, SteeringError> {
    let links = dir.join("links");
    let mut detached = 0;
    if let Ok(entries) = fs::read_dir(&links) {
        for entry in entries.flatten() {
            detach_links(&entry.path())?;
            detached += 1;
        }
    }
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(detached),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(detached),
        Err(source) => Err(io_err(dir, source)),
    }
}

/// Detaches the links pinned in `link_dir` at once and unpins them.
fn detach_links(link_dir: &Path) -> Result<(), SteeringError> {
    for hook in &HOOKS {
        let path = link_dir.join(hook.pin);
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
    match fs::remove_dir(link_dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(io_err(link_dir, source)),
    }
}

fn load_object(
    maps: &Path,
    listen: SocketAddrV4,
    listen6: Option<SocketAddrV6>,
    level: BpfLogLevel,
) -> Result<Ebpf, SteeringError> {
    let ip = u32::from_ne_bytes(listen.ip().octets());
    let port = u32::from(listen.port().to_be());
    // Without an IPv6 listener both stay zero, and the programs refuse native IPv6.
    let (ip6, port6) = listen6.map_or(([0u32; 4], 0), |l6| {
        (
            endpoint(SocketAddr::V6(l6)).addr,
            u32::from(l6.port().to_be()),
        )
    });
    let level = level as u8;
    EbpfLoader::new()
        .default_map_pin_directory(maps)
        .override_global(GLOBAL_PROXY_IP4, &ip, true)
        .override_global(GLOBAL_PROXY_PORT, &port, true)
        .override_global(GLOBAL_PROXY_IP6, &ip6, true)
        .override_global(GLOBAL_PROXY_PORT6, &port6, true)
        .override_global(aya_log::LEVEL, &level, false)
        .load(OBJECT)
        .map_err(|source| SteeringError::Load {
            maps: maps.to_path_buf(),
            source: Box::new(source),
        })
}

/// Takes the map called `name` out of `ebpf` as the typed map `convert` makes of it.
fn take_map<T>(
    ebpf: &mut Ebpf,
    name: &'static str,
    convert: impl FnOnce(Map) -> Result<T, MapError>,
) -> Result<T, SteeringError> {
    ebpf.take_map(name)
        .ok_or(MapError::InvalidName {
            name: name.to_owned(),
        })
        .and_then(convert)
        .map_err(|source| SteeringError::Map {
            name,
            source: Box::new(source),
        })
}

/// The IPv4 listener, which must be a specific address with a port.
fn listener_v4(addr: SocketAddr) -> Result<SocketAddrV4, SteeringError> {
    match addr {
        SocketAddr::V4(v4) if !v4.ip().is_unspecified() && v4.port() != 0 => Ok(v4),
        _ => Err(SteeringError::BadListener(addr)),
    }
}

/// The IPv6 listener, which must be a specific, native IPv6 address with a port.
fn listener_v6(addr: SocketAddr) -> Result<SocketAddrV6, SteeringError> {
    match addr {
        SocketAddr::V6(v6)
            if !v6.ip().is_unspecified()
                && v6.ip().to_ipv4_mapped().is_none()
                && v6.port() != 0 =>
        {
            Ok(v6)
        }
        _ => Err(SteeringError::BadListener(addr)),
    }
}

/// The cgroup id naming the sandbox a kernel record comes from: `sandbox_id`, the sandbox
/// whose settings applied (the task's own cgroup may be one it made below its sandbox), else
/// the task's `cgroup_id`.
pub fn sandbox_cgroup(cgroup_id: u64, sandbox_id: u64) -> u64 {
    if sandbox_id != 0 {
        sandbox_id
    } else {
        cgroup_id
    }
}

fn missing_program(name: &str) -> SteeringError {
    SteeringError::Program {
        what: format!("program {name}"),
        source: Box::new(ProgramError::UnexpectedProgramType),
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
    fn log_level_numbers() {
        assert_eq!(BpfLogLevel::Off as u8, 0);
        assert_eq!(BpfLogLevel::Trace as u8, 5);
    }
}
