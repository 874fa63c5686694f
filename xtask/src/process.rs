//! Running external commands: print what runs, check how it ended.

use std::{
    env,
    ffi::OsStr,
    path::PathBuf,
    process::{Command, ExitStatus},
};

use anyhow::{bail, Context, Result};

/// A `Command` for the cargo that runs xtask (`CARGO`), or `cargo` from PATH.
pub fn cargo() -> Command {
    Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Whether the process runs with effective uid 0.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The first executable file called `name` in PATH.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// Whether `path` is a file with an execute bit set.
pub fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// `cmd` as a shell-like line: the environment it sets, the program, and its arguments.
pub fn show(cmd: &Command) -> String {
    let outer_path = env::var("PATH").unwrap_or_default();
    let mut words = Vec::new();
    for (key, value) in cmd.get_envs() {
        let Some(value) = value else { continue };
        let mut value = value.to_string_lossy().into_owned();
        if key == "PATH" && !outer_path.is_empty() {
            if let Some(prefix) = value.strip_suffix(&format!(":{outer_path}")) {
                value = format!("{prefix}:$PATH");
            }
        }
        words.push(format!(
            "{}={}",
            key.to_string_lossy(),
            quote(OsStr::new(&value))
        ));
    }
    words.push(show_program(cmd));
    words.join(" ")
}

/// `cmd` as a shell-like line without the environment it sets: the program and its arguments.
pub fn show_program(cmd: &Command) -> String {
    let mut words = vec![quote(cmd.get_program())];
    words.extend(cmd.get_args().map(quote));
    words.join(" ")
}

/// Quotes `word` for display when it holds characters a shell would split on.
fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%$".contains(c));
    if plain {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Prints `cmd`, runs it with inherited stdio, and returns how it ended.
pub fn status(cmd: &mut Command) -> Result<ExitStatus> {
    let line = show(cmd);
    println!("$ {line}");
    cmd.status().with_context(|| format!("starting `{line}`"))
}

/// Prints `cmd`, runs it with inherited stdio, and fails unless it exits with status 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = status(cmd)?;
    if !status.success() {
        bail!("`{}` failed ({status})", show(cmd));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_quotes_words_with_spaces() {
        let mut cmd = Command::new("cargo");
        cmd.env("RUSTFLAGS", "-C debuginfo=2").args([
            "build",
            "--target",
            "bpfel-unknown-none",
            "a b",
        ]);
        assert_eq!(
            show(&cmd),
            "RUSTFLAGS='-C debuginfo=2' cargo build --target bpfel-unknown-none 'a b'"
        );
    }

    #[test]
    fn show_omits_removed_variables() {
        let mut cmd = Command::new("true");
        cmd.env_remove("RUSTC_WRAPPER");
        assert_eq!(show(&cmd), "true");
    }
}
