//! The TLS subcommands: they talk to a name over TLS, trusting the CA given, so that run in
//! a sandbox they exercise veil's interception with real protocol stacks.

use std::{
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    process::exit,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{client::conn::http2, Request};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{pem::PemObject, CertificateDer, ServerName};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::TlsConnector;

struct Target {
    connect: SocketAddr,
    sni: String,
    ca: String,
    /// `Authorization: Bearer` with this environment variable's value, on every request.
    bearer: Option<String>,
}

impl Target {
    fn authorization(&self) -> Option<String> {
        let value = |var: &String| std::env::var(var).unwrap_or_default();
        self.bearer
            .as_ref()
            .map(|var| format!("Bearer {}", value(var)))
    }
}

/// Runs subcommand `cmd` with its arguments.
pub fn main(cmd: &str, args: &[&str]) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let result = runtime.block_on(async {
        match (cmd, args) {
            ("h2-streams", [n, rest @ ..]) => {
                h2_streams(n.parse().unwrap_or_else(|_| super::usage()), &target(rest)).await
            }
            ("h2-host", [authority, host, rest @ ..]) => {
                h2_host(authority, host, &target(rest)).await
            }
            ("ws", rest) => websocket(&target(rest)).await,
            ("split-hello", rest) => split_hello(&target(rest)).await,
            ("slow-hello", rest) => slow_hello(&target(rest)).await,
            _ => super::usage(),
        }
    });
    if let Err((code, message)) = result {
        println!("{message}");
        exit(code);
    }
}

type Failure = (i32, String);

fn target(args: &[&str]) -> Target {
    let mut connect = None;
    let mut sni = None;
    let mut ca = None;
    let mut bearer = None;
    for pair in args.chunks(2) {
        match pair {
            ["--connect", v] => connect = v.parse().ok(),
            ["--sni", v] => sni = Some(v.to_string()),
            ["--ca", v] => ca = Some(v.to_string()),
            ["--bearer-env", v] => bearer = Some(v.to_string()),
            _ => super::usage(),
        }
    }
    match (connect, sni, ca) {
        (Some(connect), Some(sni), Some(ca)) => Target {
            connect,
            sni,
            ca,
            bearer,
        },
        _ => super::usage(),
    }
}

async fn tls<S: AsyncRead + AsyncWrite + Unpin>(
    target: &Target,
    tcp: S,
    alpn: &[&[u8]],
) -> Result<tokio_rustls::client::TlsStream<S>, Failure> {
    let pem = std::fs::read(&target.ca).map_err(|e| (2, format!("{}: {e}", target.ca)))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| (2, format!("{}: {e}", target.ca)))?;
        roots.add(cert).map_err(|e| (2, e.to_string()))?;
    }
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| (2, e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = ServerName::try_from(target.sni.clone()).map_err(|e| (2, e.to_string()))?;
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| (3, format!("TLS handshake: {e}")))
}

async fn connect(target: &Target) -> Result<TcpStream, Failure> {
    TcpStream::connect(target.connect)
        .await
        .map_err(|e| (3, format!("connect {}: {e}", target.connect)))
}

async fn h2_streams(n: usize, target: &Target) -> Result<(), Failure> {
    let stream = tls(target, connect(target).await?, &[b"h2"]).await?;
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .map_err(|e| (4, format!("HTTP/2 handshake: {e}")))?;
    tokio::spawn(conn);
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let mut sender = sender.clone();
            let uri = format!("https://{}/stream/{i}", target.sni);
            let authorization = target.authorization();
            tokio::spawn(async move {
                let mut req = Request::get(uri);
                if let Some(value) = authorization {
                    req = req.header("authorization", value);
                }
                let req = req.body(Empty::<Bytes>::new()).map_err(|e| e.to_string())?;
                let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
                let body = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?
                    .to_bytes();
                let want = format!("ok GET /stream/{i} HTTP/2.0\n");
                if body == want.as_bytes() {
                    Ok(())
                } else {
                    Err(format!(
                        "stream {i}: got {:?}",
                        String::from_utf8_lossy(&body)
                    ))
                }
            })
        })
        .collect();
    for task in tasks {
        task.await
            .map_err(|e| (4, e.to_string()))?
            .map_err(|e| (4, e))?;
    }
    println!("ok {n}");
    Ok(())
}

