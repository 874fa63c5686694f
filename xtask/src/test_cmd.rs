//! `cargo xtask test`: setup, build, `cargo test --workspace`, the Debian package and its check
//! (`cargo xtask deb --check`), and how long each took.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::Path,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

use crate::{build_cmd, deb, deb_check, ebpf, process, setup, Workspace};

/// Runs every phase and returns `cargo test`'s exit code (a failing package check is an error). Prints the phases' durations at the
/// end, also when a phase fails.
pub fn run(ws: &Workspace, cargo_test_args: &[String]) -> Result<ExitCode> {
    let mut phases = Phases::default();
    let result = run_phases(ws, cargo_test_args, &mut phases);
    phases.print();
    result
}

fn run_phases(ws: &Workspace, cargo_test_args: &[String], phases: &mut Phases) -> Result<ExitCode> {
    phases.time("setup", || setup::run(ws))?;
    open_path_to(&ws.root)?;
    phases.time("build-ebpf", || ebpf::build(ws).map(drop))?;
    phases.time("build", || build_cmd::build_workspace(ws, false))?;
    let status = phases.time("test", || {
        let mut cmd = process::cargo();
        cmd.current_dir(&ws.root)
            .args(["test", "--workspace"])
            .args(cargo_test_args);
        process::status(&mut cmd)
    })?;
    phases.time("package", || {
        let package = deb::package(ws)?;
        deb_check::run(ws, &package)
    })?;
    // cargo killed by a signal has no exit code; report that as a failure.
    let code = status.code().unwrap_or(1);
    // Exit codes are 0..=255 on Unix, so the conversion cannot fail; 1 is a fallback anyway.
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// Makes every directory above the checkout traversable by other users (adds `o+x` where it
/// is missing, and says so): the tests run scripts and binaries from the checkout inside
/// `veil run` sandboxes, whose commands run as an unprivileged host user.
fn open_path_to(root: &Path) -> Result<()> {
    for dir in root.ancestors() {
        let mode = fs::metadata(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .permissions()
            .mode();
        if mode & 0o001 == 0 {
            println!(
                "making {} traversable by other users (o+x): sandboxed test commands run \
                 unprivileged and read the checkout",
                dir.display()
            );
            fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o001))
                .with_context(|| format!("adding o+x to {}", dir.display()))?;
        }
    }
    Ok(())
}

/// How long each phase took, in order.
#[derive(Default)]
struct Phases(Vec<(&'static str, Duration)>);

impl Phases {
    /// Runs `f` and records its duration under `name`, whether it fails or not.
    fn time<T>(&mut self, name: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let started = Instant::now();
        let result = f();
        self.0.push((name, started.elapsed()));
        result
    }

    fn print(&self) {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(name, d)| format!("{name} {:.1} s", d.as_secs_f64()))
            .collect();
        let total: Duration = self.0.iter().map(|(_, d)| *d).sum();
        println!(
            "xtask test phases: {} (total {:.1} s)",
            parts.join(", "),
            total.as_secs_f64()
        );
    }
}
