//! A private Git repository served over HTTPS by `git http-backend` (through
//! `src/git_server.py`) on [`REMOTE_A`], which only lets in Basic credentials whose password
//! is the real secret.

use std::{
    fs,
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
};

use crate::{tls_env::Env, REMOTE_A};

/// A running Git server for `git.example.test`; killed when dropped.
pub struct GitServer {
    /// The port it serves on, at [`REMOTE_A`].
    pub port: String,
    child: Child,
}

impl GitServer {
    /// Makes `private.git` (one commit: `README` holding "private contents") under the
    /// instance directory and serves it, letting in only `secret` as the password.
    pub fn start(env: &Env, secret: &str) -> Self {
        let dir = env.veil.dir();
        let root = dir.join("git-root");
        let work = root.join("work");
        fs::create_dir_all(&work).expect("dirs");
        git(&["init", "-q", "--bare", "private.git"], &root);
        git(&["init", "-q", "-b", "main"], &work);
        fs::write(work.join("README"), "private contents\n").expect("file");
        git(&["add", "README"], &work);
        git(
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-q",
                "-m",
                "first",
            ],
            &work,
        );
        git(&["push", "-q", "../private.git", "main"], &work);
        git(
            &["symbolic-ref", "HEAD", "refs/heads/main"],
            &root.join("private.git"),
        );
        let cert = env
            .ca
            .server_cert(&["git.example.test"])
            .expect("a server certificate");
        let (cert_file, key_file) = (dir.join("git.pem"), dir.join("git.key"));
        fs::write(&cert_file, &cert.cert_pem).expect("cert");
        fs::write(&key_file, &cert.key_pem).expect("key");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/src/git_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(REMOTE_A)
            .arg(&root)
            .arg(secret)
            .args([&cert_file, &key_file])
            .stdout(Stdio::piped())
            .spawn()
            .expect("the git server starts");
        let mut port = String::new();
        BufReader::new(child.stdout.as_mut().expect("piped"))
            .read_line(&mut port)
            .expect("its port");
        Self {
            port: port.trim().to_owned(),
            child,
        }
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A shell script for `GIT_ASKPASS` answering with `x-access-token` and `$GITHUB_TOKEN`.
pub const ASKPASS: &str = "#!/bin/sh\ncase \"$1\" in Username*) echo x-access-token ;; *) echo \"$GITHUB_TOKEN\" ;; esac\n";

fn git(args: &[&str], cwd: &Path) {
    let out = Command::new("git")
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
