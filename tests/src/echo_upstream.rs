//! What the test upstream answers when it misbehaves on purpose: the `/echo-*` paths and
//! `/ws-auth` hand the request's `Authorization` value (the real secret, once veil injected it)
//! back to the client, each in one form or framing, as a hostile or careless upstream would.
//! `tests/exfil.rs` checks that the sandbox only ever gets the placeholder, or nothing.
//!
//! | path | what comes back |
//! |---|---|
//! | `/echo-body` | `{"authorization":"VALUE"}` with `Content-Length` |
//! | `/echo-header` | `x-echo: VALUE`, body `ok` |
//! | `/echo-trailer` | chunked, `Trailer: x-echo`, the value in the trailer |
//! | `/echo-drip` | the JSON of `/echo-body`, chunked in 5-byte pieces written apart |
//! | `/echo-gzip` | the JSON, gzip-compressed, with `Content-Length` (short) |
//! | `/echo-gzip-stream` | 400 KiB of noise around the value, gzip-compressed, streamed chunked with a pause just after the value |
//! | `/echo-auth` | the value verbatim in the body and in `x-echo` |
//! | `/echo-basic-rewrapped` | the Basic password base64-encoded inside other text, at each offset |
//! | `/ws-auth` | a WebSocket upgrade, then the value in a text frame and in the close reason |

use std::{io::Write, time::Duration};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{channel::Channel, BodyExt, Full};
use hyper::{header, HeaderMap, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use crate::upstream::{accept_websocket, Body};

/// How much noise surrounds the value in `/echo-gzip-stream`, on each side.
pub const NOISE: usize = 200 * 1024;

/// The answer to `req` if its path is one of the echo paths above.
pub fn respond(req: &mut Request<hyper::body::Incoming>, path: &str) -> Option<Response<Body>> {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let json = format!("{{\"authorization\":\"{authorization}\"}}\n");
    let path = path.split('?').next().unwrap_or(path);
    Some(match path {
        "/echo-body" => full(json.into_bytes()),
        "/echo-header" => with_header(full(b"ok\n".to_vec()), "x-echo", &authorization),
        "/echo-trailer" => {
            let mut trailers = HeaderMap::new();
            trailers.insert("x-echo", authorization.parse().ok()?);
            let response = drip(b"see the trailer\n".to_vec(), 4, Some(trailers));
            with_header(response, header::TRAILER.as_str(), "x-echo")
        }
        "/echo-drip" => drip(json.into_bytes(), 5, None),
        "/echo-gzip" => with_header(
            full(gzip(json.as_bytes())),
            header::CONTENT_ENCODING.as_str(),
            "gzip",
        ),
        "/echo-gzip-stream" => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let mut first = noise(NOISE, 1);
            first.extend_from_slice(authorization.as_bytes());
            gz.write_all(&first).expect("compressing in memory");
            // A sync flush ends the first part right after the value's compressed bytes.
            gz.flush().expect("compressing in memory");
            let split = gz.get_ref().len();
            gz.write_all(&noise(NOISE, 2))
                .expect("compressing in memory");
            let mut compressed = gz.finish().expect("compressing in memory");
            let second = compressed.split_off(split);
            let response = stream(vec![compressed, second], 8 * 1024);
            with_header(response, header::CONTENT_ENCODING.as_str(), "gzip")
        }
        "/echo-auth" => with_header(
            full(authorization.clone().into_bytes()),
            "x-echo",
            &authorization,
        ),
        "/echo-basic-rewrapped" => full(rewrapped(&authorization).into_bytes()),
        "/ws-auth" => websocket(req, authorization),
        _ => return None,
    })
}

/// The password of a Basic credential, base64-encoded again inside longer text at each of the
/// three byte offsets of a base64 group, one line each.
fn rewrapped(authorization: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let decoded = authorization
        .strip_prefix("Basic ")
        .and_then(|c| b64.decode(c).ok())
        .unwrap_or_default();
    let credential = String::from_utf8_lossy(&decoded).into_owned();
    let password = credential
        .split_once(':')
        .map_or(credential.as_str(), |(_, p)| p);
    (0..3)
        .map(|offset| {
            let text = format!("{}token={password}&scope=repo", "x".repeat(offset));
            format!("{}\n", b64.encode(text))
        })
        .collect()
}

/// `len` printable bytes that gzip cannot shrink much, different per `seed`.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ALPHABET[(state >> 58) as usize]
        })
        .collect()
}

fn gzip(plain: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(plain).expect("compressing in memory");
    gz.finish().expect("compressing in memory")
}

fn full(body: Vec<u8>) -> Response<Body> {
    Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    )
}

fn with_header(mut response: Response<Body>, name: &str, value: &str) -> Response<Body> {
    let name = header::HeaderName::from_bytes(name.as_bytes()).expect("a header name");
    if let Ok(value) = value.parse() {
        response.headers_mut().insert(name, value);
    }
    response
}

/// `body` in pieces of `size` bytes, each written a few milliseconds after the last (chunked
/// encoding, no length), then `trailers`.
fn drip(body: Vec<u8>, size: usize, trailers: Option<HeaderMap>) -> Response<Body> {
    let (mut tx, rx) = Channel::<Bytes, std::io::Error>::new(1);
    tokio::spawn(async move {
        for piece in body.chunks(size) {
            if tx.send_data(Bytes::copy_from_slice(piece)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if let Some(trailers) = trailers {
            let _ = tx.send_trailers(trailers).await;
        }
    });
    Response::new(rx.boxed())
}

/// `parts` streamed without a length, in pieces of `size` bytes, with a pause between parts
/// (so that what comes before the pause leaves before the rest arrives).
fn stream(parts: Vec<Vec<u8>>, size: usize) -> Response<Body> {
    let (mut tx, rx) = Channel::<Bytes, std::io::Error>::new(2);
    tokio::spawn(async move {
        for part in parts {
            for piece in part.chunks(size) {
                if tx.send_data(Bytes::copy_from_slice(piece)).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    Response::new(rx.boxed())
}

/// Accepts a WebSocket upgrade and sends `authorization` back: a text message written five
/// bytes at a time, then a close frame whose reason quotes it.
fn websocket(req: &mut Request<hyper::body::Incoming>, authorization: String) -> Response<Body> {
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        let mut response = full(b"not a websocket request\n".to_vec());
        *response.status_mut() = StatusCode::BAD_REQUEST;
        return response;
    };
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut io = TokioIo::new(upgraded);
        let text = authorization.as_bytes();
        let mut frames = ws_frame(0x1, text);
        let mut reason = vec![0x03, 0xe8];
        reason.extend_from_slice(&text[..text.len().min(100)]);
        frames.extend(ws_frame(0x8, &reason));
        for piece in frames.chunks(5) {
            if io.write_all(piece).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let _ = io.shutdown().await;
    });
    let mut response = full(Vec::new());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    accept_websocket(response.headers_mut(), key.as_bytes());
    response
}

/// One unmasked, final frame as a server sends it (payloads under 126 bytes).
fn ws_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x80 | opcode, payload.len() as u8];
    frame.extend_from_slice(payload);
    frame
}
