//! The command line: what each `veil` subcommand takes.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

use crate::{
    api::encode_query,
    audit::{EventKind, RetentionPolicy},
    config::Paths,
    proxy::Limits,
    secrets::Prefix,
    steering::{BpfLogLevel, Ipv6Policy, ResolverList, SettingsOverride},
};

/// veil keeps credentials out of sandboxes: it steers a sandbox cgroup's outbound connections
/// through itself in the kernel and records every one in an audit log.
#[derive(Debug, Parser)]
#[command(name = "veil", version, about)]
pub struct Cli {
    /// Where veil keeps its state.
    #[command(flatten)]
    pub paths: PathArgs,
    /// Log more (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The directories and names that make up one veil installation.
#[derive(Debug, Args)]
pub struct PathArgs {
    /// State directory: the audit log and sandbox registry (sled).
    #[arg(
        long,
        global = true,
        env = "VEIL_STATE_DIR",
        default_value = "/var/lib/veil"
    )]
    pub state_dir: PathBuf,
    /// Runtime directory: the control socket and the daemon's lock.
    #[arg(long, global = true, env = "VEIL_RUN_DIR", default_value = "/run/veil")]
    pub run_dir: PathBuf,
    /// bpffs directory for veil's pinned maps and links.
    #[arg(
        long,
        global = true,
        env = "VEIL_BPF_DIR",
        default_value = "/sys/fs/bpf/veil"
    )]
    pub bpf_dir: PathBuf,
    /// Parent cgroup of `veil run` sandboxes: relative to the cgroup2 mount, or absolute.
    #[arg(
        long,
        global = true,
        env = "VEIL_CGROUP_PARENT",
        default_value = "veil"
    )]
    pub cgroup_parent: PathBuf,
}

impl From<PathArgs> for Paths {
    fn from(a: PathArgs) -> Self {
        Paths {
            state_dir: a.state_dir,
            run_dir: a.run_dir,
            bpf_dir: a.bpf_dir,
            cgroup_parent: a.cgroup_parent,
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: load and pin the eBPF programs, accept steered connections, relay them,
    /// audit them, and answer the control API.
    Serve(ServeArgs),
    /// Run CMD in a new sandbox cgroup whose connections go through veil; returns CMD's exit
    /// code and removes the sandbox afterwards. Starts veil in-process if no daemon runs.
    Run(RunArgs),
    /// Steer an existing cgroup (a container's, a systemd scope's) through veil.
    Attach(AttachArgs),
    /// Stop steering a cgroup attached with `veil attach`.
    Detach(DetachArgs),
    /// The OCI runtime hook that makes a container a sandbox: run by Podman, CRI-O or runc
    /// at createRuntime (the container is steered and veil listens in its network namespace
    /// before its first instruction) and poststop (the sandbox is removed), with the
    /// container's state on standard input. Exits non-zero, and the container does not start,
    /// if the container cannot be confined.
    OciHook,
    /// Install or remove the files container runtimes read to run veil's hook.
    #[command(subcommand)]
    Hooks(HooksCommand),
    /// Docker's runtime for sandboxes (written into the wrapper `veil hooks install` makes):
    /// adds veil's hook to each container it creates, then runs runc with the same arguments.
    #[command(hide = true)]
    OciRuntime(OciRuntimeArgs),
    /// Print the audit log.
    Audit(AuditArgs),
    /// Print veil's CA certificate (PEM), creating the CA if it does not exist yet.
    Ca,
    /// Undo steering for this installation: detach every steered cgroup (they connect
    /// directly again), delete veil's bpffs pins, and kill and remove `veil run` sandboxes.
    /// The audit log and CA are kept. The daemon must be stopped first.
    Reset,
    /// Manage secrets. Values are read from standard input, a file or an environment
    /// variable, never from the command line, and are never shown again.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Print `export VAR='placeholder'` for every secret, for `eval` in a shell.
    Env(EnvArgs),
    /// Show or change the egress policy (the daemon writes it to its configuration file).
    #[command(subcommand)]
    Egress(EgressCommand),
    /// Say whether this host is protected: the daemon, its listeners, the steered cgroups and
    /// whether every one of veil's programs is still attached to them, the audit log's health
    /// and head, the number of secrets, the latest refusals. Exit code 0 when all is well, 1
    /// when something is wrong, 2 when the daemon does not answer.
    Status(StatusArgs),
    /// Write man pages or shell completions generated from this command line (for packaging).
    #[command(subcommand, hide = true)]
    Generate(GenerateCommand),
}

/// `veil status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the report as JSON (also when the daemon does not answer).
    #[arg(long)]
    pub json: bool,
}

/// `veil generate`: documentation generated from the clap definitions, so it never drifts from
/// `--help`.
#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// Write a man page (section 1) for veil and for each of its subcommands into DIR:
    /// `veil.1`, `veil-serve.1`, `veil-secrets-create.1`, ...
    Man {
        /// The directory to write into (it must exist).
        dir: PathBuf,
    },
    /// Write completion scripts for bash (`veil.bash`), zsh (`_veil`) and fish (`veil.fish`)
    /// into DIR.
    Completions {
        /// The directory to write into (it must exist).
        dir: PathBuf,
    },
}

