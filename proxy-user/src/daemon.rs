//! The daemon's state and lifecycle: the lock that makes it the only veil for its run
//! directory, the sled database, steering, the sandbox registry and the audit writer. The
//! proxy (`relay`) and the control API (`api`) are served over it.

use std::{
    fs::{self, File, OpenOptions},
    io,
    net::SocketAddr,
    os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
};

use nix::fcntl::{Flock, FlockArg};
use tokio::{
    net::{TcpListener, TcpSocket, UnixListener},
    sync::mpsc,
};

use crate::{
    audit::{
        AuditError, AuditHandle, AuditStore, AuditWriter, Filter, Follow, Record, RetentionPolicy,
    },
    cgroup::{self, CgroupError},
    config::Paths,
    dns::{self, DnsAnswers, DnsService},
    metrics::Metrics,
    policy::{ConfigError, LivePolicy, PolicyFile},
    proxy::{Context, Limits},
    relay::{Gate, OpenConnections},
    resolve::Resolver,
    sandbox::{NsEvent, Registry, RegistryError, SandboxError, Sandboxes},
    secrets::{keyfile, ApiKey, SecretError, SecretStore, SecretsConfig},
    steering::{Attached, MissingHook, RefusalReader, Steering, SteeringConfig, SteeringError},
    tls::{ca::Ca, leaf::LeafMinter, upstream::Upstream, TlsError},
};

/// What the daemon needs to start.
#[derive(Clone, Debug)]
pub struct Options {
    /// The installation's directories.
    pub paths: Paths,
    /// Listener and eBPF settings.
    pub steering: SteeringConfig,
    /// The configuration file holding the egress policy; `None` means `egress.toml` in the
    /// state directory, which need not exist (then all egress is denied).
    pub config: Option<PathBuf>,
    /// Extra root certificates (PEM files) trusted for upstream TLS.
    pub upstream_ca: Vec<PathBuf>,
    /// Master key and placeholder prefix.
    pub secrets: SecretsConfig,
    /// Where the TCP control API listens, if anywhere.
    pub api_listen: Option<SocketAddr>,
    /// How much of the audit log to keep.
    pub audit_retention: RetentionPolicy,
    /// The data path's limits and timeouts.
    pub limits: Limits,
    /// The resolvers the DNS proxy asks (`--dns-upstream`); empty: the host's
    /// (`dns::system_resolvers`).
    pub dns_resolvers: Vec<SocketAddr>,
}

