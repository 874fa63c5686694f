//! Proxying HTTP between the sandbox and the upstream: hyper on both sides, the same protocol
//! on both (HTTP/1.1 or HTTP/2, whatever upstream selected), bodies streamed both ways.
//!
//! Every request passes [`Forwarder::forward`]: strict authority (every authority it names,
//! target and Host, must be the verified host, named once: 421 otherwise, so fronting cannot
//! redirect a secret; upstream gets the verified authority only), the per-request
//! egress check for plain HTTP, hop-by-hop headers, placeholder replacement
//! ([`super::inject_request`]), SigV4 re-signing on the request as forwarded
//! ([`super::sigv4`]), and protocol switches (WebSocket) after the upgrade request went
//! through the request path.

use std::{
    net::SocketAddr,
    sync::{atomic::Ordering, Arc, Weak},
};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::{
    body::Incoming,
    client::conn::{http1 as client_h1, http2 as client_h2},
    header,
    server::conn::{http1 as server_h1, http2 as server_h2},
    service::service_fn,
    Request, Response, StatusCode, Uri, Version,
};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::Mutex,
};

use super::{
    headers::{is_upgrade, strip_hop_by_hop},
    inject_body,
    inject_request::{rewrite_head, Destination, Head, Judged, Origin},
    sigv4::{self, Failure, ReqBody},
};
use veil_core::{
    authority::{self, Authority, AuthorityError},
    policy::{Policy, Unproven},
};

use super::{
    decode,
    deliver::deliver,
    idle::Idle,
    pool::Reuse,
    report::Report,
    scrub_body::BoxError,
    upgraded::{self, Downstream},
    Context,
};
use crate::audit::{Event, LimitExceeded, RequestProtocol};

/// A response body: streamed from upstream, or made by veil.
pub type Body = BoxBody<Bytes, BoxError>;

/// What a forwarded request needs to know about its connection.
pub struct Forwarder {
    /// The data path's services (placeholder engine, audit log, metrics).
    pub ctx: Arc<Context>,
    /// Who opened the connection.
    pub origin: Origin,
    /// The original destination.
    pub dst: SocketAddr,
    /// How the upstream leg is secured.
    pub leg: Leg,
    /// The egress policy in force when the connection was accepted.
    pub policy: Arc<Policy>,
}

/// The upstream leg of a connection.
pub enum Leg {
    /// TLS verified for this SNI (`None`: verified for the dialled address).
    Tls(Option<String>),
    /// Plain HTTP: nothing is verified, every request is checked against the policy.
    Plain,
}

/// Serves HTTP/1.1 from `client` and forwards each request over `upstream`.
pub async fn proxy_h1<C, U>(
    client: C,
    upstream: U,
    forwarder: Forwarder,
) -> Result<(), hyper::Error>
where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    U: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let sender = h1_sender(upstream).await?;
    serve_h1(client, sender, None, forwarder).await
}

/// Opens HTTP/1.1 over `upstream`: the sender, with the connection driven by a task of its
/// own (it ends when the sender is dropped or upstream closes).
pub async fn h1_sender<U>(upstream: U) -> Result<client_h1::SendRequest<ReqBody>, hyper::Error>
where
    U: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = client_h1::Builder::new()
        .handshake::<_, ReqBody>(TokioIo::new(upstream))
        .await?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            log::debug!("upstream HTTP/1.1 connection: {e}");
        }
    });
    Ok(sender)
}

