//! Finding complete placeholder occurrences, judging each, and splicing secrets in.

use std::ops::Range;

use aho_corasick::Input;
use zeroize::Zeroizing;

use super::{boundary, query, Engine, Entry, Reason, Request, Target};
use crate::route::Miss;

/// Where the scanned bytes sit, which decides the eligible secrets and the secret's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Site<'n> {
    /// A header value or decoded Basic credentials: secrets whose header slot covers the
    /// header, inserted as they are.
    Header(&'n str),
    /// The query string: secrets with the query slot, percent-encoded.
    Query,
    /// The path: secrets with the path slot, percent-encoded for a segment.
    Path,
}

/// One complete placeholder occurrence and what to do with it.
pub(super) struct Hit<'e, V> {
    /// Where the placeholder sits in the scanned bytes.
    pub(super) range: Range<usize>,
    /// Whose placeholder it is.
    pub(super) entry: &'e Entry<V>,
    /// Why it is left alone, or `None` to inject.
    pub(super) skip: Option<Reason>,
}

impl<V: AsRef<[u8]>> Engine<V> {
    /// Finds, left to right, every complete placeholder of an eligible secret within `span` of
    /// `haystack`, and judges each against `target`. Allocates only when one is found.
    ///
    /// Placeholders consist of name bytes only (checked by [`Engine::new`]). So when the
    /// leftmost-longest match at some position is not complete, no shorter placeholder starting
    /// there is either (the byte after it belongs to the longer one): the search resumes one byte
    /// further on, where another placeholder may start inside the rejected match.
    pub(super) fn scan(
        &self,
        haystack: &[u8],
        span: Range<usize>,
        request: &Request<'_>,
        site: Site<'_>,
    ) -> Vec<Hit<'_, V>> {
        let mut hits = Vec::new();
        let mut at = span.start;
        while let Some((range, index)) = self.next_complete(haystack, at, span.end) {
            at = range.end;
            // Invariant: `next_complete` reports indexes of `entries`.
            let entry = &self.entries[index];
            let eligible = match site {
                Site::Header(name) => entry.slots.allows_header(name),
                Site::Query => entry.slots.query,
                Site::Path => entry.slots.path,
            };
            if !eligible {
                continue;
            }
            hits.push(Hit {
                range,
                entry,
                skip: judge(entry, request),
            });
        }
        hits
    }

    /// The leftmost complete placeholder in `haystack[at..end]` (complete as judged against
    /// the whole `haystack`), and the index of its entry.
    pub(super) fn next_complete(
        &self,
        haystack: &[u8],
        mut at: usize,
        end: usize,
    ) -> Option<(Range<usize>, usize)> {
        while let Some(found) = self.automaton.find(Input::new(haystack).range(at..end)) {
            if boundary::is_complete(haystack, found.end()) {
                // The automaton was built from `entries` in order: its pattern ids index them.
                return Some((found.range(), found.pattern().as_usize()));
            }
            at = found.start() + 1;
        }
        None
    }
}

/// Copies `haystack` with the secret of every injecting hit in place of its placeholder, into
/// a buffer allocated once at its final size (so no copy of a secret is left behind by a
/// reallocation) and zeroized on drop.
pub(super) fn splice<V: AsRef<[u8]>>(
    haystack: &[u8],
    hits: &[Hit<'_, V>],
    site: Site<'_>,
) -> Zeroizing<Vec<u8>> {
    let injecting = || hits.iter().filter(|hit| hit.skip.is_none());
    let len = injecting().fold(haystack.len(), |len, hit| {
        len + site.encoded_len(secret(hit.entry)) - hit.range.len()
    });
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    let mut copied = 0;
    for hit in injecting() {
        out.extend_from_slice(&haystack[copied..hit.range.start]);
        site.encode_into(secret(hit.entry), &mut out);
        copied = hit.range.end;
    }
    out.extend_from_slice(&haystack[copied..]);
    out
}

impl Site<'_> {
    /// How many bytes `secret` takes once encoded for this site.
    fn encoded_len(self, secret: &[u8]) -> usize {
        match self {
            Self::Header(_) => secret.len(),
            Self::Query => query::percent_encoded_len(secret),
            Self::Path => query::path_encoded_len(secret),
        }
    }

    /// Appends `secret`, encoded for this site, to `out`.
    fn encode_into(self, secret: &[u8], out: &mut Vec<u8>) {
        match self {
            Self::Header(_) => out.extend_from_slice(secret),
            Self::Query => query::percent_encode_into(secret, out),
            Self::Path => query::path_encode_into(secret, out),
        }
    }
}

/// Why `entry`'s placeholder is left alone in `request`, or `None` to inject.
pub(super) fn judge<V: AsRef<[u8]>>(entry: &Entry<V>, request: &Request<'_>) -> Option<Reason> {
    let Target::VerifiedTls { host } = request.target else {
        return Some(Reason::NotTls);
    };
    if !entry.scope.iter().any(|pattern| pattern.matches(host)) {
        Some(Reason::OutOfScope)
    } else if let Err(miss) = entry.route.check(request.method, request.path.as_ref()) {
        Some(match miss {
            Miss::Method => Reason::MethodOutOfScope,
            Miss::Path => Reason::PathOutOfScope,
        })
    } else if !is_header_safe(secret(entry)) {
        Some(Reason::IllegalBytes)
    } else {
        None
    }
}

/// The secret's bytes.
pub(super) fn secret<V: AsRef<[u8]>>(entry: &Entry<V>) -> &[u8] {
    entry.value.as_ref().as_ref()
}

/// Whether every byte may stand in a header value: no control bytes except tab.
fn is_header_safe(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&byte| byte == b'\t' || !byte.is_ascii_control())
}
