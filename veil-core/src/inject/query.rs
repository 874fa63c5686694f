//! The query string of a request target, and percent-encoding secrets for it.

use std::ops::Range;

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
    bytes
        .iter()
        .map(|&byte| if is_unreserved(byte) { 1 } else { 3 })
        .sum()
}

/// Appends `bytes` to `out`, percent-encoding all but the unreserved bytes (`A-Za-z0-9-._~`).
pub(super) fn percent_encode_into(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in bytes {
        if is_unreserved(byte) {
            out.push(byte);
        } else {
            out.extend_from_slice(&[
                b'%',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0x0f)],
            ]);
        }
    }
}

/// Whether `byte` is unreserved in a URI (RFC 3986): it stands for itself.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}