/// Options for the proxy listener and the eBPF programs.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Address of veil's listener that sandboxed IPv4 (and v4-mapped) connects are steered to.
    #[arg(long, env = "VEIL_LISTEN", default_value = "127.0.0.1:15001")]
    pub listen: SocketAddr,
    /// Address of veil's listener that sandboxed native IPv6 connects are steered to. Without
    /// IPv6 on the host, native IPv6 is refused instead.
    #[arg(long, env = "VEIL_LISTEN6", default_value = "[::1]:15001")]
    pub listen6: SocketAddr,
    /// Log level of the eBPF programs (their records appear in veil's log).
    #[arg(long, value_enum, ignore_case = true, default_value = "off")]
    pub bpf_log: BpfLogLevel,
    /// Configuration file with the egress policy (`[egress] allow = [...]`); re-read on
    /// SIGHUP. Without one, every destination is denied.
    #[arg(long, env = "VEIL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Extra root certificates (PEM) trusted for upstream TLS, besides the webpki roots.
    #[arg(long, env = "VEIL_UPSTREAM_CA", value_delimiter = ',')]
    pub upstream_ca: Vec<PathBuf>,
    /// The resolvers veil's DNS proxy sends sandboxes' allowed queries to (`ADDR` or
    /// `ADDR:PORT`, comma-separated). Default: the nameservers in /etc/resolv.conf.
    #[arg(long = "dns-upstream", env = "VEIL_DNS_UPSTREAM", value_name = "ADDR[,ADDR...]",
          value_delimiter = ',', value_parser = crate::dns::parse_resolver)]
    pub dns_upstream: Vec<SocketAddr>,
    /// Limits and timeouts of the data path.
    #[command(flatten)]
    pub limits: LimitsArgs,
}

/// Bounds on what one connection may hold and how long veil waits for it.
#[derive(Debug, Args)]
pub struct LimitsArgs {
    /// How long a client may take to send an HTTP/1.1 request head, counted from when veil
    /// starts waiting for it (so it also closes keep-alive connections idle between requests).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = positive_duration)]
    pub request_head_timeout: Duration,
    /// How long a proxied HTTP connection may go with nothing moving either way.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = positive_duration)]
    pub idle_timeout: Duration,
    /// The largest HTTP/1.1 request head or HTTP/2 header list veil reads (at least 8192).
    #[arg(long, value_name = "BYTES", default_value_t = 65536,
          value_parser = clap::value_parser!(u32).range(8192..))]
    pub max_header_bytes: u32,
    /// How long veil waits for an upstream TCP handshake.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = positive_duration)]
    pub connect_timeout: Duration,
    /// How long veil waits for a TLS handshake, with the sandbox or with upstream.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = positive_duration)]
    pub tls_handshake_timeout: Duration,
    /// How many connections one sandbox may have open through veil at once.
    #[arg(long, value_name = "N", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_sandbox: u32,
    /// The largest request body veil reads whole to fill a secret's named form fields or JSON
    /// pointers (larger ones are refused with 413).
    #[arg(long, value_name = "BYTES", default_value_t = 1048576,
          value_parser = clap::value_parser!(u32).range(1024..))]
    pub max_request_body_bytes: u32,
}

