//! `veil status` against a real daemon: healthy with an attached cgroup and a sandbox in a
//! namespace of its own, unhealthy (naming the cgroup and the hook) once one of the cgroup's
//! links is detached behind veil's back, and unreachable without a daemon.

use std::{
    os::fd::{FromRawFd, OwnedFd},
    process::{Command, Output, Stdio},
};

use veil_tests::{eventually, spawn_in_cgroup, Instance, NetNs};

const CLIENT: &str = env!("CARGO_BIN_EXE_veil-test-client");

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn status_json(veil: &Instance) -> (Output, serde_json::Value) {
    let out = veil.run_veil(&["status", "--json"]);
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    (out, json)
}

/// Detaches the bpf link with id `id` from its hook, as `bpftool link detach id ID` does.
fn detach_link(id: u32) {
    const BPF_LINK_GET_FD_BY_ID: libc::c_long = 30;
    const BPF_LINK_DETACH: libc::c_long = 34;
    // union bpf_attr: link_id, next_id, open_flags for GET_FD_BY_ID; link_fd for DETACH.
    let mut attr = [id, 0u32, 0u32];
    // SAFETY: attr is a valid bpf_attr prefix for BPF_LINK_GET_FD_BY_ID and outlives the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_LINK_GET_FD_BY_ID,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    assert!(
        fd >= 0,
        "opening link {id}: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    let link = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut attr = [fd as u32];
    // SAFETY: attr is a valid bpf_attr prefix for BPF_LINK_DETACH; `link` keeps the fd open.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_LINK_DETACH,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    assert_eq!(
        rc,
        0,
        "detaching link {id}: {}",
        std::io::Error::last_os_error()
    );
    drop(link);
}

#[test]
fn status_is_healthy_then_names_a_hook_detached_behind_veils_back() {
    let mut veil = Instance::new();
    veil.start_daemon(&[]);
    veil.create_secret("status-token", "s3cr3t-value", "STATUS_TOKEN", &["*"]);
    let agent = veil.make_cgroup("agent");
    let agent_arg = agent.display().to_string();
    let out = veil.run_veil(&["attach", &agent_arg, "--name", "agent"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ns = NetNs::new(&format!("{}-ns", veil.id()));
    let ctr = veil.make_cgroup("ctr");
    let ctr_arg = ctr.display().to_string();
    let out = veil.run_veil(&["attach", &ctr_arg, "--name", "ctr", "--netns", &ns.path()]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // A connect the policy denies (nothing allows 10.250.0.9), for the refusals.
    let _ = spawn_in_cgroup(
        &agent,
        Command::new(CLIENT)
            .args(["echo", "10.250.0.9:9", "denied"])
            .stdout(Stdio::null()),
    )
    .wait();
    eventually("the refusal in the status report", || {
        status_json(&veil).1["refusals"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    });

    let (out, json) = status_json(&veil);
    assert_eq!(out.status.code(), Some(0), "{json:#}");
    assert_eq!(json["healthy"], true, "{json:#}");
    assert_eq!(json["daemon_reachable"], true);
    assert_eq!(json["problems"], serde_json::json!([]));
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    let build_id = json["ebpf_build_id"].as_str().expect("a build id");
    assert_eq!(build_id.len(), 16, "{build_id}");
    let version = veil.run_veil(&["--version"]);
    assert_eq!(
        text(&version.stdout).trim(),
        format!(
            "veil {} (eBPF object {build_id})",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(
        json["listeners"]["proxy"][0],
        veil.listen().to_string(),
        "{json:#}"
    );
    assert_eq!(json["listeners"]["sandbox_proxy_port"], 1000);
    assert_eq!(json["secrets"], 1);
    assert!(!json.to_string().contains("s3cr3t-value"));
    let steered = json["steered"].as_array().expect("steered cgroups");
    assert_eq!(steered.len(), 3, "the parent and two attached: {json:#}");
    assert!(steered
        .iter()
        .all(|c| c["exists"] == true && c["missing"].as_array().is_some_and(Vec::is_empty)));
    assert!(steered
        .iter()
        .any(|c| c["cgroup"] == agent_arg.as_str() && c["sandbox"] == "agent"));
    let sandboxes = json["sandboxes"].as_array().expect("sandboxes");
    assert_eq!(sandboxes.len(), 2, "{json:#}");
    let ctr_status = sandboxes
        .iter()
        .find(|s| s["name"] == "ctr")
        .expect("sandbox ctr");
    assert_eq!(ctr_status["netns_served"], true, "{json:#}");
    assert!(ctr_status["netns"].is_string());
    assert!(json["audit"]["failure"].is_null());
    assert!(json["audit"]["head"]["seq"].as_u64().is_some_and(|s| s > 0));
    assert_eq!(
        json["audit"]["head"]["hash"].as_str().map(str::len),
        Some(64)
    );
    let refusal = &json["refusals"][0];
    assert_eq!(refusal["kind"], "connection", "{json:#}");
    assert_eq!(refusal["verdict"], "refused");
    assert_eq!(refusal["sandbox"], "agent");

    let out = veil.run_veil(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains(": healthy\n"), "{shown}");
    assert!(
        shown.contains(&format!("{agent_arg} (sandbox agent")),
        "{shown}"
    );

    // Detach agent's connect4 link the way `bpftool link detach` does: the pin stays.
    let connect4 = veil.link_ids(&agent)[0];
    detach_link(connect4);

    let (out, json) = status_json(&veil);
    assert_eq!(out.status.code(), Some(1), "{json:#}");
    assert_eq!(json["healthy"], false);
    let problems = json["problems"].to_string();
    assert!(
        problems.contains(&agent_arg) && problems.contains("connect4 (detached)"),
        "{problems}"
    );
    let out = veil.run_veil(&["status"]);
    assert_eq!(out.status.code(), Some(1));
    let shown = text(&out.stdout);
    assert!(shown.contains("UNHEALTHY"), "{shown}");
    assert!(
        shown.contains(&format!("{agent_arg} (sandbox agent"))
            && shown.contains("MISSING connect4 (detached)"),
        "{shown}"
    );

    for dir in [&agent_arg, &ctr_arg] {
        let out = veil.run_veil(&["detach", dir]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let (out, json) = status_json(&veil);
    assert_eq!(out.status.code(), Some(0), "{json:#}");
}

#[test]
fn status_without_a_daemon_says_none_answers() {
    let veil = Instance::new();
    let out = veil.run_veil(&["status"]);
    assert_eq!(out.status.code(), Some(2));
    let said = text(&out.stderr);
    assert!(said.contains("no veil daemon answers"), "{said}");

    let (out, json) = status_json(&veil);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json["healthy"], false);
    assert_eq!(json["daemon_reachable"], false);
    assert!(json["problems"][0]
        .as_str()
        .is_some_and(|p| p.contains("no veil daemon answers")));
}
