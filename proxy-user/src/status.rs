//! `veil status`: the daemon's report on whether this host is protected (`GET /v1/status`),
//! and the judgement of what in it is wrong. [`report`] gathers; [`problems`] judges, purely.

use std::{net::SocketAddr, path::PathBuf};

use serde::{Deserialize, Serialize};

use crate::{
    audit::{ChainHead, Container, Event, Record, Verdict},
    cgroup,
    daemon::Daemon,
    netns::Ports,
    sandbox::Sandbox,
    steering::{self, MissingHook},
};

/// How many of the newest refusals the report carries.
pub const RECENT_REFUSALS: usize = 5;

/// How many of the newest audit records are searched for refusals.
const REFUSAL_SCAN: usize = 10_000;

/// The report: what the daemon runs, what it steers, and whether that is all in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Whether nothing is wrong (`problems` is empty).
    pub healthy: bool,
    /// What is wrong, one line each, for a person to read.
    pub problems: Vec<String>,
    /// The daemon's version.
    pub version: String,
    /// The build id of the eBPF object the daemon loaded ([`steering::object_build_id`]).
    pub ebpf_build_id: String,
    /// Where the daemon listens.
    pub listeners: Listeners,
    /// The cgroups veil's programs are attached to, and whether they all still are.
    pub steered: Vec<SteeredCgroup>,
    /// The registered sandboxes.
    pub sandboxes: Vec<SandboxStatus>,
    /// The audit log.
    pub audit: AuditStatus,
    /// How many secrets are stored.
    pub secrets: usize,
    /// The newest refusals (kernel refusals and refused connections), oldest first.
    pub refusals: Vec<Record>,
}

/// Where the daemon listens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listeners {
    /// Where steered connects from veil's own network namespace arrive (IPv4, IPv6).
    pub proxy: Vec<SocketAddr>,
    /// The TCP control API, if there is one.
    pub api_tcp: Option<SocketAddr>,
    /// The proxy port veil listens on (loopback) inside each sandbox's own network namespace.
    pub sandbox_proxy_port: u16,
    /// The DNS port (UDP and TCP) veil listens on inside each sandbox's own namespace.
    pub sandbox_dns_port: u16,
}

/// A cgroup veil's programs are attached to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SteeredCgroup {
    /// The cgroup directory.
    pub cgroup: PathBuf,
    /// Its id (0 when it no longer exists).
    pub cgroup_id: u64,
    /// The attached sandbox it is; `None` for the sandbox parent, which `veil run`
    /// sandboxes are steered through.
    pub sandbox: Option<String>,
    /// Whether the cgroup still exists.
    pub exists: bool,
    /// The hooks whose programs are not attached to it.
    pub missing: Vec<MissingHook>,
}

/// A registered sandbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxStatus {
    /// Its name.
    pub name: String,
    /// Its cgroup.
    pub cgroup: PathBuf,
    /// The cgroup's id.
    pub cgroup_id: u64,
    /// Whether veil made it (`veil run`) rather than attached it.
    pub managed: bool,
    /// Its own network namespace, if it has one.
    pub netns: Option<PathBuf>,
    /// Whether veil serves that namespace (its listeners are open there); false without one.
    pub netns_served: bool,
    /// The container it is, when it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
}

/// The audit log's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditStatus {
    /// Why the log is failing (then veil refuses whatever must be audited); `None`: healthy.
    pub failure: Option<String>,
    /// The newest committed record's seq and hash.
    pub head: ChainHead,
}

/// Gathers the report from the running daemon.
pub fn report(daemon: &Daemon) -> Status {
    let sandboxes = daemon.sandboxes();
    let registered = sandboxes.list();
    let parent = sandboxes.parent().to_path_buf();
    let mut steered = vec![steered_cgroup(daemon, parent, None)];
    steered.extend(
        registered
            .iter()
            .filter(|s| !s.managed)
            .map(|s| steered_cgroup(daemon, s.cgroup.clone(), Some(s))),
    );
    let sandboxes: Vec<SandboxStatus> = registered
        .iter()
        .map(|s| SandboxStatus {
            name: s.name.clone(),
            cgroup: s.cgroup.clone(),
            cgroup_id: s.cgroup_id,
            managed: s.managed,
            netns: s.netns.clone(),
            container: s.container.clone(),
            netns_served: sandboxes.serves_netns(s.cgroup_id),
        })
        .collect();
    let audit = AuditStatus {
        failure: daemon.audit().failure(),
        head: daemon.audit().committed(),
    };
    let (refusals, refusals_error) =
        match daemon
            .audit_store()
            .newest_matching(RECENT_REFUSALS, REFUSAL_SCAN, is_refusal)
        {
            Ok(records) => (records, None),
            Err(e) => (Vec::new(), Some(format!("reading refusals: {e}"))),
        };
    let mut problems = problems(&steered, &sandboxes, &audit);
    problems.extend(refusals_error);
    Status {
        healthy: problems.is_empty(),
        problems,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        ebpf_build_id: steering::object_build_id().to_owned(),
        listeners: Listeners {
            proxy: daemon.listeners().to_vec(),
            api_tcp: daemon.api_addr(),
            sandbox_proxy_port: Ports::SANDBOX.proxy,
            sandbox_dns_port: Ports::SANDBOX.dns,
        },
        steered,
        sandboxes,
        audit,
        secrets: daemon.secrets().list().len(),
        refusals,
    }
}

