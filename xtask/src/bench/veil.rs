//! The benchmark's private veil installation ([`Installation`]), removed when dropped: the
//! daemon is stopped, `veil reset` runs with the same paths, and what is left is deleted.

use std::{net::SocketAddr, path::Path, process::Command};

use anyhow::{Context, Result};
use veil_testkit::{Daemon, Installation};

/// One veil installation.
pub struct Veil {
    installation: Installation,
}

impl Veil {
    /// A new installation of `bin` named `name` (nothing runs yet).
    pub fn new(bin: &Path, name: &str) -> Result<Self> {
        Ok(Self {
            installation: Installation::new(bin, name)?,
        })
    }

    /// The sandbox parent cgroup (absolute).
    pub fn cgroup_parent(&self) -> &Path {
        self.installation.cgroup_parent()
    }

    /// Starts `veil serve` allowing `allow` (hosts and CIDRs), trusting `upstream_ca`, and
    /// forwarding its sandboxes' DNS to `resolver`.
    pub fn start(
        &mut self,
        allow: &[&str],
        upstream_ca: &Path,
        resolver: SocketAddr,
    ) -> Result<()> {
        let quoted: Vec<String> = allow.iter().map(|a| format!("{a:?}")).collect();
        self.installation
            .set_policy(&format!("[egress]\nallow = [{}]\n", quoted.join(", ")))?;
        let ca = upstream_ca.to_str().context("the CA's path is not UTF-8")?;
        // Scenario 5 holds about 10,000 connections from one sandbox, over the default cap.
        self.installation.start_daemon(
            &[
                "--upstream-ca",
                ca,
                "--max-connections-per-sandbox",
                "20000",
                "--dns-upstream",
                &resolver.to_string(),
            ],
            &[],
        )?;
        Ok(())
    }

    /// The daemon's pid.
    pub fn pid(&self) -> Option<u32> {
        self.installation.daemon().and_then(Daemon::pid)
    }

    /// Creates a secret for `host` through the API and returns its placeholder.
    pub fn create_secret(
        &self,
        name: &str,
        env_var: &str,
        value: &str,
        host: &str,
    ) -> Result<String> {
        let created = self
            .installation
            .create_secret(name, value, env_var, &[host])?;
        created["proxy_value"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("no proxy_value in {created}"))
    }

    /// Creates a secret for `host` that is swapped only into the JSON string values at
    /// `pointer` in request bodies, and returns its id and placeholder.
    pub fn create_json_secret(
        &self,
        name: &str,
        env_var: &str,
        value: &str,
        host: &str,
        pointer: &str,
    ) -> Result<(String, String)> {
        let body = serde_json::json!({
            "name": name, "secret": value, "env_var": env_var, "hosts": [host],
            "slots": [{"json": [pointer]}],
        })
        .to_string();
        let (status, answer) = self.installation.api("POST", "/v1/secrets", Some(&body))?;
        let created: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
        if status != 201 {
            anyhow::bail!("creating secret {name}: {status} {answer}");
        }
        let field = |name: &str| {
            created[name]
                .as_str()
                .map(str::to_string)
                .with_context(|| format!("no {name} in {created}"))
        };
        Ok((field("id")?, field("proxy_value")?))
    }

    /// Sets secret `id`'s slots to `slots` (as the API takes them).
    pub fn set_slots(&self, id: &str, slots: serde_json::Value) -> Result<()> {
        let body = serde_json::json!({ "slots": slots }).to_string();
        let (status, answer) =
            self.installation
                .api("PATCH", &format!("/v1/secrets/{id}"), Some(&body))?;
        if status != 200 {
            anyhow::bail!("changing secret {id}'s slots: {status} {answer}");
        }
        Ok(())
    }

    /// Deletes secret `id`.
    pub fn delete_secret(&self, id: &str) -> Result<()> {
        let (status, answer) =
            self.installation
                .api("DELETE", &format!("/v1/secrets/{id}"), None)?;
        if status != 200 {
            anyhow::bail!("deleting secret {id}: {status} {answer}");
        }
        Ok(())
    }

    /// Creates an aws secret (an access key id and secret key) for `host`, and returns its id.
    pub fn create_aws_secret(&self, key_id: &str, secret_key: &str, host: &str) -> Result<String> {
        let body = serde_json::json!({
            "name": "bench-aws", "kind": "aws", "hosts": [host],
            "secret": {"access_key_id": key_id, "secret_access_key": secret_key},
        })
        .to_string();
        let (status, answer) = self.installation.api("POST", "/v1/secrets", Some(&body))?;
        if status != 201 {
            anyhow::bail!("creating the aws secret: {status} {answer}");
        }
        let created: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
        created["id"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("no id in {created}"))
    }

    /// `veil run -- ARGS`.
    pub fn run_command(&self, args: &[String]) -> Command {
        let mut cmd = self.installation.command();
        cmd.arg("run").arg("--").args(args);
        cmd
    }

    /// Runs `veil ARGS` (not in a sandbox) to completion.
    pub fn output(&self, args: &[&str]) -> Result<std::process::Output> {
        Ok(self.installation.output(args)?)
    }

    /// The directory sandboxes read veil's CA bundle and profile script from.
    pub fn public_dir(&self) -> std::path::PathBuf {
        self.installation.public_dir()
    }

    /// The daemon's log (last lines).
    pub fn log(&self) -> String {
        self.installation
            .daemon()
            .map(Daemon::log_tail)
            .unwrap_or_default()
    }
}

impl Drop for Veil {
    fn drop(&mut self) {
        self.installation.stop_daemon(libc::SIGTERM);
        match self.installation.output(&["reset"]) {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "warning: veil reset failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("warning: running veil reset: {e}"),
        }
        // Dropping the installation removes what reset left, and its directory.
    }
}
