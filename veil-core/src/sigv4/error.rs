//! [`SigV4Error`]: why veil refuses to re-sign a request. Pure.

/// Why a request, or an `aws-chunked` body, cannot be re-signed faithfully. The caller answers
/// the sandbox with a 4xx and writes an audit record; nothing is forwarded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// Neither an `Authorization: AWS4-HMAC-SHA256 ...` header nor presigned query parameters.
    #[error("the request carries no AWS SigV4 signature")]
    NotSigned,
    /// Both an `Authorization` header and presigned query parameters.
    #[error("the request is signed both in the Authorization header and in the query string")]
    SignedTwice,
    /// More than one `Authorization` header.
    #[error("the request has more than one Authorization header")]
    DuplicateAuthorization,
    /// A signing algorithm other than `AWS4-HMAC-SHA256` (SigV4a, SigV2, ...).
    #[error("unsupported signing algorithm {0:?}; only AWS4-HMAC-SHA256 can be re-signed")]
    UnsupportedAlgorithm(String),
    /// The `Authorization` header does not parse.
    #[error("malformed SigV4 Authorization header: {0}")]
    MalformedAuthorization(&'static str),
    /// A presigned query parameter is missing, repeated or malformed.
    #[error("malformed presigned query parameter {name}: {why}")]
    MalformedQuery {
        /// The parameter.
        name: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The credential (`<key id>/<date>/<region>/<service>/aws4_request`) does not parse.
    #[error("malformed SigV4 credential scope: {0}")]
    MalformedCredential(&'static str),
    /// `SignedHeaders` is empty, not lowercase, not sorted, or repeats a name.
    #[error("malformed SignedHeaders list: {0}")]
    MalformedSignedHeaders(&'static str),
    /// `host` is not among the signed headers (SigV4 requires it; veil relies on it).
    #[error("the host header is not signed")]
    HostNotSigned,
    /// A header named in `SignedHeaders` is not in the request.
    #[error("signed header {0:?} is missing from the request")]
    MissingSignedHeader(String),
    /// A header that must not be signed (`authorization`) is in `SignedHeaders`.
    #[error("header {0:?} cannot be signed")]
    UnsignableHeader(String),
    /// No `X-Amz-Date` (header or presigned parameter).
    #[error("the request has no X-Amz-Date")]
    MissingDate,
    /// `X-Amz-Date` is not `YYYYMMDDTHHMMSSZ`, or repeated.
    #[error("malformed X-Amz-Date (expected YYYYMMDDTHHMMSSZ)")]
    MalformedDate,
    /// The credential scope's date is not the day of `X-Amz-Date`.
    #[error("the credential scope date does not match X-Amz-Date")]
    DateMismatch,
    /// `X-Amz-Date` is further from veil's clock than [`MAX_CLOCK_SKEW_SECS`](super::MAX_CLOCK_SKEW_SECS).
    #[error("X-Amz-Date is {0} seconds away from veil's clock, outside the signature's validity")]
    ClockSkew(u64),
    /// `x-amz-content-sha256` is neither a SHA-256 hex digest nor a known payload mode.
    #[error("malformed or repeated x-amz-content-sha256")]
    MalformedPayloadHash,
    /// A payload mode veil does not re-sign.
    #[error("payload mode {0:?} is not supported")]
    UnsupportedPayload(String),
    /// No `x-amz-content-sha256` and the caller did not hash the body, so the payload hash is
    /// unknown.
    #[error("the payload hash is unknown: no x-amz-content-sha256 header and no body hash")]
    PayloadHashUnknown,
    /// The request target is not origin-form, or its query string has a bad percent escape.
    #[error("malformed request target: {0}")]
    MalformedTarget(&'static str),
    /// More than one `x-amz-security-token`.
    #[error("the request has more than one session token")]
    DuplicateSessionToken,
    /// The real credentials have a session token but the request carries no placeholder for it
    /// (set `AWS_SESSION_TOKEN` in the sandbox to the placeholder).
    #[error("the real credentials need a session token but the request carries none")]
    SessionTokenMissing,
    /// The request carries a session token but the real credentials have none.
    #[error("the request carries a session token but the real credentials have none")]
    UnexpectedSessionToken,
    /// A real access key id that cannot be used (empty, too long, or not `[A-Za-z0-9]`).
    #[error("the real access key id is malformed")]
    MalformedKeyId,
}

/// Why an `aws-chunked` body cannot be re-signed; the caller aborts the upload (the request
/// head is already forwarded, so the upstream sees a truncated body and rejects it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// A chunk header is not `<hex size>;chunk-signature=<64 hex>\r\n`.
    #[error("malformed aws-chunked chunk header: {0}")]
    MalformedHeader(&'static str),
    /// A chunk is larger than [`MAX_CHUNK_LEN`](super::MAX_CHUNK_LEN).
    #[error("aws-chunked chunk of {0} bytes is larger than veil re-signs (16 MiB)")]
    ChunkTooLarge(u64),
    /// A chunk's data is not followed by `\r\n`.
    #[error("aws-chunked chunk data not followed by CRLF")]
    MissingCrlf,
    /// Bytes after the final (zero-size) chunk.
    #[error("bytes after the final aws-chunked chunk")]
    TrailingBytes,
    /// Input after an error was returned.
    #[error("the aws-chunked body was already refused")]
    AfterError,
    /// The body ended before the final chunk.
    #[error("the aws-chunked body ended before its final chunk")]
    Truncated,
}
