//! The prefilter on its own: every occurrence of a pattern has a hit within a stride of its
//! start, and the automaton searching only around hits finds what it finds searching
//! everything, from every position. Then the scrubber with a secret at every offset from
//! the sampled positions, in inputs of every length around a window's.

use aho_corasick::{AhoCorasick, Input, MatchKind};

use super::{entry, one_shot, random::Rng, scrubber, streamed};
use crate::scrub::{
    machine::{Machine, DENSE_SPAN},
    prefilter::Prefilter,
};

/// Pattern sets tried, each on several haystacks.
const ROUNDS: usize = 300;
const HAYSTACKS: usize = 4;

#[test]
fn every_occurrence_has_a_hit_within_a_stride_of_its_start() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..ROUNDS {
        let (alphabet, patterns) = random_patterns(&mut rng);
        let patterns: Vec<&[u8]> = patterns.iter().map(Vec::as_slice).collect();
        let prefilter = Prefilter::new(&patterns).unwrap();
        let stride = prefilter.stride();
        for _ in 0..HAYSTACKS {
            let haystack = random_haystack(&mut rng, alphabet, &patterns);
            for from in 0..=haystack.len() {
                let hits: Vec<usize> = (from..haystack.len())
                    .step_by(stride)
                    .filter(|&at| prefilter.hits(&haystack, at))
                    .collect();
                assert_eq!(
                    prefilter.next_hit(&haystack, from),
                    hits.first().copied().filter(|_| {
                        haystack.len() - from >= patterns.iter().map(|p| p.len()).min().unwrap()
                    }),
                    "round {round} from {from}"
                );
                for start in from..haystack.len() {
                    if patterns
                        .iter()
                        .any(|pattern| haystack[start..].starts_with(pattern))
                    {
                        assert!(
                            hits.iter()
                                .any(|&hit| (start..start + stride).contains(&hit)),
                            "round {round} from {from}: no hit for the match at {start}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn the_machine_finds_what_the_whole_automaton_finds_from_everywhere() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    for round in 0..ROUNDS {
        let (alphabet, patterns) = random_patterns(&mut rng);
        let patterns: Vec<&[u8]> = patterns.iter().map(Vec::as_slice).collect();
        let machine = Machine::new(&patterns).unwrap();
        let whole = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .unwrap();
        for _ in 0..HAYSTACKS {
            let haystack = random_haystack(&mut rng, alphabet, &patterns);
            for at in 0..=haystack.len() {
                let want = whole.find(Input::new(&haystack).span(at..haystack.len()));
                assert_eq!(machine.find(&haystack, at), want, "round {round} at {at}");
            }
        }
    }
}

#[test]
fn a_match_just_after_a_long_run_of_hits_is_the_longest() {
    // Windows of 4 bytes, stride 3: `bbbb` and `babb` hit, and no pattern occurs in `b...b`.
    // Wherever the search around a run of hits ends (after a few samples, or a dense span
    // later), a short pattern and a longer one starting just after it give the longer one.
    let patterns: [&[u8]; 3] = [b"abbbbb", b"abbbbbbbbb", b"babbbc"];
    let machine = Machine::new(&patterns).unwrap();
    let whole = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(patterns)
        .unwrap();
    for before in (0..120).chain(DENSE_SPAN..DENSE_SPAN + 120) {
        let haystack = [&b"b".repeat(before)[..], b"abbbbbbbbb", b"bb"].concat();
        let ats = (0..=haystack.len()).filter(|&at| before < 120 || at < 8 || at + 8 > before);
        for at in ats {
            let want = whole.find(Input::new(&haystack).span(at..haystack.len()));
            assert_eq!(machine.find(&haystack, at), want, "{before} {at}");
        }
    }
}

#[test]
fn no_prefilter_with_a_pattern_shorter_than_four_bytes() {
    assert!(Prefilter::new(&[&b"abc"[..], &b"abcdefgh"[..]]).is_none());
    assert!(Prefilter::new(&[&b"abcd"[..], &b"abcdefgh"[..]]).is_some());
    // One-byte secrets are still found everywhere, one-shot and streamed.
    let scrubber = scrubber(vec![entry("x", b"x"), entry("long", b"long-secret-value")]);
    let input = b"axbxx long-secret-value x";
    let (out, _) = one_shot(&scrubber, input);
    assert_eq!(
        out,
        b"aIRONSH_PROXY_xbIRONSH_PROXY_xIRONSH_PROXY_x IRONSH_PROXY_long IRONSH_PROXY_x"
    );
    assert_eq!(streamed(&scrubber, input, &[1; 32]).0, out);
}

#[test]
fn a_secret_at_every_offset_in_inputs_of_every_length() {
    // Shortest patterns of 4 bytes (stride 1), 15 (windows of 4, stride 12), 16 (windows of
    // 8, stride 9) and 40 (stride 33).
    let values: [&[u8]; 4] = [
        b"q9Zk",
        b"tok-0123456789a",
        b"tok-0123456789ab",
        b"tok-0123456789abcdefghijklmnopqrstuvwxyz",
    ];
    for value in values {
        let scrubber = scrubber(vec![entry("t", value)]);
        for len in 0..value.len() + 40 {
            let filler: Vec<u8> = b"the quick brown fox jumps over the lazy dog "
                .iter()
                .cycle()
                .take(len)
                .copied()
                .collect();
            assert!(scrubber.scrub(&filler).is_none(), "{len}");
            for at in 0..=len {
                let input = [&filler[..at], value, &filler[at..]].concat();
                let want = [&filler[..at], b"IRONSH_PROXY_t", &filler[at..]].concat();
                let (out, found) = one_shot(&scrubber, &input);
                assert_eq!((out.as_slice(), found.total()), (want.as_slice(), 1));
                for split in [1, 3, 8, at.max(1), at + value.len() / 2] {
                    let (out, _, _) = streamed(&scrubber, &input, &[split, 1, split]);
                    assert_eq!(out, want, "{len} {at} {split}");
                }
                // Cut short, it is no match and comes out as it went in.
                let cut = &input[..at + value.len() - 1];
                assert!(scrubber.scrub(cut).is_none());
                assert_eq!(streamed(&scrubber, cut, &[at]).0, cut);
            }
        }
    }
}

/// A small alphabet (so that windows hit and patterns occur often, in runs) or every byte,
/// and one to six patterns of 4 to 30 bytes from it, some sharing a start.
fn random_patterns(rng: &mut Rng) -> (&'static [u8], Vec<Vec<u8>>) {
    const ALPHABETS: [&[u8]; 3] = [b"ab", b"abcd", b"abcdefghijklmnopqrstuvwxyz"];
    let alphabet = ALPHABETS[rng.below(ALPHABETS.len())];
    let mut patterns: Vec<Vec<u8>> = Vec::new();
    for _ in 0..1 + rng.below(6) {
        let len = 4 + rng.below(27);
        let mut pattern: Vec<u8> = match patterns.last() {
            Some(last) if rng.below(3) == 0 => last[..rng.below(last.len())].to_vec(),
            _ => Vec::new(),
        };
        pattern.truncate(len);
        while pattern.len() < len {
            pattern.push(alphabet[rng.below(alphabet.len())]);
        }
        if !patterns.contains(&pattern) {
            patterns.push(pattern);
        }
    }
    (alphabet, patterns)
}

/// Up to 200 bytes of the alphabet with patterns, whole, cut or repeated, here and there.
fn random_haystack(rng: &mut Rng, alphabet: &[u8], patterns: &[&[u8]]) -> Vec<u8> {
    let mut haystack = Vec::new();
    let len = rng.below(200);
    while haystack.len() < len {
        match rng.below(4) {
            0 => {
                let pattern = patterns[rng.below(patterns.len())];
                for _ in 0..1 + rng.below(3) {
                    haystack.extend_from_slice(pattern);
                }
            }
            1 => {
                let pattern = patterns[rng.below(patterns.len())];
                haystack.extend_from_slice(&pattern[rng.below(pattern.len())..]);
            }
            _ => haystack.extend((0..rng.below(20)).map(|_| alphabet[rng.below(alphabet.len())])),
        }
    }
    haystack
}
