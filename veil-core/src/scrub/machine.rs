//! The automaton over every pattern: unanchored leftmost-longest search, and the anchored walk
//! that tells whether a tail could still grow into a match.

use aho_corasick::{
    automaton::Automaton, dfa::DFA, nfa::contiguous::NFA, Anchored, Input, Match, MatchKind,
    StartKind,
};

/// Patterns totalling up to this many bytes get a DFA (fastest, but a table per state); more
/// get a contiguous NFA (compact).
const DFA_MAX_PATTERN_BYTES: usize = 64 * 1024;

/// One automaton over all patterns, searchable unanchored and anchored.
pub(super) enum Machine {
    /// For small pattern sets.
    Dfa(DFA),
    /// For large ones.
    Nfa(NFA),
}

impl Machine {
    /// Builds the automaton over `patterns`, leftmost-longest.
    pub(super) fn new(patterns: &[&[u8]]) -> Result<Self, aho_corasick::BuildError> {
        let total: usize = patterns.iter().map(|pattern| pattern.len()).sum();
        Ok(if total <= DFA_MAX_PATTERN_BYTES {
            Self::Dfa(
                DFA::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .start_kind(StartKind::Both)
                    .build(patterns)?,
            )
        } else {
            Self::Nfa(
                NFA::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(patterns)?,
            )
        })
    }

    /// The leftmost-longest match in `haystack` starting at or after `at`.
    pub(super) fn find(&self, haystack: &[u8], at: usize) -> Option<Match> {
        match self {
            Self::Dfa(dfa) => find(dfa, haystack, at),
            Self::Nfa(nfa) => find(nfa, haystack, at),
        }
    }

    /// Whether `tail` is the start of some pattern longer than it, so that more bytes could
    /// make it a match or a longer one.
    pub(super) fn could_grow(&self, tail: &[u8]) -> bool {
        match self {
            Self::Dfa(dfa) => could_grow(dfa, tail),
            Self::Nfa(nfa) => could_grow(nfa, tail),
        }
    }
}

fn find<A: Automaton>(automaton: &A, haystack: &[u8], at: usize) -> Option<Match> {
    automaton
        .try_find(&Input::new(haystack).span(at..haystack.len()))
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
