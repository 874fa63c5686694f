//! Upstream connections kept between sandbox connections and while one is quiet: reused for
//! the same sandbox, address, name and ALPN offer only, and dropped after the pool's idle
//! time; a request that finds its connection closed, or parked and gone, goes over a new
//! verified one.

use std::time::Duration;

use super::*;

/// Waits until the pool keeps `n` connections (a connection is put back once veil has
/// seen its client's connection end).
async fn kept(bench: &Bench, n: usize) {
    for _ in 0..200 {
        if bench.ctx.pool.idle() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the pool keeps {}, not {n}", bench.ctx.pool.idle());
}

/// One request on a new connection from `sandbox`, through veil: the upstream must get the
/// secret.
async fn request_from(bench: &mut Bench, sandbox: u64) {
    let tls = bench
        .tls_from(sandbox, bench.upstream, HOST, b"http/1.1")
        .await
        .unwrap();
    served_with_the_secret(bench, send(tls, HOST).await.unwrap()).await;
}

/// Checks that `response` is the upstream's, and the upstream got the secret.
async fn served_with_the_secret(bench: &mut Bench, response: Response<Incoming>) {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, "upstream");
    let seen = bench.seen.recv().await.unwrap();
    seen.assert_secret();
}

#[tokio::test]
async fn a_new_connection_from_the_same_sandbox_reuses_the_verified_upstream() {
    let mut bench = Bench::new(&[HOST]).await;
    request_from(&mut bench, SANDBOX_ID).await;
    kept(&bench, 1).await;
    request_from(&mut bench, SANDBOX_ID).await;
    kept(&bench, 1).await;
    assert_eq!(
        bench.accepted.load(Ordering::SeqCst),
        1,
        "one upstream TLS connection"
    );
    let connections = bench.records(EventKind::Connection).await;
    assert_eq!(
        connections.len(),
        2,
        "each sandbox connection is still recorded"
    );
    assert_eq!(bench.records(EventKind::SecretInjected).await.len(), 2);
}

/// How long the pool of [`quick_pool`] keeps a connection.
const QUICK_IDLE: Duration = Duration::from_millis(800);

/// How long a sandbox connection is quiet before [`quick_pool`] parks its upstream connection.
const QUICK_PARK: Duration = Duration::from_millis(150);

/// A bench whose pool keeps connections for [`QUICK_IDLE`] and parks after [`QUICK_PARK`].
async fn quick_pool() -> Bench {
    Bench::with_pool(
        &[HOST],
        crate::proxy::pool::Pool::new(QUICK_IDLE, QUICK_PARK),
    )
    .await
}

