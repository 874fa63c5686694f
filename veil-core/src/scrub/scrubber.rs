//! The scrubber: its entries, construction, and the one-shot entry point.

use std::{collections::HashSet, fmt, sync::Arc};

use zeroize::Zeroizing;

use super::{
    forms::{self, Form},
    found::Found,
    machine::Machine,
    stream::ScrubStream,
};

/// Every form of every live secret, built once and then only read.
///
/// Cheap to share (`Arc<Scrubber>`); rebuild and swap the whole scrubber when secrets change.
pub struct Scrubber {
    /// Finds every pattern; `None` when there are none, and everything passes through.
    pub(super) machine: Option<Machine>,
    /// What replaces pattern `i`, and whose secret it is.
    pub(super) replacements: Vec<Replacement>,
    /// The secrets' ids and names, as the entries gave them.
    pub(super) secrets: Vec<SecretRef>,
    /// The longest pattern's length; 0 when there are none.
    pub(super) longest: usize,
}

/// One live secret, as the scrubber needs it.
pub struct Entry<V> {
    /// The secret's id, for [`Found`].
    pub id: String,
    /// The secret's name, for [`Found`].
    pub name: String,
    /// What the workload sees instead of the secret, e.g. `IRONSH_PROXY_github-main`.
    pub placeholder: String,
    /// The secret itself.
    pub value: Arc<V>,
    /// Credentials veil built around the value, scrubbed as a whole before the value alone.
    pub derived: Vec<Derived>,
}

/// A plaintext veil built around a secret's value, such as the `user:VALUE` of a Basic
/// credential it re-encoded, and the text it stands for (`user:PLACEHOLDER`).
///
/// The plaintext is zeroized on drop and never formatted.
pub struct Derived {
    /// The bytes with the secret in them.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// What replaces them: the same bytes with the placeholder in place of the secret.
    pub stands_for: Vec<u8>,
}

/// Why a set of entries cannot make a scrubber.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ScrubberError {
    /// A secret's value, or one of its derived plaintexts, is empty: it would match everywhere.
    #[error("secret {id:?} has an empty value or derived plaintext")]
    EmptyPlaintext {
        /// The secret's id.
        id: String,
    },
    /// The automaton could not be built (too many or too long patterns).
    #[error("cannot build the scrubbing automaton: {0}")]
    Automaton(#[from] aho_corasick::BuildError),
}

/// What replaces matches of one pattern.
pub(super) struct Replacement {
    /// Index into [`Scrubber::secrets`].
    pub(super) secret: usize,
    /// The placeholder, encoded as the secret was.
    pub(super) bytes: Vec<u8>,
}

/// A secret's id and name, shared with every [`Found`] that reports it.
#[derive(Debug, Clone)]
pub(super) struct SecretRef {
    pub(super) id: Arc<str>,
    pub(super) name: Arc<str>,
}

impl Scrubber {
    /// Builds a scrubber over every form of every entry's value and derived plaintexts,
    /// refusing empty ones. When two forms are the same bytes, the first given wins: derived
    /// plaintexts before their value, entries in order.
    pub fn new<V: AsRef<[u8]>>(entries: Vec<Entry<V>>) -> Result<Self, ScrubberError> {
        let mut all = Vec::new();
        let mut owners = Vec::new();
        for (secret, entry) in entries.iter().enumerate() {
            let value: &[u8] = entry.value.as_ref().as_ref();
            let plaintexts = entry
                .derived
                .iter()
                .map(|derived| (derived.plaintext.as_slice(), derived.stands_for.as_slice()))
                .chain([(value, entry.placeholder.as_bytes())]);
            for (plaintext, stands_for) in plaintexts {
                if plaintext.is_empty() {
                    return Err(ScrubberError::EmptyPlaintext {
                        id: entry.id.clone(),
                    });
                }
                forms::push_all(plaintext, stands_for, &mut all);
                owners.resize(all.len(), secret);
            }
        }
        let mut seen = HashSet::with_capacity(all.len());
        let kept: Vec<(&Form, usize)> = all
            .iter()
            .zip(owners)
            .filter(|(form, _)| seen.insert(form.pattern.as_slice()))
            .collect();
        let patterns: Vec<&[u8]> = kept
            .iter()
            .map(|(form, _)| form.pattern.as_slice())
            .collect();
        let longest = patterns.iter().map(|pattern| pattern.len()).max();
        let machine = longest.map(|_| Machine::new(&patterns)).transpose()?;
        let replacements = kept
            .iter()
            .map(|&(form, secret)| Replacement {
                secret,
                bytes: form.replacement.clone(),
            })
            .collect();
        let secrets = entries
            .iter()
            .map(|entry| SecretRef {
                id: entry.id.as_str().into(),
                name: entry.name.as_str().into(),
            })
            .collect();
        Ok(Self {
            machine,
            replacements,
            secrets,
            longest: longest.unwrap_or(0),
        })
    }

