//! The data plane with real clients in real sandboxes: TLS interception with veil's CA,
//! HTTP/1.1 and HTTP/2, WebSocket, large streamed bodies, the egress policy and its reload,
//! and upstream verification failures. Upstreams are TLS servers on stand-in remote hosts
//! with certificates from a test CA made at run time.

use std::{fs, time::Duration};

use veil_tests::{
    eventually,
    pki::TestCa,
    tls_env::{assert_ok, policy, stdout, Env, HOST},
    upstream::{pattern, TlsUpstream},
    REMOTE_A, REMOTE_B,
};

const CLIENT: &str = env!("CARGO_BIN_EXE_veil-test-client");

#[test]
fn curl_over_http1_and_http2_is_intercepted_and_audited() {
    let env = Env::new(&policy(&[HOST]));
    let resolve = env.resolve(HOST);
    let h1 = env.curl(&["--http1.1", "--resolve", &resolve, &env.url(HOST, "/one")]);
    assert_eq!(assert_ok(&h1), "ok GET /one HTTP/1.1\n");
    let h2 = env.curl(&["--http2", "--resolve", &resolve, &env.url(HOST, "/two")]);
    assert_eq!(assert_ok(&h2), "ok GET /two HTTP/2.0\n");

    let seen = env.upstream.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        (seen[0].version.as_str(), seen[1].version.as_str()),
        ("HTTP/1.1", "HTTP/2.0")
    );
    let conns = env.veil.wait_connections(2);
    for c in &conns {
        assert_eq!(c["host"], HOST);
        assert_eq!(c["protocol"], "tls");
        assert_eq!(c["rule"], HOST);
        assert_eq!(c["verdict"], "allowed");
        assert_eq!(c["comm"], "curl");
    }
}

#[test]
fn an_h2_only_client_runs_100_concurrent_streams_on_one_connection() {
    let env = Env::new(&policy(&[HOST]));
    let mut args = vec!["run", "--", CLIENT, "h2-streams", "100"];
    let tls = env.tls_args(HOST);
    args.extend(tls.iter().map(String::as_str));
    assert_eq!(assert_ok(&env.veil.run_veil(&args)), "ok 100\n");
    assert_eq!(
        env.upstream.connections(),
        1,
        "one upstream connection for one client connection"
    );
    let seen = env.upstream.seen();
    assert_eq!(seen.len(), 100);
    assert!(seen.iter().all(|s| s.version == "HTTP/2.0"));
}

#[test]
fn python_http_client_trusts_veil_through_the_environment() {
    let env = Env::new(&policy(&[HOST]));
    let script = format!(
        "import http.client, socket, ssl\n\
         c = http.client.HTTPSConnection('{HOST}', {port})\n\
         c.sock = ssl.create_default_context().wrap_socket(socket.create_connection(('{REMOTE_A}', {port})), server_hostname='{HOST}')\n\
         c.request('GET', '/py', headers={{'X-Api-Key': 'k'}})\n\
         r = c.getresponse()\n\
         print(r.status, r.read().decode().strip())\n",
        port = env.upstream.addr.port()
    );
    let out = env
        .veil
        .run_veil(&["run", "--user", "nobody", "--", "python3", "-c", &script]);
    assert_eq!(assert_ok(&out), "200 ok GET /py HTTP/1.1\n");
    assert_eq!(env.upstream.seen()[0].header("x-api-key"), Some("k"));
}

#[test]
fn websocket_echo_after_the_upgrade_went_through_the_request_path() {
    let env = Env::new(&policy(&[HOST]));
    let mut args = vec!["run", "--", CLIENT, "ws"];
    let tls = env.tls_args(HOST);
    args.extend(tls.iter().map(String::as_str));
    assert_eq!(
        assert_ok(&env.veil.run_veil(&args)),
        "echo: hello through veil\n"
    );
    let seen = env.upstream.seen();
    assert_eq!(seen[0].path, "/ws");
    assert_eq!(seen[0].header("upgrade"), Some("websocket"));
}

#[test]
fn large_bodies_stream_both_ways_without_being_buffered() {
    const SIZE: usize = 200 * 1024 * 1024;
    let env = Env::new(&policy(&[HOST]));
    let resolve = env.resolve(HOST);
    let want = {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        let data: Vec<u8> = pattern(SIZE).collect();
        ctx.update(&data);
        fs::write(env.veil.dir().join("upload.bin"), &data).expect("writing the upload");
        hex::encode(ctx.finish())
    };

    let download = env.veil.work_dir().join("download.bin");
    let out = env.curl(&[
        "--resolve",
        &resolve,
        "-o",
        download.to_str().expect("utf-8"),
        &env.url(HOST, &format!("/download?bytes={SIZE}")),
    ]);
    assert_ok(&out);
    let got = fs::read(&download).expect("the download");
    assert_eq!(got.len(), SIZE);
    assert_eq!(
        hex::encode(ring::digest::digest(&ring::digest::SHA256, &got)),
        want
    );
    drop(got);

    let upload = format!("@{}", env.veil.dir().join("upload.bin").display());
    let out = env.curl(&[
        "--resolve",
        &resolve,
        "-X",
        "PUT",
        "--data-binary",
        &upload,
        &env.url(HOST, "/upload"),
    ]);
    assert_eq!(assert_ok(&out), format!("bytes={SIZE} sha256={want}\n"));

    let peak = env.veil.daemon_peak_rss_kib();
    assert!(
        peak < 150 * 1024,
        "veil's peak RSS was {peak} KiB: bodies must stream"
    );
}

