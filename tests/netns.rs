//! A sandbox is its own network namespace: what a hostile workload inside cannot reach or
//! spoil (the host's loopback and abstract Unix sockets, another sandbox's records), what
//! cannot reach it, and veil serving namespaces it did not make (`veil attach --netns`),
//! refusing those it does not serve, and finding its sandboxes again after a restart.

use std::{
    fs,
    io::{BufRead, BufReader},
    net::TcpListener,
    os::{
        linux::net::SocketAddrExt,
        unix::{
            fs::PermissionsExt,
            net::{SocketAddr as UnixAddr, UnixListener},
        },
    },
    path::Path,
    process::{Command, Stdio},
    thread,
    time::Duration,
};

use veil_testkit::remote::remote_ip;
use veil_tests::{probe, spawn_in_cgroup, EchoServers, Instance, NetNs};

fn policy_for(servers: &EchoServers) -> String {
    let rules: Vec<String> = servers
        .addrs
        .iter()
        .map(|a| format!("\"{}/32\"", a.ip()))
        .collect();
    format!("[egress]\nallow = [{}]\n", rules.join(", "))
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn records_are_kept_per_namespace() {
    let servers = EchoServers::start(&[&remote_ip(21).to_string(), &remote_ip(22).to_string()], 1);
    let mut veil = Instance::new();
    veil.set_policy(&policy_for(&servers));
    veil.start_daemon(&[]);
    // Two sandboxes connect from the same client address (127.0.0.1:40123, each in its own
    // namespace) at the same time, again and again: each must always reach its own server.
    let children: Vec<_> = servers
        .addrs
        .iter()
        .enumerate()
        .map(|(i, addr)| {
            let (ip, port) = (addr.ip().to_string(), addr.port().to_string());
            let probe = probe::shell(&["tcp", &ip, &port, "mine", "--source-port", "40123"]);
            let script = format!("for i in $(seq 25); do {probe}; done");
            veil.veil()
                .args(["run", "--sandbox", &format!("same-port-{i}"), "--"])
                .args(["sh", "-c", &script])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("veil run")
        })
        .collect();
    for (child, addr) in children.into_iter().zip(&servers.addrs) {
        let out = child.wait_with_output().expect("veil run ends");
        let reports = probe::reports(&out);
        assert_eq!(reports.len(), 25, "{}", stderr(&out));
        for report in reports {
            assert_eq!(report["reply"], format!("{addr} mine"), "{report}");
        }
    }
}

#[test]
fn the_host_and_the_sandbox_cannot_reach_each_other() {
    let mut veil = Instance::new();
    veil.start_daemon(&[]);
    // Host services on loopback and on an abstract Unix socket.
    let host_tcp = TcpListener::bind("127.0.0.1:0").expect("a host listener");
    let host_port = host_tcp.local_addr().expect("addr").port().to_string();
    let abstract_name = format!("{}-host-service", veil.id());
    let _host_unix = UnixListener::bind_addr(
        &UnixAddr::from_abstract_name(abstract_name.as_bytes()).expect("an abstract name"),
    )
    .expect("an abstract listener");
    let report = probe::in_sandbox(&veil, &[], &["tcp", "127.0.0.1", &host_port, "x"]);
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["errno"], "ECONNREFUSED", "{report}");
    let report = probe::in_sandbox(&veil, &[], &["abstract", &abstract_name]);
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["errno"], "ECONNREFUSED", "{report}");
    host_tcp.set_nonblocking(true).expect("nonblocking");
    assert!(host_tcp.accept().is_err(), "the host listener was reached");

    // A server the workload starts on its own loopback serves the workload itself...
    let serve = "import socket,sys\n\
                 s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
                 s.bind(('0.0.0.0', int(sys.argv[1]))); s.listen(8)\n\
                 print('ready', flush=True)\n\
                 while True:\n    c,_=s.accept(); c.sendall(b'inside\\n'); c.close()\n";
    let port = veil_testkit::free_port(std::net::Ipv4Addr::LOCALHOST).expect("a port");
    let own = probe::shell(&["tcp", "127.0.0.1", &port.to_string(), "x"]);
    let script =
        format!("python3 -c \"$1\" {port} & sleep 0.5; {own}; echo waiting; sleep 3; kill $!");
    let mut child = veil
        .veil()
        .args(["run", "--", "sh", "-c", &script, "sh", serve])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("veil run");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("a line");
        let done = line == "waiting";
        seen.push(line);
        if done {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("\"reply\": \"inside\"")),
        "the workload's own loopback server: {seen:?}"
    );
    // ...and nothing outside the namespace reaches it, the host included.
    let from_host = std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], port).into(),
        Duration::from_secs(2),
    );
    assert!(from_host.is_err(), "the host reached the sandbox's server");
    let out = child.wait_with_output().expect("veil run ends");
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn veil_serves_the_namespaces_it_is_given_and_refuses_others() {
    let servers = EchoServers::start(&[&remote_ip(23).to_string()], 1);
    let (ip, port) = (
        servers.addrs[0].ip().to_string(),
        servers.addrs[0].port().to_string(),
    );
    let mut veil = Instance::new();
    veil.set_policy(&policy_for(&servers));
    veil.start_daemon(&[]);
    let ns = NetNs::new(&format!("{}-ns", veil.id()));
    let dir = veil.make_cgroup("ctr");
    let dir_arg = dir.display().to_string();
    let probe_in_ns = || {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns.name(), "python3"])
            .args(probe::command_line(&["tcp", &ip, &port, "ns"]))
            .stdout(Stdio::piped());
        let out = spawn_in_cgroup(&dir, &mut cmd)
            .wait_with_output()
            .expect("the probe ran");
        probe::reports(&out).remove(0)
    };

    // Attached without --netns, veil serves the cgroup in its own namespace only: a process
    // of the cgroup in another namespace has its connects refused, not sent direct.
    let out = veil.run_veil(&["attach", &dir_arg, "--name", "plain"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = probe_in_ns();
    assert_eq!(report["errno"], "ECONNREFUSED", "{report}");
    let refusals: Vec<_> = veil
        .audit()
        .into_iter()
        .filter(|r| r["kind"] == "kernel_refusal" && r["sandbox"] == "plain")
        .collect();
    assert!(
        refusals.iter().any(|r| r["reason"]
            .as_str()
            .unwrap_or("")
            .contains("does not serve")),
        "{refusals:?}"
    );
    assert!(veil.run_veil(&["detach", &dir_arg]).status.success());

    // Bad namespaces are refused plainly and leave nothing behind.
    for (bad, says) in [
        ("/etc/hostname", "is not a network namespace"),
        ("/proc/self/ns/uts", "is not a network namespace"),
        ("/nonexistent/netns", "No such file"),
    ] {
        let out = veil.run_veil(&["attach", &dir_arg, "--name", "bad", "--netns", bad]);
        assert!(!out.status.success());
        assert!(stderr(&out).contains(says), "{bad}: {}", stderr(&out));
    }
    let kept = veil.run_dir().join("netns");
    let left = || fs::read_dir(&kept).map(Iterator::count).unwrap_or(0);
    assert_eq!(left(), 0, "namespace mounts left behind");

    // Attached with the namespace, veil listens inside it and steers the cgroup there.
    let out = veil.run_veil(&["attach", &dir_arg, "--name", "ctr", "--netns", &ns.path()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = probe_in_ns();
    assert_eq!(
        report["reply"],
        format!("{} ns", servers.addrs[0]),
        "{report}"
    );
    let conns = veil.connections();
    assert_eq!(conns.last().expect("a record")["sandbox"], "ctr");
    assert!(veil.run_veil(&["detach", &dir_arg]).status.success());
    assert_eq!(left(), 0, "the namespace mount outlived the sandbox");
}

#[test]
fn a_sandbox_outlives_a_veil_restart_and_fails_closed_meanwhile() {
    let servers = EchoServers::start(&[&remote_ip(24).to_string()], 1);
    let (ip, port) = (
        servers.addrs[0].ip().to_string(),
        servers.addrs[0].port().to_string(),
    );
    let mut veil = Instance::new();
    veil.set_policy(&policy_for(&servers));
    veil.start_daemon(&[]);
    // The workload and the test take turns through files in its working directory.
    let work = tempfile::tempdir().expect("a work dir");
    fs::set_permissions(work.path(), fs::Permissions::from_mode(0o777)).expect("chmod");
    let probe = probe::shell(&["tcp", &ip, &port, "again"]);
    let wait = |file: &str| format!("while [ ! -e {file} ]; do sleep 0.05; done");
    let script = format!(
        "{probe}; touch first; {}; {probe}; touch second; {}; {probe}",
        wait("down"),
        wait("up")
    );
    let child = veil
        .veil()
        .args(["run", "--sandbox", "lives", "--", "sh", "-c", &script])
        .current_dir(work.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("veil run");
    let until = |file: &str| {
        let path = work.path().join(file);
        veil_tests::eventually(file, || path.exists());
    };
    until("first");
    veil.stop_daemon(libc::SIGTERM);
    touch(work.path(), "down");
    until("second");
    veil.start_daemon(&[]);
    touch(work.path(), "up");
    let out = child.wait_with_output().expect("veil run ends");
    assert!(out.status.success(), "{}", stderr(&out));
    let reports = probe::reports(&out);
    assert_eq!(reports.len(), 3, "{reports:?}");
    let want = format!("{} again", servers.addrs[0]);
    assert_eq!(reports[0]["reply"], want, "before: {}", reports[0]);
    assert_eq!(
        reports[1]["errno"], "ECONNREFUSED",
        "while down: {}",
        reports[1]
    );
    assert_eq!(reports[2]["reply"], want, "after: {}", reports[2]);
    let kept = veil.run_dir().join("netns");
    assert_eq!(fs::read_dir(&kept).map(Iterator::count).unwrap_or(0), 0);
}

fn touch(dir: &Path, name: &str) {
    fs::write(dir.join(name), b"").expect("a marker file");
    thread::sleep(Duration::from_millis(10));
}

#[test]
fn veil_run_joins_the_sandbox_from_another_mount_namespace() {
    let mut veil = Instance::new();
    veil.start_daemon(&[]);
    // In a private mount namespace the daemon's bind mount of a new sandbox's namespace never
    // appears; veil run reaches it through the daemon's own view of the filesystem.
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--"])
        .arg(veil_tests::veil_bin())
        .args(["run", "--", "sh", "-c", "echo inside"])
        .envs(veil.env_vars())
        .output()
        .expect("unshare runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "inside\n");
}
