//! Secrets, end to end: the control API and CLI against a real daemon, restarts and crashes,
//! what reaches the disk and the logs, and what a sandboxed workload gets and cannot get.

use std::{
    collections::BTreeSet,
    fs,
    io::{BufRead, BufReader, Write},
    net::TcpListener,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread,
};

use serde_json::{json, Value};
use veil_tests::{api_request, eventually, Instance, REMOTE_A};

/// `veil secrets create NAME --env-var VAR ARGS` with `value` on standard input.
fn create(veil: &Instance, name: &str, var: &str, value: &str, args: &[&str]) -> Value {
    let out = with_stdin(
        veil.veil()
            .args(["secrets", "create", name, "--env-var", var, "--json"])
            .args(args),
        value,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("create --json prints JSON")
}

fn with_stdin(cmd: &mut Command, input: &str) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("veil starts");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input.as_bytes())
        .expect("writing stdin");
    child.wait_with_output().expect("veil finishes")
}

/// Runs `sh -c SCRIPT` in a sandbox and returns its standard output.
fn in_sandbox(veil: &Instance, extra: &[&str], script: &str) -> String {
    let out = veil
        .veil()
        .arg("run")
        .args(extra)
        .args(["--", "sh", "-c", script])
        .output()
        .expect("veil run");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn body(name: &str, env_var: &str, secret: &str) -> String {
    json!({"name": name, "env_var": env_var, "secret": secret}).to_string()
}

fn ids(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|s| s["id"].as_str().expect("an id").to_owned())
        .collect()
}