/// Serves HTTP/1.1 from `client` and forwards each request with `sender`. With `reuse`, the
/// sender is parked in the pool while `client` is quiet and idle upstream, replaced from the
/// pool or by a new connection when it was parked or found closed before a request left, and
/// parked once `client`'s connection is over (unless something still holds it: an upgrade).
pub async fn serve_h1<C>(
    client: C,
    sender: client_h1::SendRequest<ReqBody>,
    reuse: Option<Reuse>,
    forwarder: Forwarder,
) -> Result<(), hyper::Error>
where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = forwarder.ctx.limits;
    let park_after = reuse.as_ref().map(|reuse| reuse.pool.park_after());
    let sender = Sender::H1 {
        held: Mutex::new(Some(sender)),
        reuse: reuse.map(Box::new),
    };
    let forwarder = Arc::new((forwarder, sender));
    let shared = Arc::clone(&forwarder);
    let parker = Arc::downgrade(&forwarder);
    let service = service_fn(move |req| {
        let forwarder = Arc::clone(&forwarder);
        async move { Ok::<_, hyper::Error>(forwarder.0.forward(req, &forwarder.1).await) }
    });
    let mut client = Idle::new(client, limits.idle_timeout);
    if let Some(after) = park_after {
        client = client.when_quiet(after, Box::new(move || park(&parker)));
    }
    let idled = client.fired();
    let served = server_h1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.head_timeout)
        .max_header_size(limits.max_header_bytes)
        .serve_connection(TokioIo::new(client), service)
        .with_upgrades()
        .await;
    shared
        .0
        .record_limit(served.as_ref().err(), idled.load(Ordering::Relaxed));
    if let (
        Ok(()),
        Ok((
            _,
            Sender::H1 {
                held,
                reuse: Some(reuse),
            },
        )),
    ) = (&served, Arc::try_unwrap(shared))
    {
        if let Some(sender) = held.into_inner() {
            reuse.park(sender);
        }
    }
    served
}

/// Parks the upstream connection of a quiet sandbox connection, if it is idle; whether there
/// is nothing more to do (parked, none held, closed, or the connection is over).
fn park(shared: &Weak<(Forwarder, Sender)>) -> bool {
    let Some(shared) = shared.upgrade() else {
        return true;
    };
    let Sender::H1 {
        held,
        reuse: Some(reuse),
    } = &shared.1
    else {
        return true;
    };
    // Held while a request is being handed over: that connection is busy.
    let Ok(mut held) = held.try_lock() else {
        return false;
    };
    match held.take() {
        None => true,
        Some(sender) if sender.is_closed() => true,
        Some(sender) if sender.is_ready() => {
            reuse.park(sender);
            true
        }
        // A response still on its way: tried again later.
        Some(sender) => {
            *held = Some(sender);
            false
        }
    }
}

/// Serves HTTP/2 from `client` and forwards each stream over `upstream`.
pub async fn proxy_h2<C, U>(
    client: C,
    upstream: U,
    forwarder: Forwarder,
) -> Result<(), hyper::Error>
where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    U: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = client_h2::Builder::new(TokioExecutor::new())
        .handshake::<_, ReqBody>(TokioIo::new(upstream))
        .await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            log::debug!("upstream HTTP/2 connection: {e}");
        }
    });
    let limits = forwarder.ctx.limits;
    let forwarder = Arc::new((forwarder, Sender::H2(sender)));
    let shared = Arc::clone(&forwarder);
    let service = service_fn(move |req| {
        let forwarder = Arc::clone(&forwarder);
        async move { Ok::<_, hyper::Error>(forwarder.0.forward(req, &forwarder.1).await) }
    });
    let client = Idle::new(client, limits.idle_timeout);
    let idled = client.fired();
    let served = server_h2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .max_concurrent_streams(1000)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .serve_connection(TokioIo::new(client), service)
        .await;
    shared
        .0
        .record_limit(served.as_ref().err(), idled.load(Ordering::Relaxed));
    served
}

