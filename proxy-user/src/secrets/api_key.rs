//! The TCP control API's key (`veil serve --api-listen`): the contents of
//! `<state-dir>/api.key`, created on first start (0600), presented as a bearer token.

use std::path::Path;

use hyper::{header, Request};
use ring::hmac;

use super::{crypto, keyfile, SecretError};

/// The API key, kept as its HMAC under a random per-process key so checking a presented token
/// takes the same time however much of it is right.
pub struct ApiKey {
    mac_key: hmac::Key,
    tag: hmac::Tag,
}

impl ApiKey {
    /// Reads the key in `path`, creating it on first start.
    pub fn load(path: &Path) -> Result<Self, SecretError> {
        let key = keyfile::read_or_create(path, "API key")?;
        let token = zeroize::Zeroizing::new(hex::encode(key.as_slice()));
        let mac_key = hmac::Key::new(hmac::HMAC_SHA256, &crypto::random::<32>()?);
        let tag = hmac::sign(&mac_key, token.as_bytes());
        Ok(Self { mac_key, tag })
    }

    /// Whether `request` carries `Authorization: Bearer <the key>`.
    pub fn admits<B>(&self, request: &Request<B>) -> bool {
        request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
            .is_some_and(|token| hmac::verify(&self.mac_key, token, self.tag.as_ref()).is_ok())
    }
}
