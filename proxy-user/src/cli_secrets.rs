//! `veil secrets ...` and `veil env`: managing secrets through the daemon's control socket.

use std::{
    fs,
    io::{self, IsTerminal, Read},
    os::unix::ffi::OsStringExt,
};

use nix::sys::termios::{self, LocalFlags, SetArg};

use crate::{
    api::client::{ApiClient, ClientError, NewSecretBody, SecretField, SecretPatchBody},
    cli::{EnvArgs, EnvFormat, RotateArgs, SecretKind, SecretsCommand, ValueSource},
    cli_aws::AwsKey,
    config::Paths,
    secrets::{self, SecretInfo, SecretValue, ValueError},
};

/// Errors from the secrets commands.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// No daemon answers.
    #[error(
        "{what} needs the veil daemon, which keeps the secrets, and none answers at {socket}: \
         start it with `veil serve`"
    )]
    NoDaemon {
        /// The command.
        what: &'static str,
        /// The socket tried.
        socket: String,
    },
    /// The daemon refused or failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// No secret has that id or name.
    #[error("no secret has the id or name {0:?} (see `veil secrets list`)")]
    Unknown(String),
    /// `--ca-path` cannot go in an env file.
    #[error("--ca-path must be one line (an env file holds one variable per line)")]
    CaPath,
    /// No sandbox has that name.
    #[error("no sandbox named {0:?}")]
    NoSandbox(String),
    /// Reading the value failed.
    #[error("reading the secret value from {from}: {cause}")]
    Read {
        /// Where from.
        from: String,
        /// The error.
        cause: io::Error,
    },
    /// The value is unusable.
    #[error("the secret value from {from} is unusable: {cause}")]
    Value {
        /// Where it came from.
        from: String,
        /// What is wrong (never the value itself).
        cause: ValueError,
    },
    /// An aws key that cannot be read.
    #[error("the aws key from {from} is unusable: {why}")]
    AwsKey {
        /// Where it came from.
        from: String,
        /// What is wrong (never a value).
        why: String,
    },
    /// `--env-var` missing for an ordinary secret.
    #[error("--env-var is required (but for --kind aws)")]
    NoEnvVar,
    /// A rotate that changes nothing.
    #[error(
        "nothing to change: give a new value (standard input, --from-file or --from-env), or \
         --keep-value with --host, --env-var, --inject-query, --no-inject-query, --slot, \
         --method, --path, --any-method or --any-path"
    )]
    NothingToChange,
}

/// Runs `veil secrets ...`.
pub async fn secrets(paths: &Paths, command: SecretsCommand) -> Result<i32, CliError> {
    let client = connect(paths, "veil secrets").await?;
    match command {
        SecretsCommand::Create(args) => {
            let aws = args.kind == SecretKind::Aws;
            let (value, key) = if aws {
                (None, Some(AwsKey::read(&args.value)?))
            } else {
                (Some(read_value(&args.value)?), None)
            };
            let env_var = match (&args.env_var, aws) {
                (Some(var), _) => var.as_str(),
                (None, true) => veil_core::secrets::aws::DEFAULT_ENV_VAR,
                (None, false) => return Err(CliError::NoEnvVar),
            };
            let body = NewSecretBody {
                name: &args.name,
                secret: secret_field(value.as_ref(), key.as_ref()),
                env_var,
                hosts: (!args.hosts.is_empty()).then_some(args.hosts.as_slice()),
                inject_query: args.inject_query,
                slots: slots(&args.slots),
                methods: (!args.methods.is_empty()).then_some(args.methods.as_slice()),
                paths: (!args.paths.is_empty()).then_some(args.paths.as_slice()),
                kind: aws.then_some(veil_core::secrets::aws::KIND),
            };
            let secret = client.create_secret(&body).await?;
            print_one(&secret, args.json);
        }
        SecretsCommand::List(args) => {
            let all = client.secrets().await?;
            if args.json {
                println!("{}", to_json(&all));
            } else {
                print!("{}", table(&all));
            }
        }
        SecretsCommand::Show(args) => {
            let secret = resolve(&client, &args.secret).await?;
            print_one(&secret, args.json);
        }
        SecretsCommand::Rotate(args) => {
            let secret = resolve(&client, &args.secret).await?;
            let updated = rotate(&client, &secret, &args).await?;
            print_one(&updated, args.json);
        }
        SecretsCommand::Delete(args) => {
            let secret = resolve(&client, &args.secret).await?;
            let deleted = client.delete_secret(&secret.id).await?;
            println!(
                "deleted secret {} ({}): {} is no longer replaced, and sandboxes started from \
                 now on do not get {}",
                deleted.name, deleted.id, deleted.proxy_value, deleted.env_var
            );
        }
    }
    Ok(0)
}

