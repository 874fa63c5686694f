//! Exfiltration attempts made the way a hostile workload would: real clients (curl, python,
//! the Rust test client) in real sandboxes, steered by the kernel, against a local upstream
//! that hands the injected secret straight back ([`veil_tests::echo_upstream`]), fronts one
//! host behind another, or is a private or loopback service reached through a name veil cannot
//! prove.
//! Whatever the form, the sandbox gets the placeholder or nothing, never the value; the audit
//! log says what was scrubbed or cut, naming the secret, never its value.

use std::{
    fs,
    io::Read,
    process::{Command, Output, Stdio},
};

use serde_json::Value;
use veil_tests::{
    echo_upstream::NOISE,
    eventually, spawn_in_cgroup,
    tls_env::{assert_ok, policy, stdout, Env, HOST},
    upstream::TlsUpstream,
    REMOTE_A, REMOTE_B,
};

const CLIENT: &str = env!("CARGO_BIN_EXE_veil-test-client");
const PYTHON_CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/exfil_client.py");
const PLACEHOLDER: &str = "IRONSH_PROXY_github-main";
const BEARER: &str = "-H \"Authorization: Bearer $GITHUB_TOKEN\"";
const OTHER: &str = "other.example.test";

/// A veil with an upstream for `api.example.test` and `other.example.test`, and the secret
/// `github-main` scoped to `api.example.test`.
struct Attack {
    env: Env,
    secret: String,
}

impl Attack {
    /// Allows `allow` and stores a fresh secret.
    fn new(allow: &[&str]) -> Self {
        let env = Env::new(&policy(allow));
        let secret = veil_testkit::random_token("ghp_").expect("randomness");
        env.veil
            .create_secret("github-main", &secret, "GITHUB_TOKEN", &[HOST]);
        Self { env, secret }
    }

    /// Runs `script` with `sh -c` in a sandbox that may write to the instance's work
    /// directory (where the tests keep what curl received).
    fn sh(&self, script: &str) -> Output {
        let work = self.env.veil.work_dir().display().to_string();
        self.env
            .veil
            .run_veil(&["run", "--bind", &work, "--", "sh", "-c", script])
    }

    /// curl ARGS for `path` on `host` (sent to the upstream), in a sandbox.
    fn curl_host(&self, host: &str, args: &str, path: &str) -> Output {
        self.sh(&format!(
            "curl -sS --max-time 60 --resolve {} {args} {}",
            self.env.resolve(host),
            self.env.url(host, path)
        ))
    }

    /// curl ARGS for `path` on api.example.test, in a sandbox.
    fn curl(&self, args: &str, path: &str) -> Output {
        self.curl_host(HOST, args, path)
    }

    /// The HTTP status curl ARGS gets for `path` on `host`.
    fn status(&self, host: &str, args: &str, path: &str) -> String {
        stdout(&self.curl_host(
            host,
            &format!("-o /dev/null -w '%{{http_code}}' {args}"),
            path,
        ))
    }

    /// `exfil_client.py MODE ARGS` in a sandbox, against the upstream for api.example.test.
    fn python(&self, mode: &str, args: &[&str]) -> Output {
        let port = self.env.upstream.addr.port().to_string();
        let mut full = vec![
            "run",
            "--",
            "python3",
            PYTHON_CLIENT,
            mode,
            REMOTE_A,
            &port,
            HOST,
        ];
        full.extend_from_slice(args);
        self.env.veil.run_veil(&full)
    }

    /// `veil-test-client h2-host AUTHORITY HOST` with the bearer placeholder, in a sandbox.
    fn h2_host(&self, authority: &str, host: &str) -> String {
        let mut args = vec!["run", "--", CLIENT, "h2-host", authority, host];
        let tls = self.env.tls_args(HOST);
        args.extend(tls.iter().map(String::as_str));
        args.extend(["--bearer-env", "GITHUB_TOKEN"]);
        assert_ok(&self.env.veil.run_veil(&args))
    }

    /// Asserts `bytes`, something the sandbox got, do not hold the secret.
    fn assert_clean(&self, what: &str, bytes: &[u8]) {
        if let Some(leak) = self.leak(what, bytes) {
            panic!("{leak}");
        }
    }

