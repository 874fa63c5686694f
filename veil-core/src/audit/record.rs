//! The audit data model and its on-disk encoding.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::chain::{event_hash, record_hash, Hash};
use super::DecodeError;

/// One stored audit record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Position in the log, assigned by the store: 1, 2, 3, ...
    pub seq: u64,
    /// When the event happened, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
    /// The hash of the record before this one ([`Hash::GENESIS`] for seq 1).
    pub prev_hash: Hash,
    /// This record's hash over its seq, time, `prev_hash` and event (see [`super::chain`]).
    pub hash: Hash,
}

impl Record {
    /// The record with `seq`, `time_ms` and `event` that follows a record whose hash is
    /// `prev_hash`, with its own hash computed.
    pub fn link(prev_hash: &Hash, seq: u64, time_ms: u64, event: Event) -> Self {
        let hash = record_hash(seq, time_ms, prev_hash, &event);
        Self {
            seq,
            time_ms,
            event,
            prev_hash: *prev_hash,
            hash,
        }
    }

    /// [`Record::link`] and [`Record::encode`] at once, serializing the event once for both
    /// the hash and the stored bytes (which are the same as [`Record::encode`] gives: the
    /// event's fields sit flat between `time_ms` and `prev_hash`).
    pub fn link_encoded(prev_hash: &Hash, seq: u64, time_ms: u64, event: Event) -> (Self, Vec<u8>) {
        // Invariant: an `Event` always serializes (see `Record::to_json`).
        let event_json = serde_json::to_vec(&event).expect("an audit event serializes to JSON");
        let hash = event_hash(seq, time_ms, prev_hash, &event_json);
        // The event is an object that starts with `{"kind":`; its fields go on after
        // `time_ms`.
        let fields = event_json
            .strip_prefix(b"{")
            .and_then(|rest| rest.strip_suffix(b"}"))
            .unwrap_or_default();
        let mut encoded = Vec::with_capacity(event_json.len() + 200);
        encoded.extend_from_slice(format!("{{\"seq\":{seq},\"time_ms\":{time_ms},").as_bytes());
        encoded.extend_from_slice(fields);
        encoded.extend_from_slice(
            format!(",\"prev_hash\":\"{prev_hash}\",\"hash\":\"{hash}\"}}").as_bytes(),
        );
        let record = Self {
            seq,
            time_ms,
            event,
            prev_hash: *prev_hash,
            hash,
        };
        (record, encoded)
    }

    /// The hash the record's contents give; equal to `hash` unless it was changed.
    pub fn computed_hash(&self) -> Hash {
        record_hash(self.seq, self.time_ms, &self.prev_hash, &self.event)
    }

    /// Encodes the record as the JSON bytes stored in sled.
    pub fn encode(&self) -> Vec<u8> {
        self.to_json().into_bytes()
    }

    /// Decodes a record from bytes produced by [`Record::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(Arc::new(e)))
    }

    /// Serializes the record as one JSON object.
    pub fn to_json(&self) -> String {
        // Invariant: serializing a `Record` cannot fail. Every field is a
        // string, number, bool, option or `SocketAddr` (a string), there are
        // no maps with non-string keys and no fallible `Serialize` impls.
        serde_json::to_string(self).expect("audit record serializes to JSON")
    }
}

/// Something worth auditing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A process connected through veil, and what veil decided.
    Connection(Connection),
    /// veil started confining a sandbox.
    SandboxAttached(SandboxChange),
    /// veil stopped confining a sandbox.
    SandboxDetached(SandboxChange),
    /// The kernel refused a sandboxed process a socket, connect or send.
    KernelRefusal(KernelRefusal),
    /// Kernel refusals happened that could not be recorded one by one (the ring was full).
    KernelRefusalsDropped(RefusalsDropped),
    /// A sandbox's records were not written because too many were waiting (see
    /// [`RecordsDropped`]).
    RecordsDropped(RecordsDropped),
    /// A secret was stored.
    SecretCreated(SecretChange),
    /// A secret was rotated or its settings changed.
    SecretUpdated(SecretChange),
    /// A secret was deleted.
    SecretDeleted(SecretChange),
    /// A placeholder in a request was replaced by its secret.
    SecretInjected(Injection),
    /// A placeholder in a request was left as it was (out of scope, not TLS, or unusable).
    PlaceholderNotInjected(Injection),
    /// The egress policy was loaded (at start) or reloaded (on SIGHUP).
    PolicyChanged(PolicyChange),
    /// Retention dropped the oldest records.
    Retention(Retention),
    /// A secret's value in a response was replaced by its placeholder, or the response was
    /// cut off, before it reached the sandbox.
    SecretScrubbed(Scrub),
    /// A connection went past one of veil's limits and was closed.
    LimitExceeded(LimitExceeded),
    /// A sandbox asked veil's DNS proxy about a name, and what veil answered.
    DnsQuery(DnsQuery),
}

