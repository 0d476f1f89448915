//! The S/MIME trust as delivery reads it: the IGC-Santé anchors (the same as for TLS) and
//! the CRLs, rebuilt when the CRLs are refreshed (`CrlFollower`), so that a signer revoked
//! while the server runs is told as revoked from the next refresh on. The chain verdicts
//! the smime crate remembers go with the old trust.

use std::sync::{Arc, RwLock};

use mssante_smime::Trust;
use openssl::x509::{X509, X509Crl};
use rustls::pki_types::CertificateRevocationListDer;

use super::CrlFollower;

/// Anchors and the trust built from them with the CRLs in force.
pub struct SmimeTrust {
    anchors: Vec<X509>,
    /// The CRLs in force, as read, and the trust built with them.
    current: RwLock<(Vec<CertificateRevocationListDer<'static>>, Arc<Trust>)>,
}

impl SmimeTrust {
    /// Trusts `anchors`, checking chains against `crls`.
    pub fn new(
        anchors: Vec<X509>,
        crls: &[CertificateRevocationListDer<'static>],
    ) -> Result<SmimeTrust, String> {
        let trust = build(&anchors, crls)?;
        Ok(SmimeTrust {
            anchors,
            current: RwLock::new((crls.to_vec(), Arc::new(trust))),
        })
    }

    /// The trust to check a signature with now.
    pub fn current(&self) -> Arc<Trust> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }
}

fn build(
    anchors: &[X509],
    crls: &[CertificateRevocationListDer<'static>],
) -> Result<Trust, String> {
    let crls = crls
        .iter()
        .map(|crl| X509Crl::from_der(crl.as_ref()).map_err(|e| format!("S/MIME: CRL: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Trust::new(anchors, &crls).map_err(|e| format!("S/MIME: {e}"))
}

impl CrlFollower for SmimeTrust {
    fn follow(&self, crls: &[CertificateRevocationListDer<'static>]) -> Result<bool, String> {
        if self.current.read().unwrap_or_else(|p| p.into_inner()).0 == crls {
            return Ok(false);
        }
        let trust = build(&self.anchors, crls)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = (crls.to_vec(), Arc::new(trust));
        Ok(true)
    }
}
