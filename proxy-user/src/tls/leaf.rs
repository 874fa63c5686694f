//! Leaf certificates for the names sandboxes connect to, signed by veil's CA with one shared
//! leaf key, kept in a bounded cache, and the per-connection server configuration that
//! presents them.

use std::{
    num::NonZeroUsize,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration as StdDuration, Instant},
};

use lru::LruCache;
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose};
use rustls::{
    crypto::CryptoProvider,
    server::{ServerConfig, ServerSessionMemoryCache, StoresServerSessions},
    sign::{CertifiedKey, SingleCertAndKey},
};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

use veil_core::plan::ServerName;

use super::{ca::Ca, provider, TlsError};

/// How many leaf certificates are kept.
const CACHE_SIZE: usize = 4096;
/// How many TLS sessions sandboxes may resume are kept, across all leaves.
const SESSIONS: usize = 4096;
/// A leaf is valid for a week and re-minted after a day.
const LEAF_VALIDITY_DAYS: i64 = 7;
const LEAF_REFRESH: StdDuration = StdDuration::from_secs(24 * 3600);

/// Mints and caches leaf certificates.
pub struct LeafMinter {
    ca: Ca,
    key: KeyPair,
    signing_key: Arc<dyn rustls::sign::SigningKey>,
    provider: Arc<CryptoProvider>,
    cache: Mutex<LruCache<ServerName, (Arc<CertifiedKey>, Instant)>>,
    /// One store for every configuration: a configuration is built per connection, and
    /// rustls's default (a new 256-entry store in each) both held memory for as long as the
    /// connection lived and made every resumption miss.
    sessions: Arc<dyn StoresServerSessions>,
}

impl LeafMinter {
    /// A minter signing with `ca`, with a fresh leaf key.
    pub fn new(ca: Ca) -> Result<Self, TlsError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = provider();
        let signing_key = provider.key_provider.load_private_key(der)?;
        Ok(Self {
            ca,
            key,
            signing_key,
            provider,
            // CACHE_SIZE is a non-zero constant.
            cache: Mutex::new(LruCache::new(
                NonZeroUsize::new(CACHE_SIZE).unwrap_or(NonZeroUsize::MIN),
            )),
            sessions: ServerSessionMemoryCache::new(SESSIONS),
        })
    }

    /// veil's CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        self.ca.cert_pem()
    }

    /// The leaf for `name`, from the cache or minted now.
    pub fn leaf(&self, name: &ServerName) -> Result<Arc<CertifiedKey>, TlsError> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((leaf, minted)) = cache.get(name) {
            if minted.elapsed() < LEAF_REFRESH {
                return Ok(Arc::clone(leaf));
            }
        }
        let leaf = Arc::new(self.mint(name)?);
        cache.put(name.clone(), (Arc::clone(&leaf), Instant::now()));
        Ok(leaf)
    }

    /// A server configuration presenting the leaf for `name` and selecting `alpn` (the
    /// protocol upstream selected), or no ALPN.
    pub fn server_config(
        &self,
        name: &ServerName,
        alpn: Option<&[u8]>,
    ) -> Result<Arc<ServerConfig>, TlsError> {
        let leaf = self.leaf(name)?;
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(leaf)));
        config.alpn_protocols = alpn.map(|p| vec![p.to_vec()]).unwrap_or_default();
        config.session_storage = Arc::clone(&self.sessions);
        // One ticket is enough to resume; rustls's default of two doubles the work and the
        // stored sessions of every new connection.
        config.send_tls13_tickets = 1;
        Ok(Arc::new(config))
    }

    fn mint(&self, name: &ServerName) -> Result<CertifiedKey, TlsError> {
        let san = match name {
            ServerName::Dns(dns) => dns.clone(),
            ServerName::Ip(ip) => ip.to_string(),
        };
        let mut params = CertificateParams::new(vec![san.clone()])?;
        params.distinguished_name.push(DnType::CommonName, san);
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(LEAF_VALIDITY_DAYS);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&self.key, self.ca.issuer())?;
        Ok(CertifiedKey::new(
            vec![cert.der().clone()],
            Arc::clone(&self.signing_key),
        ))
    }
}

#[cfg(test)]
mod tests {
    use rustls::{
        client::{danger::ServerCertVerifier, WebPkiServerVerifier},
        pki_types::ServerName as PkiName,
        RootCertStore,
    };
    use rustls_pki_types::{pem::PemObject, CertificateDer, UnixTime};

    use super::*;

    fn minter() -> (tempfile::TempDir, LeafMinter) {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::load_or_create(dir.path()).unwrap();
        (dir, LeafMinter::new(ca).unwrap())
    }

    fn verify(m: &LeafMinter, leaf: &CertifiedKey, name: &str) -> Result<(), rustls::Error> {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(m.ca_pem().as_bytes()).unwrap())
            .unwrap();
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .unwrap();
        verifier
            .verify_server_cert(
                &leaf.cert[0],
                &[],
                &PkiName::try_from(name.to_owned()).unwrap(),
                &[],
                UnixTime::now(),
            )
            .map(drop)
    }

    #[test]
    fn leaves_verify_for_their_name_only() {
        let (_dir, m) = minter();
        let leaf = m.leaf(&ServerName::Dns("api.example.test".into())).unwrap();
        verify(&m, &leaf, "api.example.test").unwrap();
        assert!(verify(&m, &leaf, "other.example.test").is_err());
        let ip_leaf = m
            .leaf(&ServerName::Ip("127.0.0.2".parse().unwrap()))
            .unwrap();
        verify(&m, &ip_leaf, "127.0.0.2").unwrap();
    }

    #[test]
    fn leaves_are_cached() {
        let (_dir, m) = minter();
        let name = ServerName::Dns("a.test".into());
        assert!(Arc::ptr_eq(
            &m.leaf(&name).unwrap(),
            &m.leaf(&name).unwrap()
        ));
        let config = m.server_config(&name, Some(b"h2")).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"h2".to_vec()]);
    }

    #[test]
    fn every_configuration_shares_one_session_store_and_sends_one_ticket() {
        let (_dir, m) = minter();
        let a = m
            .server_config(&ServerName::Dns("a.test".into()), Some(b"h2"))
            .unwrap();
        let b = m
            .server_config(&ServerName::Ip("127.0.0.2".parse().unwrap()), None)
            .unwrap();
        assert!(Arc::ptr_eq(&a.session_storage, &b.session_storage));
        assert!(Arc::ptr_eq(&a.session_storage, &m.sessions));
        assert_eq!((a.send_tls13_tickets, b.send_tls13_tickets), (1, 1));
    }
}