impl From<&LimitsArgs> for Limits {
    fn from(a: &LimitsArgs) -> Self {
        Limits {
            head_timeout: a.request_head_timeout,
            idle_timeout: a.idle_timeout,
            max_header_bytes: a.max_header_bytes as usize,
            connect_timeout: a.connect_timeout,
            tls_timeout: a.tls_handshake_timeout,
            per_sandbox: a.max_connections_per_sandbox as usize,
            max_body_bytes: a.max_request_body_bytes as usize,
        }
    }
}

/// What a sandbox may do beyond TCP through veil. For `veil serve`, the defaults of sandboxes
/// that set nothing themselves.
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// DNS resolvers the sandbox may send UDP to (port 53 only; all other UDP is refused):
    /// comma-separated addresses, or `none`. Default: the nameservers in /etc/resolv.conf.
    #[arg(long, env = "VEIL_DNS_RESOLVERS", value_name = "IP,...|none")]
    pub dns_resolvers: Option<ResolverList>,
    /// Native IPv6 TCP: `steer` it through veil's IPv6 listener, or `deny` it. Default: steer.
    #[arg(
        long,
        env = "VEIL_IPV6",
        value_enum,
        ignore_case = true,
        value_name = "steer|deny"
    )]
    pub ipv6: Option<Ipv6Policy>,
}

impl From<SettingsArgs> for SettingsOverride {
    fn from(a: SettingsArgs) -> Self {
        SettingsOverride {
            dns_resolvers: a.dns_resolvers.map(|list| list.0),
            ipv6: a.ipv6,
        }
    }
}

/// How secrets are kept.
#[derive(Debug, Args)]
pub struct SecretArgs {
    /// File holding the master key secrets are encrypted under: 64 hex digits, readable by
    /// its owner only (`openssl rand -hex 32`). Default: master.key in the state directory,
    /// created on first start.
    #[arg(long, env = "VEIL_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Prefix of the placeholders of new secrets (existing ones keep theirs).
    #[arg(long, default_value_t = Prefix::default(), value_name = "PREFIX")]
    pub placeholder_prefix: Prefix,
}

/// `veil serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listener and eBPF options.
    #[command(flatten)]
    pub proxy: ProxyArgs,
    /// Default sandbox settings.
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// Secrets options.
    #[command(flatten)]
    pub secrets: SecretArgs,
    /// Also serve the control API on this TCP address. Requests there need
    /// `Authorization: Bearer <contents of api.key in the state directory>`; sandboxes cannot
    /// connect to it.
    #[arg(long, env = "VEIL_API_LISTEN", value_name = "ADDR")]
    pub api_listen: Option<SocketAddr>,
    /// Audit log retention.
    #[command(flatten)]
    pub retention: RetentionArgs,
}

