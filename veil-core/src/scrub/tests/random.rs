//! A seeded random check: secrets embedded in random forms at random places, fed in random
//! pieces, must come out as the one-shot scrub makes them, which must be what a naive
//! leftmost-longest model makes them, with no form of any secret left and a bounded hold-back.

use std::{collections::HashSet, sync::Arc};

use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine as _,
};

use super::{basic_entry, contains, counts, entry, one_shot, scrubber, streamed, Entry};
use crate::scrub::{
    forms::{self, Form},
    Scrubber,
};

/// Scrubbers built (the slow part, unoptimised), each tried on several inputs.
const ROUNDS: usize = 300;
const INPUTS: usize = 5;
const SPLITS: usize = 8;
/// Scrubbers built for the check around the prefilter's edges.
const EDGE_ROUNDS: usize = 200;
const VALUE_BYTES: &[u8] = b"abcXYZ019-_./+= \"\\~!<&%:";
/// Value lengths around the prefilter's edges: no prefilter with a pattern shorter than 4
/// bytes, windows of 4 bytes below 16, of 8 from 16 on (a value's shortest form is itself).
const EDGE_LENGTHS: &[usize] = &[1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 20, 24, 31];
/// The most times a form is repeated back to back: more than the longest run of prefilter
/// hits searched at once.
const MOST_REPEATS: usize = 24;
const FILLER_BYTES: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789+/=%\\\" \n{}:,";

#[test]
fn random_splits_agree_with_the_one_shot_scrub_and_the_model() {
    let mut rng = Rng(0x5c2b_0b5e_ed00_d1e5);
    for round in 0..ROUNDS {
        let entries = random_entries(&mut rng);
        let forms = all_forms(&entries);
        let scrubber = scrubber(entries);
        for _ in 0..INPUTS {
            let input = random_input(&mut rng, &forms);
            let want = check(&mut rng, &scrubber, &forms, &input, round);
            for form in &forms {
                assert!(
                    !contains(&want, &form.pattern),
                    "round {round}: a form is left"
                );
            }
        }
    }
}

/// The same around the prefilter's edges: values whose shortest form is just too short for
/// a prefilter, or sampled 4 or 8 bytes at a time with small or large strides; inputs dense
/// with hits (runs of forms back to back, near misses whose windows hit) and shorter than a
/// window. A short value may occur in its own placeholder, so forms may be left.
#[test]
fn random_splits_agree_around_the_prefilter_s_edges() {
    let mut rng = Rng(0x00ed_9e5a_3b1e_c0de);
    for round in 0..EDGE_ROUNDS {
        let entries = edge_entries(&mut rng);
        let forms = all_forms(&entries);
        let scrubber = scrubber(entries);
        for _ in 0..INPUTS {
            let input = dense_input(&mut rng, &forms);
            check(&mut rng, &scrubber, &forms, &input, round);
        }
    }
}

/// Checks that the one-shot scrub of `input` is the model's, and that random splits of it
/// stream to the same, holding back fewer bytes than the longest pattern; returns the
/// scrubbed bytes.
fn check(
    rng: &mut Rng,
    scrubber: &Arc<Scrubber>,
    forms: &[Form],
    input: &[u8],
    round: usize,
) -> Vec<u8> {
    let (want, want_found) = one_shot(scrubber, input);
    assert_eq!(want, model(forms, input), "round {round}");
    for _ in 0..SPLITS {
        let pieces = random_pieces(rng, input.len());
        let (out, found, held) = streamed(scrubber, input, &pieces);
        assert_eq!(out, want, "round {round}: pieces {pieces:?}");
        assert_eq!(counts(&found), counts(&want_found), "round {round}");
        assert!(
            held < scrubber.longest_pattern(),
            "round {round}: held {held}"
        );
    }
    want
}

#[test]
fn random_text_without_secrets_passes_through() {
    let mut rng = Rng(0x0dd_ba11);
    let scrubber = scrubber(vec![
        entry("a", b"a-secret-value"),
        entry("b", b"b+/=secret"),
    ]);
    for _ in 0..200 {
        let input: Vec<u8> = (0..rng.below(3000))
            .map(|_| FILLER_BYTES[rng.below(FILLER_BYTES.len())])
            .collect();
        assert!(scrubber.scrub(&input).is_none());
        let pieces = random_pieces(&mut rng, input.len());
        let (out, found, _) = streamed(&scrubber, &input, &pieces);
        assert_eq!(out, input);
        assert!(found.is_empty());
    }
}

/// One to four secrets with random values of 6 to 24 bytes, some with a Basic credential.
fn random_entries(rng: &mut Rng) -> Vec<Entry<Vec<u8>>> {
    (0..1 + rng.below(4))
        .map(|i| {
            let len = 6 + rng.below(19);
            let value: Vec<u8> = (0..len)
                .map(|_| VALUE_BYTES[rng.below(VALUE_BYTES.len())])
                .collect();
            let name = format!("s{i}");
            if rng.below(3) == 0 {
                basic_entry(&name, &"u".repeat(rng.below(4)), &value)
            } else {
                entry(&name, &value)
            }
        })
        .collect()
}

