//! Secrets of kind `aws`: an AWS access key (key id, secret access key, optional session
//! token) that veil re-signs requests with instead of injecting it (see [`crate::sigv4`]).
//! Pure.
//!
//! The API takes the key as a JSON object
//! `{"access_key_id": ..., "secret_access_key": ..., "session_token": ...}`; it is stored as
//! one [`SecretValue`] holding that object in compact JSON ([`AwsKeys::parse`] reads it back).
//! A sandbox gets three placeholders ([`env_pairs`]): an access key id made of the secret's id
//! ([`key_id_placeholder`], `AKIA` and 16 hex digits, which SDKs accept as a key id), the
//! secret's `proxy_value` as the secret access key, and, with a session token,
//! `<proxy_value>.session-token`. [`AwsTable`] finds a live aws secret by its key id
//! placeholder for the proxy.

use std::{collections::BTreeMap, sync::Arc};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::{FieldError, LiveSecret, SecretInfo, SecretSet, SecretValue};
use crate::{
    host_pattern::HostPattern,
    sigv4::{AwsCredentials, SigV4Error},
};

/// The `kind` field's value for an aws secret.
pub const KIND: &str = "aws";

/// The environment variable an aws secret's key id placeholder goes in unless told otherwise.
pub const DEFAULT_ENV_VAR: &str = "AWS_ACCESS_KEY_ID";

/// What an aws secret's `env_var` must end with; the other two variables replace it with
/// [`SECRET_SUFFIX`] and [`TOKEN_SUFFIX`].
pub const KEY_ID_SUFFIX: &str = "ACCESS_KEY_ID";

/// The secret access key's variable: `env_var` with this in place of [`KEY_ID_SUFFIX`].
pub const SECRET_SUFFIX: &str = "SECRET_ACCESS_KEY";

/// The session token's variable: `env_var` with this in place of [`KEY_ID_SUFFIX`].
pub const TOKEN_SUFFIX: &str = "SESSION_TOKEN";

/// Longest real access key id accepted.
const MAX_KEY_ID: usize = 128;

/// What the API shows about an aws secret beyond the common fields: its placeholders.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsInfo {
    /// The access key id the sandbox signs with (`AKIA` and 16 hex digits).
    pub key_id_placeholder: String,
    /// The session token the sandbox sends, when the real key has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token_placeholder: Option<String>,
}

impl AwsInfo {
    /// The placeholders of the aws secret `id` whose placeholder is `proxy_value`.
    pub fn new(id: &str, proxy_value: &str, session_token: bool) -> Self {
        Self {
            key_id_placeholder: key_id_placeholder(id),
            session_token_placeholder: session_token
                .then(|| format!("{proxy_value}.session-token")),
        }
    }
}

/// The access key id placeholder of the secret `id`: `AKIA` and the id's hex digits in upper
/// case (unique as the ids are, and `[A-Z0-9]` as SDKs expect of a key id).
pub fn key_id_placeholder(id: &str) -> String {
    let digits: String = id
        .strip_prefix("sec_")
        .unwrap_or(id)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    format!("AKIA{digits}")
}

/// Every `(variable, placeholder)` pair a sandbox gets for `info`: one for an ordinary
/// secret, two or three for an aws secret.
pub fn env_pairs(info: &SecretInfo) -> Vec<(String, String)> {
    let Some(aws) = &info.aws else {
        return vec![(info.env_var.clone(), info.proxy_value.clone())];
    };
    let stem = info
        .env_var
        .strip_suffix(KEY_ID_SUFFIX)
        .unwrap_or(&info.env_var);
    let mut pairs = vec![
        (info.env_var.clone(), aws.key_id_placeholder.clone()),
        (format!("{stem}{SECRET_SUFFIX}"), info.proxy_value.clone()),
    ];
    if let Some(token) = &aws.session_token_placeholder {
        pairs.push((format!("{stem}{TOKEN_SUFFIX}"), token.clone()));
    }
    pairs
}

/// Checks that `env_var` can name an aws secret's key id variable: it ends with
/// [`KEY_ID_SUFFIX`].
pub fn check_env_var(env_var: &str) -> Result<(), FieldError> {
    if env_var.ends_with(KEY_ID_SUFFIX) {
        Ok(())
    } else {
        Err(FieldError {
            field: "env_var",
            message: format!(
                "an aws secret's env_var names the access key id's variable and must end with \
                 {KEY_ID_SUFFIX} (the others are derived from it), not {env_var:?}"
            ),
        })
    }
}

/// The API's `secret` object for an aws secret, checked, as the value to store. Errors name
/// the `secret` field and never quote a value.
pub fn value_from_json(value: Value) -> Result<SecretValue, FieldError> {
    let refuse = |message: String| FieldError {
        field: "secret",
        message,
    };
    let Value::Object(mut fields) = value else {
        return Err(refuse(
            "an aws secret is an object {access_key_id, secret_access_key, session_token?}"
                .to_owned(),
        ));
    };
    const KNOWN: [&str; 3] = ["access_key_id", "secret_access_key", "session_token"];
    if let Some(unknown) = fields.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(refuse(format!(
            "unknown field {unknown:?} (known: {})",
            KNOWN.join(", ")
        )));
    }
    let key_id = part(&mut fields, "access_key_id")?
        .ok_or_else(|| refuse("access_key_id is required".to_owned()))?;
    if key_id.expose().len() > MAX_KEY_ID
        || !key_id.expose().bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(refuse(format!(
            "access_key_id must be 1 to {MAX_KEY_ID} of A-Z a-z 0-9"
        )));
    }
    let secret = part(&mut fields, "secret_access_key")?
        .ok_or_else(|| refuse("secret_access_key is required".to_owned()))?;
    let token = part(&mut fields, "session_token")?;
    let stored = Stored {
        access_key_id: key_id.expose(),
        secret_access_key: secret.expose(),
        session_token: token.as_ref().map(SecretValue::expose),
    };
    let text = Zeroizing::new(
        serde_json::to_string(&stored).map_err(|e| refuse(format!("cannot be stored: {e}")))?,
    );
    SecretValue::parse(text.to_string()).map_err(|e| refuse(e.to_string()))
}