impl Event {
    /// The kind of this event.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::Connection(_) => EventKind::Connection,
            Self::SandboxAttached(_) => EventKind::SandboxAttached,
            Self::SandboxDetached(_) => EventKind::SandboxDetached,
            Self::KernelRefusal(_) => EventKind::KernelRefusal,
            Self::KernelRefusalsDropped(_) => EventKind::KernelRefusalsDropped,
            Self::RecordsDropped(_) => EventKind::RecordsDropped,
            Self::SecretCreated(_) => EventKind::SecretCreated,
            Self::SecretUpdated(_) => EventKind::SecretUpdated,
            Self::SecretDeleted(_) => EventKind::SecretDeleted,
            Self::SecretInjected(_) => EventKind::SecretInjected,
            Self::PlaceholderNotInjected(_) => EventKind::PlaceholderNotInjected,
            Self::PolicyChanged(_) => EventKind::PolicyChanged,
            Self::Retention(_) => EventKind::Retention,
            Self::SecretScrubbed(_) => EventKind::SecretScrubbed,
            Self::LimitExceeded(_) => EventKind::LimitExceeded,
            Self::DnsQuery(_) => EventKind::DnsQuery,
        }
    }

    /// The name of the sandbox the event concerns, if known.
    pub fn sandbox(&self) -> Option<&str> {
        match self {
            Self::Connection(c) => c.sandbox.as_deref(),
            Self::SandboxAttached(s) | Self::SandboxDetached(s) => Some(&s.name),
            Self::KernelRefusal(r) => r.sandbox.as_deref(),
            Self::RecordsDropped(d) => d.sandbox.as_deref(),
            Self::SecretInjected(i) | Self::PlaceholderNotInjected(i) => i.sandbox.as_deref(),
            Self::SecretScrubbed(s) => s.sandbox.as_deref(),
            Self::LimitExceeded(l) => l.sandbox.as_deref(),
            Self::DnsQuery(d) => d.sandbox.as_deref(),
            Self::KernelRefusalsDropped(_)
            | Self::SecretCreated(_)
            | Self::SecretUpdated(_)
            | Self::SecretDeleted(_)
            | Self::PolicyChanged(_)
            | Self::Retention(_) => None,
        }
    }

    /// The destination the event concerns, if it has one.
    pub fn destination(&self) -> Option<SocketAddr> {
        match self {
            Self::Connection(c) => c.destination,
            Self::KernelRefusal(r) => r.destination,
            Self::SecretInjected(i) | Self::PlaceholderNotInjected(i) => Some(i.destination),
            Self::SecretScrubbed(s) => Some(s.destination),
            Self::LimitExceeded(l) => Some(l.destination),
            Self::SandboxAttached(_)
            | Self::SandboxDetached(_)
            | Self::KernelRefusalsDropped(_)
            | Self::RecordsDropped(_)
            | Self::SecretCreated(_)
            | Self::SecretUpdated(_)
            | Self::SecretDeleted(_)
            | Self::PolicyChanged(_)
            | Self::Retention(_)
            | Self::DnsQuery(_) => None,
        }
    }

    /// The host name the event concerns (a connection's TLS SNI or HTTP Host, the name a DNS
    /// query asked about), if it has one.
    pub fn host(&self) -> Option<&str> {
        match self {
            Self::Connection(c) => c.host.as_deref(),
            Self::DnsQuery(d) => Some(&d.name),
            Self::SecretInjected(i) | Self::PlaceholderNotInjected(i) => Some(&i.host),
            Self::SecretScrubbed(s) => Some(&s.host),
            Self::LimitExceeded(l) => Some(&l.host),
            Self::SandboxAttached(_)
            | Self::SandboxDetached(_)
            | Self::KernelRefusal(_)
            | Self::KernelRefusalsDropped(_)
            | Self::RecordsDropped(_)
            | Self::SecretCreated(_)
            | Self::SecretUpdated(_)
            | Self::SecretDeleted(_)
            | Self::PolicyChanged(_)
            | Self::Retention(_) => None,
        }
    }

    /// The secret the event concerns, if it names one. Every kind that carries a secret's
    /// name and id (lifecycle changes, replacements, out-of-scope attempts) returns it here,
    /// which is what `veil audit --secret` matches.
    pub fn secret(&self) -> Option<SecretRef<'_>> {
        match self {
            Self::SecretCreated(s) | Self::SecretUpdated(s) | Self::SecretDeleted(s) => {
                Some(SecretRef {
                    name: &s.name,
                    id: &s.id,
                })
            }
            Self::SecretInjected(i) | Self::PlaceholderNotInjected(i) => Some(SecretRef {
                name: &i.secret_name,
                id: &i.secret_id,
            }),
            Self::SecretScrubbed(s) => Some(SecretRef {
                name: &s.secret_name,
                id: &s.secret_id,
            }),
            Self::Connection(_)
            | Self::SandboxAttached(_)
            | Self::SandboxDetached(_)
            | Self::KernelRefusal(_)
            | Self::KernelRefusalsDropped(_)
            | Self::RecordsDropped(_)
            | Self::LimitExceeded(_)
            | Self::PolicyChanged(_)
            | Self::Retention(_)
            | Self::DnsQuery(_) => None,
        }
    }
}

impl Event {
    /// How many events this record stands for: the `count` of a connection, a kernel
    /// refusal, an injection or a DNS query, 1 for every other kind.
    pub fn count(&self) -> u64 {
        match self {
            Self::Connection(c) => c.count,
            Self::KernelRefusal(r) => r.count,
            Self::DnsQuery(d) => d.count,
            Self::SecretInjected(i) | Self::PlaceholderNotInjected(i) => i.count,
            _ => 1,
        }
    }

