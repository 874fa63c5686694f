//! AWS Signature Version 4 re-signing: a sandbox signs with a placeholder key, veil signs the
//! same request again with the real key. Pure, sans I/O.
//!
//! A sandbox holds `AWS_ACCESS_KEY_ID=<placeholder>` and any secret access key. Its SDK signs
//! each request (in the `Authorization` header or as a presigned URL) with them. veil:
//! 1. [`SignedRequest::parse`]s the request exactly as it will be forwarded (after other
//!    placeholder injection): strict, any part it cannot canonicalise faithfully is a
//!    [`SigV4Error`] (the caller answers 4xx and audits);
//! 2. looks up [`SignedRequest::key_id`] (the placeholder) and checks the verified host against
//!    the secret's scope;
//! 3. calls [`SignedRequest::resign`] with the real [`AwsCredentials`] and gets a [`Resigned`]:
//!    the new `Authorization` value (or the new request target of a presigned URL), whether to
//!    put the real session token in `x-amz-security-token`, and for
//!    `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` uploads a [`ChunkResigner`] every body byte goes
//!    through.
//!
//! Canonicalisation follows the service's own verification (see [`canonical`]): S3 (`s3`,
//! `s3-*`) takes the path as sent; other services normalise and encode it again. The payload
//! hash comes from `x-amz-content-sha256` ([`PayloadHash`]); without that header the caller
//! must hash the body ([`SignedRequest::needs_body_hash`]) or the request is refused.
//! `host` must be signed, and `X-Amz-Date` must be within [`MAX_CLOCK_SKEW_SECS`] of veil's
//! clock (presigned URLs: until they expire), so a signature made by veil is never valid for
//! long.
//!
//! Secret access keys, session tokens and derived keys live in zeroizing types whose `Debug`
//! is redacted.

mod authorization;
pub mod canonical;
mod chunked;
mod credentials;
mod date;
mod error;
mod payload;
mod request;
mod scope;
mod signing;

pub use authorization::Authorization;
pub use chunked::{ChunkResigner, MAX_CHUNK_LEN};
pub use credentials::{AwsCredentials, SecretText};
pub use date::{AmzDate, MAX_CLOCK_SKEW_SECS};
pub use error::{ChunkError, SigV4Error};
pub use payload::PayloadHash;
pub use request::{Request, Resigned, SignedRequest, MAX_PRESIGNED_EXPIRES, SESSION_TOKEN_HEADER};
pub use scope::{Credential, Scope};
pub use signing::{sha256_hex, string_to_sign, SigningKey, ALGORITHM, EMPTY_SHA256};

#[cfg(test)]
mod tests;
