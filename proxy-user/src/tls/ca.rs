//! veil's certificate authority: an ECDSA P-256 key and self-signed certificate created on
//! first start under `<state dir>/ca` (key 0600) and reused afterwards. Sandboxes trust it;
//! it signs the leaf certificates veil presents to them.

use std::{
    fs,
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use super::TlsError;

const CERT_FILE: &str = "ca.pem";
const KEY_FILE: &str = "ca-key.pem";

/// The loaded CA.
pub struct Ca {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// Loads the CA from `dir`, creating it first if it does not exist.
    pub fn load_or_create(dir: &Path) -> Result<Self, TlsError> {
        let cert_path = dir.join(CERT_FILE);
        let key_path = dir.join(KEY_FILE);
        if !key_path.exists() {
            create(dir, &cert_path, &key_path)?;
        }
        let bad = |why: String| TlsError::BadCa {
            path: dir.to_path_buf(),
            why,
        };
        let key_pem = fs::read_to_string(&key_path).map_err(|source| io(&key_path, source))?;
        let cert_pem = fs::read_to_string(&cert_path).map_err(|source| io(&cert_path, source))?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| bad(format!("key: {e}")))?;
        // The issuer is rebuilt from the same parameters the certificate was made with: its
        // subject and key identifier (derived from the key) match the stored certificate.
        let issuer = Issuer::new(params(OffsetDateTime::now_utc()), key);
        Ok(Self { cert_pem, issuer })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The issuer that signs leaf certificates.
    pub fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }
}

fn params(now: OffsetDateTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "veil sandbox CA");
    dn.push(DnType::OrganizationName, "veil");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(3650);
    params
}

fn create(dir: &Path, cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| io(dir, source))?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert = params(OffsetDateTime::now_utc()).self_signed(&key)?;
    // The certificate first: a key without its certificate would be recreated next time,
    // while a certificate without its key is never read.
    write_file(cert_path, cert.pem().as_bytes(), 0o644)?;
    write_file(key_path, key.serialize_pem().as_bytes(), 0o600)?;
    log::info!("created veil's CA in {}", dir.display());
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|source| io(&tmp, source))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|source| io(&tmp, source))?;
    fs::rename(&tmp, path).map_err(|source| io(path, source))
}

fn io(path: &Path, source: std::io::Error) -> TlsError {
    TlsError::Io {
        path: PathBuf::from(path),
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let ca_dir = dir.path().join("ca");
        let first = Ca::load_or_create(&ca_dir).unwrap();
        let mode = fs::metadata(ca_dir.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = Ca::load_or_create(&ca_dir).unwrap();
        assert_eq!(first.cert_pem(), second.cert_pem());
        assert!(first.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    }

    #[test]
    fn a_corrupt_key_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        Ca::load_or_create(dir.path()).unwrap();
        fs::write(dir.path().join(KEY_FILE), "garbage").unwrap();
        let err = Ca::load_or_create(dir.path()).err().unwrap();
        assert!(err.to_string().contains("move it away"), "{err}");
    }
}
