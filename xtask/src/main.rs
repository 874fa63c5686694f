//! `cargo xtask`: veil's developer tasks — install the eBPF toolchain, build the eBPF object and
//! the workspace, run the tests, build and check the Debian package, and show a live demo.

mod bench;
mod build_cmd;
mod deb;
mod deb_check;
mod demo;
mod demo_check;
mod demo_cleanup;
mod demo_support;
mod demo_upstream;
mod ebpf;
mod process;
mod setup;
mod test_cmd;

use std::{
    env,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

/// veil's developer tasks.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", about)]
struct Cli {
    /// The task to run.
    #[command(subcommand)]
    command: Command,
}

/// The tasks.
#[derive(Debug, Subcommand)]
enum Command {
    /// Install the eBPF toolchain and test tools (apt packages, bpf-linker) and mount bpffs.
    /// Idempotent; needs root.
    Setup,
    /// Build the eBPF object into target/ebpf/bpfel-unknown-none/release/veil-ebpf.
    BuildEbpf,
    /// Build the eBPF object, then every binary of the workspace.
    Build {
        /// Build the workspace binaries with the release profile.
        #[arg(long)]
        release: bool,
    },
    /// Set up, build, run `cargo test --workspace`, then build the Debian package and check it
    /// (`deb --check`); needs root.
    Test {
        /// Extra arguments for `cargo test`, after `--` (e.g. `-- audit -- --nocapture`).
        #[arg(last = true, value_name = "CARGO_TEST_ARGS")]
        args: Vec<String>,
    },
    /// Set up, build, and show veil swapping a sandboxed client's placeholder for a real token
    /// on the way to an API, and auditing it; needs root.
    Demo,
    /// Set up, build veil (release) and the Debian package
    /// target/debian/veil_<version>_<arch>.deb (dpkg-deb): the binary, the systemd unit,
    /// /etc/veil/veil.toml, man pages, completions. Needs root.
    Deb {
        /// Then install it into a fresh Debian 12 root (debootstrap) and check it: files,
        /// conffile, `--help` against the man pages, the unit, a live daemon, purge. Needs root.
        #[arg(long)]
        check: bool,
    },
    /// Set up, build veil (release), and benchmark it side by side with a direct connection
    /// and with mitmproxy; writes target/bench/results.{json,md}. Needs root.
    Bench {
        /// Run each scenario briefly, once (a smoke test; numbers are rough).
        #[arg(long)]
        quick: bool,
        /// Run only these scenarios (numbers as in the issue and the report: 1-11; 6 is
        /// measured during 2), e.g. `--only 1,5`.
        #[arg(long, value_delimiter = ',', value_enum)]
        only: Vec<bench::Scenario>,
    },
}

/// Where the project lives and where its tools go.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The workspace root (holds the top-level Cargo.toml).
    pub root: PathBuf,
    /// The tools directory: `VEIL_TOOLS_DIR`, or `<root>/.tools`.
    pub tools: PathBuf,
}

impl Workspace {
    /// Finds the workspace from xtask's own location and the tools directory from the
    /// environment.
    fn locate() -> Result<Self> {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest
            .parent()
            .with_context(|| format!("{} has no parent directory", manifest.display()))?
            .to_path_buf();
        let tools = match env::var_os("VEIL_TOOLS_DIR") {
            Some(dir) if !dir.is_empty() => {
                std::path::absolute(PathBuf::from(dir)).context("resolving VEIL_TOOLS_DIR")?
            }
            _ => root.join(".tools"),
        };
        Ok(Self { root, tools })
    }

    /// The directory holding the installed tools' executables.
    pub fn tools_bin(&self) -> PathBuf {
        self.tools.join("bin")
    }

    /// The bpf-linker executable in the tools directory.
    pub fn bpf_linker(&self) -> PathBuf {
        self.tools_bin().join("bpf-linker")
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // `{:#}` prints the error and its causes on one line, without a backtrace.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the chosen task; returns the exit code.
fn run(cli: Cli) -> Result<ExitCode> {
    let ws = Workspace::locate()?;
    match cli.command {
        Command::Setup => setup::run(&ws)?,
        Command::BuildEbpf => ebpf::build(&ws).map(drop)?,
        Command::Build { release } => build_cmd::run(&ws, release)?,
        Command::Test { args } => return test_cmd::run(&ws, &args),
        Command::Deb { check } => {
            let package = deb::run(&ws)?;
            if check {
                deb_check::run(&ws, &package)?;
            }
        }
        Command::Demo => demo::run(&ws)?,
        Command::Bench { quick, only } => bench::run(&ws, quick, &only)?,
    }
    Ok(ExitCode::SUCCESS)
}
