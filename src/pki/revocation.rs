//! The TEST PKI's register of issued certificates, revocation, and the CRLs made from it.
//! Each issued certificate is a setting `pki.<id>.issued.<serial>` = `CA|profile|revoked
//! at|subject`; revoking one stamps its time, and the next `crls()` lists it.

use super::x509::{self, Revoked};
use super::{PkiError, TestPki, blocking};
use crate::store::Store;

impl TestPki {
    /// Every certificate issued: (serial, CA, profile, revoked at or 0, subject).
    pub async fn issued(&self, store: &Store) -> Result<Vec<IssuedRecord>, PkiError> {
        let prefix = format!("pki.{}.issued.", self.id);
        let mut out = Vec::new();
        for (key, value) in store.db().settings_with_prefix(&prefix).await? {
            let value = String::from_utf8_lossy(&value);
            let mut parts = value.splitn(4, '|');
            let (Some(ca), Some(profile), Some(revoked), Some(subject)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            out.push(IssuedRecord {
                serial_hex: key[prefix.len()..].to_string(),
                ca: ca.to_string(),
                profile: profile.to_string(),
                revoked_at: revoked.parse().unwrap_or(0),
                subject: subject.to_string(),
            });
        }
        Ok(out)
    }

    /// Revokes a certificate by serial (hex); the CRLs change at the next `crls()`.
    pub async fn revoke(&self, store: &Store, serial_hex: &str) -> Result<IssuedRecord, PkiError> {
        let serial = serial_hex.trim().to_ascii_uppercase();
        let mut record = self
            .issued(store)
            .await?
            .into_iter()
            .find(|r| r.serial_hex == serial)
            .ok_or_else(|| {
                PkiError::Invalid(format!(
                    "no certificate with serial {serial} was issued by this TEST PKI"
                ))
            })?;
        if record.revoked_at == 0 {
            record.revoked_at = chrono::Utc::now().timestamp();
            self.put_record(store, &record).await?;
        }
        Ok(record)
    }

    /// Writes `record` to the register (a new one, or its revocation).
    pub(super) async fn put_record(
        &self,
        store: &Store,
        record: &IssuedRecord,
    ) -> Result<(), PkiError> {
        let value = format!(
            "{}|{}|{}|{}",
            record.ca, record.profile, record.revoked_at, record.subject
        );
        store
            .db()
            .put_setting(
                &format!("pki.{}.issued.{}", self.id, record.serial_hex),
                value.as_bytes(),
                false,
            )
            .await?;
        Ok(())
    }

    /// A fresh CRL (DER) for each CA, valid 7 days: (CA name, DER).
    pub async fn crls(&self, store: &Store) -> Result<Vec<(&'static str, Vec<u8>)>, PkiError> {
        let issued = self.issued(store).await?;
        let number = u32::try_from(chrono::Utc::now().timestamp()).unwrap_or(u32::MAX);
        let cas = [&self.root, &self.organisations, &self.personnes].map(|ca| ca.clone());
        // Each CRL is signed with its CA's key: on the blocking pool.
        blocking(move || {
            let mut out = Vec::new();
            for ca in cas {
                let revoked: Vec<Revoked> = issued
                    .iter()
                    .filter(|r| r.ca == ca.name && r.revoked_at != 0)
                    .map(|r| Revoked {
                        serial_hex: r.serial_hex.clone(),
                        at: r.revoked_at,
                    })
                    .collect();
                out.push((ca.name, x509::crl(&ca.cert, &ca.key, &revoked, number, 7)?));
            }
            Ok(out)
        })
        .await
    }
}

/// One entry of the issued-certificates register.
#[derive(Debug, Clone)]
pub struct IssuedRecord {
    /// Serial number, upper-case hex.
    pub serial_hex: String,
    /// Issuing CA name.
    pub ca: String,
    /// `ca`, `server`, `auth`, `signature`, `encryption`.
    pub profile: String,
    /// Revocation time (seconds since the epoch), 0 when valid.
    pub revoked_at: i64,
    /// Subject, one line.
    pub subject: String,
}
