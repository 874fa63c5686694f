//! veil's pure core: everything the daemon decides, parses and encodes that needs no I/O, so
//! it is tested and fuzzed on any machine, without root, BPF, sockets or a database.
//!
//! - [`authority`]: strict authority: every host a request names must be the verified one.
//! - [`classify`]: first-bytes sniffing; the TLS ClientHello and HTTP/1 request-head parsers.
//! - [`dns`]: DNS queries and responses, sans I/O, for veil's DNS proxy.
//! - [`host_pattern`]: host patterns (`api.github.com`, `*.example.com`, `*`), shared by egress
//!   rules and secret scopes.
//! - [`policy`]: egress rules, the decisions they make, and the configuration file's text.
//! - [`route`]: method and path scopes of secrets, and normalised request paths.
//! - [`plan`]: what happens to a connection, decided from its first bytes, its original
//!   destination and the policy.
//! - [`inject`]: the placeholder engine: placeholders in each secret's slots (headers, query,
//!   path, form and JSON bodies) become secrets only for verified hosts, methods and paths in
//!   its scope.
//! - [`scrub`]: the response scrubber: every live secret in a response (raw, base64,
//!   percent-encoded, JSON-escaped) becomes its placeholder before the sandbox sees it.
//! - [`audit`]: audit records, their encoding, the hash chain, renderings.
//! - [`websocket`]: scrubbing the WebSocket frames a server sends a sandbox.
//! - [`oci`]: containers as sandboxes: the OCI state a hook reads, the bundle spec veil
//!   checks and adds its hooks to, runtime command lines.
//! - [`secrets`]: the secret value type, validation of secrets' fields, the live set.
//! - [`sigv4`]: AWS SigV4 re-signing: requests (header or presigned) and `aws-chunked`
//!   bodies signed with a placeholder key are signed again with the real one.
//!
//! The daemon (`veil`, in `proxy-user/`) carries out what this crate decides.

pub mod audit;
pub mod authority;
pub mod classify;
pub mod dns;
pub mod host_pattern;
pub mod inject;
pub mod oci;
pub mod plan;
pub mod policy;
pub mod route;
pub mod scrub;
pub mod secrets;
pub mod sigv4;
pub mod websocket;
