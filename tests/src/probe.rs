//! Running `probe.py` (beside this file) and reading what it reports: one JSON object with
//! the probe's pid, whether it got through (`ok`) and, if not, the `errno` and `stage`.

use std::{path::Path, process::Command};

use crate::{spawn_in_cgroup, Instance};

/// The probe script.
pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/probe.py");

/// The probe's argument list for `python3`: the script, then `args`.
pub fn command_line(args: &[&str]) -> Vec<String> {
    std::iter::once(SCRIPT)
        .chain(args.iter().copied())
        .map(str::to_owned)
        .collect()
}

/// A shell command running the probe with `args`, for `sh -c` scripts that run several.
pub fn shell(args: &[&str]) -> String {
    format!("python3 {}", command_line(args).join(" "))
}

/// Runs the probe with `args` in a new sandbox made by `veil run RUN_ARGS` and returns its
/// report.
pub fn in_sandbox(veil: &Instance, run_args: &[&str], args: &[&str]) -> serde_json::Value {
    let line = command_line(args);
    let mut full: Vec<&str> = vec!["run"];
    full.extend_from_slice(run_args);
    full.extend(["--", "python3"]);
    full.extend(line.iter().map(String::as_str));
    reports(&veil.run_veil(&full)).remove(0)
}

/// Runs the probe with `args` as root in the (steered) cgroup at `dir` and returns its report.
pub fn in_cgroup(dir: &Path, args: &[&str]) -> serde_json::Value {
    let child = spawn_in_cgroup(
        dir,
        Command::new("python3")
            .args(command_line(args))
            .stdout(std::process::Stdio::piped()),
    );
    reports(&child.wait_with_output().expect("the probe ran")).remove(0)
}

/// Runs the shell `script` (such as several [`shell`] lines joined with `; `) as root in the
/// (steered) cgroup at `dir` and returns every report.
pub fn script_in_cgroup(dir: &Path, script: &str) -> Vec<serde_json::Value> {
    let child = spawn_in_cgroup(
        dir,
        Command::new("sh")
            .args(["-c", script])
            .stdout(std::process::Stdio::piped()),
    );
    reports(&child.wait_with_output().expect("the probes ran"))
}

/// Every report in a finished command's output, in order; panics (with the output) if
/// there is none.
pub fn reports(out: &std::process::Output) -> Vec<serde_json::Value> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let found: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    assert!(
        !found.is_empty(),
        "no probe report (exit {:?}):\n{stdout}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    found
}