/// Runs `veil env`.
pub async fn env(paths: &Paths, args: EnvArgs) -> Result<i32, CliError> {
    let client = connect(paths, "veil env").await?;
    if let Some(name) = &args.sandbox {
        if !client.sandboxes().await?.iter().any(|s| s.name == *name) {
            return Err(CliError::NoSandbox(name.clone()));
        }
    }
    let list = client.secrets().await?;
    match args.format {
        EnvFormat::Shell => print!("{}", secrets::exports(&list)),
        EnvFormat::EnvFile => {
            if args.ca_path.contains(['\n', '\r', '\0']) {
                return Err(CliError::CaPath);
            }
            print!("{}", env_file(&list, &args.ca_path));
        }
    }
    Ok(0)
}

/// `VAR=value` lines for Docker's and Podman's `--env-file`: every secret's placeholder,
/// the CA variables naming `ca_path` (the bundle where the container mounts it), and
/// `VEIL_SECRETS_PROFILE` naming the profile beside it. Env files take values literally, so
/// nothing is quoted; placeholders hold no spaces or quotes.
fn env_file<'a>(
    secrets: impl IntoIterator<Item = &'a secrets::SecretInfo>,
    ca_path: &str,
) -> String {
    let mut pairs: Vec<(String, String)> = secrets
        .into_iter()
        .flat_map(veil_core::secrets::aws::env_pairs)
        .collect();
    pairs.sort_unstable();
    let mut out: String = pairs
        .into_iter()
        .map(|(var, value)| format!("{var}={value}\n"))
        .collect();
    for var in crate::run::env::CA_VARIABLES {
        out.push_str(&format!("{var}={ca_path}\n"));
    }
    out.push_str(&format!(
        "VEIL_SECRETS_PROFILE={}/secrets.sh\n",
        crate::config::CONTAINER_PUBLIC_DIR
    ));
    out
}

async fn connect(paths: &Paths, what: &'static str) -> Result<ApiClient, CliError> {
    let socket = paths.socket();
    match ApiClient::connect(&socket).await {
        Ok(client) => Ok(client),
        Err(ClientError::Connect { .. }) => Err(CliError::NoDaemon {
            what,
            socket: socket.display().to_string(),
        }),
        Err(e) => Err(e.into()),
    }
}

async fn rotate(
    client: &ApiClient,
    secret: &SecretInfo,
    args: &RotateArgs,
) -> Result<SecretInfo, CliError> {
    let (value, key) = match (args.keep_value, secret.aws.is_some()) {
        (true, _) => (None, None),
        (false, true) => (None, Some(AwsKey::read(&args.value)?)),
        (false, false) => (Some(read_value(&args.value)?), None),
    };
    let inject_query = match (args.inject_query, args.no_inject_query) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let body = SecretPatchBody {
        secret: (value.is_some() || key.is_some())
            .then(|| secret_field(value.as_ref(), key.as_ref())),
        env_var: args.env_var.as_deref(),
        hosts: (!args.hosts.is_empty()).then_some(args.hosts.as_slice()),
        inject_query,
        slots: slots(&args.slots),
        methods: replaced(&args.methods, args.any_method),
        paths: replaced(&args.paths, args.any_path),
    };
    if body.secret.is_none()
        && body.env_var.is_none()
        && body.hosts.is_none()
        && body.inject_query.is_none()
        && body.slots.is_none()
        && body.methods.is_none()
        && body.paths.is_none()
    {
        return Err(CliError::NothingToChange);
    }
    Ok(client.update_secret(&secret.id, &body).await?)
}