    /// Sets the count of a kind that has one (see [`Event::count`]); other kinds are left
    /// as they are.
    pub fn set_count(&mut self, count: u64) {
        match self {
            Self::Connection(c) => c.count = count,
            Self::KernelRefusal(r) => r.count = count,
            Self::DnsQuery(d) => d.count = count,
            Self::SecretInjected(i) | Self::PlaceholderNotInjected(i) => i.count = count,
            _ => {}
        }
    }
}

/// The most places a record of placeholders left alone lists in `headers`.
pub const MAX_HEADERS: usize = 8;

/// The `count` of a record that leaves it out: one event.
fn one() -> u64 {
    1
}

/// Whether `count` is the one that is left out.
fn is_one(count: &u64) -> bool {
    *count == 1
}

/// The secret an event concerns: its name and its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecretRef<'a> {
    /// The secret's name.
    pub name: &'a str,
    /// The secret's id.
    pub id: &'a str,
}

impl SecretRef<'_> {
    /// Whether `name_or_id` is this secret's name or its id.
    pub fn is(&self, name_or_id: &str) -> bool {
        self.name == name_or_id || self.id == name_or_id
    }
}

/// A connection closed for going past one of veil's limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitExceeded {
    /// Which limit: `request_head_timeout`, `idle_timeout`, `max_header_bytes`.
    pub limit: String,
    /// What happened, for people.
    pub detail: String,
    /// The host the connection was for.
    pub host: String,
    /// The original destination.
    pub destination: SocketAddr,
    /// Sandbox name, `None` when the cgroup is not a known sandbox.
    pub sandbox: Option<String>,
    /// cgroup v2 id of the connecting process.
    pub cgroup_id: u64,
    /// Process id of the connecting process.
    pub pid: u32,
    /// Command name of the connecting process.
    pub comm: String,
}

/// A DNS query a sandbox sent veil's DNS proxy, and what veil answered. Names are not
/// secret; the answer's addresses are not recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsQuery {
    /// Sandbox name, `None` when the cgroup is not a known sandbox.
    pub sandbox: Option<String>,
    /// cgroup v2 id of the sandbox whose namespace the query came from.
    pub cgroup_id: u64,
    /// The name asked about, normalised (lower case, no trailing dot); empty when the query
    /// could not be read.
    pub name: String,
    /// The record type asked for: `A`, `AAAA`, ..., `TYPE<n>`.
    pub qtype: String,
    /// `udp` or `tcp`.
    pub transport: String,
    /// What veil did.
    pub outcome: DnsOutcome,
    /// The egress rule that allowed the name, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Why, for people: `resolved`, `from cache`, `no egress rule allows ...`.
    pub reason: String,
    /// How many queries this record stands for: more than 1 for a record that sums repeats
    /// (see [`super::Aggregator`]); absent (and 1) otherwise.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub count: u64,
}

/// What veil did with a DNS query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DnsOutcome {
    /// Answered with what the resolvers said (any response code they gave).
    Answered,
    /// Refused (REFUSED, FORMERR or NOTIMP) without asking a resolver.
    Refused,
    /// Allowed, but no resolver answered usably (SERVFAIL).
    Failed,
}

impl DnsOutcome {
    /// The outcome's name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Refused => "refused",
            Self::Failed => "failed",
        }
    }
}

/// A secret's value found in a response on its way to a sandbox. Never the value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scrub {
    /// The secret's id.
    pub secret_id: String,
    /// The secret's name.
    pub secret_name: String,
    /// The host the response came from.
    pub host: String,
    /// The original destination.
    pub destination: SocketAddr,
    /// Where it was: `status` (the reason phrase), `header:<name>`, `trailer:<name>`, `body`,
    /// `frame` (WebSocket) or `stream` (TLS that is not HTTP).
    pub location: String,
    /// How many occurrences (in every encoding veil knows); one event, so
    /// [`Event::count`] is 1.
    pub count: u64,
    /// `replaced` (by the placeholder), or `cut` (the response was not delivered: a compressed
    /// body, or one whose length could not change), with why.
    pub action: String,
    /// Sandbox name, `None` when the cgroup is not a known sandbox.
    pub sandbox: Option<String>,
    /// cgroup v2 id of the requesting process.
    pub cgroup_id: u64,
    /// Process id of the requesting process.
    pub pid: u32,
    /// Command name of the requesting process.
    pub comm: String,
}

