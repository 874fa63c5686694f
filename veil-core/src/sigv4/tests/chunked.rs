//! The S3 documentation's streaming upload example ("Signature Calculations for the
//! Authorization Header: Transferring Payload in Multiple Chunks"): 66560 bytes of `a` in
//! chunks of 65536 and 1024, seed signature `4f232c43...`.

use super::s3_examples::{now, real, sandbox_request, DATE};
use super::support::RawRequest;
use crate::sigv4::{ChunkError, ChunkResigner, Request, Resigned, SignedRequest, MAX_CHUNK_LEN};

const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
const CHUNK_SIGNATURES: [&str; 3] = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
];

fn request() -> RawRequest {
    sandbox_request(
        "PUT",
        "/examplebucket/chunkObject.txt",
        &[
            ("Host", "s3.amazonaws.com"),
            ("x-amz-date", DATE),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
            ("Content-Encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "66560"),
            ("Content-Length", "66824"),
        ],
        "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class",
    )
}

fn body(signatures: [&str; 3]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(format!("10000;chunk-signature={}\r\n", signatures[0]).as_bytes());
    body.extend(std::iter::repeat_n(b'a', 65_536));
    body.extend_from_slice(format!("\r\n400;chunk-signature={}\r\n", signatures[1]).as_bytes());
    body.extend(std::iter::repeat_n(b'a', 1_024));
    body.extend_from_slice(format!("\r\n0;chunk-signature={}\r\n\r\n", signatures[2]).as_bytes());
    body
}

fn resigner() -> ChunkResigner {
    let raw = request();
    let headers = raw.header_refs();
    let parsed = SignedRequest::parse(Request {
        method: &raw.method,
        target: &raw.target,
        headers: &headers,
    })
    .unwrap();
    assert!(!parsed.needs_body_hash());
    match parsed.resign(&real(), None, now()).unwrap() {
        Resigned::Header {
            authorization,
            replace_session_token: false,
            body: Some(body),
        } => {
            assert!(
                authorization.ends_with(&format!("Signature={SEED}")),
                "{authorization}"
            );
            body
        }
        other => panic!("{other:?}"),
    }
}

/// Feeds `input` in pieces of the given sizes (cycled).
fn run(input: &[u8], pieces: &[usize]) -> Result<Vec<u8>, ChunkError> {
    let mut resigner = resigner();
    let mut out = Vec::new();
    let mut at = 0;
    for size in pieces.iter().cycle() {
        if at == input.len() {
            break;
        }
        let end = (at + size).min(input.len());
        resigner.feed(&input[at..end], &mut out)?;
        at = end;
    }
    resigner.finish()?;
    Ok(out)
}

#[test]
fn resigns_the_documented_upload_in_any_split() {
    let sandbox = body(["3".repeat(64).as_str(); 3]);
    let want = body(CHUNK_SIGNATURES);
    assert_eq!(sandbox.len(), 66_824, "the documented Content-Length");
    for pieces in [
        &[usize::MAX][..],
        &[1],
        &[7, 13, 100],
        &[65_536],
        &[70_000],
        &[85, 1, 2],
    ] {
        let got = run(&sandbox, pieces).unwrap();
        assert_eq!(got.len(), sandbox.len());
        assert!(got == want, "split {pieces:?}");
    }
}

#[test]
fn output_length_equals_input_length_for_padded_sizes() {
    let mut sandbox = format!("0005;chunk-signature={}\r\nhello\r\n", "4".repeat(64)).into_bytes();
    sandbox.extend_from_slice(format!("00;chunk-signature={}\r\n\r\n", "4".repeat(64)).as_bytes());
    let got = run(&sandbox, &[3]).unwrap();
    assert_eq!(got.len(), sandbox.len());
    assert!(got.starts_with(b"0005;chunk-signature="));
}

#[test]
fn refuses_malformed_framing() {
    let sig = "5".repeat(64);
    let cases: Vec<(Vec<u8>, ChunkError)> = vec![
        (
            format!("5;chunk-signature={sig}\r\nhelloXX").into_bytes(),
            ChunkError::MissingCrlf,
        ),
        (
            format!("5;chunk-signature={sig}\nhello\r\n").into_bytes(),
            ChunkError::MalformedHeader("not ended by CRLF"),
        ),
        (
            format!("5;chunk-signaturX={sig}\r\n").into_bytes(),
            ChunkError::MalformedHeader("expected ;chunk-signature="),
        ),
        (
            b"5\r\n".to_vec(),
            ChunkError::MalformedHeader("no chunk-signature"),
        ),
        (
            format!("5;chunk-signature={}\r\n", "A".repeat(64)).into_bytes(),
            ChunkError::MalformedHeader("the signature is not 64 lowercase hex digits"),
        ),
        (
            format!("+5;chunk-signature={sig}\r\n").into_bytes(),
            ChunkError::MalformedHeader("the size is not 1 to 16 hex digits"),
        ),
        (
            format!(";chunk-signature={sig}\r\n").into_bytes(),
            ChunkError::MalformedHeader("the size is not 1 to 16 hex digits"),
        ),
        (
            format!("{:x};chunk-signature={sig}\r\n", MAX_CHUNK_LEN + 1).into_bytes(),
            ChunkError::ChunkTooLarge(MAX_CHUNK_LEN + 1),
        ),
        (
            format!("ffffffffffffffff;chunk-signature={sig}\r\n").into_bytes(),
            ChunkError::ChunkTooLarge(u64::MAX),
        ),
        (
            vec![b'1'; 200],
            ChunkError::MalformedHeader("line too long"),
        ),
        (
            format!("0;chunk-signature={sig}\r\n\r\nX").into_bytes(),
            ChunkError::TrailingBytes,
        ),
        (
            format!("5;chunk-signature={sig}\r\nhel").into_bytes(),
            ChunkError::Truncated,
        ),
        (Vec::new(), ChunkError::Truncated),
    ];
    for (input, want) in cases {
        for pieces in [&[usize::MAX][..], &[1]] {
            assert_eq!(
                run(&input, pieces),
                Err(want.clone()),
                "{:?}",
                String::from_utf8_lossy(&input)
            );
        }
    }
}

#[test]
fn stays_refused_after_an_error() {
    let mut resigner = resigner();
    let mut out = Vec::new();
    assert!(resigner.feed(b"zz\r\n", &mut out).is_err());
    assert_eq!(resigner.feed(b"0;", &mut out), Err(ChunkError::AfterError));
    assert!(out.is_empty());
}

#[test]
fn refuses_signed_trailers() {
    let mut raw = request();
    raw.set_header(
        "x-amz-content-sha256",
        b"STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
    );
    let headers = raw.header_refs();
    let request = Request {
        method: &raw.method,
        target: &raw.target,
        headers: &headers,
    };
    assert!(matches!(
        SignedRequest::parse(request).err(),
        Some(crate::sigv4::SigV4Error::UnsupportedPayload(_))
    ));
}