/// A list to replace with: `given`, or the empty list (any) with `any`, or `None`.
fn replaced(given: &[String], any: bool) -> Option<&[String]> {
    if any {
        Some(&[])
    } else {
        (!given.is_empty()).then_some(given)
    }
}

/// The API's list of slots for `--slot` options (`form`, `form=a,b`); `None` when none was
/// given. The daemon checks them.
fn slots(given: &[String]) -> Option<serde_json::Value> {
    if given.is_empty() {
        return None;
    }
    let items = given
        .iter()
        .map(|slot| match slot.split_once('=') {
            None => serde_json::Value::String(slot.clone()),
            Some((kind, names)) => {
                let names = names
                    .split(',')
                    .map(|n| serde_json::Value::String(n.to_owned()));
                serde_json::json!({ kind: names.collect::<Vec<_>>() })
            }
        })
        .collect();
    Some(serde_json::Value::Array(items))
}

/// The API's `secret` field for a value or an aws key (`key` when both).
fn secret_field<'a>(value: Option<&'a SecretValue>, key: Option<&'a AwsKey>) -> SecretField<'a> {
    match (key, value) {
        (Some(key), _) => key.field(),
        (None, Some(value)) => SecretField::Text(value.expose()),
        (None, None) => SecretField::Text(""),
    }
}

/// The secret whose id, or else whose name, is `given`.
async fn resolve(client: &ApiClient, given: &str) -> Result<SecretInfo, CliError> {
    let mut all = client.secrets().await?;
    let by_id = all.iter().position(|s| s.id == given);
    let found = by_id.or_else(|| all.iter().position(|s| s.name == given));
    found
        .map(|i| all.swap_remove(i))
        .ok_or_else(|| CliError::Unknown(given.to_owned()))
}

/// Reads the value from where `source` says, dropping trailing CR and LF.
fn read_value(source: &ValueSource) -> Result<SecretValue, CliError> {
    let (from, mut bytes) = read_raw(source)?;
    while bytes.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
        bytes.pop();
    }
    SecretValue::from_bytes(bytes).map_err(|cause| CliError::Value { from, cause })
}

/// The bytes `source` names (a file, a variable, or standard input) and where they came from.
pub(crate) fn read_raw(source: &ValueSource) -> Result<(String, Vec<u8>), CliError> {
    Ok(match (&source.from_file, &source.from_env) {
        (Some(path), _) => (
            path.display().to_string(),
            fs::read(path).map_err(|e| read_err(path.display().to_string(), e))?,
        ),
        (None, Some(var)) => {
            let from = format!("environment variable {var}");
            let value = std::env::var_os(var).ok_or_else(|| {
                read_err(
                    from.clone(),
                    io::Error::new(io::ErrorKind::NotFound, "not set"),
                )
            })?;
            (from, value.into_vec())
        }
        (None, None) => ("standard input".to_owned(), read_stdin()?),
    })
}

/// Standard input to its end, or one line typed without echo when it is a terminal.
fn read_stdin() -> Result<Vec<u8>, CliError> {
    let stdin = io::stdin();
    let err = |e| read_err("standard input".to_owned(), e);
    if !stdin.is_terminal() {
        let mut bytes = Vec::new();
        stdin.lock().read_to_end(&mut bytes).map_err(err)?;
        return Ok(bytes);
    }
    eprint!("secret value (not echoed), then Enter: ");
    let saved = termios::tcgetattr(&stdin).map_err(|e| err(e.into()))?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    termios::tcsetattr(&stdin, SetArg::TCSANOW, &quiet).map_err(|e| err(e.into()))?;
    let mut line = String::new();
    let read = stdin.read_line(&mut line);
    let restored = termios::tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    eprintln!();
    read.map_err(err)?;
    restored.map_err(|e| err(e.into()))?;
    Ok(line.into_bytes())
}

fn read_err(from: String, cause: io::Error) -> CliError {
    CliError::Read { from, cause }
}

