//! Placeholders in request bodies (form fields, JSON string values) for secrets with a body
//! slot: [`rewrite`] decides, per request, whether the body passes untouched, is read whole
//! (named fields or pointers, up to the limit; or a known length up to 64 KiB: checked before
//! anything is sent, `Content-Length` corrected) or streams through a [`RewriteBody`] (no length promised;
//! each replacement durably recorded before the bytes that carry it go on, a malformed body
//! cut off and answered with 400).

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{ready, Context as TaskContext, Poll},
};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::{
    body::{Frame, Incoming, SizeHint},
    header, Request, Response, StatusCode,
};
use veil_core::{
    inject::{
        body::{BodyKind, BodyRewriter, Chunk},
        Engine,
    },
    secrets::SecretValue,
};
use zeroize::Zeroizing;

use super::{
    http::{answer, Body},
    inject_request::{record, Destination, Head, Origin},
    Context,
};
use crate::audit::{Event, LimitExceeded, RequestProtocol};

/// Bodies of known length up to this size (or the limit, if lower) are read whole for any
/// body slot, so their `Content-Length` can be corrected; longer ones stream, so that many
/// requests at once cannot make veil hold much.
const SHORT_BODY: usize = 64 * 1024;

/// How much more of a body refused for its size veil reads (and drops) before answering.
const DRAIN: usize = 1024 * 1024;

/// A request body on its way to the SigV4 re-signer and upstream.
pub type ReqBody = BoxBody<Bytes, BodyFailure>;

/// Why a request body could not be read, or was cut off.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BodyFailure(String);

/// Why a streamed body was cut off, for the answer to the client.
pub type Failure = Arc<Mutex<Option<String>>>;

/// A request whose body may be rewritten, or the answer that refuses it.
pub async fn rewrite(
    ctx: &Arc<Context>,
    engine: Option<&Arc<Engine<SecretValue>>>,
    origin: &Origin,
    to: &Destination<'_>,
    head: Head<'_>,
    req: Request<Incoming>,
    failure: &Failure,
) -> Result<Request<ReqBody>, Response<Body>> {
    let kind = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| BodyKind::of_content_type(v.as_bytes()));
    let rewriter = match (engine, kind) {
        (Some(engine), Some(kind)) => engine.body_rewriter(kind, head.judged),
        _ => None,
    };
    let Some(mut rewriter) = rewriter else {
        record_head(ctx, origin, to, head.events).await?;
        return Ok(req.map(|b| b.map_err(|e| BodyFailure(e.to_string())).boxed()));
    };
    let encoded = req
        .headers()
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .any(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    if encoded {
        drain(&mut req.into_body()).await;
        refuse(
            ctx,
            origin,
            to,
            "request_body_encoding",
            "a compressed request body for a secret's body slot".to_owned(),
        );
        return Err(answer(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "veil: a secret's body slot cannot be filled in a compressed request body; send it \
             uncompressed\n"
                .to_owned(),
        ));
    }
    let limit = ctx.limits.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let short = limit.min(SHORT_BODY) as u64;
    let whole = rewriter.needs_whole_body() || declared.is_some_and(|n| n <= short);
    if !whole {
        record_head(ctx, origin, to, head.events).await?;
        let (mut parts, body) = req.into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        let streamed = RewriteBody {
            inner: body,
            rewriter,
            ctx: Arc::clone(ctx),
            origin: origin.clone(),
            host: to.host.to_owned(),
            addr: to.addr,
            protocol: to.protocol,
            pending: None,
            failure: Arc::clone(failure),
            trailers: None,
            done: false,
        };
        return Ok(Request::from_parts(parts, streamed.boxed()));
    }
    let (mut parts, mut body) = req.into_parts();
    if declared.is_some_and(|n| n > limit as u64) {
        drain(&mut body).await;
        return Err(too_large(ctx, origin, to, limit));
    }
    // Sized up front (declared is within the limit here): each time it grew, the copy it
    // left behind would not be zeroized.
    let mut out: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::with_capacity(
        declared.map_or(0, |n| n as usize).saturating_add(1024),
    ));
    // The head's events and the body's go to the log together: one commit per request.
    let mut events = head.events;
    let mut read = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            answer(
                StatusCode::BAD_REQUEST,
                format!("veil: the request body could not be read: {e}\n"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        read = read.saturating_add(data.len());
        if read > limit {
            drain(&mut body).await;
            return Err(too_large(ctx, origin, to, limit));
        }
        let chunk = match rewriter.feed(&data) {
            Ok(chunk) => chunk,
            Err(e) => {
                drain(&mut body).await;
                return Err(malformed(to, &e));
            }
        };
        take(chunk, &mut out, &mut events);
    }
    let chunk = rewriter.finish().map_err(|e| malformed(to, &e))?;
    take(chunk, &mut out, &mut events);
    if let Err(e) = record(ctx, origin, to, events).await {
        log::error!("not forwarding a request to {}: {e}", to.host);
        return Err(answer(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("veil: {e}\n"),
        ));
    }
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, header::HeaderValue::from(out.len()));
    let bytes = Bytes::from(std::mem::take(&mut *out));
    Ok(Request::from_parts(
        parts,
        Full::new(bytes).map_err(|never| match never {}).boxed(),
    ))
}

/// Records the head's `events` (durably, for replacements) before a request whose body is
/// not read whole leaves; the answer refusing it when they cannot be.
async fn record_head(
    ctx: &Context,
    origin: &Origin,
    to: &Destination<'_>,
    head: Vec<veil_core::inject::Event>,
) -> Result<(), Response<Body>> {
    record(ctx, origin, to, head).await.map_err(|e| {
        log::error!("not forwarding a request to {}: {e}", to.host);
        answer(StatusCode::SERVICE_UNAVAILABLE, format!("veil: {e}\n"))
    })
}

