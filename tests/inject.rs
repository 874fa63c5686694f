//! Secret injection with real clients in real sandboxes against local TLS upstreams that
//! record what they get: the real value where the verified host is in scope, the placeholder
//! unchanged everywhere else, and an audit record for each.

use std::{
    fs,
    io::{BufRead, BufReader},
    os::unix::fs::PermissionsExt,
    process::Stdio,
};

use veil_tests::{
    dns::FakeResolver,
    eventually,
    git::{GitServer, ASKPASS},
    tls_env::{assert_ok, policy, Env, HOST},
    upstream::{Seen, TlsUpstream},
    Instance, REMOTE_A, REMOTE_B,
};

const CLIENT: &str = env!("CARGO_BIN_EXE_veil-test-client");
const PLACEHOLDER: &str = "IRONSH_PROXY_github-main";

/// Stores a secret through the API and returns its id.
fn create_secret(
    veil: &Instance,
    name: &str,
    value: &str,
    env_var: &str,
    hosts: &[&str],
) -> String {
    let created = veil.create_secret(name, value, env_var, hosts);
    created["id"].as_str().expect("an id").to_owned()
}

/// A fresh fake GitHub token.
fn token() -> String {
    veil_testkit::random_token("ghp_").expect("randomness")
}

fn authorizations(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .map(|s| s.header("authorization").unwrap_or("").to_owned())
        .collect()
}

/// Runs `script` with `sh -c` in a sandbox.
fn sandboxed_sh(env: &Env, script: &str) -> String {
    assert_ok(&env.veil.run_veil(&["run", "--", "sh", "-c", script]))
}

#[test]
fn curl_python_and_node_send_the_real_secret_and_each_replacement_is_audited() {
    let mut env = Env::new(&policy(&[HOST]));
    let secret = token();
    let id = create_secret(&env.veil, "github-main", &secret, "GITHUB_TOKEN", &[HOST]);
    let port = env.upstream.addr.port();

    let out = sandboxed_sh(&env, &format!(
        "test \"$GITHUB_TOKEN\" = {PLACEHOLDER} && curl -sS --http1.1 --resolve {} -H \"Authorization: Bearer $GITHUB_TOKEN\" {}",
        env.resolve(HOST), env.url(HOST, "/curl")
    ));
    assert_eq!(out, "ok GET /curl HTTP/1.1\n");

    let python = format!(
        "import http.client, os, socket, ssl\n\
         c = http.client.HTTPSConnection('{HOST}', {port})\n\
         c.sock = ssl.create_default_context().wrap_socket(socket.create_connection(('{REMOTE_A}', {port})), server_hostname='{HOST}')\n\
         c.request('GET', '/python', headers={{'X-Api-Key': os.environ['GITHUB_TOKEN']}})\n\
         print(c.getresponse().status)\n"
    );
    assert_eq!(
        assert_ok(
            &env.veil
                .run_veil(&["run", "--user", "nobody", "--", "python3", "-c", &python])
        ),
        "200\n"
    );

    // node's fetch resolves names itself: through veil's DNS proxy, which asks a stand-in
    // resolver that knows the upstream's name.
    let resolver = FakeResolver::start(REMOTE_B, HOST, REMOTE_A.parse().expect("an address"));
    env.veil.stop_daemon(libc::SIGTERM);
    env.veil.start_daemon(&[
        "--upstream-ca",
        env.ca_file.to_str().expect("utf-8"),
        "--dns-upstream",
        &resolver.addr.to_string(),
    ]);
    let node = format!(
        "fetch('https://{HOST}:{port}/node', {{headers: {{authorization: 'token ' + process.env.GITHUB_TOKEN}}}})\
         .then(r => r.text()).then(t => process.stdout.write(t)).catch(e => {{ console.error(e); process.exit(1) }})"
    );
    let out = env.veil.run_veil(&["run", "--", "node", "-e", &node]);
    assert_eq!(assert_ok(&out), "ok GET /node HTTP/1.1\n");
    assert!(
        resolver.queries() > 0,
        "node's name went through veil's DNS"
    );

    let seen = env.upstream.seen();
    assert_eq!(authorizations(&seen)[0], format!("Bearer {secret}"));
    assert_eq!(seen[1].header("x-api-key"), Some(secret.as_str()));
    assert_eq!(authorizations(&seen)[2], format!("token {secret}"));

    let records: Vec<serde_json::Value> = env
        .veil
        .audit()
        .into_iter()
        .filter(|r| r["kind"] == "secret_injected")
        .collect();
    assert_eq!(records.len(), 3, "{records:?}");
    for (record, (header, comm)) in records.iter().zip([
        ("authorization", "curl"),
        ("x-api-key", "python3"),
        ("authorization", "node"),
    ]) {
        assert_eq!(record["secret_name"], "github-main");
        assert_eq!(record["secret_id"], id.as_str());
        assert_eq!(record["host"], HOST);
        assert_eq!(record["protocol"], "http/1.1");
        assert_eq!(record["header"], header);
        assert_eq!(record["comm"], comm);
        assert!(record["sandbox"]
            .as_str()
            .is_some_and(|s| s.starts_with("run-")));
        assert!(record["pid"].as_u64().is_some_and(|p| p > 0));
        assert!(
            !record.to_string().contains(&secret),
            "a record must never hold the value"
        );
    }
}