/// `veil run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Sandbox name (default: run-<pid>).
    #[arg(long)]
    pub sandbox: Option<String>,
    /// Run CMD as this unprivileged host user (name or uid). Without it, CMD is root inside
    /// its user namespace and, outside, the owner of the working directory (nobody when that
    /// is root).
    #[arg(long)]
    pub user: Option<String>,
    /// Run CMD without bubblewrap: only its network is sandboxed, it sees the host's
    /// filesystem, processes and users, and a root CMD can leave the sandbox.
    #[arg(long)]
    pub no_isolation: bool,
    /// Pass a variable into the sandbox: NAME=VALUE, or NAME for the caller's value
    /// (repeatable; nothing else of the caller's environment but PATH, TERM and LANG passes).
    #[arg(long = "env", value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,
    /// Pass the variables of a file (one NAME=VALUE or NAME per line, # comments); --env wins.
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Make DIR (an existing path) visible and writable inside the sandbox (repeatable).
    #[arg(long, value_name = "DIR")]
    pub bind: Vec<PathBuf>,
    /// Make DIR visible read-only inside the sandbox (repeatable; VEIL_RO_BIND holds a
    /// colon-separated list, used when no --ro-bind is given).
    #[arg(long, value_name = "DIR", env = "VEIL_RO_BIND", value_delimiter = ':')]
    pub ro_bind: Vec<PathBuf>,
    /// Listener and eBPF options, used when no daemon is running.
    #[command(flatten)]
    pub proxy: ProxyArgs,
    /// The sandbox's settings (unset ones come from the daemon's defaults).
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// Secrets options, used when no daemon is running.
    #[command(flatten)]
    pub secrets: SecretArgs,
    /// The command and its arguments.
    #[arg(required = true, last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `veil hooks`.
#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// Write the hooks.d file Podman and CRI-O read (it runs `veil oci-hook` for containers
    /// with the `veil.sandbox` annotation) and the wrapper script Docker's daemon.json names
    /// as a runtime (`docker run --runtime veil`).
    Install(HooksArgs),
    /// Remove what `veil hooks install` wrote.
    Uninstall(HooksArgs),
}

/// Where `veil hooks` installs.
#[derive(Debug, Args)]
pub struct HooksArgs {
    /// The hooks.d directory (Podman reads /usr/share/containers/oci/hooks.d by default, and
    /// any directory given with `podman --hooks-dir`).
    #[arg(long, value_name = "DIR", default_value = crate::container::install::DEFAULT_HOOKS_DIR)]
    pub hooks_dir: PathBuf,
    /// Where to write the Docker wrapper script `veil-runc`.
    #[arg(long, value_name = "DIR", default_value = "/usr/local/libexec/veil")]
    pub wrapper_dir: PathBuf,
    /// The runtime the Docker wrapper runs.
    #[arg(long, value_name = "PATH", default_value = "/usr/sbin/runc")]
    pub runtime: PathBuf,
    /// Docker's data root, where the wrapper reads each container's name and image.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/docker")]
    pub docker_root: PathBuf,
}

/// `veil oci-runtime`.
#[derive(Debug, Args)]
pub struct OciRuntimeArgs {
    /// The runtime to run after preparing the bundle.
    #[arg(long, value_name = "PATH")]
    pub runtime: PathBuf,
    /// Docker's data root.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/docker")]
    pub docker_root: PathBuf,
    /// The runtime's arguments, as Docker's shim passed them.
    #[arg(last = true, value_name = "ARGS", allow_hyphen_values = true)]
    pub args: Vec<std::ffi::OsString>,
}

/// `veil attach`.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// The cgroup v2 directory to steer.
    #[arg(required_unless_present = "container", conflicts_with = "container")]
    pub cgroup: Option<PathBuf>,
    /// A running container to steer, by name or id: veil finds its process through the
    /// runtime (`podman inspect`, `docker inspect`) and steers its cgroup in its own network
    /// namespace. Connections it opened before are not affected; new ones go through veil.
    #[arg(long, value_name = "NAME|ID", conflicts_with = "netns")]
    pub container: Option<String>,
    /// The runtime to ask for `--container` (default: podman, then docker).
    #[arg(long, value_name = "RUNTIME", requires = "container", value_parser = ["podman", "docker"])]
    pub runtime: Option<String>,
    /// Sandbox name for the audit log (default: the directory's name, or the container's).
    #[arg(long)]
    pub name: Option<String>,
    /// The network namespace the cgroup's processes are in, for example
    /// `/proc/PID/ns/net` of a container's process: veil opens its listeners there and steers
    /// the cgroup into them (default: veil's own namespace).
    #[arg(long, value_name = "PATH")]
    pub netns: Option<PathBuf>,
    /// The sandbox's settings (unset ones come from the daemon's defaults).
    #[command(flatten)]
    pub settings: SettingsArgs,
}