#[test]
fn a_denied_host_gets_a_403_that_says_why_and_an_audit_record() {
    let env = Env::new(&policy(&[HOST]));
    let other = "other.example.test";
    let out = env.curl(&["--resolve", &env.resolve(other), &env.url(other, "/nope")]);
    let body = assert_ok(&out);
    assert!(
        body.contains("other.example.test") && body.contains("denied"),
        "{body}"
    );
    let code = env.curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--resolve",
        &env.resolve(other),
        &env.url(other, "/nope"),
    ]);
    assert_eq!(assert_ok(&code), "403");
    assert_eq!(
        env.upstream.connections(),
        0,
        "a denied host is never contacted"
    );
    let conns = env.veil.wait_connections(2);
    assert_eq!(conns[0]["verdict"], "refused");
    assert_eq!(conns[0]["host"], other);
    assert!(conns[0]["reason"]
        .as_str()
        .unwrap_or("")
        .contains("no egress rule"));
}

#[test]
fn untrusted_and_wrong_name_upstream_certificates_fail_the_client_too() {
    let env = Env::new(&policy(&[HOST]));
    let rogue_ca = TestCa::new("not trusted by veil").expect("a test CA");
    let untrusted = TlsUpstream::start(
        REMOTE_B,
        &rogue_ca.server_cert(&[HOST]).expect("a server certificate"),
        &[b"http/1.1"],
    );
    let wrong_name = TlsUpstream::start(
        REMOTE_B,
        &env.ca
            .server_cert(&["wrong.example.test"])
            .expect("a server certificate"),
        &[b"http/1.1"],
    );
    for upstream in [&untrusted, &wrong_name] {
        let resolve = format!("{HOST}:{}:{REMOTE_B}", upstream.addr.port());
        let url = format!("https://{HOST}:{}/secret", upstream.addr.port());
        let out = env.curl(&["--resolve", &resolve, &url]);
        assert!(
            !out.status.success(),
            "the client must fail: {}",
            stdout(&out)
        );
        assert!(
            upstream.seen().is_empty(),
            "the upstream must receive no request"
        );
    }
    let conns = env.veil.wait_connections(2);
    for c in &conns {
        assert_eq!(c["verdict"], "refused");
        assert!(
            c["reason"].as_str().unwrap_or("").contains("upstream TLS"),
            "{c}"
        );
    }
    assert!(fs::metadata(&env.ca_file).is_ok());
}

#[test]
fn https_to_an_ip_literal_is_verified_for_the_address() {
    let rule = format!("{REMOTE_A}/32");
    let env = Env::new(&policy(&[&rule]));
    let url = format!("https://{REMOTE_A}:{}/ip", env.upstream.addr.port());
    assert_eq!(
        assert_ok(&env.curl(&["--http1.1", &url])),
        "ok GET /ip HTTP/1.1\n"
    );
    let conns = env.veil.wait_connections(1);
    assert_eq!(conns[0]["rule"], rule);
}

#[test]
fn a_server_first_protocol_is_spliced_when_a_cidr_rule_allows_it() {
    veil_tests::remote_hosts();
    let listener = std::net::TcpListener::bind((REMOTE_B, 0)).expect("a banner server");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            use std::io::{BufRead, BufReader, Write};
            let mut w = &stream;
            let _ = w.write_all(b"220 banner first\r\n");
            let mut line = String::new();
            let _ = BufReader::new(&stream).read_line(&mut line);
            let _ = w.write_all(format!("got {line}").as_bytes());
        }
    });
    let env = Env::new(&policy(&[&format!("{REMOTE_B}/32:{port}")]));
    let script = format!(
        "import socket\ns = socket.create_connection(('{REMOTE_B}', {port}))\n\
         f = s.makefile('rwb')\nprint(f.readline().decode().strip())\n\
         f.write(b'ping\\n'); f.flush()\nprint(f.readline().decode().strip())\n"
    );
    let out = env.veil.run_veil(&["run", "--", "python3", "-c", &script]);
    assert_eq!(assert_ok(&out), "220 banner first\ngot ping\n");
    let conns = env.veil.wait_connections(1);
    assert_eq!(conns[0]["protocol"], "tcp");
    assert_eq!(conns[0]["verdict"], "allowed");

    // The same protocol on a port no rule names is refused.
    let other = std::net::TcpListener::bind((REMOTE_B, 0)).expect("another server");
    let script = format!(
        "import socket\ns = socket.create_connection(('{REMOTE_B}', {}))\nprint(repr(s.recv(100)))\n",
        other.local_addr().expect("addr").port()
    );
    let out = env.veil.run_veil(&["run", "--", "python3", "-c", &script]);
    assert_eq!(stdout(&out), "b''\n", "veil closes a refused connection");
    let conns = env.veil.wait_connections(2);
    assert_eq!(conns[1]["verdict"], "refused");
}

