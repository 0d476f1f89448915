//! The TEST PKI: a hierarchy shaped like IGC-Santé, for dev mode and the tests.
//!
//! A root (`TEST AC RACINE IGC-SANTE`) signs two intermediates, ORGANISATIONS (operator
//! servers) and PERSONNES (cards and people's software certificates), with the DN layout of
//! the real ones (`OU=IGC-SANTE TEST`). Person certificates carry the multi-valued RDN
//! `{CN=idNat + SN + GN}` and the ANS product-category extension marking them TEST, so the
//! code paths that parse real cards are exercised. Production refuses all of it.
//!
//! Certificates are public and also written to `<data>/pki/` for clients to trust; private
//! keys live only sealed in the store. Every issued certificate is registered, so it can be
//! revoked and the CRLs rebuilt.

mod revocation;
pub mod x509;

pub use revocation::IssuedRecord;

use std::path::{Path, PathBuf};

use openssl::error::ErrorStack;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509, X509Name};

use crate::store::{Store, StoreError};
use x509::{Attr, CertSpec, Profile};

/// What went wrong in the TEST PKI.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// OpenSSL refused.
    #[error("openssl: {0}")]
    OpenSsl(#[from] ErrorStack),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The request does not make sense.
    #[error("{0}")]
    Invalid(String),
}

/// A certificate authority of the hierarchy.
#[derive(Clone)]
pub struct Ca {
    /// `root`, `organisations` or `personnes`.
    pub name: &'static str,
    /// Its certificate.
    pub cert: X509,
    key: PKey<Private>,
}

/// A certificate with its private key and the chain up to (and including) the root.
pub struct Issued {
    /// The certificate.
    pub cert: X509,
    /// Its private key.
    pub key: PKey<Private>,
    /// Intermediate, then root.
    pub chain: Vec<X509>,
}

/// What a person certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PersonUse {
    /// CPS card authentication (TLS client).
    Auth,
    /// S/MIME signature.
    Signature,
    /// S/MIME encryption.
    Encryption,
}

/// A person certificate to issue.
#[derive(Debug, Clone)]
pub struct PersonRequest {
    /// National identifier: type digit + identifier (e.g. `8` + RPPS).
    pub idnat: String,
    /// Surname (SN).
    pub surname: String,
    /// Given name (GN).
    pub given_name: String,
    /// Profession label (the `title` attribute).
    pub profession: String,
    /// E-mail address for S/MIME certificates.
    pub email: Option<String>,
    /// Use.
    pub usage: PersonUse,
    /// Already expired (valid from two days ago to yesterday), to test refusals.
    pub expired: bool,
}

/// The TEST hierarchy of one data directory.
pub struct TestPki {
    id: String,
    /// The self-signed root.
    pub root: Ca,
    /// Issues operator server certificates.
    pub organisations: Ca,
    /// Issues person certificates.
    pub personnes: Ca,
}

const CA_OU: [Attr<'static>; 2] = [("OU", "0002 187512751"), ("OU", "IGC-SANTE TEST")];

fn ca_name(cn: &str) -> Result<X509Name, ErrorStack> {
    x509::name(&[
        &[("C", "FR")],
        &[("O", "ASIP-SANTE")],
        &[CA_OU[0]],
        &[CA_OU[1]],
        &[("CN", cn)],
    ])
}

/// [`crate::blocking::run`] for work that fails with a [`PkiError`].
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, PkiError> + Send + 'static,
) -> Result<T, PkiError> {
    crate::blocking::run(work).await
}

impl From<crate::blocking::TaskFailed> for PkiError {
    fn from(e: crate::blocking::TaskFailed) -> Self {
        PkiError::Invalid(e.to_string())
    }
}

