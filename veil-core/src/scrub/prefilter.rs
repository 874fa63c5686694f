//! The sampling prefilter: finds the few places where a pattern could occur, so that the
//! automaton runs only there and every other byte is passed over at a few per nanosecond.
//!
//! Every pattern is at least `shortest` bytes long. A window of `width` bytes is looked at
//! every `stride = shortest - width + 1` positions. Any occurrence of a pattern, starting at
//! `s`, holds the first window looked at from `s` on whole: that window starts at some
//! `s + j` with `j < stride`, so it ends at `s + j + width <= s + shortest`. It is the
//! pattern's `width` bytes at offset `j`, so the set of every pattern's windows at offsets
//! `0..stride` holds it. A window not in the set rules out every occurrence starting in the
//! `stride` positions up to it; a window in it (a hit) is where the automaton must look.
//!
//! The set is a bitset over a hash of the windows (small, so it stays in cache), in front of
//! an exact open-addressed table that settles the bitset's false positives.

use zeroize::Zeroizing;

/// The shortest pattern for which windows of 8 bytes are sampled (a stride of at least 9);
/// shorter ones down to [`MIN_SHORTEST`] sample windows of 4 bytes.
const WIDE_FROM: usize = 16;

/// With a pattern shorter than this, there is no prefilter.
pub(super) const MIN_SHORTEST: usize = 4;

/// Bits in the bitset per distinct window, so that about one sample in 32 that misses the set
/// still goes on to the exact table.
const BITS_PER_WINDOW: usize = 32;

/// The bitset's size bounds, as powers of two: 128 bytes to 2 MiB.
const MIN_BITS_LOG2: u32 = 10;
const MAX_BITS_LOG2: u32 = 24;

/// Fibonacci hashing's multiplier: the top bits of `window * MULTIPLIER` are the hash.
const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

/// The windows of every pattern at the offsets that can be sampled first, and how to sample.
pub(super) struct Prefilter {
    /// How many bytes a window has: 4 or 8.
    width: Width,
    /// How many positions apart windows are sampled.
    stride: usize,
    /// The shortest pattern's length.
    shortest: usize,
    /// One bit per hash value; a window's bit is set if it may be in the set. Zeroized on
    /// drop, like everything derived from the patterns.
    bits: Zeroizing<Vec<u64>>,
    /// `64 - log2(bits)`: a hash's top bits index `bits`.
    bits_shift: u32,
    /// The windows, open-addressed with linear probing, at most half full.
    slots: Zeroizing<Vec<u64>>,
    /// `64 - log2(slots)`.
    slots_shift: u32,
    /// A value that is no window, marking empty slots.
    empty: u64,
}

/// How many bytes a window has.
#[derive(Clone, Copy)]
enum Width {
    Four,
    Eight,
}

impl Prefilter {
    /// The prefilter for `patterns`, or `None` when one is shorter than [`MIN_SHORTEST`].
    pub(super) fn new(patterns: &[&[u8]]) -> Option<Self> {
        let shortest = patterns.iter().map(|pattern| pattern.len()).min()?;
        if shortest < MIN_SHORTEST {
            return None;
        }
        let (width, bytes) = if shortest >= WIDE_FROM {
            (Width::Eight, 8)
        } else {
            (Width::Four, 4)
        };
        let stride = shortest - bytes + 1;
        // Sized up front, so that no reallocation leaves a copy of a window behind.
        let mut windows = Zeroizing::new(Vec::with_capacity(patterns.len() * stride));
        for pattern in patterns {
            windows.extend(
                pattern
                    .windows(bytes)
                    .take(stride)
                    .map(|window| match width {
                        Width::Four => load_slice::<4>(window),
                        Width::Eight => load_slice::<8>(window),
                    }),
            );
        }
        windows.sort_unstable();
        windows.dedup();
        // A value no window has: windows of 4 bytes are below `u32::MAX + 1`, and among
        // `windows.len() + 1` values some one is missing.
        let empty = (0..=u64::MAX)
            .rev()
            .find(|value| windows.binary_search(value).is_err())
            // Invariant: fewer windows than values, so the search ends early.
            .expect("some u64 is no window");

        let bits_log2 = (windows.len() * BITS_PER_WINDOW)
            .next_power_of_two()
            .trailing_zeros()
            .clamp(MIN_BITS_LOG2, MAX_BITS_LOG2);
        let bits_shift = 64 - bits_log2;
        let mut bits = Zeroizing::new(vec![0; (1 << bits_log2) / 64]);
        let slots_log2 = (2 * windows.len()).next_power_of_two().trailing_zeros();
        let slots_shift = 64 - slots_log2;
        let mut slots = Zeroizing::new(vec![empty; 1 << slots_log2]);
        let mask = slots.len() - 1;
        for &window in windows.iter() {
            let hash = window.wrapping_mul(MULTIPLIER);
            let bit = index(hash, bits_shift);
            bits[bit / 64] |= 1 << (bit % 64);
            let mut slot = index(hash, slots_shift);
            // Terminates: at most half the slots are taken.
            while slots[slot] != empty {
                slot = (slot + 1) & mask;
            }
            slots[slot] = window;
        }
        Some(Self {
            width,
            stride,
            shortest,
            bits,
            bits_shift,
            slots,
            slots_shift,
            empty,
        })
    }

