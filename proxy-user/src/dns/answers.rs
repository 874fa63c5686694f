//! What each sandbox was answered: name → addresses, until a little after their TTLs end, so
//! that a connection naming a host (plain-HTTP Host, passthrough SNI) can be bound to the
//! address the sandbox itself was given for it.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use lru::LruCache;
use tokio::time::Instant;
use veil_core::{dns::Address, host_pattern::normalize};

/// How many names are remembered per sandbox (the least recently used goes first).
pub const PER_SANDBOX: usize = 4096;
/// How many names are remembered in all; past it a sandbox can only replace its own.
pub const TOTAL: usize = 65_536;
/// How many addresses are remembered per name (the soonest to expire goes first).
pub const PER_NAME: usize = 64;
/// The least time an answer is remembered, whatever its TTL: clients keep answers a little
/// past it, and a TTL of 0 still serves the connection made right after.
pub const GRACE: Duration = Duration::from_secs(30);
/// The longest time an answer is remembered.
pub const LONGEST: Duration = Duration::from_secs(24 * 60 * 60);

/// The answers sandboxes received, shared by the DNS proxy (which remembers them) and the
/// data path (which binds names with them). Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct DnsAnswers {
    inner: Arc<Mutex<Remembered>>,
}

/// Every sandbox's names.
#[derive(Debug, Default)]
struct Remembered {
    sandboxes: HashMap<u64, LruCache<String, Vec<(IpAddr, Instant)>>>,
    total: usize,
}

impl DnsAnswers {
    /// Remembers that `sandbox` (its cgroup id) was told `addresses` for `name`.
    pub fn remember(&self, sandbox: u64, name: &str, addresses: &[Address]) {
        if addresses.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut inner = self.lock();
        let Remembered { sandboxes, total } = &mut *inner;
        let names = sandboxes.entry(sandbox).or_insert_with(LruCache::unbounded);
        let key = normalize(name);
        if !names.contains(&key) {
            if names.len() >= PER_SANDBOX || *total >= TOTAL {
                if names.pop_lru().is_none() {
                    return;
                }
                *total -= 1;
            }
            names.put(key.clone(), Vec::new());
            *total += 1;
        }
        let Some(known) = names.get_mut(&key) else {
            return;
        };
        known.retain(|&(_, until)| until > now);
        for address in addresses {
            let remembered = Duration::from_secs(address.ttl.into()).clamp(GRACE, LONGEST);
            let until = now + remembered;
            match known.iter_mut().find(|(ip, _)| same(*ip, address.ip)) {
                Some((_, old)) => *old = (*old).max(until),
                None => known.push((address.ip, until)),
            }
        }
        if known.len() > PER_NAME {
            known.sort_by_key(|&(_, until)| std::cmp::Reverse(until));
            known.truncate(PER_NAME);
        }
    }

    /// Whether `sandbox` was answered `ip` for `name` (case and a trailing dot aside), and the
    /// answer is still remembered.
    pub fn resolved(&self, sandbox: u64, name: &str, ip: IpAddr) -> bool {
        let now = Instant::now();
        let mut inner = self.lock();
        inner
            .sandboxes
            .get_mut(&sandbox)
            .and_then(|names| names.get(&normalize(name)))
            .is_some_and(|known| {
                known
                    .iter()
                    .any(|&(known, until)| until > now && same(known, ip))
            })
    }

    /// Forgets everything `sandbox` was answered (it is gone).
    pub fn forget(&self, sandbox: u64) {
        let mut inner = self.lock();
        if let Some(names) = inner.sandboxes.remove(&sandbox) {
            inner.total -= names.len();
        }
    }

    /// How many names are remembered in all.
    pub fn len(&self) -> usize {
        self.lock().total
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Remembered> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether two addresses are the same, an IPv4 address also as its v4-mapped IPv6 form.
fn same(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(ip: &str, ttl: u32) -> Address {
        Address {
            ip: ip.parse().unwrap(),
            ttl,
        }
    }

    #[test]
    fn remembers_per_sandbox_and_name_and_merges_families() {
        let answers = DnsAnswers::default();
        answers.remember(1, "API.test.", &[address("192.0.2.1", 60)]);
        answers.remember(1, "api.test", &[address("2001:db8::1", 60)]);
        assert!(answers.resolved(1, "api.test", "192.0.2.1".parse().unwrap()));
        assert!(answers.resolved(1, "Api.Test.", "::ffff:192.0.2.1".parse().unwrap()));
        assert!(answers.resolved(1, "api.test", "2001:db8::1".parse().unwrap()));
        assert!(!answers.resolved(1, "api.test", "192.0.2.2".parse().unwrap()));
        assert!(!answers.resolved(2, "api.test", "192.0.2.1".parse().unwrap()));
        assert!(!answers.resolved(1, "other.test", "192.0.2.1".parse().unwrap()));
        assert_eq!(answers.len(), 1);
        answers.forget(1);
        assert!(!answers.resolved(1, "api.test", "192.0.2.1".parse().unwrap()));
        assert!(answers.is_empty());
    }

    #[test]
    fn bounded_per_sandbox_and_per_name() {
        let answers = DnsAnswers::default();
        for i in 0..PER_SANDBOX + 10 {
            answers.remember(1, &format!("n{i}.test"), &[address("192.0.2.1", 60)]);
        }
        assert_eq!(answers.len(), PER_SANDBOX);
        assert!(!answers.resolved(1, "n0.test", "192.0.2.1".parse().unwrap()));
        assert!(answers.resolved(1, "n10.test", "192.0.2.1".parse().unwrap()));
        let many: Vec<Address> = (0..=255)
            .map(|i| address(&format!("198.51.100.{i}"), 60))
            .collect();
        answers.remember(2, "many.test", &many);
        let kept = (0..=255)
            .filter(|i| {
                answers.resolved(2, "many.test", format!("198.51.100.{i}").parse().unwrap())
            })
            .count();
        assert_eq!(kept, PER_NAME);
    }

    #[tokio::test(start_paused = true)]
    async fn answers_expire_after_their_ttl_or_the_grace() {
        let answers = DnsAnswers::default();
        answers.remember(1, "short.test", &[address("192.0.2.1", 0)]);
        answers.remember(1, "long.test", &[address("192.0.2.2", 120)]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(answers.resolved(1, "short.test", ip("192.0.2.1")));
        tokio::time::advance(GRACE + Duration::from_secs(1)).await;
        assert!(!answers.resolved(1, "short.test", ip("192.0.2.1")));
        assert!(answers.resolved(1, "long.test", ip("192.0.2.2")));
        tokio::time::advance(Duration::from_secs(120)).await;
        assert!(!answers.resolved(1, "long.test", ip("192.0.2.2")));
    }
}