impl Forwarder {
    /// Records the end of a connection that went past a limit: hyper's `error`, or the idle
    /// timeout having `idled` (hyper ends an idle connection's failed read quietly).
    fn record_limit(&self, error: Option<&hyper::Error>, idled: bool) {
        let limits = self.ctx.limits;
        let (limit, detail) = if idled {
            (
                "idle_timeout",
                format!("nothing moved for {:?}", limits.idle_timeout),
            )
        } else if error.is_some_and(|e| e.is_timeout()) {
            (
                "request_head_timeout",
                format!("no whole request head within {:?}", limits.head_timeout),
            )
        } else if error.is_some_and(|e| e.is_parse_too_large()) {
            (
                "max_header_bytes",
                format!("a request head over {} bytes", limits.max_header_bytes),
            )
        } else {
            return;
        };
        log::info!(
            "closing a connection of {} to {}: {detail}",
            self.origin.comm,
            self.dst
        );
        self.ctx.audit.record(Event::LimitExceeded(LimitExceeded {
            limit: limit.to_owned(),
            detail,
            host: match &self.leg {
                Leg::Tls(Some(sni)) => sni.clone(),
                _ => self.dst.ip().to_string(),
            },
            destination: self.dst,
            sandbox: self.origin.sandbox.clone(),
            cgroup_id: self.origin.cgroup_id,
            pid: self.origin.pid,
            comm: self.origin.comm.clone(),
        }));
    }

