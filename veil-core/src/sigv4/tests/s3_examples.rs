//! The worked examples of Amazon S3's SigV4 documentation (API reference, "Signature
//! Calculations for the Authorization Header" and "Authenticating Requests: Using Query
//! Parameters"): key `AKIAIOSFODNN7EXAMPLE`, 2013-05-24, bucket `examplebucket`.

use super::support::{credentials, unix_time, RawRequest, PLACEHOLDER};
use crate::sigv4::AwsCredentials;

pub const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
pub const DATE: &str = "20130524T000000Z";
pub const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

pub fn now() -> u64 {
    unix_time("2013-05-24T00:00:00Z")
}

pub fn real() -> AwsCredentials {
    credentials(KEY_ID, SECRET, None)
}

/// A header-signed S3 request made by the sandbox (placeholder key, dummy signature).
pub fn sandbox_request(
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    signed: &str,
) -> RawRequest {
    let mut text = format!("{method} {target} HTTP/1.1\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}:{value}\n"));
    }
    text.push_str(&format!(
        "Authorization:AWS4-HMAC-SHA256 Credential={PLACEHOLDER}/20130524/us-east-1/s3/aws4_request, \
         SignedHeaders={signed}, Signature={}\n\n",
        "1".repeat(64)
    ));
    RawRequest::parse(&text)
}

fn resigned_signature(request: &RawRequest) -> String {
    let got = request.resign(&real(), now());
    let auth = String::from_utf8(got.header("authorization").unwrap().to_vec()).unwrap();
    assert!(auth.starts_with(&format!(
        "AWS4-HMAC-SHA256 Credential={KEY_ID}/20130524/us-east-1/s3/aws4_request, "
    )));
    auth.rsplit_once("Signature=").unwrap().1.to_owned()
}

#[test]
fn get_object() {
    let request = sandbox_request(
        "GET",
        "/test.txt",
        &[
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("Range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY),
            ("x-amz-date", DATE),
        ],
        "host;range;x-amz-content-sha256;x-amz-date",
    );
    assert_eq!(
        resigned_signature(&request),
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    );
}

#[test]
fn put_object_with_an_encoded_key() {
    let request = sandbox_request(
        "PUT",
        "/test%24file.text",
        &[
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("x-amz-date", DATE),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            (
                "x-amz-content-sha256",
                "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
            ),
        ],
        "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
    );
    assert_eq!(
        resigned_signature(&request),
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
    );
}

#[test]
fn get_bucket_lifecycle_and_list_objects() {
    for (target, want) in [
        (
            "/?lifecycle",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        ),
        (
            "/?max-keys=2&prefix=J",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        ),
        (
            "/?prefix=J&max-keys=2",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        ),
    ] {
        let request = sandbox_request(
            "GET",
            target,
            &[
                ("Host", "examplebucket.s3.amazonaws.com"),
                ("x-amz-date", DATE),
                ("x-amz-content-sha256", EMPTY),
            ],
            "host;x-amz-content-sha256;x-amz-date",
        );
        assert_eq!(resigned_signature(&request), want, "{target}");
    }
}

#[test]
fn presigned_get_object() {
    let mut request = RawRequest::parse(&format!(
        "GET /test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={PLACEHOLDER}%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
         &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature={} HTTP/1.1\n\
         Host:examplebucket.s3.amazonaws.com\n\n",
        "2".repeat(64)
    ));
    let want = "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
                &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
                &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
    assert_eq!(request.resign(&real(), now()).target, want);
    // A day later the URL is still valid; a day and 16 minutes later it is not.
    assert_eq!(request.resign(&real(), now() + 86_400).target, want);
    request.target = request
        .target
        .replace("X-Amz-Expires=86400", "X-Amz-Expires=60");
    let headers = request.header_refs();
    let parsed = crate::sigv4::SignedRequest::parse(crate::sigv4::Request {
        method: "GET",
        target: &request.target,
        headers: &headers,
    })
    .unwrap();
    assert!(!parsed.needs_body_hash());
    assert!(matches!(
        parsed.resign(&real(), None, now() + 901),
        Err(crate::sigv4::SigV4Error::ClockSkew(901))
    ));
}
