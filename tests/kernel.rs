//! Every way around veil, closed in the kernel: each test runs a real program (the Python
//! probe) in a real sandbox and asserts both what the program saw and what the audit log says.

use std::{
    process::Command,
    sync::atomic::{AtomicUsize, Ordering},
};

use serde_json::{json, Value};
use veil_ebpf::SANDBOX_PROXY_PORT;
use veil_testkit::remote::REMOTE_NET;
use veil_tests::{
    eventually, probe, spawn_in_cgroup, tls_env::policy, udp::UdpEcho, EchoServers, Instance,
    REMOTE_A, REMOTE_V6,
};

/// A fresh installation whose policy allows every stand-in remote host, IPv4 and IPv6.
/// What these tests run their sandboxed probes with when they match audit records to the
/// probe's pid: the records carry host pids, and only a workload outside a PID namespace sees
/// its own. The kernel's steering is the same either way; `tests/isolation.rs` covers
/// isolation, and the nested-cgroup test needs a writable cgroup tree, which isolation denies.
const HOST_PIDS: &str = "--no-isolation";

fn instance() -> Instance {
    let veil = Instance::new();
    veil.set_policy(&policy(&[REMOTE_NET, &format!("[{REMOTE_V6}/128]")]));
    veil
}

/// An address of its own for each resolver a test starts, on a stand-in remote host
/// (`10.250.X.N`, X from 53 on, never a [`REMOTE_A`]), so tests running in parallel (and twice
/// in a row) never share one.
fn resolver_addr() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    format!("10.250.{}.{}:53", 53 + std::process::id() % 200, n)
}

/// Makes a cgroup of `veil`'s and attaches it as sandbox `name` with `args` (no network
/// namespace: it shares veil's, where loopback is steered too).
fn attached(veil: &mut Instance, name: &str, args: &[&str]) -> std::path::PathBuf {
    let cgroup = veil.make_cgroup(name);
    let dir = cgroup.to_str().expect("utf-8").to_owned();
    let attach = veil.run_veil(&[&["attach", dir.as_str(), "--name", name], args].concat());
    assert!(
        attach.status.success(),
        "{}",
        String::from_utf8_lossy(&attach.stderr)
    );
    cgroup
}

fn assert_refused(report: &Value, stage: &str, errno: &str) {
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["stage"], stage, "{report}");
    assert_eq!(report["errno"], errno, "{report}");
}

#[test]
fn a_v4_mapped_connect_is_steered_like_ipv4() {
    let mut veil = instance();
    veil.start_daemon(&[]);
    let server = EchoServers::start(&[REMOTE_A], 1);
    let dst = server.addrs[0];

    let report = probe::in_sandbox(
        &veil,
        &[HOST_PIDS, "--sandbox", "java"],
        &[
            "tcp",
            REMOTE_A,
            &dst.port().to_string(),
            "mapped",
            "--v4-mapped",
        ],
    );
    assert_eq!(report["reply"], format!("{dst} mapped"), "{report}");
    assert_eq!(
        report["peer"],
        json!([format!("::ffff:{REMOTE_A}"), dst.port()])
    );

    let rec = veil.record_of("connection", &report["pid"]);
    assert_eq!(rec["destination"], dst.to_string(), "recorded as IPv4");
    assert_eq!(rec["sandbox"], "java");
    assert_eq!(rec["verdict"], "allowed");
    assert_eq!(rec["comm"], "python3");
    assert_eq!(server.accepted(), 1);
}

#[test]
fn native_ipv6_is_steered_to_veils_ipv6_listener() {
    let mut veil = instance();
    veil.start_daemon(&[]);
    let server = EchoServers::start(&[REMOTE_V6], 1);
    let dst = server.addrs[0];

    let report = probe::in_sandbox(
        &veil,
        &[HOST_PIDS, "--sandbox", "six"],
        &["tcp", REMOTE_V6, &dst.port().to_string(), "six"],
    );
    assert_eq!(report["reply"], format!("{dst} six"), "{report}");
    assert_eq!(report["peer"], json!([REMOTE_V6, dst.port()]));

    let rec = veil.record_of("connection", &report["pid"]);
    assert_eq!(rec["destination"], dst.to_string());
    assert_eq!(rec["sandbox"], "six");
    assert_eq!(rec["verdict"], "allowed");
    assert!(
        rec["client"].as_str().unwrap_or("").starts_with("[::1]:"),
        "arrived on the IPv6 listener: {rec}"
    );
}

