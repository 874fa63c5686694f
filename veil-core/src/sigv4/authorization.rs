//! [`Authorization`]: the `Authorization: AWS4-HMAC-SHA256 ...` header, strictly parsed. Pure.

use super::scope::Credential;
use super::signing::ALGORITHM;
use super::SigV4Error;

/// A parsed `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    /// The credential: key id and scope.
    pub credential: Credential,
    /// The signed header names: lowercase, sorted, unique, `host` among them.
    pub signed_headers: Vec<String>,
}

impl Authorization {
    /// Parses a header value. The three fields may come in any order, separated by `,` with
    /// optional spaces; each exactly once; nothing else.
    pub fn parse(value: &[u8]) -> Result<Self, SigV4Error> {
        let bad = SigV4Error::MalformedAuthorization;
        let value = std::str::from_utf8(value).map_err(|_| bad("not ASCII"))?;
        let value = value.trim_matches(|c| c == ' ' || c == '\t');
        let (algorithm, rest) = value
            .split_once(' ')
            .ok_or(bad("expected '<algorithm> Credential=...'"))?;
        if algorithm != ALGORITHM {
            return Err(SigV4Error::UnsupportedAlgorithm(
                algorithm.chars().take(64).collect(),
            ));
        }
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for field in rest.split(',') {
            let field = field.trim_matches(|c| c == ' ' || c == '\t');
            let (name, text) = field
                .split_once('=')
                .ok_or(bad("a field is not name=value"))?;
            let slot = match name {
                "Credential" => &mut credential,
                "SignedHeaders" => &mut signed,
                "Signature" => &mut signature,
                _ => return Err(bad("unknown field")),
            };
            if slot.replace(text).is_some() {
                return Err(bad("a field is repeated"));
            }
        }
        let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature)
        else {
            return Err(bad("Credential, SignedHeaders or Signature is missing"));
        };
        if !is_signature(signature) {
            return Err(bad("Signature is not 64 lowercase hex digits"));
        }
        Ok(Self {
            credential: Credential::parse(credential)?,
            signed_headers: parse_signed_headers(signed)?,
        })
    }
}

/// Parses `a;b;c`: lowercase header names, strictly sorted (so unique), `host` among them,
/// never `authorization`.
pub fn parse_signed_headers(text: &str) -> Result<Vec<String>, SigV4Error> {
    let bad = SigV4Error::MalformedSignedHeaders;
    let mut names: Vec<String> = Vec::new();
    for name in text.split(';') {
        if name.is_empty()
            || !name.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.!#$%&'*+^`|~".contains(&b)
            })
        {
            return Err(bad("a name is empty or not a lowercase token"));
        }
        if names.last().is_some_and(|last| last.as_str() >= name) {
            return Err(bad("names are not sorted or repeat"));
        }
        if name == "authorization" {
            return Err(SigV4Error::UnsignableHeader(name.to_owned()));
        }
        names.push(name.to_owned());
    }
    if !names.iter().any(|n| n == "host") {
        return Err(SigV4Error::HostNotSigned);
    }
    Ok(names)
}

/// 64 lowercase hex digits.
pub fn is_signature(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