#[test]
fn git_clones_a_private_repository_with_the_token_as_basic_password() {
    let env = Env::new(&policy(&["git.example.test"]));
    let secret = token();
    create_secret(
        &env.veil,
        "github-main",
        &secret,
        "GITHUB_TOKEN",
        &["git.example.test"],
    );
    let server = GitServer::start(&env, &secret);
    let port = &server.port;
    let dir = env.veil.dir();
    let askpass = dir.join("askpass.sh");
    fs::write(&askpass, ASKPASS).expect("askpass");
    fs::set_permissions(&askpass, fs::Permissions::from_mode(0o755)).expect("chmod");
    let clone_dir = env.veil.work_dir().join("clone");
    let work = env.veil.work_dir().display().to_string();
    let out = env.veil.run_veil(&[
        "run", "--bind", &work, "--", "sh", "-c",
        &format!(
            "GIT_ASKPASS={} GIT_TERMINAL_PROMPT=0 git -c http.curloptResolve=git.example.test:{port}:{REMOTE_A} \
             clone -q https://git.example.test:{port}/private.git {} && cat {}/README",
            askpass.display(), clone_dir.display(), clone_dir.display()
        ),
    ]);
    drop(server);
    assert_eq!(assert_ok(&out), "private contents\n");
    let injected: Vec<serde_json::Value> = env
        .veil
        .audit()
        .into_iter()
        .filter(|r| r["kind"] == "secret_injected")
        .collect();
    assert!(!injected.is_empty());
    assert!(injected
        .iter()
        .all(|r| r["header"] == "authorization" && r["host"] == "git.example.test"));
}

