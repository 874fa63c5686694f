//! The benchmark's PKI, made at run time with openssl and never committed: a test CA and the
//! upstream's certificate for [`super::HOST`] and the upstream's IP.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Result;

use crate::process;

/// The files the PKI is made of.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA certificate (PEM): veil and mitmproxy trust it for the upstream.
    pub ca_cert: PathBuf,
    /// The upstream's certificate (PEM).
    pub cert: PathBuf,
    /// The upstream's key (PEM).
    pub key: PathBuf,
}

/// Makes a CA in `dir` and a certificate from it for `host` and `ip`.
pub fn make(dir: &Path, host: &str, ip: &str) -> Result<Pki> {
    fs::create_dir_all(dir)?;
    let pki = Pki {
        ca_cert: dir.join("ca.pem"),
        cert: dir.join("upstream.pem"),
        key: dir.join("upstream.key"),
    };
    let ca_key = dir.join("ca.key");
    let csr = dir.join("upstream.csr");
    let ext = dir.join("upstream.ext");
    quiet(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args([
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=veil bench CA",
                "-keyout",
            ])
            .arg(&ca_key)
            .arg("-out")
            .arg(&pki.ca_cert),
    )?;
    quiet(
        Command::new("openssl")
            .args([
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
            ])
            .arg("-subj")
            .arg(format!("/CN={host}"))
            .arg("-keyout")
            .arg(&pki.key)
            .arg("-out")
            .arg(&csr),
    )?;
    fs::write(
        &ext,
        format!(
            "subjectAltName=DNS:{host},IP:{ip}\nbasicConstraints=CA:FALSE\n\
             extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n"
        ),
    )?;
    quiet(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(&pki.ca_cert)
            .arg("-CAkey")
            .arg(&ca_key)
            .args(["-CAcreateserial", "-extfile"])
            .arg(&ext)
            .arg("-out")
            .arg(&pki.cert),
    )?;
    Ok(pki)
}

/// Runs `cmd`, showing its output only when it fails.
fn quiet(cmd: &mut Command) -> Result<()> {
    let out = cmd.output()?;
    if !out.status.success() {
        anyhow::bail!(
            "`{}` failed ({}): {}",
            process::show(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
