//! AWS SigV4 re-signing on a request about to be forwarded (after placeholder injection and
//! with its final target): a request signed with an aws secret's placeholder key id (the
//! `Authorization: AWS4-HMAC-SHA256` header or a presigned URL) to a verified host in the
//! secret's scope is signed again with the real key ([`veil_core::sigv4`]); one veil cannot
//! re-sign faithfully is answered 400 (413 when its body is too long to hash) and never
//! forwarded. Out of scope, or not over verified TLS, it goes on as it is (it fails at AWS) and
//! the placeholder left alone is recorded, as for other secrets.
//!
//! `aws-chunked` bodies go through a [`ResignBody`]: each chunk is re-signed as it completes;
//! a chunk that cannot be re-signed fails the body, which aborts the upstream request (a body
//! cut short, never a complete one with the sandbox's signatures). What bodies and chunks hold
//! is drawn from one process-wide budget ([`held`]); past it, 503.

pub mod held;

use std::{
    pin::Pin,
    sync::{Arc, Mutex},
    task::{ready, Context as TaskContext, Poll},
    time::{SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, LengthLimitError, Limited};
use hyper::{
    body::{Body, Frame, SizeHint},
    header::{self, HeaderValue},
    http::uri::PathAndQuery,
    Request, Response, StatusCode, Uri,
};
use ring::digest;
use veil_core::{
    inject::Reason,
    secrets::aws::{AwsEntry, AwsTable},
    sigv4::{
        self, ChunkResigner, Resigned, SigV4Error, SignedRequest, MAX_CHUNK_LEN,
        SESSION_TOKEN_HEADER,
    },
};

use super::{
    http::{answer, Body as ResponseBody},
    inject_request::{Destination, Origin},
    scrub_body::BoxError,
    Context,
};
use crate::audit::{Event, Injection, LimitExceeded};
use held::{Held, BUDGET};

/// Where a re-signing is recorded (the `header` field of its audit records).
pub const SLOT: &str = "sigv4";

/// Longest body veil reads whole to hash, for requests without `x-amz-content-sha256`
/// (STS and other query-style APIs send small forms).
pub const MAX_HASHED_BODY: usize = 8 << 20;

/// A request body on its way upstream.
pub type ReqBody = BoxBody<Bytes, BoxError>;

/// Why a streamed body was cut off, for the answer to the client.
pub type Failure = Arc<Mutex<Option<String>>>;

/// Re-signs `req` if it is signed with an aws secret's placeholder; otherwise hands it on
/// unchanged. `Err` is the answer that refuses it. `failure` learns why a re-signed
/// `aws-chunked` body was cut off.
pub async fn resign<B>(
    ctx: &Arc<Context>,
    table: &AwsTable,
    origin: &Origin,
    to: &Destination<'_>,
    req: Request<B>,
    failure: &Failure,
) -> Result<Request<ReqBody>, Response<ResponseBody>>
where
    B: Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    if table.is_empty() {
        return Ok(req.map(box_body));
    }
    let (mut parts, body) = req.into_parts();
    let (entry, needs_hash) = {
        let target = parts.uri.path_and_query().map_or("/", PathAndQuery::as_str);
        let host = parts.uri.authority().map(|a| a.as_str().to_owned());
        let headers = header_list(&parts.headers, host.as_deref());
        let request = sigv4::Request {
            method: parts.method.as_str(),
            target,
            headers: &headers,
        };
        match SignedRequest::parse(request) {
            Ok(signed) => match table.get(signed.key_id()) {
                Some(entry) => (entry, signed.needs_body_hash()),
                None => return Ok(Request::from_parts(parts, box_body(body))),
            },
            // Nothing signed: nothing to re-sign, and the placeholder alone is worth nothing.
            Err(SigV4Error::NotSigned) => return Ok(Request::from_parts(parts, box_body(body))),
            Err(e) => match named(table, &parts.headers, target) {
                Some(entry) => return Err(refuse(ctx, origin, to, entry, &e.to_string())),
                None => return Ok(Request::from_parts(parts, box_body(body))),
            },
        }
    };
    if !to.verified || !entry.in_scope(to.host) {
        let reason = if to.verified {
            Reason::OutOfScope
        } else {
            Reason::NotTls
        };
        log::info!(
            "left {}'s AWS signature for {} ({})",
            entry.name,
            to.host,
            reason.as_str()
        );
        let record = injection(origin, to, entry, Some(reason.as_str().to_owned()));
        ctx.audit.record(Event::PlaceholderNotInjected(record));
        return Ok(Request::from_parts(parts, box_body(body)));
    }
    // The most the body can make veil hold: all of it (to hash) or one chunk.
    let holds = body
        .size_hint()
        .upper()
        .map_or(MAX_CHUNK_LEN, |n| n.min(MAX_CHUNK_LEN));
    let holds = usize::try_from(holds).unwrap_or(usize::MAX);
    let (body, hash) = if needs_hash {
        let holds = holds.min(MAX_HASHED_BODY);
        let Some(held) = BUDGET.reserve(holds) else {
            return Err(over_budget(ctx, origin, to, holds));
        };
        let read = read_to_hash(body).await;
        drop(held);
        match read {
            Ok(bytes) => {
                let hash = digest::digest(&digest::SHA256, &bytes);
                let mut sha = [0; 32];
                sha.copy_from_slice(hash.as_ref());
                (box_body(Full::new(bytes)), Some(sha))
            }
            Err(Unhashed::TooLong) => {
                let why = format!(
                    "the body is longer than the {MAX_HASHED_BODY} bytes veil hashes for a \
                     request without x-amz-content-sha256"
                );
                record_refusal(ctx, origin, to, entry, &why);
                return Err(answer(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("veil: cannot re-sign this AWS request: {why}\n"),
                ));
            }
            Err(Unhashed::Failed(e)) => {
                return Err(answer(
                    StatusCode::BAD_REQUEST,
                    format!("veil: the request body failed: {e}\n"),
                ))
            }
        }
    } else {
        (box_body(body), None)
    };
    let resigned = {
        let target = parts.uri.path_and_query().map_or("/", PathAndQuery::as_str);
        let host = parts.uri.authority().map(|a| a.as_str().to_owned());
        let headers = header_list(&parts.headers, host.as_deref());
        let request = sigv4::Request {
            method: parts.method.as_str(),
            target,
            headers: &headers,
        };
        SignedRequest::parse(request)
            .and_then(|signed| signed.resign(&entry.keys.credentials, hash.as_ref(), unix_now()))
    };
    let body = match resigned {
        Err(e) => return Err(refuse(ctx, origin, to, entry, &e.to_string())),
        Ok(Resigned::Query { target }) => {
            let mut uri = std::mem::take(&mut parts.uri).into_parts();
            uri.path_and_query = Some(
                PathAndQuery::try_from(target.expose())
                    .map_err(|_| refuse(ctx, origin, to, entry, "the new target is invalid"))?,
            );
            parts.uri = Uri::from_parts(uri)
                .map_err(|_| refuse(ctx, origin, to, entry, "the new target is invalid"))?;
            body
        }
        Ok(Resigned::Header {
            authorization,
            replace_session_token,
            body: chunks,
        }) => {
            let mut value = HeaderValue::from_str(&authorization)
                .map_err(|_| refuse(ctx, origin, to, entry, "the new signature is invalid"))?;
            value.set_sensitive(true);
            parts.headers.insert(header::AUTHORIZATION, value);
            if replace_session_token {
                let token = entry.keys.session_token.as_ref().ok_or_else(|| {
                    refuse(ctx, origin, to, entry, "the key has no session token")
                })?;
                let mut value = HeaderValue::from_str(token.expose())
                    .map_err(|_| refuse(ctx, origin, to, entry, "the session token is invalid"))?;
                value.set_sensitive(true);
                parts.headers.insert(SESSION_TOKEN_HEADER, value);
            }
            match chunks {
                Some(resigner) => {
                    let Some(held) = BUDGET.reserve(holds) else {
                        return Err(over_budget(ctx, origin, to, holds));
                    };
                    let watch = Watch::new(
                        Arc::clone(ctx),
                        injection(origin, to, entry, None),
                        Arc::clone(failure),
                    );
                    box_body(ResignBody::new(body, resigner, watch).holding(held))
                }
                None => body,
            }
        }
    };
    ctx.metrics.injection();
    let record = injection(origin, to, entry, None);
    if let Err(e) = ctx
        .audit
        .record_durable(Event::SecretInjected(record))
        .await
    {
        log::error!("not forwarding a re-signed request to {}: {e}", to.host);
        return Err(answer(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("veil: the audit log cannot record a secret's use ({e}), so the request was not forwarded\n"),
        ));
    }
    Ok(Request::from_parts(parts, body))
}

