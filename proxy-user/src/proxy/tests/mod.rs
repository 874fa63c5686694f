//! The data path without root, BPF or the kernel's records: a connection accepted on a local
//! socket is served by [`serve`] against an in-process HTTPS upstream, with a real audit log in
//! a temporary directory.
//!
//! - `path.rs`: classification, denial, interception, injection, strict authority, limits, and
//!   the rule that a secret leaves only after its record is on disk.
//! - `scrub.rs`: responses that echo the secret back, in every form and framing.
//! - `echo.rs`: what the upstream answers on each path.
//! - `body.rs`: request bodies with placeholders in a JSON slot, streamed over HTTP/2.
//! - `aws.rs`: SigV4 re-signing with an aws secret, HTTP/1.1 and HTTP/2, and its refusals.
//! - `pool.rs`: upstream connections kept for the next connection with the same key only,
//!   parked while a connection is quiet, and a new verified connection when the one held is
//!   found closed or gone.

mod aws;
mod body;
mod echo;
mod path;
mod pool;
mod scrub;

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Instant,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{body::Incoming, service::service_fn, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::{pki_types::ServerName as PkiName, ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use veil_core::{
    host_pattern::HostPattern,
    policy::Policy,
    secrets::{LiveSecret, SecretInfo, SecretSet, SecretValue},
};

use super::*;
use crate::{
    audit::{AuditStore, AuditWriter, ConnProtocol, EventKind, Filter, Record, Verdict},
    metrics::Metrics,
    secrets::LiveEngine,
    tls::{ca::Ca, leaf::LeafMinter, provider, upstream::Upstream},
};

const SECRET: &str = "s3cr3t/tok+en=value-1";
const PLACEHOLDER: &str = "IRONSH_PROXY_gh";
const HOST: &str = "api.test";

/// What the upstream saw of one request: its Authorization header, and how many
/// `secret_injected` records were on disk when it arrived.
struct Seen {
    authorization: Option<String>,
    host: Option<String>,
    injections_on_disk: usize,
    /// The request body, read for path `/slots` only.
    body: Option<Vec<u8>>,
}

impl Seen {
    /// Asserts that the request carried the real secret as its bearer token.
    fn assert_secret(&self) {
        assert_eq!(
            self.authorization.as_deref(),
            Some(&*format!("Bearer {SECRET}"))
        );
    }
}

/// A private data path: veil's services, an HTTPS upstream for [`HOST`] on 127.0.0.1, and the
/// audit log they share.
struct Bench {
    _dir: tempfile::TempDir,
    _writer: AuditWriter,
    ctx: Arc<Context>,
    store: AuditStore,
    upstream: SocketAddr,
    seen: mpsc::UnboundedReceiver<Seen>,
    veil_ca: RootCertStore,
    /// TLS connections the upstream accepted.
    accepted: Arc<AtomicUsize>,
}

impl Bench {
    async fn new(allow: &[&str]) -> Self {
        Self::with_limits(allow, Limits::default()).await
    }

    async fn with_limits(allow: &[&str], limits: Limits) -> Self {
        Self::with(allow, limits, super::pool::Pool::default()).await
    }

    async fn with_pool(allow: &[&str], pool: super::pool::Pool) -> Self {
        Self::with(allow, Limits::default(), pool).await
    }

    async fn with(allow: &[&str], limits: Limits, pool: super::pool::Pool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (upstream_ca, server_config) = upstream_pki();
        let ca_file = dir.path().join("upstream-ca.pem");
        std::fs::write(&ca_file, upstream_ca).unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let store = AuditStore::open(&db, dir.path()).unwrap();
        let (audit, writer) = AuditWriter::spawn(store.clone());
        let (tx, seen) = mpsc::unbounded_channel();
        let accepted = Arc::new(AtomicUsize::new(0));
        let upstream =
            serve_upstream(server_config, store.clone(), tx, Arc::clone(&accepted)).await;
        let leaves =
            Arc::new(LeafMinter::new(Ca::load_or_create(&dir.path().join("ca")).unwrap()).unwrap());
        let mut veil_ca = RootCertStore::empty();
        veil_ca
            .add(CertificateDer::from_pem_slice(leaves.ca_pem().as_bytes()).unwrap())
            .unwrap();
        let own = |rules: &[&str]| rules.iter().map(|r| r.to_string()).collect::<Vec<_>>();
        let policy = Policy::parse(&own(allow), &[]).unwrap();
        let ctx = Arc::new(Context {
            policy: tokio::sync::watch::Sender::new(Arc::new(policy)).subscribe(),
            leaves,
            upstream: Upstream::new(&[ca_file]).unwrap(),
            engine: LiveEngine::fixed(&secrets()).unwrap(),
            audit,
            metrics: Arc::new(Metrics::default()),
            limits,
            resolver: crate::resolve::Resolver::default(),
            answers: crate::dns::DnsAnswers::default(),
            pool,
        });
        Self {
            _dir: dir,
            _writer: writer,
            ctx,
            store,
            upstream,
            seen,
            veil_ca,
            accepted,
        }
    }

    /// A client connection steered to `dst`: the test's end, with veil serving the other.
    async fn steer(&self, dst: SocketAddr) -> TcpStream {
        self.steer_from(SANDBOX_ID, dst).await
    }

    /// A client connection from sandbox `sandbox` (its cgroup id) steered to `dst`.
    async fn steer_from(&self, sandbox: u64, dst: SocketAddr) -> TcpStream {
        let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(front.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, peer) = front.accept().await.unwrap();
        let conn = Steered {
            ctx: Arc::clone(&self.ctx),
            client: accepted,
            dst,
            sandbox,
            event: event(peer, dst),
            accepted: Instant::now(),
            upstream: None,
        };
        tokio::spawn(serve(conn));
        client
    }

    /// Sends one HTTP/1.1 request over TLS for `sni` to `dst` through veil.
    async fn https(
        &self,
        dst: SocketAddr,
        sni: &str,
        host: &str,
    ) -> Result<Response<Incoming>, String> {
        self.https_to(dst, sni, host, "/").await
    }

    /// Sends `GET path` for [`HOST`] to the upstream through veil.
    async fn get(&self, path: &str) -> Result<Response<Incoming>, String> {
        self.https_to(self.upstream, HOST, HOST, path).await
    }

    /// Sends one HTTP/1.1 request for `path` over TLS for `sni` to `dst` through veil.
    async fn https_to(
        &self,
        dst: SocketAddr,
        sni: &str,
        host: &str,
        path: &str,
    ) -> Result<Response<Incoming>, String> {
        let tls = self.tls(dst, sni, b"http/1.1").await?;
        send_to(tls, host, path).await
    }

    /// A TLS connection for `sni` to `dst` through veil, trusting veil's CA, offering `alpn`.
    async fn tls(
        &self,
        dst: SocketAddr,
        sni: &str,
        alpn: &[u8],
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
        self.tls_from(SANDBOX_ID, dst, sni, alpn).await
    }

    /// [`Bench::tls`] from sandbox `sandbox` (its cgroup id); an empty `alpn` offers none.
    async fn tls_from(
        &self,
        sandbox: u64,
        dst: SocketAddr,
        sni: &str,
        alpn: &[u8],
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
        let tcp = self.steer_from(sandbox, dst).await;
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(self.veil_ca.clone())
            .with_no_client_auth();
        if !alpn.is_empty() {
            config.alpn_protocols = vec![alpn.to_vec()];
        }
        TlsConnector::from(Arc::new(config))
            .connect(PkiName::try_from(sni.to_owned()).unwrap(), tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))
    }

    /// An HTTP/2 connection to the upstream through veil (checked to be HTTP/2), driven by a
    /// task of its own.
    async fn h2<B>(&self) -> hyper::client::conn::http2::SendRequest<B>
    where
        B: hyper::body::Body + Send + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let tls = self.tls(self.upstream, HOST, b"h2").await.unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(b"h2".as_slice()));
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        sender
    }

    /// Audit records of `kind`, once the writer has committed everything queued.
    async fn records(&self, kind: EventKind) -> Vec<Record> {
        self.ctx
            .audit
            .record_durable(crate::audit::Event::SandboxDetached(
                crate::audit::SandboxChange {
                    name: "flush".into(),
                    cgroup: String::new(),
                    cgroup_id: 0,
                    container: None,
                },
            ))
            .await
            .unwrap();
        self.store
            .query(&Filter {
                kind: Some(kind),
                ..Filter::default()
            })
            .unwrap()
    }
}