/// One to three secrets with values of [`EDGE_LENGTHS`], some with a Basic credential.
fn edge_entries(rng: &mut Rng) -> Vec<Entry<Vec<u8>>> {
    (0..1 + rng.below(3))
        .map(|i| {
            let len = EDGE_LENGTHS[rng.below(EDGE_LENGTHS.len())];
            let value: Vec<u8> = (0..len)
                .map(|_| VALUE_BYTES[rng.below(VALUE_BYTES.len())])
                .collect();
            let name = format!("s{i}");
            if rng.below(4) == 0 {
                basic_entry(&name, &"u".repeat(rng.below(3)), &value)
            } else {
                entry(&name, &value)
            }
        })
        .collect()
}

/// Filler with forms, runs of one form back to back, near misses (a form with one byte
/// changed, or cut short at either end) and runs of them; sometimes cut to a few bytes.
fn dense_input(rng: &mut Rng, forms: &[Form]) -> Vec<u8> {
    let mut input = Vec::new();
    for _ in 0..rng.below(6) {
        let filler = if rng.below(2) == 0 { 3 } else { 30 };
        for _ in 0..rng.below(filler) {
            input.push(FILLER_BYTES[rng.below(FILLER_BYTES.len())]);
        }
        let form: &[u8] = &forms[rng.below(forms.len())].pattern;
        let mut piece = form.to_vec();
        match rng.below(4) {
            0 => {}
            1 => {
                let at = rng.below(piece.len());
                piece[at] = piece[at].wrapping_add(1 + rng.below(255) as u8);
            }
            2 => piece.truncate(rng.below(piece.len())),
            _ => {
                piece.drain(..1 + rng.below(piece.len()));
            }
        }
        let repeats = if rng.below(3) == 0 {
            1 + rng.below(MOST_REPEATS)
        } else {
            1
        };
        for _ in 0..repeats {
            input.extend_from_slice(&piece);
        }
    }
    if rng.below(4) == 0 {
        input.truncate(rng.below(10));
    }
    input
}

/// Every form of every plaintext, deduplicated as the scrubber does (first wins).
fn all_forms(entries: &[Entry<Vec<u8>>]) -> Vec<Form> {
    let mut all = Vec::new();
    for entry in entries {
        for derived in &entry.derived {
            forms::push_all(&derived.plaintext, &derived.stands_for, &mut all);
        }
        forms::push_all(&entry.value, entry.placeholder.as_bytes(), &mut all);
    }
    let mut seen = HashSet::new();
    all.retain(|form| seen.insert(form.pattern.to_vec()));
    all
}

/// Filler with forms of the secrets, and base64 of text holding a secret, at random places.
fn random_input(rng: &mut Rng, forms: &[Form]) -> Vec<u8> {
    let mut input = Vec::new();
    for _ in 0..rng.below(8) {
        for _ in 0..rng.below(40) {
            input.push(FILLER_BYTES[rng.below(FILLER_BYTES.len())]);
        }
        match rng.below(4) {
            0 => {
                let form = &forms[rng.below(forms.len())];
                input.extend_from_slice(&form.pattern);
            }
            1 => {
                // A secret (its raw form) inside other bytes, base64-encoded as a whole.
                let raw = &forms[rng.below(forms.len())].pattern;
                let mut text: Vec<u8> = (0..rng.below(7)).map(|_| rng.next() as u8).collect();
                text.extend_from_slice(raw);
                text.extend((0..rng.below(7)).map(|_| rng.next() as u8));
                let encoded = if rng.below(2) == 0 {
                    STANDARD.encode(&text)
                } else {
                    URL_SAFE_NO_PAD.encode(&text)
                };
                input.extend_from_slice(encoded.as_bytes());
            }
            2 => {
                // Half a form: never a match, but held back while it could be.
                let form = &forms[rng.below(forms.len())].pattern;
                input.extend_from_slice(&form[..form.len() / 2]);
            }
            _ => {}
        }
    }
    input
}

/// Piece sizes: mostly small (one byte often), sometimes large.
fn random_pieces(rng: &mut Rng, len: usize) -> Vec<usize> {
    let mut pieces = Vec::new();
    let mut total = 0;
    while total < len {
        let size = match rng.below(4) {
            0 => 1,
            1 => rng.below(8),
            2 => rng.below(64),
            _ => rng.below(len + 1),
        };
        pieces.push(size);
        total += size;
    }
    pieces
}

/// Naive leftmost-longest replacement: at each position, the longest form that starts there
/// (the first given among equal ones), else the byte itself.
fn model(forms: &[Form], input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < input.len() {
        let longest = forms
            .iter()
            .filter(|form| input[at..].starts_with(&form.pattern))
            .fold(None::<&Form>, |best, form| match best {
                Some(best) if best.pattern.len() >= form.pattern.len() => Some(best),
                _ => Some(form),
            });
        match longest {
            Some(form) => {
                out.extend_from_slice(&form.replacement);
                at += form.pattern.len();
            }
            None => {
                out.push(input[at]);
                at += 1;
            }
        }
    }
    out
}

/// xorshift64*: small, seeded, good enough to shake out cases.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
