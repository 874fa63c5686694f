//! SigV4 re-signing on the request path: a request signed with the aws secret's placeholder key
//! reaches the upstream signed with the real key (checked by signing the same request with it),
//! over HTTP/1.1 and HTTP/2, only after its record is on disk; what cannot be re-signed is
//! answered 400 and never forwarded; an aws-chunked body is re-signed chunk by chunk.

use std::{
    convert::Infallible,
    time::{SystemTime, UNIX_EPOCH},
};

use http_body_util::Full;
use hyper::body::Frame;
use veil_core::{
    secrets::aws::{self as aws_secret, AwsInfo, AwsKeys},
    sigv4::{self as sig, AwsCredentials, Resigned, SignedRequest},
};

use super::*;
use crate::proxy::{
    inject_request::{Destination, Origin},
    sigv4::{injection, Failure, ResignBody, Watch},
};

const KEY_ID: &str = "AKIDREALKEY0000000001";
const SECRET_KEY: &str = "real/secret+access+key";
const AWS_ID: &str = "sec_00000000000000aa";
const AWS_PLACEHOLDER: &str = "IRONSH_PROXY_aws";

/// The aws secret `aws`, scoped to [`HOST`], without a session token.
pub fn secret() -> LiveSecret {
    let value = aws_secret::value_from_json(serde_json::json!({
        "access_key_id": KEY_ID, "secret_access_key": SECRET_KEY,
    }))
    .unwrap();
    LiveSecret {
        info: SecretInfo {
            id: AWS_ID.into(),
            name: "aws".into(),
            env_var: "AWS_ACCESS_KEY_ID".into(),
            hosts: vec![HOST.into()],
            proxy_value: AWS_PLACEHOLDER.into(),
            created_at: String::new(),
            updated_at: String::new(),
            inject_query: false,
            slots: None,
            methods: Vec::new(),
            paths: Vec::new(),
            aws: Some(AwsInfo::new(AWS_ID, AWS_PLACEHOLDER, false)),
        },
        hosts: vec![HostPattern::parse(HOST).unwrap()],
        route: Default::default(),
        value: Arc::new(value),
    }
}

fn placeholder_key() -> String {
    aws_secret::key_id_placeholder(AWS_ID)
}

