//! A runtime command line, as containerd's shim (Docker) runs runc:
//! `runc [global options] SUBCOMMAND [options] ID`. veil's wrapper only needs the
//! subcommand and, for `create` and `run`, the bundle; everything is passed on unchanged.

use std::{ffi::OsString, path::PathBuf};

/// runc's global options that take a value (`--root /run/runc` or `--root=/run/runc`).
const GLOBAL_WITH_VALUE: [&str; 5] = ["--log", "--log-format", "--root", "--criu", "--rootless"];

/// Options of `create` and `run` that take a value, besides the bundle.
const SUBCOMMAND_WITH_VALUE: [&str; 4] = [
    "--console-socket",
    "--pid-file",
    "--preserve-fds",
    "--pidfd-socket",
];

/// What a runtime command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The subcommand (`create`, `start`, `delete`, `state`, ...), if there is one.
    pub subcommand: Option<String>,
    /// For `create` and `run`: the bundle named with `--bundle`/`-b`; `None` means the
    /// runtime's default, its working directory.
    pub bundle: Option<PathBuf>,
    /// For `create` and `run`: the container id, the last argument.
    pub id: Option<String>,
}

impl Invocation {
    /// Reads `args` (without `argv[0]`).
    pub fn parse(args: &[OsString]) -> Self {
        let mut iter = args.iter().map(|a| a.to_string_lossy());
        let mut subcommand = None;
        while let Some(arg) = iter.next() {
            if !arg.starts_with('-') {
                subcommand = Some(arg.into_owned());
                break;
            }
            if GLOBAL_WITH_VALUE.contains(&arg.as_ref()) {
                iter.next();
            }
        }
        let mut bundle = None;
        let mut id = None;
        if matches!(subcommand.as_deref(), Some("create" | "run")) {
            while let Some(arg) = iter.next() {
                if !arg.starts_with('-') {
                    id = Some(arg.into_owned());
                    continue;
                }
                if arg == "--bundle" || arg == "-b" {
                    bundle = iter.next().map(|b| PathBuf::from(b.as_ref()));
                } else if let Some(b) = arg
                    .strip_prefix("--bundle=")
                    .or_else(|| arg.strip_prefix("-b="))
                {
                    bundle = Some(PathBuf::from(b));
                } else if SUBCOMMAND_WITH_VALUE.contains(&arg.as_ref()) {
                    iter.next();
                }
            }
        }
        Self {
            subcommand,
            bundle,
            id,
        }
    }

    /// Whether this command creates a container (and so must get veil's hooks first).
    pub fn creates(&self) -> bool {
        matches!(self.subcommand.as_deref(), Some("create" | "run"))
    }
}