#[test]
fn native_ipv6_can_be_denied_per_sandbox() {
    let mut veil = instance();
    veil.start_daemon(&[]);
    let six = EchoServers::start(&[REMOTE_V6], 1);
    let four = EchoServers::start(&[REMOTE_A], 1);
    let port6 = six.addrs[0].port().to_string();
    let port4 = four.addrs[0].port().to_string();

    let script = [
        probe::shell(&["tcp", REMOTE_V6, &port6, "denied"]),
        probe::shell(&["tcp", REMOTE_A, &port4, "mapped", "--v4-mapped"]),
    ]
    .join("; ");
    let out = veil.run_veil(&[
        "run",
        HOST_PIDS,
        "--sandbox",
        "no6",
        "--ipv6",
        "deny",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let reports = probe::reports(&out);
    assert_refused(&reports[0], "connect", "ECONNREFUSED");
    assert_eq!(six.accepted(), 0);
    assert_eq!(
        reports[1]["reply"],
        format!("{} mapped", four.addrs[0]),
        "v4-mapped is IPv4 and still steered: {}",
        reports[1]
    );

    let rec = veil.record_of("kernel_refusal", &reports[0]["pid"]);
    assert_eq!(rec["destination"], six.addrs[0].to_string());
    assert_eq!(rec["sandbox"], "no6");
    assert_eq!(rec["protocol"], "tcp");
    assert!(
        rec["reason"].as_str().unwrap_or("").contains("IPv6"),
        "{rec}"
    );
    // Another sandbox of the same installation still gets IPv6 steered.
    let other = probe::in_sandbox(&veil, &[HOST_PIDS], &["tcp", REMOTE_V6, &port6, "ok"]);
    assert_eq!(other["ok"], true, "{other}");
}

#[test]
fn udp_other_than_dns_is_refused_in_the_kernel() {
    let mut veil = instance();
    veil.start_daemon(&[]);
    let quic = UdpEcho::start(&format!("{REMOTE_A}:0"));
    let port = quic.addr.port().to_string();

    let script = [
        probe::shell(&["udp", REMOTE_A, &port]),
        probe::shell(&["udp", REMOTE_A, &port, "--connect"]),
        probe::shell(&["udp", REMOTE_V6, "443"]),
    ]
    .join("; ");
    let out = veil.run_veil(&[
        "run",
        HOST_PIDS,
        "--sandbox",
        "quic",
        "--user",
        "nobody",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let reports = probe::reports(&out);
    assert_refused(&reports[0], "send", "ECONNREFUSED");
    assert_refused(&reports[1], "connect", "ECONNREFUSED");
    assert_refused(&reports[2], "send", "ECONNREFUSED");
    assert_eq!(quic.received(), 0, "nothing may leave");

    let sendto = veil.record_of("kernel_refusal", &reports[0]["pid"]);
    assert_eq!(sendto["destination"], quic.addr.to_string());
    assert_eq!(sendto["protocol"], "udp");
    assert_eq!(sendto["sandbox"], "quic");
    assert_eq!(sendto["uid"], 65534);
    assert!(
        sendto["reason"]
            .as_str()
            .unwrap_or("")
            .contains("port other than 53"),
        "{sendto}"
    );
    let connect = veil.record_of("kernel_refusal", &reports[1]["pid"]);
    assert_eq!(connect["destination"], quic.addr.to_string());
    let six = veil.record_of("kernel_refusal", &reports[2]["pid"]);
    assert_eq!(six["destination"], format!("[{REMOTE_V6}]:443"));
}

#[test]
fn dns_reaches_only_the_sandboxs_resolvers_and_sandboxes_differ() {
    let allowed = UdpEcho::start(&resolver_addr());
    let other = UdpEcho::start(&resolver_addr());
    let (allowed_ip, other_ip) = (allowed.addr.ip().to_string(), other.addr.ip().to_string());
    let mut veil = instance();
    // The installation's default resolvers (instead of the host's /etc/resolv.conf).
    veil.set_env("VEIL_DNS_RESOLVERS", &allowed_ip);
    veil.start_daemon(&[]);
    // Resolvers are the kernel's rule in veil's own namespace (a cgroup attached without one);
    // in a `veil run` sandbox's namespace all DNS goes to veil's DNS proxy instead.
    let dns = attached(&mut veil, "dns", &[]);
    let script = [
        probe::shell(&["udp", &allowed_ip, "53"]),
        probe::shell(&["udp", &allowed_ip, "53", "--connect"]),
        probe::shell(&["udp", &other_ip, "53"]),
        probe::shell(&["udp", &allowed_ip, "5353"]),
    ]
    .join("; ");
    let reports = probe::script_in_cgroup(&dns, &script);
    assert_eq!(reports[0]["reply"], format!("{} query", allowed.addr));
    assert_eq!(reports[1]["reply"], format!("{} query", allowed.addr));
    assert_refused(&reports[2], "send", "ECONNREFUSED");
    assert_refused(&reports[3], "send", "ECONNREFUSED");
    assert_eq!((allowed.received(), other.received()), (2, 0));

    let rec = veil.record_of("kernel_refusal", &reports[2]["pid"]);
    assert_eq!(rec["destination"], other.addr.to_string());
    assert_eq!(rec["sandbox"], "dns");
    assert!(
        rec["reason"]
            .as_str()
            .unwrap_or("")
            .contains("resolver the sandbox is not allowed"),
        "{rec}"
    );
    veil.record_of("kernel_refusal", &reports[3]["pid"]);

    // A sandbox with resolvers of its own: the other server, and not the default one.
    let own = attached(&mut veil, "own-dns", &["--dns-resolvers", &other_ip]);
    let script = [
        probe::shell(&["udp", &other_ip, "53"]),
        probe::shell(&["udp", &allowed_ip, "53"]),
    ]
    .join("; ");
    let reports = probe::script_in_cgroup(&own, &script);
    assert_eq!(reports[0]["reply"], format!("{} query", other.addr));
    assert_refused(&reports[1], "send", "ECONNREFUSED");
    assert_eq!((allowed.received(), other.received()), (2, 1));
    let rec = veil.record_of("kernel_refusal", &reports[1]["pid"]);
    assert_eq!(rec["sandbox"], "own-dns");
}

#[test]
fn raw_and_other_non_tcp_udp_sockets_are_refused_even_for_root() {
    let mut veil = instance();
    veil.start_daemon(&[]);
    // An attached cgroup: its root processes keep CAP_NET_RAW, so veil's hook is what says no.
    let cgroup = attached(&mut veil, "raw", &[]);

    for (args, protocol) in [
        (["socket", "inet", "raw", "icmp"], "raw (icmp)"),
        (["socket", "inet6", "raw", "icmpv6"], "raw (icmpv6)"),
        (["socket", "inet", "stream", "mptcp"], "mptcp"),
        (["socket", "inet", "dgram", "udplite"], "udplite"),
    ] {
        let report = probe::in_cgroup(&cgroup, &args);
        assert_refused(&report, "socket", "EPERM");
        let rec = veil.record_of("kernel_refusal", &report["pid"]);
        assert_eq!(rec["protocol"], protocol);
        assert_eq!(rec["sandbox"], "raw");
        assert_eq!(rec["uid"], 0);
        assert_eq!(rec["destination"], Value::Null);
        assert!(
            rec["reason"]
                .as_str()
                .unwrap_or("")
                .contains("only TCP and UDP"),
            "{rec}"
        );
    }

    // ICMP datagram ("ping") sockets, which unprivileged users may have where
    // net.ipv4.ping_group_range allows it: allowed in a network namespace of the probe's own.
    let ping = format!(
        "echo 0 2147483647 > /proc/sys/net/ipv4/ping_group_range && {}",
        probe::shell(&["socket", "inet", "dgram", "icmp"])
    );
    let out = spawn_in_cgroup(
        &cgroup,
        Command::new("unshare")
            .args(["--net", "sh", "-c", &ping])
            .stdout(std::process::Stdio::piped()),
    )
    .wait_with_output()
    .expect("the probe ran");
    let report = probe::reports(&out).remove(0);
    assert_refused(&report, "socket", "EPERM");
    let rec = veil.record_of("kernel_refusal", &report["pid"]);
    assert_eq!(rec["protocol"], "icmp");

    // TCP and UDP sockets are fine.
    let tcp = probe::in_cgroup(&cgroup, &["socket", "inet6", "stream", "tcp"]);
    assert_eq!(tcp["ok"], true, "{tcp}");

    // `veil run` takes CAP_NET_RAW from root too: packet sockets, which never reach veil's
    // hook, are refused by the kernel's capability check.
    let script = [
        probe::shell(&["socket", "packet", "raw", "0"]),
        probe::shell(&["socket", "inet", "raw", "icmp"]),
    ]
    .join("; ");
    let out = veil.run_veil(&["run", "--sandbox", "pkt", "--", "sh", "-c", &script]);
    let reports = probe::reports(&out);
    assert_refused(&reports[0], "socket", "EPERM");
    assert_refused(&reports[1], "socket", "EPERM");
}

#[test]
fn cgroups_made_inside_a_sandbox_are_steered_and_named_for_it() {
    let mut veil = instance();
    veil.start_daemon(&[]);
    let server = EchoServers::start(&[REMOTE_A], 1);
    let port = server.addrs[0].port().to_string();

    let script = [
        probe::shell(&["--nest", "inner", "tcp", REMOTE_A, &port, "nested"]),
        probe::shell(&["--nest", "inner2", "udp", REMOTE_A, "9"]),
    ]
    .join("; ");
    let out = veil.run_veil(&[
        "run",
        HOST_PIDS,
        "--sandbox",
        "outer",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let reports = probe::reports(&out);
    assert_eq!(
        reports[0]["reply"],
        format!("{} nested", server.addrs[0]),
        "{}",
        reports[0]
    );
    assert_refused(&reports[1], "send", "ECONNREFUSED");

    let sandbox = veil.cgroup_parent().join("outer");
    assert_eq!(
        reports[0]["cgroup"],
        sandbox.join("inner").to_str().expect("utf-8"),
        "the probe ran in a cgroup of its own"
    );
    let attached = veil.wait_records("sandbox_attached", 1);
    let conn = veil.record_of("connection", &reports[0]["pid"]);
    assert_eq!(conn["sandbox"], "outer");
    assert_ne!(
        conn["cgroup_id"], attached[0]["cgroup_id"],
        "the nested cgroup's id"
    );
    let refusal = veil.record_of("kernel_refusal", &reports[1]["pid"]);
    assert_eq!(refusal["sandbox"], "outer");
    assert_ne!(refusal["cgroup_id"], attached[0]["cgroup_id"]);
    assert!(
        !sandbox.exists(),
        "veil run removed the sandbox and what was made in it"
    );
}

#[test]
fn connects_straight_to_veils_listeners_go_through_veil_and_are_refused() {
    let mut veil = instance();
    veil.set_policy(&policy(&["127.0.0.1/32"]));
    veil.start_daemon(&[]);
    // In veil's own namespace (a cgroup attached without one) loopback is steered too: a
    // local service on 127.0.0.1, like one of the host's own ports, and veil's listeners.
    let cgroup = attached(&mut veil, "loops", &[]);
    let local = EchoServers::start(&["127.0.0.1"], 1);
    let (port4, port6) = (
        veil.listen().port().to_string(),
        veil.listen6().port().to_string(),
    );

    let script = [
        probe::shell(&["tcp", "127.0.0.1", &port4, "loop"]),
        probe::shell(&["tcp", "::1", &port6, "loop6"]),
        probe::shell(&["tcp", "0.0.0.0", &port4, "any"]),
        probe::shell(&[
            "tcp",
            "127.0.0.1",
            &local.addrs[0].port().to_string(),
            "local",
        ]),
    ]
    .join("; ");
    let reports = probe::script_in_cgroup(&cgroup, &script);
    for (report, dst) in reports[..3].iter().zip([
        veil.listen().to_string(),
        veil.listen6().to_string(),
        format!("0.0.0.0:{port4}"),
    ]) {
        assert_eq!(report["ok"], false, "nothing came back: {report}");
        let rec = veil.record_of("connection", &report["pid"]);
        assert_eq!(rec["destination"], dst);
        assert_eq!(rec["verdict"], "refused");
        assert!(
            rec["reason"].as_str().unwrap_or("").contains("loop"),
            "{rec}"
        );
    }
    assert_eq!(reports[3]["reply"], format!("{} local", local.addrs[0]));
    let rec = veil.record_of("connection", &reports[3]["pid"]);
    assert_eq!(rec["verdict"], "allowed");

    // A `veil run` sandbox's loopback is its own: veil's listeners in its namespace are there,
    // but a connect straight to one has no kernel record and gets nothing.
    let port = SANDBOX_PROXY_PORT.to_string();
    let script = [
        probe::shell(&["tcp", "127.0.0.1", &port, "inside"]),
        probe::shell(&["tcp", "::1", &port, "inside6"]),
    ]
    .join("; ");
    let out = veil.run_veil(&["run", "--sandbox", "inside", "--", "sh", "-c", &script]);
    for report in probe::reports(&out) {
        assert_eq!(report["ok"], false, "nothing came back: {report}");
    }
}

#[test]
fn a_non_blocking_connect_is_steered() {
    let mut veil = instance();
    veil.start_daemon(&[]);
    let server = EchoServers::start(&[REMOTE_A], 1);
    let dst = server.addrs[0];
    let report = probe::in_sandbox(
        &veil,
        &[HOST_PIDS],
        &["tcp", REMOTE_A, &dst.port().to_string(), "nb", "--nonblock"],
    );
    assert_eq!(report["reply"], format!("{dst} nb"), "{report}");
    let rec = veil.record_of("connection", &report["pid"]);
    assert_eq!(rec["destination"], dst.to_string());
    assert_eq!(rec["verdict"], "allowed");
}

#[test]
fn tcp_fast_open_without_connect_is_steered() {
    let mut veil = instance();
    veil.start_daemon(&[]);
    let server = EchoServers::start(&[REMOTE_A], 1);
    let dst = server.addrs[0];
    // sendto(MSG_FASTOPEN) on an unconnected socket connects implicitly; connect4 runs for it.
    let report = probe::in_sandbox(
        &veil,
        &[HOST_PIDS],
        &[
            "tcp",
            REMOTE_A,
            &dst.port().to_string(),
            "tfo",
            "--fastopen",
        ],
    );
    assert_eq!(report["reply"], format!("{dst} tfo"), "{report}");
    let rec = veil.record_of("connection", &report["pid"]);
    assert_eq!(rec["destination"], dst.to_string());
    assert_eq!(rec["verdict"], "allowed");
}

#[test]
fn the_workload_sees_its_original_destination_as_the_peer() {
    let mut veil = instance();
    veil.start_daemon(&[]);
    let four = EchoServers::start(&[REMOTE_A], 1);
    let six = EchoServers::start(&[REMOTE_V6], 1);
    let (p4, p6) = (four.addrs[0].port(), six.addrs[0].port());
    let script = [
        probe::shell(&["tcp", REMOTE_A, &p4.to_string(), "a"]),
        probe::shell(&["tcp", REMOTE_V6, &p6.to_string(), "b"]),
        probe::shell(&["tcp", REMOTE_A, &p4.to_string(), "c", "--v4-mapped"]),
    ]
    .join("; ");
    let out = veil.run_veil(&["run", "--", "sh", "-c", &script]);
    let reports = probe::reports(&out);
    assert_eq!(
        reports[0]["peer"],
        json!([REMOTE_A, p4]),
        "not veil's listener"
    );
    assert_eq!(reports[1]["peer"], json!([REMOTE_V6, p6]));
    assert_eq!(
        reports[2]["peer"],
        json!([format!("::ffff:{REMOTE_A}"), p4])
    );
    assert!(reports.iter().all(|r| r["ok"] == true), "{reports:?}");
}

#[test]
fn a_full_refusal_ring_drops_records_but_counts_them() {
    const SENDS: u64 = 6000;
    let mut veil = instance();
    veil.start_daemon(&[]);
    let cgroup = attached(&mut veil, "flood", &[]);

    // With the daemon stopped nothing drains the ring, which holds fewer than SENDS records.
    veil.signal_daemon(libc::SIGSTOP);
    let report = probe::in_cgroup(
        &cgroup,
        &["udp", REMOTE_A, "9", "--count", &SENDS.to_string()],
    );
    veil.signal_daemon(libc::SIGCONT);
    assert_eq!(report["refused"], SENDS, "{report}");

    let dropped = veil.wait_records("kernel_refusals_dropped", 1);
    let dropped_total: u64 = dropped
        .iter()
        .map(|r| r["dropped"].as_u64().expect("a count"))
        .sum();
    assert!(dropped_total > 0, "{dropped:?}");
    // What the ring kept is summed into a few records with counts.
    let mut refusals = Vec::new();
    eventually("every refusal counted", || {
        refusals = veil.wait_records("kernel_refusal", 1);
        let counted: u64 = refusals
            .iter()
            .map(|r| r["count"].as_u64().unwrap_or(1))
            .sum();
        counted + dropped_total == SENDS
    });
    assert!(refusals.len() < 10, "{refusals:?}");
    assert!(refusals.iter().all(|r| r["pid"] == report["pid"]));
    assert_eq!(dropped.last().expect("a record")["total"], dropped_total);
}

#[test]
fn settings_and_refusals_outlive_the_daemon_and_leave_with_the_sandbox() {
    let resolver = UdpEcho::start(&resolver_addr());
    let resolver_ip = resolver.addr.ip().to_string();
    let mut veil = instance();
    veil.start_daemon(&[]);
    let cgroup = attached(&mut veil, "agent", &["--dns-resolvers", &resolver_ip]);
    let id = veil.wait_records("sandbox_attached", 1)[0]["cgroup_id"].clone();
    assert_eq!(veil.settings_keys(), vec![0, id.as_u64().expect("an id")]);

    // While veil is down its settings still hold in the kernel, and refusals wait in the ring.
    veil.stop_daemon(libc::SIGKILL);
    let dns = probe::in_cgroup(&cgroup, &["udp", &resolver_ip, "53"]);
    assert_eq!(dns["reply"], format!("{} query", resolver.addr), "{dns}");
    let refused = probe::in_cgroup(&cgroup, &["udp", REMOTE_A, "9"]);
    assert_refused(&refused, "send", "ECONNREFUSED");

    veil.start_daemon(&[]);
    let rec = veil.record_of("kernel_refusal", &refused["pid"]);
    assert_eq!(rec["sandbox"], "agent");
    let dns = probe::in_cgroup(&cgroup, &["udp", &resolver_ip, "53"]);
    assert_eq!(dns["ok"], true, "{dns}");

    let detach = veil.run_veil(&["detach", cgroup.to_str().expect("utf-8")]);
    assert!(
        detach.status.success(),
        "{}",
        String::from_utf8_lossy(&detach.stderr)
    );
    assert_eq!(veil.settings_keys(), vec![0], "only the defaults are left");
}

#[test]
fn without_an_ipv6_listener_native_ipv6_is_refused() {
    let mut veil = instance();
    // ::2 is no address of this host: veil cannot listen there and carries on without IPv6.
    let listen6 = format!("[::2]:{}", veil.listen6().port());
    veil.start_daemon(&["--listen6", &listen6]);
    // Steered to veil's listeners in its own namespace: a cgroup attached without one.
    let cgroup = attached(&mut veil, "no-listener", &[]);
    let six = EchoServers::start(&[REMOTE_V6], 1);
    let four = EchoServers::start(&[REMOTE_A], 1);

    let report = probe::in_cgroup(
        &cgroup,
        &["tcp", REMOTE_V6, &six.addrs[0].port().to_string(), "x"],
    );
    assert_refused(&report, "connect", "ECONNREFUSED");
    assert_eq!(six.accepted(), 0);
    let rec = veil.record_of("kernel_refusal", &report["pid"]);
    assert!(
        rec["reason"].as_str().unwrap_or("").contains("no listener"),
        "{rec}"
    );
    assert!(veil.daemon_log().contains("no IPv6 listener"));

    let mapped = probe::in_cgroup(
        &cgroup,
        &[
            "tcp",
            REMOTE_A,
            &four.addrs[0].port().to_string(),
            "m",
            "--v4-mapped",
        ],
    );
    assert_eq!(mapped["ok"], true, "{mapped}");
}