#[tokio::test]
async fn kept_connections_serve_neither_another_sandbox_nor_past_their_idle_time() {
    let mut bench = quick_pool().await;
    request_from(&mut bench, SANDBOX_ID).await;
    kept(&bench, 1).await;
    request_from(&mut bench, SANDBOX_ID + 1).await;
    assert_eq!(
        bench.accepted.load(Ordering::SeqCst),
        2,
        "another sandbox gets a connection of its own"
    );
    kept(&bench, 2).await;
    tokio::time::sleep(QUICK_IDLE + Duration::from_millis(300)).await;
    kept(&bench, 0).await;
    request_from(&mut bench, SANDBOX_ID).await;
    assert_eq!(bench.accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn an_h2_connection_is_not_kept() {
    let bench = Bench::new(&[HOST]).await;
    let mut sender = bench.h2().await;
    let request = Request::get(format!("https://{HOST}/"))
        .header("authorization", format!("Bearer {PLACEHOLDER}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(body(response).await, "upstream");
    drop(sender);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(bench.ctx.pool.idle(), 0);
}

/// A sandbox connection through veil offering `alpn` (none if empty) that the test holds on
/// to, driven by a task of its own.
async fn held_connection(
    bench: &Bench,
    alpn: &[u8],
) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let tls = bench.tls(bench.upstream, HOST, alpn).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// `GET path` for [`HOST`] with the placeholder as a bearer token.
fn get(path: &str) -> Request<Empty<Bytes>> {
    Request::get(path)
        .header("host", HOST)
        .header("authorization", format!("Bearer {PLACEHOLDER}"))
        .body(Empty::<Bytes>::new())
        .unwrap()
}

/// Sends `GET /` on `sender` once it is ready: the upstream must get the secret.
async fn request_on(
    bench: &mut Bench,
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
) {
    sender.ready().await.unwrap();
    let response = sender.send_request(get("/")).await.unwrap();
    served_with_the_secret(bench, response).await;
}

/// A connection offering `alpn` sends a request, falls quiet until its upstream connection is
/// parked, and sends another, which must take that connection back from the pool.
async fn parks_and_takes_back(bench: &mut Bench, alpn: &[u8]) {
    let mut sender = held_connection(bench, alpn).await;
    request_on(bench, &mut sender).await;
    kept(bench, 1).await;
    request_on(bench, &mut sender).await;
    assert_eq!(
        bench.accepted.load(Ordering::SeqCst),
        1,
        "one upstream TLS connection"
    );
}

#[tokio::test]
async fn a_quiet_connection_parks_its_upstream_and_takes_it_back() {
    let mut bench = quick_pool().await;
    parks_and_takes_back(&mut bench, b"http/1.1").await;
    assert_eq!(bench.ctx.pool.idle(), 0, "taken back from the pool");
}

#[tokio::test]
async fn a_quiet_connection_whose_parked_upstream_is_gone_dials_a_new_one() {
    let mut bench = quick_pool().await;
    let mut sender = held_connection(&bench, b"http/1.1").await;
    request_on(&mut bench, &mut sender).await;
    kept(&bench, 1).await;
    tokio::time::sleep(QUICK_IDLE + Duration::from_millis(300)).await;
    kept(&bench, 0).await;
    request_on(&mut bench, &mut sender).await;
    assert_eq!(bench.accepted.load(Ordering::SeqCst), 2);
    assert_eq!(bench.records(EventKind::SecretInjected).await.len(), 2);
}

#[tokio::test]
async fn a_client_without_alpn_parks_too_but_a_new_one_is_never_handed_a_kept_connection() {
    let mut bench = quick_pool().await;
    parks_and_takes_back(&mut bench, b"").await;
    kept(&bench, 1).await;
    // A new connection without ALPN might not speak HTTP: it gets an upstream of its own.
    let mut other = held_connection(&bench, b"").await;
    request_on(&mut bench, &mut other).await;
    assert_eq!(bench.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_connection_waiting_for_its_response_is_not_parked() {
    let mut bench = quick_pool().await;
    let mut sender = held_connection(&bench, b"http/1.1").await;
    let response = tokio::spawn(async move { sender.send_request(get("/slow")).await });
    // The upstream answers `/slow` after several quiet spells; nothing is parked meanwhile.
    for _ in 0..4 {
        tokio::time::sleep(QUICK_PARK).await;
        assert_eq!(bench.ctx.pool.idle(), 0);
    }
    let response = response.await.unwrap().unwrap();
    served_with_the_secret(&mut bench, response).await;
    kept(&bench, 1).await;
    assert_eq!(bench.accepted.load(Ordering::SeqCst), 1);
}

/// Serves one client connection (plain HTTP/1.1 over a pipe) with `sender` as the upstream
/// connection, as `intercept` does for the sandbox's end, with a way to get another or not.
async fn serve_with(
    bench: &Bench,
    sender: hyper::client::conn::http1::SendRequest<sigv4::ReqBody>,
    redial: bool,
) -> tokio::io::DuplexStream {
    let (client, served) = tokio::io::duplex(64 * 1024);
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let forwarder = Forwarder {
        ctx: Arc::clone(&bench.ctx),
        origin: Origin::of(&event(peer, bench.upstream), SANDBOX_ID),
        dst: bench.upstream,
        leg: Leg::Tls(Some(HOST.to_owned())),
        policy: bench.ctx.policy(),
    };
    let reuse = redial.then(|| crate::proxy::pool::Reuse {
        pool: bench.ctx.pool.clone(),
        key: crate::proxy::pool::Key {
            sandbox: SANDBOX_ID,
            dst: bench.upstream,
            sni: Some(HOST.to_owned()),
            alpn: vec![b"http/1.1".to_vec()],
        },
        name: PkiName::try_from(HOST).unwrap(),
    });
    tokio::spawn(http::serve_h1(served, sender, reuse, forwarder));
    client
}

/// A sender whose connection is already over (its far end gone), as a kept connection is
/// when upstream closes it just as it is handed out.
async fn closed_sender() -> hyper::client::conn::http1::SendRequest<sigv4::ReqBody> {
    let (near, far) = tokio::io::duplex(4096);
    let sender = http::h1_sender(near).await.unwrap();
    drop(far);
    for _ in 0..200 {
        if sender.is_closed() {
            return sender;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the connection did not close");
}

#[tokio::test]
async fn a_request_on_a_connection_found_closed_goes_over_a_new_verified_one() {
    let mut bench = Bench::new(&[HOST]).await;
    let client = serve_with(&bench, closed_sender().await, true).await;
    served_with_the_secret(&mut bench, send(client, HOST).await.unwrap()).await;
    assert_eq!(bench.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn without_a_way_to_reconnect_a_closed_connection_is_a_502() {
    let bench = Bench::new(&[HOST]).await;
    let client = serve_with(&bench, closed_sender().await, false).await;
    let response = send(client, HOST).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(bench.accepted.load(Ordering::SeqCst), 0);
}

/// An open, idle sender over a pipe (its far end handed back, to keep it open).
async fn idle_sender() -> (
    hyper::client::conn::http1::SendRequest<sigv4::ReqBody>,
    tokio::io::DuplexStream,
) {
    let (near, far) = tokio::io::duplex(4096);
    let mut sender = http::h1_sender(near).await.unwrap();
    sender.ready().await.unwrap();
    (sender, far)
}

#[tokio::test]
async fn one_sandbox_cannot_fill_the_pool() {
    use crate::proxy::pool::{Key, Pool, PER_KEY, PER_SANDBOX};
    let pool = Pool::default();
    let key = |sandbox: u64, port: u16| Key {
        sandbox,
        dst: SocketAddr::from(([127, 0, 0, 1], port)),
        sni: Some(HOST.to_owned()),
        alpn: vec![b"http/1.1".to_vec()],
    };
    let mut pipes = Vec::new();
    for i in 0..PER_SANDBOX + 8 {
        let (sender, far) = idle_sender().await;
        pipes.push(far);
        pool.put(key(1, 1000 + (i / PER_KEY) as u16), sender);
    }
    assert_eq!(pool.idle_for(1), PER_SANDBOX);
    let (sender, far) = idle_sender().await;
    pipes.push(far);
    pool.put(key(2, 1000), sender);
    assert_eq!(pool.idle_for(2), 1, "another sandbox still has room");
    assert!(pool.take(&key(1, 1000)).is_some());
    assert_eq!(pool.idle_for(1), PER_SANDBOX - 1);
    assert_eq!(pool.idle(), PER_SANDBOX);
}
