//! Property: a request the sandbox signed with a placeholder key, re-signed with the real key,
//! carries exactly the signature an independent signer (tests/support.rs) makes with the real
//! key; the same for `aws-chunked` bodies split anywhere. Random cases from a fixed seed.

use ring::{digest, hmac};

use super::support::{
    credentials, independent_signature, unix_time, Independent, RawRequest, PLACEHOLDER,
};
use crate::sigv4::{Request, Resigned, SignedRequest};

const REAL_KEY: &str = "AKIAREALKEY0000000001";
const REAL_SECRET: &str = "real/secret+key=very-secret";
const FAKE_SECRET: &str = "sandbox-dummy-secret";
const AMZ_DATE: &str = "20260102T030405Z";

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn word(&mut self, alphabet: &[u8], max: usize) -> String {
        let len = 1 + self.below(max);
        (0..len)
            .map(|_| char::from(alphabet[self.below(alphabet.len())]))
            .collect()
    }
}

const UNRESERVED: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~";
const VALUE: &[u8] = b"abcXYZ019 ,;=/+-_\t";

fn now() -> u64 {
    unix_time("2026-01-02T03:04:05Z")
}

#[test]
fn resigned_requests_match_an_independent_signer() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for case in 0..300 {
        let service = ["s3", "sts", "execute-api", "dynamodb"][rng.below(4)];
        let region = ["us-east-1", "eu-west-3", "auto"][rng.below(3)];
        let method = ["GET", "PUT", "POST", "DELETE", "HEAD"][rng.below(5)];
        let path: String = (0..1 + rng.below(4))
            .map(|_| {
                format!(
                    "/{}",
                    rng.word(UNRESERVED, 12)
                        .replace("..", "_")
                        .trim_matches('.')
                )
            })
            .map(|s| if s == "/" { "/x".to_owned() } else { s })
            .collect();
        let mut query: Vec<(String, String)> = (0..rng.below(4))
            .map(|_| {
                (
                    rng.word(UNRESERVED, 6),
                    if rng.below(3) == 0 {
                        String::new()
                    } else {
                        rng.word(UNRESERVED, 8)
                    },
                )
            })
            .collect();
        let target_query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        query.sort();
        let canonical_query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let host = format!(
            "{}.{service}.{region}.amazonaws.com",
            rng.word(b"abcdefgh", 6)
        );
        let payload = if rng.below(2) == 0 {
            "UNSIGNED-PAYLOAD".to_owned()
        } else {
            hex::encode(digest::digest(
                &digest::SHA256,
                rng.word(VALUE, 30).as_bytes(),
            ))
        };
        let mut headers: Vec<(String, String)> = vec![
            ("Host".into(), host),
            ("X-Amz-Date".into(), AMZ_DATE.into()),
            ("x-amz-content-sha256".into(), payload.clone()),
        ];
        for name in ["content-type", "x-amz-meta-a", "range", "x-amz-target"] {
            if rng.below(2) == 0 {
                let value = format!(
                    "{}{}",
                    ["", " ", "\t "][rng.below(3)],
                    rng.word(VALUE, 20).trim()
                );
                headers.push((name.into(), value));
            }
        }
        let token =
            (rng.below(3) == 0).then(|| format!("real-token/{}+=", rng.word(UNRESERVED, 40)));
        if token.is_some() {
            headers.push((
                "X-Amz-Security-Token".into(),
                "IRONSH_PROXY_aws-token".into(),
            ));
        }
        let path_for_signing = path.clone();
        let header_pairs = |token: Option<&str>| -> Vec<(String, String)> {
            headers
                .iter()
                .map(|(n, v)| match (n.as_str(), token) {
                    ("X-Amz-Security-Token", Some(t)) => (n.clone(), t.to_owned()),
                    _ => (n.clone(), v.clone()),
                })
                .collect()
        };
        let sign = |secret: &str, token: Option<&str>| {
            let pairs = header_pairs(token);
            let refs: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            independent_signature(&Independent {
                secret,
                method,
                path: &path_for_signing,
                query: &canonical_query.join("&"),
                headers: &refs,
                payload: &payload,
                amz_date: AMZ_DATE,
                region,
                service,
            })
        };
        let mut signed: Vec<String> = headers
            .iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect();
        signed.sort();
        let scope = format!("20260102/{region}/{service}/aws4_request");
        let authorization = |key: &str, signature: &str| {
            format!("AWS4-HMAC-SHA256 Credential={key}/{scope}, SignedHeaders={}, Signature={signature}", signed.join(";"))
        };
        let mut sandbox = RawRequest {
            method: method.into(),
            target: if target_query.is_empty() {
                path.clone()
            } else {
                format!("{path}?{}", target_query.join("&"))
            },
            headers: headers
                .iter()
                .map(|(n, v)| (n.clone(), v.as_bytes().to_vec()))
                .collect(),
            body: Vec::new(),
        };
        sandbox.headers.push((
            "Authorization".into(),
            authorization(PLACEHOLDER, &sign(FAKE_SECRET, None)).into_bytes(),
        ));
        let real = credentials(REAL_KEY, REAL_SECRET, token.as_deref());
        let got = sandbox.resign(&real, now());
        let want = authorization(REAL_KEY, &sign(REAL_SECRET, token.as_deref()));
        assert_eq!(
            String::from_utf8_lossy(got.header("authorization").unwrap()),
            want,
            "case {case}: {} {}",
            sandbox.method,
            sandbox.target
        );
        if let Some(token) = &token {
            assert_eq!(
                got.header("x-amz-security-token").unwrap(),
                token.as_bytes()
            );
        }
    }
}

