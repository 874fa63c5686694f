//! Verified TLS to the real upstream: the original destination address, the client's SNI,
//! the client's ALPN offer, and certificate verification against the webpki roots plus any
//! roots the operator adds (`--upstream-ca FILE`).

use std::{
    collections::HashMap,
    fs,
    path::PathBuf,
    sync::{Arc, Mutex, PoisonError},
};

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{pem::PemObject, CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::{client::TlsStream, TlsConnector};

use super::{provider, TlsError};

/// Connects to upstreams over verified TLS.
pub struct Upstream {
    roots: Arc<RootCertStore>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    /// One configuration per ALPN offer seen (clients offer few distinct lists), so that
    /// connections share rustls's session cache and can resume instead of a full handshake.
    configs: Mutex<HashMap<Vec<Vec<u8>>, Arc<ClientConfig>>>,
}

/// Most distinct ALPN offers given a configuration of their own; offers beyond get a
/// configuration for their connection only.
const MAX_CONFIGS: usize = 64;

/// A verified upstream connection and the protocol it selected.
pub struct Connected {
    /// The TLS stream.
    pub stream: TlsStream<TcpStream>,
    /// The ALPN protocol upstream selected, if any.
    pub alpn: Option<Vec<u8>>,
}

impl Upstream {
    /// Trusts the webpki roots and the certificates in `extra` (PEM files).
    pub fn new(extra: &[PathBuf]) -> Result<Self, TlsError> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for path in extra {
            let bad = |why: String| TlsError::BadRoots {
                path: path.clone(),
                why,
            };
            let pem = fs::read(path).map_err(|e| bad(e.to_string()))?;
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<_, _>>()
                .map_err(|e| bad(format!("not PEM certificates: {e}")))?;
            if certs.is_empty() {
                return Err(bad("no certificates in the file".into()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| bad(e.to_string()))?;
            }
        }
        Ok(Self {
            roots: Arc::new(roots),
            provider: provider(),
            configs: Mutex::new(HashMap::new()),
        })
    }

    /// Performs a verified TLS handshake over `tcp` for `name`, offering `alpn`.
    pub async fn connect(
        &self,
        tcp: TcpStream,
        name: ServerName<'static>,
        alpn: &[Vec<u8>],
    ) -> Result<Connected, std::io::Error> {
        let config = self.config(alpn).map_err(std::io::Error::other)?;
        let stream = TlsConnector::from(config).connect(name, tcp).await?;
        let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        Ok(Connected { stream, alpn })
    }

    /// The client configuration offering `alpn`.
    fn config(&self, alpn: &[Vec<u8>]) -> Result<Arc<ClientConfig>, rustls::Error> {
        let mut configs = self.configs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(config) = configs.get(alpn) {
            return Ok(Arc::clone(config));
        }
        let mut config = ClientConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(Arc::clone(&self.roots))
            .with_no_client_auth();
        config.alpn_protocols = alpn.to_vec();
        let config = Arc::new(config);
        if configs.len() < MAX_CONFIGS {
            configs.insert(alpn.to_vec(), Arc::clone(&config));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_root_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        fs::write(&empty, "").unwrap();
        let err = Upstream::new(&[empty]).err().unwrap();
        assert!(err.to_string().contains("empty.pem"), "{err}");
        let missing = dir.path().join("missing.pem");
        assert!(Upstream::new(&[missing]).is_err());
        assert!(Upstream::new(&[]).is_ok());
    }

    #[test]
    fn connections_offering_the_same_protocols_share_a_configuration() {
        let upstream = Upstream::new(&[]).unwrap();
        let both = [b"h2".to_vec(), b"http/1.1".to_vec()];
        let first = upstream.config(&both).unwrap();
        assert!(Arc::ptr_eq(&first, &upstream.config(&both).unwrap()));
        assert_eq!(first.alpn_protocols, both);
        let h1 = upstream.config(&[b"http/1.1".to_vec()]).unwrap();
        assert!(!Arc::ptr_eq(&first, &h1));
        assert_eq!(h1.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(upstream.config(&[]).unwrap().alpn_protocols.is_empty());
    }

    #[test]
    fn distinct_offers_beyond_the_bound_still_connect_but_are_not_kept() {
        let upstream = Upstream::new(&[]).unwrap();
        for i in 0..MAX_CONFIGS + 10 {
            let offer = [format!("proto-{i}").into_bytes()];
            assert_eq!(upstream.config(&offer).unwrap().alpn_protocols, offer);
        }
        assert_eq!(upstream.configs.lock().unwrap().len(), MAX_CONFIGS);
    }
}