/// `veil detach`.
#[derive(Debug, Args)]
pub struct DetachArgs {
    /// The cgroup v2 directory to stop steering.
    #[arg(required_unless_present = "container", conflicts_with = "container")]
    pub cgroup: Option<PathBuf>,
    /// The container to stop steering, by name, id or id prefix (as `veil attach
    /// --container` or the OCI hook attached it).
    #[arg(long, value_name = "NAME|ID")]
    pub container: Option<String>,
}

/// `veil audit`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    /// Check the log instead of printing it.
    #[command(subcommand)]
    pub command: Option<AuditCommand>,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// After the matching records, print new ones as they are recorded, until interrupted
    /// (needs the daemon).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Which records.
    #[command(flatten)]
    pub filter: AuditFilterArgs,
}

/// `veil audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain: report the first record that was changed, removed or reordered
    /// (exit 1), or how many records are intact and the head hash (exit 0).
    Verify,
}

/// Which audit records to show; every filter given must match.
#[derive(Debug, Args)]
pub struct AuditFilterArgs {
    /// Only records naming this secret (its name or its id).
    #[arg(long, value_name = "NAME_OR_ID")]
    pub secret: Option<String>,
    /// Only records concerning this host: a connection's TLS SNI or HTTP Host (any case), or
    /// its destination IP.
    #[arg(long)]
    pub host: Option<String>,
    /// Only records concerning this sandbox.
    #[arg(long, value_name = "NAME")]
    pub sandbox: Option<String>,
    /// Only records of this kind: connection, kernel_refusal, kernel_refusals_dropped,
    /// sandbox_attached, sandbox_detached, policy_changed or retention.
    #[arg(long)]
    pub kind: Option<EventKind>,
    /// Only records from TIME on: RFC 3339 (2026-05-01T12:00:00Z; without an offset, UTC) or
    /// a duration meaning that long ago (90s, 10m, 2h, 7d).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only records before TIME (the same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only the last N matching records (with --follow: of the ones already recorded).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

/// `veil secrets ...`.
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Store a secret; sandboxes get its placeholder in --env-var.
    #[command(visible_alias = "add")]
    Create(CreateArgs),
    /// List the secrets (never their values).
    List(ListArgs),
    /// Show one secret (never its value).
    Show(ShowArgs),
    /// Replace a secret's value (its placeholder stays), and/or change its hosts, variable,
    /// slots, methods or paths.
    #[command(visible_alias = "update")]
    Rotate(RotateArgs),
    /// Delete a secret: its placeholder is no longer replaced, and sandboxes started from now
    /// on do not get its variable.
    Delete(DeleteArgs),
}

/// Where a secret value comes from: standard input unless one of these is given. One trailing
/// line break is not part of the value.
#[derive(Debug, Args)]
pub struct ValueSource {
    /// Read the value from FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "from_env")]
    pub from_file: Option<PathBuf>,
    /// Read the value from environment variable VAR.
    #[arg(long, value_name = "VAR")]
    pub from_env: Option<String>,
    /// For an aws secret: read the key from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
    /// AWS_SESSION_TOKEN (if set) in this environment.
    #[arg(long, conflicts_with_all = ["from_file", "from_env"])]
    pub from_aws_env: bool,
}

/// What kind of secret `veil secrets create` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SecretKind {
    /// A value placed where its placeholder is (headers, opted-in query strings).
    Token,
    /// An AWS access key: requests signed with its placeholder key id are re-signed (SigV4).
    /// The value is JSON: {"access_key_id", "secret_access_key", "session_token"?} (or the
    /// AccessKeyId, SecretAccessKey, SessionToken of `aws sts` output).
    Aws,
}

