//! What happens to a steered connection once veil knows its original destination: classify
//! its first bytes, apply the egress policy, and then
//!
//! - TLS: verify the upstream first (original address, client's SNI and ALPN), then finish
//!   the client's handshake with a leaf from veil's CA selecting what upstream selected, and
//!   proxy HTTP/1.1 or HTTP/2 ([`http`]); passthrough SNIs are relayed untouched;
//! - plain HTTP: proxy it, checking every request's Host against the policy;
//! - anything else: splice bytes, if an address rule allows the destination.
//!
//! Denials of HTTP and HTTPS get a 403 that says why ([`deny`]). Every connection leaves one
//! audit record.

pub mod deny;
pub mod headers;
pub mod http;
pub mod inject_request;
pub mod injector;
pub mod prefixed;

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use rustls_pki_types::ServerName;
use tokio::{
    io::{copy_bidirectional, AsyncRead, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
    time::timeout,
};
use tokio_rustls::TlsAcceptor;

use crate::{
    audit::{Connection, Event, Verdict},
    classify::{classify, classify_rest, ClassifyError, ClientHello, Protocol, RequestHead},
    daemon::Daemon,
    metrics::ErrorKind,
    policy::{Decision, Policy},
    tls::leaf::LeafName,
};
use http::{Forwarder, Leg};
use inject_request::Origin;
use prefixed::Prefixed;

/// How long veil waits for an upstream TCP handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long veil waits for a TLS handshake, on either leg.
const TLS_TIMEOUT: Duration = Duration::from_secs(10);

/// One steered connection on its way through veil.
pub struct Steered {
    /// The daemon.
    pub daemon: Arc<Daemon>,
    /// The sandbox's end.
    pub client: TcpStream,
    /// Where the sandbox meant to connect.
    pub dst: SocketAddr,
    /// The audit record being filled in.
    pub event: Connection,
    /// When veil accepted the connection, for the setup latency metric.
    pub accepted: Instant,
    /// A connection to `dst` already made (see `after_silence`).
    pub upstream: Option<TcpStream>,
}

/// Classifies, decides and proxies one steered connection.
pub async fn serve(mut conn: Steered) {
    let mut buf = Vec::new();
    let policy = conn.daemon.policy();
    let classified = match classify(&mut conn.client, &mut buf).await {
        Ok(Protocol::Other) if buf.is_empty() => after_silence(&mut conn, &mut buf, &policy).await,
        classified => classified,
    };
    let protocol = match classified {
        Ok(protocol) => protocol,
        Err(e) => return conn.refuse(format!("unusable first bytes: {e}")),
    };
    match protocol {
        Protocol::Tls(hello) => tls(conn, buf, hello, &policy).await,
        Protocol::Http(head) => plain_http(conn, buf, head, policy).await,
        Protocol::Other => tcp(conn, buf, &policy).await,
    }
}

/// A client that has sent nothing within [`crate::classify::FIRST_BYTES_TIMEOUT`]: it speaks
/// a server-first protocol, or it is merely slow (a loaded machine can hold a ClientHello back
/// that long, and a TLS client taken for server-first would be relayed without interception).
/// Where an address rule allows the destination, veil connects upstream and whoever speaks
/// first decides: the server (relayed, over this upstream connection) or the client
/// (classified as usual, keeping the connection for it). Elsewhere only the client can speak
/// first.
async fn after_silence(
    conn: &mut Steered,
    buf: &mut Vec<u8>,
    policy: &Policy,
) -> Result<Protocol, ClassifyError> {
    if !policy.decide_addr(conn.dst).allowed {
        return match classify_rest(&mut conn.client, buf).await {
            // Nothing came: leave it to the address rules, which deny it.
            Err(ClassifyError::Stalled(_)) if buf.is_empty() => Ok(Protocol::Other),
            classified => classified,
        };
    }
    let upstream = match timeout(CONNECT_TIMEOUT, TcpStream::connect(conn.dst)).await {
        Ok(Ok(upstream)) => upstream,
        // The usual path reports the failure, with the client's protocol if it speaks.
        _ => return classify_rest(&mut conn.client, buf).await,
    };
    let _ = upstream.set_nodelay(true);
    let client_first = tokio::select! {
        ready = conn.client.readable() => ready.map(|()| true),
        ready = upstream.readable() => ready.map(|()| false),
    };
    conn.upstream = Some(upstream);
    if client_first? {
        classify_rest(&mut conn.client, buf).await
    } else {
        Ok(Protocol::Other)
    }
}

async fn tcp(mut conn: Steered, buf: Vec<u8>, policy: &Policy) {
    conn.event.protocol = "tcp".into();
    let decision = policy.decide_addr(conn.dst);
    if !decision.allowed {
        log::info!(
            "denying {} to {}: {}",
            conn.event.comm,
            conn.dst,
            decision.reason
        );
        drop(conn.deny(decision.reason));
        return;
    }
    splice(conn, buf, decision).await;
}

async fn plain_http(mut conn: Steered, buf: Vec<u8>, head: RequestHead, policy: Arc<Policy>) {
    conn.event.protocol = "http".into();
    conn.event.host = head.host.clone();
    let decision = match &head.host {
        Some(host) => policy.decide_host(host, conn.dst),
        None => policy.decide_addr(conn.dst),
    };
    let shown = head.host.unwrap_or_else(|| conn.dst.to_string());
    if !decision.allowed {
        let message = format!("veil: egress to {shown} is denied: {}\n", decision.reason);
        let client = conn.deny(decision.reason);
        return Box::pin(deny::respond_plain(Prefixed::new(buf, client), message)).await;
    }
    let Some(upstream) = conn.connect().await else {
        return;
    };
    let dst = conn.dst;
    let origin = conn.origin();
    let daemon = Arc::clone(&conn.daemon);
    let client = conn.allow(decision);
    let forwarder = Forwarder {
        daemon,
        origin,
        dst,
        leg: Leg::Plain,
        policy,
    };
    // Boxed for the reason given in `tls`.
    let proxied = Box::pin(http::proxy_h1(
        Prefixed::new(buf, client),
        upstream,
        forwarder,
    ));
    if let Err(e) = proxied.await {
        log::debug!("plain HTTP to {dst}: {e}");
    }
}

async fn tls(mut conn: Steered, buf: Vec<u8>, hello: ClientHello, policy: &Arc<Policy>) {
    conn.event.protocol = "tls".into();
    conn.event.host = hello.sni.clone();
    let (decision, leaf_name) = match &hello.sni {
        Some(sni) => (
            policy.decide_host(sni, conn.dst),
            LeafName::Dns(sni.clone()),
        ),
        None => (policy.decide_addr(conn.dst), LeafName::Ip(conn.dst.ip())),
    };
    let shown = hello
        .sni
        .clone()
        .unwrap_or_else(|| conn.dst.ip().to_string());
    if !decision.allowed {
        let message = format!("veil: egress to {shown} is denied: {}\n", decision.reason);
        let config = conn
            .daemon
            .tls()
            .server_config(&leaf_name, deny::alpn_for_denial(&hello.alpn));
        let client = conn.deny(decision.reason);
        return match config {
            // Boxed for the reason given below, at the proxying.
            Ok(config) => {
                Box::pin(deny::respond_tls(
                    Prefixed::new(buf, client),
                    config,
                    message,
                ))
                .await
            }
            Err(e) => log::error!("minting a certificate for {shown}: {e}"),
        };
    }
    if hello
        .sni
        .as_deref()
        .is_some_and(|sni| policy.is_passthrough(sni))
    {
        conn.event.protocol = "tls-passthrough".into();
        return splice(conn, buf, decision).await;
    }
    let Some(tcp) = conn.connect().await else {
        return;
    };
    let name = match &hello.sni {
        Some(sni) => ServerName::try_from(sni.clone()),
        None => Ok(ServerName::IpAddress(conn.dst.ip().into())),
    };
    let name = match name {
        Ok(name) => name,
        Err(e) => return conn.refuse(format!("unusable server name {shown}: {e}")),
    };
    let handshake = conn.daemon.upstream().connect(tcp, name, &hello.alpn);
    let upstream = match timeout(TLS_TIMEOUT, handshake).await {
        Ok(Ok(upstream)) => upstream,
        Ok(Err(e)) => return conn.refuse(format!("upstream TLS for {shown} failed: {e}")),
        Err(_) => return conn.refuse(format!("upstream TLS for {shown} timed out")),
    };
    let config = match conn
        .daemon
        .tls()
        .server_config(&leaf_name, upstream.alpn.as_deref())
    {
        Ok(config) => config,
        Err(e) => return conn.refuse(format!("minting a certificate for {shown}: {e}")),
    };
    let client = match TlsAcceptor::from(config)
        .accept(Prefixed::new(buf, conn.client))
        .await
    {
        Ok(client) => client,
        Err(e) => {
            conn.event.reason = format!("sandbox TLS handshake failed: {e}");
            log::info!("{shown}: {}", conn.event.reason);
            conn.daemon
                .metrics()
                .connection(Verdict::Refused, conn.accepted.elapsed());
            return conn.daemon.audit().record(Event::Connection(conn.event));
        }
    };
    let Steered {
        daemon,
        dst,
        mut event,
        accepted,
        ..
    } = conn;
    let origin = Origin::of(&event);
    event.verdict = Verdict::Allowed;
    daemon
        .metrics()
        .connection(event.verdict, accepted.elapsed());
    event.rule = decision.rule;
    event.reason = "intercepted".into();
    daemon.audit().record(Event::Connection(event));
    let forwarder = Forwarder {
        daemon,
        origin,
        dst,
        leg: Leg::Tls(hello.sni),
        policy: Arc::clone(policy),
    };
    // Boxed: an async fn's state is as large as its largest await, so inline, every
    // connection's task would carry the largest of these (and of the denials) whichever it
    // runs: 13 KiB of state instead of 5 KiB plus the one it runs.
    let result = match upstream.alpn.as_deref() {
        Some(b"h2") => Box::pin(http::proxy_h2(client, upstream.stream, forwarder)).await,
        Some(b"http/1.1") => Box::pin(http::proxy_h1(client, upstream.stream, forwarder)).await,
        None => return Box::pin(sniff_and_proxy(client, upstream.stream, forwarder)).await,
        Some(_) => return Box::pin(relay(client, upstream.stream, Vec::new(), dst)).await,
    };
    if let Err(e) = result {
        log::debug!("HTTP to {shown}: {e}");
    }
}

/// Without ALPN, the decrypted bytes say whether this is HTTP/1 or something to relay as is.
async fn sniff_and_proxy<C, U>(mut client: C, upstream: U, forwarder: Forwarder)
where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    U: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let dst = forwarder.dst;
    let mut buf = Vec::new();
    match classify(&mut client, &mut buf).await {
        Ok(Protocol::Http(_)) => {
            if let Err(e) = http::proxy_h1(Prefixed::new(buf, client), upstream, forwarder).await {
                log::debug!("HTTP to {dst}: {e}");
            }
        }
        Ok(_) => relay(client, upstream, buf, dst).await,
        Err(e) => log::debug!("TLS to {dst} carried unusable bytes: {e}"),
    }
}