/// `YYYYMMDDTHHMMSSZ` now.
fn amz_now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace(['-', ':'], "")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The `Authorization` value `credentials` sign `PUT target` with these headers with (every
/// one signed).
fn authorization(credentials: &AwsCredentials, target: &str, headers: &[(&str, &str)]) -> String {
    authorization_with_body(credentials, target, headers, None)
}

/// As [`authorization`], for a request without `x-amz-content-sha256` whose body hashes to
/// `body_sha256`.
fn authorization_with_body(
    credentials: &AwsCredentials,
    target: &str,
    headers: &[(&str, &str)],
    body_sha256: Option<&[u8; 32]>,
) -> String {
    let date = headers.iter().find(|(n, _)| *n == "x-amz-date").unwrap().1;
    let mut names: Vec<&str> = headers.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    let seed = format!(
        "AWS4-HMAC-SHA256 Credential={}/{}/us-east-1/s3/aws4_request, SignedHeaders={}, \
         Signature={}",
        credentials.key_id(),
        &date[..8],
        names.join(";"),
        "0".repeat(64)
    );
    let mut all: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
    all.push(("authorization", seed.as_bytes()));
    let signed = SignedRequest::parse(sig::Request {
        method: "PUT",
        target,
        headers: &all,
    })
    .unwrap();
    match signed.resign(credentials, body_sha256, unix_now()).unwrap() {
        Resigned::Header { authorization, .. } => authorization,
        Resigned::Query { .. } => unreachable!("header-signed"),
    }
}

fn placeholder_credentials() -> AwsCredentials {
    AwsCredentials::new(
        &placeholder_key(),
        SecretValue::parse(AWS_PLACEHOLDER.into()).unwrap(),
        None,
    )
    .unwrap()
}

fn real_credentials() -> AwsCredentials {
    AwsCredentials::new(KEY_ID, SecretValue::parse(SECRET_KEY.into()).unwrap(), None).unwrap()
}

/// A PUT of `body` to `uri` (path `/bucket/key`) signed with the placeholder key, for `host`,
/// and the Authorization the upstream must see.
fn signed_put(uri: &str, host: Option<&str>, body: &'static str) -> (Request<Full<Bytes>>, String) {
    signed_put_to(uri, "/bucket/key", host, body)
}

/// As [`signed_put`], for path `path`.
fn signed_put_to(
    uri: &str,
    path: &str,
    host: Option<&str>,
    body: &'static str,
) -> (Request<Full<Bytes>>, String) {
    let date = amz_now();
    let payload = sig::sha256_hex(body.as_bytes());
    let headers = [
        ("host", HOST),
        ("x-amz-content-sha256", payload.as_str()),
        ("x-amz-date", date.as_str()),
    ];
    let sent = authorization(&placeholder_credentials(), path, &headers);
    let expected = authorization(&real_credentials(), path, &headers);
    let mut request = Request::put(uri)
        .header("x-amz-content-sha256", payload)
        .header("x-amz-date", date)
        .header("authorization", sent);
    if let Some(host) = host {
        request = request.header("host", host);
    }
    (
        request.body(Full::new(Bytes::from(body))).unwrap(),
        expected,
    )
}

#[tokio::test]
async fn a_request_signed_with_the_placeholder_reaches_the_upstream_signed_with_the_real_key() {
    let mut bench = Bench::new(&[HOST]).await;
    let tls = bench.tls(bench.upstream, HOST, b"http/1.1").await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let (request, expected) = signed_put("/bucket/key", Some(HOST), "object body");
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = bench.seen.recv().await.unwrap();
    assert_eq!(seen.authorization.as_deref(), Some(expected.as_str()));
    assert!(expected.contains(KEY_ID));
    assert_eq!(seen.injections_on_disk, 1, "recorded before it left");
    let injected = bench.records(EventKind::SecretInjected).await;
    let json = injected[0].to_json();
    assert!(json.contains("\"header\":\"sigv4\""), "{json}");
    assert!(json.contains("\"secret_name\":\"aws\""), "{json}");
    assert!(!json.contains(SECRET_KEY));
}

#[tokio::test]
async fn http2_requests_are_re_signed_with_the_authority_as_host() {
    let mut bench = Bench::new(&[HOST]).await;
    let mut sender = bench.h2().await;
    let (request, expected) = signed_put("https://api.test/bucket/key", None, "h2 body");
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = bench.seen.recv().await.unwrap();
    assert_eq!(seen.authorization.as_deref(), Some(expected.as_str()));
}

#[tokio::test]
async fn what_cannot_be_re_signed_is_refused_and_never_forwarded() {
    let mut bench = Bench::new(&[HOST]).await;
    let key = placeholder_key();
    let date = amz_now();
    let stale = format!(
        "AWS4-HMAC-SHA256 Credential={key}/20200101/us-east-1/s3/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature={}",
        "0".repeat(64)
    );
    let cases: Vec<(String, String)> = vec![
        (
            format!(
                "Authorization: AWS4-HMAC-SHA256 Credential={key}/{}/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=nothex\r\nx-amz-date: {date}\r\n",
                &date[..8]
            ),
            "malformed".into(),
        ),
        (
            format!("Authorization: {stale}\r\nx-amz-date: 20200101T000000Z\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD\r\n"),
            "seconds away".into(),
        ),
        (
            format!(
                "Authorization: AWS4-HMAC-SHA256 Credential={key}/{}/us-east-1/s3/aws4_request, SignedHeaders=x-amz-date, Signature={}\r\nx-amz-date: {date}\r\n",
                &date[..8],
                "0".repeat(64)
            ),
            "host header is not signed".into(),
        ),
    ];
    for (headers, why) in cases {
        let mut tls = tls_to_host(&bench).await;
        let request = format!(
            "GET /bucket/key HTTP/1.1\r\nHost: api.test\r\n{headers}Connection: close\r\n\r\n"
        );
        tls.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        let _ = tls.read_to_end(&mut response).await;
        let text = String::from_utf8_lossy(&response);
        assert!(text.starts_with("HTTP/1.1 400"), "{text}");
        assert!(text.contains(&why), "{why}: {text}");
        assert!(!text.contains(SECRET_KEY) && !text.contains(KEY_ID));
    }
    assert!(
        bench.seen.try_recv().is_err(),
        "nothing reached the upstream"
    );
    assert!(bench.records(EventKind::SecretInjected).await.is_empty());
    let refused = bench.records(EventKind::PlaceholderNotInjected).await;
    assert_eq!(refused.len(), 3);
    assert!(refused
        .iter()
        .all(|r| r.to_json().contains("\"reason\":\"refused: ")));
}

#[tokio::test]
async fn a_request_without_a_signature_or_with_another_key_passes_untouched() {
    let mut bench = Bench::new(&[HOST]).await;
    let (request, _) = signed_put("/bucket/key", Some(HOST), "x");
    let other = request
        .headers()
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap()
        .replace(&placeholder_key(), "AKIDSOMEONEELSE");
    let header = |name: &str| request.headers().get(name).unwrap().to_str().unwrap();
    let raw = format!(
        "GET / HTTP/1.1\r\nHost: api.test\r\nAuthorization: {other}\r\nX-Note: {}\r\n\
         x-amz-date: {}\r\nx-amz-content-sha256: {}\r\nConnection: close\r\n\r\n",
        placeholder_key(),
        header("x-amz-date"),
        header("x-amz-content-sha256"),
    );
    assert!(raw_https(&bench, raw.as_bytes())
        .await
        .starts_with("HTTP/1.1 200"));
    let seen = bench.seen.recv().await.unwrap();
    assert_eq!(seen.authorization.as_deref(), Some(other.as_str()));
    let unsigned = format!(
        "GET / HTTP/1.1\r\nHost: api.test\r\nX-Note: {}\r\nConnection: close\r\n\r\n",
        placeholder_key()
    );
    assert!(raw_https(&bench, unsigned.as_bytes())
        .await
        .starts_with("HTTP/1.1 200"));
    assert!(bench.records(EventKind::SecretInjected).await.is_empty());
}

/// An aws-chunked body of `chunks`, signed with `key` from `seed`.
fn chunked_body(chunks: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    for chunk in chunks.iter().chain([&&b""[..]]) {
        body.extend_from_slice(
            format!("{:x};chunk-signature={}\r\n", chunk.len(), "a".repeat(64)).as_bytes(),
        );
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
    }
    body
}

/// A body handing out its pieces one frame each.
struct Pieces(std::collections::VecDeque<Bytes>);

impl hyper::body::Body for Pieces {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|p| Ok(Frame::data(p))))
    }
}