/// Sends `GET /` with `Host: host` and the placeholder as a bearer token.
async fn send<S>(stream: S, host: &str) -> Result<Response<Incoming>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    send_to(stream, host, "/").await
}

/// Sends `GET path` with `Host: host` and the placeholder as a bearer token.
async fn send_to<S>(stream: S, host: &str, path: &str) -> Result<Response<Incoming>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(conn);
    let request = Request::get(path)
        .header("host", host)
        .header("te", "trailers")
        .header("authorization", format!("Bearer {PLACEHOLDER}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))
}

async fn body(response: Response<Incoming>) -> String {
    String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap()
}

fn secrets() -> SecretSet {
    let info = SecretInfo {
        id: "sec_0000000000000001".into(),
        name: "gh".into(),
        env_var: "GITHUB_TOKEN".into(),
        hosts: vec![HOST.into()],
        proxy_value: PLACEHOLDER.into(),
        created_at: String::new(),
        updated_at: String::new(),
        inject_query: false,
        slots: Some(veil_core::inject::Slots {
            json: Some(veil_core::inject::Pointers::Any),
            ..Default::default()
        }),
        methods: Vec::new(),
        paths: Vec::new(),
        aws: None,
    };
    [
        LiveSecret {
            info,
            hosts: vec![HostPattern::parse(HOST).unwrap()],
            route: Default::default(),
            value: Arc::new(SecretValue::parse(SECRET.into()).unwrap()),
        },
        aws::secret(),
    ]
    .into_iter()
    .collect()
}

/// The test sandbox's cgroup id.
const SANDBOX_ID: u64 = 7;

fn event(peer: SocketAddr, dst: SocketAddr) -> Connection {
    Connection {
        sandbox: Some("test".into()),
        cgroup_id: SANDBOX_ID,
        pid: 42,
        uid: 0,
        gid: 0,
        comm: "client".into(),
        client: Some(peer),
        destination: Some(dst),
        host: None,
        protocol: ConnProtocol::Tcp,
        rule: None,
        verdict: Verdict::Refused,
        reason: "undecided".into(),
        count: 1,
    }
}

/// A CA and a server configuration for [`HOST`] and 127.0.0.1 signed by it.
fn upstream_pki() -> (String, Arc<ServerConfig>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec![HOST.to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap(),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (ca_cert.pem(), Arc::new(config))
}

/// An HTTPS upstream that reports what it saw of each request and answers as [`echo`] says
/// (`/slow` after 700 ms).
async fn serve_upstream(
    config: Arc<ServerConfig>,
    store: AuditStore,
    seen: mpsc::UnboundedSender<Seen>,
    accepted: Arc<AtomicUsize>,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(tls) = TlsAcceptor::from(Arc::clone(&config)).accept(tcp).await else {
                continue;
            };
            accepted.fetch_add(1, Ordering::SeqCst);
            let (store, seen) = (store.clone(), seen.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    if req.uri().path() == "/slots" {
                        let seen = seen.clone();
                        return slots_body(req, seen);
                    }
                    let header = |name: &str| {
                        req.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned)
                    };
                    let injections_on_disk = store
                        .query(&Filter {
                            kind: Some(EventKind::SecretInjected),
                            ..Filter::default()
                        })
                        .map_or(0, |records| records.len());
                    let _ = seen.send(Seen {
                        authorization: header("authorization"),
                        host: header("host"),
                        injections_on_disk,
                        body: None,
                    });
                    let authorization = header("authorization").unwrap_or_default();
                    let slow = req.uri().path() == "/slow";
                    let response = if req.uri().path() == "/ws" {
                        echo::websocket(req, authorization)
                    } else {
                        echo::respond(req.uri().path(), &authorization)
                    };
                    Box::pin(async move {
                        if slow {
                            tokio::time::sleep(std::time::Duration::from_millis(700)).await;
                        }
                        Ok::<_, hyper::Error>(response)
                    })
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    addr
}

/// The upstream's answer on `/slots`: reads the whole body, reports it, answers `200`.
fn slots_body(
    req: Request<Incoming>,
    seen: mpsc::UnboundedSender<Seen>,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Response<echo::UpBody>, hyper::Error>> + Send>,
> {
    Box::pin(async move {
        let body = req
            .into_body()
            .collect()
            .await
            .ok()
            .map(|b| b.to_bytes().to_vec());
        let _ = seen.send(Seen {
            authorization: None,
            host: None,
            injections_on_disk: 0,
            body,
        });
        Ok(echo::respond("/", ""))
    })
}

/// Sends raw HTTP/1.1 `request` over TLS for [`HOST`] through veil and reads the status line.
async fn raw_https(bench: &Bench, request: &[u8]) -> String {
    let mut tls = tls_to_host(bench).await;
    tls.write_all(request).await.unwrap();
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Opens a TLS connection for [`HOST`] through veil, offering HTTP/1.1.
async fn tls_to_host(bench: &Bench) -> tokio_rustls::client::TlsStream<TcpStream> {
    bench.tls(bench.upstream, HOST, b"http/1.1").await.unwrap()
}
