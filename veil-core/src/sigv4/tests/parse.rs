//! Requests veil cannot re-sign faithfully are refused with the error that says why; secrets
//! never show in `Debug`.

use super::s3_examples::{now, real, DATE, EMPTY};
use super::support::{credentials, RawRequest, PLACEHOLDER};
use crate::sigv4::{Request, Resigned, SigV4Error, SignedRequest};

const SIG: &str = "1111111111111111111111111111111111111111111111111111111111111111";

fn auth(credential_tail: &str, signed: &str) -> String {
    format!("AWS4-HMAC-SHA256 Credential={PLACEHOLDER}/{credential_tail}, SignedHeaders={signed}, Signature={SIG}")
}

fn base_headers() -> Vec<(String, Vec<u8>)> {
    vec![
        ("Host".into(), b"examplebucket.s3.amazonaws.com".to_vec()),
        ("x-amz-date".into(), DATE.as_bytes().to_vec()),
        ("x-amz-content-sha256".into(), EMPTY.as_bytes().to_vec()),
        (
            "Authorization".into(),
            auth(
                "20130524/us-east-1/s3/aws4_request",
                "host;x-amz-content-sha256;x-amz-date",
            )
            .into_bytes(),
        ),
    ]
}

fn with(target: &str, edit: impl FnOnce(&mut Vec<(String, Vec<u8>)>)) -> RawRequest {
    let mut headers = base_headers();
    edit(&mut headers);
    RawRequest {
        method: "GET".into(),
        target: target.into(),
        headers,
        body: Vec::new(),
    }
}

fn set(headers: &mut [(String, Vec<u8>)], name: &str, value: &str) {
    for (n, v) in headers.iter_mut() {
        if n.eq_ignore_ascii_case(name) {
            *v = value.as_bytes().to_vec();
        }
    }
}

fn parse_err(raw: &RawRequest) -> SigV4Error {
    let headers = raw.header_refs();
    SignedRequest::parse(Request {
        method: &raw.method,
        target: &raw.target,
        headers: &headers,
    })
    .expect_err("refused")
}

fn resign_err(raw: &RawRequest, real: &crate::sigv4::AwsCredentials, now: u64) -> SigV4Error {
    let headers = raw.header_refs();
    SignedRequest::parse(Request {
        method: &raw.method,
        target: &raw.target,
        headers: &headers,
    })
    .unwrap()
    .resign(real, None, now)
    .expect_err("refused")
}

#[test]
fn refuses_authorization_headers_that_do_not_parse() {
    use SigV4Error::*;
    let cases: Vec<(String, SigV4Error)> = vec![
        ("Bearer abc".into(), UnsupportedAlgorithm("Bearer".into())),
        (
            format!("AWS4-ECDSA-P256-SHA256 Credential={PLACEHOLDER}/20130524/s3/aws4_request, SignedHeaders=host, Signature={SIG}"),
            UnsupportedAlgorithm("AWS4-ECDSA-P256-SHA256".into()),
        ),
        ("AWS4-HMAC-SHA256".into(), MalformedAuthorization("expected '<algorithm> Credential=...'")),
        (
            format!("AWS4-HMAC-SHA256 Credential={PLACEHOLDER}/20130524/us-east-1/s3/aws4_request, SignedHeaders=host"),
            MalformedAuthorization("Credential, SignedHeaders or Signature is missing"),
        ),
        (
            format!("AWS4-HMAC-SHA256 Credential=a/20130524/us-east-1/s3/aws4_request, Credential=b/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature={SIG}"),
            MalformedAuthorization("a field is repeated"),
        ),
        (format!("{}, Extra=1", auth("20130524/us-east-1/s3/aws4_request", "host")), MalformedAuthorization("unknown field")),
        (
            auth("20130524/us-east-1/s3/aws4_request", "host").replace(SIG, &SIG.to_uppercase().replace('1', "A")),
            MalformedAuthorization("Signature is not 64 lowercase hex digits"),
        ),
        (auth("20130524/us-east-1/s3/aws4_requesT", "host"), MalformedCredential("the scope does not end in aws4_request")),
        (auth("2013052/us-east-1/s3/aws4_request", "host"), MalformedCredential("the date is not YYYYMMDD")),
        (auth("20130524/US-EAST-1/s3/aws4_request", "host"), MalformedCredential("region or service is empty or not [a-z0-9-]")),
        (auth("20130524/us-east-1//aws4_request", "host"), MalformedCredential("region or service is empty or not [a-z0-9-]")),
        (auth("us-east-1/s3/aws4_request", "host"), MalformedCredential("expected <key id>/<date>/<region>/<service>/aws4_request")),
        (auth("20130524/us-east-1/s3/aws4_request", "x-amz-date;host"), MalformedSignedHeaders("names are not sorted or repeat")),
        (auth("20130524/us-east-1/s3/aws4_request", "host;host"), MalformedSignedHeaders("names are not sorted or repeat")),
        (auth("20130524/us-east-1/s3/aws4_request", "Host"), MalformedSignedHeaders("a name is empty or not a lowercase token")),
        (auth("20130524/us-east-1/s3/aws4_request", "host;;x"), MalformedSignedHeaders("a name is empty or not a lowercase token")),
        (auth("20130524/us-east-1/s3/aws4_request", "x-amz-date"), HostNotSigned),
        (auth("20130524/us-east-1/s3/aws4_request", "authorization;host"), UnsignableHeader("authorization".into())),
        (auth("20130524/us-east-1/s3/aws4_request", "host;range"), MissingSignedHeader("range".into())),
        (auth("20130525/us-east-1/s3/aws4_request", "host"), DateMismatch),
    ];
    for (value, want) in cases {
        let raw = with("/k", |h| set(h, "authorization", &value));
        assert_eq!(parse_err(&raw), want, "{value}");
    }
}

