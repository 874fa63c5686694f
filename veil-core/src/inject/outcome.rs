//! What rewriting one value came to: maybe a new value, and an event per placeholder.

use std::fmt;

use zeroize::Zeroizing;

/// The header name that events from [`Engine::rewrite_query`](super::Engine::rewrite_query)
/// carry: the query string of the request target, which no real header name can spell.
pub const QUERY_LOCATION: &str = "(query)";

/// The place that events from [`Engine::rewrite_path`](super::Engine::rewrite_path) name.
pub const PATH_LOCATION: &str = "(path)";

/// Places in a form body start with this, followed by the field's name.
pub const FORM_LOCATION: &str = "(form)";

/// Places in a JSON body start with this, followed by the JSON pointer of the value.
pub const JSON_LOCATION: &str = "(json)";

/// The slot a place (`header` of an [`Event`]) stands for, as audit records name it:
/// `header:<name>`, `query`, `path`, `form:<field>`, `json:<pointer>`.
pub fn slot_name(location: &str) -> String {
    if location == QUERY_LOCATION {
        "query".to_owned()
    } else if location == PATH_LOCATION {
        "path".to_owned()
    } else if let Some(field) = location.strip_prefix(FORM_LOCATION) {
        format!("form:{field}")
    } else if let Some(pointer) = location.strip_prefix(JSON_LOCATION) {
        format!("json:{pointer}")
    } else {
        format!("header:{}", location.to_ascii_lowercase())
    }
}

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
    /// The request's method is not among the secret's methods.
    MethodOutOfScope,
    /// The request's path matches none of the secret's path patterns.
    PathOutOfScope,
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
    pub(crate) fn unchanged() -> Self {
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
            Self::MethodOutOfScope => "method_out_of_scope",
            Self::PathOutOfScope => "path_out_of_scope",
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
