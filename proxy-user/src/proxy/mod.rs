//! What happens to a steered connection once veil knows its original destination: classify
//! its first bytes, plan (pure: [`veil_core::plan`]), then carry the plan out:
//!
//! - TLS: verify the upstream first (original address, client's SNI and ALPN), then finish
//!   the client's handshake with a leaf from veil's CA selecting what upstream selected, and
//!   proxy HTTP/1.1 or HTTP/2 ([`http`]), re-signing AWS requests signed with an aws
//!   secret's placeholder ([`sigv4`]); passthrough SNIs are relayed untouched;
//! - plain HTTP: proxy it, checking every request's Host against the policy;
//! - anything else: splice bytes, if an address rule allows the destination;
//! - denials of HTTP and HTTPS get a 403 that says why ([`deny`]).
//!
//! Every connection's outcome is recorded once, by [`Context::conclude`].

pub mod context;
pub mod decode;
pub mod deliver;
pub mod deny;
pub mod headers;
pub mod http;
pub mod idle;
pub mod inject_body;
pub mod inject_request;
pub mod limits;
pub mod pool;
pub mod prefixed;
pub mod report;
pub mod scrub_body;
pub mod sigv4;
pub mod upgraded;

use std::{net::SocketAddr, sync::Arc, time::Instant};

