//! `veil status`: asks the daemon for its report (`GET /v1/status`) and prints it, as text or
//! JSON, with an exit code for monitoring: [`HEALTHY`], [`UNHEALTHY`] or [`UNREACHABLE`].

use std::{
    fmt::Write as _,
    io::{self, Write},
};

use crate::{
    api::client::{ApiClient, ClientError},
    audit,
    cli::StatusArgs,
    config::Paths,
    status::Status,
};

/// Exit code: the daemon answers and nothing is wrong.
pub const HEALTHY: i32 = 0;
/// Exit code: the daemon answers and something is wrong (the report says what).
pub const UNHEALTHY: i32 = 1;
/// Exit code: no daemon answers.
pub const UNREACHABLE: i32 = 2;

/// Errors from `veil status` other than what the report itself says.
#[derive(Debug, thiserror::Error)]
pub enum StatusCliError {
    /// The daemon answered, but not with a report.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The report could not be encoded as JSON.
    #[error("encoding the report: {0}")]
    Json(#[from] serde_json::Error),
    /// Standard output failed.
    #[error("writing to standard output: {0}")]
    Output(io::Error),
}

/// Runs `veil status`; returns the exit code.
pub async fn status(paths: &Paths, args: StatusArgs) -> Result<i32, StatusCliError> {
    let client = match ApiClient::connect(&paths.socket()).await {
        Ok(client) => client,
        Err(e @ ClientError::Connect { .. }) => return unreachable(&e, args.json),
        Err(e) => return Err(e.into()),
    };
    let status = client.status().await?;
    let text = if args.json {
        let shown = Reachable {
            daemon_reachable: true,
            status: &status,
        };
        serde_json::to_string(&shown)? + "\n"
    } else {
        render(&status)
    };
    emit(&text)?;
    Ok(if status.healthy { HEALTHY } else { UNHEALTHY })
}

/// The JSON `veil status --json` prints when the daemon answers: its report, and that it
/// answered (as the JSON printed when it does not says it did not).
#[derive(serde::Serialize)]
struct Reachable<'a> {
    daemon_reachable: bool,
    #[serde(flatten)]
    status: &'a Status,
}

/// Says that no daemon answers: on standard error, or as JSON on standard output.
fn unreachable(error: &ClientError, json: bool) -> Result<i32, StatusCliError> {
    let problem = format!("no veil daemon answers: {error}");
    if json {
        let value = serde_json::json!({
            "healthy": false,
            "daemon_reachable": false,
            "problems": [problem],
        });
        emit(&(value.to_string() + "\n"))?;
    } else {
        eprintln!("veil: {problem}");
    }
    Ok(UNREACHABLE)
}

/// The report as text for a person.
pub fn render(status: &Status) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; the results are ignored below for that reason.
    let _ = writeln!(
        out,
        "veil {} (eBPF object {}): {}",
        status.version,
        status.ebpf_build_id,
        if status.healthy {
            "healthy"
        } else {
            "UNHEALTHY"
        }
    );
    let proxy: Vec<String> = status
        .listeners
        .proxy
        .iter()
        .map(ToString::to_string)
        .collect();
    let _ = writeln!(out, "listeners: {}", proxy.join(", "));
    let _ = writeln!(
        out,
        "  in each sandbox's own network namespace: loopback port {} (proxy), port {} (DNS)",
        status.listeners.sandbox_proxy_port, status.listeners.sandbox_dns_port
    );
    if let Some(api) = status.listeners.api_tcp {
        let _ = writeln!(out, "  control API on TCP: {api}");
    }
    let _ = writeln!(out, "steered cgroups ({}):", status.steered.len());
    for cgroup in &status.steered {
        let what = match &cgroup.sandbox {
            Some(name) => format!("sandbox {name}"),
            None => "sandbox parent".to_owned(),
        };
        let state = if !cgroup.exists {
            "GONE".to_owned()
        } else if cgroup.missing.is_empty() {
            "every hook attached".to_owned()
        } else {
            let hooks: Vec<String> = cgroup
                .missing
                .iter()
                .map(|m| format!("{} ({})", m.hook, m.problem))
                .collect();
            format!("MISSING {}", hooks.join(", "))
        };
        let _ = writeln!(
            out,
            "  {} ({what}, id {}): {state}",
            cgroup.cgroup.display(),
            cgroup.cgroup_id
        );
    }
    let _ = writeln!(out, "sandboxes ({}):", status.sandboxes.len());
    for sandbox in &status.sandboxes {
        let origin = match (&sandbox.container, sandbox.managed) {
            (Some(c), _) => format!(
                "{} container {}",
                c.runtime,
                c.name
                    .clone()
                    .unwrap_or_else(|| c.id.chars().take(12).collect())
            ),
            (None, true) => "veil run".to_owned(),
            (None, false) => "attached".to_owned(),
        };
        let netns = match (&sandbox.netns, sandbox.netns_served) {
            (None, _) => "veil's network namespace".to_owned(),
            (Some(path), true) => format!("own network namespace {}, served", path.display()),
            (Some(path), false) => format!("own network namespace {}, NOT SERVED", path.display()),
        };
        let _ = writeln!(
            out,
            "  {} ({origin}): {}, {netns}",
            sandbox.name,
            sandbox.cgroup.display()
        );
    }
    let audit_state = match &status.audit.failure {
        None => "ok".to_owned(),
        Some(reason) => format!("FAILING ({reason})"),
    };
    let _ = writeln!(
        out,
        "audit log: {audit_state}; head seq {} hash {}",
        status.audit.head.seq, status.audit.head.hash
    );
    let _ = writeln!(out, "secrets: {}", status.secrets);
    if status.refusals.is_empty() {
        let _ = writeln!(out, "recent refusals: none");
    } else {
        let _ = writeln!(out, "recent refusals:");
        out.push_str(&audit::table(&status.refusals));
    }
    if !status.problems.is_empty() {
        let _ = writeln!(out, "problems:");
        for problem in &status.problems {
            let _ = writeln!(out, "  - {problem}");
        }
    }
    out
}

