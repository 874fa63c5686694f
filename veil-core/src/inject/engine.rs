//! The engine: its entries, construction, and the two rewriting entry points.

use std::{collections::HashMap, fmt, sync::Arc};

use aho_corasick::{AhoCorasick, MatchKind};
use zeroize::Zeroizing;

use super::{
    basic_auth, boundary, query,
    scan::{splice, Hit, Site},
    Event, Outcome, Slots, PATH_LOCATION, QUERY_LOCATION,
};
use crate::{
    host_pattern::HostPattern,
    route::{RequestPath, RouteScope},
};

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
    /// Where in a request the secret may be swapped in.
    pub slots: Slots,
    /// The methods and paths the secret may be sent with (empty lists: any).
    pub route: RouteScope,
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

/// One request as the engine judges it: where it goes, its method and its normalised path.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// Where it goes.
    pub target: Target<'a>,
    /// Its method, as sent (`""` when unknown: secrets with method scopes are not injected).
    pub method: &'a str,
    /// Its path, normalised; `None` when unknown or when it does not normalise (secrets with
    /// path scopes are not injected).
    pub path: Option<RequestPath>,
}

impl<'a> Request<'a> {
    /// A request with `method` and `request_target` (origin or absolute form) to `target`.
    pub fn new(target: Target<'a>, method: &'a str, request_target: &str) -> Self {
        // Origin form starts with `/`; only absolute form (`https://host/path`) has an
        // authority to skip (a `://` later on, in the query say, is not one).
        let path = if request_target.starts_with('/') {
            Some(request_target)
        } else {
            request_target.split_once("://").map(|(_, rest)| {
                let end = rest.find(['?', '#']).unwrap_or(rest.len());
                rest.find('/')
                    .filter(|&at| at < end)
                    .map_or("/", |at| &rest[at..])
            })
        };
        Self {
            target,
            method,
            path: path.and_then(RequestPath::parse),
        }
    }
}

impl<'a> From<Target<'a>> for Request<'a> {
    /// A request of unknown method and path: only secrets without method or path scopes may
    /// be injected into it.
    fn from(target: Target<'a>) -> Self {
        Self {
            target,
            method: "",
            path: None,
        }
    }
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
    pub fn rewrite_header(
        &self,
        header_name: &str,
        value: &[u8],
        request: &Request<'_>,
    ) -> Outcome {
        let Some(basic) = basic_auth::split(header_name, value) else {
            return self.rewrite_plain(header_name, value, request);
        };
        let decoded = basic_auth::with_decoded(basic.credentials, |user_pass| {
            let hits = self.scan(
                user_pass,
                0..user_pass.len(),
                request,
                Site::Header(header_name),
            );
            outcome(&hits, header_name, || {
                basic_auth::encode(
                    basic.scheme,
                    &splice(user_pass, &hits, Site::Header(header_name)),
                )
            })
        });
        decoded.unwrap_or_else(|| self.rewrite_plain(header_name, value, request))
    }

    /// Swaps the placeholders of secrets with [`Entry::inject_query`] in the query string of a
    /// request target (origin or absolute form), percent-encoding the secrets.
    ///
    /// Events name the header [`QUERY_LOCATION`].
    pub fn rewrite_query(&self, request_target: &[u8], request: &Request<'_>) -> Outcome {
        let Some(range) = query::range(request_target) else {
            return Outcome::unchanged();
        };
        let hits = self.scan(request_target, range, request, Site::Query);
        outcome(&hits, QUERY_LOCATION, || {
            splice(request_target, &hits, Site::Query)
        })
    }

    /// Swaps the placeholders of secrets with the `path` slot in the path of a request target
    /// in origin form, percent-encoding the secrets for a path segment.
    ///
    /// Events name the place [`PATH_LOCATION`].
    pub fn rewrite_path(&self, request_target: &[u8], request: &Request<'_>) -> Outcome {
        let end = request_target
            .iter()
            .position(|&b| b == b'?' || b == b'#')
            .unwrap_or(request_target.len());
        let hits = self.scan(request_target, 0..end, request, Site::Path);
        outcome(&hits, PATH_LOCATION, || {
            splice(request_target, &hits, Site::Path)
        })
    }

    /// Swaps placeholders in `value` taken as plain text.
    fn rewrite_plain(&self, header_name: &str, value: &[u8], request: &Request<'_>) -> Outcome {
        let site = Site::Header(header_name);
        let hits = self.scan(value, 0..value.len(), request, site);
        outcome(&hits, header_name, || splice(value, &hits, site))
    }
}

/// Turns `hits` into events and, when any of them injects, the value `rewritten` builds.
pub(super) fn outcome<V>(
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
            .field("slots", &self.slots)
            .field("route", &self.route)
            .field("value", &"<redacted>")
            .finish()
    }
}
