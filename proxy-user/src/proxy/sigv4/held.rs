//! A process-wide bound on the request bytes re-signing holds at once (bodies read whole to be
//! hashed, aws-chunked chunks held until complete), so sandboxes cannot make veil hold
//! unbounded memory with many slow AWS requests: past it, requests are refused (503), not
//! queued.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Most bytes all re-signings together may hold: 256 MiB.
pub const MAX_HELD: usize = 256 << 20;

/// The budget every request draws on.
pub static BUDGET: Budget = Budget::new(MAX_HELD);

/// A number of bytes that may be held, shared by every request.
#[derive(Debug)]
pub struct Budget {
    max: usize,
    held: AtomicUsize,
}

/// Bytes reserved from a [`Budget`], given back when dropped.
#[derive(Debug)]
pub struct Held<'a> {
    budget: &'a Budget,
    bytes: usize,
}

impl Budget {
    /// A budget of `max` bytes.
    pub const fn new(max: usize) -> Self {
        Self {
            max,
            held: AtomicUsize::new(0),
        }
    }

    /// Reserves `bytes`, or `None` when that would go past the budget.
    pub fn reserve(&self, bytes: usize) -> Option<Held<'_>> {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(bytes).filter(|&total| total <= self.max)
            })
            .ok()
            .map(|_| Held {
                budget: self,
                bytes,
            })
    }

    /// Bytes reserved now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}
