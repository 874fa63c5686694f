//! A veil instance with a TLS upstream on a stand-in remote host and the test CA it trusts, as
//! the data-plane and injection tests use it.

use std::{fs, path::PathBuf, process::Output};

use crate::{pki::TestCa, upstream::TlsUpstream, Instance, REMOTE_A};

/// The name the upstream serves.
pub const HOST: &str = "api.example.test";

/// A veil instance trusting a test CA, with one upstream on [`REMOTE_A`] for
/// `api.example.test`.
pub struct Env {
    /// The veil installation.
    pub veil: Instance,
    /// The CA the upstreams' certificates come from.
    pub ca: TestCa,
    /// That CA's certificate, trusted by veil with --upstream-ca.
    pub ca_file: PathBuf,
    /// The upstream on [`REMOTE_A`].
    pub upstream: TlsUpstream,
}

impl Env {
    /// veil with `policy`, trusting a fresh test CA, and an upstream on [`REMOTE_A`] for
    /// api.example.test, other.example.test and [`REMOTE_A`] itself.
    pub fn new(policy: &str) -> Self {
        Self::with_names(policy, &[HOST, "other.example.test", REMOTE_A])
    }

    /// As [`Env::new`], with `extra` arguments for `veil serve`.
    pub fn with_args(policy: &str, extra: &[&str]) -> Self {
        Self::start(policy, &[HOST, "other.example.test", REMOTE_A], extra)
    }

    /// As [`Env::new`], with the upstream's certificate for `names`.
    pub fn with_names(policy: &str, names: &[&str]) -> Self {
        Self::start(policy, names, &[])
    }

    fn start(policy: &str, names: &[&str], extra: &[&str]) -> Self {
        let mut veil = Instance::new();
        let ca = TestCa::new("veil test upstream CA").expect("a test CA");
        let ca_file = veil.dir().join("upstream-ca.pem");
        fs::write(&ca_file, &ca.cert_pem).expect("writing the test CA");
        let cert = ca.server_cert(names).expect("a server certificate");
        let upstream = TlsUpstream::start(REMOTE_A, &cert, &[b"h2", b"http/1.1"]);
        veil.set_policy(policy);
        let mut args = vec!["--upstream-ca", ca_file.to_str().expect("utf-8 path")];
        args.extend_from_slice(extra);
        veil.start_daemon(&args);
        Self {
            veil,
            ca,
            ca_file,
            upstream,
        }
    }

    /// `https://host:port/path` for the upstream.
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.upstream.addr.port())
    }

    /// A curl `--resolve` value sending `host` to the upstream.
    pub fn resolve(&self, host: &str) -> String {
        format!("{host}:{}:{REMOTE_A}", self.upstream.addr.port())
    }

    /// Runs curl in a sandbox (it trusts veil's CA through the variables veil run sets).
    pub fn curl(&self, args: &[&str]) -> Output {
        let work = self.veil.work_dir().display().to_string();
        let mut full = vec![
            "run",
            "--bind",
            &work,
            "--",
            "curl",
            "-sS",
            "--max-time",
            "60",
        ];
        full.extend_from_slice(args);
        self.veil.run_veil(&full)
    }

    /// `--connect --sni --ca` for veil-test-client, trusting veil's CA bundle.
    pub fn tls_args(&self, host: &str) -> Vec<String> {
        vec![
            "--connect".into(),
            self.upstream.addr.to_string(),
            "--sni".into(),
            host.into(),
            "--ca".into(),
            self.veil.ca_bundle().display().to_string(),
        ]
    }
}

/// A policy allowing `allow`.
pub fn policy(allow: &[&str]) -> String {
    let quoted: Vec<String> = allow.iter().map(|a| format!("{a:?}")).collect();
    format!("[egress]\nallow = [{}]\n", quoted.join(", "))
}

/// A command's standard output.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts a command succeeded and returns its standard output.
pub fn assert_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed ({}): {}{}",
        out.status,
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(out)
}