/// A placeholder found in a request: replaced by its secret, or left alone and why. Never the
/// value, never the whole header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Injection {
    /// The secret's id.
    pub secret_id: String,
    /// The secret's name.
    pub secret_name: String,
    /// The host the request went to: the verified SNI (or address), or the unverified Host of
    /// plain HTTP.
    pub host: String,
    /// The original destination.
    pub destination: SocketAddr,
    /// `http/1.1`, `h2` or `websocket` (over TLS), or `http` (plain).
    pub protocol: RequestProtocol,
    /// The header the placeholder was in, or `(query)`.
    pub header: String,
    /// Why it was not injected (`out_of_scope`, `not_tls`, `illegal_bytes`); absent when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Sandbox name, `None` when the cgroup is not a known sandbox.
    pub sandbox: Option<String>,
    /// cgroup v2 id of the requesting process.
    pub cgroup_id: u64,
    /// Process id of the requesting process.
    pub pid: u32,
    /// Command name of the requesting process.
    pub comm: String,
    /// For a record of several placeholders left alone in one request: every distinct place
    /// they were in, in order, at most [`MAX_HEADERS`] (`header` is the first); empty when
    /// there was one place.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<String>,
    /// How many placeholders this record stands for (absent, and 1, for a single one).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub count: u64,
    /// The slot of the (first) placeholder: `header:<name>`, `query`, `path`, `form:<field>`,
    /// `json:<pointer>`; absent in records written before slots existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
}

/// What a connection turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnProtocol {
    /// TCP that is neither TLS nor HTTP (and a connection not classified yet).
    #[serde(rename = "tcp")]
    Tcp,
    /// Plain HTTP/1.
    #[serde(rename = "http")]
    Http,
    /// TLS, intercepted or denied.
    #[serde(rename = "tls")]
    Tls,
    /// TLS relayed without interception.
    #[serde(rename = "tls-passthrough")]
    TlsPassthrough,
}

impl ConnProtocol {
    /// The name records use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Http => "http",
            Self::Tls => "tls",
            Self::TlsPassthrough => "tls-passthrough",
        }
    }
}

impl fmt::Display for ConnProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The protocol a request went upstream in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestProtocol {
    /// HTTP/1.1 over verified TLS.
    #[serde(rename = "http/1.1")]
    Http1,
    /// HTTP/2 over verified TLS.
    #[serde(rename = "h2")]
    H2,
    /// The HTTP/1.1 request that opens a WebSocket, over verified TLS.
    #[serde(rename = "websocket")]
    WebSocket,
    /// Plain HTTP: nothing verified.
    #[serde(rename = "http")]
    PlainHttp,
}

impl RequestProtocol {
    /// The name records use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http1 => "http/1.1",
            Self::H2 => "h2",
            Self::WebSocket => "websocket",
            Self::PlainHttp => "http",
        }
    }
}

impl fmt::Display for RequestProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A connection decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    /// Sandbox name, `None` when the cgroup is not a known sandbox.
    pub sandbox: Option<String>,
    /// cgroup v2 id of the connecting process.
    pub cgroup_id: u64,
    /// Process id of the connecting process.
    pub pid: u32,
    /// User id of the connecting process.
    pub uid: u32,
    /// Group id of the connecting process.
    pub gid: u32,
    /// Command name of the connecting process.
    pub comm: String,
    /// The client's local address as veil saw it.
    pub client: Option<SocketAddr>,
    /// The original destination; `None` when veil had no record for the
    /// connection.
    pub destination: Option<SocketAddr>,
    /// The host the connection named: the TLS SNI or the HTTP Host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// What the connection turned out to be: `tls`, `tls-passthrough`, `http` or `tcp`.
    pub protocol: ConnProtocol,
    /// The egress rule that allowed the connection, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// What veil decided.
    pub verdict: Verdict,
    /// Short human-readable reason, such as `"relayed"` or
    /// `"no original-destination record"`.
    pub reason: String,
    /// How many events this record stands for: more than 1 for a record that sums repeats
    /// (see [`super::Aggregator`]); absent (and 1) otherwise.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub count: u64,
}

/// Something the kernel refused a sandboxed process before it could reach veil or the
/// network: a socket of a kind sandboxes may not have, UDP other than DNS to an allowed
/// resolver, or native IPv6 where the sandbox denies it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelRefusal {
    /// Sandbox name, `None` when the cgroup is not a known sandbox.
    pub sandbox: Option<String>,
    /// cgroup v2 id of the process (a cgroup below its sandbox, if it made one).
    pub cgroup_id: u64,
    /// Process id.
    pub pid: u32,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Command name.
    pub comm: String,
    /// Where it tried to connect or send; `None` for a refused socket.
    pub destination: Option<SocketAddr>,
    /// The socket, such as `"udp"`, `"tcp"`, `"raw (icmp)"` or `"packet"`.
    pub protocol: String,
    /// Why the kernel refused it.
    pub reason: String,
    /// How many events this record stands for: more than 1 for a record that sums repeats
    /// (see [`super::Aggregator`]); absent (and 1) otherwise.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub count: u64,
}

/// Kernel refusals the kernel could not report one by one because the ring was full. The
/// refusals themselves still happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefusalsDropped {
    /// How many were dropped since the previous record of this kind.
    pub dropped: u64,
    /// How many were dropped since the kernel's counter was created.
    pub total: u64,
}

/// Records of one sandbox that were not written because too many of its records were waiting
/// to be (the writer's per-sandbox budget was spent). The events themselves still happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordsDropped {
    /// The sandbox whose records were dropped; `None` for processes of no known sandbox.
    pub sandbox: Option<String>,
    /// How many of its records were dropped since the previous record of this kind for it.
    pub dropped: u64,
}