/// Why a body was not read whole to be hashed.
enum Unhashed {
    /// Longer than [`MAX_HASHED_BODY`] (declared or read).
    TooLong,
    /// The body failed.
    Failed(BoxError),
}

/// The whole body, at most [`MAX_HASHED_BODY`] bytes; one declared longer is not read.
async fn read_to_hash<B>(body: B) -> Result<Bytes, Unhashed>
where
    B: Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    if body.size_hint().lower() > MAX_HASHED_BODY as u64 {
        return Err(Unhashed::TooLong);
    }
    match Limited::new(body, MAX_HASHED_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(Unhashed::TooLong),
        Err(e) => Err(Unhashed::Failed(e)),
    }
}

/// The request's headers as the re-signer reads them, with `host` from the target's
/// authority when there is no Host header (HTTP/2).
fn header_list<'a>(
    headers: &'a hyper::HeaderMap,
    authority: Option<&'a str>,
) -> Vec<(&'a str, &'a [u8])> {
    let mut list: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect();
    if !headers.contains_key(header::HOST) {
        if let Some(authority) = authority {
            list.push(("host", authority.as_bytes()));
        }
    }
    list
}

/// The aws secret whose key id placeholder appears (in any case) in a header or in the
/// percent-decoded target: a request that carries a SigV4 signature veil cannot parse and
/// names it is refused.
fn named<'t>(
    table: &'t AwsTable,
    headers: &hyper::HeaderMap,
    target: &str,
) -> Option<&'t AwsEntry> {
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(target).collect();
    let places = headers
        .values()
        .map(|v| v.as_bytes())
        .chain(std::iter::once(decoded.as_slice()));
    let places: Vec<&[u8]> = places.collect();
    table.iter().find(|entry| {
        let needle = entry.key_id_placeholder.as_bytes();
        places.iter().any(|place| {
            place
                .windows(needle.len())
                .any(|w| w.eq_ignore_ascii_case(needle))
        })
    })
}

