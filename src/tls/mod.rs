//! TLS for every listener: rustls on aws-lc-rs, TLS 1.2 and 1.3 only.
//!
//! Client certificates are optional and, when sent, verified against the configured trust
//! anchors and CRLs, so one port serves card users (certificate) and password users (none).
//! Which protocol accepts which certificate is the session's decision, not the handshake's.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

use crate::identity::is_test_certificate;

mod client;
mod crl_refresh;
pub mod fetch;
mod smime_trust;

pub use client::{NextHopTls, TrustSpaceVerifier};
pub use crl_refresh::{CrlFollower, RefreshingVerifier};
pub use smime_trust::SmimeTrust;

/// What TLS material could not be used, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or parsed.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// TEST certificates in a production configuration.
    #[error("{what} is a TEST certificate (IGC-SANTE TEST): production refuses TEST material")]
    TestMaterial {
        /// Which certificate.
        what: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(String),
}

/// Certificates and keys for the server side of TLS.
pub struct TlsMaterial {
    /// The server certificate, then its chain.
    pub chain: Vec<CertificateDer<'static>>,
    /// Its private key.
    pub key: PrivateKeyDer<'static>,
    /// CAs client certificates must chain to (empty: no client certificates asked).
    pub client_anchors: Vec<CertificateDer<'static>>,
    /// CRLs of those CAs.
    pub crls: Vec<CertificateRevocationListDer<'static>>,
    /// The files they were read from, re-read while the server runs (none in dev mode,
    /// whose TEST PKI is in the store).
    pub crl_files: Vec<PathBuf>,
    /// CRLs fetched over HTTP at start and at each refresh (`[tls] crl_urls`).
    pub crl_urls: Vec<String>,
}

fn file_err(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Every certificate of a PEM file (at least one).
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(path, e))?;
    if certs.is_empty() {
        return Err(file_err(path, "no PEM certificate in this file"));
    }
    Ok(certs)
}

/// A PEM private key.
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| file_err(path, format!("no usable private key: {e}")))
}

/// A CRL file, DER or PEM.
pub fn read_crl(path: &Path) -> Result<CertificateRevocationListDer<'static>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| file_err(path, e))?;
    parse_crl(bytes).map_err(|e| file_err(path, e))
}

/// A CRL from its DER or PEM bytes.
pub fn parse_crl(bytes: Vec<u8>) -> Result<CertificateRevocationListDer<'static>, String> {
    let crl = if bytes.starts_with(b"-----BEGIN") {
        CertificateRevocationListDer::from_pem_slice(&bytes).map_err(|e| e.to_string())?
    } else {
        CertificateRevocationListDer::from(bytes)
    };
    x509_parser::parse_x509_crl(crl.as_ref()).map_err(|e| format!("not a CRL: {e}"))?;
    Ok(crl)
}

impl TlsMaterial {
    /// Reads the material named in the `[tls]` section of the configuration.
    pub fn from_config(tls: &crate::config::TlsConfig) -> Result<Option<TlsMaterial>, TlsError> {
        let (Some(cert), Some(key)) = (&tls.certificate, &tls.private_key) else {
            return Ok(None);
        };
        let mut client_anchors = Vec::new();
        for path in &tls.client_trust_anchors {
            client_anchors.extend(read_certificates(path.get_ref())?);
        }
        let crls = tls
            .crls
            .iter()
            .map(|p| read_crl(p.get_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Some(TlsMaterial {
            chain: read_certificates(cert.get_ref())?,
            key: read_private_key(key.get_ref())?,
            client_anchors,
            crls,
            crl_files: tls.crls.iter().map(|p| p.get_ref().clone()).collect(),
            crl_urls: tls.crl_urls.iter().map(|u| u.get_ref().clone()).collect(),
        }))
    }

    /// The client anchors and CRLs as S/MIME trust (IGC-Santé anchors serve both); None
    /// when there are none or they cannot be read.
    pub fn smime_trust(&self) -> Option<SmimeTrust> {
        let anchors: Vec<openssl::x509::X509> = self
            .client_anchors
            .iter()
            .filter_map(|c| openssl::x509::X509::from_der(c.as_ref()).ok())
            .collect();
        if anchors.is_empty() {
            return None;
        }
        SmimeTrust::new(anchors, &self.crls)
            .map_err(|e| tracing::warn!(error = %e, "S/MIME trust unavailable"))
            .ok()
    }

    /// Refuses TEST certificates anywhere in this material (production).
    pub fn refuse_test_material(&self) -> Result<(), TlsError> {
        if let Some(leaf) = self.chain.first()
            && is_test_certificate(leaf)
        {
            return Err(TlsError::TestMaterial {
                what: "tls.certificate".into(),
            });
        }
        if self.client_anchors.iter().any(|c| is_test_certificate(c)) {
            return Err(TlsError::TestMaterial {
                what: "a tls.client_trust_anchors entry".into(),
            });
        }
        Ok(())
    }

    /// The rustls server configuration for this material, and the client-certificate
    /// verifier whose CRLs [`RefreshingVerifier::keep_fresh`] can refresh (None when no
    /// client certificates are asked).
    pub fn server_config(
        &self,
    ) -> Result<(Arc<ServerConfig>, Option<Arc<RefreshingVerifier>>), TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
        let (builder, verifier) = if self.client_anchors.is_empty() {
            (builder.with_no_client_auth(), None)
        } else {
            let verifier = Arc::new(RefreshingVerifier::new(
                self.client_anchors.clone(),
                self.crls.clone(),
            )?);
            (
                builder.with_client_cert_verifier(verifier.clone()),
                Some(verifier),
            )
        };
        let mut config = builder
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| TlsError::Rustls(format!("server certificate and key: {e}")))?;
        // Sessions resume from tickets the client keeps (the server keeps only rustls's small
        // cache for TLS 1.2 clients without tickets): a returning client, a card especially,
        // is spared a full handshake. A resumed session
        // skips rustls's certificate check; the listener checks it again
        // (`listener::TlsServer`).
        config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()
            .map_err(|e| TlsError::Rustls(format!("session tickets: {e}")))?;
        Ok((Arc::new(config), verifier))
    }
}

/// What a session knows of its TLS layer (for Received headers, logs, audit).
#[derive(Debug, Clone)]
pub struct TlsInfo {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: String,
    /// Negotiated cipher suite, IANA name.
    pub cipher: String,
    /// The client's certificate chain, verified by the handshake (leaf first); empty if none.
    pub peer_certificates: Vec<CertificateDer<'static>>,
}

impl TlsInfo {
    /// Reads the negotiated parameters of a server connection.
    pub fn of(conn: &rustls::ServerConnection) -> TlsInfo {
        let version = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
            other => format!("{other:?}"),
        };
        let cipher = conn
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
            .unwrap_or("unknown")
            .to_string();
        let peer_certificates = conn
            .peer_certificates()
            .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default();
        TlsInfo {
            version,
            cipher,
            peer_certificates,
        }
    }
}
