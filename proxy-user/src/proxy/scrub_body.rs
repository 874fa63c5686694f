//! Response bodies on their way back to a sandbox, scrubbed: every live secret's value (in
//! every encoding the scrubber knows) becomes its placeholder, across frame boundaries.
//!
//! A compressed body is decoded alongside and passes on unchanged once scanned; one that turns
//! out to hold a secret, or cannot be decoded, is cut off (the body fails, so the client sees
//! a reset stream or a closed connection), never delivered. A body whose length was promised
//! (`Content-Length`) is cut off likewise when a replacement would change that length.

use std::{
    pin::Pin,
    sync::Arc,
    task::{ready, Context as TaskContext, Poll},
};

use bytes::{Bytes, BytesMut};
use hyper::{
    body::{Body, Frame, Incoming, SizeHint},
    HeaderMap,
};
use veil_core::scrub::{Found, ScrubStream, Scrubber};

use super::{
    decode::{Coding, Decoder},
    report::Report,
};

/// The error a cut-off body fails with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How a body is scanned.
pub enum Scan {
    /// Plain bytes: replaced as they pass.
    Replace {
        /// Whether the length was promised, so a replacement that changes it cuts the body.
        fixed_length: bool,
    },
    /// Compressed bytes: decoded alongside, delivered unchanged, cut if a secret is found.
    Decode(Box<Decoder>, Coding),
}

/// A response body with every secret scrubbed out of it.
pub struct ScrubBody {
    inner: Incoming,
    scrubber: Arc<Scrubber>,
    stream: ScrubStream,
    scan: Scan,
    report: Arc<Report>,
    /// Bytes in and out so far (plain bodies), to tell when a replacement changed the length.
    bytes_in: u64,
    bytes_out: u64,
    /// Compressed bytes scanned but not yet released (see [`ScrubBody::data`]).
    pending: BytesMut,
    /// Trailers waiting for the last data to go first.
    trailers: Option<HeaderMap>,
    done: bool,
}

impl ScrubBody {
    /// Scrubs `inner` with `scrubber`, reporting to `report`.
    pub fn new(inner: Incoming, scrubber: Arc<Scrubber>, scan: Scan, report: Arc<Report>) -> Self {
        Self {
            stream: scrubber.stream(),
            inner,
            scrubber,
            scan,
            report,
            bytes_in: 0,
            bytes_out: 0,
            pending: BytesMut::new(),
            trailers: None,
            done: false,
        }
    }

    /// Scans one chunk of data: what goes on to the client, or why the body is cut off.
    fn data(&mut self, data: Bytes) -> Result<Bytes, BoxError> {
        match &mut self.scan {
            Scan::Decode(decoder, _) => {
                let stream = &mut self.stream;
                let mut found = Found::default();
                let mut scratch = Vec::new();
                let decoded = decoder.feed(&data, |decoded| {
                    scratch.clear();
                    found.merge(stream.feed(decoded, &mut scratch));
                });
                if let Err(e) = decoded {
                    return Err(self.cut_undecodable(&e));
                }
                if !found.is_empty() {
                    return Err(self.cut(&found, "a compressed body held it"));
                }
                // Compressed bytes go on only once what they decode to is scanned to the end:
                // while the scrubber holds back a possible start of a secret, so does veil.
                self.pending.extend_from_slice(&data);
                if self.stream.held_back() > 0 {
                    return Ok(Bytes::new());
                }
                Ok(self.pending.split().freeze())
            }
            Scan::Replace { fixed_length } => {
                let fixed_length = *fixed_length;
                let mut out = Vec::with_capacity(data.len());
                let found = self.stream.feed(&data, &mut out);
                self.bytes_in += data.len() as u64;
                self.bytes_out += out.len() as u64;
                if !found.is_empty() {
                    let pending = self.bytes_out + self.stream.held_back() as u64;
                    if fixed_length && pending != self.bytes_in {
                        return Err(self.cut(&found, "replacing it would change a fixed length"));
                    }
                    self.report.found(&found, "body", "replaced");
                }
                Ok(Bytes::from(out))
            }
        }
    }