/// Writes `text` to standard output and flushes it; a reader that went away is no error.
fn emit(text: &str) -> Result<(), StatusCliError> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(StatusCliError::Output(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::{
        audit::ChainHead,
        status::{AuditStatus, Listeners, SandboxStatus, SteeredCgroup},
        steering::MissingHook,
    };

    fn report(missing: Vec<MissingHook>, problems: Vec<String>) -> Status {
        Status {
            healthy: problems.is_empty(),
            problems,
            version: "0.1.0".to_owned(),
            ebpf_build_id: "0123456789abcdef".to_owned(),
            listeners: Listeners {
                proxy: vec!["127.0.0.1:15001".parse().expect("an address")],
                api_tcp: None,
                sandbox_proxy_port: 1000,
                sandbox_dns_port: 53,
            },
            steered: vec![SteeredCgroup {
                cgroup: PathBuf::from("/sys/fs/cgroup/box"),
                cgroup_id: 42,
                sandbox: Some("box".to_owned()),
                exists: true,
                missing,
            }],
            sandboxes: vec![SandboxStatus {
                name: "box".to_owned(),
                cgroup: PathBuf::from("/sys/fs/cgroup/box"),
                cgroup_id: 42,
                managed: false,
                netns: Some(PathBuf::from("/run/veil/netns/box")),
                netns_served: true,
                container: None,
            }],
            audit: AuditStatus {
                failure: None,
                head: ChainHead::default(),
            },
            secrets: 2,
            refusals: Vec::new(),
        }
    }

    #[test]
    fn healthy_report() {
        let text = render(&report(Vec::new(), Vec::new()));
        assert!(text.starts_with("veil 0.1.0 (eBPF object 0123456789abcdef): healthy\n"));
        assert!(text.contains("/sys/fs/cgroup/box (sandbox box, id 42): every hook attached"));
        assert!(text.contains("own network namespace /run/veil/netns/box, served"));
        assert!(text.contains("secrets: 2\n"));
        assert!(!text.contains("problems:"));
    }

    #[test]
    fn unhealthy_report_names_hook_and_problem() {
        let missing = vec![MissingHook {
            hook: "connect4".to_owned(),
            problem: "detached".to_owned(),
        }];
        let text = render(&report(missing, vec!["it is broken".to_owned()]));
        assert!(text.contains("UNHEALTHY"));
        assert!(text.contains("MISSING connect4 (detached)"));
        assert!(text.ends_with("problems:\n  - it is broken\n"));
    }

    #[test]
    fn report_round_trips_as_json() {
        let status = report(Vec::new(), Vec::new());
        let json = serde_json::to_string(&status).expect("encodes");
        assert_eq!(
            serde_json::from_str::<Status>(&json).expect("decodes"),
            status
        );
    }
}
