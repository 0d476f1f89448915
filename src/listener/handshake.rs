//! The TLS handshake, shared by implicit TLS and STARTTLS: bounded in time, and the
//! decision on a client certificate (a CPS card, another operator) lands in the audit trail
//! whichever way it goes.
//!
//! Sessions resume, so a card is not asked to sign again at each of its client's
//! connections. rustls does not check the certificate of a resumed session again; this does,
//! with the CRLs in force now, so a card revoked since its first handshake gets no further.

use std::io;
use std::sync::Arc;

use rustls::HandshakeKind;
use rustls::pki_types::UnixTime;
use rustls::server::danger::ClientCertVerifier;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::connection::{HANDSHAKE_TIMEOUT, ReadError};
use crate::audit::{Audit, Outcome};

/// The server side of TLS: the acceptor, and the verifier of client certificates (None when
/// none are asked), which also checks a resumed session's certificate again.
#[derive(Clone)]
pub struct TlsServer {
    acceptor: TlsAcceptor,
    client_verifier: Option<Arc<dyn ClientCertVerifier>>,
}

impl TlsServer {
    /// TLS with `config`, whose client certificates `client_verifier` verifies.
    pub fn new(
        config: Arc<rustls::ServerConfig>,
        client_verifier: Option<Arc<dyn ClientCertVerifier>>,
    ) -> TlsServer {
        TlsServer {
            acceptor: TlsAcceptor::from(config),
            client_verifier,
        }
    }
}

/// Who is shaking hands, for the audit trail: `"<protocol> <peer address>"`.
#[derive(Clone)]
pub struct HandshakeAudit {
    /// The audit trail.
    pub audit: Audit,
    /// Protocol and peer address.
    pub source: String,
}

impl HandshakeAudit {
    async fn record(&self, event: &str, outcome: Outcome, detail: &str) {
        if let Err(e) = self
            .audit
            .record(event, "-", &self.source, outcome, detail)
            .await
        {
            tracing::error!(error = %e, "audit write failed");
        }
    }
}

/// Performs the server side of the handshake.
pub async fn accept(
    server: &TlsServer,
    tcp: TcpStream,
    audit: &HandshakeAudit,
) -> Result<TlsStream<TcpStream>, ReadError> {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, server.acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::info!(reason = %e, "TLS handshake failed");
            if certificate_refused(&e) {
                audit
                    .record("tls.refused", Outcome::Refused, &e.to_string())
                    .await;
            }
            return Err(ReadError::Io(e));
        }
        Err(_) => {
            tracing::info!("TLS handshake timed out");
            return Err(ReadError::Timeout);
        }
    };
    let connection = tls.get_ref().1;
    let resumed = connection.handshake_kind() == Some(HandshakeKind::Resumed);
    if let Some((leaf, intermediates)) =
        connection.peer_certificates().and_then(|c| c.split_first())
    {
        let subject = x509_parser::parse_x509_certificate(leaf.as_ref())
            .map(|(_, c)| c.subject().to_string())
            .unwrap_or_else(|_| "(unparsable subject)".into());
        if resumed
            && let Some(verifier) = &server.client_verifier
            && let Err(e) = verifier.verify_client_cert(leaf, intermediates, UnixTime::now())
        {
            tracing::info!(%subject, reason = %e, "resumed TLS session refused");
            let detail = format!("resumed session of {subject}: {e}");
            audit.record("tls.refused", Outcome::Refused, &detail).await;
            return Err(ReadError::Io(io::Error::new(
                io::ErrorKind::PermissionDenied,
                detail,
            )));
        }
        let detail = if resumed {
            format!("{subject} (resumed session, checked again)")
        } else {
            subject
        };
        tracing::info!(subject = %detail, "client certificate accepted");
        audit
            .record("tls.client_certificate", Outcome::Ok, &detail)
            .await;
    }
    Ok(tls)
}

/// Whether rustls refused the handshake because of the client's certificate.
fn certificate_refused(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_)))
}