    /// A scrubber that finds nothing and passes everything through.
    pub fn empty() -> Self {
        Self {
            machine: None,
            replacements: Vec::new(),
            secrets: Vec::new(),
            longest: 0,
        }
    }

    /// Scrubs `input` whole (a header value, a trailer): the scrubbed bytes and what was
    /// found, or `None` when no secret occurs (then `input` is what to send).
    pub fn scrub(&self, input: &[u8]) -> Option<(Vec<u8>, Found)> {
        let machine = self.machine.as_ref()?;
        let first = machine.find(input, 0)?;
        let mut out = Vec::with_capacity(input.len());
        out.extend_from_slice(&input[..first.start()]);
        let mut found = Found::default();
        self.replace(first, &mut out, &mut found);
        let end = self.replace_all(machine, input, first.end(), &mut out, &mut found);
        out.extend_from_slice(&input[end..]);
        Some((out, found))
    }

    /// A stream scrubber for one response body (or other stream of bytes), using this
    /// scrubber until it is dropped.
    pub fn stream(self: &Arc<Self>) -> ScrubStream {
        ScrubStream::new(Arc::clone(self))
    }

    /// The length of the longest pattern: a stream holds back fewer bytes than this.
    pub fn longest_pattern(&self) -> usize {
        self.longest
    }

    /// Replaces every match in `haystack` from `at` on, copying the bytes between them to
    /// `out`; returns where the last match ended (or `at`), leaving the rest for the caller.
    pub(super) fn replace_all(
        &self,
        machine: &Machine,
        haystack: &[u8],
        mut at: usize,
        out: &mut Vec<u8>,
        found: &mut Found,
    ) -> usize {
        while let Some(next) = machine.find(haystack, at) {
            out.extend_from_slice(&haystack[at..next.start()]);
            self.replace(next, out, found);
            at = next.end();
        }
        at
    }

    /// Writes the replacement of `found_match` to `out` and counts it.
    pub(super) fn replace(
        &self,
        found_match: aho_corasick::Match,
        out: &mut Vec<u8>,
        found: &mut Found,
    ) {
        // Invariant: the automaton was built from `replacements` in order, so every pattern id
        // it reports indexes them, and every replacement's secret indexes `secrets`.
        let replacement = &self.replacements[found_match.pattern().as_usize()];
        out.extend_from_slice(&replacement.bytes);
        found.count(&self.secrets[replacement.secret]);
    }
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scrubber")
            .field("secrets", &self.secrets)
            .field("patterns", &self.replacements.len())
            .field("longest", &self.longest)
            .finish_non_exhaustive()
    }
}

impl<V> fmt::Debug for Entry<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("placeholder", &self.placeholder)
            .field("value", &"<redacted>")
            .field("derived", &self.derived)
            .finish()
    }
}

impl fmt::Debug for Derived {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Derived")
            .field("plaintext", &"<redacted>")
            .field("stands_for", &String::from_utf8_lossy(&self.stands_for))
            .finish()
    }
}