    /// Checks, rewrites and forwards one request; always answers something.
    async fn forward(&self, mut req: Request<Incoming>, sender: &Sender) -> Response<Body> {
        let version = sender.version();
        let verified_ip = self.dst.ip().to_string();
        let verified = match &self.leg {
            Leg::Tls(sni) => Some(sni.as_deref().unwrap_or(&verified_ip)),
            Leg::Plain => None,
        };
        let named = {
            let hosts: Vec<&[u8]> = req
                .headers()
                .get_all(header::HOST)
                .iter()
                .map(|v| v.as_bytes())
                .collect();
            authority::check(req.uri().authority().map(|a| a.as_str()), &hosts, verified)
        };
        let named = match named {
            Ok(named) => named,
            Err(e @ AuthorityError::Missing) => {
                return answer(StatusCode::BAD_REQUEST, format!("veil: {e}\n"));
            }
            Err(e) => {
                log::info!("misdirected request to {}: {e}", self.dst);
                return answer(StatusCode::MISDIRECTED_REQUEST, format!("veil: {e}\n"));
            }
        };
        let host = named.host.clone();
        if let Leg::Plain = self.leg {
            // Each request names its own host, which nothing proves: it is judged and bound
            // to the dialled address like the first.
            let refused = match self.policy.decide_unproven(&host, self.dst) {
                Unproven::Decided(d) if d.allowed => None,
                Unproven::Decided(d) => Some(d.reason),
                Unproven::IfResolves(_) => {
                    let sandbox = self.origin.sandbox_id;
                    self.ctx.bind(sandbox, &host, self.dst).await.err()
                }
            };
            if let Some(reason) = refused {
                log::info!("denying plain HTTP request for {host}: {reason}");
                return answer(
                    StatusCode::FORBIDDEN,
                    format!("veil: egress to {host} is denied: {reason}\n"),
                );
            }
        }
        let upgrade = version == Version::HTTP_11 && is_upgrade(req.headers());
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        strip_hop_by_hop(req.headers_mut(), upgrade);
        // Only codings veil can scan as they stream are asked for (see `decode`).
        if let Some(accepted) = req.headers().get(header::ACCEPT_ENCODING) {
            match decode::streamable_accept_encoding(accepted.as_bytes())
                .and_then(|v| header::HeaderValue::from_str(&v).ok())
            {
                Some(value) => {
                    req.headers_mut().insert(header::ACCEPT_ENCODING, value);
                }
                None => {
                    req.headers_mut().remove(header::ACCEPT_ENCODING);
                }
            }
        }
        let downstream = if upgrade && is_websocket(req.headers()) {
            // Frames are scrubbed one by one, so no extension may change them (compression).
            req.headers_mut().remove(header::SEC_WEBSOCKET_EXTENSIONS);
            Downstream::WebSocket
        } else {
            Downstream::Bytes
        };
        let destination = match &self.leg {
            Leg::Tls(_) => Destination {
                host: &host,
                verified: true,
                addr: self.dst,
                protocol: match (upgrade, version) {
                    (true, _) => RequestProtocol::WebSocket,
                    (false, Version::HTTP_2) => RequestProtocol::H2,
                    (false, _) => RequestProtocol::Http1,
                },
            },
            Leg::Plain => Destination {
                host: &host,
                verified: false,
                addr: self.dst,
                protocol: RequestProtocol::PlainHttp,
            },
        };
        // One snapshot of the secrets for the request and its response.
        let live = self.ctx.engine.snapshot();
        let engine = live.engine().map(|e| &**e);
        // Scopes are judged on the request as the sandbox sent it.
        let method = req.method().as_str().to_owned();
        let sent_target = req
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        let judged = Judged::new(destination.target(), &method, &sent_target);
        let head = match rewrite_head(engine, &mut req, &judged) {
            Ok(events) => events,
            Err(e) => {
                log::error!("not forwarding a request to {}: {e}", destination.host);
                return answer(StatusCode::BAD_REQUEST, format!("veil: {e}\n"));
            }
        };
        if let Err(message) = set_target(&mut req, version, &named) {
            return answer(StatusCode::BAD_REQUEST, message);
        }
        let failure = Failure::default();
        let req = match inject_body::rewrite(
            &self.ctx,
            live.engine(),
            &self.origin,
            &destination,
            Head {
                judged: &judged,
                events: head,
            },
            req,
            &failure,
        )
        .await
        {
            Ok(req) => req,
            Err(refused) => return refused,
        };
        // AWS requests signed with an aws secret's placeholder are signed again, as forwarded
        // (body slots filled first: the signature covers the body as sent).
        let resigned = sigv4::resign(
            &self.ctx,
            live.aws(),
            &self.origin,
            &destination,
            req,
            &failure,
        );
        let req = match resigned.await {
            Ok(req) => req,
            Err(refused) => return refused,
        };
        let has_body = req.method() != hyper::Method::HEAD;
        let mut response = match sender.send(&self.ctx, req).await {
            Ok(r) => r,
            Err(e) => {
                if let Some(why) = failure.lock().ok().and_then(|mut f| f.take()) {
                    return answer(
                        StatusCode::BAD_REQUEST,
                        format!("veil: the request body was cut off: {why}\n"),
                    );
                }
                log::info!("upstream {} failed a request: {e}", self.dst);
                return answer(
                    StatusCode::BAD_GATEWAY,
                    format!("veil: the upstream failed: {e}\n"),
                );
            }
        };
        let scrubber = match live.scrubber() {
            Ok(scrubber) => scrubber,
            Err(why) => {
                return answer(
                    StatusCode::BAD_GATEWAY,
                    format!("veil: no response is delivered while veil cannot scan it: {why}\n"),
                )
            }
        };
        let report = Arc::new(Report::new(
            Arc::clone(&self.ctx),
            self.origin.clone(),
            host,
            self.dst,
        ));
        let switched = response.status() == StatusCode::SWITCHING_PROTOCOLS;
        if let (true, Some(client_upgrade)) = (switched, client_upgrade) {
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            let (scrubber, report) = (Arc::clone(&scrubber), Arc::clone(&report));
            tokio::spawn(async move {
                match tokio::try_join!(client_upgrade, upstream_upgrade) {
                    Ok((client, upstream)) => {
                        let (client, upstream) = (TokioIo::new(client), TokioIo::new(upstream));
                        upgraded::relay(client, upstream, downstream, scrubber, report).await;
                    }
                    Err(e) => log::debug!("protocol switch failed: {e}"),
                }
            });
        }
        strip_hop_by_hop(response.headers_mut(), switched);
        deliver(response, scrubber, report, has_body).await
    }
}

/// The upstream connection's request sender.
enum Sender {
    /// HTTP/1.1: one request at a time, over the connection held (none while it is parked),
    /// and how to get another one (`None`: the one held is all there is; it is never parked).
    H1 {
        held: Mutex<Option<client_h1::SendRequest<ReqBody>>>,
        reuse: Option<Box<Reuse>>,
    },
    /// HTTP/2: streams in parallel.
    H2(client_h2::SendRequest<ReqBody>),
}

