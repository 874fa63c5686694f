//! The environment of a sandboxed command, built from an explicit list: nothing of the
//! caller's reaches it unless named (`AWS_*`, `SSH_AUTH_SOCK` and the like stay outside).

use std::path::Path;

use veil_core::secrets::is_posix_name;

use crate::secrets::SecretInfo;

/// Errors in `--env` and `--env-file`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    /// A variable name that is not `[A-Za-z_][A-Za-z0-9_]*`.
    #[error("{origin}: `{name}` is not a variable name (letters, digits and _, not starting with a digit)")]
    BadName {
        /// Where it came from (`--env`, or `FILE line N`).
        origin: String,
        /// The offending name.
        name: String,
    },
    /// A value holding a NUL byte, which no environment can carry.
    #[error("{origin}: the value of {name} contains a NUL byte")]
    Nul {
        /// Where it came from.
        origin: String,
        /// The variable.
        name: String,
    },
}

/// The variables common TLS stacks read for their trusted roots: OpenSSL (and so python,
/// curl, git), curl and git explicitly, python's requests, and node (which adds to its own).
pub const CA_VARIABLES: [&str; 5] = [
    "SSL_CERT_FILE",
    "CURL_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
];

/// The caller's variables a sandbox gets by default, when they are set.
const PASSED: [&str; 3] = ["PATH", "TERM", "LANG"];

/// `PATH` when the caller has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One `NAME=VALUE` pair of the sandbox's environment.
pub type Var = (String, String);

/// What goes into a sandbox's environment besides the caller's `PATH`, `TERM` and `LANG`.
pub struct Inputs<'a> {
    /// `HOME` inside the sandbox.
    pub home: &'a Path,
    /// The CA bundle the [`CA_VARIABLES`] name.
    pub ca_bundle: &'a Path,
    /// The secrets profile, as `VEIL_SECRETS_PROFILE`.
    pub profile: &'a Path,
    /// The secrets whose placeholders the sandbox gets.
    pub secrets: &'a [SecretInfo],
    /// `--env-file` and `--env` variables, in order (later ones win).
    pub extra: &'a [Var],
}

/// The sandbox's whole environment; `caller` reads a variable of the caller's.
pub fn build(inputs: &Inputs, caller: impl Fn(&str) -> Option<String>) -> Vec<Var> {
    let mut vars: Vec<Var> = Vec::new();
    let mut set = |name: &str, value: String| {
        vars.retain(|(n, _)| n != name);
        vars.push((name.to_owned(), value));
    };
    set("PATH", DEFAULT_PATH.to_owned());
    for name in PASSED {
        if let Some(value) = caller(name) {
            set(name, value);
        }
    }
    set("HOME", inputs.home.display().to_string());
    for name in CA_VARIABLES {
        set(name, inputs.ca_bundle.display().to_string());
    }
    for secret in inputs.secrets {
        for (var, placeholder) in veil_core::secrets::aws::env_pairs(secret) {
            set(&var, placeholder);
        }
    }
    set("VEIL_SECRETS_PROFILE", inputs.profile.display().to_string());
    for (name, value) in inputs.extra {
        set(name, value.clone());
    }
    vars
}

/// One `--env NAME[=VALUE]`: `NAME` alone takes the caller's value (and nothing if the
/// caller has none, as container runtimes do).
pub fn parse_arg(
    arg: &str,
    caller: impl Fn(&str) -> Option<String>,
) -> Result<Option<Var>, EnvError> {
    assignment(arg, "--env", caller)
}

/// The variables of an `--env-file`: one `NAME=VALUE` or `NAME` per line, blank lines and
/// lines starting with `#` ignored; the value is taken literally (no quotes, no expansion).
pub fn parse_file(
    text: &str,
    file: &Path,
    caller: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Var>, EnvError> {
    let mut vars = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let origin = format!("{} line {}", file.display(), n + 1);
        if let Some(var) = assignment(line, &origin, &caller)? {
            vars.push(var);
        }
    }
    Ok(vars)
}

