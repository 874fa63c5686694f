//! The audit log: `veil audit verify` on intact and tampered logs (with and without the
//! daemon), `--follow` live, every filter (through the daemon and straight from the
//! database), retention that keeps the chain verifiable, and a full disk that stops durable
//! records and turns `/healthz` to 503; and floods a sandbox cannot turn into as many records
//! (placeholders left alone, refused UDP sends).

use std::{
    fs,
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::mpsc::{self, Receiver},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;
use veil_tests::{
    audit::{self, seq_of},
    eventually, probe,
    tls_env::{assert_ok, policy, Env, HOST},
    EchoServers, Instance, REMOTE_A, REMOTE_B,
};

const CLIENT: &str = env!("CARGO_BIN_EXE_veil-test-client");

#[test]
fn verify_passes_on_an_intact_log_and_finds_edited_deleted_and_reordered_records() {
    let mut veil = Instance::new();
    let server = EchoServers::start(&[REMOTE_A], 1);
    veil.start_daemon(&[]);
    for name in ["v1", "v2", "v3"] {
        echo(&veil, name, server.addrs[0]);
    }
    veil.wait_connections(3);
    let count = veil.audit().len();
    veil.assert_intact(count);
    let (status, body) = veil.api_get("/v1/audit/verify");
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).expect("a JSON verification");
    assert_eq!(report["verified"], count as u64, "{body}");
    assert_eq!(report["broken"], Value::Null, "{body}");

    veil.stop_daemon(libc::SIGTERM);
    let count = veil.audit().len();
    veil.assert_intact(count);
    let seq = seq_of(&veil.connections()[1]);
    let db = veil.db_path();

    let intact = audit::edit(&db, audit::snapshot);

    // Edited: a refused connection passed off as allowed.
    audit::edit(&db, |tree| {
        let original = audit::value(tree, seq);
        let edited = original.replace(r#""verdict":"allowed""#, r#""verdict":"refused""#);
        assert_ne!(edited, original);
        audit::put(tree, seq, &edited);
    });
    veil.assert_broken(seq, "changed");
    audit::restore(&db, &intact);
    veil.assert_intact(count);

    // Deleted.
    audit::edit(&db, |tree| audit::remove(tree, seq));
    veil.assert_broken(seq, "removed");
    audit::restore(&db, &intact);
    veil.assert_intact(count);

    // Reordered: two neighbours swapped.
    audit::edit(&db, |tree| {
        let this = audit::value(tree, seq);
        let next = audit::value(tree, seq + 1);
        // The later one first: `put` replaces the first record stored with the seq it is
        // given, and for a moment two records name `seq`.
        audit::put(tree, seq + 1, &this);
        audit::put(tree, seq, &next);
    });
    veil.assert_broken(seq, "reordered");

    // A daemon started on the tampered log finds the same through the API.
    veil.start_daemon(&[]);
    veil.assert_broken(seq, "reordered");
}

#[test]
fn durable_records_survive_sigkill_and_the_chain_stays_whole() {
    let mut veil = Instance::new();
    let server = EchoServers::start(&[REMOTE_A], 2);
    veil.start_daemon(&[]);
    for i in 0..5 {
        let name = format!("k{i}");
        let out = veil.run_veil(&[
            "run",
            "--sandbox",
            &name,
            "--",
            CLIENT,
            "many",
            "50",
            &server.addr_list(),
        ]);
        assert!(out.status.success(), "{out:?}");
    }
    // Connection records are still being queued and committed while the daemon dies.
    veil.stop_daemon(libc::SIGKILL);
    let records = veil.audit();
    for i in 0..5 {
        let name = format!("k{i}");
        for kind in ["sandbox_attached", "sandbox_detached"] {
            assert!(
                records
                    .iter()
                    .any(|r| r["kind"] == kind && r["name"] == name),
                "{kind} {name} was acknowledged, so it must have survived"
            );
        }
    }
    veil.assert_intact(records.len());
    // A restarted daemon continues the chain.
    veil.start_daemon(&[]);
    echo(&veil, "after", server.addrs[0]);
    veil.stop_daemon(libc::SIGTERM);
    veil.assert_intact(veil.audit().len());
}

#[test]
fn follow_shows_records_as_they_land() {
    let mut veil = Instance::new();
    let server = EchoServers::start(&[REMOTE_A], 1);
    veil.start_daemon(&[]);
    echo(&veil, "f0", server.addrs[0]);
    veil.wait_connections(1);

    let mut json = Follower::start(&veil, &["--json", "--kind", "connection"]);
    let first = json.record();
    assert_eq!(first["sandbox"], "f0");
    let mut last = seq_of(&first);
    for name in ["f1", "f2"] {
        echo(&veil, name, server.addrs[0]);
        let record = json.record();
        assert_eq!(record["kind"], "connection");
        assert_eq!(record["sandbox"], name);
        assert!(seq_of(&record) > last, "{record} after seq {last}");
        last = seq_of(&record);
    }

    let mut table = Follower::start(&veil, &["--sandbox", "f3"]);
    assert!(table.line().starts_with("SEQ "), "the header comes first");
    echo(&veil, "f3", server.addrs[0]);
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let row = table.line();
        assert!(row.contains(" f3 "), "{row}");
        kinds.push(row.split_whitespace().nth(2).unwrap_or_default().to_owned());
    }
    kinds.sort();
    assert_eq!(
        kinds,
        ["connection", "sandbox_attached", "sandbox_detached"]
    );
    table.stop();

    // The daemon stopping ends a follow, saying so.
    veil.stop_daemon(libc::SIGTERM);
    let out = json.finish();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("daemon stopped"),
        "{out:?}"
    );
    // Without a daemon there is nothing to follow.
    let out = veil.run_veil(&["audit", "--follow"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--follow needs the veil daemon"));
}

#[test]
fn every_filter_through_the_daemon_and_from_the_database() {
    let mut veil = Instance::new();
    let server = EchoServers::start(&[REMOTE_A, REMOTE_B], 1);
    veil.start_daemon(&[]);
    echo(&veil, "one", server.addrs[0]);
    echo(&veil, "two", server.addrs[1]);
    // Plain HTTP naming a host: the policy only allows addresses, so it is refused, and its
    // record names the host.
    let web = veil.run_veil(&[
        "run",
        "--sandbox",
        "web",
        "--",
        "curl",
        "-sS",
        "--max-time",
        "10",
        "--resolve",
        &format!("API.example.test:{}:{REMOTE_A}", server.addrs[0].port()),
        &format!("http://API.example.test:{}/", server.addrs[0].port()),
    ]);
    assert!(web.status.code().is_some(), "{web:?}");
    veil.wait_connections(3);
    veil.reload();
    veil.wait_records("policy_changed", 2);
    let all = veil.audit();

    let expect = |keep: &dyn Fn(&Value) -> bool| -> Vec<u64> {
        all.iter().filter(|r| keep(r)).map(seq_of).collect()
    };
    let two_conn_time = all
        .iter()
        .find(|r| r["kind"] == "connection" && r["sandbox"] == "two")
        .map(|r| r["time_ms"].as_u64().expect("a time"))
        .expect("sandbox two's connection");
    let two_conn_rfc3339 = rfc3339(two_conn_time);
    let cases: Vec<(Vec<&str>, Vec<u64>)> = vec![
        (
            vec!["--sandbox", "one"],
            expect(&|r| r["sandbox"] == "one" || r["name"] == "one"),
        ),
        (
            vec!["--kind", "connection"],
            expect(&|r| r["kind"] == "connection"),
        ),
        (
            vec!["--host", REMOTE_B],
            expect(&|r| r["kind"] == "connection" && r["sandbox"] == "two"),
        ),
        (
            vec!["--host", "api.EXAMPLE.test"],
            expect(&|r| {
                r["host"]
                    .as_str()
                    .is_some_and(|h| h.eq_ignore_ascii_case("api.example.test"))
            }),
        ),
        (
            vec!["--kind", "policy_changed"],
            expect(&|r| r["kind"] == "policy_changed"),
        ),
        (
            vec!["--since", &two_conn_rfc3339],
            expect(&|r| r["time_ms"].as_u64() >= Some(two_conn_time)),
        ),
        (
            vec!["--until", &two_conn_rfc3339],
            expect(&|r| r["time_ms"].as_u64() < Some(two_conn_time)),
        ),
        (
            vec![
                "--since",
                "1h",
                "--kind",
                "sandbox_attached",
                "--limit",
                "2",
            ],
            expect(&|r| r["kind"] == "sandbox_attached")[1..].to_vec(),
        ),
        (vec!["--until", "1h"], Vec::new()),
        (vec!["--secret", "github-main"], Vec::new()),
        (
            vec!["--limit", "1"],
            vec![seq_of(all.last().expect("records"))],
        ),
    ];
    for (args, expected) in &cases {
        assert_eq!(
            &veil.seqs(args),
            expected,
            "veil audit {args:?} with the daemon"
        );
    }
    let policies = veil.audit_json(&["--kind", "policy_changed"]);
    assert_eq!(policies[0]["trigger"], "start");
    assert_eq!(policies[1]["trigger"], "reload");
    assert_eq!(
        policies[1]["source"],
        veil.config_path().display().to_string()
    );
    assert_eq!(policies[1]["allow_rules"], 2);

    // The table: a header and one row per record.
    let out = veil.run_veil(&["audit", "--sandbox", "one"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("SEQ "), "{table}");
    assert_eq!(table.lines().count(), 1 + cases[0].1.len(), "{table}");
    // The same filters over the API.
    let (status, body) = veil.api_get(&format!("/v1/audit?host={REMOTE_B}&kind=connection"));
    assert_eq!(status, 200);
    assert_eq!(body.lines().count(), 1, "{body}");

    // Bad filters say what is wrong.
    for (args, says) in [
        (&["--kind", "nope"][..], "policy_changed"),
        (&["--since", "yesterday"], "since"),
        (&["--until", "2026-13-01T00:00:00Z"], "until"),
        (&["--limit", "x"], "--limit"),
    ] {
        let out = veil.run_veil(&[&["audit"], args].concat());
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }

    // Straight from the database, the answers are the same.
    veil.stop_daemon(libc::SIGTERM);
    for (args, expected) in &cases {
        assert_eq!(
            &veil.seqs(args),
            expected,
            "veil audit {args:?} without the daemon"
        );
    }
}

#[test]
fn retention_by_count_and_age_keeps_verify_passing() {
    let mut veil = Instance::new();
    let server = EchoServers::start(&[REMOTE_A], 1);
    veil.start_daemon(&[
        "--audit-max-records",
        "5",
        "--audit-retention-interval",
        "1s",
    ]);
    for name in ["r1", "r2", "r3", "r4"] {
        echo(&veil, name, server.addrs[0]);
    }
    let retention = veil.wait_records("retention", 1);
    assert_eq!(retention[0]["max_records"], 5);
    assert!(retention[0]["dropped"].as_u64() > Some(0));
    let records = veil.audit();
    let first = seq_of(&records[0]);
    assert!(first > 1, "the oldest records are gone: {records:?}");
    veil.assert_verified("dropped by retention");
    veil.stop_daemon(libc::SIGTERM);
    veil.assert_verified("dropped by retention");

    // By age, at start: everything older than a second goes.
    thread::sleep(Duration::from_millis(1500));
    veil.start_daemon(&["--audit-max-age", "1s"]);
    // The first daemon's retention records may still be there until the new one's first
    // round has run.
    eventually("a retention record by age", || {
        veil.audit_json(&["--kind", "retention"])
            .last()
            .is_some_and(|latest| latest["max_age_ms"] == 1000)
    });
    eventually("only new records", || {
        veil.audit()
            .iter()
            .all(|r| r["kind"] == "policy_changed" || r["kind"] == "retention")
    });
    veil.assert_verified("dropped by retention");
    veil.stop_daemon(libc::SIGTERM);
    veil.assert_verified("dropped by retention");

    // Removing the anchor retention left is caught.
    let anchor = audit::edit(&veil.db_path(), |tree| {
        let (key, value) = tree.first().expect("reading").expect("an anchor");
        assert!(value.starts_with(br#"{"anchor":"#), "{value:?}");
        tree.remove(&key).expect("removing the anchor");
        u64::from_be_bytes(key.as_ref().try_into().expect("an 8-byte key"))
    });
    veil.assert_broken(1, "removed");
    let out = veil.run_veil(&["audit", "verify"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("records 1 to {anchor}")),
        "{out:?}"
    );

    // Bad retention options are refused up front.
    for args in [
        &["serve", "--audit-max-records", "0"][..],
        &["serve", "--audit-max-age", "0s"],
        &["serve", "--audit-max-age", "soon"],
    ] {
        let out = veil.run_veil(args);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--audit-max"),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_full_disk_fails_the_audit_log_loudly_and_healthz_says_so() {
    let mut veil = Instance::new();
    let state = veil.state_dir();
    let _mount = Tmpfs::mount(&state, "8m");
    veil.start_daemon(&[]);
    let out = veil.run_veil(&["run", "--sandbox", "before", "--", "true"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(veil.api_get("/healthz").0, 200);

    fill(&state);
    // Each reload is a policy_changed record; sled fails once it needs a page it cannot get.
    let mut health = veil.api_get("/healthz");
    for _ in 0..500 {
        if health.0 != 200 {
            break;
        }
        veil.reload();
        thread::sleep(Duration::from_millis(20));
        health = veil.api_get("/healthz");
    }
    let (status, body) = health;
    assert_eq!(status, 503, "{body}");
    let health: Value = serde_json::from_str(&body).expect("a JSON body");
    assert_eq!(health["status"], "failing");
    let reason = health["reason"].as_str().expect("a reason");
    assert!(reason.contains("audit log"), "{reason}");
    assert!(
        reason.contains(&veil.db_path().display().to_string()),
        "{reason}"
    );
    assert!(veil.daemon_log().contains("AUDIT LOG FAILURE"));

    // Nothing that needs its record goes ahead, and the refusal says why.
    let out = veil.run_veil(&["run", "--sandbox", "after", "--", "true"]);
    assert!(!out.status.success(), "a sandbox must not start unaudited");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the audit log is failing"),
        "{stderr}\n{}",
        veil.daemon_log()
    );
    veil.stop_daemon(libc::SIGKILL);
}

/// Runs `veil-test-client echo` to `dst` in a new sandbox `name`.
/// The placeholder of the secret `github-main` (the default prefix).
const PLACEHOLDER: &str = "IRONSH_PROXY_github-main";

/// Stores the secret `github-main` for api.example.test and returns its value.
fn github_secret(env: &Env) -> String {
    let secret = veil_testkit::random_token("ghp_").expect("randomness");
    env.veil
        .create_secret("github-main", &secret, "GITHUB_TOKEN", &[HOST]);
    secret
}

/// A request from a fresh sandbox to api.example.test with the placeholder gets the secret,
/// and its `secret_injected` record is written.
fn a_normal_request_still_gets_its_secret(env: &Env, secret: &str) {
    let before = env.veil.wait_records("secret_injected", 0).len();
    let out = env.curl(&[
        "--http1.1",
        "--resolve",
        &env.resolve(HOST),
        "-H",
        &format!("Authorization: Bearer {PLACEHOLDER}"),
        &env.url(HOST, "/after"),
    ]);
    assert_eq!(assert_ok(&out), "ok GET /after HTTP/1.1\n");
    let seen = env.upstream.seen();
    let after = seen.iter().find(|s| s.path == "/after").expect("/after");
    assert_eq!(
        after.header("authorization"),
        Some(format!("Bearer {secret}").as_str())
    );
    let injected = env.veil.wait_records("secret_injected", before + 1);
    assert_eq!(injected.len(), before + 1, "{injected:?}");
}

/// The records of `kind` of sandbox `sandbox`.
fn of_sandbox(veil: &Instance, kind: &str, sandbox: &str) -> Vec<Value> {
    veil.audit_json(&["--kind", kind, "--sandbox", sandbox])
}

/// The sum of the records' counts (a record without one counts 1).
fn counted(records: &[Value]) -> u64 {
    records
        .iter()
        .map(|r| r["count"].as_u64().unwrap_or(1))
        .sum()
}

#[test]
fn a_request_with_2000_placeholders_left_alone_is_one_record_with_their_count() {
    let env = Env::new(&policy(&[HOST, "other.example.test"]));
    let secret = github_secret(&env);
    // 2,000 placeholders in four headers, to a host the secret is not for.
    let value = vec![PLACEHOLDER; 500].join(" ");
    let headers: Vec<String> = ["X-A", "X-B", "X-C", "X-D"]
        .iter()
        .map(|name| format!("{name}: {value}"))
        .collect();
    let mut args = vec![
        "--http1.1".to_owned(),
        "--resolve".to_owned(),
        env.resolve("other.example.test"),
    ];
    for header in &headers {
        args.extend(["-H".to_owned(), header.clone()]);
    }
    args.push(env.url("other.example.test", "/flood"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = env.curl(&args);
    assert_eq!(assert_ok(&out), "ok GET /flood HTTP/1.1\n");
    let seen = env.upstream.seen();
    let flood = seen.iter().find(|s| s.path == "/flood").expect("/flood");
    assert_eq!(flood.header("x-a"), Some(value.as_str()), "left alone");

    let kept = env.veil.wait_records("placeholder_not_injected", 1);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["count"], 2000);
    assert_eq!(kept[0]["reason"], "out_of_scope");
    assert_eq!(kept[0]["header"], "x-a");
    assert_eq!(
        kept[0]["headers"],
        serde_json::json!(["x-a", "x-b", "x-c", "x-d"])
    );
    let table = String::from_utf8_lossy(
        &env.veil
            .run_veil(&["audit", "--kind", "placeholder_not_injected"])
            .stdout,
    )
    .into_owned();
    assert!(table.contains("out_of_scope (2000 times)"), "{table}");

    a_normal_request_still_gets_its_secret(&env, &secret);
    assert!(!format!("{:?}", env.veil.audit()).contains(&secret));
}

#[test]
fn twenty_thousand_refused_udp_sends_are_a_handful_of_counted_records() {
    const SENDS: u64 = 20_000;
    let env = Env::new(&policy(&[HOST]));
    let secret = github_secret(&env);
    let report = probe::in_sandbox(
        &env.veil,
        &["--sandbox", "flood"],
        &["udp", REMOTE_A, "9", "--count", &SENDS.to_string()],
    );
    assert_eq!(report["refused"], SENDS, "{report}");

    // Every send is counted: in a refusal record, or as dropped by the kernel's full ring or
    // by the sandbox's spent budget of waiting records.
    let tally = || {
        let refusals = of_sandbox(&env.veil, "kernel_refusal", "flood");
        let ring: u64 = env
            .veil
            .audit_json(&["--kind", "kernel_refusals_dropped"])
            .iter()
            .map(|r| r["dropped"].as_u64().expect("a count"))
            .sum();
        let budget: u64 = of_sandbox(&env.veil, "records_dropped", "flood")
            .iter()
            .map(|r| r["dropped"].as_u64().expect("a count"))
            .sum();
        (counted(&refusals), ring, budget, refusals)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut recorded, mut ring, mut budget, mut refusals) = tally();
    while recorded + ring + budget != SENDS && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
        (recorded, ring, budget, refusals) = tally();
    }
    assert_eq!(
        (recorded + ring + budget),
        SENDS,
        "recorded {recorded}, dropped by the ring {ring}, by the budget {budget}: {refusals:?}"
    );
    assert!(
        refusals.len() <= 12,
        "{} records for {SENDS} sends",
        refusals.len()
    );
    assert!(refusals.iter().any(|r| r["count"].as_u64() > Some(1)));
    // One process sent them all: the probe, whose host pid the records carry (it sees
    // another pid in its sandbox's PID namespace).
    assert!(refusals.iter().all(|r| r["pid"] == refusals[0]["pid"]));
    assert!(
        refusals.iter().all(|r| r["comm"] == "python3"),
        "{refusals:?}"
    );

    a_normal_request_still_gets_its_secret(&env, &secret);
    env.veil.assert_intact(env.veil.audit().len());
}

fn echo(veil: &Instance, name: &str, dst: SocketAddr) {
    let out = veil.run_veil(&[
        "run",
        "--sandbox",
        name,
        "--",
        CLIENT,
        "echo",
        &dst.to_string(),
        name,
    ]);
    assert!(out.status.success(), "{out:?}");
}

/// `time_ms` as RFC 3339 with milliseconds.
fn rfc3339(time_ms: u64) -> String {
    let out = Command::new("date")
        .args([
            "-u",
            "-d",
            &format!("@{}.{:03}", time_ms / 1000, time_ms % 1000),
            "+%Y-%m-%dT%H:%M:%S.%3NZ",
        ])
        .output()
        .expect("date runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Fills the file system holding `dir` until it has no space left.
fn fill(dir: &Path) {
    let out = Command::new("dd")
        .args([
            "if=/dev/zero",
            &format!("of={}", dir.join("filler").display()),
            "bs=64k",
        ])
        .output()
        .expect("dd runs");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No space left"),
        "{out:?}"
    );
}

/// `veil audit --follow ARGS` running, its output lines read as they arrive.
struct Follower {
    child: Child,
    lines: Receiver<String>,
}

impl Follower {
    fn start(veil: &Instance, args: &[&str]) -> Self {
        let mut child = veil
            .veil()
            .args([&["audit", "--follow"], args].concat())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("veil audit --follow starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    /// The next line, waiting up to ten seconds.
    fn line(&mut self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(10))
            .expect("a line from veil audit --follow within 10 s")
    }

    /// The next line as a JSON record.
    fn record(&mut self) -> Value {
        let line = self.line();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    /// Interrupts it.
    fn stop(&mut self) {
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
    }

    /// Waits for it to end by itself (within ten seconds).
    fn finish(mut self) -> Output {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().expect("waiting").is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "veil audit --follow did not end"
            );
            thread::sleep(Duration::from_millis(20));
        }
        let child = std::mem::replace(
            &mut self.child,
            Command::new("true").spawn().expect("true runs"),
        );
        child.wait_with_output().expect("its output")
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small tmpfs mounted over a directory for the length of a test.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        fs::create_dir_all(dir).expect("creating the mount point");
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs on {}", dir.display());
        Self(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
