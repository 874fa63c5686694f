//! [`PayloadHash`]: the last line of the canonical request. Pure.

use super::signing::sha256_hex;
use super::SigV4Error;

/// What the canonical request says about the body: `x-amz-content-sha256`'s value, or the hash
/// of the body the caller computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayloadHash {
    /// A lowercase hex SHA-256 digest of the body.
    Sha256(String),
    /// `UNSIGNED-PAYLOAD`: the body is not signed; forwarded as it is.
    Unsigned,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: `aws-chunked` framing without chunk signatures and
    /// an unsigned checksum trailer; forwarded as it is.
    StreamingUnsignedTrailer,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: `aws-chunked` framing whose every chunk is signed
    /// with the request's key; re-signed by a [`ChunkResigner`](super::ChunkResigner).
    StreamingSigned,
}

impl PayloadHash {
    /// Parses an `x-amz-content-sha256` value. Signed trailers and SigV4a streaming are
    /// refused as unsupported.
    pub fn parse(value: &[u8]) -> Result<Self, SigV4Error> {
        match value {
            b"UNSIGNED-PAYLOAD" => Ok(Self::Unsigned),
            b"STREAMING-UNSIGNED-PAYLOAD-TRAILER" => Ok(Self::StreamingUnsignedTrailer),
            b"STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => Ok(Self::StreamingSigned),
            v if v.starts_with(b"STREAMING-") => Err(SigV4Error::UnsupportedPayload(
                String::from_utf8_lossy(&v[..v.len().min(64)]).into_owned(),
            )),
            v if v.len() == 64 && v.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => {
                Ok(Self::Sha256(String::from_utf8_lossy(v).into_owned()))
            }
            _ => Err(SigV4Error::MalformedPayloadHash),
        }
    }

    /// The hash of a whole body the caller holds.
    pub fn of_body(body: &[u8]) -> Self {
        Self::Sha256(sha256_hex(body))
    }

    /// The text that ends the canonical request.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Sha256(hex) => hex,
            Self::Unsigned => "UNSIGNED-PAYLOAD",
            Self::StreamingUnsignedTrailer => "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            Self::StreamingSigned => "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        }
    }
}