/// Errors from starting the daemon or from its operations.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Another daemon holds the lock.
    #[error("another veil daemon is running for {0} (it holds veil.lock there)")]
    Locked(PathBuf),
    /// The database could not be opened.
    #[error(
        "opening the database in {path} (is another veil using this state directory?): {source}"
    )]
    Db {
        /// The database directory.
        path: PathBuf,
        /// sled's error.
        source: sled::Error,
    },
    /// Binding a listener failed.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The error.
        source: io::Error,
    },
    /// A steering failure.
    #[error(transparent)]
    Steering(#[from] SteeringError),
    /// A cgroup failure.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// A registry failure.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A sandbox lifecycle failure.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// An audit failure.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The configuration file is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// TLS setup failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A secrets store failure.
    #[error(transparent)]
    Secrets(#[from] SecretError),
    /// A directory veil keeps its files in is unsafe to use.
    #[error("refusing to use {path}: {why}")]
    Unsafe {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// Any other I/O failure, with the path it concerned.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// The running daemon's services, for the control API and the daemon's own tasks. The data
/// path gets only its [`Context`].
pub struct Daemon {
    listeners: Vec<SocketAddr>,
    policy: LivePolicy,
    leaves: Arc<LeafMinter>,
    steering: Arc<Mutex<Steering>>,
    registry: Arc<Registry>,
    sandboxes: Sandboxes,
    audit: AuditHandle,
    store: AuditStore,
    secrets: SecretStore,
    metrics: Arc<Metrics>,
    api_addr: Option<SocketAddr>,
    _lock: Flock<File>,
}

/// The sockets a started daemon serves on.
pub struct Listeners {
    /// Where steered connections arrive.
    pub proxy: TcpListener,
    /// Where steered native IPv6 connections arrive, if the host has IPv6.
    pub proxy6: Option<TcpListener>,
    /// The control API.
    pub api: UnixListener,
    /// The control API on TCP, and the key it demands.
    pub api_tcp: Option<(TcpListener, ApiKey)>,
}

/// A started daemon: its services, its sockets, the front of its data path, and the audit
/// writer to shut down last.
pub struct Started {
    /// The services.
    pub daemon: Arc<Daemon>,
    /// The sockets.
    pub listeners: Listeners,
    /// The front of the data path, for the proxy listeners' accept loops.
    pub gate: Arc<Gate>,
    /// The audit log's writer.
    pub writer: AuditWriter,
    /// What to serve in sandboxes' own network namespaces, as sandboxes come and go.
    pub namespaces: mpsc::UnboundedReceiver<NsEvent>,
    /// The cookie of veil's own network namespace, where the proxy listeners are.
    pub own_netns: u64,
    /// The DNS proxy, for the DNS listeners in sandboxes' namespaces.
    pub dns: DnsService,
}

impl Daemon {
    /// Takes the lock, opens the database, loads and attaches the eBPF programs to the
    /// sandbox parent cgroup, and binds both listeners. Must run inside a tokio runtime.
    pub fn start(options: &Options) -> Result<Started, DaemonError> {
        let paths = &options.paths;
        owned_dir(&paths.run_dir, 0o700)?;
        owned_dir(&paths.state_dir, 0o700)?;
        owned_dir(&paths.public_dir(), 0o755)?;
        owned_dir(&paths.netns_dir(), 0o700)?;
        let lock = take_lock(&paths.lock(), &paths.run_dir)?;
        let db_path = paths.db();
        let db = sled::Config::new()
            .path(&db_path)
            .cache_capacity(DB_CACHE_BYTES)
            .open()
            .map_err(|source| DaemonError::Db {
                path: db_path.clone(),
                source,
            })?;
        let registry = Arc::new(Registry::open(&db)?);
        let store = AuditStore::open(&db, &db_path)?;
        let (audit, writer) = AuditWriter::spawn(store.clone());
        let key = keyfile::master_key(
            &paths.master_key(),
            options.secrets.master_key_file.as_deref(),
        )?;
        let secrets = SecretStore::open(
            &db,
            key,
            options.secrets.prefix.clone(),
            audit.clone(),
            paths.secrets_profile(),
        )?;
        let file = match &options.config {
            Some(path) => PolicyFile::Given(path.clone()),
            None => PolicyFile::Default(paths.state_dir.join("egress.toml")),
        };
        let policy = LivePolicy::open(file, audit.clone())?;
        let leaves = Arc::new(LeafMinter::new(Ca::load_or_create(&paths.ca_dir())?)?);
        write_ca_bundle(&paths.ca_bundle(), leaves.ca_pem())?;
        write_container_profile(&paths.container_profile())?;
        let upstream = Upstream::new(&options.upstream_ca)?;
        let proxy = bind_proxy(options.steering.listen)?;
        let proxy6 = match options.steering.listen6 {
            Some(addr) => bind_proxy6(addr)?,
            None => None,
        };
        let steering_config = SteeringConfig {
            listen6: proxy6.as_ref().and(options.steering.listen6),
            ..options.steering.clone()
        };
        let (mut steering, records, steered) = Steering::load(&steering_config)?;
        let parent = cgroup::resolve_parent(&cgroup::cgroup2_mount()?, &paths.cgroup_parent);
        cgroup::ensure(&parent)?;
        let parent_id = match steering.attach(&parent)? {
            Attached::New(id) => {
                log::info!("steering sandboxes under {}", parent.display());
                id
            }
            Attached::Existing(id) => id,
        };
        let adopted = steered.iter().filter(|&&id| id != parent_id).count();
        if adopted > 0 {
            log::info!(
                "{adopted} attached cgroup(s) were already steered; adopted their pinned links"
            );
        }
        let own_netns = steering.own_netns();
        let steering = Arc::new(Mutex::new(steering));
        let (ns_events, namespaces) = mpsc::unbounded_channel();
        let sandboxes = Sandboxes::open(
            parent,
            paths.netns_dir(),
            steering_config.defaults,
            Arc::clone(&steering),
            Arc::clone(&registry),
            audit.clone(),
            ns_events,
        )?;
        let api = bind_api(&paths.socket())?;
        let (api_tcp, api_addr) = match options.api_listen {
            Some(addr) => {
                let listener = bind_proxy(addr)?;
                let bound = listener
                    .local_addr()
                    .map_err(|source| DaemonError::Listen {
                        addr: addr.to_string(),
                        source,
                    })?;
                (
                    Some((listener, ApiKey::load(&paths.api_key())?)),
                    Some(bound),
                )
            }
            None => (None, None),
        };
        let listeners: Vec<SocketAddr> = std::iter::once(steering_config.listen)
            .chain(steering_config.listen6)
            .collect();
        let metrics = Arc::new(Metrics::default());
        let answers = DnsAnswers::default();
        let resolvers = if options.dns_resolvers.is_empty() {
            dns::system_resolvers()
        } else {
            options.dns_resolvers.clone()
        };
        let dns = DnsService::new(
            policy.subscribe(),
            audit.clone(),
            resolvers,
            answers.clone(),
        );
        let ctx = Arc::new(Context {
            policy: policy.subscribe(),
            leaves: Arc::clone(&leaves),
            upstream,
            engine: secrets.engine(),
            audit: audit.clone(),
            metrics: Arc::clone(&metrics),
            limits: options.limits,
            resolver: Resolver::default(),
            answers,
            pool: crate::proxy::pool::Pool::default(),
        });
        let gate = Arc::new(Gate {
            ctx,
            records,
            registry: Arc::clone(&registry),
            listeners: listeners.clone(),
            api: api_addr,
            open: OpenConnections::default(),
        });
        let daemon = Arc::new(Self {
            listeners,
            policy,
            leaves,
            steering,
            registry,
            sandboxes,
            audit,
            store,
            secrets,
            metrics,
            api_addr,
            _lock: lock,
        });
        daemon.policy.started();
        Ok(Started {
            daemon,
            listeners: Listeners {
                proxy,
                proxy6,
                api,
                api_tcp,
            },
            gate,
            writer,
            namespaces,
            own_netns,
            dns,
        })
    }

    /// The egress policy and its file.
    pub fn policy(&self) -> &LivePolicy {
        &self.policy
    }

    /// Leaf certificates for sandbox-facing TLS (and veil's CA).
    pub fn tls(&self) -> &LeafMinter {
        &self.leaves
    }

    /// Every address steered connects are rewritten to (IPv4, and IPv6 if there is one).
    pub fn listeners(&self) -> &[SocketAddr] {
        &self.listeners
    }

    /// Where the TCP control API listens, if it does.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api_addr
    }

    /// The secrets store.
    pub fn secrets(&self) -> &SecretStore {
        &self.secrets
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The sandbox lifecycle.
    pub fn sandboxes(&self) -> &Sandboxes {
        &self.sandboxes
    }

    /// The name records about this cgroup id carry: its sandbox's, also for a minute after
    /// the sandbox was removed (the kernel's refusals can be read after it went).
    pub fn sandbox_name(&self, cgroup_id: u64) -> Option<String> {
        self.registry.record_name(cgroup_id)
    }

    /// The hooks the steered cgroup `cgroup_id` is missing (empty: all in place).
    pub fn missing_hooks(&self, cgroup_id: u64) -> Vec<MissingHook> {
        self.lock_steering().missing_hooks(cgroup_id)
    }

    /// Audit records matching `filter`.
    pub fn audit_query(&self, filter: &Filter) -> Result<Vec<Record>, DaemonError> {
        Ok(self.store.query(filter)?)
    }

    /// The audit writer.
    pub fn audit(&self) -> &AuditHandle {
        &self.audit
    }

    /// The audit log itself, for reading.
    pub fn audit_store(&self) -> &AuditStore {
        &self.store
    }

    /// The audit records matching `filter` committed so far, and a follower for the ones
    /// committed from now on.
    pub fn audit_follow(&self, filter: Filter) -> Result<(Vec<Record>, Follow), DaemonError> {
        Ok(Follow::start(&self.store, &self.audit, filter)?)
    }

    /// The reader of the kernel's refusals, for the one task that forwards them to the audit
    /// log. Must run inside a tokio runtime.
    pub fn refusal_reader(&self) -> Result<RefusalReader, DaemonError> {
        Ok(self.lock_steering().refusal_reader()?)
    }

    /// Starts forwarding the eBPF programs' log records into veil's log.
    pub fn bpf_logger(&self) -> Result<aya_log::EbpfLogger<&'static dyn log::Log>, DaemonError> {
        Ok(self.lock_steering().logger()?)
    }

    fn lock_steering(&self) -> std::sync::MutexGuard<'_, Steering> {
        self.steering.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// sled's page cache. Its default, 1 GiB, is what a busy audit log grows it to (`cargo xtask
/// bench` saw veil at 1.9 GiB resident); the log is written at its end and read mostly there,
/// so a small cache serves it as well.
const DB_CACHE_BYTES: u64 = 64 << 20;

/// Writes the bundle sandboxes trust: the system's roots plus veil's CA (world-readable, so
/// workloads running as other users can read it).
fn write_ca_bundle(path: &Path, ca_pem: &str) -> Result<(), DaemonError> {
    let io_err = |source| DaemonError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut bundle = SYSTEM_ROOTS
        .iter()
        .find_map(|p| fs::read_to_string(p).ok())
        .unwrap_or_default();
    if !bundle.is_empty() && !bundle.ends_with('\n') {
        bundle.push('\n');
    }
    bundle.push_str(ca_pem);
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bundle).map_err(io_err)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).map_err(io_err)?;
    fs::rename(&tmp, path).map_err(io_err)
}

/// Writes the profile script containers mount at `/etc/profile.d/veil-secrets.sh`
/// ([`Paths::container_profile`]), world-readable.
fn write_container_profile(path: &Path) -> Result<(), DaemonError> {
    let io_err = |source| DaemonError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_err)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(io_err)?;
    }
    let script = format!(
        "# veil: loads the current secrets profile into this shell. The host's veil public\n\
         # directory is mounted at {dir}; its secrets.sh changes whenever a secret does.\n\
         if [ -r {dir}/secrets.sh ]; then . {dir}/secrets.sh; fi\n",
        dir = crate::config::CONTAINER_PUBLIC_DIR
    );
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, script).map_err(io_err)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).map_err(io_err)?;
    fs::rename(&tmp, path).map_err(io_err)
}

