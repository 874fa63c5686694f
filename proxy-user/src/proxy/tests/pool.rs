//! Upstream connections kept between sandbox connections: reused for the same sandbox,
//! address, name and ALPN offer only, and dropped after [`crate::proxy::pool::IDLE`].

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
    let tcp = bench.steer_from(sandbox, bench.upstream).await;
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(bench.veil_ca.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tls = TlsConnector::from(Arc::new(config))
        .connect(PkiName::try_from(HOST).unwrap(), tcp)
        .await
        .unwrap();
    let response = send(tls, HOST).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, "upstream");
    let seen = bench.seen.recv().await.unwrap();
    assert_eq!(
        seen.authorization.as_deref(),
        Some(&*format!("Bearer {SECRET}"))
    );
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

#[tokio::test]
async fn kept_connections_serve_neither_another_sandbox_nor_past_their_idle_time() {
    let mut bench = Bench::new(&[HOST]).await;
    request_from(&mut bench, SANDBOX_ID).await;
    kept(&bench, 1).await;
    request_from(&mut bench, SANDBOX_ID + 1).await;
    assert_eq!(
        bench.accepted.load(Ordering::SeqCst),
        2,
        "another sandbox gets a connection of its own"
    );
    kept(&bench, 2).await;
    tokio::time::sleep(crate::proxy::pool::IDLE + Duration::from_millis(300)).await;
    kept(&bench, 0).await;
    request_from(&mut bench, SANDBOX_ID).await;
    assert_eq!(bench.accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn an_h2_connection_is_not_kept() {
    let bench = Bench::new(&[HOST]).await;
    let tls = bench.tls(bench.upstream, HOST, b"h2").await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
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
