//! Resolving names veil cannot prove (a plain-HTTP Host, a passthrough SNI), to check that the
//! address a workload dialled is one of the name's: the system resolver (`getaddrinfo`, so
//! `/etc/hosts` and the nameservers in `/etc/resolv.conf`), with answers cached for
//! [`TTL`] and failures for [`NEGATIVE_TTL`], at most [`CACHE_SIZE`] names.

use std::{
    net::IpAddr,
    num::NonZeroUsize,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use lru::LruCache;

/// How long a name's addresses are used before it is resolved again.
pub const TTL: Duration = Duration::from_secs(30);
/// How long a failure to resolve a name is remembered.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// How many names are cached.
pub const CACHE_SIZE: usize = 4096;
/// How long veil waits for the resolver.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A name's addresses, or why it has none.
type Answer = Result<Arc<[IpAddr]>, String>;

/// The resolver, with its cache.
pub struct Resolver {
    cache: Mutex<LruCache<String, (Instant, Answer)>>,
}

impl Default for Resolver {
    fn default() -> Self {
        // Invariant: CACHE_SIZE is a non-zero constant.
        let size = NonZeroUsize::new(CACHE_SIZE).expect("CACHE_SIZE is not zero");
        Self {
            cache: Mutex::new(LruCache::new(size)),
        }
    }
}

impl Resolver {
    /// Whether `name` resolves to `ip`; `Err` says why veil cannot tell (the name does not
    /// resolve).
    pub async fn resolves_to(&self, name: &str, ip: IpAddr) -> Result<bool, String> {
        let addresses = self.addresses(name).await?;
        Ok(contains(&addresses, ip))
    }

    /// The addresses of `name`, from the cache or the system resolver.
    async fn addresses(&self, name: &str) -> Answer {
        let key = name.to_ascii_lowercase();
        if let Some(answer) = self.cached(&key) {
            return answer;
        }
        let lookup = tokio::net::lookup_host((key.as_str(), 0));
        let answer: Answer = match tokio::time::timeout(TIMEOUT, lookup).await {
            Ok(Ok(addrs)) => {
                let ips: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
                if ips.is_empty() {
                    Err(format!("{name} has no addresses"))
                } else {
                    Ok(ips.into())
                }
            }
            Ok(Err(e)) => Err(format!("{name} does not resolve: {e}")),
            Err(_) => Err(format!("resolving {name} timed out")),
        };
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(key, (Instant::now(), answer.clone()));
        answer
    }

    fn cached(&self, key: &str) -> Option<Answer> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let (at, answer) = cache.get(key)?;
        let ttl = if answer.is_ok() { TTL } else { NEGATIVE_TTL };
        if at.elapsed() < ttl {
            return Some(answer.clone());
        }
        cache.pop(key);
        None
    }
}

/// Whether `ip` is among `addresses`, an IPv4 address also as its v4-mapped IPv6 form.
fn contains(addresses: &[IpAddr], ip: IpAddr) -> bool {
    addresses
        .iter()
        .any(|a| a.to_canonical() == ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_compare_canonically() {
        let v4: IpAddr = "93.184.216.34".parse().unwrap();
        let mapped: IpAddr = "::ffff:93.184.216.34".parse().unwrap();
        assert!(contains(&[v4], mapped));
        assert!(contains(&[mapped], v4));
        assert!(!contains(&[v4], "93.184.216.35".parse().unwrap()));
    }

    #[tokio::test]
    async fn literals_and_hosts_file_names_resolve() {
        let resolver = Resolver::default();
        let ip: IpAddr = "93.184.216.34".parse().unwrap();
        assert_eq!(resolver.resolves_to("93.184.216.34", ip).await, Ok(true));
        assert_eq!(resolver.resolves_to("93.184.216.35", ip).await, Ok(false));
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(resolver.resolves_to("localhost", loopback).await, Ok(true));
        assert!(resolver.cached("localhost").is_some(), "answers are cached");
    }
}
