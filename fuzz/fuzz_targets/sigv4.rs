//! Fuzzes SigV4 re-signing: the Authorization / presigned-query parsers on arbitrary bytes,
//! and the aws-chunked re-signer fed the same body whole and in arbitrary splits. Nothing may
//! panic; a split never changes the output; a complete body keeps its length.

#![no_main]

use libfuzzer_sys::fuzz_target;
use veil_core::secrets::SecretValue;
use veil_core::sigv4::{AwsCredentials, ChunkResigner, Request, Resigned, SignedRequest};

const DATE: &str = "20260102T030405Z";
const NOW: u64 = 1_767_323_045;

fn credentials() -> AwsCredentials {
    let secret = SecretValue::parse("fuzz-secret".to_owned()).expect("a valid secret");
    AwsCredentials::new("AKIAFUZZ", secret, None).expect("a valid key id")
}

fn resigner() -> ChunkResigner {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=IRONSH_PROXY_aws/20260102/us-east-1/s3/aws4_request, \
         SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={}",
        "0".repeat(64)
    );
    let headers: [(&str, &[u8]); 4] = [
        ("Host", b"b.s3.amazonaws.com"),
        ("x-amz-date", DATE.as_bytes()),
        (
            "x-amz-content-sha256",
            b"STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        ),
        ("Authorization", auth.as_bytes()),
    ];
    let request = Request {
        method: "PUT",
        target: "/k",
        headers: &headers,
    };
    let parsed = SignedRequest::parse(request).expect("the fixed request parses");
    match parsed
        .resign(&credentials(), None, NOW)
        .expect("the fixed request re-signs")
    {
        Resigned::Header {
            body: Some(body), ..
        } => body,
        _ => unreachable!("a streaming request gives a chunk re-signer"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let text = String::from_utf8_lossy(rest);
        let (target, auth) = text.split_once('\n').unwrap_or(("/k", &text));
        let target = if target.starts_with('/') {
            target
        } else {
            "/k"
        };
        let headers: [(&str, &[u8]); 4] = [
            ("Host", b"b.s3.amazonaws.com"),
            ("x-amz-date", DATE.as_bytes()),
            ("x-amz-content-sha256", b"UNSIGNED-PAYLOAD"),
            ("Authorization", auth.as_bytes()),
        ];
        let with_auth = Request {
            method: "GET",
            target,
            headers: &headers,
        };
        let presigned = Request {
            method: "GET",
            target,
            headers: &headers[..3],
        };
        for request in [with_auth, presigned] {
            if let Ok(parsed) = SignedRequest::parse(request) {
                let _ = parsed.resign(&credentials(), Some(&[0; 32]), NOW);
            }
        }
        return;
    }
    let (splits, body) = rest.split_at(rest.len().min(8));
    let mut whole = resigner();
    let mut whole_out = Vec::new();
    let whole_result = whole.feed(body, &mut whole_out);
    let mut pieces = resigner();
    let mut pieces_out = Vec::new();
    let mut pieces_result = Ok(());
    let mut at = 0;
    for size in splits.iter().map(|&s| usize::from(s) + 1).cycle() {
        if at >= body.len() || pieces_result.is_err() {
            break;
        }
        let end = (at + size).min(body.len());
        pieces_result = pieces.feed(&body[at..end], &mut pieces_out);
        at = end;
    }
    assert_eq!(whole_result.is_ok(), pieces_result.is_ok());
    if whole_result.is_ok() {
        assert_eq!(whole_out, pieces_out);
        assert_eq!(whole.is_done(), pieces.is_done());
        if whole.is_done() {
            assert_eq!(whole_out.len(), body.len());
        }
    }
});
