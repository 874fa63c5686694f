//! Containers are sandboxes: Podman through veil's hooks.d file and Docker through veil's
//! runtime wrapper, with real runtimes, a root filesystem made here, and the placeholders and
//! CA mounted in as the README says. The hook runs before the container's first instruction,
//! so the container's command itself is the first connect; a container veil cannot confine
//! does not start.

use std::{fs, os::unix::fs::PermissionsExt, process::Output};

use veil_tests::{
    containers::{rootfs, sandbox_args, Docker, Podman},
    eventually,
    git::{GitServer, ASKPASS},
    tls_env::{policy, Env, HOST},
    REMOTE_A,
};

const PLACEHOLDER: &str = "IRONSH_PROXY_github-main";

fn token() -> String {
    veil_testkit::random_token("ghp_").expect("randomness")
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A shell command line running curl to `host` with the token's placeholder as a bearer
/// token.
fn curl(env: &Env, host: &str, path: &str) -> String {
    format!(
        "curl -sS --max-time 20 --resolve {} -H \"Authorization: Bearer $GITHUB_TOKEN\" {}",
        env.resolve(host),
        env.url(host, path)
    )
}

/// `sh -c SCRIPT` as a container command.
fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn sandboxes(env: &Env) -> Vec<serde_json::Value> {
    let (status, body) = env.veil.api("GET", "/v1/sandboxes", None);
    assert_eq!(status, 200);
    body.as_array().expect("a list").clone()
}

fn with_annotation(env: &Env, name: &str) -> Vec<String> {
    let mut args = vec!["--annotation".to_owned(), format!("veil.sandbox={name}")];
    args.extend(sandbox_args(&env.veil));
    args
}

#[test]
fn a_podman_container_sends_the_real_secret_from_its_first_instruction() {
    let env = Env::new(&policy(&[HOST, "other.example.test"]));
    let secret = token();
    env.veil
        .create_secret("github-main", &secret, "GITHUB_TOKEN", &[HOST]);
    let root = rootfs(env.veil.dir());
    let mut podman = Podman::new(&env.veil);
    let args = with_annotation(&env, "agent-1");
    // The container's command is curl itself: its first instruction leads to the connect.
    let command = sh(&format!(
        "test \"$GITHUB_TOKEN\" = {PLACEHOLDER} && {}",
        curl(&env, HOST, "/first")
    ));
    let out = podman.run("veil-first", &args, &root, &strs(&command));
    assert!(out.status.success(), "{}", text(&out));
    let seen = env.upstream.seen();
    let first = seen
        .iter()
        .find(|s| s.path == "/first")
        .expect("upstream saw /first");
    assert_eq!(
        first.header("authorization"),
        Some(format!("Bearer {secret}").as_str())
    );

    // Out of scope: the placeholder goes as it is.
    let command = sh(&curl(&env, "other.example.test", "/other"));
    let out = podman.run("veil-other", &args, &root, &strs(&command));
    assert!(out.status.success(), "{}", text(&out));
    let seen = env.upstream.seen();
    let other = seen
        .iter()
        .find(|s| s.path == "/other")
        .expect("upstream saw /other");
    assert_eq!(
        other.header("authorization"),
        Some(format!("Bearer {PLACEHOLDER}").as_str())
    );

    // The audit log names the container; the sandbox is gone once the container stopped.
    let records = env.veil.audit();
    let attached: Vec<_> = records
        .iter()
        .filter(|r| r["kind"] == "sandbox_attached" && r["name"] == "agent-1")
        .collect();
    assert_eq!(attached.len(), 2, "{records:?}");
    assert_eq!(attached[0]["container"]["name"], "veil-first");
    assert_eq!(attached[0]["container"]["runtime"], "podman");
    assert_eq!(
        attached[0]["container"]["id"].as_str().map(str::len),
        Some(64)
    );
    assert!(records
        .iter()
        .any(|r| r["kind"] == "secret_injected" && r["sandbox"] == "agent-1"));
    assert!(records
        .iter()
        .any(|r| r["kind"] == "sandbox_detached" && r["name"] == "agent-1"));
    assert!(sandboxes(&env).is_empty(), "{:?}", sandboxes(&env));
}

#[test]
fn git_in_a_podman_container_clones_with_the_token() {
    let env = Env::new(&policy(&["git.example.test"]));
    let secret = token();
    env.veil.create_secret(
        "github-main",
        &secret,
        "GITHUB_TOKEN",
        &["git.example.test"],
    );
    let server = GitServer::start(&env, &secret);
    let root = rootfs(env.veil.dir());
    let mut podman = Podman::new(&env.veil);
    let askpass = root.join("work/askpass.sh");
    fs::write(&askpass, ASKPASS).expect("askpass");
    fs::set_permissions(&askpass, fs::Permissions::from_mode(0o755)).expect("chmod");
    let command = sh(&format!(
        "GIT_ASKPASS=/work/askpass.sh GIT_TERMINAL_PROMPT=0 HOME=/tmp git -c http.curloptResolve=git.example.test:{port}:{REMOTE_A} \
         clone -q https://git.example.test:{port}/private.git /tmp/clone && cat /tmp/clone/README",
        port = server.port
    ));
    let out = podman.run(
        "veil-git",
        &with_annotation(&env, "git-box"),
        &root,
        &strs(&command),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "private contents\n");
}

#[test]
fn a_podman_container_is_confined_like_a_veil_run_sandbox() {
    let env = Env::new(&policy(&[HOST]));
    env.veil
        .create_secret("github-main", &token(), "GITHUB_TOKEN", &[HOST]);
    let root = rootfs(env.veil.dir());
    let mut podman = Podman::new(&env.veil);
    let script = format!(
        r#"import socket, subprocess, urllib.request
def attempt(what, fn):
    try:
        fn(); print(what, "ok")
    except OSError as e:
        print(what, "refused", e.errno)
def through_veil(family, addr):
    s = socket.socket(family); s.settimeout(5); s.connect(addr)
    s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
    return s.recv(100).split(b"\r\n")[0].decode()
def tcp6():
    print("tcp6", through_veil(socket.AF_INET6, ("fd7e:5ee1::2", 443)))
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"x", ("{REMOTE_A}", 9999))
def raw():
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
def denied():
    print("denied", through_veil(socket.AF_INET, ("10.250.0.99", 443)))
attempt("tcp6", tcp6)
attempt("udp", udp)
attempt("raw", raw)
attempt("denied", denied)
srv = socket.socket(); srv.bind(("127.0.0.1", 8080)); srv.listen(1)
c = socket.create_connection(("127.0.0.1", 8080), timeout=3); a, _ = srv.accept(); a.sendall(b"sidecar")
print("loopback", c.recv(10).decode())
"#
    );
    let out = podman.run(
        "veil-confined",
        &with_annotation(&env, "confined"),
        &root,
        &["python3", "-c", &script],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", text(&out));
    // Destinations outside the policy get veil's 403, over IPv4 and IPv6 alike.
    for line in [
        "tcp6 HTTP/1.0 403 Forbidden",
        "denied HTTP/1.0 403 Forbidden",
        "udp refused",
        "raw refused",
    ] {
        assert!(stdout.contains(line), "{line}: {}", text(&out));
    }
    assert!(stdout.contains("loopback sidecar"), "{}", text(&out));
    let records = env.veil.audit();
    assert!(
        records
            .iter()
            .any(|r| r["kind"] == "kernel_refusal" && r["sandbox"] == "confined"),
        "{records:?}"
    );
}

#[test]
fn a_container_veil_cannot_confine_does_not_start() {
    let mut env = Env::new(&policy(&[HOST]));
    let root = rootfs(env.veil.dir());
    let mut podman = Podman::new(&env.veil);
    let marker = "touch /work/ran";
    let ran = root.join("work/ran");
    let mut base = with_annotation(&env, "refused");
    base.extend([
        "-v".to_owned(),
        format!("{}:/work", root.join("work").display()),
    ]);

    let mut raw = base.clone();
    raw.extend(["--cap-add".to_owned(), "NET_RAW".to_owned()]);
    let out = podman.run("veil-netraw", &raw, &root, &["sh", "-c", marker]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("CAP_NET_RAW"), "{}", text(&out));

    let mut host = base.clone();
    host.extend(["--network".to_owned(), "host".to_owned()]);
    let out = podman.run("veil-hostnet", &host, &root, &["sh", "-c", marker]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("host's network namespace"),
        "{}",
        text(&out)
    );

    // A running container's connects fail while veil is down, and no new one starts.
    let out = podman.start("veil-running", &base, &root, &["sleep", "300"]);
    assert!(out.status.success(), "{}", text(&out));
    env.veil.stop_daemon(libc::SIGTERM);
    let out = podman.exec("veil-running", &["sh", "-c", &curl(&env, HOST, "/down")]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(!env.upstream.seen().iter().any(|s| s.path == "/down"));
    podman.remove("veil-running");
    let out = podman.run("veil-nodaemon", &base, &root, &["sh", "-c", marker]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("daemon is not running"),
        "{}",
        text(&out)
    );
    assert!(!ran.exists(), "a refused container ran its command");
}

#[test]
fn a_running_container_is_attached_and_detached_by_name() {
    let env = Env::new(&policy(&[HOST]));
    let secret = token();
    env.veil
        .create_secret("github-main", &secret, "GITHUB_TOKEN", &[HOST]);
    let root = rootfs(env.veil.dir());
    let mut podman = Podman::new(&env.veil);
    // No annotation: the hook leaves it alone until `veil attach --container`.
    let name = format!("veil-attach-{}", env.veil.id());
    let out = podman.start(&name, &sandbox_args(&env.veil), &root, &["sleep", "300"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = env.veil.run_veil(&["attach", "--container", &name]);
    assert!(out.status.success(), "{}", text(&out));
    let list = sandboxes(&env);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["container"]["name"], name.as_str());
    let out = podman.exec(&name, &["sh", "-c", &curl(&env, HOST, "/attached")]);
    assert!(out.status.success(), "{}", text(&out));
    let seen = env.upstream.seen();
    let request = seen
        .iter()
        .find(|s| s.path == "/attached")
        .expect("upstream saw it");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {secret}").as_str())
    );
    let out = env.veil.run_veil(&["detach", "--container", &name]);
    assert!(out.status.success(), "{}", text(&out));
    eventually("the sandbox is gone", || sandboxes(&env).is_empty());
    let out = env
        .veil
        .run_veil(&["attach", "--container", "no-such-container"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no running container"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_docker_container_run_with_the_veil_runtime_is_a_sandbox() {
    let env = Env::new(&policy(&[HOST]));
    let secret = token();
    env.veil
        .create_secret("github-main", &secret, "GITHUB_TOKEN", &[HOST]);
    let root = rootfs(env.veil.dir());
    let docker = Docker::start(&env.veil, &root);
    let script = format!(
        "grep CapBnd /proc/self/status; {}",
        curl(&env, HOST, "/docker")
    );
    let out = docker
        .command()
        .args([
            "run",
            "--rm",
            "--runtime",
            "veil",
            "--network",
            "none",
            "--name",
            "veil-docker",
        ])
        .args(veil_tests::containers::ULIMITS)
        .args(sandbox_args(&env.veil))
        .args(["veil-test-root:latest", "sh", "-c", &script])
        .output()
        .expect("docker run");
    assert!(out.status.success(), "{}\n{}", text(&out), docker.log());
    // Docker grants CAP_NET_RAW (bit 13) by default; the wrapper took it away.
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let mask = stdout
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .expect("CapBnd");
    assert_eq!(mask & (1 << 13), 0, "{stdout}");
    let seen = env.upstream.seen();
    let request = seen
        .iter()
        .find(|s| s.path == "/docker")
        .expect("upstream saw it");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {secret}").as_str())
    );
    let records = env.veil.audit();
    let attached = records
        .iter()
        .find(|r| r["kind"] == "sandbox_attached")
        .expect("an attach record");
    assert_eq!(attached["name"], "veil-docker");
    assert_eq!(attached["container"]["runtime"], "docker");
    assert_eq!(attached["container"]["image"], "veil-test-root:latest");
    eventually("the sandbox is gone", || sandboxes(&env).is_empty());
}
