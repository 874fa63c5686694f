//! The request path: classification, denial, interception, injection, strict authority,
//! limits, and durable records before a secret leaves.

use super::*;

#[tokio::test]
async fn an_in_scope_request_gets_the_secret_only_after_its_record_is_on_disk() {
    let mut bench = Bench::new(&[HOST]).await;
    let response = bench.https(bench.upstream, HOST, HOST).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, "upstream");
    let seen = bench.seen.recv().await.unwrap();
    seen.assert_secret();
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
    let mut sender = bench.h2().await;
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
    seen.assert_secret();
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
    seen.assert_secret();
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

#[tokio::test]
async fn a_client_that_never_sends_its_request_head_is_closed() {
    let limits = Limits {
        head_timeout: std::time::Duration::from_millis(300),
        ..Limits::default()
    };
    let bench = Bench::with_limits(&[HOST], limits).await;
    let mut tls = tls_to_host(&bench).await;
    tls.write_all(b"GET / HTTP/1.1\r\nHost: api.te")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tls.read_to_end(&mut rest),
    )
    .await;
    assert!(read.is_ok(), "veil closed the connection");
    let records = bench.records(EventKind::LimitExceeded).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(records[0].to_json().contains("request_head_timeout"));
}

#[tokio::test]
async fn an_idle_connection_is_closed() {
    let limits = Limits {
        idle_timeout: std::time::Duration::from_millis(300),
        ..Limits::default()
    };
    let bench = Bench::with_limits(&[HOST], limits).await;
    let mut tls = tls_to_host(&bench).await;
    let mut rest = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tls.read_to_end(&mut rest),
    )
    .await;
    assert!(read.is_ok(), "veil closed the connection");
    let records = bench.records(EventKind::LimitExceeded).await;
    assert!(
        records.iter().any(|r| {
            let json = r.to_json();
            json.contains("idle_timeout") || json.contains("request_head_timeout")
        }),
        "{records:?}"
    );
}

#[tokio::test]
async fn an_oversized_request_head_is_refused_and_not_forwarded() {
    let mut bench = Bench::new(&[HOST]).await;
    let mut tls = tls_to_host(&bench).await;
    let big = "x".repeat(100 * 1024);
    let request = format!("GET / HTTP/1.1\r\nHost: api.test\r\nX-Big: {big}\r\n\r\n");
    let _ = tls.write_all(request.as_bytes()).await;
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    let status = String::from_utf8_lossy(&response);
    assert!(
        status.is_empty() || status.starts_with("HTTP/1.1 431"),
        "{status}"
    );
    assert!(bench.seen.try_recv().is_err(), "nothing was forwarded");
}

#[tokio::test]
async fn a_name_binds_first_to_what_the_sandbox_was_answered() {
    let bench = Bench::new(&[HOST]).await;
    let dst: SocketAddr = "192.0.2.1:80".parse().unwrap();
    assert!(
        bench.ctx.bind(7, "localhost", dst).await.is_err(),
        "the resolver says otherwise"
    );
    let answered = veil_core::dns::Address {
        ip: dst.ip(),
        ttl: 60,
    };
    bench.ctx.answers.remember(7, "localhost", &[answered]);
    assert_eq!(bench.ctx.bind(7, "LocalHost.", dst).await, Ok(()));
    assert!(
        bench.ctx.bind(8, "localhost", dst).await.is_err(),
        "another sandbox's answers do not count"
    );
    let loopback: SocketAddr = "127.0.0.1:80".parse().unwrap();
    assert_eq!(
        bench.ctx.bind(8, "localhost", loopback).await,
        Ok(()),
        "the resolver decides the rest"
    );
}
