//! Reading an aws secret's key for `veil secrets create --kind aws` and `rotate`: JSON from
//! standard input or a file (`{"access_key_id", "secret_access_key", "session_token"?}`, or
//! the `AccessKeyId`, `SecretAccessKey`, `SessionToken` that `aws sts` prints, also inside
//! its `Credentials` object), or the three `AWS_*` variables (`--from-aws-env`).

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::{
    api::client::{AwsKeyBody, SecretField},
    cli::ValueSource,
    cli_secrets::{read_raw, CliError},
    secrets::SecretValue,
};

/// An AWS key read by the CLI, each part zeroized on drop.
pub struct AwsKey {
    access_key_id: SecretValue,
    secret_access_key: SecretValue,
    session_token: Option<SecretValue>,
}

/// The JSON shapes accepted, with `aws sts`'s names as aliases.
#[derive(Deserialize)]
struct Parts {
    #[serde(alias = "AccessKeyId")]
    access_key_id: Option<String>,
    #[serde(alias = "SecretAccessKey")]
    secret_access_key: Option<String>,
    #[serde(alias = "SessionToken")]
    session_token: Option<String>,
    #[serde(rename = "Credentials")]
    credentials: Option<Box<Parts>>,
}

impl AwsKey {
    /// Reads the key from where `source` says.
    pub fn read(source: &ValueSource) -> Result<Self, CliError> {
        if source.from_aws_env {
            let var = |name: &str| std::env::var(name).ok().map(Zeroizing::new);
            let from = "the AWS_* environment variables".to_owned();
            return Self::from_parts(
                &from,
                var("AWS_ACCESS_KEY_ID"),
                var("AWS_SECRET_ACCESS_KEY"),
                var("AWS_SESSION_TOKEN"),
            );
        }
        let (from, bytes) = read_raw(source)?;
        let bytes = Zeroizing::new(bytes);
        let bad = |why: &str| CliError::AwsKey {
            from: from.clone(),
            why: why.to_owned(),
        };
        let mut parts: Parts = serde_json::from_slice(&bytes).map_err(|_| {
            bad("not a JSON object with access_key_id, secret_access_key and session_token")
        })?;
        if let Some(inner) = parts.credentials.take() {
            parts = *inner;
        }
        Self::from_parts(
            &from,
            parts.access_key_id.map(Zeroizing::new),
            parts.secret_access_key.map(Zeroizing::new),
            parts.session_token.map(Zeroizing::new),
        )
    }

    fn from_parts(
        from: &str,
        key_id: Option<Zeroizing<String>>,
        secret: Option<Zeroizing<String>>,
        token: Option<Zeroizing<String>>,
    ) -> Result<Self, CliError> {
        let part = |name: &str, value: Option<Zeroizing<String>>| {
            let value = value.ok_or_else(|| CliError::AwsKey {
                from: from.to_owned(),
                why: format!("no {name}"),
            })?;
            SecretValue::parse(value.to_string()).map_err(|cause| CliError::AwsKey {
                from: from.to_owned(),
                why: format!("{name}: {cause}"),
            })
        };
        Ok(Self {
            access_key_id: part("access key id", key_id)?,
            secret_access_key: part("secret access key", secret)?,
            session_token: token
                .filter(|t| !t.is_empty())
                .map(|t| part("session token", Some(t)))
                .transpose()?,
        })
    }

    /// The key as the API takes it.
    pub fn field(&self) -> SecretField<'_> {
        SecretField::Aws(AwsKeyBody {
            access_key_id: self.access_key_id.expose(),
            secret_access_key: self.secret_access_key.expose(),
            session_token: self.session_token.as_ref().map(SecretValue::expose),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(path: &std::path::Path) -> ValueSource {
        ValueSource {
            from_file: Some(path.to_owned()),
            from_env: None,
            from_aws_env: false,
        }
    }

    #[test]
    fn reads_our_shape_and_sts_output() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(
            &path,
            r#"{"access_key_id":"AKIDEXAMPLE","secret_access_key":"s/k+1"}"#,
        )
        .unwrap();
        let key = AwsKey::read(&source(&path)).unwrap();
        let json = serde_json::to_value(key.field()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"access_key_id": "AKIDEXAMPLE", "secret_access_key": "s/k+1"})
        );
        std::fs::write(
            &path,
            r#"{"Credentials": {"AccessKeyId": "ASIAX", "SecretAccessKey": "sk",
                "SessionToken": "tok", "Expiration": "2026-01-01T00:00:00Z"}}"#,
        )
        .unwrap();
        let json = serde_json::to_value(AwsKey::read(&source(&path)).unwrap().field()).unwrap();
        assert_eq!(json["session_token"], "tok");
        assert_eq!(json["access_key_id"], "ASIAX");
    }

    #[test]
    fn refusals_name_the_part_never_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, r#"{"access_key_id":"AKID"}"#).unwrap();
        let err = AwsKey::read(&source(&path)).err().unwrap().to_string();
        assert!(err.contains("no secret access key"), "{err}");
        std::fs::write(&path, "hunter2-not-json").unwrap();
        let err = AwsKey::read(&source(&path)).err().unwrap().to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
