//! Resolvers' answers, kept per sandbox and question for their TTL (at most [`LONGEST`]),
//! and served again with the TTLs aged.

use std::{
    num::NonZeroUsize,
    sync::{Arc, Mutex, PoisonError},
};

use lru::LruCache;
use tokio::time::Instant;
use veil_core::dns::{Query, Question, Rcode, Response};

/// The longest an answer is cached, in seconds, whatever its TTL.
pub const LONGEST: u32 = 300;
/// How many answers are cached in all (the least recently used goes first).
pub const ENTRIES: usize = 4096;
/// The largest answer cached (its records' bytes), so the cache holds at most 16 MiB.
pub const LARGEST: usize = 4096;

/// What a cached answer is filed under: the sandbox (so no sandbox learns from the cache what
/// another asked), the question, and the DNSSEC bits that change what a resolver answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Key {
    sandbox: u64,
    question: Question,
    dnssec_ok: bool,
    checking_disabled: bool,
}

impl Key {
    /// The key of `query` from `sandbox`.
    pub fn of(sandbox: u64, query: &Query) -> Self {
        Self {
            sandbox,
            question: query.question.clone(),
            dnssec_ok: query.edns.is_some_and(|e| e.dnssec_ok),
            checking_disabled: query.checking_disabled(),
        }
    }
}

/// One cached answer.
#[derive(Debug)]
struct Entry {
    response: Arc<Response>,
    stored: Instant,
    ttl: u32,
}

/// The cache.
#[derive(Debug)]
pub(super) struct Cache {
    entries: Mutex<LruCache<Key, Entry>>,
}

impl Default for Cache {
    fn default() -> Self {
        // Invariant: ENTRIES is a non-zero constant.
        let size = NonZeroUsize::new(ENTRIES).expect("ENTRIES is not zero");
        Self {
            entries: Mutex::new(LruCache::new(size)),
        }
    }
}

impl Cache {
    /// The answer cached for `key` and its age in seconds, if it has not expired.
    pub fn get(&self, key: &Key) -> Option<(Arc<Response>, u32)> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.get(key)?;
        let age = u32::try_from(entry.stored.elapsed().as_secs()).unwrap_or(u32::MAX);
        if age < entry.ttl {
            return Some((Arc::clone(&entry.response), age));
        }
        entries.pop(key);
        None
    }

    /// Caches `response` for `key`, if it is worth it: a whole answer (no error but NXDOMAIN,
    /// not truncated, not too large) with a TTL above 0.
    pub fn put(&self, key: Key, response: Arc<Response>) {
        let ttl = response.ttl.min(LONGEST);
        let rcode = response.rcode();
        let usable = rcode == Rcode::NoError as u8 || rcode == Rcode::NxDomain as u8;
        if ttl == 0 || !usable || response.is_truncated() || response.records_len() > LARGEST {
            return;
        }
        let entry = Entry {
            response,
            stored: Instant::now(),
            ttl,
        };
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(key, entry);
    }
}
