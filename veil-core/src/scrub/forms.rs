//! Every form of one plaintext the scrubber matches, each with what replaces it.

use zeroize::Zeroizing;

use super::{base64_forms, json_forms, percent_forms};

/// One pattern of the automaton and what replaces a match of it.
pub(super) struct Form {
    /// The bytes to find: a secret in some encoding. Zeroized on drop.
    pub(super) pattern: Zeroizing<Vec<u8>>,
    /// The same encoding of what the secret stands for.
    pub(super) replacement: Vec<u8>,
}

/// Writes one encoding of its first argument into the second (empty, with room for
/// [`max_encoded_len`] bytes), or returns `false` when the encoding does not apply to it.
pub(super) type Encoder<'a> = &'a dyn Fn(&[u8], &mut Vec<u8>) -> bool;

/// Appends to `forms` every form of `plaintext`, each replaced by the same form of
/// `stands_for`. Forms that coincide are all appended; the caller keeps the first.
pub(super) fn push_all(plaintext: &[u8], stands_for: &[u8], forms: &mut Vec<Form>) {
    let raw: Encoder<'_> = &|text, out| {
        out.extend_from_slice(text);
        true
    };
    push_encoded(plaintext, stands_for, 1, raw, forms);
    base64_forms::push(plaintext, stands_for, forms);
    percent_forms::push(plaintext, stands_for, forms);
    json_forms::push(plaintext, stands_for, forms);
}

/// Appends the form `encode` makes of `plaintext` when it applies and is at least `min_len`
/// bytes long, replaced by the form it makes of `stands_for`, or by `stands_for` itself when
/// the encoding does not apply to that.
pub(super) fn push_encoded(
    plaintext: &[u8],
    stands_for: &[u8],
    min_len: usize,
    encode: Encoder<'_>,
    forms: &mut Vec<Form>,
) {
    // Sized up front so that no reallocation leaves a copy of the secret behind.
    let mut pattern = Zeroizing::new(Vec::with_capacity(max_encoded_len(plaintext.len())));
    if !encode(plaintext, &mut pattern) || pattern.len() < min_len {
        return;
    }
    let mut replacement = Vec::with_capacity(max_encoded_len(stands_for.len()));
    if !encode(stands_for, &mut replacement) {
        replacement.clear();
        replacement.extend_from_slice(stands_for);
    }
    forms.push(Form {
        pattern,
        replacement,
    });
}

/// The most bytes any encoding makes of `len` bytes: 6 per byte (JSON's `\u00XX`), plus room
/// for base64's alignment bytes and padding.
pub(super) fn max_encoded_len(len: usize) -> usize {
    len * 6 + 8
}
