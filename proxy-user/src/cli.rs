//! The command line: what each `veil` subcommand takes.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

use crate::{
    api::encode_query,
    audit::{EventKind, RetentionPolicy},
    config::Paths,
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
    /// Print the audit log.
    Audit(AuditArgs),
    /// Print veil's CA certificate (PEM), creating the CA if it does not exist yet.
    Ca,
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
    #[arg(long, default_value = "off")]
    pub bpf_log: BpfLogLevel,
    /// Configuration file with the egress policy (`[egress] allow = [...]`); re-read on
    /// SIGHUP. Without one, every destination is denied.
    #[arg(long, env = "VEIL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Extra root certificates (PEM) trusted for upstream TLS, besides the webpki roots.
    #[arg(long, env = "VEIL_UPSTREAM_CA", value_delimiter = ',')]
    pub upstream_ca: Vec<PathBuf>,
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
    #[arg(long, env = "VEIL_IPV6", value_name = "steer|deny")]
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

/// `veil serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listener and eBPF options.
    #[command(flatten)]
    pub proxy: ProxyArgs,
    /// Default sandbox settings.
    #[command(flatten)]
    pub settings: SettingsArgs,
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
    /// Run CMD as this user (name or uid) instead of root.
    #[arg(long)]
    pub user: Option<String>,
    /// Listener and eBPF options, used when no daemon is running.
    #[command(flatten)]
    pub proxy: ProxyArgs,
    /// The sandbox's settings (unset ones come from the daemon's defaults).
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// The command and its arguments.
    #[arg(required = true, last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `veil attach`.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// The cgroup v2 directory to steer.
    pub cgroup: PathBuf,
    /// Sandbox name for the audit log (default: the directory's name).
    #[arg(long)]
    pub name: Option<String>,
    /// The sandbox's settings (unset ones come from the daemon's defaults).
    #[command(flatten)]
    pub settings: SettingsArgs,
}

/// `veil detach`.
#[derive(Debug, Args)]
pub struct DetachArgs {
    /// The cgroup v2 directory to stop steering.
    pub cgroup: PathBuf,
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
    /// Drop audit records older than this (such as 30d or 12h) at start and then every
    /// --audit-retention-interval; the log still verifies from the oldest record kept.
    #[arg(long, value_name = "DURATION", value_parser = positive_duration)]
    pub audit_max_age: Option<Duration>,
    /// Keep at most N audit records (the oldest go first), checked like --audit-max-age.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub audit_max_records: Option<u64>,
    /// How often --audit-max-age and --audit-max-records are applied.
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = positive_duration)]
    pub audit_retention_interval: Duration,
}

impl From<RetentionArgs> for RetentionPolicy {
    fn from(a: RetentionArgs) -> Self {
        RetentionPolicy {
            max_age: a.audit_max_age,
            max_records: a.audit_max_records,
            every: a.audit_retention_interval,
        }
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
