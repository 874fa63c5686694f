//! `Authorization: Basic` credentials: recognising, decoding and re-encoding them.

use base64::{
    engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT},
    DecodeSliceError, Engine as _,
};
use zeroize::Zeroizing;

/// Credentials up to this decoded size are decoded on the stack, without allocating.
const INLINE_DECODED: usize = 512;

/// A header value with scheme `Basic`, split in two.
pub(super) struct Basic<'a> {
    /// The scheme and the whitespace after it, kept as sent.
    pub(super) scheme: &'a [u8],
    /// The base64 credentials.
    pub(super) credentials: &'a [u8],
}

/// Splits `value` when `header_name` is `Authorization` or `Proxy-Authorization` and the value
/// has scheme `Basic` followed by whitespace (all case-insensitive).
pub(super) fn split<'a>(header_name: &str, value: &'a [u8]) -> Option<Basic<'a>> {
    const SCHEME: &[u8] = b"basic";
    let carries_credentials = header_name.eq_ignore_ascii_case("authorization")
        || header_name.eq_ignore_ascii_case("proxy-authorization");
    let is_basic = value
        .get(..SCHEME.len())
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case(SCHEME));
    if !carries_credentials || !is_basic {
        return None;
    }
    let spaces = value[SCHEME.len()..]
        .iter()
        .take_while(|&&byte| byte == b' ' || byte == b'\t')
        .count();
    if spaces == 0 {
        return None;
    }
    let (scheme, credentials) = value.split_at(SCHEME.len() + spaces);
    Some(Basic {
        scheme,
        credentials,
    })
}

/// Runs `with` on the decoded `credentials` (standard alphabet, padding optional), or returns
/// `None` if they are not base64.
pub(super) fn with_decoded<R>(credentials: &[u8], with: impl FnOnce(&[u8]) -> R) -> Option<R> {
    let mut inline = [0; INLINE_DECODED];
    match STANDARD_PAD_INDIFFERENT.decode_slice(credentials, &mut inline) {
        Ok(len) => Some(with(&inline[..len])),
        Err(DecodeSliceError::OutputSliceTooSmall) => STANDARD_PAD_INDIFFERENT
            .decode(credentials)
            .ok()
            .map(|decoded| with(&decoded)),
        Err(DecodeSliceError::DecodeError(_)) => None,
    }
}

/// `scheme` followed by `user_pass` in padded base64, in a buffer allocated once at its final
/// size and zeroized on drop.
pub(super) fn encode(scheme: &[u8], user_pass: &[u8]) -> Zeroizing<Vec<u8>> {
    let encoded_len = user_pass.len().div_ceil(3) * 4;
    let mut out = Zeroizing::new(Vec::with_capacity(scheme.len() + encoded_len));
    out.extend_from_slice(scheme);
    out.resize(scheme.len() + encoded_len, 0);
    STANDARD
        .encode_slice(user_pass, &mut out[scheme.len()..])
        // Invariant: the slice is `div_ceil(3) * 4` bytes, exactly the padded base64 length.
        .expect("output sized to the padded base64 length");
    out
}