/// Where Debian and its relatives keep the system's root bundle.
const SYSTEM_ROOTS: [&str; 2] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

/// Creates `dir` if it is missing and gives it `mode`. A directory owned by another user is
/// refused: whoever owns it could replace what veil reads and writes there.
pub fn owned_dir(dir: &Path, mode: u32) -> Result<(), DaemonError> {
    let io_err = |source| DaemonError::Io {
        path: dir.to_path_buf(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(io_err)?;
    let meta = fs::symlink_metadata(dir).map_err(io_err)?;
    if !meta.is_dir() {
        return Err(DaemonError::Unsafe {
            path: dir.to_path_buf(),
            why: "it is not a directory".into(),
        });
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(DaemonError::Unsafe {
            path: dir.to_path_buf(),
            why: format!("it is owned by uid {}, not by veil's uid {me}", meta.uid()),
        });
    }
    if meta.mode() & 0o7777 != mode {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode)).map_err(io_err)?;
    }
    Ok(())
}

/// Takes the exclusive lock that makes a process the one veil of its runtime directory.
pub fn take_lock(path: &Path, run_dir: &Path) -> Result<Flock<File>, DaemonError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| DaemonError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock)
        .map_err(|_| DaemonError::Locked(run_dir.to_path_buf()))
}