/// One HTTP/2 request for `https://AUTHORITY/h2-host` carrying a `host` header `host` (none
/// for `-`); prints `status N`.
async fn h2_host(authority: &str, host: &str, target: &Target) -> Result<(), Failure> {
    let stream = tls(target, connect(target).await?, &[b"h2"]).await?;
    let (mut sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .map_err(|e| (4, format!("HTTP/2 handshake: {e}")))?;
    tokio::spawn(conn);
    let mut req = Request::get(format!("https://{authority}/h2-host"));
    if host != "-" {
        req = req.header("host", host);
    }
    if let Some(value) = target.authorization() {
        req = req.header("authorization", value);
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|e| (2, e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| (4, e.to_string()))?;
    println!("status {}", resp.status().as_u16());
    Ok(())
}

async fn websocket(target: &Target) -> Result<(), Failure> {
    let mut stream = tls(target, connect(target).await?, &[b"http/1.1"]).await?;
    let authorization = target
        .authorization()
        .map(|value| format!("Authorization: {value}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         {authorization}\r\n",
        target.sni
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| (4, e.to_string()))?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let b = stream
            .read_u8()
            .await
            .map_err(|e| (4, format!("reading the handshake: {e}")))?;
        head.push(b);
    }
    let head = String::from_utf8_lossy(&head);
    if !head.starts_with("HTTP/1.1 101") {
        return Err((4, format!("no protocol switch: {head}")));
    }
    let text = b"hello through veil";
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut frame = vec![0x81, 0x80 | text.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(text.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream
        .write_all(&frame)
        .await
        .map_err(|e| (4, e.to_string()))?;
    let mut reply = [0u8; 2];
    stream
        .read_exact(&mut reply)
        .await
        .map_err(|e| (4, e.to_string()))?;
    let mut payload = vec![0u8; usize::from(reply[1] & 0x7f)];
    stream
        .read_exact(&mut payload)
        .await
        .map_err(|e| (4, e.to_string()))?;
    println!("echo: {}", String::from_utf8_lossy(&payload));
    Ok(())
}

async fn split_hello(target: &Target) -> Result<(), Failure> {
    let tcp = connect(target).await?;
    tcp.set_nodelay(true).map_err(|e| (3, e.to_string()))?;
    let split = SplitFirstWrite {
        inner: tcp,
        state: Split::First,
    };
    let stream = tls(target, split, &[b"http/1.1"]).await?;
    get_and_print(stream, target, "/split").await
}

async fn slow_hello(target: &Target) -> Result<(), Failure> {
    let tcp = connect(target).await?;
    // Longer than veil waits before it suspects a server-first protocol.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let stream = tls(target, tcp, &[b"http/1.1"]).await?;
    get_and_print(stream, target, "/slow").await
}

/// Sends one HTTP/1.1 GET of `path` over `stream` and prints the response's last line.
async fn get_and_print<S>(mut stream: S, target: &Target, path: &str) -> Result<(), Failure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        target.sni
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| (4, e.to_string()))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .map_err(|e| (4, e.to_string()))?;
    println!("{}", response.lines().last().unwrap_or(""));
    Ok(())
}

/// Sends the first write (the ClientHello) as two TCP segments 50 ms apart.
struct SplitFirstWrite {
    inner: TcpStream,
    state: Split,
}

enum Split {
    First,
    Waiting(Pin<Box<tokio::time::Sleep>>, usize),
    Done,
}

impl AsyncRead for SplitFirstWrite {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for SplitFirstWrite {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                Split::First => {
                    let half = (buf.len() / 2).max(1);
                    let n =
                        std::task::ready!(Pin::new(&mut this.inner).poll_write(cx, &buf[..half]))?;
                    this.state =
                        Split::Waiting(Box::pin(tokio::time::sleep(Duration::from_millis(50))), n);
                }
                Split::Waiting(sleep, n) => {
                    std::task::ready!(sleep.as_mut().poll(cx));
                    let n = *n;
                    this.state = Split::Done;
                    return Poll::Ready(Ok(n));
                }
                Split::Done => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
