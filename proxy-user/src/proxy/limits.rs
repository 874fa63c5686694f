//! Bounds on what one connection may hold and how long veil waits for it, so a sandbox cannot
//! tie up veil's descriptors, memory or tasks. Every one has a `veil serve` flag.

use std::time::Duration;

/// The data path's limits and timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// How long a client may take to send a request head (HTTP/1.1), counted from when veil
    /// starts waiting for it, so it also ends a keep-alive connection idle between requests.
    pub head_timeout: Duration,
    /// How long a proxied HTTP connection may go with nothing moving either way.
    pub idle_timeout: Duration,
    /// The largest request head (HTTP/1.1) or header list (HTTP/2) veil reads.
    pub max_header_bytes: usize,
    /// How long veil waits for an upstream TCP handshake.
    pub connect_timeout: Duration,
    /// How long veil waits for a TLS handshake, on either leg.
    pub tls_timeout: Duration,
    /// How many connections one sandbox may have open through veil at once.
    pub per_sandbox: usize,
    /// The largest request body veil reads whole to fill a secret's named form fields or JSON
    /// pointers (past it: 413).
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            head_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
            max_header_bytes: 64 * 1024,
            connect_timeout: Duration::from_secs(10),
            tls_timeout: Duration::from_secs(10),
            per_sandbox: 4096,
            max_body_bytes: 1024 * 1024,
        }
    }
}