fn chunk_body(secret: &str, seed: &str, chunks: &[Vec<u8>]) -> Vec<u8> {
    let scope = "20260102/us-east-1/s3/aws4_request";
    let mac = |key: &[u8], data: &str| {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
            .as_ref()
            .to_vec()
    };
    let mut key = mac(format!("AWS4{secret}").as_bytes(), "20260102");
    for part in ["us-east-1", "s3", "aws4_request"] {
        key = mac(&key, part);
    }
    let mut previous = seed.to_owned();
    let mut body = Vec::new();
    for data in chunks.iter().chain(std::iter::once(&Vec::new())) {
        let to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{AMZ_DATE}\n{scope}\n{previous}\n{}\n{}",
            hex::encode(digest::digest(&digest::SHA256, b"")),
            hex::encode(digest::digest(&digest::SHA256, data))
        );
        previous = hex::encode(mac(&key, &to_sign));
        body.extend_from_slice(
            format!("{:x};chunk-signature={previous}\r\n", data.len()).as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body
}

#[test]
fn resigned_chunked_bodies_match_an_independent_signer() {
    let mut rng = Rng(0x5eed_1234_abcd_0002);
    for case in 0..40 {
        let chunks: Vec<Vec<u8>> = (0..rng.below(5))
            .map(|_| (0..1 + rng.below(3000)).map(|_| rng.next() as u8).collect())
            .collect();
        let decoded: usize = chunks.iter().map(Vec::len).sum();
        let headers_text = [
            ("Host", "bucket.s3.us-east-1.amazonaws.com".to_owned()),
            ("X-Amz-Date", AMZ_DATE.to_owned()),
            (
                "x-amz-content-sha256",
                "STREAMING-AWS4-HMAC-SHA256-PAYLOAD".to_owned(),
            ),
            ("Content-Encoding", "aws-chunked".to_owned()),
            ("x-amz-decoded-content-length", decoded.to_string()),
        ];
        let refs: Vec<(&str, &str)> = headers_text.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let signed =
            "content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length";
        let seed = |secret: &str| {
            independent_signature(&Independent {
                secret,
                method: "PUT",
                path: "/k",
                query: "",
                headers: &refs,
                payload: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                amz_date: AMZ_DATE,
                region: "us-east-1",
                service: "s3",
            })
        };
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={PLACEHOLDER}/20260102/us-east-1/s3/aws4_request, SignedHeaders={signed}, Signature={}",
            seed(FAKE_SECRET)
        );
        let mut headers: Vec<(&str, &[u8])> =
            refs.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        headers.push(("Authorization", auth.as_bytes()));
        let parsed = SignedRequest::parse(Request {
            method: "PUT",
            target: "/k",
            headers: &headers,
        })
        .unwrap();
        let real = credentials(REAL_KEY, REAL_SECRET, None);
        let Resigned::Header {
            body: Some(mut resigner),
            ..
        } = parsed.resign(&real, None, now()).unwrap()
        else {
            panic!("not streaming")
        };
        let sandbox_body = chunk_body(FAKE_SECRET, &seed(FAKE_SECRET), &chunks);
        let want = chunk_body(REAL_SECRET, &seed(REAL_SECRET), &chunks);
        let mut out = Vec::new();
        let mut at = 0;
        while at < sandbox_body.len() {
            let end = (at + 1 + rng.below(700)).min(sandbox_body.len());
            resigner.feed(&sandbox_body[at..end], &mut out).unwrap();
            at = end;
        }
        resigner.finish().unwrap();
        assert!(out == want, "case {case}");
    }
}