/// The state of the steered cgroup `dir` (the sandbox parent when `sandbox` is `None`).
fn steered_cgroup(daemon: &Daemon, dir: PathBuf, sandbox: Option<&Sandbox>) -> SteeredCgroup {
    let current = cgroup::cgroup_id(&dir).ok();
    let cgroup_id = sandbox.map(|s| s.cgroup_id).or(current).unwrap_or(0);
    let exists = current.is_some_and(|id| id == cgroup_id);
    SteeredCgroup {
        missing: if exists {
            daemon.missing_hooks(cgroup_id)
        } else {
            Vec::new()
        },
        cgroup: dir,
        cgroup_id,
        sandbox: sandbox.map(|s| s.name.clone()),
        exists,
    }
}

/// Whether `record` is a refusal: the kernel's, or a connection veil refused.
fn is_refusal(record: &Record) -> bool {
    match &record.event {
        Event::KernelRefusal(_) => true,
        Event::Connection(c) => c.verdict == Verdict::Refused,
        _ => false,
    }
}

/// What is wrong, one line each: a failing audit log, a steered cgroup that is gone or
/// missing hooks, a sandbox whose own network namespace is not served.
pub fn problems(
    steered: &[SteeredCgroup],
    sandboxes: &[SandboxStatus],
    audit: &AuditStatus,
) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(failure) = &audit.failure {
        problems.push(format!(
            "the audit log is failing ({failure}): nothing that must be audited is done"
        ));
    }
    for cgroup in steered {
        let what = match &cgroup.sandbox {
            Some(name) => format!("sandbox {name}"),
            None => "the sandbox parent".to_owned(),
        };
        if !cgroup.exists {
            problems.push(format!(
                "cgroup {} ({what}) no longer exists",
                cgroup.cgroup.display()
            ));
        } else if !cgroup.missing.is_empty() {
            let hooks: Vec<String> = cgroup
                .missing
                .iter()
                .map(|m| format!("{} ({})", m.hook, m.problem))
                .collect();
            problems.push(format!(
                "cgroup {} ({what}, id {}) is not fully steered: missing hooks {}",
                cgroup.cgroup.display(),
                cgroup.cgroup_id,
                hooks.join(", ")
            ));
        }
    }
    for sandbox in sandboxes {
        if let (Some(netns), false) = (&sandbox.netns, sandbox.netns_served) {
            problems.push(format!(
                "sandbox {}: its network namespace {} is not served, so its connects are refused",
                sandbox.name,
                netns.display()
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cgroup(sandbox: Option<&str>, missing: &[&str]) -> SteeredCgroup {
        SteeredCgroup {
            cgroup: PathBuf::from("/sys/fs/cgroup/veil/box"),
            cgroup_id: 42,
            sandbox: sandbox.map(str::to_owned),
            exists: true,
            missing: missing
                .iter()
                .map(|hook| MissingHook {
                    hook: (*hook).to_owned(),
                    problem: "detached".to_owned(),
                })
                .collect(),
        }
    }

    fn healthy_audit() -> AuditStatus {
        AuditStatus {
            failure: None,
            head: ChainHead::default(),
        }
    }

    #[test]
    fn all_in_place_is_healthy() {
        let steered = [cgroup(None, &[]), cgroup(Some("box"), &[])];
        assert!(problems(&steered, &[], &healthy_audit()).is_empty());
    }

    #[test]
    fn missing_hook_names_cgroup_and_hook() {
        let steered = [cgroup(None, &[]), cgroup(Some("box"), &["connect4"])];
        let found = problems(&steered, &[], &healthy_audit());
        assert_eq!(
            found,
            [
                "cgroup /sys/fs/cgroup/veil/box (sandbox box, id 42) is not fully steered: \
              missing hooks connect4 (detached)"
            ]
        );
    }

    #[test]
    fn vanished_cgroup_is_a_problem() {
        let mut gone = cgroup(Some("box"), &[]);
        gone.exists = false;
        let found = problems(&[gone], &[], &healthy_audit());
        assert_eq!(found.len(), 1);
        assert!(found[0].contains("no longer exists"));
    }

    #[test]
    fn failing_audit_log_is_a_problem() {
        let audit = AuditStatus {
            failure: Some("disk full".to_owned()),
            head: ChainHead::default(),
        };
        let found = problems(&[], &[], &audit);
        assert_eq!(found.len(), 1);
        assert!(found[0].contains("disk full"));
    }

    #[test]
    fn unserved_namespace_is_a_problem() {
        let sandbox = |served| SandboxStatus {
            name: "box".to_owned(),
            cgroup: PathBuf::from("/sys/fs/cgroup/veil/box"),
            cgroup_id: 42,
            managed: true,
            netns: Some(PathBuf::from("/run/veil/netns/box")),
            netns_served: served,
            container: None,
        };
        assert!(problems(&[], &[sandbox(true)], &healthy_audit()).is_empty());
        let found = problems(&[], &[sandbox(false)], &healthy_audit());
        assert!(found[0].contains("not served"));
    }
}
