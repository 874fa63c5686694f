//! The canonical request's parts: URI, query string, headers. Pure.
//!
//! The rules are the ones AWS applies when it verifies a signature, so that the signature veil
//! computes is the one the service computes over the request as forwarded:
//! - URI: for S3 the path as sent (S3 neither normalises nor encodes it again); for every
//!   other service dot segments and empty segments are removed and the result is URI-encoded
//!   (so an already percent-encoded path is encoded twice, `%` becoming `%25`).
//! - Query: each `name=value` is percent-decoded, encoded again with SigV4's encoding
//!   (unreserved bytes as they are, everything else `%XX` in capitals), and the pairs are
//!   sorted by name, then value. A bad percent escape is refused.
//! - Headers: lowercase names in `SignedHeaders` order; each value trimmed, runs of spaces and
//!   tabs collapsed to one space; repeated headers joined with `,` in request order.

use zeroize::Zeroizing;

use super::SigV4Error;

/// The canonical URI of `path` (the request target before any `?`).
pub fn uri(path: &str, s3: bool) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    if s3 {
        return path.to_owned();
    }
    let normalized = remove_dot_segments(path);
    let mut out = String::with_capacity(normalized.len());
    encode_into(normalized.as_bytes(), true, &mut out);
    out
}

/// One `name=value` of a query string: the raw text and the decoded name and value.
pub struct QueryParam<'a> {
    /// The text between `&`s, as sent.
    pub raw: &'a str,
    /// The percent-decoded name.
    pub name: Vec<u8>,
    /// The percent-decoded value (zeroized on drop: it may be a session token).
    pub value: Zeroizing<Vec<u8>>,
}

/// Splits and decodes a raw query string; empty pieces (`a=1&&b=2`) are skipped.
pub fn parse_query(query: &str) -> Result<Vec<QueryParam<'_>>, SigV4Error> {
    query
        .split('&')
        .filter(|raw| !raw.is_empty())
        .map(|raw| {
            let (name, value) = raw.split_once('=').unwrap_or((raw, ""));
            Ok(QueryParam {
                raw,
                name: decode(name)?,
                value: Zeroizing::new(decode(value)?),
            })
        })
        .collect()
}

/// The canonical query string of decoded pairs (the caller leaves out `X-Amz-Signature`).
pub fn query<'p>(pairs: impl Iterator<Item = (&'p [u8], &'p [u8])>) -> Zeroizing<String> {
    let mut encoded: Vec<(String, Zeroizing<String>)> = pairs
        .map(|(name, value)| {
            let mut n = String::new();
            encode_into(name, false, &mut n);
            let mut v = Zeroizing::new(String::new());
            encode_into(value, false, &mut v);
            (n, v)
        })
        .collect();
    encoded.sort_by(|a, b| (&a.0, &*a.1).cmp(&(&b.0, &*b.1)));
    let mut out = Zeroizing::new(String::new());
    for (i, (name, value)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// The canonical headers block (`name:value\n` for each signed header), with `override_value`
/// standing in for the values of header `override_name` (the real session token).
pub fn headers(
    request_headers: &[(&str, &[u8])],
    signed: &[String],
    override_header: Option<(&str, &[u8])>,
) -> Result<Zeroizing<Vec<u8>>, SigV4Error> {
    let mut out = Zeroizing::new(Vec::new());
    for name in signed {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        if let Some((_, value)) = override_header.filter(|(n, _)| n == name) {
            push_value(value, &mut out);
        } else {
            let mut found = false;
            for (_, value) in request_headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                if found {
                    out.push(b',');
                }
                found = true;
                push_value(value, &mut out);
            }
            if !found {
                return Err(SigV4Error::MissingSignedHeader(name.clone()));
            }
        }
        out.push(b'\n');
    }
    Ok(out)
}

/// SigV4's URI encoding: unreserved bytes (`A-Za-z0-9-_.~`) as they are, `/` too when
/// `keep_slash`, everything else `%XX` with capital hex digits.
pub fn encode_into(bytes: &[u8], keep_slash: bool, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

fn push_value(value: &[u8], out: &mut Vec<u8>) {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |i| i + 1);
    let mut in_space = false;
    for b in &value[start..end] {
        if is_space(b) {
            in_space = true;
        } else {
            if in_space {
                out.push(b' ');
                in_space = false;
            }
            out.push(*b);
        }
    }
}

fn decode(text: &str) -> Result<Vec<u8>, SigV4Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(SigV4Error::MalformedTarget(
                    "bad percent escape in the query",
                ))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// RFC 3986's dot-segment removal, also dropping empty segments (AWS collapses `//`).
fn remove_dot_segments(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(path.len());
    if path.starts_with('/') {
        out.push('/');
    }
    out.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        out.push('/');
    }
    out
}
