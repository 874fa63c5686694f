//! Upstream HTTP/1.1 connections kept for a while after the sandbox connection that used them
//! ends or falls silent, so that the next connection from the same sandbox to the same
//! destination costs one TLS handshake (the sandbox's, with veil's leaf) instead of two, and
//! an idle sandbox connection holds no upstream connection of its own.
//!
//! A connection goes to the pool when its sandbox connection ends cleanly, or when that
//! connection has sent nothing for [`PARK`] while its upstream connection sat idle (it is
//! *parked*; its next request takes a connection back from the pool or dials a new one, see
//! [`Reuse`]). A connection is only handed to a connection with the same [`Key`]: the same
//! sandbox, the same dialled address, the same server name (the one upstream's certificate
//! was verified for) and the same ALPN offer (so upstream would select the same protocol).
//! The new connection was planned against the egress policy like any other before it asks;
//! only connections that hyper reports idle and open are kept or handed out, at most
//! [`PER_KEY`] per key, [`PER_SANDBOX`] per sandbox (so one sandbox cannot take the room of
//! every other) and [`TOTAL`] in all, each for [`IDLE`] (then dropped, which closes
//! it). Every request on a reused connection goes through the same request path.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use hyper::client::conn::http1::SendRequest;
use rustls_pki_types::ServerName as PkiName;
use tokio::{
    net::TcpStream,
    time::{timeout, Instant},
};

use super::{http::h1_sender, sigv4::ReqBody, Context};

/// How long an idle connection is kept. Servers often close idle connections sooner (5 s is
/// common); hyper sees the close and the connection is not handed out, and a request that
/// finds it closed before any of it left goes over a new connection ([`Reuse::dial`]).
pub const IDLE: Duration = Duration::from_secs(30);

/// How long a sandbox connection may send nothing before its idle upstream connection is
/// parked in the pool.
pub const PARK: Duration = Duration::from_secs(1);

/// Most idle connections kept for one key.
pub const PER_KEY: usize = 16;

/// Most idle connections kept in all.
pub const TOTAL: usize = 256;

/// Most idle connections kept for one sandbox.
pub const PER_SANDBOX: usize = 64;

/// What an upstream connection may be reused for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// The sandbox's cgroup id.
    pub sandbox: u64,
    /// The dialled (original) address.
    pub dst: SocketAddr,
    /// The SNI the certificate was verified for (`None`: verified for `dst`'s address).
    pub sni: Option<String>,
    /// The ALPN protocols the sandbox's client offered, in its order.
    pub alpn: Vec<Vec<u8>>,
}

/// How a sandbox connection gets another upstream HTTP/1.1 connection like the one it was
/// served with, when it parked that one or found it closed: from the pool under the same key,
/// or a new one to the same address, verified for the same name, offering only `http/1.1`
/// (nothing, when the sandbox's client offered nothing).
pub struct Reuse {
    /// Where idle connections are kept.
    pub pool: Pool,
    /// The sandbox connection's key.
    pub key: Key,
    /// The name the certificate must be valid for.
    pub name: PkiName<'static>,
}

/// The idle upstream connections. Cheap to clone (shared).
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Mutex<Inner>>,
    idle: Duration,
    park: Duration,
}

#[derive(Default)]
struct Inner {
    /// Each key's connections, with when each is dropped.
    idle: HashMap<Key, Vec<(Instant, SendRequest<ReqBody>)>>,
    total: usize,
    /// How many are kept for each sandbox (cgroup id); sandboxes with none are left out.
    per_sandbox: HashMap<u64, usize>,
    /// Whether the task that drops expired connections runs (it ends when none are kept).
    sweeping: bool,
}

impl Default for Pool {
    fn default() -> Self {
        Self::new(IDLE, PARK)
    }
}

impl Pool {
    /// A pool that keeps connections for `idle` and takes those of sandbox connections silent
    /// for `park`.
    pub fn new(idle: Duration, park: Duration) -> Self {
        Self {
            inner: Arc::default(),
            idle,
            park,
        }
    }

    /// How long a sandbox connection may send nothing before its upstream connection is
    /// parked here.
    pub fn park_after(&self) -> Duration {
        self.park
    }

