//! `veil run`: exit codes, privilege dropping, and cleanup, with and without a daemon.

use std::{fs, os::unix::fs::PermissionsExt};

use veil_tests::{EchoServers, Instance, REMOTE_A};

const CLIENT: &str = env!("CARGO_BIN_EXE_veil-test-client");

fn sandboxes_left(veil: &Instance) -> Vec<String> {
    fs::read_dir(veil.cgroup_parent())
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn returns_the_exit_code_and_removes_the_cgroup_with_a_daemon() {
    let mut veil = Instance::new();
    veil.start_daemon(&[]);
    let out = veil.run_veil(&["run", "--sandbox", "code", "--", "sh", "-c", "exit 7"]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = veil.run_veil(&["run", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.status.code(), Some(128 + 15));
    assert_eq!(sandboxes_left(&veil), Vec::<String>::new());
    // A background process left behind by CMD does not keep the sandbox alive.
    let out = veil.run_veil(&["run", "--", "sh", "-c", "sleep 600 & exit 0"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(sandboxes_left(&veil), Vec::<String>::new());
    let kinds: Vec<String> = veil
        .audit()
        .iter()
        .map(|r| r["kind"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "sandbox_attached").count(), 3);
    assert_eq!(kinds.iter().filter(|k| *k == "sandbox_detached").count(), 3);
}

#[test]
fn works_without_a_daemon_and_drops_privileges() {
    let veil = Instance::new();
    let server = EchoServers::start(&[REMOTE_A], 1);
    let dst = server.addrs[0].to_string();
    let out = veil.run_veil(&[
        "run",
        "--sandbox",
        "solo",
        "--user",
        "nobody",
        "--",
        "sh",
        "-c",
        &format!("id -u; {CLIENT} echo {dst} solo"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("65534\n"),
        "CMD must run as nobody: {stdout}"
    );
    assert!(stdout.contains(&format!("{dst} solo")));
    assert_eq!(sandboxes_left(&veil), Vec::<String>::new());
    // The in-process daemon flushed its audit log before exiting.
    let conns = veil.connections();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0]["uid"], 65534);
    assert_eq!(conns[0]["sandbox"], "solo");
}

#[test]
fn says_plainly_what_is_wrong() {
    let mut veil = Instance::new();
    let out = veil.run_veil(&["run", "--sandbox", "bad/name", "--", "true"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid sandbox name"));
    let out = veil.run_veil(&["run", "--user", "no-such-user-here", "--", "true"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such user"));
    let out = veil.run_veil(&["attach", "/tmp"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("veil serve"),
        "attach without a daemon"
    );
    veil.start_daemon(&[]);
    let out = veil.run_veil(&["attach", "/tmp"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a cgroup v2 directory"));
    let out = veil.run_veil(&["run", "--", "/nonexistent/cmd"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/cmd"));
    assert_eq!(sandboxes_left(&veil), Vec::<String>::new());
}

#[test]
fn directories_are_root_only_and_others_are_refused() {
    let veil = Instance::new();
    let run_dir = veil.dir().join("run");
    let state_dir = veil.dir().join("state");
    // Left too open by someone: veil makes them its own again.
    for dir in [&run_dir, &state_dir] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let out = veil.run_veil(&["run", "--", "true"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for dir in [&run_dir, &state_dir] {
        let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700, "{}", dir.display());
    }
    let lock = std::fs::metadata(run_dir.join("veil.lock")).unwrap();
    assert_eq!(lock.permissions().mode() & 0o777, 0o600);
    // Owned by another user: refused, and nothing is started.
    std::os::unix::fs::chown(&state_dir, Some(65534), Some(65534)).unwrap();
    let out = veil.run_veil(&["run", "--", "true"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("owned by uid 65534"),
        "the error says why: {stderr}"
    );
    std::os::unix::fs::chown(&state_dir, Some(0), Some(0)).unwrap();
    assert_eq!(sandboxes_left(&veil), Vec::<String>::new());
}