    /// Where `bytes`, something the sandbox got, hold the secret, said without dumping them.
    fn leak(&self, what: &str, bytes: &[u8]) -> Option<String> {
        let at = bytes
            .windows(self.secret.len())
            .position(|w| w == self.secret.as_bytes())?;
        let around = &bytes[at.saturating_sub(40)..(at + self.secret.len() + 40).min(bytes.len())];
        Some(format!(
            "{what}: the sandbox got the secret at byte {at} of {}: {:?}",
            bytes.len(),
            String::from_utf8_lossy(around)
        ))
    }

    /// The Authorization the upstream saw for `path` (the attack reached it with the secret).
    fn upstream_authorization(&self, path: &str) -> Option<String> {
        self.env
            .upstream
            .seen()
            .iter()
            .find(|s| s.path == path)
            .map(|s| s.header("authorization").unwrap_or("").to_owned())
    }

    /// Waits for `secret_scrubbed` records (`veil audit --kind secret_scrubbed --json`) until
    /// one matches each of `wanted` (location, action prefix) and returns them all, checked
    /// to name the secret and never hold its value.
    fn scrubbed(&self, wanted: &[(&str, &str)]) -> Vec<Value> {
        let mut records = Vec::new();
        eventually(&format!("secret_scrubbed records for {wanted:?}"), || {
            records = self.env.veil.audit_json(&["--kind", "secret_scrubbed"]);
            wanted.iter().all(|(location, action)| {
                records.iter().any(|r| {
                    r["location"] == *location
                        && r["action"].as_str().is_some_and(|a| a.starts_with(action))
                })
            })
        });
        for record in &records {
            assert_eq!(record["kind"], "secret_scrubbed");
            assert_eq!(record["secret_name"], "github-main", "{record}");
            assert_eq!(record["host"], HOST, "{record}");
            assert!(record["count"].as_u64().is_some_and(|c| c >= 1), "{record}");
            assert!(
                !record.to_string().contains(&self.secret),
                "a record must never hold the value: {record}"
            );
        }
        records
    }

    /// The `secret_injected` records so far.
    fn injected(&self) -> Vec<Value> {
        self.env.veil.audit_json(&["--kind", "secret_injected"])
    }
}

/// Decodes base64 (either alphabet) leniently, as a workload digging for a secret would:
/// every character of the alphabet counts, anything else is skipped, a partial group is kept.
fn decode_base64(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut bits, mut n) = (0u32, 0);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => continue,
        };
        bits = bits << 6 | u32::from(v);
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

