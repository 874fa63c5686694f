//! [`AwsCredentials`]: the real key a placeholder key id stands for. Pure.

use std::fmt;

use zeroize::Zeroizing;

use super::SigV4Error;
use crate::secrets::SecretValue;

/// A real AWS access key: key id, secret access key and, for temporary credentials, a session
/// token. `Debug` shows the key id only.
pub struct AwsCredentials {
    key_id: String,
    secret_access_key: SecretValue,
    session_token: Option<SecretValue>,
}

impl AwsCredentials {
    /// Checks the key id (1 to 128 bytes of `[A-Za-z0-9]`) and takes the secrets over.
    pub fn new(
        key_id: &str,
        secret_access_key: SecretValue,
        session_token: Option<SecretValue>,
    ) -> Result<Self, SigV4Error> {
        if key_id.is_empty()
            || key_id.len() > 128
            || !key_id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(SigV4Error::MalformedKeyId);
        }
        Ok(Self {
            key_id: key_id.to_owned(),
            secret_access_key,
            session_token,
        })
    }

    /// The access key id (not a secret: AWS prints it in errors and logs).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The session token, if these are temporary credentials.
    pub fn session_token(&self) -> Option<&SecretValue> {
        self.session_token.as_ref()
    }

    pub(super) fn secret_access_key(&self) -> &str {
        self.secret_access_key.expose()
    }
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("key_id", &self.key_id)
            .field("secret_access_key", &"[redacted]")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// Text that may hold a secret (a request target with the real session token): zeroized on
/// drop, `Debug` redacted.
pub struct SecretText(pub(super) Zeroizing<String>);

impl SecretText {
    /// The text, to forward upstream: never log or format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}