impl TestPki {
    /// Loads the hierarchy of this store, creating it on first use. Safe when several
    /// processes start at once: the first to register its hierarchy wins, the others load it.
    pub async fn load_or_create(store: &Store) -> Result<TestPki, PkiError> {
        if let Some(pki) = Self::load(store).await? {
            return Ok(pki);
        }
        let (root, organisations, personnes) = blocking(|| {
            let root_key = x509::new_key()?;
            fn spec(subject: &X509Name, days: u32) -> CertSpec<'_> {
                CertSpec {
                    subject,
                    days,
                    dns: vec![],
                    ips: vec![],
                    emails: vec![],
                    extra: vec![],
                    expired: false,
                }
            }
            let root_name = ca_name("TEST AC RACINE IGC-SANTE")?;
            let root = x509::certificate(
                &spec(&root_name, 7300),
                &root_key,
                Profile::Ca { path_len: Some(1) },
                None,
            )?;
            let make = |cn: &str| -> Result<(X509, PKey<Private>), PkiError> {
                let key = x509::new_key()?;
                let subject = ca_name(cn)?;
                let s = spec(&subject, 3650);
                let cert = x509::certificate(
                    &s,
                    &key,
                    Profile::Ca { path_len: Some(0) },
                    Some((&root, &root_key)),
                )?;
                Ok((cert, key))
            };
            let orgs = make("TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS")?;
            let pers = make("TEST AC IGC-SANTE FORT PERSONNES")?;
            Ok(((root, root_key), orgs, pers))
        })
        .await?;
        let mut id = [0u8; 8];
        aws_lc_rs::rand::fill(&mut id)
            .map_err(|_| PkiError::Invalid("random generator failure".into()))?;
        let pki = TestPki {
            id: hex::encode(id),
            root: Ca {
                name: "root",
                cert: root.0,
                key: root.1,
            },
            organisations: Ca {
                name: "organisations",
                cert: organisations.0,
                key: organisations.1,
            },
            personnes: Ca {
                name: "personnes",
                cert: personnes.0,
                key: personnes.1,
            },
        };
        for ca in [&pki.root, &pki.organisations, &pki.personnes] {
            store
                .put_secret(
                    &format!("pki.{}.{}.key", pki.id, ca.name),
                    &ca.key.private_key_to_pkcs8()?,
                )
                .await?;
            store
                .db()
                .put_setting(
                    &format!("pki.{}.{}.cert", pki.id, ca.name),
                    &ca.cert.to_pem()?,
                    false,
                )
                .await?;
        }
        for ca in [&pki.organisations, &pki.personnes] {
            pki.register(store, &ca.cert, "root", "ca").await?;
        }
        if store
            .db()
            .put_setting("pki.current", pki.id.as_bytes(), true)
            .await?
        {
            Ok(pki)
        } else {
            // Another process registered its hierarchy first: use that one.
            Self::load(store)
                .await?
                .ok_or_else(|| PkiError::Invalid("TEST PKI vanished".into()))
        }
    }

    async fn load(store: &Store) -> Result<Option<TestPki>, PkiError> {
        let Some(id) = store.db().get_setting("pki.current").await? else {
            return Ok(None);
        };
        let id = String::from_utf8_lossy(&id).into_owned();
        let load_ca = async |name: &'static str| -> Result<Ca, PkiError> {
            let missing =
                || PkiError::Invalid(format!("TEST PKI {id}: {name} is missing from the store"));
            let pem = store
                .db()
                .get_setting(&format!("pki.{id}.{name}.cert"))
                .await?
                .ok_or_else(missing)?;
            let der = store
                .get_secret(&format!("pki.{id}.{name}.key"))
                .await?
                .ok_or_else(missing)?;
            Ok(Ca {
                name,
                cert: X509::from_pem(&pem)?,
                key: PKey::private_key_from_pkcs8(&der)?,
            })
        };
        Ok(Some(TestPki {
            root: load_ca("root").await?,
            organisations: load_ca("organisations").await?,
            personnes: load_ca("personnes").await?,
            id,
        }))
    }

    fn ca(&self, name: &str) -> Option<&Ca> {
        [&self.root, &self.organisations, &self.personnes]
            .into_iter()
            .find(|c| c.name == name)
    }

    async fn register(
        &self,
        store: &Store,
        cert: &X509,
        ca: &str,
        profile: &str,
    ) -> Result<(), PkiError> {
        let record = IssuedRecord {
            serial_hex: serial_hex(cert)?,
            ca: ca.to_string(),
            profile: profile.to_string(),
            revoked_at: 0,
            subject: subject_line(cert),
        };
        self.put_record(store, &record).await
    }

    /// Issues an operator server certificate for `host` (TLS server and client), with the DN
    /// layout of the whitelist's `DNCertificatOperateur`.
    pub async fn issue_server(
        &self,
        store: &Store,
        host: &str,
        organisation: &str,
    ) -> Result<Issued, PkiError> {
        let ca = self.organisations.clone();
        let (host_s, org) = (host.to_string(), organisation.to_string());
        let issued = blocking(move || {
            let key = x509::new_key()?;
            let subject = x509::name(&[
                &[("C", "FR")],
                &[("ST", "Paris (75)")],
                &[("O", org.as_str())],
                &[("OU", "00000000000000")],
                &[("CN", host_s.as_str())],
            ])?;
            let (mut dns, mut ips) = (vec![host_s.clone()], vec![]);
            if host_s == "localhost" {
                ips = vec!["127.0.0.1".into(), "::1".into()];
            } else if host_s.parse::<std::net::IpAddr>().is_ok() {
                dns.clear();
                ips.push(host_s.clone());
            }
            let spec = CertSpec {
                subject: &subject,
                days: 1095,
                dns,
                ips,
                emails: vec![],
                extra: vec![x509::ans_extension(
                    x509::OID_PRODUCT_CATEGORY,
                    x509::CATEGORY_TEST_SOFTWARE,
                )?],
                expired: false,
            };
            let cert = x509::certificate(&spec, &key, Profile::Server, Some((&ca.cert, &ca.key)))?;
            Ok(Issued {
                cert,
                key,
                chain: vec![],
            })
        })
        .await?;
        self.register(store, &issued.cert, "organisations", "server")
            .await?;
        Ok(Issued {
            chain: vec![self.organisations.cert.clone(), self.root.cert.clone()],
            ..issued
        })
    }

    /// This host's own server certificate: issued once, then kept (key sealed) in the store.
    pub async fn server_identity(&self, store: &Store, host: &str) -> Result<Issued, PkiError> {
        let name = format!("pki.{}.server.{host}", self.id);
        if let (Some(pem), Some(key)) = (
            store.db().get_setting(&format!("{name}.cert")).await?,
            store.get_secret(&format!("{name}.key")).await?,
        ) {
            return Ok(Issued {
                cert: X509::from_pem(&pem)?,
                key: PKey::private_key_from_pkcs8(&key)?,
                chain: vec![self.organisations.cert.clone(), self.root.cert.clone()],
            });
        }
        let issued = self
            .issue_server(store, host, "MSSANTE DEV OPERATOR")
            .await?;
        store
            .put_secret(&format!("{name}.key"), &issued.key.private_key_to_pkcs8()?)
            .await?;
        store
            .db()
            .put_setting(&format!("{name}.cert"), &issued.cert.to_pem()?, false)
            .await?;
        Ok(issued)
    }

    /// Issues a person certificate (card authentication, S/MIME signature or encryption).
    pub async fn issue_person(
        &self,
        store: &Store,
        req: &PersonRequest,
    ) -> Result<Issued, PkiError> {
        if req.idnat.is_empty()
            || !req
                .idnat
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '/')
        {
            return Err(PkiError::Invalid(format!(
                "{:?} is not an idNat (type digit + identifier)",
                req.idnat
            )));
        }
        if req.usage != PersonUse::Auth && req.email.is_none() {
            return Err(PkiError::Invalid(
                "an S/MIME certificate needs --email".into(),
            ));
        }
        let ca = self.personnes.clone();
        let req = req.clone();
        let issued = blocking(move || {
            let key = x509::new_key()?;
            let subject = x509::name(&[
                &[("C", "FR")],
                &[("title", req.profession.as_str())],
                &[
                    ("CN", req.idnat.as_str()),
                    ("SN", req.surname.as_str()),
                    ("GN", req.given_name.as_str()),
                ],
            ])?;
            let (profile, category) = match req.usage {
                PersonUse::Auth => (Profile::CardAuth, x509::CATEGORY_TEST_CARD),
                PersonUse::Signature => (Profile::Signature, x509::CATEGORY_TEST_SOFTWARE),
                PersonUse::Encryption => (Profile::Encryption, x509::CATEGORY_TEST_SOFTWARE),
            };
            let mut extra = vec![x509::ans_extension(x509::OID_PRODUCT_CATEGORY, category)?];
            if req.usage == PersonUse::Auth {
                extra.push(x509::ans_extension(x509::OID_CARD_TYPE, 0)?);
            }
            let spec = CertSpec {
                subject: &subject,
                days: 1095,
                dns: vec![],
                ips: vec![],
                emails: req.email.into_iter().collect(),
                extra,
                expired: req.expired,
            };
            let cert = x509::certificate(&spec, &key, profile, Some((&ca.cert, &ca.key)))?;
            Ok(Issued {
                cert,
                key,
                chain: vec![],
            })
        })
        .await?;
        let profile = format!("{:?}", req.usage).to_lowercase();
        self.register(store, &issued.cert, "personnes", &profile)
            .await?;
        Ok(Issued {
            chain: vec![self.personnes.cert.clone(), self.root.cert.clone()],
            ..issued
        })
    }

    /// Writes the public half (CA certificates, CRLs) to `dir`; returns the CA bundle path.
    pub async fn write_public_files(&self, store: &Store, dir: &Path) -> Result<PathBuf, PkiError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PkiError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut bundle = Vec::new();
        for ca in [&self.root, &self.organisations, &self.personnes] {
            let pem = ca.cert.to_pem()?;
            let path = dir.join(format!("{}.pem", ca.name));
            write_atomic(&path, &pem).map_err(io(&path))?;
            bundle.extend_from_slice(&pem);
        }
        for (name, der) in self.crls(store).await? {
            let path = dir.join(format!("{name}.crl"));
            write_atomic(&path, &der).map_err(io(&path))?;
        }
        let path = dir.join("ca-bundle.pem");
        write_atomic(&path, &bundle).map_err(io(&path))?;
        Ok(path)
    }

    /// Looks up a CA by name.
    pub fn ca_cert(&self, name: &str) -> Option<&X509> {
        self.ca(name).map(|c| &c.cert)
    }
}

