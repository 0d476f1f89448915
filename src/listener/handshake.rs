//! The TLS handshake, shared by implicit TLS and STARTTLS: bounded in time, and the
//! decision on a client certificate (a CPS card, another operator) lands in the audit trail
//! whichever way it goes.

use std::io;

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::connection::{HANDSHAKE_TIMEOUT, ReadError};
use crate::audit::{Audit, Outcome};

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
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    audit: &HandshakeAudit,
) -> Result<TlsStream<TcpStream>, ReadError> {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
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
    if let Some(leaf) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
        let subject = x509_parser::parse_x509_certificate(leaf.as_ref())
            .map(|(_, c)| c.subject().to_string())
            .unwrap_or_else(|_| "(unparsable subject)".into());
        tracing::info!(%subject, "client certificate accepted");
        audit
            .record("tls.client_certificate", Outcome::Ok, &subject)
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
