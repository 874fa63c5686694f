//! The engine: its entries, construction, and the two rewriting entry points.

use std::{collections::HashMap, fmt, sync::Arc};

use aho_corasick::{AhoCorasick, MatchKind};
use zeroize::Zeroizing;

use super::{
    basic_auth, boundary, query,
    scan::{splice, Hit, Site},
    Event, Outcome, QUERY_LOCATION,
};
use crate::host_pattern::HostPattern;

/// Placeholders swapped for secrets, built once and then only read.
///
/// Cheap to share (`Arc<Engine<V>>`); rebuild and swap the whole engine when secrets change.
pub struct Engine<V> {
    /// Finds every placeholder; pattern `i` is the placeholder of `entries[i]`.
    pub(super) automaton: AhoCorasick,
    /// The secrets, in the order their placeholders were given to the automaton.
    pub(super) entries: Vec<Entry<V>>,
}

/// One live secret, as the engine needs it.
pub struct Entry<V> {
    /// The secret's id, for events.
    pub id: String,
    /// The secret's name, for events.
    pub name: String,
    /// What the workload sees instead of the secret, e.g. `IRONSH_PROXY_github-main`.
    pub placeholder: String,
    /// Hosts the secret may be sent to; empty means none.
    pub scope: Vec<HostPattern>,
    /// Whether the secret is also swapped in the query string of the request target.
    pub inject_query: bool,
    /// The secret itself.
    pub value: Arc<V>,
}

/// Where a request goes, as far as veil could prove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// TLS to `host`, the SNI that upstream certificate verification proved.
    VerifiedTls {
        /// The verified host name.
        host: &'a str,
    },
    /// Plain HTTP or anything else not verified: never receives a secret.
    Unverified,
}

/// Why a set of entries cannot make an engine.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// A secret has no placeholder.
    #[error("secret {id:?} has an empty placeholder")]
    EmptyPlaceholder {
        /// The secret's id.
        id: String,
    },
    /// A placeholder holds a byte that cannot be part of a placeholder name.
    #[error("secret {id:?}: placeholder {placeholder:?} may only hold ASCII letters, digits, `_`, `.` and `-`")]
    BadPlaceholder {
        /// The secret's id.
        id: String,
        /// The offending placeholder.
        placeholder: String,
    },
    /// Two secrets have the same placeholder.
    #[error("secrets {first:?} and {second:?} share the placeholder {placeholder:?}")]
    DuplicatePlaceholder {
        /// The shared placeholder.
        placeholder: String,
        /// The id of the secret given first.
        first: String,
        /// The id of the secret given second.
        second: String,
    },
    /// The automaton could not be built (too many or too long placeholders).
    #[error("cannot build the placeholder automaton: {0}")]
    Automaton(#[from] aho_corasick::BuildError),
}

impl<V: AsRef<[u8]>> Engine<V> {
    /// Builds an engine over `entries`, rejecting empty, ill-formed and duplicate placeholders.
    pub fn new(entries: Vec<Entry<V>>) -> Result<Self, EngineError> {
        let mut seen: HashMap<&str, &str> = HashMap::with_capacity(entries.len());
        for entry in &entries {
            let placeholder = entry.placeholder.as_str();
            if placeholder.is_empty() {
                return Err(EngineError::EmptyPlaceholder {
                    id: entry.id.clone(),
                });
            }
            if !placeholder.bytes().all(boundary::is_name_byte) {
                return Err(EngineError::BadPlaceholder {
                    id: entry.id.clone(),
                    placeholder: placeholder.to_owned(),
                });
            }
            if let Some(first) = seen.insert(placeholder, &entry.id) {
                return Err(EngineError::DuplicatePlaceholder {
                    placeholder: placeholder.to_owned(),
                    first: first.to_owned(),
                    second: entry.id.clone(),
                });
            }
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(entries.iter().map(|entry| &entry.placeholder))?;
        Ok(Self { automaton, entries })
    }

    /// Swaps the placeholders in one request header value.
    ///
    /// `Authorization` and `Proxy-Authorization` values with scheme `Basic` are swapped inside
    /// their decoded `user:password`. Events name the header `header_name`.
    pub fn rewrite_header(&self, header_name: &str, value: &[u8], target: Target<'_>) -> Outcome {
        let Some(basic) = basic_auth::split(header_name, value) else {
            return self.rewrite_plain(header_name, value, target);
        };
        let decoded = basic_auth::with_decoded(basic.credentials, |user_pass| {
            let hits = self.scan(user_pass, 0..user_pass.len(), target, Site::Header);
            outcome(&hits, header_name, || {
                basic_auth::encode(basic.scheme, &splice(user_pass, &hits, Site::Header))
            })
        });
        decoded.unwrap_or_else(|| self.rewrite_plain(header_name, value, target))
    }

    /// Swaps the placeholders of secrets with [`Entry::inject_query`] in the query string of a
    /// request target (origin or absolute form), percent-encoding the secrets.
    ///
    /// Events name the header [`QUERY_LOCATION`].
    pub fn rewrite_query(&self, request_target: &[u8], target: Target<'_>) -> Outcome {
        let Some(range) = query::range(request_target) else {
            return Outcome::unchanged();
        };
        let hits = self.scan(request_target, range, target, Site::Query);
        outcome(&hits, QUERY_LOCATION, || {
            splice(request_target, &hits, Site::Query)
        })
    }

    /// Swaps placeholders in `value` taken as plain text.
    fn rewrite_plain(&self, header_name: &str, value: &[u8], target: Target<'_>) -> Outcome {
        let hits = self.scan(value, 0..value.len(), target, Site::Header);
        outcome(&hits, header_name, || splice(value, &hits, Site::Header))
    }
}

/// Turns `hits` into events and, when any of them injects, the value `rewritten` builds.
fn outcome<V>(
    hits: &[Hit<'_, V>],
    header_name: &str,
    rewritten: impl FnOnce() -> Zeroizing<Vec<u8>>,
) -> Outcome {
    if hits.is_empty() {
        return Outcome::unchanged();
    }
    let events = hits
        .iter()
        .map(|hit| {
            let entry = hit.entry;
            let (secret_id, secret_name, header) =
                (entry.id.clone(), entry.name.clone(), header_name.to_owned());
            match hit.skip {
                None => Event::Injected {
                    secret_id,
                    secret_name,
                    header,
                },
                Some(reason) => Event::NotInjected {
                    secret_id,
                    secret_name,
                    header,
                    reason,
                },
            }
        })
        .collect();
    let value = hits.iter().any(|hit| hit.skip.is_none()).then(rewritten);
    Outcome::new(value, events)
}

impl<V> fmt::Debug for Engine<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

impl<V> fmt::Debug for Entry<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("placeholder", &self.placeholder)
            .field("scope", &self.scope)
            .field("inject_query", &self.inject_query)
            .field("value", &"<redacted>")
            .finish()
    }
}