/// The egress policy that is now in force.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyChange {
    /// The configuration file it was read from; `None` when veil has none (deny all).
    pub source: Option<String>,
    /// How many allow rules it has.
    pub allow_rules: u64,
    /// How many passthrough patterns it has.
    pub passthrough: u64,
    /// What loaded it.
    pub trigger: PolicyTrigger,
}

/// What made veil load its egress policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyTrigger {
    /// The daemon started.
    Start,
    /// The daemon was told to re-read it (SIGHUP).
    Reload,
    /// An operator replaced it through the control API (`PUT /v1/egress`, `veil egress`).
    Api,
}

impl PolicyTrigger {
    /// The trigger's name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Reload => "reload",
            Self::Api => "api",
        }
    }
}

/// Records that retention dropped. An anchor with the last dropped record's seq and hash stays
/// in their place, so the chain still verifies from the first remaining record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// How many records were dropped.
    pub dropped: u64,
    /// The seq of the last dropped record (the anchor's seq).
    pub through_seq: u64,
    /// The age limit in force, in milliseconds, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_ms: Option<u64>,
    /// The count limit in force, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_records: Option<u64>,
}

/// A sandbox that veil started or stopped confining.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SandboxChange {
    /// Sandbox name.
    pub name: String,
    /// The sandbox's cgroup path.
    pub cgroup: String,
    /// cgroup v2 id of that path.
    pub cgroup_id: u64,
    /// The container the sandbox is, when it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
}

/// A container that is a sandbox: which runtime runs it and what it is called there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// The runtime that started it (`podman`, `docker`, `cri-o`, or `oci` when unknown).
    pub runtime: String,
    /// The container's id.
    pub id: String,
    /// The container's name in its runtime, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The image it was started from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// A change to a secret: who it is and where it may go, never its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretChange {
    /// The secret's id.
    pub id: String,
    /// The secret's name.
    pub name: String,
    /// The environment variable its placeholder is in (after the change).
    pub env_var: String,
    /// Its host patterns (after the change).
    pub hosts: Vec<String>,
    /// For updates, the fields that changed (`secret` for a new value, `env_var`, `hosts`,
    /// `inject_query`); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
}

/// What veil decided about a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The connection was relayed.
    Allowed,
    /// The connection was refused.
    Refused,
}

impl Verdict {
    /// The verdict's name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Refused => "refused",
        }
    }
}

/// The kind of an [`Event`], without its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// [`Event::Connection`].
    Connection,
    /// [`Event::SandboxAttached`].
    SandboxAttached,
    /// [`Event::SandboxDetached`].
    SandboxDetached,
    /// [`Event::KernelRefusal`].
    KernelRefusal,
    /// [`Event::KernelRefusalsDropped`].
    KernelRefusalsDropped,
    /// [`Event::RecordsDropped`].
    RecordsDropped,
    /// [`Event::SecretCreated`].
    SecretCreated,
    /// [`Event::SecretUpdated`].
    SecretUpdated,
    /// [`Event::SecretDeleted`].
    SecretDeleted,
    /// [`Event::SecretInjected`].
    SecretInjected,
    /// [`Event::PlaceholderNotInjected`].
    PlaceholderNotInjected,
    /// [`Event::PolicyChanged`].
    PolicyChanged,
    /// [`Event::Retention`].
    Retention,
    /// [`Event::SecretScrubbed`].
    SecretScrubbed,
    /// [`Event::LimitExceeded`].
    LimitExceeded,
    /// [`Event::DnsQuery`].
    DnsQuery,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [Self; 16] = [
        Self::Connection,
        Self::SandboxAttached,
        Self::SandboxDetached,
        Self::KernelRefusal,
        Self::KernelRefusalsDropped,
        Self::RecordsDropped,
        Self::SecretCreated,
        Self::SecretUpdated,
        Self::SecretDeleted,
        Self::SecretInjected,
        Self::PlaceholderNotInjected,
        Self::PolicyChanged,
        Self::Retention,
        Self::SecretScrubbed,
        Self::LimitExceeded,
        Self::DnsQuery,
    ];

    /// The kind's name, as serialized in the `kind` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connection => "connection",
            Self::SandboxAttached => "sandbox_attached",
            Self::SandboxDetached => "sandbox_detached",
            Self::KernelRefusal => "kernel_refusal",
            Self::KernelRefusalsDropped => "kernel_refusals_dropped",
            Self::RecordsDropped => "records_dropped",
            Self::SecretCreated => "secret_created",
            Self::SecretUpdated => "secret_updated",
            Self::SecretDeleted => "secret_deleted",
            Self::SecretInjected => "secret_injected",
            Self::PlaceholderNotInjected => "placeholder_not_injected",
            Self::PolicyChanged => "policy_changed",
            Self::Retention => "retention",
            Self::SecretScrubbed => "secret_scrubbed",
            Self::LimitExceeded => "limit_exceeded",
            Self::DnsQuery => "dns_query",
        }
    }

    /// All valid names, comma-separated, for error messages.
    pub fn names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

