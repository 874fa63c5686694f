//! Steering through veil, for real: BPF programs on real cgroups, real processes in them,
//! real servers on stand-in remote hosts as the destinations.

use std::process::Command;

use veil_tests::{eventually, spawn_in_cgroup, EchoServers, Instance, REMOTE_A, REMOTE_B};

const CLIENT: &str = env!("CARGO_BIN_EXE_veil-test-client");

#[test]
fn sandboxed_client_is_steered_relayed_and_audited() {
    let mut veil = Instance::new();
    veil.start_daemon(&["--bpf-log", "debug"]);
    let server = EchoServers::start(&[REMOTE_A], 1);
    let dst = server.addrs[0].to_string();

    let out = veil.run_veil(&[
        "run",
        // The record carries the host pid, which only a workload outside a PID namespace sees.
        "--no-isolation",
        "--sandbox",
        "web",
        "--",
        CLIENT,
        "echo",
        &dst,
        "hello",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout.lines();
    let pid: u64 = lines
        .next()
        .and_then(|l| l.strip_prefix("pid "))
        .and_then(|p| p.parse().ok())
        .expect("pid line");
    assert_eq!(
        lines.next(),
        Some(format!("{dst} hello").as_str()),
        "reached the wrong destination"
    );

    let conns = veil.wait_connections(1);
    assert_eq!(conns.len(), 1, "one connection record: {conns:?}");
    let rec = &conns[0];
    assert_eq!(rec["destination"], dst);
    assert_eq!(rec["sandbox"], "web");
    assert_eq!(rec["pid"], pid);
    assert_eq!(
        rec["comm"], "veil-test-clien",
        "comm is truncated to 15 bytes by the kernel"
    );
    assert_eq!(rec["verdict"], "allowed");
    assert_eq!(rec["protocol"], "tcp");
    eventually("the eBPF log record in veil's log", || {
        veil.daemon_log()
            .contains(&format!("steer pid {pid} to {dst}"))
    });

    // The same client outside any sandbox goes direct: it works and veil sees nothing.
    let direct = Command::new(CLIENT)
        .args(["echo", &dst, "direct"])
        .output()
        .expect("client runs");
    assert!(direct.status.success());
    assert!(String::from_utf8_lossy(&direct.stdout).contains(&format!("{dst} direct")));
    // Records are written in order: once a later sandboxed connect is on record, a record
    // for the direct one would be too.
    let marker = veil.run_veil(&["run", "--", CLIENT, "echo", &dst, "marker"]);
    assert!(marker.status.success());
    let conns = veil.wait_connections(2);
    assert_eq!(
        conns.len(),
        2,
        "an unsandboxed process was steered: {conns:?}"
    );
    assert_eq!(server.accepted(), 3);
}

#[test]
fn concurrent_connects_each_reach_their_own_destination_and_leave_no_map_entries() {
    let mut veil = Instance::new();
    veil.start_daemon(&[]);
    let servers = EchoServers::start(&[REMOTE_A, REMOTE_B], 10);

    let out = veil.run_veil(&[
        "run",
        "--sandbox",
        "many",
        "--",
        CLIENT,
        "many",
        "500",
        &servers.addr_list(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "ok 500");
    assert_eq!(servers.accepted(), 500);

    let conns = veil.wait_connections(500);
    assert_eq!(conns.len(), 500);
    assert!(conns
        .iter()
        .all(|c| c["verdict"] == "allowed" && c["sandbox"] == "many"));
    // The kernel's records are gone once the sockets are: taken by veil, or cleaned up
    // by cookie at sock_release.
    eventually("empty connection maps", || veil.map_entries() == (0, 0));
}

#[test]
fn a_killed_daemon_fails_closed_and_a_restart_resumes_without_reattaching() {
    let mut veil = Instance::new();
    veil.start_daemon(&[]);
    let server = EchoServers::start(&[REMOTE_A], 1);
    let dst = server.addrs[0].to_string();
    let cgroup = veil.make_cgroup("agent");
    let attach = veil.run_veil(&[
        "attach",
        cgroup.to_str().expect("utf-8 path"),
        "--name",
        "agent",
    ]);
    assert!(
        attach.status.success(),
        "{}",
        String::from_utf8_lossy(&attach.stderr)
    );
    let links_before = veil.link_ids(&cgroup);

    let client = |token: &str| {
        spawn_in_cgroup(
            &cgroup,
            Command::new(CLIENT)
                .args(["echo", &dst, token])
                .stdout(std::process::Stdio::piped()),
        )
        .wait_with_output()
        .expect("client ran")
    };
    let ok = client("before");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );

    // The connection's audit record is written off the data path: let it land before the kill.
    veil.wait_connections(1);
    veil.stop_daemon(libc::SIGKILL);
    let refused = client("while-dead");
    assert_eq!(
        refused.status.code(),
        Some(3),
        "connect must fail: {}",
        String::from_utf8_lossy(&refused.stdout)
    );
    assert_eq!(
        server.accepted(),
        1,
        "the server must see nothing while veil is down"
    );

    veil.start_daemon(&[]);
    assert_eq!(
        veil.link_ids(&cgroup),
        links_before,
        "restart must reuse the pinned links"
    );
    let again = client("after");
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    assert!(String::from_utf8_lossy(&again.stdout).contains(&format!("{dst} after")));
    let conns = veil.wait_connections(2);
    assert_eq!(conns.len(), 2);
    assert!(conns.iter().all(|c| c["sandbox"] == "agent"));

    let detach = veil.run_veil(&["detach", cgroup.to_str().expect("utf-8 path")]);
    assert!(
        detach.status.success(),
        "{}",
        String::from_utf8_lossy(&detach.stderr)
    );
    let direct = client("detached");
    assert!(direct.status.success());
    let marker = veil.run_veil(&["run", "--", CLIENT, "echo", &dst, "marker"]);
    assert!(marker.status.success());
    let conns = veil.wait_connections(3);
    assert_eq!(
        conns.len(),
        3,
        "a detached cgroup is no longer steered: {conns:?}"
    );
    assert_ne!(conns[2]["sandbox"], "agent");
}

#[test]
fn connects_to_veils_own_listener_are_refused() {
    let mut veil = Instance::new();
    veil.start_daemon(&[]);
    let listener = veil.listen().to_string();
    // A cgroup attached without a namespace shares veil's: its loopback is steered, and a
    // loop through veil is refused.
    let cgroup = veil.make_cgroup("loop");
    let attach = veil.run_veil(&["attach", cgroup.to_str().expect("utf-8 path")]);
    assert!(
        attach.status.success(),
        "{}",
        String::from_utf8_lossy(&attach.stderr)
    );
    let out = spawn_in_cgroup(
        &cgroup,
        Command::new(CLIENT)
            .args(["echo", &listener, "loop"])
            .stdout(std::process::Stdio::piped()),
    )
    .wait_with_output()
    .expect("client ran");
    assert_eq!(
        out.status.code(),
        Some(4),
        "a loop through veil must not be relayed"
    );
    let conns = veil.wait_connections(1);
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0]["verdict"], "refused");
    assert!(
        conns[0]["reason"].as_str().unwrap_or("").contains("loop"),
        "{conns:?}"
    );

    // A `veil run` sandbox has a loopback of its own, where veil's listener is not.
    let out = veil.run_veil(&["run", "--", CLIENT, "echo", &listener, "loop"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "the sandbox's own loopback: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Records are written in order: once a later steered connect is on record, one for the
    // sandbox's loopback connect would be too.
    let server = EchoServers::start(&[REMOTE_A], 1);
    let marker = veil.run_veil(&[
        "run",
        "--",
        CLIENT,
        "echo",
        &server.addrs[0].to_string(),
        "marker",
    ]);
    assert!(marker.status.success());
    let conns = veil.wait_connections(2);
    assert_eq!(
        conns.len(),
        2,
        "the sandbox's loopback was steered: {conns:?}"
    );
}

#[test]
fn reset_undoes_steering_and_removes_sandboxes_but_keeps_the_audit_log() {
    let mut veil = Instance::new();
    veil.start_daemon(&[]);
    let server = EchoServers::start(&[REMOTE_A], 1);
    let dst = server.addrs[0].to_string();
    let cgroup = veil.make_cgroup("container");
    let attach = veil.run_veil(&["attach", cgroup.to_str().expect("utf-8 path")]);
    assert!(
        attach.status.success(),
        "{}",
        String::from_utf8_lossy(&attach.stderr)
    );

    let busy = veil.run_veil(&["reset"]);
    assert!(!busy.status.success());
    assert!(String::from_utf8_lossy(&busy.stderr).contains("stop it first"));

    veil.stop_daemon(libc::SIGTERM);
    let refused = spawn_in_cgroup(
        &cgroup,
        Command::new(CLIENT)
            .args(["echo", &dst, "down"])
            .stdout(std::process::Stdio::piped()),
    )
    .wait_with_output()
    .expect("client ran");
    assert_eq!(
        refused.status.code(),
        Some(3),
        "fail closed while veil is down"
    );

    let reset = veil.run_veil(&["reset"]);
    assert!(
        reset.status.success(),
        "{}",
        String::from_utf8_lossy(&reset.stderr)
    );
    let said = String::from_utf8_lossy(&reset.stdout);
    assert!(
        said.contains(&format!(
            "forgot 1 sandbox(es): {}",
            cgroup.file_name().expect("a name").to_string_lossy()
        )),
        "{said}"
    );
    assert!(!veil.bpf_dir().exists());
    assert!(!veil.cgroup_parent().exists());
    let direct = spawn_in_cgroup(
        &cgroup,
        Command::new(CLIENT)
            .args(["echo", &dst, "direct"])
            .stdout(std::process::Stdio::piped()),
    )
    .wait_with_output()
    .expect("client ran");
    assert!(
        direct.status.success(),
        "after a reset the cgroup connects directly"
    );
    let kinds: Vec<String> = veil
        .audit()
        .iter()
        .map(|r| r["kind"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(kinds.last().map(String::as_str), Some("sandbox_detached"));
}
