//! Upstreams for the tests on stand-in remote hosts (such as [`crate::REMOTE_A`]): a TLS
//! server speaking HTTP/1.1 and HTTP/2 that records every request it gets, streams large
//! bodies both ways, and echoes WebSocket frames; its `/echo-*` paths hand the request's
//! Authorization back ([`crate::echo_upstream`]). It runs on its own runtime thread and stops
//! when dropped.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    thread,
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{channel::Channel, combinators::BoxBody, BodyExt, Full};
use hyper::{header, service::service_fn, Request, Response, StatusCode};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::oneshot,
};
use tokio_rustls::TlsAcceptor;

use crate::pki::ServerCert;

/// A request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// Headers in order, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body, read for paths under `/slots` only (else empty); `None` if reading failed.
    pub body: Option<Vec<u8>>,
}

impl Seen {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A running TLS upstream.
pub struct TlsUpstream {
    /// Where it listens.
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

/// The bytes `/download?bytes=N` sends: a repeating pattern, so a test can hash it too.
pub fn pattern(len: usize) -> impl Iterator<Item = u8> {
    (0..len).map(|i| (i % 251) as u8)
}

impl TlsUpstream {
    /// Starts a server on `ip` (port chosen by the kernel) presenting `cert`, offering `alpn`.
    pub fn start(ip: &str, cert: &ServerCert, alpn: &[&[u8]]) -> Self {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .expect("certificate PEM");
        let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).expect("key PEM");
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server certificate");
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Self::spawn(ip, Some(TlsAcceptor::from(Arc::new(config))))
    }

    /// Starts a plain-HTTP server (HTTP/1.1) on `ip` with the same behaviour.
    pub fn start_plain(ip: &str) -> Self {
        Self::spawn(ip, None)
    }

    fn spawn(ip: &str, acceptor: Option<TlsAcceptor>) -> Self {
        crate::remote_hosts();
        let std_listener = std::net::TcpListener::bind((ip, 0)).expect("binding the upstream");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("local address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = oneshot::channel();
        let (seen2, conns2) = (Arc::clone(&seen), Arc::clone(&connections));
        let thread = thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(std_listener).expect("tokio listener");
                tokio::select! {
                    _ = stopped => {}
                    _ = accept_loop(listener, acceptor, seen2, conns2) => {}
                }
            });
        });
        Self {
            addr,
            seen,
            connections,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("not poisoned").clone()
    }

    /// How many TLS connections completed a handshake.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for TlsUpstream {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let (acceptor, seen, connections) = (
            acceptor.clone(),
            Arc::clone(&seen),
            Arc::clone(&connections),
        );
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let seen = Arc::clone(&seen);
                async move { Ok::<_, Infallible>(respond(req, &seen).await) }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            match acceptor {
                Some(acceptor) => {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let io = TokioIo::new(tls);
                    let _ = builder.serve_connection_with_upgrades(io, service).await;
                }
                None => {
                    connections.fetch_add(1, Ordering::SeqCst);
                    let io = TokioIo::new(tcp);
                    let _ = builder.serve_connection_with_upgrades(io, service).await;
                }
            }
        });
    }
}

/// The body of a response the upstream sends.
pub type Body = BoxBody<Bytes, std::io::Error>;