#[test]
fn out_of_scope_hosts_mismatched_hosts_and_plain_http_keep_the_placeholder() {
    let names = [
        "x.example.test",
        "example.test",
        "a.b.example.test",
        "other.example.test",
    ];
    let env = Env::with_names(
        &policy(&[
            "*.example.test",
            "example.test",
            "a.b.example.test",
            &format!("{REMOTE_B}/32"),
        ]),
        &names,
    );
    let secret = token();
    create_secret(
        &env.veil,
        "github-main",
        &secret,
        "GITHUB_TOKEN",
        &["*.example.test"],
    );
    let bearer = "-H \"Authorization: Bearer $GITHUB_TOKEN\"";
    for (host, path) in [
        ("x.example.test", "/in"),
        ("example.test", "/apex"),
        ("a.b.example.test", "/deep"),
        ("X.Example.TEST.", "/case"),
    ] {
        sandboxed_sh(
            &env,
            &format!(
                "curl -sS --resolve {} {bearer} {}",
                env.resolve(host),
                env.url(host, path)
            ),
        );
    }
    let seen = env.upstream.seen();
    let by_path = |p: &str| {
        seen.iter()
            .find(|s| s.path == p)
            .map(|s| s.header("authorization").unwrap_or("").to_owned())
    };
    assert_eq!(by_path("/in"), Some(format!("Bearer {secret}")));
    assert_eq!(
        by_path("/case"),
        Some(format!("Bearer {secret}")),
        "mixed case and a trailing dot still match"
    );
    assert_eq!(
        by_path("/apex"),
        Some(format!("Bearer {PLACEHOLDER}")),
        "a wildcard does not cover the apex"
    );
    assert_eq!(
        by_path("/deep"),
        Some(format!("Bearer {PLACEHOLDER}")),
        "nor two labels deeper"
    );

    // A Host naming another host than the SNI is refused before anything is injected.
    let code = sandboxed_sh(&env, &format!(
        "curl -sS -o /dev/null -w '%{{http_code}}' --resolve {} -H 'Host: other.example.test' {bearer} {}",
        env.resolve("x.example.test"), env.url("x.example.test", "/fronted")
    ));
    assert_eq!(code, "421");
    assert!(env.upstream.seen().iter().all(|s| s.path != "/fronted"));

    // Plain HTTP never receives a secret.
    let plain = TlsUpstream::start_plain(REMOTE_B);
    let url = format!("http://{REMOTE_B}:{}/plain", plain.addr.port());
    sandboxed_sh(&env, &format!("curl -sS {bearer} {url}"));
    assert_eq!(
        authorizations(&plain.seen()),
        vec![format!("Bearer {PLACEHOLDER}")]
    );

    let kept: Vec<serde_json::Value> = env
        .veil
        .audit()
        .into_iter()
        .filter(|r| r["kind"] == "placeholder_not_injected")
        .collect();
    let reasons: Vec<&str> = kept.iter().filter_map(|r| r["reason"].as_str()).collect();
    assert_eq!(
        reasons,
        vec!["out_of_scope", "out_of_scope", "not_tls"],
        "{kept:?}"
    );
    let all = format!("{:?}", env.veil.audit());
    assert!(!all.contains(&secret));
}

#[test]
fn overlapping_names_and_split_placeholders() {
    let env = Env::new(&policy(&[HOST]));
    let (short, long) = (token(), token());
    create_secret(&env.veil, "gh", &short, "GH", &[HOST]);
    create_secret(&env.veil, "gh-main", &long, "GH_MAIN", &[HOST]);
    sandboxed_sh(&env, &format!(
        "curl -sS --resolve {} -H \"X-Both: $GH_MAIN,$GH;$GH_MAIN\" -H 'X-Part-1: IRONSH_PROX' -H 'X-Part-2: Y_gh-main' \
         -H 'X-Longer: IRONSH_PROXY_gh-mainx' {}",
        env.resolve(HOST), env.url(HOST, "/overlap")
    ));
    let seen = &env.upstream.seen()[0];
    assert_eq!(
        seen.header("x-both"),
        Some(format!("{long},{short};{long}").as_str())
    );
    assert_eq!(seen.header("x-part-1"), Some("IRONSH_PROX"));
    assert_eq!(seen.header("x-part-2"), Some("Y_gh-main"));
    assert_eq!(
        seen.header("x-longer"),
        Some("IRONSH_PROXY_gh-mainx"),
        "a longer name is not a placeholder"
    );
}