/// Whether a `secret` given to the API is an aws key (an object) rather than a plain value.
pub fn is_aws_value(value: &Value) -> bool {
    value.is_object()
}

/// One part of the key, checked like any secret value; `None` when absent or null.
fn part(fields: &mut Map<String, Value>, name: &str) -> Result<Option<SecretValue>, FieldError> {
    let refuse = |message: String| FieldError {
        field: "secret",
        message,
    };
    match fields.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => SecretValue::parse(s)
            .map(Some)
            .map_err(|e| refuse(format!("{name}: {e}"))),
        Some(_) => Err(refuse(format!("{name} must be a string"))),
    }
}

/// The stored form of an aws secret's value.
#[derive(Serialize)]
struct Stored<'a> {
    access_key_id: &'a str,
    secret_access_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_token: Option<&'a str>,
}

/// [`Stored`] read back (owned: JSON escapes are undone).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Read {
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    session_token: Option<String>,
}

/// An aws secret's value read back: each part on its own, for the scrubber, and the
/// credentials to sign with.
pub struct AwsKeys {
    /// The real access key id.
    pub key_id: Arc<SecretValue>,
    /// The real secret access key.
    pub secret_access_key: Arc<SecretValue>,
    /// The real session token, if any.
    pub session_token: Option<Arc<SecretValue>>,
    /// The same, to sign with.
    pub credentials: Arc<AwsCredentials>,
}

/// Why a stored aws value cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsValueError {
    /// Not the stored JSON object.
    #[error("the stored aws key is not a JSON object of its three parts")]
    Malformed,
    /// A part is not a valid secret value.
    #[error("a part of the stored aws key is invalid")]
    InvalidPart,
    /// The key id cannot sign.
    #[error("the stored access key id cannot sign: {0}")]
    KeyId(#[from] SigV4Error),
}

impl AwsKeys {
    /// Reads the value [`value_from_json`] made.
    pub fn parse(value: &SecretValue) -> Result<Self, AwsValueError> {
        let read: Read =
            serde_json::from_str(value.expose()).map_err(|_| AwsValueError::Malformed)?;
        let key_id = Zeroizing::new(read.access_key_id);
        let secret = Zeroizing::new(read.secret_access_key);
        let token = read.session_token.map(Zeroizing::new);
        let copy = |s: &Zeroizing<String>| {
            SecretValue::parse(s.to_string()).map_err(|_| AwsValueError::InvalidPart)
        };
        let credentials = AwsCredentials::new(
            &key_id,
            copy(&secret)?,
            token.as_ref().map(copy).transpose()?,
        )?;
        Ok(Self {
            key_id: Arc::new(copy(&key_id)?),
            secret_access_key: Arc::new(copy(&secret)?),
            session_token: token.as_ref().map(copy).transpose()?.map(Arc::new),
            credentials: Arc::new(credentials),
        })
    }
}

/// A live aws secret, as the proxy needs it.
pub struct AwsEntry {
    /// The secret's id.
    pub id: String,
    /// The secret's name.
    pub name: String,
    /// The access key id the sandbox signs with.
    pub key_id_placeholder: String,
    /// Where requests may be re-signed.
    pub hosts: Vec<HostPattern>,
    /// The real key.
    pub keys: AwsKeys,
    /// The session token placeholder the sandbox sends, if the key has a token.
    pub session_token_placeholder: Option<String>,
}

impl AwsEntry {
    /// Whether requests to `host` (verified) may be re-signed with this key.
    pub fn in_scope(&self, host: &str) -> bool {
        self.hosts.iter().any(|p| p.matches(host))
    }
}

/// The live aws secrets by key id placeholder.
#[derive(Default)]
pub struct AwsTable {
    by_key_id: BTreeMap<String, AwsEntry>,
}

impl AwsTable {
    /// The aws secrets of `set`; those whose stored value cannot be read are left out and
    /// returned with the reason (the caller logs them: their requests are refused).
    pub fn build(set: &SecretSet) -> (Self, Vec<(String, AwsValueError)>) {
        let mut table = Self::default();
        let mut failed = Vec::new();
        for secret in set.iter() {
            let Some(aws) = &secret.info.aws else {
                continue;
            };
            match entry(secret, aws) {
                Ok(entry) => {
                    table
                        .by_key_id
                        .insert(aws.key_id_placeholder.clone(), entry);
                }
                Err(e) => failed.push((secret.info.name.clone(), e)),
            }
        }
        (table, failed)
    }

    /// The aws secret whose key id placeholder is `key_id`.
    pub fn get(&self, key_id: &str) -> Option<&AwsEntry> {
        self.by_key_id.get(key_id)
    }

    /// Every aws secret.
    pub fn iter(&self) -> impl Iterator<Item = &AwsEntry> {
        self.by_key_id.values()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_key_id.is_empty()
    }
}

fn entry(secret: &LiveSecret, aws: &AwsInfo) -> Result<AwsEntry, AwsValueError> {
    Ok(AwsEntry {
        id: secret.info.id.clone(),
        name: secret.info.name.clone(),
        key_id_placeholder: aws.key_id_placeholder.clone(),
        hosts: secret.hosts.clone(),
        keys: AwsKeys::parse(&secret.value)?,
        session_token_placeholder: aws.session_token_placeholder.clone(),
    })
}

#[cfg(test)]
mod tests;
