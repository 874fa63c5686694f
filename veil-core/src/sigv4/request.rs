//! [`SignedRequest`]: a request as the sandbox signed it, and [`SignedRequest::resign`]. Pure.

use std::fmt;

use zeroize::Zeroizing;

use super::authorization::{is_signature, parse_signed_headers, Authorization};
use super::canonical::{self, QueryParam};
use super::chunked::ChunkResigner;
use super::credentials::{AwsCredentials, SecretText};
use super::date::AmzDate;
use super::payload::PayloadHash;
use super::scope::Credential;
use super::signing::{string_to_sign, SigningKey, ALGORITHM};
use super::SigV4Error;

/// The header that carries a session token.
pub const SESSION_TOKEN_HEADER: &str = "x-amz-security-token";

/// Longest validity of a presigned URL AWS accepts (`X-Amz-Expires`), in seconds: 7 days.
pub const MAX_PRESIGNED_EXPIRES: u64 = 604_800;

/// A request exactly as veil will forward it (after any other placeholder injection): method,
/// origin-form target (`/path?query`) and every header in order. No `Debug`: its headers may
/// hold secrets injected before re-signing.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// The method, such as `PUT`.
    pub method: &'a str,
    /// The request target, `/path` or `/path?query`.
    pub target: &'a str,
    /// Every header, in order, names as sent.
    pub headers: &'a [(&'a str, &'a [u8])],
}

/// Where the signature is.
enum Location<'a> {
    /// `Authorization` header.
    Header,
    /// Presigned URL: the path and the decoded query parameters.
    Query {
        path: &'a str,
        params: Vec<QueryParam<'a>>,
        expires: u64,
    },
}

/// A request signed with SigV4 (header or presigned URL), parsed: who signed it (the key id:
/// in a sandbox, a placeholder), for which scope, and over what.
pub struct SignedRequest<'a> {
    request: Request<'a>,
    credential: Credential,
    signed_headers: Vec<String>,
    date: AmzDate,
    declared_payload: Option<PayloadHash>,
    has_session_token: bool,
    location: Location<'a>,
}

/// What the caller changes before forwarding, after [`SignedRequest::resign`].
#[derive(Debug)]
pub enum Resigned {
    /// Header-signed request.
    Header {
        /// The new `Authorization` value (replaces the one sent).
        authorization: String,
        /// Set the `x-amz-security-token` header's value to the real session token.
        replace_session_token: bool,
        /// `Some` for `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: every body byte goes through it.
        body: Option<ChunkResigner>,
    },
    /// Presigned URL.
    Query {
        /// The new request target: the same path and parameters in the same order, with
        /// `X-Amz-Credential`, `X-Amz-Security-Token` and `X-Amz-Signature` replaced.
        target: SecretText,
    },
}

/// Shows who signed and for what; never the request's headers or target (they may hold
/// injected secrets).
impl fmt::Debug for SignedRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedRequest")
            .field("key_id", &self.credential.key_id)
            .field("scope", &self.credential.scope.text())
            .field("signed_headers", &self.signed_headers)
            .field("date", &self.date.text())
            .field("payload", &self.declared_payload)
            .field(
                "presigned",
                &matches!(self.location, Location::Query { .. }),
            )
            .finish()
    }
}

