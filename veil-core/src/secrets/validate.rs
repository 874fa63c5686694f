//! Turning API request bodies into checked values: [`NewSecret`] for `POST /v1/secrets`,
//! [`SecretPatch`] for `PATCH /v1/secrets/{id}`. Every refusal names the field. Pure.

use std::fmt;

use serde_json::{Map, Value};

use super::{aws, value::SecretValue};
use crate::{
    host_pattern::HostPattern,
    inject::Slots,
    route::{Method, PathPattern},
};

/// Most methods or path patterns one secret may have.
pub const MAX_ROUTES: usize = 64;

/// Most host patterns one secret may have.
pub const MAX_HOSTS: usize = 256;

/// Longest environment variable name accepted.
const MAX_ENV_VAR: usize = 128;

/// Environment variables veil sets in a sandbox itself, so no secret may claim them.
const RESERVED_ENV_VARS: [&str; 9] = [
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SSL_CERT_FILE",
    "CURL_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
];

/// A refused request: what was wrong, and with which field (`body` for the body as a whole).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The JSON field, or `body`.
    pub field: &'static str,
    /// What is wrong with it, for a person to read. Never contains a secret value.
    pub message: String,
}

impl FieldError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// A secret's name: 1 to 64 of `A-Z a-z 0-9 _ . -`. The placeholder is derived from it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretName(String);

