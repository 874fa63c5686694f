//! The response scrubber: swaps every live secret a response carries back for its placeholder
//! before the sandbox sees it. Pure; the mirror image of [`inject`](crate::inject).
//!
//! A [`Scrubber`] is built from one [`Entry`] per live secret: its value and, optionally,
//! [`Derived`] plaintexts veil built around the value (the `user:password` of a Basic
//! credential it re-encoded), each with the text it stands for (`user:PLACEHOLDER`). Every
//! form below of every plaintext is one pattern of a single aho-corasick automaton,
//! leftmost-longest; each match is replaced by the same form of the placeholder. A scrubber is
//! immutable: when secrets change, the caller builds a new one and swaps it in (an
//! `Arc<Scrubber>`); streams already running keep the one they started with.
//!
//! # What is caught
//!
//! For a plaintext `P` standing for `R` (a value and its placeholder, or a derived pair):
//!
//! - `P` itself, replaced by `R`.
//! - Base64, standard (`+/`) and URL-safe (`-_`) alphabets: the whole encoding of `P`, padded
//!   and unpadded, replaced by `R` encoded the same way. And `P` inside a longer base64 text,
//!   at any of the three byte offsets within a 3-byte group: the *stable core*, the
//!   characters whose 6 bits all come from `P` (they do not depend on the bytes around it),
//!   replaced by the core of `R` at the same offset. Up to 4 bits of `P`'s first byte and of its
//!   last byte stay in the characters on either side of the core. So a Basic credential
//!   `user:P`, or any other text with `P` inside, is caught wherever it is base64-encoded.
//!   Cores and unpadded encodings shorter than [`MIN_BASE64`] characters are not matched (they
//!   only arise for `P` of 1 to 3 bytes and would match unrelated base64 text everywhere).
//! - Percent-encoding, upper- and lower-case hex, as produced by JavaScript's
//!   `encodeURIComponent`, Python's `quote` (default `safe='/'`, and `safe=''`) and
//!   `quote_plus`, WHATWG `application/x-www-form-urlencoded` (`URLSearchParams`), and with
//!   every byte encoded; replaced by `R` encoded the same way.
//! - JSON string escaping as produced by serde_json and `JSON.stringify` (`\"`, `\\`, control
//!   bytes), and the variants with `\/`, with non-ASCII as `\uXXXX` in lower- or upper-case hex
//!   (Python's `json.dumps`, PHP's `json_encode`), and Go's (`<`, `>`, `&`, U+2028, U+2029 as
//!   `\u00XX`); replaced by `R` escaped the same way.
//!
//! # What is not caught
//!
//! Anything else: other encodings (hex, base32, quoted-printable, HTML entities), encodings
//! layered on one another (percent-encoded base64, JSON-escaped percent-encoding), a mix of
//! encoded and unencoded bytes other than the styles above, changes of case, and compressed
//! bodies (the caller must scrub decoded bytes). A replacement is not scanned again, so a
//! placeholder that contains some secret's value leaves that value in place.
//!
//! # Streaming
//!
//! [`Scrubber::stream`] gives a [`ScrubStream`] per response body (or other byte stream). It
//! writes what it is fed with every match replaced, holding back only a tail that could still
//! be the start of a match: fewer than the longest pattern's length, and none of the bytes no
//! pattern can start at. A match split across any number of feeds is found, and the output of
//! any split is the same as [`Scrubber::scrub`] on the whole. Bytes without a secret pass
//! through byte for byte. [`Found`] says which secrets were scrubbed and how often, never
//! their values.
//!
//! # Speed
//!
//! Bytes without a secret are passed over at memory speed: a prefilter samples a window of
//! 4 or 8 bytes every few bytes (the shortest pattern's length less the window's, plus one)
//! and looks it up among every pattern's windows; the automaton only searches around hits.
//! Input shorter than the shortest pattern is not looked at. With a pattern shorter than 4
//! bytes (a secret of 1 to 3 bytes) there is no prefilter and the automaton reads everything.
//!
//! The patterns live in the automaton's tables, which aho-corasick does not zeroize; every
//! other copy of a secret the scrubber makes (the patterns while building, the prefilter's
//! windows, the bytes a stream holds back) is zeroized when dropped, and `Debug` output never
//! shows one.

mod base64_forms;
mod forms;
mod found;
mod json_forms;
mod machine;
mod percent_forms;
mod prefilter;
mod scrubber;
mod stream;

pub use base64_forms::MIN_BASE64;
pub use found::{Found, Scrubbed};
pub use scrubber::{Derived, Entry, Scrubber, ScrubberError};
pub use stream::ScrubStream;

#[cfg(test)]
mod tests;