/// A body handing out `body` in `piece`-byte frames.
fn pieces(body: &[u8], piece: usize) -> crate::proxy::sigv4::ReqBody {
    Pieces(body.chunks(piece).map(Bytes::copy_from_slice).collect())
        .map_err(|never| match never {})
        .boxed()
}

fn resigner() -> veil_core::sigv4::ChunkResigner {
    let set: SecretSet = std::iter::once(secret()).collect();
    let (table, _) = aws_secret::AwsTable::build(&set);
    let keys: &AwsKeys = &table.get(&placeholder_key()).unwrap().keys;
    let date = amz_now();
    let headers = [
        ("host", HOST),
        ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
        ("x-amz-date", date.as_str()),
    ];
    let seed = authorization(&placeholder_credentials(), "/b/k", &headers);
    let mut all: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
    all.push(("authorization", seed.as_bytes()));
    let signed = SignedRequest::parse(sig::Request {
        method: "PUT",
        target: "/b/k",
        headers: &all,
    })
    .unwrap();
    match signed.resign(&keys.credentials, None, unix_now()).unwrap() {
        Resigned::Header {
            body: Some(resigner),
            ..
        } => resigner,
        other => panic!("{other:?}"),
    }
}

fn watch(bench: &Bench, failure: &Failure) -> Watch {
    let set: SecretSet = std::iter::once(secret()).collect();
    let (table, _) = aws_secret::AwsTable::build(&set);
    let entry = table.get(&placeholder_key()).unwrap();
    let origin = Origin::of(&event(bench.upstream, bench.upstream), SANDBOX_ID);
    let to = Destination {
        host: HOST,
        verified: true,
        addr: bench.upstream,
        protocol: crate::audit::RequestProtocol::Http1,
    };
    Watch::new(
        Arc::clone(&bench.ctx),
        injection(&origin, &to, entry, None),
        Arc::clone(failure),
    )
}