#[test]
fn every_request_of_a_keep_alive_connection_and_every_h2_stream_gets_the_secret() {
    let env = Env::new(&policy(&[HOST]));
    let secret = token();
    create_secret(&env.veil, "github-main", &secret, "GITHUB_TOKEN", &[HOST]);
    let urls: Vec<String> = (1..=50)
        .map(|i| env.url(HOST, &format!("/keepalive/{i}")))
        .collect();
    sandboxed_sh(
        &env,
        &format!(
            "curl -sS --http1.1 --resolve {} -H \"Authorization: Bearer $GITHUB_TOKEN\" {}",
            env.resolve(HOST),
            urls.join(" ")
        ),
    );
    assert_eq!(env.upstream.connections(), 1, "curl reused one connection");
    let auths = authorizations(&env.upstream.seen());
    assert_eq!(auths.len(), 50);
    assert_eq!(auths[1], format!("Bearer {secret}"), "the 2nd request");
    assert_eq!(auths[49], format!("Bearer {secret}"), "the 50th request");
    assert!(auths.iter().all(|a| *a == format!("Bearer {secret}")));

    let mut args = vec!["run", "--", CLIENT, "h2-streams", "100"];
    let tls = env.tls_args(HOST);
    args.extend(tls.iter().map(String::as_str));
    args.extend(["--bearer-env", "GITHUB_TOKEN"]);
    assert_eq!(assert_ok(&env.veil.run_veil(&args)), "ok 100\n");
    let streams: Vec<Seen> = env
        .upstream
        .seen()
        .into_iter()
        .filter(|s| s.path.starts_with("/stream/"))
        .collect();
    assert_eq!(streams.len(), 100);
    assert!(streams
        .iter()
        .all(|s| s.header("authorization") == Some(format!("Bearer {secret}").as_str())));

    let mut ws = vec!["run", "--", CLIENT, "ws"];
    ws.extend(tls.iter().map(String::as_str));
    ws.extend(["--bearer-env", "GITHUB_TOKEN"]);
    assert_eq!(
        assert_ok(&env.veil.run_veil(&ws)),
        "echo: hello through veil\n"
    );
    let upgrade = env
        .upstream
        .seen()
        .into_iter()
        .find(|s| s.path == "/ws")
        .expect("the upgrade request");
    assert_eq!(
        upgrade.header("authorization"),
        Some(format!("Bearer {secret}").as_str())
    );
    let protocols: Vec<String> = env
        .veil
        .audit()
        .iter()
        .filter(|r| r["kind"] == "secret_injected")
        .map(|r| r["protocol"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(protocols.iter().filter(|p| *p == "http/1.1").count(), 50);
    assert_eq!(protocols.iter().filter(|p| *p == "h2").count(), 100);
    assert_eq!(protocols.iter().filter(|p| *p == "websocket").count(), 1);
}

#[test]
fn rotation_applies_to_the_next_request_on_an_open_connection_and_delete_stops_replacement() {
    let env = Env::new(&policy(&[HOST]));
    let (first, second) = (token(), token());
    let id = create_secret(&env.veil, "github-main", &first, "GITHUB_TOKEN", &[HOST]);
    let go = env.veil.dir().join("go");
    let port = env.upstream.addr.port();
    let python = format!(
        "import http.client, os, socket, ssl, time\n\
         c = http.client.HTTPSConnection('{HOST}', {port})\n\
         c.sock = ssl.create_default_context().wrap_socket(socket.create_connection(('{REMOTE_A}', {port})), server_hostname='{HOST}')\n\
         h = {{'Authorization': 'Bearer ' + os.environ['GITHUB_TOKEN']}}\n\
         c.request('GET', '/before', headers=h); c.getresponse().read()\n\
         print('first done', flush=True)\n\
         while not os.path.exists('{go}'): time.sleep(0.02)\n\
         c.request('GET', '/after', headers=h); c.getresponse().read()\n\
         print('second done', flush=True)\n",
        go = go.display()
    );
    let mut child = env
        .veil
        .veil()
        .args(["run", "--", "python3", "-c", &python])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python runs");
    let mut line = String::new();
    let mut reader = BufReader::new(child.stdout.take().expect("piped"));
    reader.read_line(&mut line).expect("the first request");
    assert_eq!(line, "first done\n");
    let patch = serde_json::json!({"secret": second}).to_string();
    let (status, body) = env
        .veil
        .api("PATCH", &format!("/v1/secrets/{id}"), Some(&patch));
    assert_eq!(status, 200, "{body}");
    fs::write(&go, "").expect("signal");
    let out = child.wait_with_output().expect("python finishes");
    assert!(out.status.success());
    assert_eq!(
        env.upstream.connections(),
        1,
        "both requests on one connection"
    );
    assert_eq!(
        authorizations(&env.upstream.seen()),
        vec![format!("Bearer {first}"), format!("Bearer {second}")]
    );

    let (status, _) = env.veil.api("DELETE", &format!("/v1/secrets/{id}"), None);
    assert_eq!(status, 200);
    let out = sandboxed_sh(
        &env,
        &format!(
            "curl -sS --http1.1 --resolve {} -H 'Authorization: Bearer {PLACEHOLDER}' {}",
            env.resolve(HOST),
            env.url(HOST, "/deleted")
        ),
    );
    assert_eq!(out, "ok GET /deleted HTTP/1.1\n");
    let last = env.upstream.seen().into_iter().last().expect("a request");
    assert_eq!(
        last.header("authorization"),
        Some(format!("Bearer {PLACEHOLDER}").as_str())
    );
    eventually("no more replacements", || {
        env.veil
            .audit()
            .iter()
            .filter(|r| r["kind"] == "secret_injected")
            .count()
            == 2
    });
}

#[test]
fn sigkill_under_injection_load_never_leaves_a_received_secret_unrecorded() {
    let mut env = Env::new(&policy(&[HOST]));
    let secret = token();
    create_secret(&env.veil, "github-main", &secret, "GITHUB_TOKEN", &[HOST]);
    let urls: Vec<String> = (0..20)
        .map(|i| env.url(HOST, &format!("/load/{i}")))
        .collect();
    let script = format!(
        "while true; do curl -s --http1.1 --max-time 5 --resolve {} -H \"Authorization: Bearer $GITHUB_TOKEN\" {} >/dev/null || exit 0; done",
        env.resolve(HOST),
        urls.join(" ")
    );
    let mut load = env
        .veil
        .veil()
        .args(["run", "--", "sh", "-c", &script])
        .spawn()
        .expect("the load runs");
    eventually("requests under load", || env.upstream.seen().len() >= 100);
    env.veil.stop_daemon(libc::SIGKILL);
    let _ = load.kill();
    let _ = load.wait();

    env.veil
        .start_daemon(&["--upstream-ca", env.ca_file.to_str().expect("utf-8")]);
    let received = env
        .upstream
        .seen()
        .iter()
        .filter(|s| s.header("authorization") == Some(format!("Bearer {secret}").as_str()))
        .count();
    let recorded = env
        .veil
        .audit()
        .iter()
        .filter(|r| r["kind"] == "secret_injected")
        .count();
    assert!(received >= 100, "the load ran: {received}");
    assert!(
        recorded >= received,
        "every secret the upstream received must have a durable record: {recorded} records for {received} requests"
    );
}

#[test]
fn a_trace_level_daemon_never_logs_an_injected_value() {
    let mut env = Env::new(&policy(&[HOST]));
    env.veil.stop_daemon(libc::SIGTERM);
    let ca = env.ca_file.to_str().expect("utf-8").to_owned();
    env.veil
        .start_daemon_with_env(&["--upstream-ca", &ca, "-vv"], &[("RUST_LOG", "trace")]);
    let secret = token();
    create_secret(&env.veil, "github-main", &secret, "GITHUB_TOKEN", &[HOST]);
    let basic = format!(
        "curl -sS --resolve {} -u \"user:$GITHUB_TOKEN\" {}",
        env.resolve(HOST),
        env.url(HOST, "/basic")
    );
    let bearer = format!(
        "curl -sS --http2 --resolve {} -H \"Authorization: Bearer $GITHUB_TOKEN\" {}",
        env.resolve(HOST),
        env.url(HOST, "/bearer")
    );
    sandboxed_sh(&env, &format!("{basic} && {bearer}"));
    let seen = env.upstream.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[1].header("authorization"),
        Some(format!("Bearer {secret}").as_str())
    );
    let log = env.veil.daemon_log();
    assert!(
        log.lines().count() > 100,
        "the daemon logged at trace level"
    );
    assert!(
        !log.contains(&secret),
        "the secret value must never reach the log"
    );
    let basic_encoded = veil_tests::upstream::base64(format!("user:{secret}").as_bytes());
    assert!(!log.contains(&basic_encoded), "nor its Basic-auth encoding");
}