#[test]
fn a_client_hello_split_over_two_segments_is_reassembled() {
    let env = Env::new(&policy(&[HOST]));
    let mut args = vec!["run", "--", CLIENT, "split-hello"];
    let tls = env.tls_args(HOST);
    args.extend(tls.iter().map(String::as_str));
    assert_eq!(
        assert_ok(&env.veil.run_veil(&args)),
        "ok GET /split HTTP/1.1\n"
    );
}

#[test]
fn a_client_slow_to_send_its_client_hello_is_still_intercepted() {
    // Allowed by address too, so veil connects upstream while it waits to see who speaks
    // first; the client does, and its TLS is intercepted like any other.
    let env = Env::new(&policy(&[HOST, &format!("{REMOTE_A}/32")]));
    let mut args = vec!["run", "--", CLIENT, "slow-hello"];
    let tls = env.tls_args(HOST);
    args.extend(tls.iter().map(String::as_str));
    assert_eq!(
        assert_ok(&env.veil.run_veil(&args)),
        "ok GET /slow HTTP/1.1\n"
    );
    let conns = env.veil.wait_connections(1);
    assert_eq!(conns[0]["protocol"], "tls");
    assert_eq!(conns[0]["reason"], "intercepted");
}

#[test]
fn a_policy_reload_under_traffic_keeps_open_connections_and_applies_to_new_ones() {
    let env = Env::new(&policy(&[HOST]));
    let resolve = env.resolve(HOST);
    let size = 32 * 1024 * 1024;
    let download = env.veil.work_dir().join("slow.bin");
    let work = env.veil.work_dir().display().to_string();
    let slow = env
        .veil
        .veil()
        .args([
            "run",
            "--bind",
            &work,
            "--",
            "curl",
            "-sS",
            "--limit-rate",
            "8M",
            "--resolve",
            &resolve,
            "-o",
        ])
        .arg(&download)
        .arg(env.url(HOST, &format!("/download?bytes={size}")))
        .spawn()
        .expect("a slow download");
    eventually("the download to start", || {
        fs::metadata(&download)
            .map(|m| m.len() > 0)
            .unwrap_or(false)
    });

    env.veil.set_policy(&policy(&["nothing.example.test"]));
    env.veil.reload();
    eventually("the reload", || {
        env.veil.daemon_log().contains("reloaded the egress policy")
    });
    let denied = env.curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--resolve",
        &resolve,
        &env.url(HOST, "/after"),
    ]);
    assert_eq!(assert_ok(&denied), "403");

    let finished = slow.wait_with_output().expect("the download finishes");
    assert!(
        finished.status.success(),
        "the open connection must survive the reload"
    );
    assert_eq!(
        fs::metadata(&download).expect("downloaded").len(),
        size as u64
    );
    std::thread::sleep(Duration::from_millis(10));
    assert!(env.upstream.seen().iter().all(|s| s.path != "/after"));
}

#[test]
fn passthrough_hosts_are_relayed_without_interception() {
    // A passthrough SNI is never proven, so a private address opens only by a CIDR rule.
    let env = Env::new(&format!(
        "{}passthrough = [\"{HOST}\"]\n",
        policy(&[HOST, &format!("{REMOTE_A}/32")])
    ));
    // Only the upstream's own CA is trusted: this works only if veil does not intercept.
    let ca = env.ca_file.to_str().expect("utf-8");
    let out = env.curl(&[
        "--cacert",
        ca,
        "--resolve",
        &env.resolve(HOST),
        &env.url(HOST, "/pinned"),
    ]);
    assert!(assert_ok(&out).starts_with("ok GET /pinned"));
    let conns = env.veil.wait_connections(1);
    assert_eq!(conns[0]["protocol"], "tls-passthrough");
}