fn print_one(secret: &SecretInfo, json: bool) {
    if json {
        println!("{}", to_json(secret));
        return;
    }
    let rows = [
        ("id", secret.id.clone()),
        ("name", secret.name.clone()),
        ("env_var", secret.env_var.clone()),
        ("proxy_value", secret.proxy_value.clone()),
        ("hosts", secret.hosts.join(", ")),
        ("inject_query", secret.inject_query.to_string()),
        ("slots", secret.slots().to_json().to_string()),
        (
            "methods",
            if secret.methods.is_empty() {
                "any".to_owned()
            } else {
                secret.methods.join(", ")
            },
        ),
        (
            "paths",
            if secret.paths.is_empty() {
                "any".to_owned()
            } else {
                secret.paths.join(", ")
            },
        ),
        ("created_at", secret.created_at.clone()),
        ("updated_at", secret.updated_at.clone()),
    ];
    for (key, value) in rows {
        println!("{key:<13}{value}");
    }
    if secret.aws.is_some() {
        println!("{:<13}aws (requests are re-signed, never injected)", "kind");
        for (var, placeholder) in veil_core::secrets::aws::env_pairs(secret) {
            println!("{:<13}{var}={placeholder}", "env");
        }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Invariant: SecretInfo holds only strings and a bool, which always serialize.
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// The secrets as a table: ID, NAME, ENV_VAR, PROXY_VALUE, HOSTS.
fn table(all: &[SecretInfo]) -> String {
    if all.is_empty() {
        return "no secrets\n".to_owned();
    }
    let rows: Vec<[String; 5]> =
        std::iter::once(["ID", "NAME", "ENV_VAR", "PROXY_VALUE", "HOSTS"].map(str::to_owned))
            .chain(all.iter().map(|s| {
                [
                    s.id.clone(),
                    s.name.clone(),
                    s.env_var.clone(),
                    s.proxy_value.clone(),
                    s.hosts.join(","),
                ]
            }))
            .collect();
    let mut widths = [0; 5];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str) -> SecretInfo {
        SecretInfo {
            id: format!("sec_{name}"),
            name: name.to_owned(),
            env_var: name.to_uppercase(),
            hosts: vec!["*".into(), "a.com".into()],
            proxy_value: format!("IRONSH_PROXY_{name}"),
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
            inject_query: false,
            slots: None,
            methods: Vec::new(),
            paths: Vec::new(),
            aws: None,
        }
    }

    #[test]
    fn table_lines_up() {
        assert_eq!(table(&[]), "no secrets\n");
        let out = table(&[info("gh"), info("longer-name")]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        let col = lines[0].find("NAME").unwrap();
        assert_eq!(&lines[1][col..col + 2], "gh");
        assert_eq!(&lines[2][col..col + 11], "longer-name");
        assert!(lines[1].ends_with("*,a.com"));
    }

    #[test]
    fn values_from_files_and_env_drop_the_line_break() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v");
        fs::write(&path, "tok-from-file\r\n").unwrap();
        let from_file = ValueSource {
            from_file: Some(path),
            from_env: None,
            from_aws_env: false,
        };
        assert_eq!(read_value(&from_file).unwrap().expose(), "tok-from-file");
        std::env::set_var("VEIL_TEST_SECRET_VALUE", "tok-from-env\n");
        let from_env = ValueSource {
            from_file: None,
            from_env: Some("VEIL_TEST_SECRET_VALUE".into()),
            from_aws_env: false,
        };
        assert_eq!(read_value(&from_env).unwrap().expose(), "tok-from-env");
        let unset = ValueSource {
            from_file: None,
            from_env: Some("VEIL_TEST_NO_SUCH_VARIABLE".into()),
            from_aws_env: false,
        };
        assert!(read_value(&unset)
            .unwrap_err()
            .to_string()
            .contains("not set"));
    }

    #[test]
    fn bad_values_say_why_without_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v");
        fs::write(&path, "hunter2\nsecond line\n").unwrap();
        let err = read_value(&ValueSource {
            from_file: Some(path),
            from_env: None,
            from_aws_env: false,
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("control character"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
