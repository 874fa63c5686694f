//! Slots and scopes with real clients in real sandboxes: a Telegram-style path placeholder
//! with curl, form and JSON bodies with Python `requests` (whole and split across chunks),
//! HTTP/2 bodies with curl, oversized, malformed and compressed bodies refused before anything
//! is sent, method and path scopes, and audit records that name each slot.

use serde_json::{json, Value};
use veil_tests::{
    tls_env::{assert_ok, policy, stdout, Env, HOST},
    upstream::Seen,
    Instance, REMOTE_A,
};

/// Stores a secret with extra fields through the API; panics unless it is created.
fn create(veil: &Instance, name: &str, value: &str, env_var: &str, extra: Value) {
    let mut body = json!({"name": name, "secret": value, "env_var": env_var, "hosts": [HOST]});
    for (k, v) in extra.as_object().expect("an object") {
        body[k] = v.clone();
    }
    let (status, answer) = veil.api("POST", "/v1/secrets", Some(&body.to_string()));
    assert_eq!(status, 201, "{answer}");
}

/// A fresh random value with a prefix.
fn token(prefix: &str) -> String {
    veil_testkit::random_token(prefix).expect("randomness")
}

/// Runs python3 `script` in a sandbox, with `api.example.test` resolving to the upstream.
fn python(env: &Env, script: &str) -> String {
    let prelude = format!(
        "import os, socket, requests\n\
         _gai = socket.getaddrinfo\n\
         socket.getaddrinfo = lambda h, *a, **k: _gai('{REMOTE_A}' if h == '{HOST}' else h, *a, **k)\n"
    );
    let script = format!("{prelude}{script}");
    assert_ok(&env.veil.run_veil(&["run", "--", "python3", "-c", &script]))
}

/// The request the upstream saw at `path`.
fn seen_at(env: &Env, path: &str) -> Seen {
    env.upstream
        .seen()
        .into_iter()
        .find(|s| s.path == path)
        .unwrap_or_else(|| panic!("the upstream saw no request for {path}"))
}

fn body(seen: &Seen) -> String {
    String::from_utf8(seen.body.clone().expect("a whole body")).expect("utf-8 body")
}

/// The `secret_injected` / `placeholder_not_injected` records, as (kind, secret, slot,
/// reason).
fn injections(veil: &Instance) -> Vec<(String, String, String, String)> {
    veil.audit()
        .into_iter()
        .filter(|r| r["kind"] == "secret_injected" || r["kind"] == "placeholder_not_injected")
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            (s("kind"), s("secret_name"), s("slot"), s("reason"))
        })
        .collect()
}

fn injected(secret: &str, slot: &str) -> (String, String, String, String) {
    (
        "secret_injected".into(),
        secret.into(),
        slot.into(),
        String::new(),
    )
}

