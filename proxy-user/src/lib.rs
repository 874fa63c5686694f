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
//! What needs no I/O (parsers, host patterns, the policy and its plans, the placeholder engine,
//! audit records and their chain, secrets' fields) lives in the `veil-core` crate; this crate
//! carries it out. Layout, one module per concern:
//! - [`cli`]: the command line; [`config`]: where an installation keeps its files;
//!   [`generate`]: man pages and shell completions made from the command line.
//! - [`steering`]: loading, attaching and pinning the eBPF programs; reading their maps.
//! - [`cgroup`]: finding the cgroup2 mount, creating, joining and removing cgroups.
//! - [`sandbox`]: the sandbox lifecycle (create, attach, remove) and the registry of names.
//! - [`netns`]: sandboxes' network namespaces, and veil's listeners inside them.
//! - [`daemon`]: starting the daemon and its services; [`serve`]: its tasks and shutdown;
//!   [`notify`]: telling systemd it is ready;
//!   [`limits`]: the open-files limit a proxy needs.
//! - [`relay`]: the front of the data path: the kernel's record, loops, then [`proxy`].
//! - [`refusals`]: forwarding what the kernel refused sandboxes into the audit log.
//! - [`classify`]: reading a connection's first bytes until they say what it is.
//! - [`policy`]: the egress policy in force, its configuration file, reloads.
//! - [`dns`]: the DNS proxy answering sandboxes' queries under the egress policy, and the
//!   answers each sandbox received.
//! - [`resolve`]: resolving names veil cannot prove, to bind them to the dialled address.
//! - [`tls`]: veil's CA, leaf certificates, verified upstream TLS.
//! - [`proxy`]: the data path's [`proxy::Context`], carrying out a connection's plan: TLS
//!   interception, HTTP/1.1 and HTTP/2 proxying, injection, denials, splicing.
//! - [`audit`]: the audit log's sled store, verification, retention, group-commit writer and
//!   followers; [`cli_audit`]: `veil audit`.
//! - [`api`]: the control API on a Unix socket, server and client.
//! - [`run`]: `veil run`, with or without a separately started daemon.
//! - [`container`]: containers as sandboxes: the OCI hook, the Docker runtime wrapper, the
//!   hook files, attaching a running container; [`cli_container`]: `veil oci-hook`,
//!   `veil hooks`, `veil attach` and `veil detach`.
//! - [`reset`]: `veil reset`, removing an installation's kernel state and sandboxes.
//! - [`secrets`]: the encrypted secrets store, the live set and placeholder engine the proxy
//!   reads, the profile, the API key; [`cli_secrets`]: `veil secrets ...` and `veil env`;
//!   [`cli_aws`]: reading an aws secret's key.
//! - [`metrics`]: counters and a latency histogram for `GET /metrics`.
//! - [`status`]: the daemon's status report (`GET /v1/status`); [`cli_status`]: `veil status`.
//! - [`logging`]: how log lines look on a terminal and in systemd's journal.

pub mod api;
pub mod audit;
pub mod cgroup;
pub mod classify;
pub mod cli;
pub mod cli_audit;
pub mod cli_aws;
pub mod cli_container;
pub mod cli_secrets;
pub mod cli_status;
pub mod config;
pub mod container;
pub mod daemon;
pub mod dns;
pub mod generate;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod netns;
pub mod notify;
pub mod policy;
pub mod proxy;
pub mod refusals;
pub mod relay;
pub mod reset;
pub mod resolve;
pub mod run;
pub mod sandbox;
pub mod secrets;
pub mod serve;
pub mod status;
pub mod steering;
pub mod tls;
