//! The control API: JSON over HTTP/1.1 on a Unix socket (0600, root only) that the CLI and
//! operators use to manage sandboxes and read the audit log.
//!
//! | method and path            | does                                                        |
//! |----------------------------|-------------------------------------------------------------|
//! | `GET /healthz`             | `{"status":"ok"}` while the daemon serves; 503 `{"status":"failing","reason":...}` once the audit log has failed |
//! | `GET /v1/sandboxes`        | every sandbox                                               |
//! | `POST /v1/sandboxes`       | `{name}` creates a managed sandbox; `{name, cgroup}` attaches; an optional `settings` object (`dns_resolvers`, `ipv6`) overrides the defaults |
//! | `DELETE /v1/sandboxes/{n}` | removes (managed) or detaches (attached) sandbox `n`        |
//! | `GET /v1/audit?limit=&kind=&sandbox=&host=&secret=&since=&until=&after=` | matching records, JSON lines; with `follow=1` the response stays open and streams each new match as it is committed |
//! | `GET /v1/audit/verify`     | walks the hash chain: a [`crate::audit::Verification`]      |
//! | `GET /v1/secrets`          | every secret (never a value)                                |
//! | `POST /v1/secrets`         | `{name, secret, env_var, hosts?, inject_query?, slots?, methods?, paths?, kind?}` creates one (201); `kind: "aws"` takes `secret` as `{access_key_id, secret_access_key, session_token?}` and `env_var` defaults to `AWS_ACCESS_KEY_ID` |
//! | `GET /v1/secrets/{id}`     | one secret                                                  |
//! | `PATCH /v1/secrets/{id}`   | `{secret?, env_var?, hosts?, inject_query?, slots?, methods?, paths?}` rotates/changes it |
//! | `DELETE /v1/secrets/{id}`  | deletes it                                                  |
//! | `GET /metrics`             | counters and a latency histogram, Prometheus text format    |
//! | `GET /v1/egress`           | `{allow, passthrough, config}`: the egress rules in force     |
//! | `PUT /v1/egress`           | `{allow, passthrough}` replaces them (written to the config file) |
//! | `GET /v1/ca`               | veil's CA certificate, PEM                                  |
//! | `GET /v1/status`           | a [`crate::status::Status`]: version, listeners, steered cgroups and their hooks, sandboxes, audit health and head, secrets count, newest refusals; 200 also when unhealthy |
//!
//! Errors are `{"error": "..."}` with a 4xx status for bad requests and 5xx for failures; a
//! refused secrets request also names the offending `field`. On TCP (`--api-listen`) every
//! request needs `Authorization: Bearer <api key>` (401 otherwise).

mod audit;
pub mod client;
mod egress;
mod query;
mod secrets;
pub mod server;
pub mod tcp;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{audit::Container, steering::SettingsOverride};

pub use egress::EgressState;
pub use query::{encode_query, parse_audit_query, AuditQuery};

/// Body of `POST /v1/sandboxes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxRequest {
    /// The sandbox's name.
    pub name: String,
    /// An existing cgroup to attach; absent to create a managed sandbox.
    #[serde(default)]
    pub cgroup: Option<PathBuf>,
    /// Settings that differ from the daemon's defaults.
    #[serde(default)]
    pub settings: SettingsOverride,
    /// For a managed sandbox: give it a network namespace of its own, with veil's listeners
    /// in it (`veil run`); false keeps it in veil's namespace (`--no-isolation`).
    #[serde(default)]
    pub own_netns: bool,
    /// For an attached cgroup: the network namespace its processes are in (a file such as
    /// `/proc/PID/ns/net`), which veil then serves; absent: veil's own namespace.
    #[serde(default)]
    pub netns: Option<PathBuf>,
    /// For an attached cgroup: the container it belongs to.
    #[serde(default)]
    pub container: Option<Container>,
}

/// Largest request body the API reads.
const MAX_BODY: usize = 64 * 1024;

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What was wrong, for a person to read.
    pub error: String,
    /// The request field that was wrong, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}
