//! S/MIME on the way out, on the professional's behalf (`[smime] outbound`): what a user
//! submits for other operators is signed with their escrowed signature key and encrypted to
//! the remote recipients' certificates (`mssante cert add`; the national directory later).
//!
//! The RFC 5322 header stays outside; the content (its Content-* fields and the body) is
//! made 7-bit first, so no relay can alter what was signed (RFC 8551 3.1.3), then signed,
//! then encrypted. A message the client already protected is left as it is.
//!
//! A recipient certificate that is not valid now counts as none; an expired signature
//! certificate of the sender's is not used (a signature it made would only be reported
//! invalid). Peers listed in `[smime] legacy_domains` (or all, `legacy = true`) get the forms
//! old clients read: AES-256-CBC, RSA PKCS#1 v1.5, PKCS#1 v1.5 signatures.

use std::collections::HashSet;
use std::sync::Arc;

use mssante_directory::whitelist;
use mssante_smime::{EncryptOptions, SignatureScheme, mime};
use openssl::pkey::PKey;
use openssl::x509::X509;

use crate::audit;
use crate::config::{OutboundSmime, SmimePolicy};
use crate::directory::DirectoryLookup;
use crate::smtp::downgrade;
use crate::store::{Account, AuditRecord, KeyState, KeyUse, Store};

/// Header fields that belong to the MIME entity, not to the message around it.
const CONTENT_FIELDS: [&str; 6] = [
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "content-description",
    "content-id",
    "mime-version",
];

/// The message for the queue, and the recipients it must not go to.
#[derive(Debug, Default)]
pub struct Protected {
    /// The signed and/or encrypted message; None to send what the client wrote.
    pub message: Option<Vec<u8>>,
    /// Recipients refused by the `require` policy, with the reason.
    pub refused: Vec<(String, String)>,
    /// The audit record of the escrowed signature key's use, to commit with the message.
    pub key_use: Option<AuditRecord>,
}

/// Signs and encrypts outbound mail according to the policy.
#[derive(Clone)]
pub struct SmimeOutbound {
    store: Store,
    policy: OutboundSmime,
    legacy_everywhere: bool,
    /// A-labels.
    legacy_domains: Arc<HashSet<String>>,
    /// Recipients' certificates from the national directory, after the local table.
    directory: Option<Arc<DirectoryLookup>>,
}

impl SmimeOutbound {
    /// Outbound S/MIME as `[smime]` says, with certificates from the local table then, when
    /// given, the national directory.
    pub fn new(
        store: Store,
        smime: &SmimePolicy,
        directory: Option<Arc<DirectoryLookup>>,
    ) -> SmimeOutbound {
        SmimeOutbound {
            directory,
            store,
            policy: smime.outbound,
            legacy_everywhere: smime.legacy,
            legacy_domains: Arc::new(
                smime
                    .legacy_domains
                    .iter()
                    .filter_map(|d| whitelist::a_label(d.get_ref()).ok())
                    .collect(),
            ),
        }
    }

    /// Whether any of `recipients` is at a peer that needs the legacy forms.
    fn legacy(&self, recipients: &[String]) -> bool {
        self.legacy_everywhere
            || recipients.iter().any(|address| {
                address
                    .rsplit_once('@')
                    .and_then(|(_, d)| whitelist::a_label(d).ok())
                    .is_some_and(|d| self.legacy_domains.contains(&d))
            })
    }