/// A certificate's serial number in hexadecimal (as `openssl x509 -serial` prints it): how
/// the TEST PKI's records, `key list` and the audit trail name a certificate.
pub fn serial_hex(cert: &X509) -> Result<String, ErrorStack> {
    Ok(cert.serial_number().to_bn()?.to_hex_str()?.to_string())
}

/// The subject as `C=FR, title=..., CN=... + SN=... + GN=...`.
pub fn subject_line(cert: &X509) -> String {
    x509_parser::parse_x509_certificate(&cert.to_der().unwrap_or_default())
        .map(|(_, c)| c.subject().to_string())
        .unwrap_or_default()
}

/// Why a certificate (DER) cannot be used now (unreadable, expired, not yet valid); None
/// when it can.
pub fn unusable_now(der: &[u8]) -> Option<String> {
    match x509_parser::parse_x509_certificate(der) {
        Err(_) => Some("the certificate cannot be read".into()),
        Ok((_, cert)) => {
            let validity = cert.validity();
            if validity.is_valid() {
                None
            } else if validity.not_after < x509_parser::time::ASN1Time::now() {
                Some(format!("the certificate expired on {}", validity.not_after))
            } else {
                Some(format!(
                    "the certificate is valid only from {}",
                    validity.not_before
                ))
            }
        }
    }
}