    /// How many positions apart windows are sampled.
    pub(super) fn stride(&self) -> usize {
        self.stride
    }

    /// The first of `from`, `from + stride`, `from + 2 * stride`, ... whose window lies
    /// within `haystack` and is in the set, if any. None when `haystack` has fewer than
    /// `shortest` bytes from `from` on, where no pattern fits.
    #[inline]
    pub(super) fn next_hit(&self, haystack: &[u8], from: usize) -> Option<usize> {
        if haystack.len().saturating_sub(from) < self.shortest {
            return None;
        }
        match self.width {
            Width::Four => self.next_hit_of::<4>(haystack, from),
            Width::Eight => self.next_hit_of::<8>(haystack, from),
        }
    }

    /// Whether the window at `at` lies within `haystack` and is in the set.
    pub(super) fn hits(&self, haystack: &[u8], at: usize) -> bool {
        match self.width {
            Width::Four => window::<4>(haystack, at),
            Width::Eight => window::<8>(haystack, at),
        }
        .is_some_and(|window| self.contains(window))
    }

    #[inline]
    fn next_hit_of<const WIDTH: usize>(&self, haystack: &[u8], mut at: usize) -> Option<usize> {
        while let Some(window) = window::<WIDTH>(haystack, at) {
            if self.contains(window) {
                return Some(at);
            }
            at += self.stride;
        }
        None
    }

    /// Whether `window` is one of the set's.
    #[inline]
    fn contains(&self, window: u64) -> bool {
        let hash = window.wrapping_mul(MULTIPLIER);
        let bit = index(hash, self.bits_shift);
        self.bits[bit / 64] & (1 << (bit % 64)) != 0 && self.in_slots(window, hash)
    }

    /// Whether `window`, whose hash is `hash`, is in the exact table.
    #[inline(never)]
    fn in_slots(&self, window: u64, hash: u64) -> bool {
        let mask = self.slots.len() - 1;
        let mut slot = index(hash, self.slots_shift);
        loop {
            let value = self.slots[slot];
            if value == self.empty {
                return false;
            }
            if value == window {
                return true;
            }
            slot = (slot + 1) & mask;
        }
    }
}

/// The top `64 - shift` bits of `hash`, as an index.
#[inline]
fn index(hash: u64, shift: u32) -> usize {
    // The cast keeps every bit: a table's index fits in `usize`, as its length does.
    (hash >> shift) as usize
}

/// The window of `WIDTH` (4 or 8) bytes at `at`, if it lies within `haystack`.
#[inline]
fn window<const WIDTH: usize>(haystack: &[u8], at: usize) -> Option<u64> {
    haystack
        .get(at..)
        .and_then(<[u8]>::first_chunk::<WIDTH>)
        .map(load)
}

/// The first `WIDTH` bytes of `window`, which has at least that many.
fn load_slice<const WIDTH: usize>(window: &[u8]) -> u64 {
    window
        .first_chunk::<WIDTH>()
        .map(load)
        // Invariant: the caller's windows are `WIDTH` bytes long.
        .expect("a whole window")
}

/// `WIDTH` (4 or 8) bytes as a number (little-endian, zero-extended).
#[inline]
fn load<const WIDTH: usize>(window: &[u8; WIDTH]) -> u64 {
    let mut bytes = [0; 8];
    bytes[..WIDTH].copy_from_slice(window);
    u64::from_le_bytes(bytes)
}
