//! veil: an egress proxy that keeps credentials out of sandboxes.
//!
//! The library holds everything; the `veil` binary (`main.rs`) parses the command line and
//! dispatches.
//!
//! A sandbox is a cgroup v2 directory. eBPF programs attached to it (see the `veil-ebpf`
//! crate) rewrite every outbound TCP connect to veil's listeners and record where it was
//! going, and refuse every other way out; veil looks the record up, decides, audits, and
//! relays the connection.
//!
//! Layout, one module per concern:
//! - [`cli`]: the command line; [`config`]: where an installation keeps its files.
//! - [`steering`]: loading, attaching and pinning the eBPF programs; reading their maps.
//! - [`cgroup`]: finding the cgroup2 mount, creating, joining and removing cgroups.
//! - [`sandbox`]: the registry of steered cgroups and their names.
//! - [`daemon`]: the daemon's state; [`serve`]: its tasks and shutdown; [`limits`]: the
//!   open-files limit a proxy needs.
//! - [`relay`]: the front of the data path: the kernel's record, loops, then [`proxy`].
//! - [`refusals`]: forwarding what the kernel refused sandboxes into the audit log.
//! - [`classify`]: first-bytes sniffing (TLS ClientHello, HTTP request head), pure parsers.
//! - [`policy`]: egress rules and decisions, and the TOML configuration they come from.
//! - [`tls`]: veil's CA, leaf certificates, verified upstream TLS.
//! - [`proxy`]: TLS interception, HTTP/1.1 and HTTP/2 proxying, denials, splicing.
//! - [`inject`]: the placeholder engine, pure: placeholders in request headers become
//!   secrets only for verified in-scope hosts.
//! - [`audit`]: the audit log (records, hash chain, sled store, verification, retention,
//!   group-commit writer, followers, formatting); [`cli_audit`]: `veil audit`.
//! - [`api`]: the control API on a Unix socket, server and client.
//! - [`run`]: `veil run`, with or without a separately started daemon.
//! - [`reset`]: `veil reset`, removing an installation's kernel state and sandboxes.
//! - [`secrets`]: the encrypted secrets store, the live set the proxy reads, the profile;
//!   [`cli_secrets`]: `veil secrets ...` and `veil env`.
//! - [`metrics`]: counters and a latency histogram for `GET /metrics`.

pub mod api;
pub mod audit;
pub mod cgroup;
pub mod classify;
pub mod cli;
pub mod cli_audit;
pub mod cli_secrets;
pub mod config;
pub mod daemon;
pub mod limits;
pub mod metrics;
pub mod policy;
pub mod proxy;
pub mod refusals;
pub mod relay;
pub mod reset;
pub mod run;
pub mod sandbox;
pub mod secrets;
pub mod serve;
pub mod steering;
pub mod tls;