impl FromStr for EventKind {
    type Err = DecodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| DecodeError::UnknownKind {
                given: s.to_owned(),
            })
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The sled key for `seq`: its 8 big-endian bytes, so keys sort in seq order.
pub fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// The seq stored in a key produced by [`seq_key`].
pub fn seq_from_key(key: &[u8]) -> Result<u64, DecodeError> {
    let bytes = <[u8; 8]>::try_from(key).map_err(|_| DecodeError::BadKey { len: key.len() })?;
    Ok(u64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection() -> Event {
        Event::Connection(Connection {
            sandbox: Some("build".into()),
            cgroup_id: 4242,
            pid: 1234,
            uid: 1000,
            gid: 100,
            comm: "curl".into(),
            client: Some("10.0.0.2:40000".parse().unwrap()),
            destination: Some("[2001:db8::1]:443".parse().unwrap()),
            host: None,
            protocol: ConnProtocol::Tcp,
            rule: None,
            verdict: Verdict::Allowed,
            reason: "relayed".into(),
            count: 1,
        })
    }

    fn unknown_connection() -> Event {
        Event::Connection(Connection {
            sandbox: None,
            cgroup_id: 0,
            pid: 0,
            uid: 0,
            gid: 0,
            comm: String::new(),
            client: None,
            destination: None,
            host: None,
            protocol: ConnProtocol::Tcp,
            rule: None,
            verdict: Verdict::Refused,
            reason: "no original-destination record".into(),
            count: 1,
        })
    }

    fn kernel_refusal() -> Event {
        Event::KernelRefusal(KernelRefusal {
            sandbox: Some("build".into()),
            cgroup_id: 4243,
            pid: 77,
            uid: 0,
            gid: 0,
            comm: "python3".into(),
            destination: Some("127.0.0.2:9999".parse().unwrap()),
            protocol: "udp".into(),
            reason: "udp to a port other than 53".into(),
            count: 1,
        })
    }

    fn dns_query() -> Event {
        Event::DnsQuery(DnsQuery {
            sandbox: Some("build".into()),
            cgroup_id: 4242,
            name: "evil.test".into(),
            qtype: "TXT".into(),
            transport: "udp".into(),
            outcome: DnsOutcome::Refused,
            rule: None,
            reason: "no egress rule allows evil.test".into(),
            count: 1,
        })
    }

    fn change() -> SandboxChange {
        SandboxChange {
            name: "build".into(),
            cgroup: "/sys/fs/cgroup/veil/build".into(),
            cgroup_id: 4242,
            container: None,
        }
    }

    fn secret_change(changed: &[&str]) -> SecretChange {
        SecretChange {
            id: "sec_0123456789abcdef".into(),
            name: "github-main".into(),
            env_var: "GITHUB_TOKEN".into(),
            hosts: vec!["api.github.com".into(), "*.github.com".into()],
            changed: changed.iter().map(|&c| c.to_owned()).collect(),
        }
    }

    fn injection(reason: Option<&str>) -> Injection {
        Injection {
            secret_id: "sec_1".into(),
            secret_name: "github-main".into(),
            host: "api.github.com".into(),
            destination: "[2001:db8::1]:443".parse().unwrap(),
            protocol: RequestProtocol::H2,
            header: "authorization".into(),
            reason: reason.map(str::to_owned),
            sandbox: Some("agent \"quoted\"\n".into()),
            cgroup_id: 9,
            pid: 77,
            comm: "curl".into(),
            headers: vec!["authorization".into(), "x-api-key".into()],
            count: 2,
            slot: Some("json:/auth/key".into()),
        }
    }

    #[test]
    fn round_trips_every_event_kind() {
        let events = [
            connection(),
            unknown_connection(),
            Event::SandboxAttached(change()),
            Event::SandboxDetached(change()),
            kernel_refusal(),
            Event::KernelRefusalsDropped(RefusalsDropped {
                dropped: 3,
                total: 10,
            }),
            Event::RecordsDropped(RecordsDropped {
                sandbox: Some("build".into()),
                dropped: 17,
            }),
            Event::SecretCreated(secret_change(&[])),
            Event::SecretUpdated(secret_change(&["secret", "hosts"])),
            Event::SecretDeleted(secret_change(&[])),
            Event::PolicyChanged(PolicyChange {
                source: Some("/etc/veil/veil.toml".into()),
                allow_rules: 4,
                passthrough: 1,
                trigger: PolicyTrigger::Reload,
            }),
            Event::PolicyChanged(PolicyChange {
                source: None,
                allow_rules: 0,
                passthrough: 0,
                trigger: PolicyTrigger::Start,
            }),
            Event::Retention(Retention {
                dropped: 10,
                through_seq: 12,
                max_age_ms: Some(86_400_000),
                max_records: None,
            }),
            dns_query(),
            Event::SecretInjected(injection(None)),
            Event::PlaceholderNotInjected(injection(Some("out_of_scope"))),
        ];
        let mut prev = Hash::GENESIS;
        for (i, event) in events.into_iter().enumerate() {
            let (linked, encoded) =
                Record::link_encoded(&prev, i as u64 + 1, 1_700_000_000_123, event.clone());
            let record = Record::link(&prev, i as u64 + 1, 1_700_000_000_123, event);
            assert_eq!(linked, record);
            assert_eq!(encoded, record.encode());
            assert_eq!(Record::decode(&record.encode()).unwrap(), record);
            assert_eq!(record.computed_hash(), record.hash);
            prev = record.hash;
        }
    }

    #[test]
    fn encoding_is_flat_and_tagged() {
        let record = Record::link(&Hash([1; 32]), 7, 1, Event::SandboxAttached(change()));
        let json = String::from_utf8(record.encode()).unwrap();
        assert!(json.starts_with(r#"{"seq":7,"time_ms":1,"kind":"sandbox_attached","#));
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "seq": 7,
                "time_ms": 1,
                "kind": "sandbox_attached",
                "name": "build",
                "cgroup": "/sys/fs/cgroup/veil/build",
                "cgroup_id": 4242,
                "prev_hash": "01".repeat(32),
                "hash": record.hash.to_string(),
            })
        );
    }

    #[test]
    fn secret_events_are_flat_and_list_changes_only_for_updates() {
        let record = Record::link(
            &Hash::GENESIS,
            3,
            1,
            Event::SecretUpdated(secret_change(&["secret"])),
        );
        let value: serde_json::Value = serde_json::from_slice(&record.encode()).unwrap();
        assert_eq!(value["kind"], "secret_updated");
        assert_eq!(value["name"], "github-main");
        assert_eq!(value["changed"], serde_json::json!(["secret"]));
        let created = Record {
            event: Event::SecretCreated(secret_change(&[])),
            ..record
        };
        assert!(!String::from_utf8(created.encode())
            .unwrap()
            .contains("changed"));
    }

    #[test]
    fn links_follow_their_predecessor() {
        let first = Record::link(&Hash::GENESIS, 1, 5, Event::SandboxAttached(change()));
        let second = Record::link(&first.hash, 2, 6, Event::SandboxDetached(change()));
        assert_eq!(first.prev_hash, Hash::GENESIS);
        assert_eq!(second.prev_hash, first.hash);
        assert_ne!(first.hash, second.hash);
        let mut edited = second.clone();
        edited.time_ms += 1;
        assert_ne!(edited.computed_hash(), edited.hash);
    }

    #[test]
    fn only_connections_have_a_host_and_no_kind_yet_names_a_secret() {
        let mut event = connection();
        assert_eq!(event.host(), None);
        if let Event::Connection(c) = &mut event {
            c.host = Some("api.example.test".into());
        }
        assert_eq!(event.host(), Some("api.example.test"));
        assert_eq!(kernel_refusal().host(), None);
        assert_eq!(event.secret(), None);
        let secret = SecretRef {
            name: "github-main",
            id: "sec_1",
        };
        assert!(secret.is("github-main") && secret.is("sec_1") && !secret.is("github"));
    }

    #[test]
    fn decoding_garbage_is_an_error() {
        for bytes in [
            &b""[..],
            b"\xff\x00garbage",
            b"{}",
            br#"{"seq":1,"time_ms":2,"kind":"teleport"}"#,
            br#"{"seq":1,"time_ms":2,"kind":"connection"}"#,
        ] {
            assert!(matches!(Record::decode(bytes), Err(DecodeError::Json(_))));
        }
    }

    #[test]
    fn event_kind_matches_event_and_parses() {
        assert_eq!(connection().kind(), EventKind::Connection);
        assert_eq!(
            Event::SandboxAttached(change()).kind(),
            EventKind::SandboxAttached
        );
        assert_eq!(
            Event::SandboxDetached(change()).kind(),
            EventKind::SandboxDetached
        );
        assert_eq!(kernel_refusal().kind(), EventKind::KernelRefusal);
        assert_eq!(kernel_refusal().sandbox(), Some("build"));
        assert_eq!(
            kernel_refusal().destination(),
            Some("127.0.0.2:9999".parse().unwrap())
        );
        assert_eq!(
            Event::SecretUpdated(secret_change(&[])).kind(),
            EventKind::SecretUpdated
        );
        assert_eq!(Event::SecretDeleted(secret_change(&[])).sandbox(), None);
        for kind in EventKind::ALL {
            assert_eq!(kind.to_string().parse::<EventKind>().unwrap(), kind);
        }
    }

    #[test]
    fn unknown_event_kind_lists_valid_ones() {
        let err = "connections".parse::<EventKind>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown audit event kind \"connections\" \
             (expected one of: connection, sandbox_attached, sandbox_detached, kernel_refusal, \
             kernel_refusals_dropped, records_dropped, secret_created, secret_updated, secret_deleted, \
             secret_injected, placeholder_not_injected, policy_changed, retention, secret_scrubbed, \
             limit_exceeded, dns_query)"
        );
    }

    #[test]
    fn a_count_of_one_is_left_out_so_older_records_decode_and_verify_as_before() {
        // A kernel refusal as written before records had a count: its stored bytes and hash.
        let old = r#"{"seq":4,"time_ms":5,"kind":"kernel_refusal","sandbox":"build","cgroup_id":4243,"pid":77,"uid":0,"gid":0,"comm":"python3","destination":"127.0.0.2:9999","protocol":"udp","reason":"udp to a port other than 53","prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","hash":"HASH"}"#;
        let expected = Record::link(&Hash::GENESIS, 4, 5, kernel_refusal());
        let old = old.replace("HASH", &expected.hash.to_string());
        let decoded = Record::decode(old.as_bytes()).unwrap();
        assert_eq!(decoded.event.count(), 1);
        assert_eq!(decoded, expected);
        assert_eq!(decoded.computed_hash(), decoded.hash);
        assert_eq!(decoded.encode(), old.as_bytes());
        // The hash is over the event's JSON, which has no count field when it is 1.
        let event_json = serde_json::to_string(&kernel_refusal()).unwrap();
        assert!(!event_json.contains("count"), "{event_json}");
        assert!(old.contains(&event_json[1..event_json.len() - 1]));
    }

    #[test]
    fn a_count_above_one_is_stored_hashed_and_decoded() {
        let mut event = kernel_refusal();
        event.set_count(2000);
        let record = Record::link(&Hash::GENESIS, 1, 1, event.clone());
        let json = String::from_utf8(record.encode()).unwrap();
        assert!(json.contains(r#""reason":"udp to a port other than 53","count":2000,"#));
        let decoded = Record::decode(json.as_bytes()).unwrap();
        assert_eq!(decoded.event.count(), 2000);
        assert_eq!(decoded.computed_hash(), record.hash);
        assert_ne!(
            record.hash,
            Record::link(&Hash::GENESIS, 1, 1, kernel_refusal()).hash
        );
        // Kinds without a count keep theirs at 1.
        let mut attached = Event::SandboxAttached(change());
        attached.set_count(5);
        assert_eq!(attached.count(), 1);
    }

    #[test]
    fn dns_queries_are_flat_name_their_host_and_count_like_refusals() {
        let event = dns_query();
        assert_eq!(event.kind(), EventKind::DnsQuery);
        assert_eq!(event.sandbox(), Some("build"));
        assert_eq!(event.host(), Some("evil.test"));
        assert_eq!(event.destination(), None);
        let value = serde_json::to_value(&event).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "kind": "dns_query",
                "sandbox": "build",
                "cgroup_id": 4242,
                "name": "evil.test",
                "qtype": "TXT",
                "transport": "udp",
                "outcome": "refused",
                "reason": "no egress rule allows evil.test",
            })
        );
        let mut summed = event;
        summed.set_count(9);
        assert_eq!(summed.count(), 9);
        let record = Record::link(&Hash::GENESIS, 1, 1, summed.clone());
        assert_eq!(Record::decode(&record.encode()).unwrap().event, summed);
    }

    #[test]
    fn placeholders_left_alone_list_their_headers_only_when_several() {
        let mut injection = Injection {
            secret_id: "sec_1".into(),
            secret_name: "github-main".into(),
            host: "api.example.test".into(),
            destination: "127.0.0.2:443".parse().unwrap(),
            protocol: RequestProtocol::Http1,
            header: "x-a".into(),
            reason: Some("out_of_scope".into()),
            sandbox: Some("build".into()),
            cgroup_id: 1,
            pid: 2,
            comm: "curl".into(),
            headers: Vec::new(),
            count: 1,
            slot: None,
        };
        let single =
            serde_json::to_value(Event::PlaceholderNotInjected(injection.clone())).unwrap();
        assert!(single.get("headers").is_none() && single.get("count").is_none());
        injection.headers = vec!["x-a".into(), "x-b".into()];
        injection.count = 2000;
        let event = Event::PlaceholderNotInjected(injection);
        let record = Record::link(&Hash::GENESIS, 1, 1, event.clone());
        let value: serde_json::Value = serde_json::from_slice(&record.encode()).unwrap();
        assert_eq!(value["headers"], serde_json::json!(["x-a", "x-b"]));
        assert_eq!(value["count"], 2000);
        assert_eq!(Record::decode(&record.encode()).unwrap().event, event);
    }

    #[test]
    fn protocols_keep_the_names_stored_records_use() {
        for (protocol, name) in [
            (ConnProtocol::Tcp, "tcp"),
            (ConnProtocol::Http, "http"),
            (ConnProtocol::Tls, "tls"),
            (ConnProtocol::TlsPassthrough, "tls-passthrough"),
        ] {
            assert_eq!(
                serde_json::to_string(&protocol).unwrap(),
                format!("\"{name}\"")
            );
            assert_eq!(protocol.as_str(), name);
            let back: ConnProtocol = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(back, protocol);
        }
        for (protocol, name) in [
            (RequestProtocol::Http1, "http/1.1"),
            (RequestProtocol::H2, "h2"),
            (RequestProtocol::WebSocket, "websocket"),
            (RequestProtocol::PlainHttp, "http"),
        ] {
            assert_eq!(
                serde_json::to_string(&protocol).unwrap(),
                format!("\"{name}\"")
            );
            assert_eq!(protocol.as_str(), name);
        }
    }

    #[test]
    fn seq_key_round_trips_and_sorts() {
        for seq in [0, 1, 255, 256, u64::MAX] {
            assert_eq!(seq_from_key(&seq_key(seq)).unwrap(), seq);
        }
        assert!(seq_key(255) < seq_key(256));
    }

    #[test]
    fn seq_key_of_wrong_length_is_an_error() {
        for key in [&[][..], &[1; 7], &[1; 9]] {
            assert!(matches!(
                seq_from_key(key),
                Err(DecodeError::BadKey { len }) if len == key.len()
            ));
        }
    }
}
