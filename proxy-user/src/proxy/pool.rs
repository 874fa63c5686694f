//! Upstream HTTP/1.1 connections kept for a moment after the sandbox connection that opened
//! them ends, so that the next connection from the same sandbox to the same destination costs
//! one TLS handshake (the sandbox's, with veil's leaf) instead of two.
//!
//! A connection is only handed to a connection with the same [`Key`]: the same sandbox, the
//! same dialled address, the same server name (the one upstream's certificate was verified
//! for) and the same ALPN offer (so upstream would select the same protocol). The new
//! connection was planned against the egress policy like any other before it asks; only
//! connections that hyper reports idle and open are kept or handed out, at most
//! [`PER_KEY`] per key and [`TOTAL`] in all, each for [`IDLE`] (then dropped, which closes
//! it). Every request on a reused connection goes through the same request path.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use hyper::client::conn::http1::SendRequest;
use rustls_pki_types::ServerName as PkiName;
use tokio::{net::TcpStream, time::timeout};

use super::{http::h1_sender, sigv4::ReqBody, Context};

/// How long an idle connection is kept. Short: servers close idle connections after a few
/// seconds (5 s is common), and a request on one they just closed would fail.
pub const IDLE: Duration = Duration::from_secs(2);

/// Most idle connections kept for one key.
pub const PER_KEY: usize = 16;

/// Most idle connections kept in all.
pub const TOTAL: usize = 256;

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

/// How to open a new upstream HTTP/1.1 connection like the one a sandbox connection was
/// served with: to the same address, verified for the same name, offering only `http/1.1`.
pub struct Redial {
    /// The name the certificate must be valid for.
    pub name: PkiName<'static>,
}

/// The idle upstream connections. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Pool {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    idle: HashMap<Key, Vec<(u64, SendRequest<ReqBody>)>>,
    total: usize,
    next_id: u64,
}

impl Pool {
    /// An idle, open connection for `key`, if one is kept.
    pub fn take(&self, key: &Key) -> Option<SendRequest<ReqBody>> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let list = inner.idle.get_mut(key)?;
        let mut found = None;
        while let Some((_, sender)) = list.pop() {
            inner.total -= 1;
            if sender.is_ready() && !sender.is_closed() {
                found = Some(sender);
                break;
            }
        }
        if list.is_empty() {
            inner.idle.remove(key);
        }
        found
    }

    /// Keeps `sender` for `key` for [`IDLE`] if it is idle and open and there is room;
    /// otherwise drops it, which closes the connection.
    pub fn put(&self, key: Key, sender: SendRequest<ReqBody>) {
        if !sender.is_ready() || sender.is_closed() {
            return;
        }
        let id = {
            let mut inner = self.lock();
            let inner = &mut *inner;
            if inner.total >= TOTAL {
                return;
            }
            let list = inner.idle.entry(key.clone()).or_default();
            if list.len() >= PER_KEY {
                return;
            }
            inner.next_id += 1;
            list.push((inner.next_id, sender));
            inner.total += 1;
            inner.next_id
        };
        let pool = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(IDLE).await;
            pool.expire(&key, id);
        });
    }

    /// How many idle connections are kept.
    #[cfg(test)]
    pub fn idle(&self) -> usize {
        self.lock().total
    }

    /// Drops connection `id` of `key` if it is still kept.
    fn expire(&self, key: &Key, id: u64) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let Some(list) = inner.idle.get_mut(key) else {
            return;
        };
        let before = list.len();
        list.retain(|(kept, _)| *kept != id);
        inner.total -= before - list.len();
        if list.is_empty() {
            inner.idle.remove(key);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The map stays consistent at every step a panic could interrupt.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Redial {
    /// A new verified connection to `dst`, under `ctx`'s connect and TLS timeouts; why not.
    pub async fn dial(
        &self,
        ctx: &Context,
        dst: SocketAddr,
    ) -> Result<SendRequest<ReqBody>, String> {
        let tcp = match timeout(ctx.limits.connect_timeout, TcpStream::connect(dst)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(format!("upstream connect failed: {e}")),
            Err(_) => return Err("upstream connect timed out".to_owned()),
        };
        let _ = tcp.set_nodelay(true);
        let alpn = [b"http/1.1".to_vec()];
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