async fn respond(
    mut req: Request<hyper::body::Incoming>,
    seen: &Mutex<Vec<Seen>>,
) -> Response<Body> {
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let mut body = Some(Vec::new());
    if path.starts_with("/slots") {
        let incoming = req.body_mut();
        while let Some(frame) = incoming.frame().await {
            match frame {
                Ok(frame) => {
                    if let (Some(all), Some(data)) = (body.as_mut(), frame.data_ref()) {
                        all.extend_from_slice(data);
                    }
                }
                Err(_) => {
                    body = None;
                    break;
                }
            }
        }
    }
    seen.lock().expect("not poisoned").push(Seen {
        body,
        method: req.method().to_string(),
        path: path.clone(),
        version: format!("{:?}", req.version()),
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
    });
    let query_value = |key: &str| {
        path.split_once('?')
            .and_then(|(_, q)| {
                q.split('&')
                    .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            })
            .and_then(|v| v.parse::<usize>().ok())
    };
    if path.starts_with("/download") {
        let total = query_value("bytes").unwrap_or(0);
        return stream_pattern(total);
    }
    if path.starts_with("/upload") {
        let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
        let mut n = 0usize;
        let mut body = req.into_body();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    if let Some(data) = frame.data_ref() {
                        hasher.update(data);
                        n += data.len();
                    }
                }
                Err(e) => return text(StatusCode::BAD_REQUEST, format!("body error: {e}")),
            }
        }
        return text(
            StatusCode::OK,
            format!("bytes={n} sha256={}\n", hex::encode(hasher.finish())),
        );
    }
    if path.starts_with("/slow") {
        tokio::time::sleep(Duration::from_millis(
            query_value("ms").unwrap_or(100) as u64
        ))
        .await;
    }
    if let Some(response) = crate::echo_upstream::respond(&mut req, &path) {
        return response;
    }
    if path.starts_with("/ws") {
        return websocket(&mut req);
    }
    text(
        StatusCode::OK,
        format!("ok {} {path} {:?}\n", req.method(), req.version()),
    )
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r
}

fn stream_pattern(total: usize) -> Response<Body> {
    let (mut tx, body) = Channel::<Bytes, std::io::Error>::new(4);
    tokio::spawn(async move {
        let chunk = 64 * 1024;
        let mut sent = 0;
        while sent < total {
            let n = chunk.min(total - sent);
            let data: Vec<u8> = (sent..sent + n).map(|i| (i % 251) as u8).collect();
            if tx.send_data(Bytes::from(data)).await.is_err() {
                return;
            }
            sent += n;
        }
    });
    let mut r = Response::new(body.boxed());
    r.headers_mut().insert(header::CONTENT_LENGTH, total.into());
    r
}

/// Answers a WebSocket handshake and echoes every frame back unmasked.
fn websocket(req: &mut Request<hyper::body::Incoming>) -> Response<Body> {
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        return text(StatusCode::BAD_REQUEST, "not a websocket request\n".into());
    };
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut io = TokioIo::new(upgraded);
        loop {
            let mut head = [0u8; 2];
            if io.read_exact(&mut head).await.is_err() {
                return;
            }
            let opcode = head[0] & 0x0f;
            let mut len = u64::from(head[1] & 0x7f);
            if len == 126 {
                let mut b = [0u8; 2];
                if io.read_exact(&mut b).await.is_err() {
                    return;
                }
                len = u64::from(u16::from_be_bytes(b));
            } else if len == 127 {
                let mut b = [0u8; 8];
                if io.read_exact(&mut b).await.is_err() {
                    return;
                }
                len = u64::from_be_bytes(b);
            }
            let mut mask = [0u8; 4];
            if head[1] & 0x80 != 0 && io.read_exact(&mut mask).await.is_err() {
                return;
            }
            let mut payload = vec![0u8; len as usize];
            if io.read_exact(&mut payload).await.is_err() {
                return;
            }
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= mask[i % 4];
            }
            let mut frame = vec![0x80 | opcode];
            if payload.len() < 126 {
                frame.push(payload.len() as u8);
            } else {
                frame.push(126);
                frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            }
            frame.extend_from_slice(&payload);
            if io.write_all(&frame).await.is_err() || opcode == 0x8 {
                return;
            }
        }
    });
    let mut r = text(StatusCode::SWITCHING_PROTOCOLS, String::new());
    accept_websocket(r.headers_mut(), key.as_bytes());
    r
}

/// Sets the headers of a `101` that accepts a WebSocket upgrade with `key`.
pub fn accept_websocket(headers: &mut hyper::HeaderMap, key: &[u8]) {
    headers.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("upgrade"),
    );
    headers.insert(
        header::UPGRADE,
        header::HeaderValue::from_static("websocket"),
    );
    headers.insert(
        "sec-websocket-accept",
        accept_key(key).parse().expect("base64 is a header value"),
    );
}

/// `Sec-WebSocket-Accept` for a key (RFC 6455 section 4.2.2).
pub fn accept_key(key: &[u8]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key);
    ctx.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64(ctx.finish().as_ref())
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
