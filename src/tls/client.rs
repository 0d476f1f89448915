//! TLS for outbound SMTP: we present our operator certificate, and the next hop must show a
//! certificate that chains to the trust anchors and is not revoked.
//!
//! Host names are not how the trust space names its members: the whitelist names each
//! operator by its certificate's subject DN, and the queue compares that DN after the
//! handshake. So this verifier checks the chain, validity, revocation and the server-auth
//! usage, and leaves the name to the DN check (a static route to 127.0.0.1 has no name).
//! Its CRLs follow the refreshes of the server's (`CrlFollower`).
//!
//! Sessions resume (a returning connection is spared the full handshake), and rustls does
//! not check the certificate of a resumed session: [`NextHopTls::recheck`] does, with the
//! CRLs in force.

use std::sync::{Arc, RwLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use webpki::{CertRevocationList, OwnedCertRevocationList, RevocationOptionsBuilder};

use super::{CrlFollower, TlsError, TlsMaterial};

/// CRLs as they were read, and as webpki checks against them.
type Crls = (
    Vec<CertificateRevocationListDer<'static>>,
    Vec<CertRevocationList<'static>>,
);

/// Checks a next hop's certificate chain against the trust anchors and CRLs, not its name.
#[derive(Debug)]
pub struct TrustSpaceVerifier {
    anchors: Vec<rustls::pki_types::TrustAnchor<'static>>,
    crls: RwLock<Crls>,
    algorithms: WebPkiSupportedAlgorithms,
}

/// CRLs in webpki's form.
fn parse_crls(
    crls: &[CertificateRevocationListDer<'static>],
) -> Result<Vec<CertRevocationList<'static>>, String> {
    crls.iter()
        .map(|crl| {
            OwnedCertRevocationList::from_der(crl)
                .map(CertRevocationList::from)
                .map_err(|e| format!("CRL: {e}"))
        })
        .collect()
}

impl TrustSpaceVerifier {
    fn new(
        material: &TlsMaterial,
        algorithms: WebPkiSupportedAlgorithms,
    ) -> Result<Self, TlsError> {
        let mut anchors = Vec::new();
        for cert in &material.client_anchors {
            let anchor = webpki::anchor_from_trusted_cert(cert)
                .map_err(|e| TlsError::Rustls(format!("trust anchor: {e}")))?;
            anchors.push(anchor.to_owned());
        }
        let parsed = parse_crls(&material.crls).map_err(TlsError::Rustls)?;
        Ok(TrustSpaceVerifier {
            anchors,
            crls: RwLock::new((material.crls.clone(), parsed)),
            algorithms,
        })
    }
}

impl ServerCertVerifier for TrustSpaceVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|e| rustls::Error::General(format!("peer certificate: {e}")))?;
        let crls = self.crls.read().unwrap_or_else(|p| p.into_inner());
        let crl_refs: Vec<&CertRevocationList<'_>> = crls.1.iter().collect();
        // A CA we hold no CRL for is not a revoked CA: the CRLs cover what they cover.
        let revocation = RevocationOptionsBuilder::new(&crl_refs).ok().map(|b| {
            b.with_status_policy(webpki::UnknownStatusPolicy::Allow)
                .build()
        });
        cert.verify_for_usage(
            self.algorithms.all,
            &self.anchors,
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            revocation,
            None,
        )
        .map_err(|e| rustls::Error::General(format!("peer certificate: {e}")))?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl CrlFollower for TrustSpaceVerifier {
    fn follow(&self, crls: &[CertificateRevocationListDer<'static>]) -> Result<bool, String> {
        if self.crls.read().unwrap_or_else(|p| p.into_inner()).0 == crls {
            return Ok(false);
        }
        let parsed = parse_crls(crls).map_err(|e| format!("outbound TLS: {e}"))?;
        *self.crls.write().unwrap_or_else(|p| p.into_inner()) = (crls.to_vec(), parsed);
        Ok(true)
    }
}

/// The outbound queue's TLS: the rustls configuration (our certificate for client
/// authentication, the trust anchors for the next hop's) and its verifier of the next hop's
/// certificate, which follows the CRL refreshes.
#[derive(Clone)]
pub struct NextHopTls {
    /// For `TlsConnector`.
    pub config: Arc<ClientConfig>,
    /// The check of the next hop's certificate.
    pub verifier: Arc<TrustSpaceVerifier>,
}

impl NextHopTls {
    /// Checks again the certificate of a connection that resumed its session (rustls checked
    /// it only at the first handshake): the next hop may have been revoked since.
    pub fn recheck(&self, connection: &rustls::ClientConnection) -> Result<(), rustls::Error> {
        if connection.handshake_kind() != Some(rustls::HandshakeKind::Resumed) {
            return Ok(());
        }
        let Some((leaf, intermediates)) =
            connection.peer_certificates().and_then(|c| c.split_first())
        else {
            return Err(rustls::Error::NoCertificatesPresented);
        };
        // The name is not checked (see the module's doc): any valid one will do.
        let name = ServerName::try_from("next-hop.invalid")
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        self.verifier
            .verify_server_cert(leaf, intermediates, &name, &[], UnixTime::now())
            .map(|_| ())
    }
}

impl TlsMaterial {
    /// The outbound queue's TLS configuration and verifier.
    pub fn client_config(&self) -> Result<NextHopTls, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = Arc::new(TrustSpaceVerifier::new(
            self,
            provider.signature_verification_algorithms,
        )?);
        let config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Rustls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| TlsError::Rustls(format!("client certificate and key: {e}")))?;
        Ok(NextHopTls {
            config: Arc::new(config),
            verifier,
        })
    }
}