async fn splice(mut conn: Steered, buf: Vec<u8>, decision: Decision) {
    let Some(upstream) = conn.connect().await else {
        return;
    };
    let dst = conn.dst;
    let client = conn.allow(decision);
    relay(client, upstream, buf, dst).await;
}

/// Copies bytes both ways, `first` (already read from the client) first.
async fn relay<C, U>(mut client: C, mut upstream: U, first: Vec<u8>, dst: SocketAddr)
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    if !first.is_empty() {
        if let Err(e) = upstream.write_all(&first).await {
            return log::debug!("relay to {dst}: {e}");
        }
    }
    match copy_bidirectional(&mut client, &mut upstream).await {
        Ok((up, down)) => log::debug!("relay to {dst}: {up} bytes up, {down} bytes down"),
        Err(e) => log::debug!("relay to {dst} ended: {e}"),
    }
}

impl Steered {
    /// Who opened the connection, for the records of its requests.
    fn origin(&self) -> Origin {
        Origin::of(&self.event)
    }

    /// Counts the connection under its verdict so far, with the time since it was accepted.
    fn count(&self) {
        self.daemon
            .metrics()
            .connection(self.event.verdict, self.accepted.elapsed());
    }

    /// Records a refusal and drops the connection.
    fn refuse(mut self, reason: String) {
        log::info!("refusing {} to {}: {reason}", self.event.comm, self.dst);
        self.event.verdict = Verdict::Refused;
        self.event.reason = reason;
        self.count();
        self.daemon.audit().record(Event::Connection(self.event));
    }