/// Records and answers a request that would take veil past [`held::MAX_HELD`].
fn over_budget(
    ctx: &Context,
    origin: &Origin,
    to: &Destination<'_>,
    holds: usize,
) -> Response<ResponseBody> {
    let detail = format!(
        "an AWS request to re-sign could hold {holds} bytes, and re-signing already holds {} of \
         the {} allowed",
        BUDGET.held(),
        held::MAX_HELD
    );
    log::warn!("refusing an AWS request from {}: {detail}", origin.comm);
    ctx.audit.record(Event::LimitExceeded(LimitExceeded {
        limit: "sigv4_held_bytes".to_owned(),
        detail: detail.clone(),
        host: to.host.to_owned(),
        destination: to.addr,
        sandbox: origin.sandbox.clone(),
        cgroup_id: origin.cgroup_id,
        pid: origin.pid,
        comm: origin.comm.clone(),
    }));
    answer(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("veil: too many AWS request bodies are being re-signed; try again ({detail})\n"),
    )
}

/// Records and answers a request veil will not re-sign.
fn refuse(
    ctx: &Context,
    origin: &Origin,
    to: &Destination<'_>,
    entry: &AwsEntry,
    why: &str,
) -> Response<ResponseBody> {
    record_refusal(ctx, origin, to, entry, why);
    answer(
        StatusCode::BAD_REQUEST,
        format!(
            "veil: refused an AWS request signed with {}'s placeholder: veil cannot re-sign it \
             ({why}), and it is never forwarded with the placeholder's signature\n",
            entry.name
        ),
    )
}