    /// The end of the body: what the scrubber still held, checked like the rest.
    fn end(&mut self) -> Result<Bytes, BoxError> {
        let mut out = Vec::new();
        match &mut self.scan {
            Scan::Decode(decoder, _) => {
                let stream = &mut self.stream;
                let mut found = Found::default();
                let mut scratch = Vec::new();
                let finished = decoder.finish(|decoded| {
                    scratch.clear();
                    found.merge(stream.feed(decoded, &mut scratch));
                });
                if let Err(e) = finished {
                    return Err(self.cut_undecodable(&e));
                }
                scratch.clear();
                found.merge(self.stream.finish(&mut scratch));
                if !found.is_empty() {
                    return Err(self.cut(&found, "a compressed body held it"));
                }
                return Ok(self.pending.split().freeze());
            }
            Scan::Replace { fixed_length } => {
                let fixed_length = *fixed_length;
                let found = self.stream.finish(&mut out);
                self.bytes_out += out.len() as u64;
                if !found.is_empty() {
                    if fixed_length && self.bytes_out != self.bytes_in {
                        return Err(self.cut(&found, "replacing it would change a fixed length"));
                    }
                    self.report.found(&found, "body", "replaced");
                }
            }
        }
        Ok(Bytes::from(out))
    }

    /// The body has ended: the last data the scrubber held (then the trailers, next poll), or
    /// the trailers, or the error that cuts it off.
    fn last(&mut self) -> Option<Result<Frame<Bytes>, BoxError>> {
        let last = self.end();
        self.done = true;
        match last {
            Ok(last) if last.is_empty() => self.trailers.take().map(|t| Ok(Frame::trailers(t))),
            Ok(last) => Some(Ok(Frame::data(last))),
            Err(e) => Some(Err(e)),
        }
    }

    fn cut(&mut self, found: &Found, why: &str) -> BoxError {
        self.done = true;
        self.report.found(found, "body", &format!("cut: {why}"));
        format!("veil cut off a response that carried a secret ({why})").into()
    }

    fn cut_undecodable(&mut self, e: &std::io::Error) -> BoxError {
        self.done = true;
        log::warn!(
            "cutting off a response from {} that does not decode: {e}",
            self.report.host()
        );
        format!("veil cut off a response it could not decode to scan: {e}").into()
    }
}

impl Body for ScrubBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                None => return Poll::Ready(this.last()),
                Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                Some(Ok(frame)) => frame,
            };
            let frame = match frame.into_data() {
                Ok(data) => match this.data(data) {
                    Ok(out) if out.is_empty() => continue,
                    Ok(out) => return Poll::Ready(Some(Ok(Frame::data(out)))),
                    Err(e) => return Poll::Ready(Some(Err(e))),
                },
                Err(frame) => frame,
            };
            if let Ok(mut trailers) = frame.into_trailers() {
                scrub_headers(&this.scrubber, &mut trailers, &this.report, "trailer");
                // The data the scrubber still holds goes before the trailers.
                this.trailers = Some(trailers);
                return Poll::Ready(this.last());
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Scrubs every value in `headers` (a response's headers or trailers) in place, reporting each
/// as `<kind>:<name>`.
pub fn scrub_headers(scrubber: &Scrubber, headers: &mut HeaderMap, report: &Report, kind: &str) {
    for (name, value) in headers.iter_mut() {
        let Some((new, found)) = scrubber.scrub(value.as_bytes()) else {
            continue;
        };
        // The placeholder is made of header-safe bytes; should a value still not be one, the
        // header is emptied rather than delivered with the secret.
        *value = hyper::header::HeaderValue::from_bytes(&new)
            .unwrap_or_else(|_| hyper::header::HeaderValue::from_static(""));
        report.found(&found, &format!("{kind}:{name}"), "replaced");
    }
}