    /// Protects `message`, sent by `sender` to the remote `recipients`.
    pub async fn protect(
        &self,
        sender: &Account,
        recipients: &[String],
        message: &[u8],
    ) -> Protected {
        if self.policy == OutboundSmime::Off {
            return Protected::default();
        }
        let require = self.policy == OutboundSmime::Require;
        let (header, body) = mime::split_entity(message);
        let media = mime::media_type(&mime::field(header, "content-type").unwrap_or_default());
        if matches!(
            media.as_str(),
            "application/pkcs7-mime" | "application/x-pkcs7-mime"
        ) {
            return Protected::default(); // the client encrypted it itself
        }
        // Signed by the client: not altered, not signed again, but still encrypted.
        let already_signed = media == "multipart/signed";
        let mut certs = Vec::new();
        let mut refused = Vec::new();
        for address in recipients {
            let cert = match self.recipient_certificate(address).await {
                Ok(Some(der)) => match crate::pki::unusable_now(&der) {
                    Some(reason) => Err(format!(
                        "the S/MIME certificate known for this recipient is unusable: {reason}"
                    )),
                    None => X509::from_der(&der).map_err(|e| e.to_string()),
                },
                Ok(None) => Err("no S/MIME certificate is known for this recipient".to_string()),
                Err(reason) => Err(reason),
            };
            match cert {
                Ok(cert) => certs.push(cert),
                Err(reason) => {
                    tracing::warn!(recipient = %address, %reason, "outbound mail not encrypted for this recipient");
                    if require {
                        refused.push((
                            address.clone(),
                            format!(
                                "{reason}, and this operator sends only encrypted mail \
                                 (smime.outbound = require)"
                            ),
                        ));
                    }
                }
            }
        }
        let (options, scheme) = if self.legacy(recipients) {
            (EncryptOptions::legacy(), SignatureScheme::Pkcs1v15Sha256)
        } else {
            (EncryptOptions::default(), SignatureScheme::PssSha256)
        };
        // Encrypted only when every recipient left can read it.
        let encrypt = !certs.is_empty() && (require || certs.len() == recipients.len());
        if already_signed && !encrypt {
            return Protected {
                refused,
                ..Protected::default()
            };
        }
        // Under `require`, a message that cannot be protected goes to nobody.
        let failed = |reason: String| Protected {
            message: None,
            key_use: None,
            refused: if require {
                recipients
                    .iter()
                    .map(|a| {
                        (
                            a.clone(),
                            format!("the message could not be encrypted: {reason}"),
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            },
        };
        let mut entity = content_entity(header, body);
        if !already_signed {
            entity = match downgrade::to_7bit(&entity) {
                Ok(seven_bit) => without_mime_version(&seven_bit),
                Err(e) => return failed(e.to_string()),
            };
        }
        let signer = if already_signed {
            None
        } else {
            self.signature_key(sender).await
        };
        // Signing and encrypting are public-key work: on the crypto pool.
        let content = crate::blocking::crypto(move || {
            let (signed, signing_key) = match signer.and_then(|m| m.sign(&entity, scheme)) {
                Some((signed, key)) => (signed, Some(key)),
                None => (entity, None),
            };
            Ok::<_, crate::blocking::TaskFailed>(if encrypt {
                mssante_smime::encrypt(&signed, &certs, options)
                    .map(|encrypted| (encrypted, signing_key))
                    .map_err(|e| e.to_string())
            } else {
                Ok((signed, signing_key))
            })
        })
        .await;
        let (content, signing_key) = match content {
            Ok(Ok(content)) => content,
            Ok(Err(reason)) => return failed(reason),
            Err(e) => return failed(e.to_string()),
        };
        let key_use = signing_key.map(|key| {
            let message_id = mime::field(header, "message-id").unwrap_or_default();
            let detail = format!(
                "escrowed signature key ({key}) signed message {}",
                message_id.trim()
            );
            audit::entry(
                "key.sign",
                &sender.address,
                "submission",
                audit::Outcome::Ok,
                &detail,
            )
        });
        let mut out = outer_header(header);
        out.extend_from_slice(b"MIME-Version: 1.0\r\n");
        out.extend_from_slice(&content);
        Protected {
            message: Some(out),
            refused,
            key_use,
        }
    }

    /// `address`'s encryption certificate (DER): from the local table, else from the
    /// directory (cached); Err when neither could be asked.
    async fn recipient_certificate(&self, address: &str) -> Result<Option<Vec<u8>>, String> {
        let local = self.store.db().correspondent(address).await;
        match (local, &self.directory) {
            (Ok(Some(der)), _) => Ok(Some(der)),
            (_, Some(directory)) => directory.certificate(address).await.map_err(|e| {
                format!("the directory could not be asked for this recipient's certificate: {e}")
            }),
            (Ok(None), None) => Ok(None),
            (Err(e), None) => Err(format!("the certificate table could not be read: {e}")),
        }
    }

    /// The sender's current signature key (PKCS#8, opened), certificate and chain (DER);
    /// parsed later, on the blocking pool. None when there is none, or when its certificate
    /// is not valid now (audited: the mail goes unsigned).
    async fn signature_key(&self, sender: &Account) -> Option<SigningMaterial> {
        let keys = self.store.keys(sender).await.ok()?;
        let key = keys
            .iter()
            .find(|k| k.usage == KeyUse::Signature && k.state == KeyState::Current)?;
        if let Some(reason) = key
            .certificate
            .as_deref()
            .and_then(crate::pki::unusable_now)
        {
            tracing::warn!(mailbox = %sender.address, %reason, "outbound mail sent unsigned");
            let trail = audit::Audit::new(self.store.clone());
            let detail = format!("signature certificate not used: {reason}");
            if let Err(e) = trail
                .record(
                    "smime.unsigned",
                    &sender.address,
                    "submission",
                    audit::Outcome::Error,
                    &detail,
                )
                .await
            {
                tracing::error!(error = %e, "audit write failed");
            }
            return None;
        }
        Some(SigningMaterial {
            pkcs8: self.store.open_key(sender, key).await.ok()?,
            certificate: key.certificate.clone()?,
            chain: key.chain.clone(),
        })
    }
}

/// A signature key as the store gives it.
struct SigningMaterial {
    pkcs8: zeroize::Zeroizing<Vec<u8>>,
    certificate: Vec<u8>,
    chain: Vec<u8>,
}

impl SigningMaterial {
    /// Signs `entity`; returns the signed entity and the key that signed (its certificate's
    /// serial number), or None when the material does not parse or signing fails.
    fn sign(&self, entity: &[u8], scheme: SignatureScheme) -> Option<(Vec<u8>, String)> {
        let key = PKey::private_key_from_pkcs8(&self.pkcs8).ok()?;
        let cert = X509::from_der(&self.certificate).ok()?;
        let chain = mssante_smime::certificates_from_der(&self.chain)?;
        let serial = crate::pki::serial_hex(&cert).ok()?;
        let signed = mssante_smime::sign(entity, &key, &cert, &chain, scheme)
            .map_err(|e| tracing::warn!(error = %e, "outbound signature failed"))
            .ok()?;
        Some((signed, format!("certificate serial {serial}")))
    }
}

/// An entity without the MIME-Version the 7-bit conversion gives a whole message: it
/// belongs to the message around the entity.
fn without_mime_version(entity: &[u8]) -> Vec<u8> {
    let (header, body) = mime::split_entity(entity);
    [
        &mime::fields(header, &["mime-version"], false)[..],
        b"\r\n",
        body,
    ]
    .concat()
}

/// The message's own header (From, To, Subject...), without its content fields.
fn outer_header(header: &[u8]) -> Vec<u8> {
    mime::fields(header, &CONTENT_FIELDS, false)
}

/// The MIME entity to protect: the content fields (a plain-text type when there are none)
/// and the body.
fn content_entity(header: &[u8], body: &[u8]) -> Vec<u8> {
    let mut entity: Vec<u8> = mime::fields(header, &CONTENT_FIELDS, true)
        .split_inclusive(|b| *b == b'\n')
        .filter(|line| !mime::is_field(line, "mime-version"))
        .flatten()
        .copied()
        .collect();
    if mime::field(header, "content-type").is_none() {
        let charset = if downgrade::needs_8bit(body) {
            "utf-8"
        } else {
            "us-ascii"
        };
        entity.extend_from_slice(
            format!("Content-Type: text/plain; charset={charset}\r\n").as_bytes(),
        );
    }
    entity.extend_from_slice(b"\r\n");
    entity.extend_from_slice(body);
    entity
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entity_takes_the_content_fields_and_the_header_keeps_the_rest() {
        let header = b"From: a@x\r\nContent-Type: text/plain;\r\n charset=utf-8\r\nSubject: s\r\nMIME-Version: 1.0\r\n";
        assert_eq!(outer_header(header), b"From: a@x\r\nSubject: s\r\n");
        assert_eq!(
            content_entity(header, b"hello\r\n"),
            b"Content-Type: text/plain;\r\n charset=utf-8\r\n\r\nhello\r\n"
        );
        assert_eq!(
            content_entity(b"From: a@x\r\n", b"caf\xc3\xa9\r\n"),
            b"Content-Type: text/plain; charset=utf-8\r\n\r\ncaf\xc3\xa9\r\n"
        );
    }
}