impl<'a> SignedRequest<'a> {
    /// Finds and parses the signature. [`SigV4Error::NotSigned`] when there is none.
    pub fn parse(request: Request<'a>) -> Result<Self, SigV4Error> {
        let (path, query) = match request.target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (request.target, None),
        };
        if !path.starts_with('/') {
            return Err(SigV4Error::MalformedTarget("not origin-form (/path?query)"));
        }
        let params = match query {
            Some(q) => canonical::parse_query(q)?,
            None => Vec::new(),
        };
        let presigned = params.iter().any(|p| {
            matches!(
                p.name.as_slice(),
                b"X-Amz-Algorithm" | b"X-Amz-Credential" | b"X-Amz-Signature"
            )
        });
        let mut authorizations = header_values(request.headers, "authorization");
        let authorization = authorizations.next();
        if authorizations.next().is_some() {
            return Err(SigV4Error::DuplicateAuthorization);
        }
        let declared_payload = match single_header(request.headers, "x-amz-content-sha256")
            .map_err(|()| SigV4Error::MalformedPayloadHash)?
        {
            Some(value) => Some(PayloadHash::parse(value)?),
            None => None,
        };
        let has_session_token = match single_header(request.headers, SESSION_TOKEN_HEADER) {
            Ok(token) => token.is_some(),
            Err(()) => return Err(SigV4Error::DuplicateSessionToken),
        };
        match (authorization, presigned) {
            (Some(_), true) => Err(SigV4Error::SignedTwice),
            (None, false) => Err(SigV4Error::NotSigned),
            (Some(value), false) => {
                let auth = Authorization::parse(value)?;
                let date = match single_header(request.headers, "x-amz-date") {
                    Ok(Some(date)) => AmzDate::parse(date)?,
                    Ok(None) => return Err(SigV4Error::MissingDate),
                    Err(()) => return Err(SigV4Error::MalformedDate),
                };
                Self::checked(Self {
                    request,
                    credential: auth.credential,
                    signed_headers: auth.signed_headers,
                    date,
                    declared_payload,
                    has_session_token,
                    location: Location::Header,
                })
            }
            (None, true) => Self::parse_presigned(request, path, params, declared_payload),
        }
    }

    /// The access key id the request was signed with (the placeholder to look up).
    pub fn key_id(&self) -> &str {
        &self.credential.key_id
    }

    /// The scope's region.
    pub fn region(&self) -> &str {
        self.credential.scope.region()
    }

    /// The scope's service.
    pub fn service(&self) -> &str {
        self.credential.scope.service()
    }

    /// Whether [`resign`](Self::resign) needs the SHA-256 of the whole body: there is no
    /// `x-amz-content-sha256` header (and the request is not a presigned S3 URL, which signs
    /// `UNSIGNED-PAYLOAD`). The caller then buffers the body (bounded) and hashes it.
    pub fn needs_body_hash(&self) -> bool {
        self.declared_payload.is_none()
            && !(matches!(self.location, Location::Query { .. }) && self.credential.scope.is_s3())
    }

    /// Signs the request again with `real`: the key id and session token are replaced, the
    /// signature recomputed over the request as it will be forwarded. `body_sha256` is the
    /// body's SHA-256 when [`needs_body_hash`](Self::needs_body_hash) (ignored otherwise);
    /// `now` is veil's clock in seconds since the Unix epoch.
    pub fn resign(
        &self,
        real: &AwsCredentials,
        body_sha256: Option<&[u8; 32]>,
        now: u64,
    ) -> Result<Resigned, SigV4Error> {
        let valid_for = match &self.location {
            Location::Header => 0,
            Location::Query { expires, .. } => *expires,
        };
        self.date.check(now, valid_for)?;
        match (self.has_session_token, real.session_token()) {
            (false, Some(_)) => return Err(SigV4Error::SessionTokenMissing),
            (true, None) => return Err(SigV4Error::UnexpectedSessionToken),
            _ => {}
        }
        let payload = match (&self.declared_payload, body_sha256) {
            (Some(declared), _) => declared.clone(),
            (None, _) if !self.needs_body_hash() => PayloadHash::Unsigned,
            (None, Some(hash)) => PayloadHash::Sha256(hex::encode(hash)),
            (None, None) => return Err(SigV4Error::PayloadHashUnknown),
        };
        let scope = &self.credential.scope;
        let key = SigningKey::derive(real.secret_access_key(), scope);
        let token = real.session_token().map(|t| t.expose().as_bytes());
        match &self.location {
            Location::Header => {
                let path = self.request.target.split('?').next().unwrap_or("");
                let query = self.request.target.split_once('?').map_or("", |(_, q)| q);
                let params = canonical::parse_query(query)?;
                let canonical_query = canonical::query(
                    params
                        .iter()
                        .map(|p| (p.name.as_slice(), p.value.as_slice())),
                );
                let signature = self.sign(&key, path, &canonical_query, token, &payload)?;
                let authorization = format!(
                    "{ALGORITHM} Credential={}, SignedHeaders={}, Signature={signature}",
                    self.credential.with_key_id(real.key_id()),
                    self.signed_headers.join(";"),
                );
                let body = match payload {
                    PayloadHash::StreamingSigned => Some(ChunkResigner::new(
                        key,
                        self.date.text(),
                        scope.text(),
                        signature,
                    )),
                    _ => None,
                };
                Ok(Resigned::Header {
                    authorization,
                    replace_session_token: token.is_some(),
                    body,
                })
            }
            Location::Query { path, params, .. } => {
                if payload == PayloadHash::StreamingSigned {
                    return Err(SigV4Error::UnsupportedPayload(
                        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD in a presigned URL".to_owned(),
                    ));
                }
                self.resign_query(&key, real, path, params, token, &payload)
            }
        }
    }

    fn parse_presigned(
        request: Request<'a>,
        path: &'a str,
        params: Vec<QueryParam<'a>>,
        declared_payload: Option<PayloadHash>,
    ) -> Result<Self, SigV4Error> {
        let one = |name: &'static str| -> Result<Option<&[u8]>, SigV4Error> {
            let mut found = params.iter().filter(|p| p.name == name.as_bytes());
            let first = found.next();
            if found.next().is_some() {
                return Err(SigV4Error::MalformedQuery {
                    name,
                    why: "repeated",
                });
            }
            Ok(first.map(|p| p.value.as_slice()))
        };
        let required = |name: &'static str| -> Result<&str, SigV4Error> {
            let value = one(name)?.ok_or(SigV4Error::MalformedQuery {
                name,
                why: "missing",
            })?;
            std::str::from_utf8(value).map_err(|_| SigV4Error::MalformedQuery {
                name,
                why: "not UTF-8",
            })
        };
        let algorithm = required("X-Amz-Algorithm")?;
        if algorithm != ALGORITHM {
            return Err(SigV4Error::UnsupportedAlgorithm(
                algorithm.chars().take(64).collect(),
            ));
        }
        let credential = Credential::parse(required("X-Amz-Credential")?)?;
        let date = match one("X-Amz-Date")? {
            Some(date) => AmzDate::parse(date)?,
            None => return Err(SigV4Error::MissingDate),
        };
        let signed_headers = parse_signed_headers(required("X-Amz-SignedHeaders")?)?;
        let expires = required("X-Amz-Expires")?;
        let expires = expires
            .parse::<u64>()
            .ok()
            .filter(|e| (1..=MAX_PRESIGNED_EXPIRES).contains(e) && !expires.starts_with('+'))
            .ok_or(SigV4Error::MalformedQuery {
                name: "X-Amz-Expires",
                why: "not a number of seconds from 1 to 604800",
            })?;
        if !is_signature(required("X-Amz-Signature")?) {
            return Err(SigV4Error::MalformedQuery {
                name: "X-Amz-Signature",
                why: "not 64 lowercase hex digits",
            });
        }
        let has_token_param = one("X-Amz-Security-Token")?.is_some();
        if has_token_param && signed_headers.iter().any(|h| h == SESSION_TOKEN_HEADER) {
            return Err(SigV4Error::DuplicateSessionToken);
        }
        let has_token_header = single_header(request.headers, SESSION_TOKEN_HEADER)
            .map_err(|()| SigV4Error::DuplicateSessionToken)?
            .is_some();
        if has_token_header {
            return Err(SigV4Error::MalformedQuery {
                name: "X-Amz-Security-Token",
                why: "a presigned URL carries its session token in the query, not a header",
            });
        }
        Self::checked(Self {
            request,
            credential,
            signed_headers,
            date,
            declared_payload,
            has_session_token: has_token_param,
            location: Location::Query {
                path,
                params,
                expires,
            },
        })
    }

    fn checked(self) -> Result<Self, SigV4Error> {
        if self.date.day() != self.credential.scope.date() {
            return Err(SigV4Error::DateMismatch);
        }
        for name in &self.signed_headers {
            if header_values(self.request.headers, name).next().is_none() {
                return Err(SigV4Error::MissingSignedHeader(name.clone()));
            }
        }
        Ok(self)
    }

    fn resign_query(
        &self,
        key: &SigningKey,
        real: &AwsCredentials,
        path: &str,
        params: &[QueryParam<'_>],
        token: Option<&[u8]>,
        payload: &PayloadHash,
    ) -> Result<Resigned, SigV4Error> {
        let credential = self.credential.with_key_id(real.key_id());
        let value_of = |p: &'_ QueryParam<'_>| -> Option<Zeroizing<Vec<u8>>> {
            match p.name.as_slice() {
                b"X-Amz-Credential" => Some(Zeroizing::new(credential.as_bytes().to_vec())),
                b"X-Amz-Security-Token" => token.map(|t| Zeroizing::new(t.to_vec())),
                _ => None,
            }
        };
        let replaced: Vec<Option<Zeroizing<Vec<u8>>>> = params.iter().map(value_of).collect();
        let canonical_query = canonical::query(
            params
                .iter()
                .zip(&replaced)
                .filter(|(p, _)| p.name != b"X-Amz-Signature")
                .map(|(p, r)| {
                    (
                        p.name.as_slice(),
                        r.as_deref().unwrap_or(&p.value).as_slice(),
                    )
                }),
        );
        let signature = self.sign(key, path, &canonical_query, None, payload)?;
        let mut target = Zeroizing::new(String::with_capacity(self.request.target.len() + 64));
        target.push_str(path);
        for (i, (param, replacement)) in params.iter().zip(&replaced).enumerate() {
            target.push(if i == 0 { '?' } else { '&' });
            let value = match (param.name.as_slice(), replacement) {
                (b"X-Amz-Signature", _) => signature.as_bytes(),
                (_, Some(value)) => value.as_slice(),
                (_, None) => {
                    target.push_str(param.raw);
                    continue;
                }
            };
            canonical::encode_into(&param.name, false, &mut target);
            target.push('=');
            canonical::encode_into(value, false, &mut target);
        }
        Ok(Resigned::Query {
            target: SecretText(target),
        })
    }

    fn sign(
        &self,
        key: &SigningKey,
        path: &str,
        canonical_query: &str,
        token: Option<&[u8]>,
        payload: &PayloadHash,
    ) -> Result<String, SigV4Error> {
        let headers = canonical::headers(
            self.request.headers,
            &self.signed_headers,
            token.map(|t| (SESSION_TOKEN_HEADER, t)),
        )?;
        let mut request = Zeroizing::new(Vec::with_capacity(512 + headers.len()));
        for part in [
            self.request.method.as_bytes(),
            b"\n",
            canonical::uri(path, self.credential.scope.is_s3()).as_bytes(),
            b"\n",
            canonical_query.as_bytes(),
            b"\n",
            &headers,
            b"\n",
            self.signed_headers.join(";").as_bytes(),
            b"\n",
            payload.as_str().as_bytes(),
        ] {
            request.extend_from_slice(part);
        }
        let to_sign = string_to_sign(self.date.text(), &self.credential.scope, &request);
        Ok(key.sign(to_sign.as_bytes()))
    }
}

fn header_values<'h>(
    headers: &'h [(&'h str, &'h [u8])],
    name: &'h str,
) -> impl Iterator<Item = &'h [u8]> + 'h {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// The one value of header `name`, `None` if absent, `Err` if repeated.
fn single_header<'h>(
    headers: &'h [(&'h str, &'h [u8])],
    name: &'h str,
) -> Result<Option<&'h [u8]>, ()> {
    let mut values = header_values(headers, name);
    let first = values.next();
    if values.next().is_some() {
        return Err(());
    }
    Ok(first.map(trim))
}

fn trim(value: &[u8]) -> &[u8] {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |i| i + 1);
    &value[start..end]
}
