//! Tests of the scrubber: a table per form, streaming and hold-back, a seeded random check of
//! random splits against the one-shot scrub and a naive model, and the prefilter's own.

mod prefilter;
mod random;
mod stream;
mod tables;

use std::sync::Arc;

use zeroize::Zeroizing;

use super::{Derived, Entry, Found, ScrubStream, Scrubber};

/// A secret named `name` with placeholder `IRONSH_PROXY_<name>`.
fn entry(name: &str, value: &[u8]) -> Entry<Vec<u8>> {
    Entry {
        id: format!("id-{name}"),
        name: name.to_owned(),
        placeholder: format!("IRONSH_PROXY_{name}"),
        value: Arc::new(value.to_vec()),
        derived: Vec::new(),
    }
}

/// The same secret with a Basic credential `user:value` veil built.
fn basic_entry(name: &str, user: &str, value: &[u8]) -> Entry<Vec<u8>> {
    let plaintext = [user.as_bytes(), b":", value].concat();
    let stands_for = format!("{user}:IRONSH_PROXY_{name}").into_bytes();
    Entry {
        derived: vec![Derived {
            plaintext: Zeroizing::new(plaintext),
            stands_for,
        }],
        ..entry(name, value)
    }
}

/// Builds a scrubber from entries that must be valid.
fn scrubber(entries: Vec<Entry<Vec<u8>>>) -> Arc<Scrubber> {
    Arc::new(Scrubber::new(entries).unwrap())
}

/// The one-shot result: the scrubbed bytes, or `input` when nothing was found.
fn one_shot(scrubber: &Scrubber, input: &[u8]) -> (Vec<u8>, Found) {
    scrubber
        .scrub(input)
        .unwrap_or_else(|| (input.to_vec(), Found::default()))
}

/// Feeds `input` to a new stream in pieces of the given sizes (the rest in one piece), then
/// finishes it; returns the output, what was found, and the most bytes ever held back, checking
/// after every feed that the output so far plus the held bytes make up what was fed.
fn streamed(scrubber: &Arc<Scrubber>, input: &[u8], pieces: &[usize]) -> (Vec<u8>, Found, usize) {
    let mut stream = scrubber.stream();
    let mut out = Vec::new();
    let mut found = Found::default();
    let mut most_held = 0;
    let mut rest = input;
    for &size in pieces.iter().chain([&usize::MAX]) {
        let (piece, after) = rest.split_at(size.min(rest.len()));
        found.merge(stream.feed(piece, &mut out));
        most_held = most_held.max(stream.held_back());
        rest = after;
        if rest.is_empty() {
            break;
        }
    }
    found.merge(stream.finish(&mut out));
    assert_eq!(stream.held_back(), 0);
    (out, found, most_held)
}

/// `(secret name, count)` per secret found, in order, checking ids on the way.
fn counts(found: &Found) -> Vec<(String, u64)> {
    found
        .secrets()
        .iter()
        .map(|scrubbed| {
            assert_eq!(*scrubbed.secret_id, format!("id-{}", scrubbed.secret_name));
            (scrubbed.secret_name.to_string(), scrubbed.count)
        })
        .collect()
}

/// Whether `haystack` holds `needle` anywhere.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// A stream and its scrubber, for tests that feed by hand.
fn stream_of(entries: Vec<Entry<Vec<u8>>>) -> (Arc<Scrubber>, ScrubStream) {
    let scrubber = scrubber(entries);
    let stream = scrubber.stream();
    (scrubber, stream)
}
