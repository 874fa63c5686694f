//! Verified TLS to the real upstream: the original destination address, the client's SNI,
//! the client's ALPN offer, and certificate verification against the webpki roots plus any
//! roots the operator adds (`--upstream-ca FILE`).

use std::{fs, path::PathBuf, sync::Arc};

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{pem::PemObject, CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::{client::TlsStream, TlsConnector};

use super::{provider, TlsError};

/// Connects to upstreams over verified TLS.
pub struct Upstream {
    roots: Arc<RootCertStore>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

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
        })
    }

    /// Performs a verified TLS handshake over `tcp` for `name`, offering `alpn`.
    pub async fn connect(
        &self,
        tcp: TcpStream,
        name: ServerName<'static>,
        alpn: &[Vec<u8>],
    ) -> Result<Connected, std::io::Error> {
        let mut config = ClientConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .with_root_certificates(Arc::clone(&self.roots))
            .with_no_client_auth();
        config.alpn_protocols = alpn.to_vec();
        let stream = TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?;
        let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        Ok(Connected { stream, alpn })
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
}
