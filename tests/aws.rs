//! AWS SigV4 re-signing end to end: the AWS CLI, boto3, a presigned URL fetched with curl and
//! a hand-signed aws-chunked upload, run in `veil run` sandboxes that hold only placeholders,
//! against a stand-in S3/STS endpoint (`src/sigv4_upstream.py`) on [`REMOTE_A`] that checks
//! every signature with the real key: success proves veil re-signed. Also: what veil refuses
//! (malformed signatures naming the placeholder, a broken chunk mid-body), what it leaves alone
//! (an out-of-scope host), and that the real key never reaches the sandbox.

use std::{
    fs,
    io::{BufRead, BufReader},
    process::{Child, Command, Output, Stdio},
};

use serde_json::Value;
use veil_tests::{
    eventually,
    tls_env::{assert_ok, policy, stdout, Env},
    REMOTE_A,
};

const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/aws_client.py");
const UPSTREAM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/sigv4_upstream.py");
const S3: &str = "s3.us-east-1.amazonaws.test";
const STS: &str = "sts.amazonaws.test";
/// A name the secret is not scoped to (served by the same upstream).
const OTHER: &str = "s3.eu-west-1.amazonaws.test";

/// A veil with the aws secret `aws-prod` (scoped to [`S3`] and [`STS`]) and the stand-in
/// endpoint that knows its real key.
struct Aws {
    env: Env,
    key_id: String,
    secret: String,
    token: String,
    port: String,
    log: std::path::PathBuf,
    upstream: Child,
}

impl Aws {
    fn new() -> Self {
        let env = Env::with_names(&policy(&[S3, STS, OTHER]), &["api.example.test"]);
        let key_id = veil_testkit::random_token("AKIA")
            .expect("randomness")
            .to_uppercase();
        let secret = veil_testkit::random_token("wJalr/K7+").expect("randomness");
        let token = veil_testkit::random_token("FwoGZXIvYXdzE/").expect("randomness");
        let dir = env.veil.dir();
        let cert = env
            .ca
            .server_cert(&[S3, STS, OTHER])
            .expect("a server certificate");
        let (cert_file, key_file) = (dir.join("aws.pem"), dir.join("aws.key"));
        fs::write(&cert_file, &cert.cert_pem).expect("cert");
        fs::write(&key_file, &cert.key_pem).expect("key");
        let log = dir.join("aws-upstream.log");
        let mut upstream = Command::new("python3")
            .arg(UPSTREAM)
            .arg(REMOTE_A)
            .args([&cert_file, &key_file])
            .args([&key_id, &secret])
            .arg("--session-token")
            .arg(&token)
            .arg("--log")
            .arg(&log)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the stand-in AWS endpoint starts");
        let mut port = String::new();
        BufReader::new(upstream.stdout.as_mut().expect("piped"))
            .read_line(&mut port)
            .expect("its port");
        let body = serde_json::json!({
            "name": "aws-prod",
            "kind": "aws",
            "hosts": [S3, STS],
            "secret": {"access_key_id": key_id, "secret_access_key": secret,
                       "session_token": token},
        });
        let (status, created) = env.veil.api("POST", "/v1/secrets", Some(&body.to_string()));
        assert_eq!(status, 201, "{created}");
        assert!(!created.to_string().contains(&secret), "{created}");
        assert!(!created.to_string().contains(&key_id), "{created}");
        Self {
            env,
            key_id,
            secret,
            token,
            port: port.trim().to_owned(),
            log,
            upstream,
        }
    }

    /// `https://NAME:PORT`.
    fn url(&self, name: &str) -> String {
        format!("https://{name}:{}", self.port)
    }

    /// Runs `script` with `sh -c` in a sandbox that may write to the work directory, with the
    /// AWS tools pointed at veil's CA and a path-style S3 configuration.
    fn sh(&self, script: &str) -> Output {
        let work = self.env.veil.work_dir();
        let config = work.join("aws-config");
        fs::write(
            &config,
            "[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n",
        )
        .expect("aws config");
        let work = work.display().to_string();
        let script = format!(
            "export AWS_CA_BUNDLE=\"$SSL_CERT_FILE\" AWS_CONFIG_FILE={} \
             AWS_SHARED_CREDENTIALS_FILE=/nonexistent AWS_DEFAULT_REGION=us-east-1 \
             AWS_EC2_METADATA_DISABLED=true; {script}",
            config.display()
        );
        let out = self
            .env
            .veil
            .run_veil(&["run", "--bind", &work, "--", "sh", "-c", &script]);
        self.assert_clean("the sandbox's output", &out.stdout);
        self.assert_clean("the sandbox's errors", &out.stderr);
        out
    }