fn assignment(
    text: &str,
    origin: &str,
    caller: impl Fn(&str) -> Option<String>,
) -> Result<Option<Var>, EnvError> {
    let (name, value) = match text.split_once('=') {
        Some((name, value)) => (name, Some(value.to_owned())),
        None => (text.trim_end(), None),
    };
    if !is_posix_name(name) {
        return Err(EnvError::BadName {
            origin: origin.to_owned(),
            name: name.to_owned(),
        });
    }
    let Some(value) = value.or_else(|| caller(name)) else {
        return Ok(None);
    };
    if value.contains('\0') {
        return Err(EnvError::Nul {
            origin: origin.to_owned(),
            name: name.to_owned(),
        });
    }
    Ok(Some((name.to_owned(), value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(name: &str) -> Option<String> {
        match name {
            "PATH" => Some("/opt/bin:/usr/bin".into()),
            "TERM" => Some("xterm".into()),
            "AWS_SECRET_ACCESS_KEY" => Some("caller-secret".into()),
            "SSH_AUTH_SOCK" => Some("/tmp/agent".into()),
            _ => None,
        }
    }

    fn secret(var: &str, placeholder: &str) -> SecretInfo {
        SecretInfo {
            id: "sec_0000000000000001".into(),
            name: "gh".into(),
            env_var: var.into(),
            hosts: vec!["api.github.com".into()],
            proxy_value: placeholder.into(),
            created_at: String::new(),
            updated_at: String::new(),
            inject_query: false,
            slots: None,
            methods: Vec::new(),
            paths: Vec::new(),
            aws: None,
        }
    }

    #[test]
    fn only_the_listed_variables_of_the_caller_pass() {
        let secrets = [secret("GITHUB_TOKEN", "IRONSH_PROXY_gh")];
        let extra = [("EXTRA".to_owned(), "1".to_owned())];
        let vars = build(
            &Inputs {
                home: Path::new("/root"),
                ca_bundle: Path::new("/run/veil-public/ca-bundle.pem"),
                profile: Path::new("/etc/profile.d/veil-secrets.sh"),
                secrets: &secrets,
                extra: &extra,
            },
            caller,
        );
        let get = |name: &str| {
            vars.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("PATH"), Some("/opt/bin:/usr/bin"));
        assert_eq!(get("TERM"), Some("xterm"));
        assert_eq!(get("LANG"), None);
        assert_eq!(get("HOME"), Some("/root"));
        assert_eq!(get("GITHUB_TOKEN"), Some("IRONSH_PROXY_gh"));
        assert_eq!(get("SSL_CERT_FILE"), Some("/run/veil-public/ca-bundle.pem"));
        assert_eq!(
            get("VEIL_SECRETS_PROFILE"),
            Some("/etc/profile.d/veil-secrets.sh")
        );
        assert_eq!(get("EXTRA"), Some("1"));
        assert_eq!(get("AWS_SECRET_ACCESS_KEY"), None);
        assert_eq!(get("SSH_AUTH_SOCK"), None);
        let names: Vec<_> = vars.iter().map(|(n, _)| n).collect();
        let mut unique = names.clone();
        unique.dedup();
        assert_eq!(names.len(), unique.len(), "each variable once");
    }

    #[test]
    fn env_args_take_a_value_or_the_callers() {
        assert_eq!(
            parse_arg("A=b=c", caller),
            Ok(Some(("A".into(), "b=c".into())))
        );
        assert_eq!(
            parse_arg("EMPTY=", caller),
            Ok(Some(("EMPTY".into(), String::new())))
        );
        assert_eq!(
            parse_arg("TERM", caller),
            Ok(Some(("TERM".into(), "xterm".into())))
        );
        assert_eq!(parse_arg("UNSET", caller), Ok(None));
        for bad in ["", "=x", "1A=x", "A-B=x", "A B"] {
            assert!(
                matches!(parse_arg(bad, caller), Err(EnvError::BadName { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse_arg("A=x\0y", caller),
            Err(EnvError::Nul { .. })
        ));
    }

    #[test]
    fn env_files_skip_comments_and_name_the_bad_line() {
        let text = "# tokens\n\nA=1\n  B = 2\nTERM\nUNSET\n";
        let err = parse_file(text, Path::new("vars.env"), caller).expect_err("`B ` is no name");
        assert_eq!(err.to_string().split(':').next(), Some("vars.env line 4"));
        let vars = parse_file("# x\nA=1\nTERM\nUNSET\nC='q'\n", Path::new("v"), caller)
            .expect("a good file");
        assert_eq!(
            vars,
            [
                ("A".to_owned(), "1".to_owned()),
                ("TERM".to_owned(), "xterm".to_owned()),
                ("C".to_owned(), "'q'".to_owned())
            ]
        );
    }
}