/// `veil secrets create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Unique name (1-64 of A-Z a-z 0-9 _ . -); the placeholder is `<prefix><NAME>`.
    pub name: String,
    /// Environment variable sandboxes get the placeholder in (required but for aws secrets,
    /// where it names the key id's variable, by default AWS_ACCESS_KEY_ID, and ends in
    /// ACCESS_KEY_ID).
    #[arg(long, value_name = "VAR")]
    pub env_var: Option<String>,
    /// Host the value may be sent to: `api.github.com`, `*.github.com` (one label deeper) or
    /// `*`; repeat for more. Default: `*`.
    #[arg(long = "host", value_name = "PATTERN")]
    pub hosts: Vec<String>,
    /// Also replace the placeholder in URL query strings (the `query` slot).
    #[arg(long)]
    pub inject_query: bool,
    /// Where the placeholder is replaced: `headers`, `query`, `path`, `form`, `json`, or one
    /// restricted to names: `headers=authorization,x-api-key`, `form=refresh_token`,
    /// `json=/auth/key`; repeat for more. Default: `headers`.
    #[arg(long = "slot", value_name = "SLOT[=NAMES]")]
    pub slots: Vec<String>,
    /// A method the value may be sent with (`GET`, `POST`); repeat for more. Default: any.
    #[arg(long = "method", value_name = "METHOD")]
    pub methods: Vec<String>,
    /// A path pattern the value may be sent to (`/repos/my-org/*`: `*` is any characters of
    /// one segment, and a pattern covers the paths below it); repeat for more. Default: any.
    #[arg(long = "path", value_name = "PATTERN")]
    pub paths: Vec<String>,
    /// Where the value comes from.
    #[command(flatten)]
    pub value: ValueSource,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// The kind of secret.
    #[arg(long, value_enum, default_value = "token")]
    pub kind: SecretKind,
}

/// `veil secrets list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `veil secrets show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The secret's id or name.
    pub secret: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `veil secrets rotate`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The secret's id or name.
    pub secret: String,
    /// Where the new value comes from.
    #[command(flatten)]
    pub value: ValueSource,
    /// Keep the current value; change only what the other options say.
    #[arg(long, conflicts_with_all = ["from_file", "from_env", "from_aws_env"])]
    pub keep_value: bool,
    /// Replace the host patterns with these; repeat for more.
    #[arg(long = "host", value_name = "PATTERN")]
    pub hosts: Vec<String>,
    /// Put the placeholder in this variable instead.
    #[arg(long, value_name = "VAR")]
    pub env_var: Option<String>,
    /// Replace the placeholder in URL query strings too.
    #[arg(long, conflicts_with = "no_inject_query")]
    pub inject_query: bool,
    /// Replace the placeholder in headers only.
    #[arg(long)]
    pub no_inject_query: bool,
    /// Where the placeholder is replaced: `headers`, `query`, `path`, `form`, `json`, or one
    /// restricted to names: `headers=authorization,x-api-key`, `form=refresh_token`,
    /// `json=/auth/key`; repeat for more. Replaces the slots.
    #[arg(long = "slot", value_name = "SLOT[=NAMES]")]
    pub slots: Vec<String>,
    /// A method the value may be sent with (`GET`, `POST`); repeat for more. Replaces the list.
    #[arg(long = "method", value_name = "METHOD")]
    pub methods: Vec<String>,
    /// A path pattern the value may be sent to (`/repos/my-org/*`: `*` is any characters of
    /// one segment, and a pattern covers the paths below it); repeat for more. Replaces the list.
    #[arg(long = "path", value_name = "PATTERN")]
    pub paths: Vec<String>,
    /// Allow any method again.
    #[arg(long, conflicts_with = "methods")]
    pub any_method: bool,
    /// Allow any path again.
    #[arg(long, conflicts_with = "paths")]
    pub any_path: bool,

    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `veil secrets delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The secret's id or name.
    pub secret: String,
}

/// `veil env`.
#[derive(Debug, Args)]
pub struct EnvArgs {
    /// Only if this sandbox exists (every sandbox gets every secret).
    #[arg(long, value_name = "NAME")]
    pub sandbox: Option<String>,
    /// `shell`: `export VAR='placeholder'` lines for `eval`. `env-file`: `VAR=value` lines
    /// for `podman run --env-file` / `docker run --env-file`, with the CA variables
    /// (SSL_CERT_FILE, ...) naming the bundle where a container mounts it.
    #[arg(long, value_enum, default_value_t = EnvFormat::Shell)]
    pub format: EnvFormat,
    /// For `--format env-file`: the CA bundle's path inside the container.
    #[arg(long, value_name = "PATH", default_value = "/etc/veil/ca-bundle.pem")]
    pub ca_path: String,
}

/// `veil env --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EnvFormat {
    /// `export VAR='value'` lines.
    Shell,
    /// `VAR=value` lines (Docker's and Podman's --env-file).
    EnvFile,
}