/// Binds a TCP listener (the proxy's, or the control API's) with SO_REUSEADDR.
fn bind_proxy(addr: SocketAddr) -> Result<TcpListener, DaemonError> {
    let listen_err = |source| DaemonError::Listen {
        addr: addr.to_string(),
        source,
    };
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(listen_err)?;
    socket.set_reuseaddr(true).map_err(listen_err)?;
    socket.bind(addr).map_err(listen_err)?;
    socket.listen(4096).map_err(listen_err)
}

/// Binds the IPv6 listener; `None` when the host has no IPv6 (native IPv6 is then refused).
fn bind_proxy6(addr: SocketAddr) -> Result<Option<TcpListener>, DaemonError> {
    match bind_proxy(addr) {
        Ok(listener) => Ok(Some(listener)),
        Err(DaemonError::Listen { source, .. })
            if matches!(
                source.raw_os_error(),
                Some(libc::EADDRNOTAVAIL | libc::EAFNOSUPPORT)
            ) =>
        {
            log::warn!(
                "no IPv6 listener ({addr}: {source}); sandboxes' native IPv6 connects will be refused"
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn bind_api(path: &Path) -> Result<UnixListener, DaemonError> {
    // We hold the lock, so a socket file left here belongs to a daemon that died.
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(DaemonError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    }
    let listener = UnixListener::bind(path).map_err(|source| DaemonError::Listen {
        addr: path.display().to_string(),
        source,
    })?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(|source| {
        DaemonError::Io {
            path: path.to_path_buf(),
            source,
        }
    })?;
    Ok(listener)
}