#[tokio::test]
async fn an_aws_chunked_body_is_re_signed_whatever_the_pieces_and_keeps_its_length() {
    let bench = Bench::new(&[HOST]).await;
    let data = vec![7u8; 70_000];
    let body = chunked_body(&[&data[..65_536], &data[65_536..]]);
    let mut outputs = Vec::new();
    for piece in [1, 7, 4096, body.len()] {
        let failure = Failure::default();
        let wrapped = ResignBody::new(pieces(&body, piece), resigner(), watch(&bench, &failure));
        let out = wrapped.collect().await.unwrap().to_bytes();
        assert_eq!(out.len(), body.len());
        assert!(failure.lock().unwrap().is_none());
        outputs.push(out);
    }
    // Same date second or not, each run re-signs every chunk: the signatures are new, the
    // sizes and data are kept.
    let text = String::from_utf8_lossy(&outputs[0]);
    assert!(
        !text.contains(&"a".repeat(64)),
        "every chunk signature was replaced"
    );
    assert!(text.starts_with("10000;chunk-signature="));
}

#[tokio::test]
async fn a_broken_or_truncated_aws_chunked_body_fails_and_says_why() {
    let bench = Bench::new(&[HOST]).await;
    let mut broken = chunked_body(&[b"hello"]);
    broken[3] = b'X';
    let whole = chunked_body(&[b"hello", b"world"]);
    let truncated = whole[..whole.len() - 10].to_vec();
    for (body, why) in [(broken, "malformed"), (truncated, "ended before")] {
        let failure = Failure::default();
        let wrapped = ResignBody::new(pieces(&body, 3), resigner(), watch(&bench, &failure));
        let err = wrapped.collect().await.err().unwrap().to_string();
        assert!(err.contains(why), "{err}");
        assert!(failure
            .lock()
            .unwrap()
            .as_deref()
            .is_some_and(|f| f.contains(why)));
    }
}

#[tokio::test]
async fn an_upstream_echoing_the_new_signature_gives_back_the_placeholder_key_id() {
    let bench = Bench::new(&[HOST]).await;
    let tls = bench.tls(bench.upstream, HOST, b"http/1.1").await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let (request, _) = signed_put_to("/echo-body", "/echo-body", Some(HOST), "x");
    let response = sender.send_request(request).await.unwrap();
    let echoed = body(response).await;
    assert!(
        echoed.contains(&format!("Credential={}/", placeholder_key())),
        "{echoed}"
    );
    assert!(!echoed.contains(KEY_ID), "{echoed}");
}

#[tokio::test]
async fn a_body_without_a_payload_hash_is_hashed_and_one_too_long_is_refused_unread() {
    let mut bench = Bench::new(&[HOST]).await;
    let form = "Action=GetCallerIdentity&Version=2011-06-15";
    let date = amz_now();
    let headers = [("host", HOST), ("x-amz-date", date.as_str())];
    let digest = ring::digest::digest(&ring::digest::SHA256, form.as_bytes());
    let sha: [u8; 32] = digest.as_ref().try_into().unwrap();
    let sent = authorization_with_body(&placeholder_credentials(), "/", &headers, Some(&sha));
    let expected = authorization_with_body(&real_credentials(), "/", &headers, Some(&sha));
    let raw = format!(
        "PUT / HTTP/1.1\r\nHost: api.test\r\nx-amz-date: {date}\r\nAuthorization: {sent}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    );
    assert!(raw_https(&bench, raw.as_bytes())
        .await
        .starts_with("HTTP/1.1 200"));
    let seen = bench.seen.recv().await.unwrap();
    assert_eq!(seen.authorization.as_deref(), Some(expected.as_str()));

    let head = format!(
        "PUT / HTTP/1.1\r\nHost: api.test\r\nx-amz-date: {date}\r\nAuthorization: {sent}\r\n\
         Content-Length: {}\r\n\r\n",
        9 << 20
    );
    let mut tls = tls_to_host(&bench).await;
    tls.write_all(head.as_bytes()).await.unwrap();
    let mut response = vec![0; 4096];
    let n = tls.read(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        bench.seen.try_recv().is_err(),
        "nothing reached the upstream"
    );
}