#[test]
fn path_form_and_json_slots_carry_the_secret_and_name_the_slot() {
    let env = Env::new(&policy(&[HOST]));
    let tg = format!("123456:{}", token("AA"));
    let refresh = format!("{} /+&=", token("rt_"));
    let key = format!("{}\"\\", token("key_"));
    let any = token("any_");
    create(&env.veil, "tg", &tg, "TG_TOKEN", json!({"slots": ["path"]}));
    create(
        &env.veil,
        "oauth",
        &refresh,
        "OAUTH_REFRESH",
        json!({"slots": [{"form": ["refresh_token"]}]}),
    );
    create(
        &env.veil,
        "apikey",
        &key,
        "API_KEY",
        json!({"slots": [{"json": ["/auth/key"]}]}),
    );
    create(
        &env.veil,
        "anyjson",
        &any,
        "ANY_KEY",
        json!({"slots": ["json", "form"]}),
    );

    // curl, a Telegram-style path: the token goes in a path segment (`:` stays as it is).
    let out = env.curl(&[
        "--resolve",
        &env.resolve(HOST),
        &env.url(HOST, "/botIRONSH_PROXY_tg/sendMessage?chat_id=1"),
    ]);
    assert_ok(&out);
    seen_at(&env, &format!("/bot{tg}/sendMessage?chat_id=1"));

    // Python requests: a form and a JSON body, whole; the named fields only.
    let out = python(
        &env,
        &format!(
            "r = requests.post('{form_url}', data={{'grant_type': 'refresh_token', \
               'refresh_token': os.environ['OAUTH_REFRESH'], 'other': os.environ['OAUTH_REFRESH']}})\n\
             print(r.status_code)\n\
             r = requests.post('{json_url}', json={{'auth': {{'key': os.environ['API_KEY']}}, \
               'note': os.environ['API_KEY'], 'any': os.environ['ANY_KEY']}})\n\
             print(r.status_code)\n",
            form_url = env.url(HOST, "/slots/form"),
            json_url = env.url(HOST, "/slots/json"),
        ),
    );
    assert_eq!(out, "200\n200\n");
    let form = body(&seen_at(&env, "/slots/form"));
    let fields: Vec<(String, String)> = form
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("k=v");
            (k.to_owned(), percent_decode(v))
        })
        .collect();
    assert!(
        fields.contains(&("refresh_token".into(), refresh.clone())),
        "{form}"
    );
    assert!(
        fields.contains(&("other".into(), "IRONSH_PROXY_oauth".into())),
        "{form}"
    );
    let sent: Value = serde_json::from_str(&body(&seen_at(&env, "/slots/json"))).unwrap();
    assert_eq!(sent["auth"]["key"], key.as_str());
    assert_eq!(sent["note"], "IRONSH_PROXY_apikey");
    assert_eq!(sent["any"], any.as_str());

    // A JSON body split across chunks (chunked, no length: it streams), placeholders cut in
    // two at the chunk boundaries.
    let out = python(
        &env,
        &format!(
            "def parts():\n\
             \x20   yield b'{{\"auth\": {{\"key\": \"IRONSH_PR'\n\
             \x20   yield b'OXY_apikey\"}}, \"x\": [\"IRONSH_PROXY_any'\n\
             \x20   yield b'json\"]}}'\n\
             r = requests.post('{url}', data=parts(), headers={{'Content-Type': 'application/json'}})\n\
             print(r.status_code)\n",
            url = env.url(HOST, "/slots/chunked"),
        ),
    );
    assert_eq!(out, "200\n");
    let sent: Value = serde_json::from_str(&body(&seen_at(&env, "/slots/chunked"))).unwrap();
    assert_eq!(sent["auth"]["key"], key.as_str());
    assert_eq!(sent["x"][0], any.as_str());

    // HTTP/2 from curl, a JSON body of known length.
    let out = env.curl(&[
        "--http2",
        "--resolve",
        &env.resolve(HOST),
        "-H",
        "content-type: application/json",
        "--data-binary",
        r#"{"auth":{"key":"IRONSH_PROXY_apikey"}}"#,
        &env.url(HOST, "/slots/h2"),
    ]);
    assert_ok(&out);
    let h2 = seen_at(&env, "/slots/h2");
    assert_eq!(h2.version, "HTTP/2.0");
    let sent: Value = serde_json::from_str(&body(&h2)).unwrap();
    assert_eq!(sent["auth"]["key"], key.as_str());

    // HTTP/2, a body from standard input.
    let script = format!(
        "printf '%s' '{{\"s\": \"IRONSH_PROXY_anyjson\"}}' | curl -sS --http2 --resolve {} \
         -H 'content-type: application/json' -X POST -T - {}",
        env.resolve(HOST),
        env.url(HOST, "/slots/h2-stream")
    );
    assert_ok(&env.veil.run_veil(&["run", "--", "sh", "-c", &script]));
    let h2 = seen_at(&env, "/slots/h2-stream");
    assert_eq!(h2.version, "HTTP/2.0");
    let sent: Value = serde_json::from_str(&body(&h2)).unwrap();
    if let Some(length) = h2.header("content-length") {
        assert_eq!(length, body(&h2).len().to_string());
    }
    assert_eq!(sent["s"], any.as_str());

    let records = injections(&env.veil);
    for expected in [
        injected("tg", "path"),
        injected("oauth", "form:refresh_token"),
        injected("apikey", "json:/auth/key"),
        injected("anyjson", "json:/any"),
        injected("anyjson", "json:/x/0"),
    ] {
        assert!(records.contains(&expected), "{expected:?} in {records:?}");
    }
    let all = format!("{:?}", env.veil.audit());
    for value in [&tg, &refresh, &key, &any] {
        assert!(
            !all.contains(value.as_str()),
            "a record must never hold a value"
        );
    }
}

