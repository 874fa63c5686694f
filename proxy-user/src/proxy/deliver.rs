//! Delivering an upstream response to the sandbox with every secret scrubbed out of it: the
//! status line's reason, the headers, the body and the trailers ([`super::scrub_body`]).
//!
//! A response without a secret passes byte for byte. Small bodies of known length (at most
//! [`PREFETCH`]) are read whole before the head is sent, so that a replacement can correct
//! their `Content-Length`; longer ones stream. gzip and deflate bodies are decoded alongside as
//! they stream; brotli and zstd ones, which decode in whole blocks, are read whole first.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{body::Incoming, ext::ReasonPhrase, header, Response, StatusCode};
use veil_core::scrub::{Found, Scrubber};

use super::{
    decode::{Decoder, Encoding},
    http::{answer, Body},
    report::Report,
    scrub_body::{scrub_headers, Scan, ScrubBody},
};

/// The largest body of known length read whole before its head is sent.
pub const PREFETCH: u64 = 64 * 1024;
/// The largest compressed body veil reads whole to scan (brotli and zstd bodies, which decode
/// in blocks); a longer one is refused.
pub const MAX_WHOLE_COMPRESSED: usize = 16 << 20;

/// `response`, scrubbed for the sandbox. `has_body` is false for answers to HEAD and for
/// statuses without a body.
pub async fn deliver(
    mut response: Response<Incoming>,
    scrubber: Arc<Scrubber>,
    report: Arc<Report>,
    has_body: bool,
) -> Response<Body> {
    if scrubber.longest_pattern() == 0 {
        return response.map(|body| body.map_err(Into::into).boxed());
    }
    scrub_headers(&scrubber, response.headers_mut(), &report, "header");
    scrub_reason(&scrubber, &mut response, &report);
    let status = response.status();
    if !has_body || status.is_informational() || matches!(status.as_u16(), 204 | 304) {
        return response.map(|body| body.map_err(Into::into).boxed());
    }
    // Every Content-Encoding line counts: a client applies them all, in order.
    let codings: Vec<&[u8]> = response
        .headers()
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    let joined = (!codings.is_empty()).then(|| codings.join(&b","[..]));
    let encoding = Encoding::of(joined.as_deref());
    let length = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let scan = match encoding {
        Encoding::Identity => Scan::Replace {
            fixed_length: length.is_some(),
        },
        Encoding::Coded(coding) => match Decoder::new(coding) {
            Ok(decoder) => Scan::Decode(Box::new(decoder), coding),
            Err(e) => return refuse(&report, &format!("a {coding:?} decoder failed: {e}")),
        },
        Encoding::Unknown => {
            let shown = joined
                .as_deref()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            return refuse(
                &report,
                &format!("it is encoded as {shown:?}, which veil cannot decode to scan"),
            );
        }
    };
    match (length, scan) {
        (Some(length), Scan::Replace { .. }) if length <= PREFETCH => {
            whole(response, &scrubber, &report).await
        }
        (length, Scan::Decode(decoder, coding))
            if !coding.streams() || length.is_some_and(|l| l <= PREFETCH) =>
        {
            whole_decoded(response, *decoder, &scrubber, &report).await
        }
        (_, scan) => response.map(|body| ScrubBody::new(body, scrubber, scan, report).boxed()),
    }
}

/// Reads a compressed body whole (a short one, or any brotli or zstd one, up to
/// [`MAX_WHOLE_COMPRESSED`]) and decodes it: delivered unchanged if it holds no secret, not at
/// all if it does, does not decode, or is longer.
async fn whole_decoded(
    response: Response<Incoming>,
    mut decoder: Decoder,
    scrubber: &Arc<Scrubber>,
    report: &Report,
) -> Response<Body> {
    let (parts, body) = response.into_parts();
    let collected = match Limited::new(body, MAX_WHOLE_COMPRESSED).collect().await {
        Ok(collected) => collected,
        Err(e) => return refuse(report, &format!("reading its compressed body failed: {e}")),
    };
    let trailers = collected.trailers().cloned();
    let bytes = collected.to_bytes();
    // Scanned as it decodes, so a small body that decodes to a lot is never held whole.
    let mut stream = scrubber.stream();
    let mut found = Found::default();
    let mut scratch = Vec::new();
    let mut scan = |decoded: &[u8]| {
        scratch.clear();
        found.merge(stream.feed(decoded, &mut scratch));
    };
    let result = decoder
        .feed(&bytes, &mut scan)
        .and_then(|()| decoder.finish(&mut scan));
    if let Err(e) = result {
        return refuse(report, &format!("its body does not decode: {e}"));
    }
    scratch.clear();
    found.merge(stream.finish(&mut scratch));
    if !found.is_empty() {
        report.found(&found, "body", "cut: a compressed body held it");
        return refuse(report, "its compressed body held a secret");
    }
    let body = Full::new(bytes).map_err(|never| match never {});
    let body = match trailers {
        Some(mut trailers) => {
            scrub_headers(scrubber, &mut trailers, report, "trailer");
            body.with_trailers(async move { Some(Ok(trailers)) })
                .boxed()
        }
        None => body.boxed(),
    };
    Response::from_parts(parts, body)
}

/// Reads a short body whole, scrubs it, and corrects its length.
async fn whole(
    response: Response<Incoming>,
    scrubber: &Scrubber,
    report: &Report,
) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    let collected = match body.collect().await {
        Ok(collected) => collected,
        Err(e) => return refuse(report, &format!("reading its body failed: {e}")),
    };
    let mut trailers = collected.trailers().cloned();
    let mut bytes = collected.to_bytes();
    if let Some((new, found)) = scrubber.scrub(&bytes) {
        report.found(&found, "body", "replaced");
        bytes = Bytes::from(new);
        parts.headers.insert(
            header::CONTENT_LENGTH,
            header::HeaderValue::from(bytes.len()),
        );
    }
    if let Some(trailers) = trailers.as_mut() {
        scrub_headers(scrubber, trailers, report, "trailer");
    }
    let body = Full::new(bytes).map_err(|never| match never {});
    let body = match trailers {
        Some(trailers) => body
            .with_trailers(async move { Some(Ok(trailers)) })
            .boxed(),
        None => body.boxed(),
    };
    Response::from_parts(parts, body)
}

/// Replaces a secret in a non-standard reason phrase (HTTP/1.1 relays it as upstream sent it).
fn scrub_reason(scrubber: &Scrubber, response: &mut Response<Incoming>, report: &Report) {
    let Some(reason) = response.extensions().get::<ReasonPhrase>() else {
        return;
    };
    let Some((new, found)) = scrubber.scrub(reason.as_bytes()) else {
        return;
    };
    report.found(&found, "status", "replaced");
    match ReasonPhrase::try_from(new) {
        Ok(reason) => {
            response.extensions_mut().insert(reason);
        }
        Err(_) => {
            response.extensions_mut().remove::<ReasonPhrase>();
        }
    }
}

/// The answer for a response veil will not deliver because it cannot scan it.
fn refuse(report: &Report, why: &str) -> Response<Body> {
    log::warn!("not delivering a response from {}: {why}", report.host());
    answer(
        StatusCode::BAD_GATEWAY,
        format!("veil: the response was not delivered because {why}\n"),
    )
}
