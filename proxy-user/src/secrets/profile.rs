//! The secrets profile, `<run-dir>/secrets.sh`: shell lines a sandboxed shell can `source` to
//! pick up secrets added or changed since it started. World-readable: it holds placeholders
//! only, which are inert outside veil.

use std::{
    fs::{self, OpenOptions},
    io::{self, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::Path,
};

use veil_core::secrets::aws::env_pairs;

use super::{SecretInfo, SecretSet};

/// An environment variable that held a placeholder of a deleted secret (or that a secret moved
/// away from), with that placeholder.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Retired {
    /// The variable.
    pub env_var: String,
    /// The placeholder it held.
    pub proxy_value: String,
}

/// `export VAR='PLACEHOLDER'` for every secret (three for an aws secret), one per line, sorted
/// by variable.
pub fn exports<'a>(secrets: impl IntoIterator<Item = &'a SecretInfo>) -> String {
    let mut pairs: Vec<(String, String)> = secrets.into_iter().flat_map(env_pairs).collect();
    pairs.sort_unstable();
    pairs
        .into_iter()
        .map(|(var, value)| format!("export {var}={}\n", quote(&value)))
        .collect()
}

/// The profile: for every retired variable, an `unset` that applies only while the variable
/// still holds the old placeholder (so a value the user set is left alone), then
/// [`exports`] for the live secrets.
pub fn render(set: &SecretSet, retired: &[Retired]) -> String {
    let mut out = String::from(
        "# veil secrets profile, rewritten on every change: `. \"$VEIL_SECRETS_PROFILE\"` loads\n\
         # the current placeholders into a running shell and drops those of deleted secrets.\n",
    );
    let live = |r: &Retired| {
        set.iter().any(|s| {
            env_pairs(&s.info)
                .iter()
                .any(|(var, value)| *var == r.env_var && *value == r.proxy_value)
        })
    };
    for r in retired.iter().filter(|r| !live(r)) {
        out.push_str(&format!(
            "if [ \"${{{var}-}}\" = {value} ]; then unset {var}; fi\n",
            var = r.env_var,
            value = quote(&r.proxy_value)
        ));
    }
    out.push_str(&exports(set.iter().map(|s| &s.info)));
    out
}

/// Replaces the file at `path` with `content` atomically (a reader sees the old or the new
/// file, never a mix), mode 0644.
pub fn write(path: &Path, content: &str) -> io::Result<()> {
    let tmp = path.with_extension("sh.tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)?;
    // Sandboxes read it as other users whatever veil's umask (the packaged unit's is 0077).
    file.set_permissions(fs::Permissions::from_mode(0o644))?;
    file.write_all(content.as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

/// `value` in single quotes for a POSIX shell.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use crate::secrets::{LiveSecret, SecretValue};

    fn live(env_var: &str, proxy_value: &str) -> LiveSecret {
        LiveSecret {
            info: SecretInfo {
                id: format!("sec_{env_var}"),
                name: proxy_value.to_owned(),
                env_var: env_var.to_owned(),
                hosts: vec!["*".to_owned()],
                proxy_value: proxy_value.to_owned(),
                created_at: String::new(),
                updated_at: String::new(),
                inject_query: false,
                slots: None,
                methods: Vec::new(),
                paths: Vec::new(),
                aws: None,
            },
            hosts: Vec::new(),
            route: Default::default(),
            value: std::sync::Arc::new(SecretValue::parse("real-value".to_owned()).unwrap()),
        }
    }

    fn retired(env_var: &str, proxy_value: &str) -> Retired {
        Retired {
            env_var: env_var.to_owned(),
            proxy_value: proxy_value.to_owned(),
        }
    }

    #[test]
    fn exports_are_sorted_and_quoted() {
        let set = SecretSet::default()
            .with(live("B", "P_b"))
            .with(live("A", "P_a'x"));
        assert_eq!(
            exports(set.iter().map(|s| &s.info)),
            "export A='P_a'\\''x'\nexport B='P_b'\n"
        );
        assert!(!render(&set, &[]).contains("real-value"));
    }

    #[test]
    fn sourcing_the_profile_updates_a_shell() {
        let set = SecretSet::default()
            .with(live("NEW", "P_new"))
            .with(live("KEPT", "P_kept"));
        let profile = render(
            &set,
            &[
                retired("GONE", "P_gone"),
                retired("MINE", "P_old"),
                retired("KEPT", "P_kept"),
            ],
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.sh");
        write(&path, &profile).unwrap();
        let out = Command::new("sh")
            .arg("-c")
            .arg(r#". "$1"; echo "${GONE-unset} ${MINE-unset} $KEPT $NEW""#)
            .arg("sh")
            .arg(&path)
            .env("GONE", "P_gone")
            .env("MINE", "my own value")
            .env("KEPT", "P_kept")
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "unset my own value P_kept P_new\n"
        );
    }
}
