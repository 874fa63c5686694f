//! The daemon's state and lifecycle: the lock that makes it the only veil for its run
//! directory, the sled database, steering, the sandbox registry and the audit writer. The
//! proxy (`relay`) and the control API (`api`) are served over it.

use std::{
    fs::{self, File, OpenOptions},
    io,
    net::SocketAddr,
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError, RwLock},
};

use nix::fcntl::{Flock, FlockArg};
use tokio::net::{TcpListener, TcpSocket, UnixListener};

use crate::{
    api::tcp::ApiKey,
    audit::{
        self, AuditError, AuditHandle, AuditStore, AuditWriter, Event, Filter, Follow,
        PolicyChange, PolicyTrigger, Record, RetentionPolicy,
    },
    cgroup::{self, CgroupError},
    config::Paths,
    metrics::Metrics,
    policy::{
        self,
        config::{ConfigError, Egress},
        Policy,
    },
    proxy::injector::Injector,
    sandbox::{Registry, RegistryError, Sandbox},
    secrets::{keyfile, SecretError, SecretStore, SecretsConfig},
    steering::{
        Attached, RefusalReader, SandboxSettings, SettingsOverride, Steering, SteeringConfig,
        SteeringError,
    },
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
    /// Any other I/O failure, with the path it concerned.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// The running daemon's shared state.
pub struct Daemon {
    listen: SocketAddr,
    listen6: Option<SocketAddr>,
    defaults: SandboxSettings,
    config: ConfigFile,
    policy: RwLock<Arc<Policy>>,
    policy_write: Mutex<()>,
    leaves: LeafMinter,
    upstream: Upstream,
    parent: PathBuf,
    steering: Mutex<Steering>,
    registry: Registry,
    audit: AuditHandle,
    store: AuditStore,
    secrets: SecretStore,
    injector: Injector,
    metrics: Metrics,
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

impl Daemon {
    /// Takes the lock, opens the database, loads and attaches the eBPF programs to the
    /// sandbox parent cgroup, and binds both listeners. Must run inside a tokio runtime.
    pub fn start(
        options: &Options,
    ) -> Result<(Arc<Self>, Listeners, audit::AuditWriter), DaemonError> {
        let paths = &options.paths;
        create_dir(&paths.run_dir, 0o755)?;
        create_dir(&paths.state_dir, 0o700)?;
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
        let registry = Registry::open(&db)?;
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

        let config = match &options.config {
            Some(path) => ConfigFile::Given(path.clone()),
            None => ConfigFile::Default(paths.state_dir.join("egress.toml")),
        };
        let policy = load_policy(&config)?;
        let loaded = policy_changed(&policy, Some(config.path()), PolicyTrigger::Start);
        let leaves = LeafMinter::new(Ca::load_or_create(&paths.ca_dir())?)?;
        write_ca_bundle(&paths.ca_bundle(), leaves.ca_pem())?;
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
        let (mut steering, steered) = Steering::load(&steering_config)?;
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
        forget_vanished(&registry, &audit);
        restore_settings(&registry, &mut steering)?;
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
        let daemon = Arc::new(Self {
            listen: steering_config.listen,
            listen6: steering_config.listen6,
            defaults: steering_config.defaults,
            config,
            policy: RwLock::new(Arc::new(policy)),
            policy_write: Mutex::new(()),
            leaves,
            upstream,
            parent,
            steering: Mutex::new(steering),
            registry,
            audit,
            store,
            injector: Injector::new(secrets.subscribe()),
            secrets,
            metrics: Metrics::default(),
            api_addr,
            _lock: lock,
        });
        daemon.audit.record(loaded);
        Ok((
            daemon,
            Listeners {
                proxy,
                proxy6,
                api,
                api_tcp,
            },
            writer,
        ))
    }

    /// The egress policy in force now.
    pub fn policy(&self) -> Arc<Policy> {
        Arc::clone(&self.policy.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Re-reads the configuration file and swaps in its policy; connections already
    /// accepted keep the policy they started with. On error the old policy stays.
    pub fn reload_policy(&self) -> Result<usize, DaemonError> {
        let _writing = self
            .policy_write
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let policy = load_policy(&self.config)?;
        let rules = policy.allow.len();
        let changed = policy_changed(&policy, Some(self.config.path()), PolicyTrigger::Reload);
        *self.policy.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(policy);
        self.audit.record(changed);
        Ok(rules)
    }

    /// The egress rules in force, as written.
    pub fn egress(&self) -> Egress {
        policy::config::rules_of(&self.policy())
    }

    /// Replaces the egress rules: checks them, writes them to the configuration file, and
    /// puts them in force for new connections. Nothing changes if they do not parse.
    pub fn set_egress(&self, egress: &Egress) -> Result<Policy, DaemonError> {
        let _writing = self
            .policy_write
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let policy = policy::config::store(self.config.path(), egress)?;
        *self.policy.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(policy.clone());
        self.audit.record(policy_changed(
            &policy,
            Some(self.config.path()),
            PolicyTrigger::Api,
        ));
        Ok(policy)
    }

    /// The configuration file the egress policy is read from and written to.
    pub fn config_path(&self) -> &Path {
        self.config.path()
    }

    /// Leaf certificates for sandbox-facing TLS.
    pub fn tls(&self) -> &LeafMinter {
        &self.leaves
    }

    /// Verified TLS to upstreams.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Every address steered connects are rewritten to (IPv4, and IPv6 if there is one).
    pub fn listeners(&self) -> Vec<SocketAddr> {
        std::iter::once(self.listen).chain(self.listen6).collect()
    }

    /// Where the TCP control API listens, if it does.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api_addr
    }

    /// The live placeholder engine.
    pub fn injector(&self) -> &Injector {
        &self.injector
    }

    /// The secrets store.
    pub fn secrets(&self) -> &SecretStore {
        &self.secrets
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Creates a sandbox cgroup called `name` under the sandbox parent (steered through it),
    /// with `overrides` over the default settings.
    pub async fn create_sandbox(
        &self,
        name: &str,
        overrides: &SettingsOverride,
    ) -> Result<Sandbox, DaemonError> {
        cgroup::validate_name(name)?;
        self.require_audit()?;
        if self.registry.get(name).is_some() {
            return Err(RegistryError::NameTaken(name.to_owned()).into());
        }
        let settings = overrides.apply(&self.defaults);
        settings.to_kernel()?;
        let dir = self.parent.join(name);
        cgroup::create(&dir)?;
        let sandbox = Sandbox {
            name: name.to_owned(),
            cgroup_id: cgroup::cgroup_id(&dir)?,
            cgroup: dir.clone(),
            managed: true,
            settings,
        };
        // Settings first: nothing runs in the new cgroup yet, and nothing may run without them.
        let filed = self
            .lock_steering()
            .set_settings(sandbox.cgroup_id, &sandbox.settings)
            .map_err(DaemonError::from)
            .and_then(|()| Ok(self.registry.insert(sandbox.clone())?));
        if let Err(e) = filed {
            let _ = self.lock_steering().remove_settings(sandbox.cgroup_id);
            let _ = cgroup::remove(&dir);
            return Err(e);
        }
        self.audit
            .record_durable(Event::SandboxAttached(audit::SandboxChange {
                name: sandbox.name.clone(),
                cgroup: dir.display().to_string(),
                cgroup_id: sandbox.cgroup_id,
            }))
            .await?;
        Ok(sandbox)
    }

    /// Steers the existing cgroup at `dir` as sandbox `name`, with `overrides` over the
    /// default settings.
    pub async fn attach(
        &self,
        name: &str,
        dir: &Path,
        overrides: &SettingsOverride,
    ) -> Result<Sandbox, DaemonError> {
        cgroup::validate_name(name)?;
        self.require_audit()?;
        let dir = fs::canonicalize(dir).map_err(|source| DaemonError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let cgroup_id = cgroup::cgroup_id(&dir)?;
        if self.registry.get(name).is_some() {
            return Err(RegistryError::NameTaken(name.to_owned()).into());
        }
        if let Some(existing) = self.registry.name_of(cgroup_id) {
            return Err(RegistryError::CgroupTaken {
                cgroup: dir,
                name: existing,
            }
            .into());
        }
        let settings = overrides.apply(&self.defaults);
        settings.to_kernel()?;
        let sandbox = Sandbox {
            name: name.to_owned(),
            cgroup: dir.clone(),
            cgroup_id,
            managed: false,
            settings,
        };
        self.registry.insert(sandbox.clone())?;
        let attached = {
            let mut steering = self.lock_steering();
            // Settings before links, so the first steered connect already sees them.
            steering
                .set_settings(cgroup_id, &sandbox.settings)
                .and_then(|()| steering.attach(&dir))
        };
        if let Err(e) = attached {
            let _ = self.lock_steering().remove_settings(cgroup_id);
            let _ = self.registry.remove(name);
            return Err(e.into());
        }
        self.audit
            .record_durable(Event::SandboxAttached(audit::SandboxChange {
                name: sandbox.name.clone(),
                cgroup: dir.display().to_string(),
                cgroup_id,
            }))
            .await?;
        Ok(sandbox)
    }

    /// Removes sandbox `name`: a managed one's cgroup is emptied and deleted, an attached one
    /// is detached and left in place.
    pub async fn remove_sandbox(&self, name: &str) -> Result<Sandbox, DaemonError> {
        let sandbox = self
            .registry
            .get(name)
            .ok_or_else(|| RegistryError::NotFound(name.to_owned()))?;
        if sandbox.managed {
            cgroup::remove(&sandbox.cgroup)?;
        } else {
            self.lock_steering().detach(sandbox.cgroup_id)?;
        }
        self.lock_steering().remove_settings(sandbox.cgroup_id)?;
        self.registry.remove(name)?;
        self.audit
            .record_durable(Event::SandboxDetached(audit::SandboxChange {
                name: sandbox.name.clone(),
                cgroup: sandbox.cgroup.display().to_string(),
                cgroup_id: sandbox.cgroup_id,
            }))
            .await?;
        Ok(sandbox)
    }

    /// Every registered sandbox.
    pub fn sandboxes(&self) -> Vec<Sandbox> {
        self.registry.list()
    }

    /// The name of the sandbox with this cgroup id, if it is registered.
    pub fn sandbox_name(&self, cgroup_id: u64) -> Option<String> {
        self.registry.name_of(cgroup_id)
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

    /// Takes the kernel's record for the connection whose client end is `peer`.
    pub fn take_record(&self, peer: SocketAddr) -> Option<veil_ebpf::ConnRecord> {
        self.lock_steering().take(peer)
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

    /// Fails when the audit log is failing: a sandbox is only confined with its record.
    fn require_audit(&self) -> Result<(), DaemonError> {
        match self.audit.failure() {
            Some(reason) => Err(AuditError::Failing { reason }.into()),
            None => Ok(()),
        }
    }

    fn lock_steering(&self) -> std::sync::MutexGuard<'_, Steering> {
        self.steering.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Drops registry entries whose cgroup no longer exists (removed while veil was down), and
/// removes managed sandboxes nothing runs in any more (their `veil run` died), so their names
/// can be used again. Each one leaves a detach record.
fn forget_vanished(registry: &Registry, audit: &AuditHandle) {
    for sandbox in registry.list() {
        let stale = if !sandbox.cgroup.exists() {
            true
        } else if sandbox.managed && !cgroup::is_populated(&sandbox.cgroup).unwrap_or(true) {
            cgroup::remove(&sandbox.cgroup).is_ok()
        } else {
            false
        };
        if stale && registry.remove(&sandbox.name).is_ok() {
            log::info!("sandbox {} is gone; forgetting it", sandbox.name);
            audit.record(Event::SandboxDetached(audit::SandboxChange {
                name: sandbox.name,
                cgroup: sandbox.cgroup.display().to_string(),
                cgroup_id: sandbox.cgroup_id,
            }));
        }
    }
}

/// The audit event for `policy`, read from `config`, coming into force.
fn policy_changed(policy: &Policy, config: Option<&Path>, trigger: PolicyTrigger) -> Event {
    Event::PolicyChanged(PolicyChange {
        source: config.map(|path| path.display().to_string()),
        allow_rules: policy.allow.len() as u64,
        passthrough: policy.passthrough.len() as u64,
        trigger,
    })
}

/// Where the egress policy lives.
enum ConfigFile {
    /// `--config FILE`: it must exist.
    Given(PathBuf),
    /// The default file in the state directory, written by `PUT /v1/egress`; absent means an
    /// empty policy.
    Default(PathBuf),
}

impl ConfigFile {
    fn path(&self) -> &Path {
        match self {
            Self::Given(path) | Self::Default(path) => path,
        }
    }
}

fn load_policy(config: &ConfigFile) -> Result<Policy, DaemonError> {
    match config {
        ConfigFile::Default(path) if !path.exists() => {
            log::warn!(
                "no egress policy (no --config, and no {}): every destination is denied",
                path.display()
            );
            Ok(Policy::default())
        }
        _ => Ok(policy::config::load(config.path())?),
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

/// Where Debian and its relatives keep the system's root bundle.
const SYSTEM_ROOTS: [&str; 2] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

/// Files every registered sandbox's settings in the kernel again (the maps may be new) and
/// drops settings left by sandboxes that are gone.
fn restore_settings(registry: &Registry, steering: &mut Steering) -> Result<(), DaemonError> {
    let sandboxes = registry.list();
    for sandbox in &sandboxes {
        steering.set_settings(sandbox.cgroup_id, &sandbox.settings)?;
    }
    let ids: Vec<u64> = sandboxes.iter().map(|s| s.cgroup_id).collect();
    Ok(steering.retain_settings(&ids)?)
}

fn create_dir(dir: &Path, mode: u32) -> Result<(), DaemonError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(|source| DaemonError::Io {
            path: dir.to_path_buf(),
            source,
        })
}

/// Takes the exclusive lock that makes a process the one veil of its runtime directory.
pub fn take_lock(path: &Path, run_dir: &Path) -> Result<Flock<File>, DaemonError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
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
