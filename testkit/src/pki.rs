//! A throwaway test PKI made at run time with rcgen: a CA, and server certificates it issues
//! for DNS names and IP addresses. Nothing is committed; every run makes its own.

use std::{
    fs,
    path::{Path, PathBuf},
};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::error::{Context, Error};

/// A throwaway certificate authority (ECDSA P-256).
pub struct TestCa {
    /// The CA certificate, PEM.
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A server certificate and its key, PEM.
pub struct ServerCert {
    /// Certificate, PEM.
    pub cert_pem: String,
    /// Private key, PEM (PKCS#8).
    pub key_pem: String,
}

/// A CA certificate and a server certificate with its key, written to files.
#[derive(Debug, Clone)]
pub struct PkiFiles {
    /// The CA certificate (PEM), for whoever verifies the server.
    pub ca: PathBuf,
    /// The server's certificate (PEM), issued by the CA.
    pub cert: PathBuf,
    /// The server's private key (PEM, PKCS#8; mode 0600).
    pub key: PathBuf,
}

impl TestCa {
    /// A new CA called `name`.
    pub fn new(name: &str) -> Result<Self, Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// A server certificate for `names`: each is a DNS name, or an IP address (which becomes
    /// an IP address SAN).
    pub fn server_cert(&self, names: &[&str]) -> Result<ServerCert, Error> {
        let key = KeyPair::generate()?;
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "test upstream");
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ServerCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Writes this CA's certificate and a server certificate for `names` with its key into
    /// `dir` (created if missing) as `ca.pem`, `server.pem` and `server.key`.
    pub fn write_files(&self, dir: &Path, names: &[&str]) -> Result<PkiFiles, Error> {
        fs::create_dir_all(dir).doing(|| format!("creating {}", dir.display()))?;
        let server = self.server_cert(names)?;
        let files = PkiFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        };
        for (path, pem) in [
            (&files.ca, &self.cert_pem),
            (&files.cert, &server.cert_pem),
            (&files.key, &server.key_pem),
        ] {
            write_private(path, pem)?;
        }
        Ok(files)
    }
}

/// Writes `text` to a new file at `path` that only its owner can read.
fn write_private(path: &Path, text: &str) -> Result<(), Error> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .doing(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_ca_and_a_server_certificate() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let ca = TestCa::new("kit test CA").expect("a CA");
        let files = ca
            .write_files(&dir.path().join("pki"), &["a.test", "127.0.0.2"])
            .expect("the files");
        let read = |p: &Path| fs::read_to_string(p).expect("readable");
        assert_eq!(read(&files.ca), ca.cert_pem);
        assert!(read(&files.cert).starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(read(&files.key).contains("PRIVATE KEY"));
        assert_ne!(read(&files.cert), ca.cert_pem);
    }
}
