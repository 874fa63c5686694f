//! Scrubbing a stream fed in pieces: what may be written at once, and what is held back.

use std::{fmt, sync::Arc};

use zeroize::Zeroize;

use aho_corasick::Match;

use super::{found::Found, machine::Machine, scrubber::Scrubber};

/// Scrubs one stream of bytes (a response body) fed in pieces of any size.
///
/// The output of all feeds and [`ScrubStream::finish`] together is what
/// [`Scrubber::scrub`] makes of the whole stream. Made by [`Scrubber::stream`].
pub struct ScrubStream {
    /// The scrubber this stream started with.
    scrubber: Arc<Scrubber>,
    /// A tail that could still be the start of a match: shorter than the longest pattern.
    /// Zeroized on drop (it may be most of a secret).
    held: Vec<u8>,
    /// The held bytes followed by the start of the next piece, scanned together. Reused.
    /// Zeroized on drop.
    seam: Vec<u8>,
}

impl ScrubStream {
    /// Writes `input` to `out` with every secret replaced, except a tail that could still be
    /// the start of one, which is held back until the next feed or [`ScrubStream::finish`].
    /// Reports what this feed replaced.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Found {
        let mut found = Found::default();
        let Some(machine) = self.scrubber.machine.as_ref() else {
            out.extend_from_slice(input);
            return found;
        };
        let mut rest = input;
        if !self.held.is_empty() {
            // With the held bytes, the first `longest - 1` bytes of the input settle whether
            // a match starts at any held byte; the rest of the input is scanned in place.
            let held = self.held.len();
            let take = input.len().min(self.scrubber.longest - 1);
            self.seam.clear();
            if self.seam.capacity() == 0 {
                // At most `held + longest - 1` bytes, fewer than twice the longest pattern.
                self.seam.reserve_exact(2 * self.scrubber.longest);
            }
            self.seam.extend_from_slice(&self.held);
            self.seam.extend_from_slice(&input[..take]);
            self.held.clear();
            let consumed = scan(&self.scrubber, machine, &self.seam, out, &mut found);
            if take == input.len() {
                hold(
                    &mut self.held,
                    &self.seam[consumed..],
                    self.scrubber.longest,
                );
                return found;
            }
            // Invariant: the seam is `held + longest - 1` bytes long, so every held byte is
            // settled by it and `consumed >= held`.
            rest = &input[consumed - held..];
        }
        let consumed = scan(&self.scrubber, machine, rest, out, &mut found);
        hold(&mut self.held, &rest[consumed..], self.scrubber.longest);
        found
    }

    /// Ends the stream: writes the held-back bytes to `out` with every secret in them replaced.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Found {
        let mut found = Found::default();
        if let Some(machine) = self.scrubber.machine.as_ref() {
            let end = self
                .scrubber
                .replace_all(machine, &self.held, 0, out, &mut found);
            out.extend_from_slice(&self.held[end..]);
        }
        wipe(&mut self.held);
        wipe(&mut self.seam);
        found
    }

    /// How many bytes are held back: fewer than [`Scrubber::longest_pattern`].
    pub fn held_back(&self) -> usize {
        self.held.len()
    }

    /// A stream with nothing held back. Its buffers are allocated when first needed, sized
    /// then for good, so that no reallocation leaves a copy of held bytes behind.
    pub(super) fn new(scrubber: Arc<Scrubber>) -> Self {
        Self {
            held: Vec::new(),
            seam: Vec::new(),
            scrubber,
        }
    }
}

impl Drop for ScrubStream {
    fn drop(&mut self) {
        wipe(&mut self.held);
        wipe(&mut self.seam);
    }
}

/// Zeroizes and empties `buffer`, if it was ever allocated (most streams never hold a byte,
/// and zeroizing nothing still costs a call).
fn wipe(buffer: &mut Vec<u8>) {
    if buffer.capacity() != 0 {
        buffer.zeroize();
    }
}

/// Appends `bytes` to `held` (empty, or with room for `longest` bytes), making room for
/// `longest` bytes first if there is none: a stream never holds as many.
fn hold(held: &mut Vec<u8>, bytes: &[u8], longest: usize) {
    if !bytes.is_empty() && held.capacity() == 0 {
        held.reserve_exact(longest);
    }
    held.extend_from_slice(bytes);
}

/// Scans `haystack`, which more bytes may follow: writes to `out` every byte before the first
/// that could still start a match, with the matches among them replaced, and returns how many
/// bytes of `haystack` that covers.
///
/// A match starting at `p` is final once `p + longest <= haystack.len()`: no longer one could
/// start there, and none starts earlier. Beyond that, see [`tail`].
fn scan(
    scrubber: &Scrubber,
    machine: &Machine,
    haystack: &[u8],
    out: &mut Vec<u8>,
    found: &mut Found,
) -> usize {
    let settled = (haystack.len() + 1).saturating_sub(scrubber.longest);
    let mut at = 0;
    loop {
        let next = machine.find(haystack, at);
        let last = match next.filter(|next| next.start() < settled) {
            Some(next) => next,
            None => match tail(machine, haystack, settled.max(at), next) {
                Tail::Final(next) => next,
                Tail::HoldFrom(start) => {
                    out.extend_from_slice(&haystack[at..start]);
                    return start;
                }
            },
        };
        out.extend_from_slice(&haystack[at..last.start()]);
        scrubber.replace(last, out, found);
        at = last.end();
    }
}

/// What to do with the unsettled tail of a haystack.
enum Tail {
    /// This match is final: it cannot grow, and nothing before it could become a match.
    Final(Match),
    /// Hold back from here on (the haystack's length: nothing to hold).
    HoldFrom(usize),
}

/// Looks at each position from `from` on, where no match starts that `haystack` settles, and
/// `next` is the leftmost match if any: the first position from which the rest could still grow
/// into a match is held back from, unless `next` starts first and cannot grow.
fn tail(machine: &Machine, haystack: &[u8], from: usize, next: Option<Match>) -> Tail {
    for start in from..haystack.len() {
        if machine.could_grow(&haystack[start..]) {
            return Tail::HoldFrom(start);
        }
        if let Some(next) = next.filter(|next| next.start() == start) {
            return Tail::Final(next);
        }
    }
    Tail::HoldFrom(haystack.len())
}

impl fmt::Debug for ScrubStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScrubStream")
            .field("scrubber", &self.scrubber)
            .field("held_back", &self.held.len())
            .finish_non_exhaustive()
    }
}
