//! Request bodies: a JSON body of unknown length streamed over HTTP/2, a placeholder cut across
//! DATA frames, rewritten on its way and recorded before it left.

use http_body_util::{channel::Channel, BodyExt};
use hyper::body::Frame;

use super::*;

#[tokio::test]
async fn an_h2_json_body_streams_with_the_secret_in_place_of_a_split_placeholder() {
    let mut bench = Bench::new(&[HOST]).await;
    let mut sender = bench.h2().await;
    let (mut tx, body) = Channel::<Bytes, std::convert::Infallible>::new(4);
    let request = Request::post(format!("https://{HOST}/slots"))
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let response = tokio::spawn(async move { sender.send_request(request).await });
    for part in [
        r#"{"a": ["IRONSH_PR"#,
        r#"OXY_gh", "IRONSH_PROXY_g"#,
        r#"hx"]}"#,
    ] {
        tx.send(Frame::data(Bytes::from(part))).await.unwrap();
    }
    drop(tx);
    let response = response.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = bench.seen.recv().await.unwrap();
    let sent = String::from_utf8(seen.body.unwrap()).unwrap();
    // SECRET holds nothing JSON escapes.
    assert_eq!(
        sent,
        format!(r#"{{"a": ["{SECRET}", "IRONSH_PROXY_ghx"]}}"#)
    );
    let injected = bench.records(EventKind::SecretInjected).await;
    assert_eq!(injected.len(), 1);
    let json = injected[0].to_json();
    assert!(json.contains(r#""slot":"json:/a/0""#), "{json}");
    assert!(!json.contains(SECRET));
}

#[tokio::test]
async fn a_malformed_streamed_json_body_is_cut_off_and_answered_400() {
    let bench = Bench::new(&[HOST]).await;
    let mut sender = bench.h2().await;
    let (mut tx, body) = Channel::<Bytes, std::convert::Infallible>::new(4);
    let request = Request::post(format!("https://{HOST}/slots"))
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let response = tokio::spawn(async move { sender.send_request(request).await });
    tx.send(Frame::data(Bytes::from(r#"{"a": "IRONSH_PROXY_gh"} x"#)))
        .await
        .unwrap();
    drop(tx);
    let response = response.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let text = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&text).contains("malformed JSON"));
}
