//! The data path without root, BPF or the kernel's records: a connection accepted on a local
//! socket is served by [`serve`] against an in-process HTTPS upstream, with a real audit log in
//! a temporary directory. Covers classification, denial, interception, injection, 421 and
//! the rule that a secret leaves only after its record is on disk.

use std::{net::SocketAddr, sync::Arc, time::Instant};

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

const SECRET: &str = "s3cr3t-token-value";
const PLACEHOLDER: &str = "IRONSH_PROXY_gh";
const HOST: &str = "api.test";

/// What the upstream saw of one request: its Authorization header, and how many
/// `secret_injected` records were on disk when it arrived.
struct Seen {
    authorization: Option<String>,
    host: Option<String>,
    injections_on_disk: usize,
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
}

impl Bench {
    async fn new(allow: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (upstream_ca, server_config) = upstream_pki();
        let ca_file = dir.path().join("upstream-ca.pem");
        std::fs::write(&ca_file, upstream_ca).unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let store = AuditStore::open(&db, dir.path()).unwrap();
        let (audit, writer) = AuditWriter::spawn(store.clone());
        let (tx, seen) = mpsc::unbounded_channel();
        let upstream = serve_upstream(server_config, store.clone(), tx).await;
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
        });
        Self {
            _dir: dir,
            _writer: writer,
            ctx,
            store,
            upstream,
            seen,
            veil_ca,
        }
    }

    /// A client connection steered to `dst`: the test's end, with veil serving the other.
    async fn steer(&self, dst: SocketAddr) -> TcpStream {
        let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(front.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, peer) = front.accept().await.unwrap();
        let conn = Steered {
            ctx: Arc::clone(&self.ctx),
            client: accepted,
            dst,
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
        let tcp = self.steer(dst).await;
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(self.veil_ca.clone())
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tls = TlsConnector::from(Arc::new(config))
            .connect(PkiName::try_from(sni.to_owned()).unwrap(), tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        send(tls, host).await
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
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(conn);
    let request = Request::get("/")
        .header("host", host)
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
    };
    std::iter::once(LiveSecret {
        info,
        hosts: vec![HostPattern::parse(HOST).unwrap()],
        value: Arc::new(SecretValue::parse(SECRET.into()).unwrap()),
    })
    .collect()
}

fn event(peer: SocketAddr, dst: SocketAddr) -> Connection {
    Connection {
        sandbox: Some("test".into()),
        cgroup_id: 7,
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

/// An HTTPS upstream that reports what it saw of each request and answers `200 upstream`.
async fn serve_upstream(
    config: Arc<ServerConfig>,
    store: AuditStore,
    seen: mpsc::UnboundedSender<Seen>,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(tls) = TlsAcceptor::from(Arc::clone(&config)).accept(tcp).await else {
                continue;
            };
            let (store, seen) = (store.clone(), seen.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
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
                    });
                    async {
                        Ok::<_, hyper::Error>(Response::new(http_body_util::Full::new(
                            Bytes::from("upstream"),
                        )))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_in_scope_request_gets_the_secret_only_after_its_record_is_on_disk() {
    let mut bench = Bench::new(&[HOST]).await;
    let response = bench.https(bench.upstream, HOST, HOST).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, "upstream");
    let seen = bench.seen.recv().await.unwrap();
    assert_eq!(
        seen.authorization.as_deref(),
        Some(&*format!("Bearer {SECRET}"))
    );
    assert_eq!(seen.host.as_deref(), Some(HOST));
    assert_eq!(
        seen.injections_on_disk, 1,
        "the record was durable before the request left"
    );
    let injected = bench.records(EventKind::SecretInjected).await;
    assert_eq!(injected.len(), 1);
    let json = injected[0].to_json();
    assert!(json.contains("\"secret_name\":\"gh\""), "{json}");
    assert!(!json.contains(SECRET), "the record never holds the value");
    let connections = bench.records(EventKind::Connection).await;
    assert_eq!(connections.len(), 1, "one record per connection");
    assert!(connections[0]
        .to_json()
        .contains("\"reason\":\"intercepted\""));
}

#[tokio::test]
async fn a_host_other_than_the_sni_is_misdirected_and_nothing_is_forwarded() {
    let mut bench = Bench::new(&[HOST]).await;
    let response = bench
        .https(bench.upstream, HOST, "other.test")
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::MISDIRECTED_REQUEST);
    assert!(bench.seen.try_recv().is_err(), "upstream saw no request");
    assert!(bench.records(EventKind::SecretInjected).await.is_empty());
}

/// Sends raw HTTP/1.1 `request` over TLS for [`HOST`] through veil and reads the status line.
async fn raw_https(bench: &Bench, request: &[u8]) -> String {
    let tcp = bench.steer(bench.upstream).await;
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(bench.veil_ca.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(PkiName::try_from(HOST.to_owned()).unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(request).await.unwrap();
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn absolute_form_fronting_and_duplicate_hosts_are_misdirected() {
    let mut bench = Bench::new(&[HOST]).await;
    let requests: [&[u8]; 4] = [
        b"GET https://api.test/ HTTP/1.1\r\nHost: evil.test\r\nAuthorization: Bearer IRONSH_PROXY_gh\r\nConnection: close\r\n\r\n",
        b"GET https://evil.test/ HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer IRONSH_PROXY_gh\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: api.test\r\nHost: evil.test\r\nAuthorization: Bearer IRONSH_PROXY_gh\r\nConnection: close\r\n\r\n",
        b"GET https://api.test@evil.test/ HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer IRONSH_PROXY_gh\r\nConnection: close\r\n\r\n",
    ];
    for request in requests {
        let status = raw_https(&bench, request).await;
        assert!(
            status.starts_with("HTTP/1.1 421") || status.starts_with("HTTP/1.1 400"),
            "{status} for {}",
            String::from_utf8_lossy(request)
        );
    }
    assert!(bench.seen.try_recv().is_err(), "upstream saw no request");
    assert!(bench.records(EventKind::SecretInjected).await.is_empty());
}

#[tokio::test]
async fn an_h2_host_header_other_than_the_authority_is_misdirected() {
    let mut bench = Bench::new(&[HOST]).await;
    let tcp = bench.steer(bench.upstream).await;
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(bench.veil_ca.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tls = TlsConnector::from(Arc::new(config))
        .connect(PkiName::try_from(HOST.to_owned()).unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(b"h2".as_slice()));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    for (authority, host) in [
        ("https://api.test/", "evil.test"),
        ("https://evil.test/", "api.test"),
    ] {
        let request = Request::get(authority)
            .header("host", host)
            .header("authorization", format!("Bearer {PLACEHOLDER}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::MISDIRECTED_REQUEST,
            "{authority} {host}"
        );
    }
    let request = Request::get("https://api.test/")
        .header("authorization", format!("Bearer {PLACEHOLDER}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    assert_eq!(
        sender.send_request(request).await.unwrap().status(),
        StatusCode::OK
    );
    let seen = bench.seen.recv().await.unwrap();
    assert_eq!(
        seen.authorization.as_deref(),
        Some(&*format!("Bearer {SECRET}"))
    );
    assert!(
        bench.seen.try_recv().is_err(),
        "only the good request went upstream"
    );
}

#[tokio::test]
async fn upstream_gets_the_verified_authority_only() {
    let mut bench = Bench::new(&[HOST]).await;
    let status = raw_https(
        &bench,
        b"GET https://API.TEST./ HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer IRONSH_PROXY_gh\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let seen = bench.seen.recv().await.unwrap();
    assert_eq!(seen.host.as_deref(), Some(HOST));
    assert_eq!(
        seen.authorization.as_deref(),
        Some(&*format!("Bearer {SECRET}"))
    );
}

#[tokio::test]
async fn a_denied_sni_gets_veils_403_and_no_upstream_connection() {
    let mut bench = Bench::new(&[HOST]).await;
    let response = bench
        .https(bench.upstream, "evil.test", "evil.test")
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(body(response)
        .await
        .contains("egress to evil.test is denied"));
    assert!(bench.seen.try_recv().is_err());
    let connections = bench.records(EventKind::Connection).await;
    assert_eq!(connections.len(), 1);
    assert!(matches!(
        connections[0].event,
        crate::audit::Event::Connection(ref c) if c.verdict == Verdict::Refused && c.protocol == ConnProtocol::Tls
    ));
}

#[tokio::test]
async fn plain_http_never_carries_a_secret() {
    let bench = Bench::new(&[HOST, "127.0.0.1/32"]).await;
    // A plain-HTTP upstream on the same address would be needed to see the request; the
    // placeholder is left alone before anything is forwarded, and that is recorded.
    let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dst = plain.local_addr().unwrap();
    let upstream = tokio::spawn(async move {
        let (mut tcp, _) = plain.accept().await.unwrap();
        let mut head = Vec::new();
        let mut chunk = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tcp.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the request head arrives");
            head.extend_from_slice(&chunk[..n]);
        }
        tcp.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .await
            .unwrap();
        String::from_utf8(head).unwrap()
    });
    let response = send(bench.steer(dst).await, HOST).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let head = upstream.await.unwrap();
    assert!(head.contains(PLACEHOLDER), "{head}");
    assert!(!head.contains(SECRET));
    assert_eq!(
        bench.records(EventKind::PlaceholderNotInjected).await.len(),
        1
    );
}

#[tokio::test]
async fn other_bytes_to_an_address_no_rule_allows_are_refused() {
    let bench = Bench::new(&[HOST]).await;
    let mut client = bench.steer("127.0.0.1:9".parse().unwrap()).await;
    client
        .write_all(b"\x00\x01binary protocol\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest).await;
    assert!(rest.is_empty(), "veil closes without answering");
    let connections = bench.records(EventKind::Connection).await;
    assert_eq!(connections.len(), 1);
    assert!(matches!(
        connections[0].event,
        crate::audit::Event::Connection(ref c) if c.verdict == Verdict::Refused && c.protocol == ConnProtocol::Tcp
    ));
}

#[tokio::test]
async fn a_broken_client_hello_is_refused_and_recorded() {
    let bench = Bench::new(&[HOST]).await;
    let mut client = bench.steer(bench.upstream).await;
    // A handshake record whose message is not a ClientHello.
    client
        .write_all(&[0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00])
        .await
        .unwrap();
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest).await;
    let connections = bench.records(EventKind::Connection).await;
    assert_eq!(connections.len(), 1);
    assert!(
        connections[0].to_json().contains("unusable first bytes"),
        "{}",
        connections[0].to_json()
    );
}
