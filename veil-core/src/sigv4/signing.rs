//! SigV4's cryptography: the signing key chain, the string to sign, signatures. Pure.

use ring::{digest, hmac};
use zeroize::Zeroizing;

use super::scope::Scope;

/// The algorithm name in `Authorization` headers, `X-Amz-Algorithm` and strings to sign.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Hex SHA-256 of the empty string.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// A derived signing key (`HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
/// "aws4_request")`): zeroized on drop, never formatted.
pub struct SigningKey(Zeroizing<[u8; 32]>);

impl SigningKey {
    /// Derives the key for `scope` from a secret access key.
    pub fn derive(secret_access_key: &str, scope: &Scope) -> Self {
        let mut first = Zeroizing::new(Vec::with_capacity(4 + secret_access_key.len()));
        first.extend_from_slice(b"AWS4");
        first.extend_from_slice(secret_access_key.as_bytes());
        let k_date = mac(&first, scope.date().as_bytes());
        let k_region = mac(&k_date[..], scope.region().as_bytes());
        let k_service = mac(&k_region[..], scope.service().as_bytes());
        Self(mac(&k_service[..], b"aws4_request"))
    }

    /// The hex signature of `string_to_sign`.
    pub fn sign(&self, string_to_sign: &[u8]) -> String {
        hex::encode(&mac(&self.0[..], string_to_sign)[..])
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

/// `AWS4-HMAC-SHA256\n<date>\n<scope>\n<hex sha256(canonical request)>`.
pub fn string_to_sign(amz_date: &str, scope: &Scope, canonical_request: &[u8]) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{}\n{}",
        scope.text(),
        sha256_hex(canonical_request)
    )
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, data))
}

fn mac(key: &[u8], data: &[u8]) -> Zeroizing<[u8; 32]> {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(tag.as_ref());
    out
}
