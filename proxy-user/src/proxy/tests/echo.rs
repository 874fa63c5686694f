//! What the test upstream answers: `/` says `upstream`; the `/echo-*` paths hand the request's
//! Authorization value back in one form or framing each, as a misbehaving upstream would.

use std::{
    collections::VecDeque,
    convert::Infallible,
    io::Write,
    pin::Pin,
    task::{Context, Poll},
};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::{body::Frame, header, HeaderMap, Response};

/// A body the upstream sends.
pub type UpBody = BoxBody<Bytes, Infallible>;

/// The answer to a request for `path` carrying `authorization`.
pub fn respond(path: &str, authorization: &str) -> Response<UpBody> {
    let token = authorization
        .strip_prefix("Bearer ")
        .unwrap_or(authorization);
    let echo = format!("{{\"authorization\":\"{authorization}\"}}");
    match path {
        "/echo-body" => full(echo.into_bytes()),
        "/echo-header" => {
            let mut response = full(b"ok".to_vec());
            response
                .headers_mut()
                .insert("x-echo", authorization.parse().unwrap());
            response
        }
        "/echo-chunked" => chunks(echo.into_bytes(), 5, None),
        "/echo-trailer" => {
            let mut trailers = HeaderMap::new();
            trailers.insert("x-echo", authorization.parse().unwrap());
            let mut response = chunks(b"see the trailer".to_vec(), 4, Some(trailers));
            response
                .headers_mut()
                .insert(header::TRAILER, "x-echo".parse().unwrap());
            response
        }
        "/echo-gzip" => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(echo.as_bytes()).unwrap();
            let mut response = full(gz.finish().unwrap());
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
            response
        }
        "/echo-gzip-two-lines" => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(echo.as_bytes()).unwrap();
            let mut response = full(gz.finish().unwrap());
            let headers = response.headers_mut();
            headers.append(header::CONTENT_ENCODING, "identity".parse().unwrap());
            headers.append(header::CONTENT_ENCODING, "gzip".parse().unwrap());
            response
        }
        "/echo-basic" => {
            let credential =
                base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
            full(format!("Basic {credential}").into_bytes())
        }
        "/echo-json-escaped" => full(
            serde_json::to_vec(&serde_json::json!({ "echo": format!("\"{token}\"/") })).unwrap(),
        ),
        "/echo-percent" => {
            full(format!("https://app.test/cb?t={}", uri_component(token)).into_bytes())
        }
        "/echo-big" => {
            let mut body = vec![b'.'; 200 * 1024];
            body[100_000..100_000 + token.len()].copy_from_slice(token.as_bytes());
            full(body)
        }
        "/big-clean" => full((0..1_000_000u32).map(|i| (i % 251) as u8).collect()),
        _ => full(b"upstream".to_vec()),
    }
}

/// `text` as JavaScript's `encodeURIComponent` writes it.
pub fn uri_component(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'!'
            | b'~'
            | b'*'
            | b'\''
            | b'('
            | b')' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Accepts a WebSocket upgrade and sends `authorization` back as a text message in two
/// fragments, written a few bytes at a time, then a close frame quoting it.
pub fn websocket(
    mut req: hyper::Request<hyper::body::Incoming>,
    authorization: String,
) -> Response<UpBody> {
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            return;
        };
        let mut io = hyper_util::rt::TokioIo::new(upgraded);
        let text = authorization.as_bytes();
        let (a, b) = text.split_at(text.len() / 2);
        let mut frames = Vec::new();
        frames.extend(ws_frame(false, 0x1, a));
        frames.extend(ws_frame(true, 0x0, b));
        let mut reason = vec![0x03, 0xe8];
        reason.extend_from_slice(&text[..text.len().min(100)]);
        frames.extend(ws_frame(true, 0x8, &reason));
        for piece in frames.chunks(5) {
            if tokio::io::AsyncWriteExt::write_all(&mut io, piece)
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut io).await;
    });
    let mut response = full(Vec::new());
    *response.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
    response
        .headers_mut()
        .insert(header::UPGRADE, "websocket".parse().unwrap());
    response
        .headers_mut()
        .insert(header::CONNECTION, "upgrade".parse().unwrap());
    response
}

/// An unmasked frame, as a server sends it (payloads under 126 bytes).
pub fn ws_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode, payload.len() as u8];
    out.extend_from_slice(payload);
    out
}

fn full(body: Vec<u8>) -> Response<UpBody> {
    Response::new(Full::new(Bytes::from(body)).boxed())
}

/// `body` in chunks of `size` bytes (chunked encoding), then `trailers`.
fn chunks(body: Vec<u8>, size: usize, trailers: Option<HeaderMap>) -> Response<UpBody> {
    let mut frames: VecDeque<Frame<Bytes>> = body
        .chunks(size)
        .map(|c| Frame::data(Bytes::copy_from_slice(c)))
        .collect();
    if let Some(trailers) = trailers {
        frames.push_back(Frame::trailers(trailers));
    }
    Response::new(Frames(frames).boxed())
}

/// A body of frames given in advance, one per poll.
struct Frames(VecDeque<Frame<Bytes>>);

impl hyper::body::Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(Ok))
    }
}