fn record_refusal(
    ctx: &Context,
    origin: &Origin,
    to: &Destination<'_>,
    entry: &AwsEntry,
    why: &str,
) {
    log::info!(
        "refusing an AWS request to {} signed with {}'s placeholder: {why}",
        to.host,
        entry.name
    );
    let record = injection(origin, to, entry, Some(format!("refused: {why}")));
    ctx.audit.record(Event::PlaceholderNotInjected(record));
}

/// The record of a re-signing with `entry` (`reason`: why it was not).
pub(super) fn injection(
    origin: &Origin,
    to: &Destination<'_>,
    entry: &AwsEntry,
    reason: Option<String>,
) -> Injection {
    Injection {
        secret_id: entry.id.clone(),
        secret_name: entry.name.clone(),
        host: to.host.to_owned(),
        destination: to.addr,
        protocol: to.protocol,
        header: SLOT.to_owned(),
        reason,
        sandbox: origin.sandbox.clone(),
        cgroup_id: origin.cgroup_id,
        pid: origin.pid,
        comm: origin.comm.clone(),
        headers: Vec::new(),
        count: 1,
        slot: Some(SLOT.to_owned()),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn box_body<B>(body: B) -> ReqBody
where
    B: Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed()
}

/// What a [`ResignBody`] reports a cut-off body to.
pub struct Watch {
    ctx: Arc<Context>,
    /// The re-signing's record, for the refusal's.
    record: Injection,
    failure: Failure,
}

impl Watch {
    /// Reports a cut of the body re-signed as `record` says to the audit log and `failure`.
    pub fn new(ctx: Arc<Context>, record: Injection, failure: Failure) -> Self {
        Self {
            ctx,
            record,
            failure,
        }
    }

    fn cut(&self, why: String) {
        log::info!(
            "cutting off an aws-chunked upload to {} re-signed with {}: {why}",
            self.record.host,
            self.record.secret_name
        );
        let mut record = self.record.clone();
        record.reason = Some(format!("refused: {why}"));
        self.ctx.audit.record(Event::PlaceholderNotInjected(record));
        if let Ok(mut failure) = self.failure.lock() {
            *failure = Some(why);
        }
    }
}

/// An `aws-chunked` body with every chunk re-signed as it completes. Its length does not
/// change; a chunk that cannot be re-signed, or a body that ends early, fails it.
pub struct ResignBody {
    inner: ReqBody,
    resigner: ChunkResigner,
    watch: Option<Watch>,
    /// Set once the body failed or ended.
    done: bool,
    /// What the chunk held counts against, given back with the body.
    _held: Option<Held<'static>>,
}

impl ResignBody {
    /// Re-signs `inner` with `resigner`; `watch` hears of a cut.
    pub fn new(inner: ReqBody, resigner: ChunkResigner, watch: Watch) -> Self {
        Self {
            inner,
            resigner,
            watch: Some(watch),
            done: false,
            _held: None,
        }
    }

    /// The same, holding `held` from the budget until the body is dropped.
    pub fn holding(mut self, held: Held<'static>) -> Self {
        self._held = Some(held);
        self
    }

    fn fail(&mut self, why: String) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.done = true;
        if let Some(watch) = self.watch.take() {
            watch.cut(why.clone());
        }
        Poll::Ready(Some(Err(why.into())))
    }
}

impl Body for ResignBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let mut out = Vec::new();
                        if let Err(e) = this.resigner.feed(&data, &mut out) {
                            return this.fail(format!("aws-chunked body: {e}"));
                        }
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                        }
                    }
                    Err(_trailers) => {
                        return this.fail("aws-chunked body with HTTP trailers".to_owned());
                    }
                },
                Some(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    if let Err(e) = this.resigner.finish() {
                        return this.fail(format!("aws-chunked body: {e}"));
                    }
                    this.done = true;
                    return Poll::Ready(None);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        // Re-signing keeps every byte count: the length is the body's own.
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests;
