//! Helpers shared by the SigV4 tests: raw requests, credentials, an independent signer.

use ring::{digest, hmac};

use crate::secrets::SecretValue;
use crate::sigv4::{AwsCredentials, Request, Resigned, SignedRequest};

/// The placeholder key id a sandbox signs with.
pub const PLACEHOLDER: &str = "IRONSH_PROXY_aws-main";

/// A request read from a `*-signed-request.txt` vector.
pub struct RawRequest {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl RawRequest {
    /// Parses `METHOD TARGET HTTP/1.1\nName:value\n...\n\nbody`; the target may hold spaces and
    /// folded lines are joined with a space (as an HTTP/1 parser that allows obs-fold does).
    pub fn parse(text: &str) -> Self {
        let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
        let mut lines = head.lines();
        let first = lines.next().unwrap();
        let method_end = first.find(' ').unwrap();
        let target_end = first.rfind(' ').unwrap();
        let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
        for line in lines {
            if line.starts_with(' ') || line.starts_with('\t') {
                let last = headers.last_mut().unwrap();
                last.1.push(b' ');
                last.1.extend_from_slice(line.trim().as_bytes());
            } else {
                let (name, value) = line.split_once(':').unwrap();
                headers.push((name.to_owned(), value.as_bytes().to_vec()));
            }
        }
        Self {
            method: first[..method_end].to_owned(),
            target: first[method_end + 1..target_end].to_owned(),
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn header_refs(&self) -> Vec<(&str, &[u8])> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    pub fn set_header(&mut self, name: &str, value: &[u8]) {
        for (n, v) in &mut self.headers {
            if n.eq_ignore_ascii_case(name) {
                *v = value.to_vec();
            }
        }
    }

    /// Re-signs the request with `real` at `now` and returns what was forwarded: the target and
    /// the headers after the edits the caller makes.
    pub fn resign(&self, real: &AwsCredentials, now: u64) -> RawRequest {
        let headers = self.header_refs();
        let request = Request {
            method: &self.method,
            target: &self.target,
            headers: &headers,
        };
        let parsed = SignedRequest::parse(request).unwrap();
        assert_eq!(parsed.key_id(), PLACEHOLDER);
        let hash = parsed.needs_body_hash().then(|| sha256(&self.body));
        let resigned = parsed.resign(real, hash.as_ref(), now).unwrap();
        let mut out = RawRequest {
            method: self.method.clone(),
            target: self.target.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
        };
        match resigned {
            Resigned::Header {
                authorization,
                replace_session_token,
                body,
            } => {
                assert!(body.is_none());
                out.set_header("authorization", authorization.as_bytes());
                if replace_session_token {
                    let token = real.session_token().unwrap().expose().as_bytes().to_vec();
                    out.set_header("x-amz-security-token", &token);
                }
            }
            Resigned::Query { target } => out.target = target.expose().to_owned(),
        }
        out
    }
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

pub fn credentials(key_id: &str, secret: &str, token: Option<&str>) -> AwsCredentials {
    AwsCredentials::new(
        key_id,
        SecretValue::parse(secret.to_owned()).unwrap(),
        token.map(|t| SecretValue::parse(t.to_owned()).unwrap()),
    )
    .unwrap()
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SSZ`, computed independently of `AmzDate`
/// (by counting days).
pub fn unix_time(iso: &str) -> u64 {
    let n = |r: std::ops::Range<usize>| iso[r].parse::<u64>().unwrap();
    let (year, month, day) = (n(0..4), n(5..7), n(8..10));
    let leap = |y: u64| y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400));
    let mut days = (1970..year)
        .map(|y| if leap(y) { 366 } else { 365 })
        .sum::<u64>();
    let lengths = [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    days += lengths[..(month - 1) as usize].iter().sum::<u64>() + day - 1;
    days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

/// A straightforward SigV4 signer written apart from the module, for requests already in
/// canonical form (sorted, encoded query; single-valued headers; canonical path).
pub struct Independent<'a> {
    pub secret: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub payload: &'a str,
    pub amz_date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

pub fn independent_signature(s: &Independent<'_>) -> String {
    let Independent {
        secret,
        method,
        path,
        query,
        headers,
        payload,
        amz_date,
        region,
        service,
    } = *s;
    let mut sorted: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| {
            (
                n.to_ascii_lowercase(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    sorted.sort();
    let canonical_headers: String = sorted.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let signed: Vec<&str> = sorted.iter().map(|(n, _)| n.as_str()).collect();
    let canonical = format!(
        "{method}\n{path}\n{query}\n{canonical_headers}\n{}\n{payload}",
        signed.join(";")
    );
    let scope = format!("{}/{region}/{service}/aws4_request", &amz_date[..8]);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
    );
    let mac = |key: &[u8], data: &str| {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
            .as_ref()
            .to_vec()
    };
    let k = mac(format!("AWS4{secret}").as_bytes(), &amz_date[..8]);
    let k = mac(&k, region);
    let k = mac(&k, service);
    let k = mac(&k, "aws4_request");
    hex::encode(mac(&k, &to_sign))
}
