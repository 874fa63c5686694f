//! Responses that hand the injected secret back: whatever the form or framing, the sandbox
//! gets the placeholder or no response, never the value, and the audit log says so.

use base64::Engine as _;
use http_body_util::BodyExt;

use super::*;

/// What a response delivered: its headers and body, or the error that cut it off.
async fn fetch(bench: &Bench, path: &str) -> (hyper::HeaderMap, Result<Vec<u8>, String>) {
    let (status, headers, body) = fetch_status(bench, path).await;
    assert_eq!(status, StatusCode::OK, "{path}");
    (headers, body)
}

/// [`fetch`], with the status.
async fn fetch_status(
    bench: &Bench,
    path: &str,
) -> (StatusCode, hyper::HeaderMap, Result<Vec<u8>, String>) {
    let response = bench.get(path).await.unwrap();
    let status = response.status();
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| {
            let trailers = c.trailers().cloned();
            let mut bytes = c.to_bytes().to_vec();
            if let Some(trailers) = trailers {
                for (name, value) in &trailers {
                    bytes.extend_from_slice(format!("\ntrailer {name}: ").as_bytes());
                    bytes.extend_from_slice(value.as_bytes());
                }
            }
            bytes
        })
        .map_err(|e| e.to_string());
    (status, parts.headers, body)
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every way the test upstream can write the secret.
fn forms_of_the_secret() -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        SECRET.to_owned(),
        b64.encode(format!("x-access-token:{SECRET}")),
        super::echo::uri_component(SECRET),
    ]
}

#[tokio::test]
async fn an_echo_in_the_body_header_or_trailer_comes_back_as_the_placeholder() {
    let bench = Bench::new(&[HOST]).await;
    for path in [
        "/echo-body",
        "/echo-header",
        "/echo-chunked",
        "/echo-trailer",
        "/echo-basic",
        "/echo-json-escaped",
        "/echo-percent",
    ] {
        let (headers, body) = fetch(&bench, path).await;
        let body = body.unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut everything = body.clone();
        for (name, value) in &headers {
            everything.extend_from_slice(name.as_str().as_bytes());
            everything.extend_from_slice(value.as_bytes());
        }
        for form in forms_of_the_secret() {
            assert!(!holds(&everything, &form), "{path} delivered {form:?}");
        }
        if path != "/echo-basic" && path != "/echo-percent" {
            assert!(
                holds(&everything, PLACEHOLDER),
                "{path}: {}",
                String::from_utf8_lossy(&everything)
            );
        }
        if let Some(length) = headers.get(hyper::header::CONTENT_LENGTH) {
            assert_eq!(length.to_str().unwrap(), body.len().to_string(), "{path}");
        }
    }
    let decoded = {
        let (_, body) = fetch(&bench, "/echo-basic").await;
        let body = body.unwrap();
        let encoded = std::str::from_utf8(&body)
            .unwrap()
            .trim_start_matches("Basic ");
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap()
    };
    assert!(
        !holds(&decoded, SECRET),
        "the Basic credential carries no secret"
    );
    let scrubbed = bench.records(EventKind::SecretScrubbed).await;
    assert!(scrubbed.len() >= 8, "{} records", scrubbed.len());
    for record in &scrubbed {
        let json = record.to_json();
        assert!(!json.contains(SECRET), "{json}");
        assert!(json.contains("\"secret_name\":\"gh\""), "{json}");
    }
    let locations: Vec<String> = scrubbed
        .iter()
        .map(|r| match &r.event {
            crate::audit::Event::SecretScrubbed(s) => s.location.clone(),
            _ => unreachable!("filtered by kind"),
        })
        .collect();
    for expected in ["body", "header:x-echo", "trailer:x-echo"] {
        assert!(
            locations.iter().any(|l| l == expected),
            "{expected} in {locations:?}"
        );
    }
}

#[tokio::test]
async fn a_compressed_echo_is_refused_not_delivered() {
    // The second path puts `gzip` on a second Content-Encoding line, after `identity`.
    for path in ["/echo-gzip", "/echo-gzip-two-lines"] {
        let bench = Bench::new(&[HOST]).await;
        let (status, _, body) = fetch_status(&bench, path).await;
        let body = body.unwrap();
        let mut decoded = Vec::new();
        let _ =
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut decoded);
        assert!(
            !holds(&decoded, SECRET),
            "{path}: a compressed secret was delivered"
        );
        assert_eq!(
            status,
            StatusCode::BAD_GATEWAY,
            "{path}: the client sees an error"
        );
        let cut = bench.records(EventKind::SecretScrubbed).await;
        assert!(
            cut.iter().any(|r| r.to_json().contains("\"action\":\"cut")),
            "{path}: {cut:?}"
        );
    }
}

#[tokio::test]
async fn a_long_body_of_fixed_length_with_a_secret_is_cut_off() {
    let bench = Bench::new(&[HOST]).await;
    let (_, body) = fetch(&bench, "/echo-big").await;
    if let Ok(body) = body {
        assert!(!holds(&body, SECRET), "delivered the secret");
    }
    let cut = bench.records(EventKind::SecretScrubbed).await;
    assert!(cut.iter().any(|r| r.to_json().contains("cut")), "{cut:?}");
}

#[tokio::test]
async fn a_response_without_a_secret_passes_byte_for_byte() {
    let bench = Bench::new(&[HOST]).await;
    let (headers, body) = fetch(&bench, "/big-clean").await;
    let body = body.unwrap();
    let expected: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(body, expected);
    assert_eq!(
        headers.get(hyper::header::CONTENT_LENGTH).unwrap(),
        "1000000",
        "the length is kept"
    );
    assert!(bench.records(EventKind::SecretScrubbed).await.is_empty());
}

#[tokio::test]
async fn a_websocket_echo_comes_back_as_the_placeholder() {
    let bench = Bench::new(&[HOST]).await;
    let tls = tls_to_host(&bench).await;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn.with_upgrades());
    let request = Request::get("/ws")
        .header("host", HOST)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-extensions", "permessage-deflate")
        .header("authorization", format!("Bearer {PLACEHOLDER}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let mut io = TokioIo::new(hyper::upgrade::on(response).await.unwrap());
    let mut received = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        io.read_to_end(&mut received),
    )
    .await;
    assert!(!holds(&received, SECRET), "the secret came back");
    assert!(holds(&received, PLACEHOLDER), "{received:?}");
    let scrubbed = bench.records(EventKind::SecretScrubbed).await;
    assert!(
        scrubbed
            .iter()
            .any(|r| r.to_json().contains("\"location\":\"frame\"")),
        "{scrubbed:?}"
    );
}
