//! Finding complete placeholder occurrences, judging each, and splicing secrets in.

use std::ops::Range;

use aho_corasick::Input;
use zeroize::Zeroizing;

use super::{boundary, query, Engine, Entry, Reason, Target};

/// Where the scanned bytes sit, which decides the eligible secrets and the secret's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Site {
    /// A header value or decoded Basic credentials: every secret, inserted as it is.
    Header,
    /// The query string: secrets with `inject_query`, percent-encoded.
    Query,
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
        target: Target<'_>,
        site: Site,
    ) -> Vec<Hit<'_, V>> {
        let mut hits = Vec::new();
        let mut at = span.start;
        while let Some(found) = self
            .automaton
            .find(Input::new(haystack).range(at..span.end))
        {
            if !boundary::is_complete(haystack, found.end()) {
                at = found.start() + 1;
                continue;
            }
            at = found.end();
            // Invariant: the automaton was built from `entries` in order, so every pattern id
            // it reports indexes `entries`.
            let entry = &self.entries[found.pattern().as_usize()];
            if site == Site::Query && !entry.inject_query {
                continue;
            }
            hits.push(Hit {
                range: found.range(),
                entry,
                skip: judge(entry, target),
            });
        }
        hits
    }
}

/// Copies `haystack` with the secret of every injecting hit in place of its placeholder, into
/// a buffer allocated once at its final size (so no copy of a secret is left behind by a
/// reallocation) and zeroized on drop.
pub(super) fn splice<V: AsRef<[u8]>>(
    haystack: &[u8],
    hits: &[Hit<'_, V>],
    site: Site,
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

impl Site {
    /// How many bytes `secret` takes once encoded for this site.
    fn encoded_len(self, secret: &[u8]) -> usize {
        match self {
            Self::Header => secret.len(),
            Self::Query => query::percent_encoded_len(secret),
        }
    }

    /// Appends `secret`, encoded for this site, to `out`.
    fn encode_into(self, secret: &[u8], out: &mut Vec<u8>) {
        match self {
            Self::Header => out.extend_from_slice(secret),
            Self::Query => query::percent_encode_into(secret, out),
        }
    }
}

/// Why `entry`'s placeholder is left alone on a request to `target`, or `None` to inject.
fn judge<V: AsRef<[u8]>>(entry: &Entry<V>, target: Target<'_>) -> Option<Reason> {
    let Target::VerifiedTls { host } = target else {
        return Some(Reason::NotTls);
    };
    if !entry.scope.iter().any(|pattern| pattern.matches(host)) {
        Some(Reason::OutOfScope)
    } else if !is_header_safe(secret(entry)) {
        Some(Reason::IllegalBytes)
    } else {
        None
    }
}

/// The secret's bytes.
fn secret<V: AsRef<[u8]>>(entry: &Entry<V>) -> &[u8] {
    entry.value.as_ref().as_ref()
}

/// Whether every byte may stand in a header value: no control bytes except tab.
fn is_header_safe(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&byte| byte == b'\t' || !byte.is_ascii_control())
}
