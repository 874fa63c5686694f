//! The demo's throwaway secrets, made at run time and removed with the demo's temp dir: a test
//! PKI for the stand-in remote API (made with `openssl`), and the fake API token.

use std::{
    fs::{self, File},
    io::Read,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use crate::demo_support::{output, print_indented};

/// The files of the demo's test PKI.
pub struct Pki {
    /// The CA certificate (PEM) that veil is told to trust for upstream TLS.
    pub ca: PathBuf,
    /// The stand-in API's certificate (PEM), issued by the CA.
    pub cert: PathBuf,
    /// The stand-in API's private key (PEM).
    pub key: PathBuf,
}

/// Makes a CA and a server certificate for `names` and `ip` in `dir` (which must exist), both
/// ECDSA P-256 and valid for one day.
pub fn make(dir: &Path, names: &[&str], ip: Ipv4Addr) -> Result<Pki> {
    fs::write(dir.join("openssl.cnf"), openssl_config(names, ip)).context("writing openssl.cnf")?;
    let name = names.first().context("no server name given")?;
    // Arguments hold no spaces, so each command is written as one line.
    let commands = [
        "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key".to_owned(),
        "req -x509 -new -config openssl.cnf -extensions ca_cert -key ca.key \
         -subj /CN=veil-demo-CA -days 1 -out ca.pem"
            .to_owned(),
        "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key".to_owned(),
        format!("req -new -config openssl.cnf -key server.key -subj /CN={name} -out server.csr"),
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
         -extfile openssl.cnf -extensions server_cert -out server.pem"
            .to_owned(),
    ];
    for command in commands {
        let mut cmd = Command::new("openssl");
        cmd.current_dir(dir).args(command.split_whitespace());
        let out = output(&mut cmd)?;
        if !out.status.success() {
            print_indented(&out);
            bail!("openssl failed ({})", out.status);
        }
    }
    Ok(Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    })
}

/// The openssl configuration: an empty DN section (subjects come from `-subj`), the CA's
/// extensions, and the server certificate's, with `names` and `ip` as its SANs.
fn openssl_config(names: &[&str], ip: Ipv4Addr) -> String {
    let sans: Vec<String> = names
        .iter()
        .map(|n| format!("DNS:{n}"))
        .chain([format!("IP:{ip}")])
        .collect();
    format!(
        "[req]\n\
         distinguished_name = dn\n\
         [dn]\n\
         [ca_cert]\n\
         basicConstraints = critical, CA:TRUE\n\
         keyUsage = critical, keyCertSign, cRLSign\n\
         subjectKeyIdentifier = hash\n\
         [server_cert]\n\
         basicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature\n\
         extendedKeyUsage = serverAuth\n\
         subjectKeyIdentifier = hash\n\
         authorityKeyIdentifier = keyid\n\
         subjectAltName = {}\n",
        sans.join(", ")
    )
}

/// A fresh fake token: `demo_` and 24 random hex digits from /dev/urandom.
pub fn random_token() -> Result<String> {
    let mut bytes = [0u8; 12];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(token_from(&bytes))
}

/// `demo_` and `bytes` in lower-case hex.
fn token_from(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("demo_{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lists_every_name_and_the_address() {
        let config = openssl_config(&["a.test", "b.test"], Ipv4Addr::new(127, 0, 0, 2));
        assert!(config.contains("subjectAltName = DNS:a.test, DNS:b.test, IP:127.0.0.2\n"));
        assert!(config.contains("[ca_cert]\nbasicConstraints = critical, CA:TRUE\n"));
    }

    #[test]
    fn tokens_are_prefixed_hex() {
        assert_eq!(token_from(&[0x00, 0xab, 0x7f]), "demo_00ab7f");
        let token = random_token().expect("/dev/urandom is readable");
        assert_eq!(token.len(), "demo_".len() + 24);
        assert_ne!(token, random_token().expect("/dev/urandom is readable"));
    }
}