/// `veil egress`.
#[derive(Debug, Subcommand)]
pub enum EgressCommand {
    /// Print the allow rules and passthrough patterns in force.
    List,
    /// Add allow rules (host patterns or CIDR blocks), or passthrough patterns.
    Allow(EgressRules),
    /// Remove allow rules, or passthrough patterns.
    Deny(EgressRules),
}

/// Rules for `veil egress allow|deny`.
#[derive(Debug, Args)]
pub struct EgressRules {
    /// `api.github.com`, `*.githubusercontent.com`, `*`, `10.0.0.0/8`, `127.0.0.3/32:5432`.
    #[arg(required = true, value_name = "RULE")]
    pub rules: Vec<String>,
    /// Change the passthrough list (TLS relayed without interception) instead.
    #[arg(long)]
    pub passthrough: bool,
}

impl AuditFilterArgs {
    /// The filters as a `GET /v1/audit` query string.
    pub fn query(&self) -> String {
        let limit = self.limit.map(|n| n.to_string());
        encode_query(&[
            ("secret", self.secret.as_deref()),
            ("host", self.host.as_deref()),
            ("sandbox", self.sandbox.as_deref()),
            ("kind", self.kind.map(EventKind::as_str)),
            ("since", self.since.as_deref()),
            ("until", self.until.as_deref()),
            ("limit", limit.as_deref()),
        ])
    }
}

/// How much of the audit log `veil serve` keeps.
#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// Drop audit records older than this (such as 30d or 12h; `off` keeps them however old)
    /// at start and then every --audit-retention-interval; the log still verifies from the
    /// oldest record kept.
    #[arg(long, value_name = "DURATION|off", default_value = "90d", value_parser = age_limit)]
    pub audit_max_age: Limit<Duration>,
    /// Keep at most N audit records (the oldest go first; `off` for no limit), checked like
    /// --audit-max-age.
    #[arg(long, value_name = "N|off", default_value = "5000000", value_parser = count_limit)]
    pub audit_max_records: Limit<u64>,
    /// How often --audit-max-age and --audit-max-records are applied.
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = positive_duration)]
    pub audit_retention_interval: Duration,
}

/// A retention limit, or none (`off`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit<T>(pub Option<T>);

impl From<RetentionArgs> for RetentionPolicy {
    fn from(a: RetentionArgs) -> Self {
        RetentionPolicy {
            max_age: a.audit_max_age.0,
            max_records: a.audit_max_records.0,
            every: a.audit_retention_interval,
        }
    }
}

/// Parses `off` or an age limit (see [`positive_duration`]).
fn age_limit(value: &str) -> Result<Limit<Duration>, String> {
    if value == "off" {
        return Ok(Limit(None));
    }
    positive_duration(value).map(|d| Limit(Some(d)))
}