/// Everything a gzip stream decodes to before it ends or breaks off.
fn gunzip_prefix(compressed: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::GzDecoder::new(compressed);
    let mut buf = [0u8; 4096];
    while let Ok(n) = decoder.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

#[test]
fn an_echo_in_the_body_a_header_or_a_trailer_reaches_the_sandbox_as_the_placeholder() {
    let attack = Attack::new(&[HOST]);
    let echoed = format!("{{\"authorization\":\"Bearer {PLACEHOLDER}\"}}\n");
    for version in ["--http1.1", "--http2"] {
        let body = assert_ok(&attack.curl(&format!("{version} {BEARER}"), "/echo-body"));
        attack.assert_clean("body", body.as_bytes());
        assert_eq!(body, echoed, "{version}: the body, its length corrected");

        let head = assert_ok(&attack.curl(&format!("{version} -i {BEARER}"), "/echo-header"));
        attack.assert_clean("header", head.as_bytes());
        assert!(
            head.to_ascii_lowercase().contains(&format!(
                "x-echo: bearer {}",
                PLACEHOLDER.to_ascii_lowercase()
            )),
            "{version}: {head}"
        );
    }
    // Trailers only go to a client that says it takes them; python shows every raw byte.
    let raw = assert_ok(&attack.python(
        "raw",
        &[
            "GET /echo-trailer HTTP/1.1",
            &format!("Host: {HOST}"),
            "TE: trailers",
            "Authorization: Bearer $GITHUB_TOKEN",
            "Connection: close",
        ],
    ));
    attack.assert_clean("trailer", raw.as_bytes());
    let lower = raw.to_ascii_lowercase();
    assert!(lower.contains("transfer-encoding: chunked"), "{raw}");
    assert!(
        lower.contains(&format!(
            "\r\n0\r\nx-echo: bearer {}\r\n",
            PLACEHOLDER.to_ascii_lowercase()
        )),
        "the trailer arrives, with the placeholder: {raw}"
    );
    // curl reads the trailer too.
    let curl = assert_ok(&attack.curl(
        &format!("--http1.1 -i -H 'TE: trailers' {BEARER}"),
        "/echo-trailer",
    ));
    attack.assert_clean("trailer (curl)", curl.as_bytes());

    for path in ["/echo-body", "/echo-header", "/echo-trailer"] {
        assert_eq!(
            attack.upstream_authorization(path),
            Some(format!("Bearer {}", attack.secret)),
            "the upstream got the secret to echo at {path}"
        );
    }
    let records = attack.scrubbed(&[
        ("body", "replaced"),
        ("header:x-echo", "replaced"),
        ("trailer:x-echo", "replaced"),
    ]);
    assert!(records
        .iter()
        .all(|r| r["comm"] == "curl" || r["comm"] == "python3"));
}

#[test]
fn an_echo_dripped_in_five_byte_chunks_is_still_replaced() {
    let attack = Attack::new(&[HOST]);
    let echoed = format!("{{\"authorization\":\"Bearer {PLACEHOLDER}\"}}\n");
    for version in ["--http1.1", "--http2"] {
        let body = assert_ok(&attack.curl(&format!("{version} {BEARER}"), "/echo-drip"));
        attack.assert_clean(version, body.as_bytes());
        assert_eq!(body, echoed, "{version}");
    }
    let raw = assert_ok(&attack.python(
        "raw",
        &[
            "GET /echo-drip HTTP/1.1",
            &format!("Host: {HOST}"),
            "Authorization: Bearer $GITHUB_TOKEN",
            "Connection: close",
        ],
    ));
    // Whatever chunk framing veil chose, the chunks joined hold the placeholder only.
    let (_, chunked) = raw.split_once("\r\n\r\n").expect("a response head");
    let mut joined = String::new();
    let mut rest = chunked;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
        if size == 0 {
            break;
        }
        joined.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
    attack.assert_clean("joined chunks", joined.as_bytes());
    assert_eq!(joined, echoed);
    assert_eq!(
        attack.upstream_authorization("/echo-drip"),
        Some(format!("Bearer {}", attack.secret))
    );
    attack.scrubbed(&[("body", "replaced")]);
}

#[test]
fn a_short_gzip_compressed_echo_is_refused_with_502() {
    let attack = Attack::new(&[HOST]);
    let dir = attack.env.veil.work_dir();
    for version in ["--http1.1", "--http2"] {
        for compressed in ["--compressed", ""] {
            let file = dir.join(format!("short{version}{compressed}"));
            let out = attack.curl(
                &format!(
                    "{version} {compressed} -o {} -w '%{{http_code}}' {BEARER}",
                    file.display()
                ),
                "/echo-gzip",
            );
            assert_eq!(stdout(&out), "502", "{version} {compressed}: {out:?}");
            let got = fs::read(&file).unwrap_or_default();
            attack.assert_clean("short gzip", &got);
            attack.assert_clean("short gzip, decoded", &gunzip_prefix(&got));
        }
    }
    assert_eq!(
        attack.upstream_authorization("/echo-gzip"),
        Some(format!("Bearer {}", attack.secret)),
        "the upstream got the secret to echo"
    );
    attack.scrubbed(&[("body", "cut")]);
}

#[test]
fn a_long_streamed_gzip_compressed_echo_is_cut_off_before_the_secret() {
    let attack = Attack::new(&[HOST]);
    let dir = attack.env.veil.work_dir();
    let mut leaks = Vec::new();
    for version in ["--http1.1", "--http2"] {
        // curl decompressing, and curl keeping the compressed bytes (decoded here after).
        for compressed in ["--compressed", ""] {
            let file = dir.join(format!("long{version}{compressed}"));
            let out = attack.curl(
                &format!("{version} {compressed} -o {} {BEARER}", file.display()),
                "/echo-gzip-stream",
            );
            assert!(
                !out.status.success(),
                "{version} {compressed}: the transfer must fail: {out:?}"
            );
            let got = fs::read(&file).unwrap_or_default();
            let decoded = if compressed.is_empty() {
                gunzip_prefix(&got)
            } else {
                got.clone()
            };
            let what = format!("{version} {compressed:?}");
            leaks.extend(attack.leak(&format!("{what}, as received"), &got));
            leaks.extend(attack.leak(&format!("{what}, decoded"), &decoded));
            assert!(decoded.len() < 2 * NOISE, "{what}: {} bytes", decoded.len());
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
    assert_eq!(
        attack.upstream_authorization("/echo-gzip-stream"),
        Some(format!("Bearer {}", attack.secret)),
        "the upstream got the secret to echo"
    );
    attack.scrubbed(&[("body", "cut")]);
}

#[test]
fn a_basic_credential_echoed_in_base64_never_decodes_to_the_secret() {
    let attack = Attack::new(&[HOST]);
    let basic = "-u \"x-access-token:$GITHUB_TOKEN\"";
    let out = assert_ok(&attack.curl(&format!("-i {basic}"), "/echo-auth"));
    attack.assert_clean("echoed credential", out.as_bytes());
    let (head, body) = out.split_once("\r\n\r\n").expect("a response head");
    let credential = body.strip_prefix("Basic ").expect("a Basic credential");
    let decoded = decode_base64(credential);
    attack.assert_clean("decoded body", &decoded);
    assert_eq!(
        String::from_utf8_lossy(&decoded),
        format!("x-access-token:{PLACEHOLDER}"),
        "the credential the workload sent comes back"
    );
    let header = head
        .lines()
        .find_map(|l| l.strip_prefix("x-echo: ").or(l.strip_prefix("X-Echo: ")))
        .expect("the x-echo header");
    attack.assert_clean("decoded header", &decode_base64(header));

    let upstream = attack
        .upstream_authorization("/echo-auth")
        .expect("the upstream got the request");
    let sent = decode_base64(upstream.strip_prefix("Basic ").expect("Basic"));
    assert_eq!(
        String::from_utf8_lossy(&sent),
        format!("x-access-token:{}", attack.secret),
        "veil swapped the placeholder inside the credential"
    );

    // The upstream re-encodes the password inside other text, at every base64 offset.
    let out = assert_ok(&attack.curl(basic, "/echo-basic-rewrapped"));
    attack.assert_clean("rewrapped", out.as_bytes());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for line in lines {
        attack.assert_clean(&format!("rewrapped {line}, decoded"), &decode_base64(line));
    }
    let records = attack.scrubbed(&[("body", "replaced"), ("header:x-echo", "replaced")]);
    assert!(records.len() >= 3, "{records:?}");
}

#[test]
fn a_websocket_echo_comes_back_as_the_placeholder() {
    let attack = Attack::new(&[HOST]);
    let out = assert_ok(&attack.python("ws", &["/ws-auth"]));
    attack.assert_clean("websocket", out.as_bytes());
    let got: Value = serde_json::from_str(&out).expect("the client's JSON");
    assert!(
        got["status"]
            .as_str()
            .is_some_and(|s| s.starts_with("HTTP/1.1 101")),
        "{got}"
    );
    let raw = got["raw"].as_str().expect("raw");
    attack.assert_clean("raw frames", raw.as_bytes());
    let frames = got["frames"].as_array().expect("frames");
    let text: String = frames
        .iter()
        .filter(|f| f[0] == 1 || f[0] == 0)
        .filter_map(|f| f[1].as_str())
        .collect();
    assert_eq!(text, format!("Bearer {PLACEHOLDER}"), "{got}");
    assert_eq!(
        attack.upstream_authorization("/ws-auth"),
        Some(format!("Bearer {}", attack.secret))
    );
    attack.scrubbed(&[("frame", "replaced")]);
}

#[test]
fn absolute_form_fronting_is_misdirected_and_never_reaches_the_upstream() {
    let attack = Attack::new(&[HOST, OTHER]);
    for (sni, target, host) in [
        (HOST, format!("https://{HOST}/front-1"), OTHER),
        (HOST, format!("https://{OTHER}/front-2"), HOST),
        (OTHER, format!("https://{HOST}/front-3"), HOST),
        (OTHER, format!("https://{HOST}/front-4"), OTHER),
    ] {
        let status = attack.status(
            sni,
            &format!("--http1.1 --request-target {target} -H 'Host: {host}' {BEARER}"),
            "/",
        );
        assert_eq!(status, "421", "SNI {sni}, target {target}, Host {host}");
    }
    // Userinfo naming the secret's host in front of another one.
    let status = attack.status(
        HOST,
        &format!(
            "--http1.1 --request-target https://{HOST}@{OTHER}/front-5 -H 'Host: {HOST}' {BEARER}"
        ),
        "/",
    );
    assert!(status == "421" || status == "400", "userinfo: {status}");
    assert!(
        attack.env.upstream.seen().is_empty(),
        "the upstream saw a fronted request: {:?}",
        attack.env.upstream.seen()
    );
    assert!(attack.injected().is_empty(), "{:?}", attack.injected());
}

#[test]
fn an_h2_host_header_other_than_the_authority_is_misdirected() {
    let attack = Attack::new(&[HOST, OTHER]);
    assert_eq!(attack.h2_host(HOST, OTHER), "status 421\n");
    assert_eq!(attack.h2_host(OTHER, HOST), "status 421\n");
    assert!(
        attack.env.upstream.seen().is_empty(),
        "{:?}",
        attack.env.upstream.seen()
    );
    assert!(attack.injected().is_empty(), "{:?}", attack.injected());

    assert_eq!(attack.h2_host(HOST, "-"), "status 200\n");
    assert_eq!(
        attack.upstream_authorization("/h2-host"),
        Some(format!("Bearer {}", attack.secret)),
        "the same client, without fronting, is served"
    );
    assert_eq!(attack.injected().len(), 1);
}

#[test]
fn a_plain_http_host_header_opens_no_private_or_loopback_address() {
    let mut attack = Attack::new(&[HOST]);
    let curls = |addr: std::net::SocketAddr| {
        [
            format!(
                "curl -sS -o /dev/null -w '%{{http_code}}' -H 'Host: {HOST}' {BEARER} http://{addr}/ssrf"
            ),
            format!(
                "curl -sS -o /dev/null -w '%{{http_code}}' --resolve {HOST}:{}:{} {BEARER} http://{HOST}:{}/ssrf",
                addr.port(),
                addr.ip(),
                addr.port()
            ),
        ]
    };
    // Private addresses, from a `veil run` sandbox.
    let servers = [
        TlsUpstream::start_plain(REMOTE_A),
        TlsUpstream::start_plain(REMOTE_B),
    ];
    for server in &servers {
        let addr = server.addr;
        let [direct, resolved] = curls(addr);
        assert_eq!(
            stdout(&attack.sh(&direct)),
            "403",
            "{addr} with Host {HOST}"
        );
        assert_eq!(
            stdout(&attack.sh(&resolved)),
            "403",
            "{HOST} resolved to {addr}"
        );
        assert_eq!(server.connections(), 0, "{addr} got a connection");
        assert!(server.seen().is_empty(), "{addr} got a request");
    }
    // The host's loopback, from a cgroup attached without a namespace of its own: it shares
    // veil's, where loopback is steered too.
    let cgroup = attack.env.veil.make_cgroup("ssrf");
    let attach = attack
        .env
        .veil
        .run_veil(&["attach", cgroup.to_str().expect("utf-8 path")]);
    assert_ok(&attach);
    let local = TlsUpstream::start_plain("127.0.0.1");
    for script in curls(local.addr) {
        let out = spawn_in_cgroup(
            &cgroup,
            Command::new("sh")
                .args(["-c", &script])
                .env("GITHUB_TOKEN", PLACEHOLDER)
                .stdout(Stdio::piped()),
        )
        .wait_with_output()
        .expect("curl ran");
        assert_eq!(stdout(&out), "403", "{script}");
    }
    assert_eq!(
        local.connections(),
        0,
        "the host's loopback got a connection"
    );
    assert!(local.seen().is_empty(), "the host's loopback got a request");

    assert!(attack.injected().is_empty());
    let refused: Vec<Value> = attack
        .env
        .veil
        .wait_connections(6)
        .into_iter()
        .filter(|r| r["host"] == HOST && r["protocol"] == "http")
        .collect();
    assert_eq!(refused.len(), 6, "{refused:?}");
    assert!(
        refused.iter().all(|r| r["verdict"] != "allowed"),
        "{refused:?}"
    );
}

#[test]
fn a_passthrough_name_opens_a_private_address_only_through_a_cidr_rule() {
    const PINNED: &str = "pinned.example.test";
    let env = Env::with_names(
        &format!("[egress]\nallow = [\"{PINNED}\"]\npassthrough = [\"{PINNED}\"]\n"),
        &[PINNED],
    );
    let resolve = env.resolve(PINNED);
    let url = env.url(PINNED, "/pinned");
    let refused = stdout(&env.veil.run_veil(&[
        "run",
        "--",
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--resolve",
        &resolve,
        &url,
    ]));
    assert_eq!(
        refused, "403",
        "veil's own answer, over its own certificate"
    );
    assert_eq!(
        env.upstream.connections(),
        0,
        "nothing reached the upstream"
    );

    assert_ok(
        &env.veil
            .run_veil(&["egress", "allow", &format!("{REMOTE_A}/32")]),
    );
    let ca = env.ca_file.display().to_string();
    let out = env.veil.run_veil(&[
        "run",
        "--",
        "curl",
        "-sS",
        "--http1.1",
        "--cacert",
        &ca,
        "--resolve",
        &resolve,
        &url,
    ]);
    assert_eq!(
        assert_ok(&out),
        "ok GET /pinned HTTP/1.1\n",
        "relayed untouched: the upstream's own certificate"
    );
    assert_eq!(env.upstream.connections(), 1);
}

#[test]
fn after_the_attacks_a_normal_request_still_gets_its_secret() {
    let attack = Attack::new(&[HOST, OTHER]);
    for path in ["/echo-body", "/echo-drip", "/echo-gzip"] {
        attack.assert_clean(path, &attack.curl(BEARER, path).stdout);
    }
    // What this one delivers is checked by
    // a_long_streamed_gzip_compressed_echo_is_cut_off_before_the_secret; here it is one more
    // attack the daemon has to come through.
    let cut = attack.curl(&format!("--compressed {BEARER}"), "/echo-gzip-stream");
    assert!(!cut.status.success(), "the transfer is cut off: {cut:?}");
    attack.assert_clean(
        "basic",
        &attack
            .curl("-u \"x-access-token:$GITHUB_TOKEN\"", "/echo-auth")
            .stdout,
    );
    attack.assert_clean("websocket", &attack.python("ws", &["/ws-auth"]).stdout);
    assert_eq!(
        attack.status(
            HOST,
            &format!("--http1.1 --request-target https://{HOST}/front -H 'Host: {OTHER}' {BEARER}"),
            "/"
        ),
        "421"
    );
    assert_eq!(attack.h2_host(HOST, OTHER), "status 421\n");

    let before = attack.injected().len();
    let out = assert_ok(&attack.curl(&format!("--http1.1 {BEARER}"), "/normal"));
    assert_eq!(out, "ok GET /normal HTTP/1.1\n");
    assert_eq!(
        attack.upstream_authorization("/normal"),
        Some(format!("Bearer {}", attack.secret)),
        "the upstream gets the real value"
    );
    let injected = attack.injected();
    assert_eq!(injected.len(), before + 1, "{injected:?}");
    let record = injected.last().expect("the normal request's record");
    assert_eq!(record["secret_name"], "github-main");
    assert_eq!(record["host"], HOST);
    assert_eq!(record["header"], "authorization");
    assert_eq!(record["comm"], "curl");
    assert!(!record.to_string().contains(&attack.secret));
}
