//! What rewriting one value came to: maybe a new value, and an event per placeholder.

use std::fmt;

use zeroize::Zeroizing;

/// The header name that events from [`Engine::rewrite_query`](super::Engine::rewrite_query)
/// carry: the query string of the request target, which no real header name can spell.
pub const QUERY_LOCATION: &str = "(query)";

/// The result of rewriting one value.
///
/// When no placeholder occurs it holds nothing and costs no allocation. Its `Debug` output
/// never shows the new value.
pub struct Outcome {
    /// The value to send instead, when a secret was injected.
    value: Option<Zeroizing<Vec<u8>>>,
    /// One event per complete placeholder occurrence, in order.
    events: Vec<Event>,
}

/// What happened to one complete placeholder occurrence. Never holds a secret or the whole
/// value it was found in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The placeholder was replaced by the secret.
    Injected {
        /// The secret's id.
        secret_id: String,
        /// The secret's name.
        secret_name: String,
        /// The header it was found in, or [`QUERY_LOCATION`].
        header: String,
    },
    /// The placeholder was left as it is.
    NotInjected {
        /// The secret's id.
        secret_id: String,
        /// The secret's name.
        secret_name: String,
        /// The header it was found in, or [`QUERY_LOCATION`].
        header: String,
        /// Why it was left.
        reason: Reason,
    },
}

/// Why a placeholder was left as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The verified host is not in the secret's scope.
    OutOfScope,
    /// The request does not go over verified TLS.
    NotTls,
    /// The secret holds a byte that is illegal in a header value.
    IllegalBytes,
}

impl Outcome {
    /// The value to send instead of the one given, or `None` to send that one unchanged.
    pub fn value(&self) -> Option<&[u8]> {
        self.value.as_ref().map(|value| value.as_slice())
    }

    /// One event per complete placeholder occurrence, in order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The new value (zeroized when dropped) and the events.
    pub fn into_parts(self) -> (Option<Zeroizing<Vec<u8>>>, Vec<Event>) {
        (self.value, self.events)
    }

    /// Nothing found: send the value unchanged, report nothing.
    pub(super) fn unchanged() -> Self {
        Self::new(None, Vec::new())
    }

    /// An outcome of `value` (if any was built) and `events`.
    pub(super) fn new(value: Option<Zeroizing<Vec<u8>>>, events: Vec<Event>) -> Self {
        Self { value, events }
    }
}

impl Reason {
    /// A short stable name, for audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OutOfScope => "out_of_scope",
            Self::NotTls => "not_tls",
            Self::IllegalBytes => "illegal_bytes",
        }
    }
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.value.as_ref().map(|_| Redacted);
        f.debug_struct("Outcome")
            .field("value", &value)
            .field("events", &self.events)
            .finish()
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Stands in for a value in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