#[test]
fn every_endpoint_and_every_refusal() {
    let mut veil = Instance::new();
    veil.start_daemon(&[]);
    let value = "ghp_endpoint_value_9f3a";

    let (status, created) = veil.api(
        "POST",
        "/v1/secrets",
        Some(
            &json!({"name": "github-main", "secret": value, "env_var": "GITHUB_TOKEN",
                    "hosts": ["api.github.com", "*.githubusercontent.com"]})
            .to_string(),
        ),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("sec_") && id.len() == 20, "{id}");
    assert_eq!(created["name"], "github-main");
    assert_eq!(created["env_var"], "GITHUB_TOKEN");
    assert_eq!(created["proxy_value"], "IRONSH_PROXY_github-main");
    assert_eq!(
        created["hosts"],
        json!(["api.github.com", "*.githubusercontent.com"])
    );
    assert_eq!(created["inject_query"], false);
    assert_eq!(created["created_at"], created["updated_at"]);
    let keys: BTreeSet<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "id",
            "name",
            "env_var",
            "hosts",
            "proxy_value",
            "created_at",
            "updated_at",
            "inject_query",
            "slots",
            "methods",
            "paths"
        ])
    );

    let (status, defaulted) = veil.api(
        "POST",
        "/v1/secrets",
        Some(&body("npm", "NPM_TOKEN", "npm_v")),
    );
    assert_eq!(status, 201);
    assert_eq!(defaulted["hosts"], json!(["*"]));

    let (status, list) = veil.api("GET", "/v1/secrets", None);
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (status, one) = veil.api("GET", &format!("/v1/secrets/{id}"), None);
    assert_eq!((status, &one), (200, &created));

    let (status, rotated) = veil.api(
        "PATCH",
        &format!("/v1/secrets/{id}"),
        Some(
            &json!({"secret": "ghp_rotated_value_77c1", "hosts": ["github.com"],
                     "inject_query": true})
            .to_string(),
        ),
    );
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["proxy_value"], created["proxy_value"]);
    assert_eq!(rotated["created_at"], created["created_at"]);
    assert_eq!(rotated["hosts"], json!(["github.com"]));
    assert_eq!(rotated["inject_query"], true);
    let (status, moved) = veil.api(
        "PATCH",
        &format!("/v1/secrets/{id}"),
        Some(r#"{"env_var":"GH_TOKEN"}"#),
    );
    assert_eq!((status, &moved["env_var"]), (200, &json!("GH_TOKEN")));

    // Bad input: 400 naming the field, 404, 405, 409; none of it writes anything.
    let bad_creates = [
        ("{", "body"),
        ("[]", "body"),
        (
            r#"{"name":"x","secret":"v","env_var":"X","colour":"red"}"#,
            "body",
        ),
        (r#"{"secret":"v","env_var":"X"}"#, "name"),
        (r#"{"name":"has space","secret":"v","env_var":"X"}"#, "name"),
        (
            &format!(
                r#"{{"name":"{}","secret":"v","env_var":"X"}}"#,
                "n".repeat(65)
            ),
            "name",
        ),
        (r#"{"name":"x","env_var":"X"}"#, "secret"),
        (r#"{"name":"x","secret":"","env_var":"X"}"#, "secret"),
        (
            r#"{"name":"x","secret":"a\r\nInjected: yes","env_var":"X"}"#,
            "secret",
        ),
        (r#"{"name":"x","secret":"a\nb","env_var":"X"}"#, "secret"),
        (
            r#"{"name":"x","secret":"a\u0000b","env_var":"X"}"#,
            "secret",
        ),
        (
            r#"{"name":"x","secret":"a\u0007b","env_var":"X"}"#,
            "secret",
        ),
        (r#"{"name":"x","secret":"a\tb","env_var":"X"}"#, "secret"),
        (
            &format!(
                r#"{{"name":"x","secret":"{}","env_var":"X"}}"#,
                "v".repeat(8193)
            ),
            "secret",
        ),
        (r#"{"name":"x","secret":"v"}"#, "env_var"),
        (r#"{"name":"x","secret":"v","env_var":"9X"}"#, "env_var"),
        (r#"{"name":"x","secret":"v","env_var":"A-B"}"#, "env_var"),
        (
            r#"{"name":"x","secret":"v","env_var":"X","hosts":["a.*.com"]}"#,
            "hosts",
        ),
        (
            r#"{"name":"x","secret":"v","env_var":"X","hosts":[]}"#,
            "hosts",
        ),
        (
            r#"{"name":"x","secret":"v","env_var":"X","hosts":"*"}"#,
            "hosts",
        ),
        (
            r#"{"name":"x","secret":"v","env_var":"X","inject_query":"yes"}"#,
            "inject_query",
        ),
    ];
    for (request, field) in bad_creates {
        let (status, error) = veil.api("POST", "/v1/secrets", Some(request));
        assert_eq!(status, 400, "{request}: {error}");
        assert_eq!(error["field"], field, "{request}: {error}");
        assert!(
            error["error"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{field}:")),
            "{error}"
        );
    }
    let (status, _) = veil.api(
        "POST",
        "/v1/secrets",
        Some(&body("x", "X", &"v".repeat(8192))),
    );
    assert_eq!(status, 201, "8192 bytes is allowed");
    let (status, taken) = veil.api("POST", "/v1/secrets", Some(&body("npm", "OTHER", "v")));
    assert_eq!((status, &taken["field"]), (409, &json!("name")), "{taken}");
    let (status, taken) = veil.api(
        "POST",
        "/v1/secrets",
        Some(&body("other", "NPM_TOKEN", "v")),
    );
    assert_eq!(
        (status, &taken["field"]),
        (409, &json!("env_var")),
        "{taken}"
    );
    let patch = |body: &str| veil.api("PATCH", &format!("/v1/secrets/{id}"), Some(body));
    let (status, error) = patch(r#"{"name":"renamed"}"#);
    assert_eq!((status, &error["field"]), (400, &json!("name")));
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("cannot be changed"),
        "{error}"
    );
    for (request, field) in [
        ("{}", "body"),
        ("{", "body"),
        (r#"{"proxy_value":"IRONSH_PROXY_other"}"#, "body"),
        (r#"{"secret":"a\rb"}"#, "secret"),
        (r#"{"env_var":"NPM_TOKEN"}"#, "env_var"),
        (r#"{"hosts":["*.*"]}"#, "hosts"),
    ] {
        let (status, error) = patch(request);
        assert!(matches!(status, 400 | 409), "{request}: {status} {error}");
        assert_eq!(error["field"], field, "{request}: {error}");
    }
    for (method, path) in [
        ("GET", "/v1/secrets/sec_0000000000000000"),
        ("DELETE", "/v1/secrets/sec_0000000000000000"),
        ("GET", "/v1/secrets/a/b"),
    ] {
        assert_eq!(veil.api(method, path, None).0, 404, "{method} {path}");
    }
    let (status, _) = veil.api(
        "PATCH",
        "/v1/secrets/sec_0000000000000000",
        Some(r#"{"secret":"v"}"#),
    );
    assert_eq!(status, 404);
    assert_eq!(veil.api("PUT", "/v1/secrets", None).0, 405);
    assert_eq!(veil.api("POST", &format!("/v1/secrets/{id}"), None).0, 405);

    // Failed requests changed nothing: the same secrets, unrotated, and no extra audit records.
    let (_, after) = veil.api("GET", "/v1/secrets", None);
    assert_eq!(after.as_array().unwrap().len(), 3);
    let (_, unchanged) = veil.api("GET", &format!("/v1/secrets/{id}"), None);
    assert_eq!(unchanged, moved);
    let kinds: Vec<String> = veil
        .secret_events()
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "secret_created",
            "secret_created",
            "secret_updated",
            "secret_updated",
            "secret_created"
        ]
    );
    let events = veil.secret_events();
    assert_eq!(
        events[2]["changed"],
        json!(["hosts", "inject_query", "secret"])
    );
    assert_eq!(events[3]["changed"], json!(["env_var"]));
    assert_eq!(events[0]["name"], "github-main");
    assert_eq!(events[0]["id"], id.as_str());

    let (status, deleted) = veil.api("DELETE", &format!("/v1/secrets/{id}"), None);
    assert_eq!((status, &deleted["id"]), (200, &json!(id)));
    assert_eq!(veil.api("GET", &format!("/v1/secrets/{id}"), None).0, 404);
    assert_eq!(
        veil.api("DELETE", &format!("/v1/secrets/{id}"), None).0,
        404
    );
    assert_eq!(
        veil.secret_events().last().unwrap()["kind"],
        "secret_deleted"
    );

    let metrics = api_request(&veil.socket(), "GET", "/metrics", None).unwrap();
    assert_eq!(metrics.0, 200);
    for series in [
        "veil_connections_total{verdict=\"allowed\"}",
        "veil_denials_total",
        "veil_injections_total",
        "veil_errors_total{kind=\"upstream\"}",
        "veil_connection_setup_seconds_bucket{le=\"+Inf\"}",
        "veil_connection_setup_seconds_count",
    ] {
        assert!(metrics.1.contains(series), "{series} in\n{}", metrics.1);
    }
}

#[test]
fn the_cli_manages_secrets_without_argv_values() {
    let mut veil = Instance::new();
    let out = veil.run_veil(&["secrets", "list"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("veil serve"),
        "no daemon"
    );
    veil.start_daemon(&[]);

    let gh = create(
        &veil,
        "github-main",
        "GITHUB_TOKEN",
        "ghp_stdin_value\n",
        &["--host", "api.github.com"],
    );
    assert_eq!(gh["proxy_value"], "IRONSH_PROXY_github-main");
    assert_eq!(gh["hosts"], json!(["api.github.com"]));
    let file = veil.dir().join("value.txt");
    fs::write(&file, "npm_file_value\n").unwrap();
    let out = veil
        .veil()
        .args([
            "secrets",
            "create",
            "npm",
            "--env-var",
            "NPM_TOKEN",
            "--from-file",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = veil
        .veil()
        .args([
            "secrets",
            "create",
            "pypi",
            "--env-var",
            "PYPI_TOKEN",
            "--inject-query",
        ])
        .args(["--from-env", "PYPI_SOURCE"])
        .env("PYPI_SOURCE", "pypi_env_value")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = veil.run_veil(&["secrets", "list"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("ID"), "{table}");
    for name in ["github-main", "npm", "pypi"] {
        assert!(table.contains(name), "{table}");
    }
    let shown = veil.run_veil(&["secrets", "show", "pypi", "--json"]);
    let pypi: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(pypi["inject_query"], true);
    let by_id = veil.run_veil(&["secrets", "show", gh["id"].as_str().unwrap()]);
    assert!(String::from_utf8_lossy(&by_id.stdout).contains("IRONSH_PROXY_github-main"));

    let out = with_stdin(
        veil.veil().args([
            "secrets",
            "rotate",
            "github-main",
            "--json",
            "--host",
            "*.github.com",
        ]),
        "ghp_rotated\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rotated: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rotated["proxy_value"], gh["proxy_value"]);
    assert_eq!(rotated["hosts"], json!(["*.github.com"]));
    let out = veil.run_veil(&[
        "secrets",
        "rotate",
        "npm",
        "--keep-value",
        "--env-var",
        "NPM_AUTH",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = veil.run_veil(&["secrets", "rotate", "npm", "--keep-value"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to change"));

    let env = String::from_utf8_lossy(&veil.run_veil(&["env"]).stdout).into_owned();
    assert_eq!(
        env,
        "export GITHUB_TOKEN='IRONSH_PROXY_github-main'\nexport NPM_AUTH='IRONSH_PROXY_npm'\n\
         export PYPI_TOKEN='IRONSH_PROXY_pypi'\n"
    );
    let out = veil.run_veil(&["env", "--sandbox", "nope"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no sandbox named"));

    // Bad values and names are refused with the reason, and the value is never echoed.
    let out = with_stdin(
        veil.veil()
            .args(["secrets", "create", "bad", "--env-var", "BAD"]),
        "line-one-value\nline-two\n",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("control character"),
        "{stderr}"
    );
    assert!(!stderr.contains("line-one-value"), "{stderr}");
    let out = with_stdin(
        veil.veil()
            .args(["secrets", "create", "bad", "--env-var", "BAD"]),
        "",
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));
    let out = with_stdin(
        veil.veil()
            .args(["secrets", "create", "npm", "--env-var", "NEW"]),
        "v",
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    let out = veil.run_veil(&["secrets", "delete", "nope"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no secret has the id or name"));

    let out = veil.run_veil(&["secrets", "delete", "npm"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("deleted secret npm"));
    let list: Value =
        serde_json::from_slice(&veil.run_veil(&["secrets", "list", "--json"]).stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
}

#[test]
fn restart_keeps_every_secret_and_a_wrong_key_is_refused() {
    let mut veil = Instance::new();
    veil.start_daemon(&[]);
    let made: Vec<Value> = (0..5)
        .map(|i| {
            create(
                &veil,
                &format!("s{i}"),
                &format!("VAR_{i}"),
                &format!("value-{i}"),
                &[],
            )
        })
        .collect();
    let (_, before) = veil.api("GET", "/v1/secrets", None);
    let key = veil.state_dir().join("master.key");
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(veil.state_dir()).unwrap().permissions().mode() & 0o777,
        0o700
    );
    veil.stop_daemon(libc::SIGTERM);
    veil.start_daemon(&[]);
    let (_, after) = veil.api("GET", "/v1/secrets", None);
    assert_eq!(before, after);
    assert_eq!(after.as_array().unwrap().len(), made.len());
    veil.stop_daemon(libc::SIGTERM);

    // An operator-supplied key file must be private, and must be the key the secrets were
    // stored under.
    let supplied = veil.dir().join("operator.key");
    fs::write(&supplied, format!("{}\n", "ab".repeat(32))).unwrap();
    fs::set_permissions(&supplied, fs::Permissions::from_mode(0o644)).unwrap();
    let out = veil
        .veil()
        .arg("serve")
        .arg("--master-key-file")
        .arg(&supplied)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("chmod 600") && stderr.contains("master key"),
        "{stderr}"
    );
    fs::set_permissions(&supplied, fs::Permissions::from_mode(0o600)).unwrap();
    let out = veil
        .veil()
        .arg("serve")
        .arg("--master-key-file")
        .arg(&supplied)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("does not decrypt"), "{stderr}");
    // The state directory's own key still opens everything.
    veil.start_daemon(&[]);
    let (_, again) = veil.api("GET", "/v1/secrets", None);
    assert_eq!(again, before);
}

#[test]
fn sigkill_during_a_burst_of_creates_loses_nothing_acknowledged() {
    let mut veil = Instance::new();
    veil.start_daemon(&[]);
    let socket = veil.socket();
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let (socket, acknowledged, stop) =
                (socket.clone(), Arc::clone(&acknowledged), Arc::clone(&stop));
            thread::spawn(move || {
                for i in 0..50 {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let request = body(&format!("burst-{t}-{i}"), &format!("B_{t}_{i}"), "v");
                    match api_request(&socket, "POST", "/v1/secrets", Some(&request)) {
                        Ok((201, answer)) => {
                            let created: Value = serde_json::from_str(&answer).unwrap();
                            let id = created["id"].as_str().unwrap().to_owned();
                            acknowledged.lock().unwrap().push(id);
                        }
                        Ok((status, answer)) => panic!("{status} {answer}"),
                        // The daemon is gone.
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    eventually("60 acknowledged creates", || {
        acknowledged.lock().unwrap().len() >= 60
    });
    veil.stop_daemon(libc::SIGKILL);
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.join().expect("a worker thread");
    }
    let acknowledged: BTreeSet<String> = acknowledged.lock().unwrap().iter().cloned().collect();
    assert!(acknowledged.len() >= 60);
    veil.start_daemon(&[]);
    let (_, list) = veil.api("GET", "/v1/secrets", None);
    let stored = ids(&list);
    let lost: Vec<&String> = acknowledged.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    // Every stored secret's creation is in the audit log, acknowledged or not.
    let audited: BTreeSet<String> = veil
        .secret_events()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(stored.is_subset(&audited), "stored without an audit record");
}

#[test]
fn no_value_reaches_the_disk_or_the_logs() {
    let mut veil = Instance::new();
    let trace = [("RUST_LOG", "trace")];
    veil.start_daemon_with_env(&[], &trace);
    let values = [
        "canary-alpha-5be1f0c2e9",
        "canary-bravo-0d7c44aa61",
        "canary-charlie-rotated-93e",
    ];
    let mut cli_output = Vec::new();
    for (name, value) in [("alpha", values[0]), ("bravo", values[1])] {
        let out = with_stdin(
            veil.veil()
                .args(["-vv", "secrets", "create", name, "--env-var"])
                .arg(name.to_uppercase())
                .env("RUST_LOG", "trace"),
            value,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        cli_output.extend(out.stdout);
        cli_output.extend(out.stderr);
    }
    let out = with_stdin(
        veil.veil()
            .args(["-vv", "secrets", "rotate", "alpha"])
            .env("RUST_LOG", "trace"),
        values[2],
    );
    assert!(out.status.success());
    cli_output.extend(out.stdout);
    cli_output.extend(out.stderr);
    let (_, list) = veil.api("GET", "/v1/secrets", None);
    cli_output.extend(list.to_string().into_bytes());
    cli_output.extend(in_sandbox(&veil, &[], "env; cat \"$VEIL_SECRETS_PROFILE\"").into_bytes());
    // A refused value is not echoed either.
    let (_, refused) = veil.api(
        "POST",
        "/v1/secrets",
        Some(&body("refused", "REFUSED", &format!("{}\n", values[1]))),
    );
    cli_output.extend(refused.to_string().into_bytes());
    veil.stop_daemon(libc::SIGTERM);
    veil.start_daemon_with_env(&[], &trace);
    veil.api("DELETE", "/v1/secrets/does-not-exist", None);
    veil.stop_daemon(libc::SIGTERM);

    let mut places: Vec<(String, Vec<u8>)> = files_under(veil.dir())
        .into_iter()
        .filter_map(|path| {
            let bytes = fs::read(&path).ok()?;
            Some((path.display().to_string(), bytes))
        })
        .collect();
    places.push(("CLI and API output".into(), cli_output));
    let log = veil.daemon_log();
    assert!(log.contains("TRACE"), "the daemon logged at trace level");
    for (place, bytes) in &places {
        for value in values {
            assert!(
                !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
                "{place} contains a secret value"
            );
        }
    }
    assert!(
        places.iter().any(|(p, _)| p.contains("/state/db")),
        "the database was scanned"
    );
}

#[test]
fn a_sandboxed_user_reaches_neither_the_state_nor_the_api() {
    let mut veil = Instance::new();
    // On an address a sandbox's connects reach (through veil), unlike the host's loopback.
    let api_addr = TcpListener::bind((REMOTE_A, 0))
        .and_then(|l| l.local_addr())
        .unwrap();
    veil.start_daemon(&["--api-listen", &api_addr.to_string()]);
    create(&veil, "gh", "GH_TOKEN", "ghp_guarded_value", &[]);
    let key_file = veil.state_dir().join("api.key");
    assert_eq!(
        fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let key = fs::read_to_string(&key_file).unwrap().trim().to_owned();

    // From the host: the token is required, and enough.
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "10",
            ])
            .args(args)
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let url = format!("http://{api_addr}/v1/secrets");
    assert_eq!(curl(&[&url]), "401");
    assert_eq!(curl(&["-H", "Authorization: Bearer wrong", &url]), "401");
    let bad_token = format!("Authorization: Bearer {}", "0".repeat(64));
    assert_eq!(curl(&["-H", &bad_token, &url]), "401");
    let good = format!("Authorization: Bearer {key}");
    assert_eq!(curl(&["-H", &good, &url]), "200");
    assert_eq!(
        curl(&["-H", &good, &format!("http://{api_addr}/metrics")]),
        "200"
    );

    // From a sandbox, as nobody.
    let state = veil.state_dir().display().to_string();
    let socket = veil.socket().display().to_string();
    let script = format!(
        "id -u; \
         ls -A {state} 2>/dev/null | grep -q . && echo state-listed; \
         cat {state}/master.key >/dev/null 2>&1 && echo key-read; \
         cat {state}/api.key >/dev/null 2>&1 && echo api-key-read; \
         curl -s --max-time 5 --unix-socket {socket} http://veil/v1/secrets && echo socket-answered; \
         curl -s --max-time 5 -H 'Authorization: Bearer {key}' http://{api_addr}/v1/secrets \
           && echo tcp-answered; \
         echo \"GH=$GH_TOKEN\"; \
         cat \"$VEIL_SECRETS_PROFILE\" | grep -c IRONSH_PROXY_gh; \
         echo done"
    );
    let out = in_sandbox(&veil, &["--user", "nobody"], &script);
    assert_eq!(out, "65534\nGH=IRONSH_PROXY_gh\n1\ndone\n", "{out}");
    let mut refused = Vec::new();
    eventually("the refused connection to the API in the audit log", || {
        refused = veil
            .connections()
            .into_iter()
            .filter(|c| c["destination"] == api_addr.to_string())
            .collect();
        !refused.is_empty()
    });
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["verdict"], "refused");
    assert!(refused[0]["reason"]
        .as_str()
        .unwrap()
        .contains("control API"));
}

#[test]
fn sandboxes_get_placeholders_and_the_profile_follows_changes() {
    let mut veil = Instance::new();
    veil.start_daemon(&[]);
    let gh = create(&veil, "github-main", "GITHUB_TOKEN", "ghp_first", &[]);
    let id = gh["id"].as_str().unwrap().to_owned();
    let echo = "echo \"${GITHUB_TOKEN-unset} ${NEW_TOKEN-unset} $VEIL_SECRETS_PROFILE\"";
    let profile = veil.dir().join("run-public/secrets.sh");
    // Inside, the profile is where the reference puts it (a link to veil's public copy).
    assert_eq!(
        in_sandbox(&veil, &[], echo),
        "IRONSH_PROXY_github-main unset /etc/profile.d/veil-secrets.sh\n"
    );

    // Rotation keeps the placeholder: new sandboxes see the same value.
    let (status, _) = veil.api(
        "PATCH",
        &format!("/v1/secrets/{id}"),
        Some(r#"{"secret":"ghp_second"}"#),
    );
    assert_eq!(status, 200);
    assert!(in_sandbox(&veil, &["--user", "nobody"], echo)
        .starts_with("IRONSH_PROXY_github-main unset "));

    // A running sandbox picks up later changes by sourcing the profile.
    let flag = veil.dir().join("go");
    let script = format!(
        "echo \"before ${{GITHUB_TOKEN-unset}} ${{NEW_TOKEN-unset}}\"; \
         while [ ! -e {flag} ]; do sleep 0.05; done; \
         . \"$VEIL_SECRETS_PROFILE\"; \
         echo \"after ${{GITHUB_TOKEN-unset}} ${{NEW_TOKEN-unset}}\"",
        flag = flag.display()
    );
    let mut running = veil
        .veil()
        .args(["run", "--user", "nobody", "--", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(running.stdout.take().unwrap()).lines();
    let before = lines.next().unwrap().unwrap();
    assert_eq!(before, "before IRONSH_PROXY_github-main unset");
    create(&veil, "new", "NEW_TOKEN", "new_value", &[]);
    let (status, _) = veil.api("DELETE", &format!("/v1/secrets/{id}"), None);
    assert_eq!(status, 200);
    let text = fs::read_to_string(&profile).unwrap();
    assert!(
        text.contains("export NEW_TOKEN='IRONSH_PROXY_new'"),
        "{text}"
    );
    assert!(!text.contains("export GITHUB_TOKEN"), "{text}");
    assert_eq!(
        fs::metadata(&profile).unwrap().permissions().mode() & 0o777,
        0o644
    );
    fs::write(&flag, "").unwrap();
    let after = lines.next().unwrap().unwrap();
    let out = running.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(after, "after unset IRONSH_PROXY_new");

    // After the delete, new sandboxes do not get the variable.
    assert!(in_sandbox(&veil, &[], echo).starts_with("unset IRONSH_PROXY_new "));

    // Without a daemon, `veil run` starts one in-process and still sets the variables.
    veil.stop_daemon(libc::SIGTERM);
    assert!(in_sandbox(&veil, &[], echo).starts_with("unset IRONSH_PROXY_new "));
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => files.extend(files_under(&path)),
                Ok(t) if t.is_file() => files.push(path),
                _ => {}
            }
        }
    }
    files
}