/// Parses `off` or a record count of at least 1.
fn count_limit(value: &str) -> Result<Limit<u64>, String> {
    match value {
        "off" => Ok(Limit(None)),
        _ => match value.parse::<u64>() {
            Ok(0) | Err(_) => Err("give a count of at least 1, or off".to_owned()),
            Ok(n) => Ok(Limit(Some(n))),
        },
    }
}

/// Parses a humantime duration (`30d`, `1h 30m`) longer than zero.
fn positive_duration(value: &str) -> Result<Duration, String> {
    match humantime::parse_duration(value) {
        Ok(d) if d.is_zero() => Err("must be longer than zero".to_owned()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!(
            "{e} (give a duration such as 90s, 10m, 12h or 30d)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, String> {
        Cli::try_parse_from([&["veil"], args].concat()).map_err(|e| e.to_string())
    }

    #[test]
    fn log_levels_parse() {
        let level = |value| match parse(&["serve", "--bpf-log", value])?.command {
            Command::Serve(a) => Ok(a.proxy.bpf_log),
            other => Err(format!("{other:?}")),
        };
        assert_eq!(level("off"), Ok(BpfLogLevel::Off));
        assert_eq!(level("DEBUG"), Ok(BpfLogLevel::Debug));
        assert!(level("loud").unwrap_err().contains("trace"));
        let default = parse(&["run", "--", "true"]).unwrap();
        assert!(matches!(default.command, Command::Run(a) if a.proxy.bpf_log == BpfLogLevel::Off));
    }

    #[test]
    fn dns_upstreams_parse() {
        let upstream = |value| match parse(&["serve", "--dns-upstream", value])?.command {
            Command::Serve(a) => Ok(a.proxy.dns_upstream),
            other => Err(format!("{other:?}")),
        };
        assert_eq!(
            upstream("1.1.1.1,[::1]:5353"),
            Ok(vec![
                "1.1.1.1:53".parse().unwrap(),
                "[::1]:5353".parse().unwrap()
            ])
        );
        assert!(upstream("resolver.test").is_err());
        let default = parse(&["run", "--", "true"]).unwrap();
        assert!(matches!(default.command, Command::Run(a) if a.proxy.dns_upstream.is_empty()));
    }

    #[test]
    fn ipv6_policies_parse() {
        let policy = |value| match parse(&["serve", "--ipv6", value])?.command {
            Command::Serve(a) => Ok(a.settings.ipv6),
            other => Err(format!("{other:?}")),
        };
        assert_eq!(policy("DENY"), Ok(Some(Ipv6Policy::Deny)));
        assert_eq!(policy("steer"), Ok(Some(Ipv6Policy::Steer)));
        assert!(policy("maybe").unwrap_err().contains("deny"));
    }

    fn serve_retention(args: &[&str]) -> Result<RetentionPolicy, clap::Error> {
        let cli = Cli::try_parse_from([&["veil", "serve"], args].concat())?;
        match cli.command {
            Command::Serve(serve) => Ok(serve.retention.into()),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn retention_defaults_to_the_standard_policy_and_off_keeps_everything() {
        assert_eq!(serve_retention(&[]).unwrap(), RetentionPolicy::standard());
        let off = serve_retention(&["--audit-max-age", "off", "--audit-max-records", "off"]);
        assert!(off.unwrap().keeps_everything());
        let set = serve_retention(&["--audit-max-age", "30d", "--audit-max-records", "7"]);
        let set = set.unwrap();
        assert_eq!(set.max_age, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(set.max_records, Some(7));
        for bad in [
            &["--audit-max-records", "0"][..],
            &["--audit-max-records", "many"],
            &["--audit-max-age", "0s"],
            &["--audit-max-age", "soon"],
        ] {
            let err = serve_retention(bad).unwrap_err().to_string();
            assert!(err.contains("--audit-max"), "{bad:?}: {err}");
        }
    }
}
