//! CRLs kept fresh while the server runs: the client-certificate verifier (CPS cards, other
//! operators' MX) is swapped for one built from the CRL files and URLs as they are now,
//! every `[tls] crl_refresh_secs`, and its followers take the same CRLs: the next hop's
//! certificate check of outbound TLS and the S/MIME signature check. One that cannot be
//! read, fetched or parsed leaves the last valid CRLs in force, and the administrator is
//! told (log and audit trail). CRLs fetched from URLs are first read at start; until then
//! certificates of a CA without a CRL are refused (rustls denies an unknown revocation
//! status).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, Error, RootCertStore, SignatureScheme};

use super::{TlsError, fetch, parse_crl};
use crate::audit::{Audit, Outcome};

/// Another check of certificates against the same CRLs, which takes the new ones when they
/// are refreshed.
pub trait CrlFollower: Send + Sync {
    /// Puts `crls` in force; Ok(false) when they are the ones in force already, Err why
    /// they cannot be (the ones before stay).
    fn follow(&self, crls: &[CertificateRevocationListDer<'static>]) -> Result<bool, String>;
}

/// A client-certificate verifier whose CRLs can be replaced while connections come in.
pub struct RefreshingVerifier {
    anchors: Vec<CertificateDer<'static>>,
    /// The CA names sent to clients: they depend on the anchors only.
    hints: Vec<DistinguishedName>,
    current: RwLock<(
        Vec<CertificateRevocationListDer<'static>>,
        Arc<dyn ClientCertVerifier>,
    )>,
    followers: RwLock<Vec<Arc<dyn CrlFollower>>>,
}

impl std::fmt::Debug for RefreshingVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshingVerifier")
            .field("anchors", &self.anchors.len())
            .finish_non_exhaustive()
    }
}

impl RefreshingVerifier {
    /// A verifier for `anchors` with `crls` (clients without a certificate are let through
    /// to the protocol, which then asks for a password or refuses).
    pub fn new(
        anchors: Vec<CertificateDer<'static>>,
        crls: Vec<CertificateRevocationListDer<'static>>,
    ) -> Result<RefreshingVerifier, TlsError> {
        let verifier = build(&anchors, &crls)?;
        let hints = verifier.root_hint_subjects().to_vec();
        Ok(RefreshingVerifier {
            anchors,
            hints,
            current: RwLock::new((crls, verifier)),
            followers: RwLock::default(),
        })
    }

    /// Has `follower` take every set of CRLs put in force from now on.
    pub fn add_follower(&self, follower: Arc<dyn CrlFollower>) {
        self.followers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(follower);
    }

    fn verifier(&self) -> Arc<dyn ClientCertVerifier> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }

    /// Puts `crls` in force; Ok(false) when they are the ones already in force.
    pub fn install(
        &self,
        crls: Vec<CertificateRevocationListDer<'static>>,
    ) -> Result<bool, TlsError> {
        if self.current.read().unwrap_or_else(|p| p.into_inner()).0 == crls {
            return Ok(false);
        }
        let verifier = build(&self.anchors, &crls)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = (crls, verifier);
        Ok(true)
    }

    /// Puts `crls` in force here and in every follower; Ok(false) when nothing changed.
    /// A follower that refuses them keeps its last valid ones and is named in the error;
    /// it is offered them again at the next refresh.
    fn put_in_force(
        &self,
        crls: Vec<CertificateRevocationListDer<'static>>,
    ) -> Result<bool, String> {
        let followers = self
            .followers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut changed = self.install(crls.clone()).map_err(|e| e.to_string())?;
        let mut refused = Vec::new();
        for follower in &followers {
            match follower.follow(&crls) {
                Ok(took) => changed |= took,
                Err(e) => refused.push(e),
            }
        }
        if refused.is_empty() {
            Ok(changed)
        } else {
            Err(refused.join("; "))
        }
    }

    /// Reads the CRLs from `files` and `urls` and puts them in force if they changed; the
    /// audit trail and the log say what happened when something did.
    pub async fn refresh(self: &Arc<Self>, files: &[PathBuf], urls: &[String], audit: &Audit) {
        let outcome = match gather(files, urls).await {
            // Parsing large CRLs and building the checks from them: off the async workers.
            Ok(crls) => {
                let this = self.clone();
                crate::blocking::run(move || {
                    Ok::<_, crate::blocking::TaskFailed>(this.put_in_force(crls))
                })
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
            }
            Err(e) => Err(e),
        };
        let (outcome, detail) = match outcome {
            Ok(false) => return,
            Ok(true) => {
                tracing::info!("CRLs refreshed");
                (Outcome::Ok, "CRLs refreshed".to_string())
            }
            Err(e) => {
                tracing::error!(error = %e, "CRL refresh failed; the last valid CRLs stay in force");
                (
                    Outcome::Error,
                    format!("refresh failed, the last valid CRLs stay in force: {e}"),
                )
            }
        };
        if let Err(e) = audit
            .record("tls.crl", "server", "tls", outcome, &detail)
            .await
        {
            tracing::error!(error = %e, "audit write failed");
        }
    }

    /// Refreshes from `files` and `urls` every `every`, for as long as the server runs.
    pub async fn keep_fresh(
        self: Arc<Self>,
        files: Vec<PathBuf>,
        urls: Vec<String>,
        every: Duration,
        audit: Audit,
    ) {
        let mut ticks = tokio::time::interval(every);
        ticks.tick().await; // the first tick is now: the CRLs were just read
        loop {
            ticks.tick().await;
            self.refresh(&files, &urls, &audit).await;
        }
    }
}

/// The CRLs as the files and URLs give them now; Err names the first unusable one.
async fn gather(
    files: &[PathBuf],
    urls: &[String],
) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
    let mut crls = Vec::new();
    for file in files {
        let bytes = tokio::fs::read(file)
            .await
            .map_err(|e| format!("{}: {e}", file.display()))?;
        crls.push(parse_crl(bytes).map_err(|e| format!("{}: {e}", file.display()))?);
    }
    for url in urls {
        let bytes = fetch::get(url, None).await?;
        crls.push(parse_crl(bytes).map_err(|e| format!("{url}: {e}"))?);
    }
    Ok(crls)
}

fn build(
    anchors: &[CertificateDer<'static>],
    crls: &[CertificateRevocationListDer<'static>],
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    for anchor in anchors {
        roots
            .add(anchor.clone())
            .map_err(|e| TlsError::Rustls(format!("trust anchor: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .with_crls(crls.iter().cloned())
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::Rustls(format!("client certificate verifier: {e}")))
}

impl ClientCertVerifier for RefreshingVerifier {
    fn offer_client_auth(&self) -> bool {
        self.verifier().offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.verifier().client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        self.verifier()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.verifier().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.verifier().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.verifier().supported_verify_schemes()
    }
}
