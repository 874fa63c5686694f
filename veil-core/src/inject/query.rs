//! The query string of a request target, and percent-encoding secrets for it and for paths.

use std::ops::Range;

use percent_encoding::{percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Where the query string of `request_target` lies: after the first `?`, before any `#`.
pub(super) fn range(request_target: &[u8]) -> Option<Range<usize>> {
    let end = request_target
        .iter()
        .position(|&byte| byte == b'#')
        .unwrap_or(request_target.len());
    let start = request_target[..end]
        .iter()
        .position(|&byte| byte == b'?')?
        + 1;
    Some(start..end)
}

/// How long `bytes` are once percent-encoded.
pub(super) fn percent_encoded_len(bytes: &[u8]) -> usize {
    percent_encode(bytes, UNRESERVED).map(str::len).sum()
}

/// Appends `bytes` to `out`, percent-encoding all but the unreserved bytes (`A-Za-z0-9-._~`).
pub(super) fn percent_encode_into(bytes: &[u8], out: &mut Vec<u8>) {
    for chunk in percent_encode(bytes, UNRESERVED) {
        out.extend_from_slice(chunk.as_bytes());
    }
}

/// How long `bytes` are once percent-encoded for a path segment.
pub(super) fn path_encoded_len(bytes: &[u8]) -> usize {
    percent_encode(bytes, SEGMENT).map(str::len).sum()
}

/// Appends `bytes` to `out`, percent-encoded for a path segment (unreserved bytes, `:` and
/// `@` stand for themselves).
pub(super) fn path_encode_into(bytes: &[u8], out: &mut Vec<u8>) {
    for chunk in percent_encode(bytes, SEGMENT) {
        out.extend_from_slice(chunk.as_bytes());
    }
}

/// What stands for itself in a path segment: the unreserved characters, `:` and `@`.
const SEGMENT: &AsciiSet = &UNRESERVED.remove(b':').remove(b'@');

/// What stands for itself in a URI (RFC 3986's unreserved characters); everything else is
/// percent-encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
