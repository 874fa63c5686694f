//! Fuzzes the response scrubber: a few secrets and an input taken from the fuzz data, fed in
//! pieces of sizes also taken from it; the stream must not panic, must give exactly what the
//! one-shot scrub gives, and must hold back fewer bytes than the longest pattern.

#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use veil_core::scrub::{Derived, Entry, Found, Scrubber};

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes(data);
    let entries = entries(&mut input);
    let Ok(scrubber) = Scrubber::new(entries) else {
        return;
    };
    let scrubber = Arc::new(scrubber);
    let pieces: Vec<usize> = (0..input.byte() % 16)
        .map(|_| usize::from(input.byte() % 32))
        .collect();
    let text = input.0;

    let (want, want_found) = scrubber
        .scrub(text)
        .unwrap_or_else(|| (text.to_vec(), Found::default()));
    let mut stream = scrubber.stream();
    let mut out = Vec::new();
    let mut found = Found::default();
    let mut rest = text;
    for size in pieces.into_iter().chain([usize::MAX]) {
        let (piece, after) = rest.split_at(size.min(rest.len()));
        found.merge(stream.feed(piece, &mut out));
        assert!(stream.held_back() < scrubber.longest_pattern().max(1));
        rest = after;
        if rest.is_empty() {
            break;
        }
    }
    found.merge(stream.finish(&mut out));
    assert_eq!(out, want);
    assert_eq!(found, want_found);
});

/// One to three secrets with values of 1 to 16 bytes from the data, some with a derived
/// `u:value` credential.
fn entries(input: &mut Bytes<'_>) -> Vec<Entry<Vec<u8>>> {
    (0..1 + input.byte() % 3)
        .map(|i| {
            let len = usize::from(1 + input.byte() % 16);
            let value = input.take(len).to_vec();
            let derived = if input.byte() % 2 == 0 {
                vec![Derived {
                    plaintext: [b"u:".as_slice(), &value].concat().into(),
                    stands_for: format!("u:P_{i}").into_bytes(),
                }]
            } else {
                Vec::new()
            };
            Entry {
                id: format!("id-{i}"),
                name: format!("s{i}"),
                placeholder: format!("P_{i}"),
                value: Arc::new(value),
                derived,
            }
        })
        .collect()
}

/// The fuzz data, consumed from the front; zeros once it runs out.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn byte(&mut self) -> u8 {
        let (&first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        first
    }

    fn take(&mut self, len: usize) -> &'a [u8] {
        let (taken, rest) = self.0.split_at(len.min(self.0.len()));
        self.0 = rest;
        taken
    }
}
