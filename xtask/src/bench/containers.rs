//! Containers as sandboxes (veil's OCI hook): scenario 10, `podman run` to the container's
//! first instruction with and without the hook, and row 1c, scenario 1's keep-alive load with
//! h2load in a Podman container, directly and sandboxed by the hook.

use anyhow::{bail, Result};

use super::{
    h2load, interrupt, nginx,
    podman::Podman,
    report::Row,
    sandbox::{date_command, first_instruction_ms},
    Bench, Target, HOST,
};

/// How many containers scenario 10 starts per target (fewer in quick mode).
const STARTS: usize = 20;

/// Scenario 10: `podman run --rm ... date +%s%N`, spawn to the container's first
/// instruction, without veil's annotation (no hook runs; column direct) and with it (the hook
/// makes the container a sandbox before its first instruction; column veil).
pub fn startup(bench: &Bench, rows: &mut Vec<Row>, notes: &mut Vec<String>) -> Result<()> {
    let podman = Podman::new(bench)?;
    let starts = if bench.mode.name == "quick" {
        5
    } else {
        STARTS
    };
    let mut row = Row::new(
        "10. podman run: spawn to the container's first instruction",
        "ms",
    );
    let date = date_command();
    for i in 0..starts {
        for t in [Target::Direct, Target::Veil] {
            interrupt::check()?;
            println!("container start: {t}, {}/{starts}", i + 1);
            let name = format!("veil-bench-{}-start-{t}-{i}", std::process::id());
            let mut cmd = podman.run_command(&name, t == Target::Veil, &date);
            row.push(
                t,
                first_instruction_ms(&mut cmd, &format!("container start {i} ({t})"))?,
            );
        }
    }
    if let (Some(direct), Some(veil)) = (row.median(Target::Direct), row.median(Target::Veil)) {
        notes.push(format!(
            "Scenario 10: veil's OCI hook adds {:.1} ms to `podman run` before the \
             container's first instruction (median of {starts}, runc; target at most 100 ms).",
            veil - direct
        ));
    }
    rows.push(row);
    Ok(())
}

/// Row 1c: scenario 1's keep-alive load (64 connections, one placeholder per request) from
/// h2load in a Podman container, the host's `/usr` mounted in: directly (no annotation; the
/// container's bridge network to the upstream) and sandboxed by veil's hook. First checks that
/// the upstream receives the real secret from a sandboxed container.
pub fn keep_alive(bench: &Bench, args: &[String]) -> Result<Row> {
    let podman = Podman::new(bench)?;
    check_injection(bench, &podman)?;
    let mut rps = Row::new(
        "1c. HTTPS keep-alive, 64 conns, load generator in a Podman container",
        "requests/s",
    );
    for run in 0..bench.mode.runs {
        for t in [Target::Direct, Target::Veil] {
            bench.begin_run(format_args!("keep-alive in a container: {t}"), run)?;
            let name = format!("veil-bench-{}-h2load-{t}-{run}", std::process::id());
            let full = bench.h2load_args(t, args, "/");
            let summary = h2load::run(&mut podman.run_command(&name, t == Target::Veil, &full))?;
            rps.push(t, summary.req_per_s);
        }
    }
    Ok(rps)
}

/// Checks that curl in a sandboxed container (trusting veil's CA through the variables of
/// `veil env --format env-file`) gets the real secret to the upstream.
fn check_injection(bench: &Bench, podman: &Podman) -> Result<()> {
    let up = bench.upstream;
    let curl = [
        "curl".to_string(),
        "-sS".into(),
        "--max-time".into(),
        "20".into(),
        "--resolve".into(),
        format!("{HOST}:{}:{}", up.port(), up.ip()),
        "-H".into(),
        bench.auth_header(),
        format!("https://{HOST}:{}/auth", up.port()),
    ];
    let name = format!("veil-bench-{}-check", std::process::id());
    let out = podman.run_command(&name, true, &curl).output()?;
    let body = String::from_utf8_lossy(&out.stdout);
    if body != nginx::REAL_SECRET_SEEN {
        bail!(
            "from a Podman container sandboxed by veil's hook, the upstream received {body:?}, \
             not the real secret ({}; {})\nveil's log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            bench.veil.log()
        );
    }
    println!("check: from a Podman container, the upstream received the real secret");
    Ok(())
}