impl SecretName {
    /// Checks `name`.
    pub fn parse(name: &str) -> Result<Self, FieldError> {
        if name_like(name) {
            Ok(Self(name.to_owned()))
        } else {
            Err(FieldError::new(
                "name",
                format!("{name:?} is not a valid name: use 1 to 64 of A-Z a-z 0-9 _ . -"),
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The environment variable a secret's placeholder is put in: a POSIX name
/// (`[A-Za-z_][A-Za-z0-9_]*`, at most 128 characters) that veil does not set itself.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EnvVar(String);

impl EnvVar {
    /// Checks `name`.
    pub fn parse(name: &str) -> Result<Self, FieldError> {
        let posix = name.len() <= MAX_ENV_VAR && is_posix_name(name);
        if !posix {
            return Err(FieldError::new(
                "env_var",
                format!(
                    "{name:?} is not a valid environment variable name: use a letter or _ \
                     followed by letters, digits and _ (at most {MAX_ENV_VAR})"
                ),
            ));
        }
        if RESERVED_ENV_VARS.contains(&name) || name.starts_with("VEIL_") {
            return Err(FieldError::new(
                "env_var",
                format!("{name} is set by veil itself in every sandbox; choose another name"),
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `name` is a POSIX environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_posix_name(name: &str) -> bool {
    name.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The prefix of every placeholder (`IRONSH_PROXY_` unless configured): 1 to 64 of
/// `A-Z a-z 0-9 _ . -`, so placeholders need no quoting anywhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prefix(String);

impl Prefix {
    /// Checks `prefix`.
    pub fn parse(prefix: &str) -> Result<Self, FieldError> {
        if name_like(prefix) {
            Ok(Self(prefix.to_owned()))
        } else {
            Err(FieldError::new(
                "placeholder_prefix",
                format!("{prefix:?} is not a valid prefix: use 1 to 64 of A-Z a-z 0-9 _ . -"),
            ))
        }
    }

    /// The placeholder for the secret called `name`.
    pub fn placeholder(&self, name: &SecretName) -> String {
        format!("{}{}", self.0, name.0)
    }
}

impl Default for Prefix {
    fn default() -> Self {
        Self("IRONSH_PROXY_".to_owned())
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Prefix {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A checked `POST /v1/secrets` body.
#[derive(Debug)]
pub struct NewSecret {
    /// The name (unique).
    pub name: SecretName,
    /// The value.
    pub value: SecretValue,
    /// The variable sandboxes get the placeholder in (unique).
    pub env_var: EnvVar,
    /// Where the value may be sent; `["*"]` when not given.
    pub hosts: Vec<HostPattern>,
    /// Where in a request the placeholder is replaced (`inject_query` adds `query`).
    pub slots: Slots,
    /// Methods the value may be sent with; empty: any.
    pub methods: Vec<Method>,
    /// Path patterns the value may be sent to; empty: any.
    pub paths: Vec<PathPattern>,
    /// Whether this is an aws secret (`kind: "aws"`): `value` holds the key
    /// ([`aws::value_from_json`]) and requests are re-signed rather than injected.
    pub aws: bool,
}

impl NewSecret {
    /// Parses `{name, secret, env_var, hosts?, inject_query?, slots?, methods?, paths?,
    /// kind?}`; any other field is refused. With `kind: "aws"`, `secret` is an object (see
    /// [`aws`]), `env_var` defaults to `AWS_ACCESS_KEY_ID`, and `inject_query`, `slots`,
    /// `methods` and `paths` are refused.
    pub fn from_json(body: &[u8]) -> Result<Self, FieldError> {
        let mut fields = object(
            body,
            &[
                "name",
                "secret",
                "env_var",
                "hosts",
                "inject_query",
                "slots",
                "methods",
                "paths",
                "kind",
            ],
        )?;
        let is_aws = fields
            .remove("kind")
            .map(kind)
            .transpose()?
            .unwrap_or(false);
        let name = SecretName::parse(&required_string(&mut fields, "name")?)?;
        let (value, env_var) = if is_aws {
            aws_parts(&mut fields)?
        } else {
            (
                secret(required_string(&mut fields, "secret")?)?,
                EnvVar::parse(&required_string(&mut fields, "env_var")?)?,
            )
        };
        let hosts = match fields.remove("hosts") {
            Some(v) => hosts(v)?,
            None => vec![HostPattern::Any],
        };
        if is_aws {
            if let Some(field) = ["inject_query", "slots", "methods", "paths"]
                .into_iter()
                .find(|f| fields.contains_key(*f))
            {
                return Err(FieldError::new(
                    field,
                    "an aws secret is re-signed, never injected, so it has no slots or scopes \
                     beside hosts",
                ));
            }
        }
        let inject_query = fields
            .remove("inject_query")
            .map(|v| boolean(v, "inject_query"))
            .transpose()?;
        let slots = fields.remove("slots").map(slots).transpose()?;
        let slots = with_query(slots.unwrap_or_default(), inject_query)?;
        Ok(Self {
            name,
            value,
            env_var,
            hosts,
            slots,
            methods: fields
                .remove("methods")
                .map(methods)
                .transpose()?
                .unwrap_or_default(),
            paths: fields
                .remove("paths")
                .map(paths)
                .transpose()?
                .unwrap_or_default(),
            aws: is_aws,
        })
    }
}

/// `slots` with `inject_query` applied: `true` adds `query`, `false` takes it away; refused
/// when `slots` said otherwise.
fn with_query(mut slots: Slots, inject_query: Option<bool>) -> Result<Slots, FieldError> {
    match inject_query {
        Some(true) => slots.query = true,
        Some(false) if slots.query => {
            return Err(FieldError::new(
                "inject_query",
                "contradicts slots, which name \"query\"",
            ))
        }
        _ => {}
    }
    Ok(slots)
}

/// A checked `PATCH /v1/secrets/{id}` body: at least one of its fields is set.
#[derive(Debug, Default)]
pub struct SecretPatch {
    /// A new value (rotation).
    pub value: Option<SecretValue>,
    /// A new environment variable.
    pub env_var: Option<EnvVar>,
    /// New host patterns.
    pub hosts: Option<Vec<HostPattern>>,
    /// A new query-string injection setting.
    pub inject_query: Option<bool>,
    /// New slots.
    pub slots: Option<Slots>,
    /// New methods (empty: any).
    pub methods: Option<Vec<Method>>,
    /// New path patterns (empty: any).
    pub paths: Option<Vec<PathPattern>>,
    /// Whether `value` is an aws key (`secret` was an object, see [`aws`]).
    pub aws_value: bool,
}

impl SecretPatch {
    /// Parses `{secret?, env_var?, hosts?, inject_query?}`; `name` and any other field are
    /// refused, and so is an empty patch.
    pub fn from_json(body: &[u8]) -> Result<Self, FieldError> {
        let mut fields = object(
            body,
            &[
                "secret",
                "env_var",
                "hosts",
                "inject_query",
                "slots",
                "methods",
                "paths",
                "name",
            ],
        )?;
        if fields.contains_key("name") {
            return Err(FieldError::new(
                "name",
                "a secret's name cannot be changed (its proxy_value is derived from it); \
                 create a new secret and delete this one",
            ));
        }
        let aws_value = fields.get("secret").is_some_and(aws::is_aws_value);
        let patch = Self {
            value: fields
                .remove("secret")
                .map(|v| {
                    if aws_value {
                        aws::value_from_json(v)
                    } else {
                        string(v, "secret").and_then(secret)
                    }
                })
                .transpose()?,
            env_var: fields
                .remove("env_var")
                .map(|v| string(v, "env_var").and_then(|s| EnvVar::parse(&s)))
                .transpose()?,
            hosts: fields.remove("hosts").map(hosts).transpose()?,
            inject_query: fields
                .remove("inject_query")
                .map(|v| boolean(v, "inject_query"))
                .transpose()?,
            slots: fields.remove("slots").map(slots).transpose()?,
            methods: fields.remove("methods").map(methods).transpose()?,
            paths: fields.remove("paths").map(paths).transpose()?,
            aws_value,
        };
        let mut patch = patch;
        if let Some(given) = patch.slots.take() {
            patch.slots = Some(with_query(given, patch.inject_query)?);
        }
        if patch.value.is_none()
            && patch.env_var.is_none()
            && patch.hosts.is_none()
            && patch.inject_query.is_none()
            && patch.slots.is_none()
            && patch.methods.is_none()
            && patch.paths.is_none()
        {
            return Err(FieldError::new(
                "body",
                "nothing to change: give secret, env_var, hosts, inject_query, slots, methods \
                 or paths",
            ));
        }
        Ok(patch)
    }
}

/// Whether `kind` names an aws secret (`"aws"`) rather than an ordinary one (`"token"`).
fn kind(value: Value) -> Result<bool, FieldError> {
    match string(value, "kind")?.as_str() {
        aws::KIND => Ok(true),
        "token" => Ok(false),
        other => Err(FieldError::new(
            "kind",
            format!("unknown kind {other:?} (known: token, aws)"),
        )),
    }
}

/// An aws secret's value (the `secret` object) and key id variable (`env_var`, by default
/// `AWS_ACCESS_KEY_ID`).
fn aws_parts(fields: &mut Map<String, Value>) -> Result<(SecretValue, EnvVar), FieldError> {
    let value = aws::value_from_json(
        fields
            .remove("secret")
            .ok_or_else(|| FieldError::new("secret", "is required"))?,
    )?;
    let env_var = match fields.remove("env_var") {
        Some(v) => string(v, "env_var")?,
        None => aws::DEFAULT_ENV_VAR.to_owned(),
    };
    aws::check_env_var(&env_var)?;
    Ok((value, EnvVar::parse(&env_var)?))
}

/// Whether `s` is 1 to 64 of `A-Z a-z 0-9 _ . -`.
fn name_like(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The body as a JSON object whose keys are all in `known`.
fn object(body: &[u8], known: &[&str]) -> Result<Map<String, Value>, FieldError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| FieldError::new("body", format!("malformed JSON: {}", json_error(&e))))?;
    let Value::Object(fields) = value else {
        return Err(FieldError::new("body", "must be a JSON object"));
    };
    if let Some(unknown) = fields.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(FieldError::new(
            "body",
            format!("unknown field {unknown:?} (known: {})", known.join(", ")),
        ));
    }
    Ok(fields)
}

/// serde_json's message without the input it quotes (which could be part of a value).
fn json_error(e: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
    .to_lowercase()
}

fn required_string(
    fields: &mut Map<String, Value>,
    field: &'static str,
) -> Result<String, FieldError> {
    match fields.remove(field) {
        Some(v) => string(v, field),
        None => Err(FieldError::new(field, "is required")),
    }
}

fn string(value: Value, field: &'static str) -> Result<String, FieldError> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(FieldError::new(
            field,
            format!("must be a string, not {}", type_name(&other)),
        )),
    }
}

fn boolean(value: Value, field: &'static str) -> Result<bool, FieldError> {
    match value {
        Value::Bool(b) => Ok(b),
        other => Err(FieldError::new(
            field,
            format!("must be true or false, not {}", type_name(&other)),
        )),
    }
}

fn secret(value: String) -> Result<SecretValue, FieldError> {
    SecretValue::parse(value).map_err(|e| FieldError::new("secret", e.to_string()))
}

/// A non-empty list of host patterns, duplicates dropped, order kept.
fn hosts(value: Value) -> Result<Vec<HostPattern>, FieldError> {
    let Value::Array(items) = value else {
        return Err(FieldError::new(
            "hosts",
            format!(
                "must be an array of host patterns, not {}",
                type_name(&value)
            ),
        ));
    };
    if items.is_empty() {
        return Err(FieldError::new(
            "hosts",
            "must name at least one host pattern (use [\"*\"] for every host)",
        ));
    }
    if items.len() > MAX_HOSTS {
        return Err(FieldError::new(
            "hosts",
            format!(
                "at most {MAX_HOSTS} patterns are allowed, not {}",
                items.len()
            ),
        ));
    }
    let mut patterns = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let Value::String(raw) = item else {
            return Err(FieldError::new(
                "hosts",
                format!("item {i} must be a string, not {}", type_name(&item)),
            ));
        };
        let pattern =
            HostPattern::parse(&raw).map_err(|e| FieldError::new("hosts", e.to_string()))?;
        if !patterns.contains(&pattern) {
            patterns.push(pattern);
        }
    }
    Ok(patterns)
}

fn slots(value: Value) -> Result<Slots, FieldError> {
    Slots::from_json(&value).map_err(|e| FieldError::new("slots", e.to_string()))
}

/// A list of at most [`MAX_ROUTES`] strings for `field`, each parsed by `parse`, duplicates
/// dropped; an empty list means any.
fn route_list<T: PartialEq, E: fmt::Display>(
    value: Value,
    field: &'static str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<Vec<T>, FieldError> {
    let Value::Array(items) = value else {
        return Err(FieldError::new(
            field,
            format!("must be an array of strings, not {}", type_name(&value)),
        ));
    };
    if items.len() > MAX_ROUTES {
        return Err(FieldError::new(
            field,
            format!("at most {MAX_ROUTES} are allowed, not {}", items.len()),
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let Value::String(raw) = item else {
            return Err(FieldError::new(
                field,
                format!("item {i} must be a string, not {}", type_name(&item)),
            ));
        };
        let parsed = parse(&raw).map_err(|e| FieldError::new(field, e.to_string()))?;
        if !out.contains(&parsed) {
            out.push(parsed);
        }
    }
    Ok(out)
}

fn methods(value: Value) -> Result<Vec<Method>, FieldError> {
    route_list(value, "methods", Method::parse)
}

fn paths(value: Value) -> Result<Vec<PathPattern>, FieldError> {
    route_list(value, "paths", PathPattern::parse)
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(body: &str) -> Result<NewSecret, FieldError> {
        NewSecret::from_json(body.as_bytes())
    }

    fn patch(body: &str) -> Result<SecretPatch, FieldError> {
        SecretPatch::from_json(body.as_bytes())
    }

    #[test]
    fn names() {
        for ok in ["a", "github-main", "A_b.c-9", &"x".repeat(64)] {
            assert_eq!(SecretName::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "a b", "a/b", "ü", "a\n", &"x".repeat(65), "a$b"] {
            assert_eq!(SecretName::parse(bad).unwrap_err().field, "name", "{bad:?}");
        }
    }

    #[test]
    fn env_vars() {
        for ok in ["GITHUB_TOKEN", "_x", "a1", &"A".repeat(128)] {
            assert_eq!(EnvVar::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "1A",
            "A-B",
            "A B",
            "A=B",
            "Ä",
            &"A".repeat(129),
            "PATH",
            "HOME",
            "SSL_CERT_FILE",
            "VEIL_SECRETS_PROFILE",
        ] {
            assert_eq!(EnvVar::parse(bad).unwrap_err().field, "env_var", "{bad:?}");
        }
    }

    #[test]
    fn prefixes_and_placeholders() {
        let name = SecretName::parse("github-main").unwrap();
        assert_eq!(
            Prefix::default().placeholder(&name),
            "IRONSH_PROXY_github-main"
        );
        assert_eq!(
            Prefix::parse("VEIL_").unwrap().placeholder(&name),
            "VEIL_github-main"
        );
        for bad in ["", "a b", "x'"] {
            assert!(Prefix::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn create_parses_and_defaults() {
        let s = create(r#"{"name":"gh","secret":"tok","env_var":"GH"}"#).unwrap();
        assert_eq!(s.name.as_str(), "gh");
        assert_eq!(s.value.expose(), "tok");
        assert_eq!(s.env_var.as_str(), "GH");
        assert_eq!(s.hosts, [HostPattern::Any]);
        assert_eq!(s.slots, Slots::default());
        let s = create(
            r#"{"name":"gh","secret":"tok","env_var":"GH",
                "hosts":["API.github.com","*.github.com","api.github.com"],"inject_query":true}"#,
        )
        .unwrap();
        assert_eq!(
            s.hosts.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["api.github.com", "*.github.com"]
        );
        assert!(s.slots.query);
    }

    #[test]
    fn slots_methods_and_paths() {
        let s = create(
            r#"{"name":"tg","secret":"1:a","env_var":"TG","slots":["path",{"form":["t"]},
                {"json":["/auth/key"]},{"headers":["Authorization"]}],
                "methods":["post","GET"],"paths":["/bot*/send*","/v1/"]}"#,
        )
        .unwrap();
        assert!(s.slots.path && !s.slots.query);
        assert!(s.slots.allows_header("authorization") && !s.slots.allows_header("x-a"));
        assert_eq!(
            s.slots.to_json(),
            serde_json::json!([{"headers":["authorization"]},"path",{"form":["t"]},{"json":["/auth/key"]}])
        );
        assert_eq!(
            s.methods.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
            ["POST", "GET"]
        );
        assert_eq!(
            s.paths.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            ["/bot*/send*", "/v1"]
        );
        let s = create(
            r#"{"name":"a","secret":"v","env_var":"A","slots":["json"],"inject_query":true}"#,
        )
        .unwrap();
        assert!(s.slots.query && s.slots.json.is_some() && s.slots.headers.is_none());
        for (body, field) in [
            (r#"{"slots":[]}"#, "slots"),
            (r#"{"slots":"headers"}"#, "slots"),
            (r#"{"slots":["body"]}"#, "slots"),
            (r#"{"slots":["json","json"]}"#, "slots"),
            (r#"{"slots":[{"query":["a"]}]}"#, "slots"),
            (r#"{"slots":[{"json":["auth"]}]}"#, "slots"),
            (r#"{"slots":[{"json":["/a~2"]}]}"#, "slots"),
            (r#"{"slots":[{"form":[]}]}"#, "slots"),
            (r#"{"slots":[{"headers":["a b"]}]}"#, "slots"),
            (
                r#"{"slots":["query"],"inject_query":false}"#,
                "inject_query",
            ),
            (r#"{"methods":"GET"}"#, "methods"),
            (r#"{"methods":["G ET"]}"#, "methods"),
            (r#"{"paths":["repos"]}"#, "paths"),
            (r#"{"paths":["/a/../b"]}"#, "paths"),
            (r#"{"paths":[1]}"#, "paths"),
        ] {
            let err = patch(body).unwrap_err();
            assert_eq!(err.field, field, "{body}: {err}");
        }
        for field in ["slots", "methods", "paths", "inject_query"] {
            let value = match field {
                "slots" => r#"["json"]"#,
                "inject_query" => "true",
                _ => r#"["GET"]"#,
            };
            let body = format!(
                r#"{{"name":"aws","kind":"aws","secret":{{"access_key_id":"AKIDEXAMPLE",
                    "secret_access_key":"s"}},"{field}":{value}}}"#
            );
            assert_eq!(create(&body).unwrap_err().field, field, "{body}");
        }
        let p = patch(r#"{"methods":[],"paths":["/"]}"#).unwrap();
        assert_eq!(p.methods.unwrap(), []);
        assert_eq!(p.paths.unwrap().len(), 1);
    }

    #[test]
    fn create_refusals_name_the_field() {
        let cases = [
            ("", "body"),
            ("{", "body"),
            ("[]", "body"),
            ("null", "body"),
            (
                r#"{"name":"gh","secret":"tok","env_var":"GH","color":"red"}"#,
                "body",
            ),
            (r#"{"secret":"tok","env_var":"GH"}"#, "name"),
            (r#"{"name":"a b","secret":"tok","env_var":"GH"}"#, "name"),
            (r#"{"name":7,"secret":"tok","env_var":"GH"}"#, "name"),
            (r#"{"name":"gh","env_var":"GH"}"#, "secret"),
            (r#"{"name":"gh","secret":"","env_var":"GH"}"#, "secret"),
            (
                r#"{"name":"gh","secret":"a\r\nb","env_var":"GH"}"#,
                "secret",
            ),
            (
                r#"{"name":"gh","secret":"a\u0000","env_var":"GH"}"#,
                "secret",
            ),
            (r#"{"name":"gh","secret":"a\tb","env_var":"GH"}"#, "secret"),
            (r#"{"name":"gh","secret":["tok"],"env_var":"GH"}"#, "secret"),
            (r#"{"name":"gh","secret":"tok"}"#, "env_var"),
            (r#"{"name":"gh","secret":"tok","env_var":"1GH"}"#, "env_var"),
            (
                r#"{"name":"gh","secret":"tok","env_var":"GH","hosts":[]}"#,
                "hosts",
            ),
            (
                r#"{"name":"gh","secret":"tok","env_var":"GH","hosts":"*"}"#,
                "hosts",
            ),
            (
                r#"{"name":"gh","secret":"tok","env_var":"GH","hosts":[1]}"#,
                "hosts",
            ),
            (
                r#"{"name":"gh","secret":"tok","env_var":"GH","hosts":["a.*.com"]}"#,
                "hosts",
            ),
            (
                r#"{"name":"gh","secret":"tok","env_var":"GH","inject_query":"yes"}"#,
                "inject_query",
            ),
        ];
        for (body, field) in cases {
            let err = create(body).unwrap_err();
            assert_eq!(err.field, field, "{body}: {err}");
        }
        let long = format!(
            r#"{{"name":"gh","secret":"{}","env_var":"GH"}}"#,
            "a".repeat(8193)
        );
        assert_eq!(create(&long).unwrap_err().field, "secret");
        let many = format!(
            r#"{{"name":"gh","secret":"t","env_var":"GH","hosts":[{}]}}"#,
            vec!["\"*\""; MAX_HOSTS + 1].join(",")
        );
        assert_eq!(create(&many).unwrap_err().field, "hosts");
    }

    #[test]
    fn refusals_never_quote_the_value() {
        for body in [
            r#"{"name":"gh","secret":"hunter2\n","env_var":"GH"}"#,
            r#"{"name":"gh","secret":"hunter2","env_var":"GH""#,
            r#"{"name":"gh","secret":"hunter2" "env_var":"GH"}"#,
            r#"{"name":"gh","secret":"hunter2","env_var":"GH","x":1}"#,
        ] {
            let err = create(body).unwrap_err().to_string();
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn patch_parses_what_is_given() {
        let p = patch(r#"{"secret":"new"}"#).unwrap();
        assert_eq!(p.value.unwrap().expose(), "new");
        assert!(p.env_var.is_none() && p.hosts.is_none() && p.inject_query.is_none());
        let p = patch(r#"{"env_var":"X","hosts":["*.a.com"],"inject_query":false}"#).unwrap();
        assert_eq!(p.env_var.unwrap().as_str(), "X");
        assert_eq!(p.hosts.unwrap()[0].to_string(), "*.a.com");
        assert_eq!(p.inject_query, Some(false));
    }

    #[test]
    fn patch_refusals_name_the_field() {
        let cases = [
            ("{}", "body"),
            ("{", "body"),
            (r#"{"name":"other"}"#, "name"),
            (r#"{"secret":"x","name":"other"}"#, "name"),
            (r#"{"proxy_value":"x"}"#, "body"),
            (r#"{"id":"sec_1"}"#, "body"),
            (r#"{"secret":""}"#, "secret"),
            (r#"{"secret":null}"#, "secret"),
            (r#"{"env_var":"A-B"}"#, "env_var"),
            (r#"{"hosts":[]}"#, "hosts"),
            (r#"{"inject_query":1}"#, "inject_query"),
            (r#"{"slots":["nope"]}"#, "slots"),
        ];
        for (body, field) in cases {
            let err = patch(body).unwrap_err();
            assert_eq!(err.field, field, "{body}: {err}");
        }
        assert!(patch(r#"{"name":"x"}"#)
            .unwrap_err()
            .message
            .contains("cannot be changed"));
    }
}