#[test]
fn refuses_what_it_cannot_canonicalise() {
    use SigV4Error::*;
    let no_date = with("/k", |h| h.retain(|(n, _)| n != "x-amz-date"));
    assert_eq!(parse_err(&no_date), MissingDate);
    for bad in [
        "20131324T000000Z",
        "20130524T000000",
        "2013-05-24T00:00:00Z",
        "20130230T000000Z",
        "20130524T250000Z",
    ] {
        assert_eq!(
            parse_err(&with("/k", |h| set(h, "x-amz-date", bad))),
            MalformedDate,
            "{bad}"
        );
    }
    let two_dates = with("/k", |h| h.push(("X-Amz-Date".into(), DATE.into())));
    assert_eq!(parse_err(&two_dates), MalformedDate);
    let two_auth = with("/k", |h| {
        let auth = h[3].clone();
        h.push(auth);
    });
    assert_eq!(parse_err(&two_auth), DuplicateAuthorization);
    assert_eq!(
        parse_err(&with("/k", |h| h.retain(|(n, _)| n != "Authorization"))),
        NotSigned
    );
    assert_eq!(
        parse_err(&with("/k?X-Amz-Signature=1", |_| {})),
        SignedTwice
    );
    assert_eq!(
        parse_err(&with("/k?a=%zz", |_| {})),
        MalformedTarget("bad percent escape in the query")
    );
    assert_eq!(
        parse_err(&with("/k?a=%+1", |_| {})),
        MalformedTarget("bad percent escape in the query")
    );
    assert_eq!(
        parse_err(&with("http://h/k", |_| {})),
        MalformedTarget("not origin-form (/path?query)")
    );
    assert_eq!(
        parse_err(&with("/k", |h| set(h, "x-amz-content-sha256", "abc"))),
        MalformedPayloadHash
    );
    assert_eq!(
        parse_err(&with("/k", |h| set(
            h,
            "x-amz-content-sha256",
            "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
        ))),
        UnsupportedPayload("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD".into())
    );
    let two_tokens = with("/k", |h| {
        h.push(("x-amz-security-token".into(), b"a".to_vec()));
        h.push(("X-Amz-Security-Token".into(), b"b".to_vec()));
    });
    assert_eq!(parse_err(&two_tokens), DuplicateSessionToken);
}

#[test]
fn refuses_at_resigning_what_the_credentials_or_clock_rule_out() {
    use SigV4Error::*;
    let plain = with("/k", |_| {});
    let temporary = credentials("AKIAIOSFODNN7EXAMPLE", "secret", Some("real-token"));
    assert_eq!(resign_err(&plain, &temporary, now()), SessionTokenMissing);
    let with_token = with("/k", |h| {
        h.push(("x-amz-security-token".into(), b"IRONSH_PROXY_t".to_vec()))
    });
    assert_eq!(
        resign_err(&with_token, &real(), now()),
        UnexpectedSessionToken
    );
    assert_eq!(resign_err(&plain, &real(), now() + 901), ClockSkew(901));
    assert_eq!(resign_err(&plain, &real(), now() - 901), ClockSkew(901));
    assert!(plain
        .resign(&real(), now() + 900)
        .header("authorization")
        .is_some());
    // STS-style request without x-amz-content-sha256: the body must be hashed by the caller.
    let sts = with("/", |h| {
        h.retain(|(n, _)| n != "x-amz-content-sha256");
        set(
            h,
            "authorization",
            &auth("20130524/us-east-1/sts/aws4_request", "host;x-amz-date"),
        );
    });
    assert_eq!(resign_err(&sts, &real(), now()), PayloadHashUnknown);
    assert!(sts.resign(&real(), now()).header("authorization").is_some());
}