/// Writes a file through a temporary name and a rename, so readers never see half of it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use openssl::asn1::Asn1Time;
    use openssl::x509::X509Builder;

    use super::x509::{name, new_key};

    /// A self-signed certificate valid between these Unix times.
    fn valid_between(from: i64, to: i64) -> Vec<u8> {
        let key = new_key().expect("key");
        let subject = name(&[&[("CN", "Dr Test")]]).expect("name");
        let mut cert = X509Builder::new().expect("builder");
        cert.set_subject_name(&subject).expect("subject");
        cert.set_issuer_name(&subject).expect("issuer");
        cert.set_pubkey(&key).expect("key");
        cert.set_not_before(&Asn1Time::from_unix(from).expect("time"))
            .expect("not before");
        cert.set_not_after(&Asn1Time::from_unix(to).expect("time"))
            .expect("not after");
        cert.sign(&key, openssl::hash::MessageDigest::sha256())
            .expect("sign");
        cert.build().to_der().expect("der")
    }

    #[test]
    fn a_certificate_is_usable_only_within_its_validity() {
        let now = chrono::Utc::now().timestamp();
        assert_eq!(
            super::unusable_now(&valid_between(now - 60, now + 3600)),
            None
        );
        let expired = super::unusable_now(&valid_between(now - 7200, now - 3600));
        assert!(expired.is_some_and(|r| r.starts_with("the certificate expired on")));
        let early = super::unusable_now(&valid_between(now + 3600, now + 7200));
        assert!(early.is_some_and(|r| r.starts_with("the certificate is valid only from")));
        assert_eq!(
            super::unusable_now(b"not DER").as_deref(),
            Some("the certificate cannot be read")
        );
    }
}