use rustls_pki_types::ServerName as PkiName;
use tokio::{
    io::{copy_bidirectional, AsyncRead, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
    time::timeout,
};
use tokio_rustls::TlsAcceptor;
use veil_core::{
    plan::{plan, Action, Denial, Plan, ServerName},
    policy::Policy,
};

pub use context::{Context, Outcome};
pub use limits::Limits;

use crate::tls::upstream::Connected;
use crate::{
    audit::Connection,
    classify::{classify, classify_rest, ClassifyError, Protocol},
};
use http::{Forwarder, Leg};
use inject_request::Origin;
use prefixed::Prefixed;

/// One steered connection on its way through veil.
pub struct Steered {
    /// The data path's services.
    pub ctx: Arc<Context>,
    /// The sandbox's end.
    pub client: TcpStream,
    /// Where the sandbox meant to connect.
    pub dst: SocketAddr,
    /// The sandbox's cgroup id (the connecting task's own cgroup may be below it).
    pub sandbox: u64,
    /// The audit record being filled in.
    pub event: Connection,
    /// When veil accepted the connection, for the setup latency metric.
    pub accepted: Instant,
    /// A connection to `dst` already made (see `after_silence`).
    pub upstream: Option<TcpStream>,
}

/// Classifies, plans and proxies one steered connection.
pub async fn serve(mut conn: Steered) {
    let mut buf = Vec::new();
    let policy = conn.ctx.policy();
    // Boxed, like every step below: an async fn's state is as large as its largest await, and
    // the connection's task would otherwise carry the reading's 4 KiB buffer for its whole life.
    let classified = match Box::pin(classify(&mut conn.client, &mut buf)).await {
        Ok(Protocol::Other) if buf.is_empty() => {
            Box::pin(after_silence(&mut conn, &mut buf, &policy)).await
        }
        classified => classified,
    };
    let protocol = match classified {
        Ok(protocol) => protocol,
        Err(e) => {
            return conn.conclude(Outcome::Refused(format!("unusable first bytes: {e}")));
        }
    };
    let planned = plan(&protocol, conn.dst, &policy);
    conn.event.protocol = planned.kind;
    conn.event.host.clone_from(&planned.host);
    let Plan {
        action,
        decision,
        bind,
        ..
    } = planned;
    if let Some(name) = bind {
        // Boxed like the arms below: the resolver's state is not carried for the
        // connection's life.
        let bound = Box::pin(conn.ctx.bind(conn.sandbox, &name, conn.dst)).await;
        if let Err(reason) = bound {
            let denial = match action {
                Action::PlainHttp => {
                    Denial::Http(format!("veil: egress to {name} is denied: {reason}\n"))
                }
                _ => Denial::Close,
            };
            return Box::pin(deny(conn, buf, denial, reason)).await;
        }
    }
    // Each arm is boxed, so a connection's task carries only the one it runs.
    match action {
        Action::Deny(denial) => Box::pin(deny(conn, buf, denial, decision.reason)).await,
        Action::Passthrough | Action::Splice => {
            Box::pin(splice(conn, buf, decision.rule)).await;
        }
        Action::PlainHttp => Box::pin(plain_http(conn, buf, policy, decision.rule)).await,
        Action::Intercept { name, alpn } => {
            Box::pin(intercept(conn, buf, name, alpn, policy, decision.rule)).await;
        }
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
    let upstream = match timeout(
        conn.ctx.limits.connect_timeout,
        TcpStream::connect(conn.dst),
    )
    .await
    {
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

/// Tells a denied client why, in its own protocol.
async fn deny(conn: Steered, buf: Vec<u8>, denial: Denial, reason: String) {
    let ctx = Arc::clone(&conn.ctx);
    let client = conn.conclude_with_client(Outcome::Denied(reason));
    match denial {
        Denial::Close => {}
        Denial::Http(message) => deny::respond_plain(Prefixed::new(buf, client), message).await,
        Denial::Tls {
            name,
            alpn,
            message,
        } => match ctx.leaves.server_config(&name, alpn) {
            Ok(config) => deny::respond_tls(Prefixed::new(buf, client), config, message).await,
            Err(e) => log::error!("minting a certificate for {name}: {e}"),
        },
    }
}

async fn plain_http(mut conn: Steered, buf: Vec<u8>, policy: Arc<Policy>, rule: Option<String>) {
    let Some(upstream) = conn.connect().await else {
        return;
    };
    let dst = conn.dst;
    let origin = Origin::of(&conn.event, conn.sandbox);
    let ctx = Arc::clone(&conn.ctx);
    let client = conn.conclude_with_client(Outcome::Allowed {
        rule,
        how: "relayed",
    });
    let forwarder = Forwarder {
        ctx,
        origin,
        dst,
        leg: Leg::Plain,
        policy,
    };
    if let Err(e) = http::proxy_h1(Prefixed::new(buf, client), upstream, forwarder).await {
        log::debug!("plain HTTP to {dst}: {e}");
    }
}

async fn intercept(
    mut conn: Steered,
    buf: Vec<u8>,
    name: ServerName,
    alpn: Vec<Vec<u8>>,
    policy: Arc<Policy>,
    rule: Option<String>,
) {
    let sni = match &name {
        ServerName::Dns(dns) => Some(dns.clone()),
        ServerName::Ip(_) => None,
    };
    let pki_name = match &name {
        ServerName::Dns(dns) => PkiName::try_from(dns.clone()),
        ServerName::Ip(ip) => Ok(PkiName::IpAddress((*ip).into())),
    };
    let pki_name = match pki_name {
        Ok(pki_name) => pki_name,
        Err(e) => {
            return conn.conclude(Outcome::Refused(format!(
                "unusable server name {name}: {e}"
            )))
        }
    };
    let key = pool::Key {
        sandbox: conn.sandbox,
        dst: conn.dst,
        sni: sni.clone(),
        alpn,
    };
    // A client that offers no ALPN may not speak HTTP at all: it is sniffed after its
    // handshake, so it is never handed a kept HTTP/1.1 connection before.
    let kept = match conn.upstream {
        Some(_) => None,
        None if key.alpn.is_empty() => None,
        None => conn.ctx.pool.take(&key),
    };
    let upstream = match kept {
        Some(sender) => Upstream::Kept(sender),
        None => match verified_upstream(&mut conn, &name, pki_name.clone(), &key.alpn).await {
            Ok(connected) => Upstream::New(Box::new(connected)),
            Err(outcome) => return conn.conclude(outcome),
        },
    };
    let selected = match &upstream {
        Upstream::Kept(_) => Some(&b"http/1.1"[..]),
        Upstream::New(connected) => connected.alpn.as_deref(),
    };
    let config = match conn.ctx.leaves.server_config(&name, selected) {
        Ok(config) => config,
        Err(e) => {
            return conn.conclude(Outcome::Refused(format!(
                "minting a certificate for {name}: {e}"
            )))
        }
    };
    let accepted = timeout(
        conn.ctx.limits.tls_timeout,
        TlsAcceptor::from(config).accept(Prefixed::new(buf, conn.client)),
    )
    .await;
    let Steered {
        ctx,
        dst,
        sandbox,
        event,
        accepted: since,
        ..
    } = conn;
    let client = match accepted {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => {
            let reason = format!("sandbox TLS handshake failed: {e}");
            return ctx.conclude(event, since, Outcome::Refused(reason));
        }
        Err(_) => {
            let reason = "sandbox TLS handshake timed out".to_owned();
            return ctx.conclude(event, since, Outcome::Refused(reason));
        }
    };
    let origin = Origin::of(&event, sandbox);
    ctx.conclude(
        event,
        since,
        Outcome::Allowed {
            rule,
            how: "intercepted",
        },
    );
    let reuse = pool::Reuse {
        pool: ctx.pool.clone(),
        key,
        name: pki_name,
    };
    let forwarder = Forwarder {
        ctx,
        origin,
        dst,
        leg: Leg::Tls(sni),
        policy,
    };
    let sender = match upstream {
        Upstream::Kept(sender) => sender,
        Upstream::New(connected) => match connected.alpn.as_deref() {
            Some(b"http/1.1") => match http::h1_sender(connected.stream).await {
                Ok(sender) => sender,
                Err(e) => return log::debug!("HTTP to {dst}: {e}"),
            },
            Some(b"h2") => {
                if let Err(e) = http::proxy_h2(client, connected.stream, forwarder).await {
                    log::debug!("HTTP to {dst}: {e}");
                }
                return;
            }
            None => return sniff_and_proxy(client, connected.stream, forwarder, reuse).await,
            Some(_) => return relay_scrubbed(client, connected.stream, forwarder).await,
        },
    };
    if let Err(e) = http::serve_h1(client, sender, Some(reuse), forwarder).await {
        log::debug!("HTTP to {dst}: {e}");
    }
}

/// The upstream leg of an intercepted connection.
enum Upstream {
    /// An HTTP/1.1 connection kept from an earlier connection with the same key.
    Kept(hyper::client::conn::http1::SendRequest<sigv4::ReqBody>),
    /// A new connection, verified for the server name.
    New(Box<Connected>),
}

/// Connects to `conn`'s destination and verifies it for `name` (as `pki_name`), offering
/// `alpn`; the outcome to record when that fails.
async fn verified_upstream(
    conn: &mut Steered,
    name: &ServerName,
    pki_name: PkiName<'static>,
    alpn: &[Vec<u8>],
) -> Result<Connected, Outcome> {
    let tcp = conn.try_connect().await.map_err(Outcome::Unreachable)?;
    let handshake = conn.ctx.upstream.connect(tcp, pki_name, alpn);
    match timeout(conn.ctx.limits.tls_timeout, handshake).await {
        Ok(Ok(connected)) => Ok(connected),
        Ok(Err(e)) => Err(Outcome::Refused(format!(
            "upstream TLS for {name} failed: {e}"
        ))),
        Err(_) => Err(Outcome::Refused(format!(
            "upstream TLS for {name} timed out"
        ))),
    }
}

/// Without ALPN, the decrypted bytes say whether this is HTTP/1 (served like HTTP/1.1 with
/// `reuse`) or something to relay as is.
async fn sniff_and_proxy<C, U>(mut client: C, upstream: U, forwarder: Forwarder, reuse: pool::Reuse)
where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    U: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let dst = forwarder.dst;
    let mut buf = Vec::new();
    match classify(&mut client, &mut buf).await {
        Ok(Protocol::Http(_)) => {
            let client = Prefixed::new(buf, client);
            let served = match http::h1_sender(upstream).await {
                Ok(sender) => http::serve_h1(client, sender, Some(reuse), forwarder).await,
                Err(e) => Err(e),
            };
            if let Err(e) = served {
                log::debug!("HTTP to {dst}: {e}");
            }
        }
        Ok(_) => relay_scrubbed(Prefixed::new(buf, client), upstream, forwarder).await,
        Err(e) => log::debug!("TLS to {dst} carried unusable bytes: {e}"),
    }
}

/// Relays TLS that carries something other than HTTP, scrubbing what comes back.
async fn relay_scrubbed<C, U>(client: C, upstream: U, forwarder: Forwarder)
where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    U: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let scrubber = match forwarder.ctx.engine.snapshot().scrubber() {
        Ok(scrubber) => scrubber,
        Err(why) => return log::warn!("not relaying to {}: {why}", forwarder.dst),
    };
    let host = match &forwarder.leg {
        Leg::Tls(Some(sni)) => sni.clone(),
        _ => forwarder.dst.ip().to_string(),
    };
    let report = Arc::new(report::Report::new(
        forwarder.ctx,
        forwarder.origin,
        host,
        forwarder.dst,
    ));
    upgraded::relay(
        client,
        upstream,
        upgraded::Downstream::Bytes,
        scrubber,
        report,
    )
    .await;
}

async fn splice(mut conn: Steered, buf: Vec<u8>, rule: Option<String>) {
    let Some(upstream) = conn.connect().await else {
        return;
    };
    let dst = conn.dst;
    let client = conn.conclude_with_client(Outcome::Allowed {
        rule,
        how: "relayed",
    });
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
    /// Records the connection's outcome and drops it.
    fn conclude(self, outcome: Outcome) {
        drop(self.conclude_with_client(outcome));
    }

    /// Records the connection's outcome and hands back the client's stream.
    fn conclude_with_client(self, outcome: Outcome) -> TcpStream {
        let Self {
            ctx,
            client,
            event,
            accepted,
            ..
        } = self;
        ctx.conclude(event, accepted, outcome);
        client
    }

    /// Connects to the original destination, or records why not (and the connection is
    /// over).
    async fn connect(&mut self) -> Option<TcpStream> {
        match self.try_connect().await {
            Ok(stream) => Some(stream),
            Err(reason) => {
                self.ctx.conclude(
                    self.event.clone(),
                    self.accepted,
                    Outcome::Unreachable(reason),
                );
                None
            }
        }
    }

    /// Connects to the original destination, or says why it could not.
    async fn try_connect(&mut self) -> Result<TcpStream, String> {
        if let Some(upstream) = self.upstream.take() {
            return Ok(upstream);
        }
        match timeout(
            self.ctx.limits.connect_timeout,
            TcpStream::connect(self.dst),
        )
        .await
        {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                Ok(stream)
            }
            Ok(Err(e)) => Err(format!("upstream connect failed: {e}")),
            Err(_) => Err("upstream connect timed out".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests;