    /// `aws ARGS` (the AWS CLI) in a sandbox.
    fn aws(&self, args: &str) -> Output {
        self.sh(&format!("python3 {CLIENT} {REMOTE_A} aws {args}"))
    }

    /// Asserts `bytes`, something the sandbox got, hold none of the real key's parts.
    fn assert_clean(&self, what: &str, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        for (part, value) in [
            ("access key id", &self.key_id),
            ("secret access key", &self.secret),
            ("session token", &self.token),
        ] {
            assert!(
                !text.contains(value.as_str()),
                "{what} holds the real {part}"
            );
        }
    }

    /// The stand-in endpoint's log: one JSON object per request.
    fn upstream_log(&self) -> Vec<Value> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The audit records of `kind` naming the re-signing slot.
    fn records(&self, kind: &str) -> Vec<Value> {
        let records = self.env.veil.audit_json(&["--kind", kind]);
        for record in &records {
            self.assert_clean("an audit record", record.to_string().as_bytes());
        }
        records
            .into_iter()
            .filter(|r| r["header"] == "sigv4")
            .collect()
    }
}

impl Drop for Aws {
    fn drop(&mut self) {
        let _ = self.upstream.kill();
        let _ = self.upstream.wait();
    }
}

#[test]
fn the_aws_cli_and_boto3_work_in_a_sandbox_holding_only_placeholders() {
    let aws = Aws::new();
    let env = assert_ok(&aws.sh(
        "printf '%s\\n' \"$AWS_ACCESS_KEY_ID\" \"$AWS_SECRET_ACCESS_KEY\" \"$AWS_SESSION_TOKEN\"",
    ));
    let lines: Vec<&str> = env.lines().collect();
    assert_eq!(lines.len(), 3, "{env}");
    assert!(
        lines[0].starts_with("AKIA") && lines[0].len() == 20,
        "{env}"
    );
    assert_eq!(lines[1], "IRONSH_PROXY_aws-prod");
    assert_eq!(lines[2], "IRONSH_PROXY_aws-prod.session-token");

    let s3 = format!("--endpoint-url {}", aws.url(S3));
    assert_ok(&aws.aws(&format!("s3api create-bucket --bucket b1 {s3}")));
    let work = aws.env.veil.work_dir();
    fs::write(work.join("small.txt"), "hello from the sandbox\n").expect("file");
    assert_ok(&aws.aws(&format!(
        "s3api put-object --bucket b1 --key small.txt --body {} {s3}",
        work.join("small.txt").display()
    )));
    let big: Vec<u8> = (0..9 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
    fs::write(work.join("big.bin"), &big).expect("file");
    assert_ok(&aws.aws(&format!(
        "s3 cp {} s3://b1/big.bin {s3}",
        work.join("big.bin").display()
    )));
    assert_ok(&aws.aws(&format!(
        "s3api get-object --bucket b1 --key big.bin {} {s3}",
        work.join("big.back").display()
    )));
    assert_eq!(fs::read(work.join("big.back")).expect("downloaded"), big);
    let multipart = aws
        .upstream_log()
        .iter()
        .filter(|r| r["verdict"] == "ok" && r["query_names"].to_string().contains("partNumber"))
        .count();
    assert!(multipart >= 2, "s3 cp of 9 MiB goes in parts");

    let identity = assert_ok(&aws.aws(&format!(
        "sts get-caller-identity --endpoint-url {} --output json",
        aws.url(STS)
    )));
    assert!(identity.contains("123456789012"), "{identity}");

    let presigned = assert_ok(&aws.aws(&format!(
        "s3 presign s3://b1/small.txt --expires-in 300 {s3}"
    )));
    let fetched = assert_ok(&aws.sh(&format!(
        "curl -sS --fail --max-time 60 --resolve {S3}:{}:{REMOTE_A} '{}'",
        aws.port,
        presigned.trim()
    )));
    assert_eq!(fetched, "hello from the sandbox\n");

    let boto3 = assert_ok(&aws.sh(&format!(
        "python3 {CLIENT} {REMOTE_A} boto3 {} {} b2",
        aws.url(S3),
        aws.url(STS)
    )));
    assert!(
        boto3.contains("boto3 ok keys=boto3.txt account=123456789012"),
        "{boto3}"
    );

    let log = aws.upstream_log();
    assert!(
        log.iter().all(|r| r["verdict"] == "ok"),
        "every request reached the endpoint re-signed: {log:?}"
    );
    let injected = aws.records("secret_injected");
    assert!(injected.len() >= log.len(), "{} records", injected.len());
    assert!(injected
        .iter()
        .all(|r| r["secret_name"] == "aws-prod" && (r["host"] == S3 || r["host"] == STS)));
}

#[test]
fn a_signed_streaming_upload_is_re_signed_chunk_by_chunk_and_a_broken_chunk_is_cut_off() {
    let aws = Aws::new();
    assert_ok(&aws.aws(&format!(
        "s3api create-bucket --bucket b1 --endpoint-url {}",
        aws.url(S3)
    )));
    let out = aws.sh(&format!(
        "python3 {CLIENT} {REMOTE_A} chunked {} b1 streamed.bin 300000",
        aws.url(S3)
    ));
    assert_ok(&out);
    let log = aws.upstream_log();
    let put = log
        .iter()
        .find(|r| r["path"] == "/b1/streamed.bin")
        .expect("the upload reached the endpoint");
    assert_eq!(put["verdict"], "ok", "{put}");
    assert_eq!(
        put["x_amz_content_sha256"],
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    );

    let out = aws.sh(&format!(
        "python3 {CLIENT} {REMOTE_A} chunked {} b1 broken.bin 300000 break",
        aws.url(S3)
    ));
    // veil answers 400 with the reason and closes; a client still sending may see the close
    // first.
    let text = stdout(&out);
    assert!(
        (text.starts_with("400 ") && text.contains("cut off")) || text.starts_with("failed: "),
        "{text}"
    );
    assert!(
        !aws.upstream_log()
            .iter()
            .any(|r| r["path"] == "/b1/broken.bin" && r["verdict"] == "ok"),
        "a body with a broken chunk is never completed upstream"
    );
    eventually("the cut-off upload's refusal record", || {
        aws.records("placeholder_not_injected").iter().any(|r| {
            r["reason"]
                .as_str()
                .is_some_and(|why| why.starts_with("refused: aws-chunked body"))
        })
    });
}

#[test]
fn a_malformed_signature_naming_the_placeholder_is_refused_and_never_forwarded() {
    let aws = Aws::new();
    let out = aws.sh(&format!(
        "curl -sS --max-time 60 -o /dev/null -w '%{{http_code}}' --resolve {S3}:{port}:{REMOTE_A} \
         -H \"Authorization: AWS4-HMAC-SHA256 Credential=$AWS_ACCESS_KEY_ID/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=nothex\" \
         -H 'x-amz-date: 20260101T000000Z' -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
         https://{S3}:{port}/b1/malformed",
        port = aws.port
    ));
    assert_eq!(stdout(&out), "400");
    let stale = aws.sh(&format!(
        "curl -sS --max-time 60 --resolve {S3}:{port}:{REMOTE_A} \
         -H \"Authorization: AWS4-HMAC-SHA256 Credential=$AWS_ACCESS_KEY_ID/20200101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature={sig}\" \
         -H 'x-amz-date: 20200101T000000Z' -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
         -H \"x-amz-security-token: $AWS_SESSION_TOKEN\" https://{S3}:{port}/b1/stale",
        port = aws.port,
        sig = "0".repeat(64)
    ));
    let text = stdout(&stale);
    assert!(text.contains("refused an AWS request"), "{text}");
    assert!(text.contains("seconds away from veil's clock"), "{text}");
    assert!(
        !aws.upstream_log()
            .iter()
            .any(|r| r["path"] == "/b1/malformed" || r["path"] == "/b1/stale"),
        "nothing reached the endpoint"
    );
    let refused = aws.records("placeholder_not_injected");
    assert!(
        refused.len() >= 2
            && refused.iter().all(|r| r["secret_name"] == "aws-prod"
                && r["reason"]
                    .as_str()
                    .is_some_and(|w| w.starts_with("refused: "))),
        "{refused:?}"
    );
}

#[test]
fn a_host_outside_the_scope_gets_no_re_signing() {
    let aws = Aws::new();
    let out = aws.aws(&format!(
        "s3api list-objects-v2 --bucket b1 --endpoint-url {}",
        aws.url(OTHER)
    ));
    assert!(!out.status.success());
    let log = aws.upstream_log();
    assert!(
        !log.is_empty() && log.iter().all(|r| r["verdict"] != "ok"),
        "the endpoint saw the placeholder's signature and refused it: {log:?}"
    );
    eventually("the out-of-scope record", || {
        aws.records("placeholder_not_injected")
            .iter()
            .any(|r| r["host"] == OTHER && r["reason"] == "out_of_scope")
    });
    assert!(aws.records("secret_injected").is_empty());
}

#[test]
fn the_cli_stores_an_aws_key_from_sts_json_or_the_aws_variables() {
    let mut veil = veil_tests::Instance::new();
    veil.start_daemon(&[]);
    let secret = veil_testkit::random_token("cli/secret+").expect("randomness");
    let sts = serde_json::json!({"Credentials": {
        "AccessKeyId": "ASIAREALKEY1", "SecretAccessKey": secret,
        "SessionToken": "FwoGcli-token", "Expiration": "2026-01-01T00:00:00Z"}});
    let mut create = veil.veil();
    create
        .args([
            "secrets", "create", "aws-cli", "--kind", "aws", "--host", S3, "--json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = create.spawn().expect("veil runs");
    std::io::Write::write_all(
        child.stdin.as_mut().expect("piped"),
        sts.to_string().as_bytes(),
    )
    .expect("stdin");
    let out = child.wait_with_output().expect("veil runs");
    let created: Value = serde_json::from_str(&assert_ok(&out)).expect("JSON");
    assert_eq!(created["env_var"], "AWS_ACCESS_KEY_ID");
    let key_id = created["aws"]["key_id_placeholder"]
        .as_str()
        .expect("a key id placeholder")
        .to_owned();
    let env = assert_ok(&veil.run_veil(&["env"]));
    for line in [
        format!("export AWS_ACCESS_KEY_ID='{key_id}'"),
        "export AWS_SECRET_ACCESS_KEY='IRONSH_PROXY_aws-cli'".to_owned(),
        "export AWS_SESSION_TOKEN='IRONSH_PROXY_aws-cli.session-token'".to_owned(),
    ] {
        assert!(env.contains(&line), "{env}");
    }
    let shown = assert_ok(&veil.run_veil(&["secrets", "show", "aws-cli"]));
    assert!(shown.contains("aws (requests are re-signed"), "{shown}");
    for text in [&env, &shown, &created.to_string()] {
        assert!(!text.contains(&secret) && !text.contains("ASIAREALKEY1"));
    }

    let rotate = veil
        .veil()
        .args(["secrets", "rotate", "aws-cli", "--from-aws-env"])
        .env("AWS_ACCESS_KEY_ID", "AKIAREALKEY2")
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .expect("veil runs");
    assert_ok(&rotate);
    let inside = assert_ok(&veil.run_veil(&[
        "run",
        "--",
        "sh",
        "-c",
        "echo \"$AWS_ACCESS_KEY_ID ${AWS_SESSION_TOKEN-none}\"",
    ]));
    assert_eq!(inside, format!("{key_id} none\n"));
    let refused = veil
        .veil()
        .args([
            "secrets",
            "create",
            "aws-2",
            "--kind",
            "aws",
            "--from-env",
            "NOPE",
        ])
        .env("NOPE", "not json")
        .output()
        .expect("veil runs");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("aws key"));
}