    /// An idle, open connection for `key`, if one is kept.
    pub fn take(&self, key: &Key) -> Option<SendRequest<ReqBody>> {
        let now = Instant::now();
        let mut inner = self.lock();
        let inner = &mut *inner;
        let list = inner.idle.get_mut(key)?;
        let (mut found, mut popped) = (None, 0);
        while let Some((until, sender)) = list.pop() {
            popped += 1;
            if now < until && sender.is_ready() && !sender.is_closed() {
                found = Some(sender);
                break;
            }
        }
        if list.is_empty() {
            inner.idle.remove(key);
        }
        inner.total -= popped;
        if let Some(count) = inner.per_sandbox.get_mut(&key.sandbox) {
            *count -= popped;
            if *count == 0 {
                inner.per_sandbox.remove(&key.sandbox);
            }
        }
        found
    }

    /// Keeps `sender` for `key` for the pool's idle time if it is idle and open and there is
    /// room; otherwise drops it, which closes the connection.
    pub fn put(&self, key: Key, sender: SendRequest<ReqBody>) {
        if !sender.is_ready() || sender.is_closed() {
            return;
        }
        let mut inner = self.lock();
        let inner = &mut *inner;
        let sandbox = key.sandbox;
        let of_sandbox = inner.per_sandbox.get(&sandbox).copied().unwrap_or(0);
        if inner.total >= TOTAL || of_sandbox >= PER_SANDBOX {
            return;
        }
        let list = inner.idle.entry(key).or_default();
        if list.len() >= PER_KEY {
            return;
        }
        list.push((Instant::now() + self.idle, sender));
        inner.total += 1;
        *inner.per_sandbox.entry(sandbox).or_default() += 1;
        if !inner.sweeping {
            inner.sweeping = true;
            tokio::spawn(self.clone().sweep());
        }
    }

    /// How many idle connections are kept.
    #[cfg(test)]
    pub fn idle(&self) -> usize {
        self.lock().total
    }

    /// How many idle connections are kept for `sandbox`.
    #[cfg(test)]
    pub fn idle_for(&self, sandbox: u64) -> usize {
        self.lock().per_sandbox.get(&sandbox).copied().unwrap_or(0)
    }

    /// Drops expired and closed connections every quarter of the idle time, until none are
    /// kept.
    async fn sweep(self) {
        loop {
            tokio::time::sleep(self.idle / 4).await;
            let now = Instant::now();
            let mut inner = self.lock();
            let inner = &mut *inner;
            inner.idle.retain(|_, list| {
                list.retain(|(until, sender)| now < *until && !sender.is_closed());
                !list.is_empty()
            });
            inner.per_sandbox.clear();
            for (key, list) in &inner.idle {
                *inner.per_sandbox.entry(key.sandbox).or_default() += list.len();
            }
            inner.total = inner.per_sandbox.values().sum();
            if inner.total == 0 {
                inner.sweeping = false;
                return;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The map stays consistent at every step a panic could interrupt.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Reuse {
    /// A kept connection for this key, if the pool has one.
    pub fn take(&self) -> Option<SendRequest<ReqBody>> {
        self.pool.take(&self.key)
    }

    /// Parks `sender` in the pool under this key (or closes it, see [`Pool::put`]).
    pub fn park(&self, sender: SendRequest<ReqBody>) {
        self.pool.put(self.key.clone(), sender);
    }

    /// A new verified connection to the key's address, under `ctx`'s connect and TLS
    /// timeouts; why not.
    pub async fn dial(&self, ctx: &Context) -> Result<SendRequest<ReqBody>, String> {
        let dst = self.key.dst;
        let tcp = match timeout(ctx.limits.connect_timeout, TcpStream::connect(dst)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(format!("upstream connect failed: {e}")),
            Err(_) => return Err("upstream connect timed out".to_owned()),
        };
        let _ = tcp.set_nodelay(true);
        // The sandbox's client offered no ALPN: neither does the new connection.
        let alpn = match self.key.alpn.is_empty() {
            true => Vec::new(),
            false => vec![b"http/1.1".to_vec()],
        };
        let handshake = ctx.upstream.connect(tcp, self.name.clone(), &alpn);
        let connected = match timeout(ctx.limits.tls_timeout, handshake).await {
            Ok(Ok(connected)) => connected,
            Ok(Err(e)) => return Err(format!("upstream TLS failed: {e}")),
            Err(_) => return Err("upstream TLS timed out".to_owned()),
        };
        if connected.alpn.as_deref().is_some_and(|p| p != b"http/1.1") {
            return Err("upstream selected another protocol than HTTP/1.1".to_owned());
        }
        h1_sender(connected.stream)
            .await
            .map_err(|e| format!("upstream HTTP/1.1: {e}"))
    }
}
