//! The placeholder engine: swaps the placeholders a sandbox sends for the real secrets. Pure.
//!
//! A workload only ever sees a placeholder such as `IRONSH_PROXY_github-main`. veil terminates
//! the workload's TLS and hands every request header (and, for secrets that opt in, the query
//! string of the request target) to an [`Engine`], which replaces each placeholder by its secret
//! exactly when the request goes over verified TLS to a host in the secret's scope.
//!
//! - One aho-corasick automaton over all live placeholders, leftmost-longest. An [`Engine`] is
//!   immutable: when secrets change, the caller builds a new one and swaps it in atomically
//!   (an `Arc<Engine>` behind a watch channel or similar); the next request uses the new one.
//! - A match only counts when it is complete: the byte after it, if any, cannot be part of a
//!   placeholder name (`[A-Za-z0-9_.-]`). So `IRONSH_PROXY_gh` never matches inside
//!   `IRONSH_PROXY_gh-main`, whether or not `IRONSH_PROXY_gh-main` is itself a secret. The byte
//!   before a placeholder does not matter. Placeholders must consist of name bytes, which
//!   [`Engine::new`] checks.
//! - Scope: a secret's host patterns ([`HostPattern`](crate::host_pattern::HostPattern)) are matched against the host that
//!   upstream certificate verification proved ([`Target::VerifiedTls`]). Anything else
//!   ([`Target::Unverified`]: plain HTTP, unverified upstreams) never receives a secret. Out of
//!   scope, the placeholder stays as it is and an [`Event::NotInjected`] records the attempt.
//! - `Authorization` / `Proxy-Authorization` with scheme `Basic`: the credentials are
//!   base64-decoded, placeholders inside `user:password` are swapped, and the result is
//!   re-encoded with padding. Credentials that do not decode are treated as plain text.
//! - Slots ([`Slots`]): each secret names where it may go: header values (all, or named
//!   headers), the query string ([`Engine::rewrite_query`]: between the first `?` and any `#`,
//!   percent-encoded), the path ([`Engine::rewrite_path`]: percent-encoded for a segment),
//!   form and JSON bodies ([`body`]: streamed, every field or value, or named ones).
//! - Method and path scopes ([`crate::route`]) are judged with the host scope; out of any of
//!   them the placeholder stays and an [`Event::NotInjected`] names which.
//! - A secret whose value holds a byte that is illegal in a header value (a control byte other
//!   than tab) is never injected ([`Reason::IllegalBytes`]); the store already refuses such values.
//!
//! Secret values never appear in [`Event`]s or in any `Debug` output, and a rewritten value that
//! holds a secret is zeroized when dropped. A value without a complete placeholder costs one
//! automaton scan (of the decoded credentials, for Basic) and no allocation (unless Basic
//! credentials decode to more than 512 bytes).

mod basic_auth;
pub mod body;
mod boundary;
mod engine;
mod outcome;
mod query;
mod scan;
mod slots;

pub use engine::{Engine, EngineError, Entry, Request, Target};
pub use outcome::{
    slot_name, Event, Outcome, Reason, FORM_LOCATION, JSON_LOCATION, PATH_LOCATION, QUERY_LOCATION,
};
pub use slots::{Names, Pointers, SlotError, Slots, MAX_SLOT_NAMES};

#[cfg(test)]
mod tests;