/// Why a request could not be sent upstream.
#[derive(Debug, thiserror::Error)]
enum SendError {
    /// hyper's error on the connection.
    #[error("{0}")]
    Upstream(#[from] hyper::Error),
    /// No connection was held or kept, and a new one failed.
    #[error("no upstream connection was open, and a new one failed: {0}")]
    Dial(String),
    /// The connection was closed before the request left, and a new one failed.
    #[error("the connection closed, and a new one failed: {0}")]
    Redial(String),
    /// No connection is held and none can be had (cannot happen: only a connection with a way
    /// to get another is ever parked).
    #[error("no upstream connection is held")]
    NoneHeld,
}

impl Sender {
    fn version(&self) -> Version {
        match self {
            Self::H1 { .. } => Version::HTTP_11,
            Self::H2(_) => Version::HTTP_2,
        }
    }

    async fn send(
        &self,
        ctx: &Context,
        req: Request<ReqBody>,
    ) -> Result<Response<Incoming>, SendError> {
        let (held, reuse) = match self {
            Self::H1 { held, reuse } => (held, reuse.as_deref()),
            Self::H2(sender) => {
                let mut sender = sender.clone();
                sender.ready().await?;
                return Ok(sender.send_request(req).await?);
            }
        };
        let pending = {
            let mut held = held.lock().await;
            let mut sender = match (held.take(), reuse) {
                (Some(sender), _) => sender,
                // Parked while the sandbox connection was quiet: one kept for the same key,
                // or a new one verified like the first.
                (None, Some(reuse)) => match reuse.take() {
                    Some(sender) => sender,
                    None => reuse.dial(ctx).await.map_err(SendError::Dial)?,
                },
                (None, None) => return Err(SendError::NoneHeld),
            };
            let pending = match sender.ready().await {
                Ok(()) => Ok(sender.try_send_request(req)),
                Err(e) => Err((e, req)),
            };
            *held = Some(sender);
            pending
        };
        let (unsent, reuse) = match (pending, reuse) {
            (Ok(pending), reuse) => match pending.await {
                Ok(response) => return Ok(response),
                Err(mut e) => match (e.take_message(), reuse) {
                    (Some(req), Some(reuse)) => (req, reuse),
                    _ => return Err(e.into_error().into()),
                },
            },
            (Err((_, req)), Some(reuse)) => (req, reuse),
            (Err((e, _)), None) => return Err(e.into()),
        };
        // Nothing of the request left: the connection was closed (upstream ended it while it
        // sat idle). One new connection, verified like the first, carries it instead.
        let mut fresh = reuse.dial(ctx).await.map_err(SendError::Redial)?;
        let pending = fresh.send_request(unsent);
        *held.lock().await = Some(fresh);
        Ok(pending.await?)
    }
}

/// Puts the request target in the form the upstream connection needs, naming `authority`
/// (checked, and for TLS the verified host) and nothing else: origin-form with one Host header
/// for HTTP/1.1, absolute form without a Host header for HTTP/2.
fn set_target(
    req: &mut Request<Incoming>,
    version: Version,
    authority: &Authority,
) -> Result<(), String> {
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    req.headers_mut().remove(header::HOST);
    let uri = if version == Version::HTTP_2 {
        format!("https://{authority}{path}")
    } else {
        let value = authority
            .to_string()
            .parse()
            .map_err(|_| format!("veil: bad host {authority}\n"))?;
        req.headers_mut().insert(header::HOST, value);
        path
    };
    *req.uri_mut() = uri
        .parse::<Uri>()
        .map_err(|e| format!("veil: bad request target: {e}\n"))?;
    Ok(())
}

/// Whether an upgrade request asks for WebSocket.
fn is_websocket(headers: &hyper::HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("websocket"))
        })
}

/// A response veil makes itself.
pub fn answer(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
