//! The automaton over every pattern: unanchored leftmost-longest search, run only where the
//! prefilter finds a pattern could be, and the anchored walk that tells whether a tail could
//! still grow into a match.

use aho_corasick::{
    automaton::Automaton, dfa::DFA, nfa::contiguous::NFA, Anchored, Input, Match, MatchKind,
    StartKind,
};
use zeroize::Zeroizing;

use super::prefilter::Prefilter;

/// Patterns totalling up to this many bytes get a DFA (fastest, but a table per state); more
/// get a contiguous NFA (compact).
const DFA_MAX_PATTERN_BYTES: usize = 64 * 1024;

/// The most samples in a run of prefilter hits looked for before searching: enough to tell
/// text where windows hit all along, few enough that a search stopping at an early match does
/// not leave much sampling to do again.
const MAX_RUN: usize = 16;

/// The most consecutive misses within a run of hits: bridging them saves searching the
/// stretch where regions on either side overlap over again.
const MAX_GAP: usize = 2;

/// How many bytes past a run of [`MAX_RUN`] samples are searched without sampling: where
/// windows hit all along, sampling only costs, and the automaton alone reads fastest.
pub(super) const DENSE_SPAN: usize = 4096;

/// One automaton over all patterns, searchable unanchored and anchored, with its prefilter.
pub(super) struct Machine {
    /// The automaton.
    automaton: Kind,
    /// Where the automaton must look; `None` when some pattern is too short to sample, and
    /// the automaton looks everywhere.
    prefilter: Option<Prefilter>,
    /// One bit per pair of bytes, set when some pattern starts with them. Zeroized on drop.
    starts: Zeroizing<Vec<u64>>,
    /// The longest pattern's length.
    longest: usize,
}

/// An automaton of either kind.
enum Kind {
    /// For small pattern sets.
    Dfa(DFA),
    /// For large ones.
    Nfa(NFA),
}

impl Machine {
    /// Builds the automaton over `patterns` (at least one, none empty), leftmost-longest.
    pub(super) fn new(patterns: &[&[u8]]) -> Result<Self, aho_corasick::BuildError> {
        let total: usize = patterns.iter().map(|pattern| pattern.len()).sum();
        let automaton = if total <= DFA_MAX_PATTERN_BYTES {
            Kind::Dfa(
                DFA::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .start_kind(StartKind::Both)
                    .build(patterns)?,
            )
        } else {
            Kind::Nfa(
                NFA::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(patterns)?,
            )
        };
        let mut starts = Zeroizing::new(vec![0; (1 << 16) / 64]);
        for pattern in patterns {
            if let [first, second, ..] = **pattern {
                let pair = pair(first, second);
                starts[pair / 64] |= 1 << (pair % 64);
            }
        }
        Ok(Self {
            automaton,
            prefilter: Prefilter::new(patterns),
            starts,
            longest: patterns
                .iter()
                .map(|pattern| pattern.len())
                .max()
                .unwrap_or(0),
        })
    }

    /// The leftmost-longest match in `haystack` starting at or after `at`.
    ///
    /// With a prefilter, the automaton searches only around each run of consecutive hits
    /// `first..=last` (sampled from `at` on, bridging a few misses; a long run is taken to go
    /// on for [`DENSE_SPAN`] bytes more, unsampled): from `first - (stride - 1)` (no occurrence
    /// starting earlier has its first sampled window in the run) to `last + longest` (where
    /// every match starting by `last` ends). A match found there starting by `last` is the
    /// leftmost-longest one in the whole haystack: any occurrence starting at or after `at`
    /// has its first sampled window at a hit, not in an earlier run (whose search found
    /// nothing starting by its end), so it starts within this region or after `last`, and
    /// every pattern starting there ends within it. Any other outcome means no match starts
    /// by `last`, and sampling goes on after the run.
    #[inline]
    pub(super) fn find(&self, haystack: &[u8], at: usize) -> Option<Match> {
        match &self.prefilter {
            None => self.automaton.find(haystack, at, haystack.len()),
            Some(prefilter) => {
                let first = prefilter.next_hit(haystack, at)?;
                self.find_around(prefilter, haystack, at, first)
            }
        }
    }

    /// [`Machine::find`] from the first hit on.
    #[inline(never)]
    fn find_around(
        &self,
        prefilter: &Prefilter,
        haystack: &[u8],
        at: usize,
        mut first: usize,
    ) -> Option<Match> {
        let stride = prefilter.stride();
        loop {
            // Taking misses or unsampled positions as hits only widens the search.
            let mut last = first;
            let mut sample = first;
            let mut gap = 0;
            let mut dense = true;
            for _ in 1..MAX_RUN {
                sample += stride;
                if prefilter.hits(haystack, sample) {
                    last = sample;
                    gap = 0;
                } else if gap < MAX_GAP && sample < haystack.len() {
                    gap += 1;
                } else {
                    dense = false;
                    break;
                }
            }
            if dense {
                last += DENSE_SPAN;
            }
            let start = (first + 1).saturating_sub(stride).max(at);
            let end = haystack.len().min(last + self.longest);
            let found = self.automaton.find(haystack, start, end);
            if let Some(found) = found.filter(|found| found.start() <= last) {
                return Some(found);
            }
            first = prefilter.next_hit(haystack, last + stride)?;
        }
    }

    /// Whether `tail` is the start of some pattern longer than it, so that more bytes could
    /// make it a match or a longer one.
    #[inline]
    pub(super) fn could_grow(&self, tail: &[u8]) -> bool {
        // Such a pattern starts with the first two bytes of `tail`, if it has two.
        if let [first, second, ..] = *tail {
            let pair = pair(first, second);
            if self.starts[pair / 64] & (1 << (pair % 64)) == 0 {
                return false;
            }
        }
        self.could_grow_anchored(tail)
    }

    /// [`Machine::could_grow`] by the anchored automaton alone.
    #[inline(never)]
    fn could_grow_anchored(&self, tail: &[u8]) -> bool {
        match &self.automaton {
            Kind::Dfa(dfa) => could_grow(dfa, tail),
            Kind::Nfa(nfa) => could_grow(nfa, tail),
        }
    }
}

impl Kind {
    /// The leftmost-longest match within `haystack[at..end]`.
    fn find(&self, haystack: &[u8], at: usize, end: usize) -> Option<Match> {
        match self {
            Self::Dfa(dfa) => find(dfa, haystack, at, end),
            Self::Nfa(nfa) => find(nfa, haystack, at, end),
        }
    }
}

/// Two bytes as an index into [`Machine::starts`].
#[inline]
fn pair(first: u8, second: u8) -> usize {
    usize::from(u16::from_le_bytes([first, second]))
}

fn find<A: Automaton>(automaton: &A, haystack: &[u8], at: usize, end: usize) -> Option<Match> {
    automaton
        .try_find(&Input::new(haystack).span(at..end))
        // Invariant: unanchored searches are supported by both kinds as built, and no other
        // search option can fail.
        .expect("unanchored leftmost-longest search cannot fail")
}

fn could_grow<A: Automaton>(automaton: &A, tail: &[u8]) -> bool {
    let mut state = automaton
        .start_state(Anchored::Yes)
        // Invariant: both kinds are built to support anchored searches.
        .expect("anchored searches are supported");
    for &byte in tail {
        state = automaton.next_state(Anchored::Yes, state, byte);
        if automaton.is_dead(state) {
            return false;
        }
    }
    // A whole pattern can only grow if some longer one continues it.
    !automaton.is_match(state)
        || (0..=u8::MAX)
            .any(|byte| !automaton.is_dead(automaton.next_state(Anchored::Yes, state, byte)))
}