#[test]
fn a_passthrough_name_opens_no_address_it_does_not_resolve_to() {
    let env = Env::new(&format!("{}passthrough = [\"{HOST}\"]\n", policy(&[HOST])));
    let ca = env.ca_file.to_str().expect("utf-8");
    let out = env.curl(&[
        "--cacert",
        ca,
        "--resolve",
        &env.resolve(HOST),
        &env.url(HOST, "/pinned"),
    ]);
    assert!(!out.status.success(), "no tunnel to {REMOTE_A} by a name");
    let conns = env.veil.wait_connections(1);
    assert_eq!(conns[0]["protocol"], "tls-passthrough");
    assert_eq!(conns[0]["verdict"], "refused");
}

#[test]
fn tls_that_is_not_http_is_relayed_unchanged() {
    let env = Env::new(&policy(&[HOST]));
    let cert = env.ca.server_cert(&[HOST]).expect("a server certificate");
    let dir = env.veil.dir();
    fs::write(
        dir.join("echo.pem"),
        format!("{}{}", cert.cert_pem, cert.key_pem),
    )
    .expect("writing");
    let server = format!(
        "import socket, ssl\nctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\nctx.load_cert_chain('{}')\n\
         s = socket.create_server(('{REMOTE_B}', 0))\nprint(s.getsockname()[1], flush=True)\n\
         c, _ = s.accept()\nt = ctx.wrap_socket(c, server_side=True)\n\
         t.sendall(b'echo:' + t.recv(100))\nt.close()\n",
        dir.join("echo.pem").display(),
    );
    let mut echo = std::process::Command::new("python3")
        .args(["-c", &server])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut port_line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(echo.stdout.as_mut().expect("piped stdout")),
        &mut port_line,
    )
    .expect("the echo server's port");
    let port: u16 = port_line.trim().parse().expect("a port number");
    let client = format!(
        "import socket, ssl\ns = socket.create_connection(('{REMOTE_B}', {port}))\n\
         t = ssl.create_default_context().wrap_socket(s, server_hostname='{HOST}')\n\
         t.settimeout(20)\nt.sendall(b'\\x00\\x01binary, not http')\nprint(t.recv(100))\n"
    );
    let out = env.veil.run_veil(&["run", "--", "python3", "-c", &client]);
    let _ = echo.kill();
    let _ = echo.wait();
    assert_eq!(assert_ok(&out), "b'echo:\\x00\\x01binary, not http'\n");
    let conns = env.veil.wait_connections(1);
    assert_eq!(
        (conns[0]["protocol"].as_str(), conns[0]["verdict"].as_str()),
        (Some("tls"), Some("allowed"))
    );
}

#[test]
fn veil_ca_prints_the_ca_sandboxes_trust() {
    let env = Env::new(&policy(&[HOST]));
    let out = env.veil.run_veil(&["ca"]);
    let pem = assert_ok(&out);
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let bundle = fs::read_to_string(env.veil.ca_bundle()).expect("the bundle");
    assert!(bundle.ends_with(&pem), "the bundle ends with veil's CA");
    let key = env.veil.dir().join("state/ca/ca-key.pem");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(key).expect("the CA key").permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn the_egress_policy_is_read_and_changed_through_the_api_and_cli() {
    let rule = format!("{REMOTE_B}/32");
    let env = Env::new(&policy(&[&rule]));
    let code = |env: &Env| {
        let out = env.curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--resolve",
            &env.resolve(HOST),
            &env.url(HOST, "/policy"),
        ]);
        assert_ok(&out)
    };
    assert_eq!(code(&env), "403");

    let allow = env.veil.run_veil(&["egress", "allow", HOST]);
    let listed = assert_ok(&allow);
    assert!(
        listed.contains(&format!("allow:       {rule}, {HOST}")),
        "{listed}"
    );
    assert_eq!(
        code(&env),
        "200",
        "a new rule applies to the next connection, no reload needed"
    );
    let file = fs::read_to_string(env.veil.config_path()).expect("the config file");
    assert!(
        file.contains(HOST),
        "the rule is written to the config file: {file}"
    );

    let (status, body) = env
        .veil
        .api("PUT", "/v1/egress", Some(r#"{"allow": ["10.0.0.1/8"]}"#));
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap_or("").contains("10.0.0.1/8"),
        "{body}"
    );
    let (_, state) = env.veil.api("GET", "/v1/egress", None);
    assert_eq!(
        state["allow"],
        serde_json::json!([rule, HOST]),
        "a bad policy changes nothing"
    );

    assert_ok(&env.veil.run_veil(&["egress", "deny", HOST]));
    assert_eq!(code(&env), "403");
    let missing = env.veil.run_veil(&["egress", "deny", "never.example.test"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not in the list"));

    let (status, _) = env.veil.api("GET", "/v1/ca", None);
    assert_eq!(status, 200);
    let pem = assert_ok(&env.veil.run_veil(&["ca"]));
    let out =
        veil_tests::api_request(&env.veil.socket(), "GET", "/v1/ca", None).expect("GET /v1/ca");
    assert_eq!(out.1, pem);
}