#[test]
fn refuses_malformed_presigned_urls() {
    use SigV4Error::*;
    let good = format!(
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={PLACEHOLDER}%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
         &X-Amz-Date={DATE}&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature={SIG}"
    );
    let presigned = |query: &str| {
        let mut raw = with(&format!("/k?{query}"), |h| h.retain(|(n, _)| n == "Host"));
        raw.method = "GET".into();
        raw
    };
    let raw = presigned(&good);
    assert!(raw
        .resign(&real(), now())
        .target
        .contains("X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F"));
    let cases = [
        (
            good.replace("X-Amz-Expires=86400&", ""),
            MalformedQuery {
                name: "X-Amz-Expires",
                why: "missing",
            },
        ),
        (
            good.replace("X-Amz-Expires=86400", "X-Amz-Expires=0"),
            MalformedQuery {
                name: "X-Amz-Expires",
                why: "not a number of seconds from 1 to 604800",
            },
        ),
        (
            good.replace("X-Amz-Expires=86400", "X-Amz-Expires=604801"),
            MalformedQuery {
                name: "X-Amz-Expires",
                why: "not a number of seconds from 1 to 604800",
            },
        ),
        (
            good.replace("X-Amz-Expires=86400", "X-Amz-Expires=+5"),
            MalformedQuery {
                name: "X-Amz-Expires",
                why: "not a number of seconds from 1 to 604800",
            },
        ),
        (
            format!("{good}&X-Amz-Date={DATE}"),
            MalformedQuery {
                name: "X-Amz-Date",
                why: "repeated",
            },
        ),
        (
            good.replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"),
            UnsupportedAlgorithm("AWS4-ECDSA-P256-SHA256".into()),
        ),
        (
            good.replace(SIG, "xyz"),
            MalformedQuery {
                name: "X-Amz-Signature",
                why: "not 64 lowercase hex digits",
            },
        ),
        (
            good.replace("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=range"),
            HostNotSigned,
        ),
        (
            good.replace(&format!("X-Amz-Date={DATE}&"), ""),
            MissingDate,
        ),
    ];
    for (query, want) in cases {
        assert_eq!(parse_err(&presigned(&query)), want, "{query}");
    }
    let mut token_header = presigned(&good);
    token_header
        .headers
        .push(("x-amz-security-token".into(), b"t".to_vec()));
    assert!(matches!(
        parse_err(&token_header),
        MalformedQuery {
            name: "X-Amz-Security-Token",
            ..
        }
    ));
}

#[test]
fn secrets_never_show_in_debug() {
    let temporary = credentials(
        "AKIAIOSFODNN7EXAMPLE",
        "hunter2-secret-key",
        Some("hunter2-session-token"),
    );
    let shown = format!("{temporary:?}");
    assert!(
        shown.contains("AKIAIOSFODNN7EXAMPLE") && !shown.contains("hunter2"),
        "{shown}"
    );
    let raw = with(
        &format!(
            "/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={PLACEHOLDER}%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date={DATE}&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Security-Token=IRONSH_PROXY_t&X-Amz-Signature={SIG}"
        ),
        |h| h.retain(|(n, _)| n == "Host"),
    );
    let headers = raw.header_refs();
    let parsed = SignedRequest::parse(Request {
        method: "GET",
        target: &raw.target,
        headers: &headers,
    })
    .unwrap();
    let resigned = parsed.resign(&temporary, None, now()).unwrap();
    let Resigned::Query { target } = &resigned else {
        panic!()
    };
    assert!(target
        .expose()
        .contains("X-Amz-Security-Token=hunter2-session-token"));
    assert!(!format!("{resigned:?}").contains("hunter2"));
    let streaming = with("/k", |h| {
        set(
            h,
            "x-amz-content-sha256",
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        )
    });
    let headers = streaming.header_refs();
    let parsed = SignedRequest::parse(Request {
        method: "PUT",
        target: "/k",
        headers: &headers,
    })
    .unwrap();
    let resigned = parsed.resign(&real(), None, now()).unwrap();
    let shown = format!("{resigned:?}");
    assert!(
        shown.contains("ChunkResigner { state: Header, held: 0, .. }") && !shown.contains("wJalr"),
        "{shown}"
    );
}

#[test]
fn rejects_bad_real_key_ids() {
    for bad in ["", "AKIA/X", "AKIA X", &"A".repeat(129)] {
        let err = crate::sigv4::AwsCredentials::new(
            bad,
            crate::secrets::SecretValue::parse("s".into()).unwrap(),
            None,
        )
        .unwrap_err();
        assert_eq!(err, SigV4Error::MalformedKeyId);
    }
}