/// Reads and drops up to [`DRAIN`] more bytes of a refused body, so that the client, still
/// sending, reads the answer rather than a reset.
async fn drain(body: &mut Incoming) {
    let mut dropped = 0usize;
    while dropped < DRAIN {
        match body.frame().await {
            Some(Ok(frame)) => {
                dropped = dropped.saturating_add(frame.data_ref().map_or(0, Bytes::len));
            }
            _ => return,
        }
    }
}

/// Appends a chunk's bytes and events.
fn take(chunk: Chunk, out: &mut Zeroizing<Vec<u8>>, events: &mut Vec<veil_core::inject::Event>) {
    out.extend_from_slice(&chunk.bytes);
    events.extend(chunk.events);
}

/// The 400 for a body that does not parse.
fn malformed(to: &Destination<'_>, e: &veil_core::inject::body::BodyError) -> Response<Body> {
    log::info!("refusing a request to {}: {e}", to.host);
    answer(StatusCode::BAD_REQUEST, format!("veil: {e}\n"))
}

/// The 413 (and its record) for a body past the limit.
fn too_large(ctx: &Context, origin: &Origin, to: &Destination<'_>, limit: usize) -> Response<Body> {
    refuse(
        ctx,
        origin,
        to,
        "max_request_body_bytes",
        format!("a request body over {limit} bytes for a secret's named body fields"),
    );
    answer(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "veil: a request body for a secret's named fields or pointers may hold at most \
             {limit} bytes\n"
        ),
    )
}

/// Records a refused body.
fn refuse(ctx: &Context, origin: &Origin, to: &Destination<'_>, limit: &str, detail: String) {
    log::info!(
        "refusing a request of {} to {}: {detail}",
        origin.comm,
        to.host
    );
    ctx.audit.record(Event::LimitExceeded(LimitExceeded {
        limit: limit.to_owned(),
        detail,
        host: to.host.to_owned(),
        destination: to.addr,
        sandbox: origin.sandbox.clone(),
        cgroup_id: origin.cgroup_id,
        pid: origin.pid,
        comm: origin.comm.clone(),
    }));
}

/// A streamed request body with placeholders rewritten.
pub struct RewriteBody {
    inner: Incoming,
    rewriter: BodyRewriter<SecretValue>,
    ctx: Arc<Context>,
    origin: Origin,
    host: String,
    addr: std::net::SocketAddr,
    protocol: RequestProtocol,
    /// Bytes waiting for their records to be durable.
    pending: Option<Pending>,
    failure: Failure,
    /// The request's trailers, sent after everything held.
    trailers: Option<Frame<Bytes>>,
    done: bool,
}

/// Rewritten bytes and the recording they wait for (a task of its own, so the body stays
/// `Sync`).
struct Pending {
    bytes: Zeroizing<Vec<u8>>,
    recorded: tokio::task::JoinHandle<Result<(), String>>,
}

impl RewriteBody {
    /// Turns a chunk into pending bytes whose records are being written.
    fn pend(&mut self, chunk: Chunk) -> Pending {
        let (ctx, origin) = (Arc::clone(&self.ctx), self.origin.clone());
        let (host, addr, protocol) = (self.host.clone(), self.addr, self.protocol);
        let events = chunk.events;
        Pending {
            bytes: chunk.bytes,
            recorded: tokio::spawn(async move {
                let to = Destination {
                    host: &host,
                    verified: true,
                    addr,
                    protocol,
                };
                record(&ctx, &origin, &to, events)
                    .await
                    .map_err(|e| e.to_string())
            }),
        }
    }

    /// Cuts the body off for `why`.
    fn fail(&mut self, why: String) -> Poll<Option<Result<Frame<Bytes>, BodyFailure>>> {
        self.done = true;
        log::info!("cutting off a request body to {}: {why}", self.host);
        if let Ok(mut failure) = self.failure.lock() {
            *failure = Some(why.clone());
        }
        Poll::Ready(Some(Err(BodyFailure(why))))
    }
}

impl hyper::body::Body for RewriteBody {
    type Data = Bytes;
    type Error = BodyFailure;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        loop {
            if let Some(pending) = &mut this.pending {
                let recorded = ready!(Pin::new(&mut pending.recorded).poll(cx))
                    .unwrap_or_else(|e| Err(e.to_string()));
                let bytes = std::mem::take(&mut pending.bytes);
                this.pending = None;
                if let Err(e) = recorded {
                    return this.fail(format!("the audit log cannot record a secret's use: {e}"));
                }
                if !bytes.is_empty() {
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(bytes.to_vec())))));
                }
                continue;
            }
            if this.done {
                return Poll::Ready(this.trailers.take().map(Ok));
            }
            let chunk = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => this.rewriter.feed(&data),
                    // Trailers pass on as they are, after everything held.
                    Err(frame) => {
                        let held = this.rewriter.finish();
                        this.done = true;
                        this.trailers = Some(frame);
                        held
                    }
                },
                Some(Err(e)) => return this.fail(format!("reading the body failed: {e}")),
                None => {
                    this.done = true;
                    this.rewriter.finish()
                }
            };
            match chunk {
                Ok(chunk) if chunk.events.is_empty() => {
                    if !chunk.bytes.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(
                            chunk.bytes.to_vec(),
                        )))));
                    }
                }
                Ok(chunk) => this.pending = Some(this.pend(chunk)),
                Err(e) => return this.fail(e.to_string()),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.pending.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
