//! `veil generate`: man pages and shell completions made from the clap definitions in
//! [`crate::cli`], so they say what `--help` says. The Debian package is built with them.

use std::{
    io,
    path::{Path, PathBuf},
};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, GenerateCommand};

/// The shells completions are written for.
pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// Carries out `veil generate ...`; returns the files written.
pub fn generate(command: &GenerateCommand) -> io::Result<Vec<PathBuf>> {
    match command {
        GenerateCommand::Man { dir } => man_pages(dir),
        GenerateCommand::Completions { dir } => completions(dir),
    }
}

/// Writes `veil.1` and one page per visible subcommand (`veil-serve.1`, `veil-audit-verify.1`,
/// ...) into `dir`; returns the files written.
pub fn man_pages(dir: &Path) -> io::Result<Vec<PathBuf>> {
    clap_mangen::generate_to(Cli::command(), dir)?;
    let mut written: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<io::Result<_>>()?;
    written.retain(|p| p.extension().is_some_and(|e| e == "1"));
    written.sort();
    Ok(written)
}

/// Writes the completion scripts of [`SHELLS`] into `dir`, under the names clap gives them
/// (`veil.bash`, `_veil`, `veil.fish`); returns the files written.
pub fn completions(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut cmd = Cli::command();
    SHELLS
        .iter()
        .map(|&shell| clap_complete::generate_to(shell, &mut cmd, "veil", dir))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    /// The visible subcommands' names, as `--help` lists them.
    fn subcommands() -> Vec<String> {
        Cli::command()
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| s.get_name().to_owned())
            .collect()
    }

    #[test]
    fn man_page_names_every_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        let pages = man_pages(dir.path()).unwrap();
        let main = fs::read_to_string(dir.path().join("veil.1")).unwrap();
        let names = subcommands();
        assert!(names.contains(&"serve".to_owned()) && names.contains(&"reset".to_owned()));
        for name in &names {
            // Subcommands are listed as `veil-NAME(1)` in the main page's SUBCOMMANDS section.
            assert!(
                main.contains(&format!("veil\\-{}(1)", name.replace('-', "\\-"))),
                "veil.1 does not name {name}"
            );
            let page = dir.path().join(format!("veil-{name}.1"));
            assert!(pages.contains(&page), "no page {}", page.display());
        }
        assert!(pages.contains(&dir.path().join("veil-secrets-create.1")));
        assert!(!main.contains("generate"), "the hidden subcommand shows");
    }

    #[test]
    fn completions_for_every_shell() {
        let dir = tempfile::tempdir().unwrap();
        let files = completions(dir.path()).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["veil.bash", "_veil", "veil.fish"]);
        let bash = fs::read_to_string(&files[0]).unwrap();
        for name in subcommands() {
            assert!(bash.contains(&name), "bash completion lacks {name}");
        }
    }
}