    /// Records a denial by the egress policy and hands back the client's stream, to be told
    /// why.
    fn deny(self, reason: String) -> TcpStream {
        let Self {
            daemon,
            client,
            mut event,
            accepted,
            ..
        } = self;
        event.verdict = Verdict::Refused;
        event.reason = reason;
        daemon.metrics().denial();
        daemon
            .metrics()
            .connection(Verdict::Refused, accepted.elapsed());
        daemon.audit().record(Event::Connection(event));
        client
    }

    /// Records the allowed connection and hands back the client's stream.
    fn allow(mut self, decision: Decision) -> TcpStream {
        self.event.verdict = Verdict::Allowed;
        self.count();
        let Self {
            daemon,
            client,
            mut event,
            ..
        } = self;
        event.verdict = Verdict::Allowed;
        event.rule = decision.rule;
        event.reason = "relayed".into();
        daemon.audit().record(Event::Connection(event));
        client
    }

    /// Connects to the original destination, or records why not.
    async fn connect(&mut self) -> Option<TcpStream> {
        if let Some(upstream) = self.upstream.take() {
            return Some(upstream);
        }
        let reason = match timeout(CONNECT_TIMEOUT, TcpStream::connect(self.dst)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Some(stream);
            }
            Ok(Err(e)) => format!("upstream connect failed: {e}"),
            Err(_) => "upstream connect timed out".to_owned(),
        };
        log::info!("{} to {}: {reason}", self.event.comm, self.dst);
        self.event.verdict = Verdict::Refused;
        self.event.reason = reason;
        self.daemon.metrics().error(ErrorKind::Upstream);
        self.count();
        self.daemon
            .audit()
            .record(Event::Connection(self.event.clone()));
        None
    }
}