#[test]
fn oversized_malformed_and_compressed_bodies_are_refused_before_anything_is_sent() {
    let env = Env::with_args(&policy(&[HOST]), &["--max-request-body-bytes", "4096"]);
    create(
        &env.veil,
        "apikey",
        &token("key_"),
        "API_KEY",
        json!({"slots": [{"json": ["/auth/key"]}]}),
    );
    let post = |path: &str, body: &str, extra: &[&str]| {
        let mut args = vec![
            "--resolve".to_owned(),
            env.resolve(HOST),
            "-o".to_owned(),
            "/dev/null".to_owned(),
            "-w".to_owned(),
            "%{http_code}".to_owned(),
            "-H".to_owned(),
            "content-type: application/json".to_owned(),
            "--data-binary".to_owned(),
            body.to_owned(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(env.url(HOST, path));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        stdout(&env.curl(&args))
    };
    let big = format!(
        r#"{{"auth":{{"key":"IRONSH_PROXY_apikey"}},"pad":"{}"}}"#,
        "a".repeat(8192)
    );
    assert_eq!(post("/slots/big", &big, &[]), "413");
    assert_eq!(
        post(
            "/slots/big-chunked",
            &big,
            &["-H", "transfer-encoding: chunked", "--http1.1"]
        ),
        "413"
    );
    assert_eq!(
        post(
            "/slots/malformed",
            r#"{"auth":{"key":"IRONSH_PROXY_apikey"}"#,
            &[]
        ),
        "400"
    );
    assert_eq!(
        post(
            "/slots/trailing",
            r#"{"auth":{"key":"IRONSH_PROXY_apikey"}} x"#,
            &[]
        ),
        "400"
    );
    assert_eq!(
        post(
            "/slots/gzip",
            r#"{"auth":{"key":"IRONSH_PROXY_apikey"}}"#,
            &["-H", "content-encoding: gzip"]
        ),
        "415"
    );
    // A body shorter than its Content-Length says: what was read is malformed JSON, 400.
    let port = env.upstream.addr.port();
    let script = [
        "import ssl".to_owned(),
        format!(
            "s = ssl.create_default_context().wrap_socket(socket.create_connection(('{REMOTE_A}', {port})), server_hostname='{HOST}')"
        ),
        r#"body = b'{"auth":{"key":"IRONSH_PROXY_apikey"}}'"#.to_owned(),
        format!(
            r"s.sendall(b'POST /slots/lie HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n' + body)"
        ),
        r"print(s.recv(100).split(b'\r\n')[0].decode())".to_owned(),
    ]
    .join("\n");
    assert_eq!(python(&env, &script), "HTTP/1.1 400 Bad Request\n");
    for path in [
        "/slots/lie",
        "/slots/big",
        "/slots/big-chunked",
        "/slots/malformed",
        "/slots/trailing",
        "/slots/gzip",
    ] {
        assert!(
            !env.upstream.seen().iter().any(|s| s.path == path),
            "{path} reached the upstream"
        );
    }
    let limits: Vec<Value> = env
        .veil
        .audit()
        .into_iter()
        .filter(|r| r["kind"] == "limit_exceeded")
        .collect();
    let named = |limit: &str| limits.iter().filter(|r| r["limit"] == limit).count();
    assert_eq!(named("max_request_body_bytes"), 2, "{limits:?}");
    assert_eq!(named("request_body_encoding"), 1, "{limits:?}");
    assert!(!injections(&env.veil)
        .iter()
        .any(|(kind, ..)| kind == "secret_injected"));
}

#[test]
fn method_and_path_scopes_allow_and_refuse() {
    let env = Env::new(&policy(&[HOST]));
    let secret = token("ghp_");
    create(
        &env.veil,
        "gh",
        &secret,
        "GH_TOKEN",
        json!({"methods": ["GET", "post"], "paths": ["/repos/my-org/*"]}),
    );
    let call = |method: &str, path: &str| {
        assert_ok(&env.curl(&[
            "--path-as-is",
            "-X",
            method,
            "--resolve",
            &env.resolve(HOST),
            "-H",
            "Authorization: Bearer IRONSH_PROXY_gh",
            &env.url(HOST, path),
        ]));
        seen_at(&env, path)
            .header("authorization")
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(call("GET", "/repos/my-org/a"), format!("Bearer {secret}"));
    assert_eq!(
        call("POST", "/repos/my-org/a/issues"),
        format!("Bearer {secret}")
    );
    assert_eq!(call("DELETE", "/repos/my-org/b"), "Bearer IRONSH_PROXY_gh");
    assert_eq!(call("GET", "/repos/other-org/c"), "Bearer IRONSH_PROXY_gh");
    assert_eq!(
        call("GET", "/repos/my-org/../other-org/d"),
        "Bearer IRONSH_PROXY_gh"
    );
    assert_eq!(
        call("GET", "/repos/my-org/%2e%2e/other-org/e"),
        "Bearer IRONSH_PROXY_gh"
    );

    let records = injections(&env.veil);
    let reasons: Vec<&str> = records
        .iter()
        .filter(|(kind, ..)| kind == "placeholder_not_injected")
        .map(|(_, _, _, reason)| reason.as_str())
        .collect();
    assert!(reasons.contains(&"method_out_of_scope"), "{records:?}");
    assert!(reasons.contains(&"path_out_of_scope"), "{records:?}");
    assert_eq!(
        records
            .iter()
            .filter(|r| **r == injected("gh", "header:authorization"))
            .count(),
        2,
        "{records:?}"
    );

    // Patterns that do not parse: 400 naming the field, nothing stored.
    for (body, field) in [
        (json!({"paths": ["repos/*"]}), "paths"),
        (json!({"paths": ["/a/../b"]}), "paths"),
        (json!({"methods": ["GE T"]}), "methods"),
        (json!({"slots": [{"json": ["auth"]}]}), "slots"),
    ] {
        let mut full = json!({"name": "bad", "secret": "v", "env_var": "BAD_VAR"});
        for (k, v) in body.as_object().unwrap() {
            full[k] = v.clone();
        }
        let (status, answer) = env.veil.api("POST", "/v1/secrets", Some(&full.to_string()));
        assert_eq!(
            (status, answer["field"].as_str()),
            (400, Some(field)),
            "{answer}"
        );
    }
    let (_, all) = env.veil.api("GET", "/v1/secrets", None);
    assert_eq!(all.as_array().map(Vec::len), Some(1), "{all}");

    // The CLI: `add` with slots, methods and paths; `update` back to any method.
    let value_file = env.veil.dir().join("cli-value");
    std::fs::write(&value_file, token("cli_")).unwrap();
    let from = value_file.display().to_string();
    assert_ok(&env.veil.run_veil(&[
        "secrets",
        "add",
        "cli",
        "--env-var",
        "CLI_TOKEN",
        "--host",
        HOST,
        "--slot",
        "path",
        "--slot",
        "form=a,b c",
        "--slot",
        "json=/auth/key",
        "--method",
        "post",
        "--path",
        "/bot*/",
        "--from-file",
        &from,
    ]));
    let shown: Value = serde_json::from_str(&assert_ok(
        &env.veil.run_veil(&["secrets", "show", "cli", "--json"]),
    ))
    .unwrap();
    assert_eq!(
        shown["slots"],
        json!(["path", {"form": ["a", "b c"]}, {"json": ["/auth/key"]}])
    );
    assert_eq!(shown["methods"], json!(["POST"]));
    assert_eq!(shown["paths"], json!(["/bot*"]));
    assert_ok(
        &env.veil
            .run_veil(&["secrets", "update", "cli", "--keep-value", "--any-method"]),
    );
    let shown: Value = serde_json::from_str(&assert_ok(
        &env.veil.run_veil(&["secrets", "show", "cli", "--json"]),
    ))
    .unwrap();
    assert_eq!(shown["methods"], json!([]));
    let bad = env.veil.run_veil(&[
        "secrets",
        "add",
        "bad2",
        "--env-var",
        "BAD2",
        "--path",
        "nope",
        "--from-file",
        &from,
    ]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("paths"),
        "{bad:?}"
    );
    let (_, all) = env.veil.api("GET", "/v1/secrets", None);
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["cli", "gh"]);
    assert_eq!(all[1]["methods"], json!(["GET", "POST"]));
    assert_eq!(all[1]["paths"], json!(["/repos/my-org/*"]));
    assert_eq!(all[1]["slots"], json!(["headers"]));
}

/// Percent-decodes a form value (`+` is a space).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                out.push(u8::from_str_radix(&value[i + 1..i + 3], 16).expect("hex"));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).expect("utf-8")
}
