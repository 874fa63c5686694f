//! Base64 forms: whole encodings, padded and unpadded, and the stable cores of a plaintext
//! inside longer base64 text, in the standard and URL-safe alphabets.

use base64::{
    engine::{
        general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD},
        Config as _, GeneralPurpose,
    },
    Engine as _,
};
use zeroize::Zeroizing;

use super::forms::{push_encoded, Form};

/// Shortest base64 pattern matched, in characters, apart from padded whole encodings (which
/// are at least this long). Shorter cores and unpadded encodings come only from plaintexts of
/// 1 to 3 bytes, and would match unrelated base64 text everywhere.
pub const MIN_BASE64: usize = 4;

/// Each alphabet as `(padded, unpadded)`.
const ALPHABETS: [(&GeneralPurpose, &GeneralPurpose); 2] =
    [(&STANDARD, &STANDARD_NO_PAD), (&URL_SAFE, &URL_SAFE_NO_PAD)];

/// Appends the base64 forms of `plaintext`, standing for `stands_for`.
pub(super) fn push(plaintext: &[u8], stands_for: &[u8], forms: &mut Vec<Form>) {
    for (padded, unpadded) in ALPHABETS {
        push_encoded(
            plaintext,
            stands_for,
            1,
            &|text, out| encode_into(padded, text, out),
            forms,
        );
        push_encoded(
            plaintext,
            stands_for,
            MIN_BASE64,
            &|text, out| encode_into(unpadded, text, out),
            forms,
        );
        for offset in 0..3 {
            push_encoded(
                plaintext,
                stands_for,
                MIN_BASE64,
                &|text, out| core_into(unpadded, offset, text, out),
                forms,
            );
        }
    }
}

/// Writes `text` encoded by `engine` into `out`.
fn encode_into(engine: &GeneralPurpose, text: &[u8], out: &mut Vec<u8>) -> bool {
    let Some(len) = base64::encoded_len(text.len(), engine.config().encode_padding()) else {
        return false;
    };
    out.resize(len, 0);
    engine
        .encode_slice(text, out)
        // Invariant: `out` is exactly `encoded_len` bytes long.
        .expect("output sized to the encoded length");
    true
}

/// Writes the stable core of `text` into `out`: the characters that encode only bits of
/// `text` when it follows `offset` (0 to 2) other bytes of its 3-byte group, so they are the
/// same whatever bytes surround it.
///
/// `text` occupies bits `8 * offset` to `8 * (offset + len)` of the encoded stream, and
/// character `j` bits `6 * j` to `6 * j + 6`: the core is the characters wholly inside.
fn core_into(unpadded: &GeneralPurpose, offset: usize, text: &[u8], out: &mut Vec<u8>) -> bool {
    let mut aligned = Zeroizing::new(vec![0; offset + text.len()]);
    aligned[offset..].copy_from_slice(text);
    if !encode_into(unpadded, &aligned, out) {
        return false;
    }
    let first = (8 * offset).div_ceil(6);
    let end = 8 * (offset + text.len()) / 6;
    out.truncate(end);
    out.drain(..first.min(end));
    true
}
